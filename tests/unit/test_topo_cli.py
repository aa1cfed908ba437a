"""``fabric topo`` and ``fabric doctor`` through typer's CliRunner (no root needed)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from fabric.cli import app

runner = CliRunner()


def test_validate_all_shipped_designs(topology_files):
    result = runner.invoke(app, ["topo", "validate", *map(str, topology_files)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(topology_files)
    for path, line in zip(topology_files, lines):
        assert line.startswith(f"ok  {path}: ")
    production = next(ln for ln in lines if "production-1024-h100" in ln)
    assert "1024 hosts" in production and "too large to emulate" in production


def test_validate_stops_at_first_bad_design(topology_files, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: leaf-spine\nleaves: 0\n")
    result = runner.invoke(app, ["topo", "validate", str(topology_files[0]), str(bad)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"ok  {topology_files[0]}")
    assert result.stderr.strip() == f"error: {bad}: leaves: got 0; must be at least 1"


@pytest.fixture(scope="module")
def ecmp_json(repo_root):
    result = runner.invoke(app, ["topo", "show", "--json", str(repo_root / "topologies" / "leaf-spine-ecmp.yaml")])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_show_json_has_the_documented_keys(ecmp_json):
    assert {"hosts", "switches", "links", "oversubscription", "bisection_bps", "bom"} <= set(ecmp_json)


def test_show_json_numbers(ecmp_json):
    assert ecmp_json["hosts"] == 16
    assert ecmp_json["links"] == {"host": 16, "fabric": 16, "total": 32}
    assert ecmp_json["switches"] == {"leaf": 4, "spine": 4}
    assert ecmp_json["oversubscription"] == pytest.approx(1.0)
    # fabric_facts defines bisection as the capacity across a cut between two halves of the leaves:
    # min(half the leaves' uplinks, their hosts) = 2 leaves x 4 x 400G = 8 hosts x 400G = 3.2 Tbit/s
    assert ecmp_json["bisection_bps"] == 3_200_000_000_000
    assert ecmp_json["bisection_bps"] == ecmp_json["hosts"] // 2 * ecmp_json["host_link_rate_bps"]
    assert ecmp_json["emulable"] is True
    bom = ecmp_json["bom"]
    assert sum(s["count"] for s in bom["switches"]) == 8
    assert sum(o["count"] for o in bom["optics"]) == 2 * 32
    assert sum(n["count"] for n in bom["nics"]) == 16


def test_show_human_output(repo_root):
    result = runner.invoke(app, ["topo", "show", str(repo_root / "topologies" / "leaf-spine-ecmp.yaml")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "16 host + 16 fabric" in out
    assert "oversubscription 1.00:1" in out
    assert "bisection        3.2Tbit/s" in out
    assert "emulation        yes" in out


def test_show_human_output_flags_production_as_not_emulable(repo_root):
    result = runner.invoke(app, ["topo", "show", str(repo_root / "topologies" / "production-1024-h100.yaml")])
    assert result.exit_code == 0, result.output
    emulation = [ln for ln in result.stdout.splitlines() if ln.strip().startswith("emulation")]
    assert len(emulation) == 1 and "NO" in emulation[0] and "too large" in emulation[0]


def test_show_scheduled_fabric_mentions_scheduler(repo_root):
    result = runner.invoke(app, ["topo", "show", str(repo_root / "topologies" / "scheduled-fabric.yaml")])
    assert result.exit_code == 0, result.output
    assert "tick 5 ms" in result.stdout and "VOQ depth 512 MB" in result.stdout
    assert "4 NCPs, 4 NCFs" in result.stdout


def test_show_missing_file_is_one_line(tmp_path):
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["topo", "show", str(missing)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {missing}: file not found"


# --- doctor, as a user without root -----------------------------------------------------------

@pytest.fixture
def not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


def test_doctor_json_without_root(not_root):
    result = runner.invoke(app, ["doctor", "--json"])
    report = json.loads(result.stdout)
    assert report["ready"] is False
    assert result.exit_code == 1, "not ready must be a failing exit status"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["root"]["ok"] is False and checks["root"]["required"] is True
    assert "sudo" in checks["root"]["detail"]
    # kernel features are not probed without root; no namespace is attempted
    assert "netns" not in checks
    assert checks["kernel features"]["ok"] is False
    for c in report["checks"]:
        assert set(c) == {"name", "ok", "detail", "required", "disables"}


def test_doctor_human_output_without_root(not_root):
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "MISSING root" in " ".join(result.stdout.split())
    assert "NOT ready to emulate" in result.stdout


def test_doctor_not_ready_exit_status_through_main(not_root, capsys):
    # The installed script goes through main(); a not-ready machine must exit non-zero there too.
    from fabric.cli import main
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--json"])
    assert info.value.code == 1
    assert json.loads(capsys.readouterr().out)["ready"] is False
