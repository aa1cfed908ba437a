"""`fabric traffic show|gen` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fabric.commands.traffic import app
from fabric.errors import WorkloadError
from fabric.schedule import read_schedule

ROOT = Path(__file__).resolve().parents[2]
TOPO = str(ROOT / "topologies/leaf-spine-ecmp.yaml")
runner = CliRunner()


def test_show_text_names_classes_load_fan_in_and_notes():
    result = runner.invoke(app, ["show", str(ROOT / "traffic/incast-victim.yaml"), "--topo", TOPO])
    assert result.exit_code == 0, result.output
    out = result.output
    for fragment in ("incast", "victim", "host capacity", "fan-in", "traffic matrix", "leaf2", "h8"):
        assert fragment in out
    # h8 receives the 4:1 incast: its fan-in column reads 4
    h8 = next(line for line in out.splitlines() if line.strip().startswith("h8 "))
    assert h8.split()[-1] == "4"


def test_show_json_figures_match_schedule(tmp_path):
    profile = str(ROOT / "traffic/moe-deepseek-v3-decode.yaml")
    result = runner.invoke(app, ["show", profile, "--topo", TOPO, "--json", "--seed", "4"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["seed"] == 4
    assert set(summary["classes"]) == {"a2a_dispatch", "a2a_combine"}
    assert any("emulating 2 of 58 MoE layers" in n for n in summary["notes"])
    out = tmp_path / "s.parquet"
    assert runner.invoke(app, ["gen", profile, "--topo", TOPO, "-o", str(out), "--seed", "4"]).exit_code == 0
    frame = read_schedule(out)
    assert summary["messages"] == len(frame)
    assert summary["bytes"] == int(frame["bytes"].sum())
    assert summary["offered_load_bps"] == pytest.approx(frame["bytes"].sum() * 8 / 0.25)  # over the 250 ms window
    matrix = summary["edge_matrix_bytes"]
    assert sum(map(sum, matrix["bytes"])) == summary["bytes"]


def test_gen_is_deterministic_and_seed_changes_it(tmp_path):
    profile = str(ROOT / "traffic/disagg-llama70b.yaml")
    paths = [tmp_path / f"{n}.parquet" for n in "abc"]
    for path, seed in zip(paths, ("1", "1", "2")):
        result = runner.invoke(app, ["gen", profile, "--topo", TOPO, "-o", str(path), "--seed", seed])
        assert result.exit_code == 0, result.output
        assert "wrote" in result.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert isinstance(pd.read_parquet(paths[0]), pd.DataFrame)


def test_default_topology_is_leaf_spine_ecmp(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["show", "traffic/incast.yaml"])
    assert result.exit_code == 0, result.output
    assert "on leaf-spine-ecmp" in result.output


def test_invalid_profile_fails_with_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 2s\nmodel: Llama-3-70B\npatterns:\n"
                   "  - {type: background, name: bg, hosts: all, message: 1MB, load: 10%, colour: red}\n")
    result = runner.invoke(app, ["show", str(bad), "--topo", TOPO])
    assert result.exit_code != 0
    assert isinstance(result.exception, WorkloadError)
    assert "bad.yaml" in str(result.exception) and "patterns[0].colour" in str(result.exception)
    assert runner.invoke(app, ["show", str(bad), "--seed", "-1", "--topo", TOPO]).exit_code != 0
