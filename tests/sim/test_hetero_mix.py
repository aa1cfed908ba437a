"""An H100-only cluster against a heterogeneous one on the same fabric (issue 16), as a user runs it:

    fabric compare topologies/multi-vendor.yaml --mix h100-only='*:H100' --mix hetero=design \\
        --traffic traffic/hetero-stages.yaml --engine sim --window 1s:300ms --out OUT

The comparison must print, per mix, CPMT and each pool's size, price and η, and the mix's
break-even line; every figure is checked against the catalog and the runs it came from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fabric.catalog import accelerator, model
from fabric.economics import CostFile, Ledger, accelerator_hourly_usd, cpmt_for_run
from tests.sim.conftest import needs_ns3

pytestmark = needs_ns3

ROOT = Path(__file__).resolve().parents[2]
MIXES = {"h100-only": {"prefill-b200": "H100", "decode-mi300x": "H100", "decode-gaudi3": "H100"},
         "hetero": {"prefill-b200": "B200", "decode-mi300x": "MI300X", "decode-gaudi3": "Gaudi3"}}


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("mix") / "cmp"
    proc = subprocess.run(
        [sys.executable, "-c", "from fabric.cli import main; main()", "compare", "topologies/multi-vendor.yaml",
         "--mix", "h100-only=*:H100", "--mix", "hetero=design", "--traffic", "traffic/hetero-stages.yaml",
         "--engine", "sim", "--window", "1s:300ms", "--out", str(out), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    return {"out": out, "stdout": proc.stdout, "summary": summary,
            "designs": {d["mix"]: d for d in summary["designs"]}}


def test_each_mix_prices_each_pool_at_its_own_accelerator(compared):
    led = Ledger()
    for mix, groups in MIXES.items():
        d = compared["designs"][mix]
        assert d["status"] == "ok" and d["base_design"] == "multi-vendor"
        pools = {p["group"]: p for p in d["stage_pools"]["pools"]}
        assert {g: p["accelerator"] for g, p in pools.items()} == groups
        for p in pools.values():
            price = accelerator_hourly_usd(p["accelerator"], CostFile(), led, 1.3, 0.08)["usd_per_hour"]
            assert p["usd_per_accelerator_hour"] == pytest.approx(price)
        # the design's 16 accelerators split over the pools
        assert sum(p["accelerators"] for p in pools.values()) == pytest.approx(16)


def test_pool_rates_and_eta_come_from_the_catalog_and_the_run(compared):
    llama = model("Llama-3-70B")
    for mix in MIXES:
        d = compared["designs"][mix]
        run_dir = Path(d["runs"][0]["run_dir"])
        r = cpmt_for_run(run_dir)
        prefill = [p for p in d["stage_pools"]["pools"] if p["stage"] == "prefill"]
        for p in prefill:
            assert p["tokens_per_s_per_accelerator"] == pytest.approx(
                accelerator(p["accelerator"]).prefill_tokens_per_s(llama))
        for p in d["stage_pools"]["pools"]:
            assert p["eta"] == pytest.approx(r["eta"]["prefill_pool" if p["stage"] == "prefill" else "decode_pool"])
            assert 0.9 <= p["eta"] <= 1.02
        # the ideal rate is the stages' (docs/economics.md §6), not DeepSeek's production figure
        sp = d["stage_pools"]
        expected = (sp["prompt_tokens_mean"] + sp["output_tokens_mean"]) / (
            sp["prompt_tokens_mean"] / sp["stage_rate"]["prefill"] + sp["output_tokens_mean"] / sp["stage_rate"]["decode"])
        assert r["tokens_per_s"]["ideal_total"] == pytest.approx(16 * expected)
        # both mixes are sized for the same offered load
        assert sp["target_requests_per_s"] == pytest.approx(compared["designs"]["hetero"]["stage_pools"]["target_requests_per_s"])


def test_the_mix_break_even_follows_the_cpmt_figures(compared):
    (be,) = compared["summary"]["comparison"]["mix_break_even"]
    a, b = compared["designs"]["h100-only"], compared["designs"]["hetero"]
    assert (be["a"], be["b"], be["fabric"]) == ("h100-only", "hetero", "multi-vendor")
    assert be["ideal_cpmt_ratio"] == pytest.approx(b["cpmt"]["ideal_total_usd_per_mtok"] / a["cpmt"]["ideal_total_usd_per_mtok"])
    assert be["cpmt_ratio"] == pytest.approx(b["cpmt"]["total_usd_per_mtok"] / a["cpmt"]["total_usd_per_mtok"])
    assert be["b_wins"] == (b["cpmt"]["total_usd_per_mtok"] < a["cpmt"]["total_usd_per_mtok"])
    # B200 prefill and MI300X/Gaudi 3 decode serve Llama-3-70B far cheaper than H100 at catalog rates
    assert be["ideal_cpmt_ratio"] < 0.8


def test_the_terminal_prints_cpmt_pools_and_break_even_per_mix(compared):
    text = compared["stdout"]
    for mix, groups in MIXES.items():
        assert f"multi-vendor+{mix}" in text
        for group, acc in groups.items():
            assert any(f"multi-vendor+{mix}" in line and group in line and acc in line and "/h" in line
                       for line in text.splitlines()), (mix, group)
    assert "hetero vs h100-only on multi-vendor: ideal-fabric CPMT ratio" in text
    report = (compared["out"] / "report.md").read_text()
    assert "Serving pools sized from the stages" in report and "hetero vs h100-only on multi-vendor" in report


def test_each_mix_keeps_the_front_end_and_counts_it_in_cost_and_ttft(compared):
    """`*` leaves the four CPU front-end servers in both mixes: priced as whole servers, added to the
    hourly cost, and their CPU time and hops are parts of every request's TTFT."""
    led = Ledger()
    from fabric.economics.costs import frontend_hourly_usd
    price = frontend_hourly_usd("EPYC-9354-frontend", CostFile(), led, 1.3, 0.08)["usd_per_hour"]
    for mix in MIXES:
        d = compared["designs"][mix]
        fe = d["frontend"]
        assert fe["servers"] == pytest.approx(4) and fe["usd_per_hour"] == pytest.approx(4 * price)
        assert 0 < fe["busy_share"] < 0.01                     # 4 x 32 cores tokenize ~11 requests/s
        assert sum(fe["ttft_share"].values()) == pytest.approx(1.0)
        assert fe["ttft_share"]["front-end CPU (tokenize, detokenize)"] > 0
        r = cpmt_for_run(Path(d["runs"][0]["run_dir"]))
        c = r["cost"]
        assert r["cost_per_hour_usd"] == pytest.approx(c["accelerators_usd_per_hour"] + c["frontend_usd_per_hour"]
                                                       + c["network_usd_per_hour"])
        assert r["design"]["costed_accelerators"] == 16 and r["design"]["hosts"] == 20
    assert "front end" in (compared["out"] / "report.md").read_text()
