"""A real ``fabric compare`` of two shipped designs on a short profile: both designs finish, the
report has filled columns for both, and the HTML renders in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.test_compare_cli import cli_app

REPO = Path(__file__).resolve().parents[2]
PROFILE = Path(__file__).parent / "profiles" / "small-mixed.yaml"
DESIGNS = [REPO / "topologies" / "leaf-spine-ecmp.yaml", REPO / "topologies" / "scheduled-fabric.yaml"]
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and Path(p).exists()), None)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    res = CliRunner().invoke(cli_app(), ["compare", *map(str, DESIGNS), "--traffic", str(PROFILE), "--out", str(out),
                                         "--quiet"])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_compare_reports_both_designs_with_filled_columns(compared):
    out, output = compared
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "complete"
    assert [d["name"] for d in s["designs"]] == ["leaf-spine-ecmp", "scheduled-fabric"]
    ks = {d["scale_k"] for d in s["designs"]}
    assert len(ks) == 1 and s["scale"]["k"] in ks
    for d in s["designs"]:
        assert d["status"] == "ok", d["reason"]
        for key in ("eta_combined", "eta_moe", "cpmt_total_usd_per_mtok", "cpmt_output_usd_per_mtok",
                    "network_share", "loss_ratio", "core_imbalance_max_over_mean"):
            assert isinstance(d["figures"][key], float), (d["name"], key, d["figures_na"].get(key))
        assert set(d["classes"]) >= {"kv", "a2a_dispatch", "a2a_combine", "background"}
        for kind, figs in d["classes"].items():
            for key in ("owd_p50_us", "owd_p99_us", "mct_p99_ms"):
                assert figs[key] is not None, (d["name"], kind, key)
        assert d["fidelity"]["verdict"] in ("trusted", "degraded", "untrusted")
        assert (Path(d["runs"][0]["run_dir"]) / "metrics.json").exists()
    assert len(s["comparison"]["break_even"]) == 1
    html = (out / "report.html").read_text()
    # four comparison plots, plus the verdict's tornado and break-even curve (docs/reading-the-report.md)
    assert html.count('<img src="data:image/png;base64,') == 6
    for name in ("leaf-spine-ecmp", "scheduled-fabric"):
        assert name in html and name in output
    from fabric.report import tables as T
    for row in T.verdict_table(s).rows:
        cells = dict(zip(T.verdict_table(s).headers, row))
        for col in ("η combined (set by)", "CPMT total $/Mtok", "CPMT output $/Mtok", "Network share of cost",
                    "Loss (all packets)", "Spine/NCF imbalance max/mean"):
            assert not cells[col].startswith("n/a"), (row[0], col, cells[col])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(compared, tmp_path):
    out, _ = compared
    png = tmp_path / "report.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1400,2000",
           (out / "report.html").resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120)
    assert png.exists(), "chromium wrote no screenshot"
    assert png.stat().st_size > 50_000, f"screenshot is only {png.stat().st_size} bytes"
    try:
        from PIL import Image
    except ImportError:
        return
    img = Image.open(png).convert("L")
    assert img.size == (1400, 2000)
    lo, hi = img.getextrema()
    assert hi - lo > 100, "the screenshot is blank"
    # The page is mostly white with text, tables and plots: a fair share of non-white pixels.
    hist = img.histogram()
    non_white = 1 - sum(hist[245:]) / (img.size[0] * img.size[1])
    assert non_white > 0.05, f"only {non_white:.1%} of the page is drawn"
