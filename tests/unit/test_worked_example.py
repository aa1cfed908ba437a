"""docs/economics.md §5: `fabric cpmt` on the shipped run directory examples/worked-example prints
the figures the worked example states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fabric.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "worked-example"
DOC = (REPO / "docs" / "economics.md").read_text()


@pytest.fixture(scope="module")
def cpmt() -> dict:
    result = CliRunner().invoke(app, ["cpmt", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    return found[0] if isinstance(found, list) else found


# (what the doc writes, where the CLI has it, how it is rounded in the doc)
FIGURES = [
    ("0.0531 s", lambda r: r["patterns"]["kv"]["queue_before_prefill_mean_s"], "{:.4f} s"),
    ("0.0421 s", lambda r: r["patterns"]["kv"]["prefill_compute_s_mean"], "{:.4f} s"),
    ("0.0876 s", lambda r: r["patterns"]["kv"]["first_decode_step_s"], "{:.4f} s"),
    ("0.2161 s", lambda r: r["patterns"]["kv"]["ttft_ideal_p99_s"], "{:.4f} s"),
    ("0.2184 s", lambda r: r["patterns"]["kv"]["ttft_measured_p99_s"], "{:.4f} s"),
    ("51.479 ms", lambda r: r["patterns"]["moe"]["compute_s"] * 1e3, "{:.3f} ms"),
    ("2.490 ms", lambda r: r["patterns"]["moe"]["comm_ideal_mean_s"] * 1e3, "{:.3f} ms"),
    ("15.040 ms", lambda r: r["patterns"]["moe"]["comm_measured_mean_s"] * 1e3, "{:.3f} ms"),
    ("87.583 ms", lambda r: r["patterns"]["moe"]["tpot_ideal_mean_s"] * 1e3, "{:.3f} ms"),
    ("269.564 ms", lambda r: r["patterns"]["moe"]["tpot_measured_mean_s"] * 1e3, "{:.3f} ms"),
    ("η_MoE = 87.583 / 269.564 = 0.3249", lambda r: r["eta"]["moe"], "η_MoE = 87.583 / 269.564 = {:.4f}"),
    ("a = (2186/5346) / (2186/5346 + 580/1760) = 0.554", lambda r: r["pools"]["prefill_share"],
     "a = (2186/5346) / (2186/5346 + 580/1760) = {:.3f}"),
    ("= 0.5188", lambda r: r["eta"]["combined"], "= {:.4f}"),
    ("= 3,745 tokens/s per", lambda r: r["tokens_per_s"]["ideal_total"] / 16, "= {:,.0f} tokens/s per"),
    ("$21.82/h", lambda r: r["cost"]["accelerators_usd_per_hour"], "${:.2f}/h"),
    ("$102,010", lambda r: r["cost"]["network_capex_usd"], "${:,.0f}"),
    ("C_hour = $25.07/h", lambda r: r["cost_per_hour_usd"], "C_hour = ${:.2f}/h"),
    ("f = 0.1296", lambda r: r["network_share"], "f = {:.4f}"),
    ("served 59,925 × 0.5188 = 31,090", lambda r: r["tokens_per_s"]["served_total"],
     "served 59,925 × 0.5188 = {:,.0f}"),
    ("$0.2240 per million tokens", lambda r: r["cpmt_total_usd_per_mtok"], "${:.4f} per million tokens"),
    ("$0.1162 on an ideal fabric", lambda r: r["cpmt_ideal"]["total_usd_per_mtok"], "${:.4f} on an ideal fabric"),
    ("$0.1580–$0.2920", lambda r: r["cpmt_total_interval"], "${0[0]:.4f}–${0[1]:.4f}"),
]


def test_the_example_is_a_simulator_run_at_the_stated_scale():
    run = json.loads((EXAMPLE / "run.json").read_text())
    assert (run["engine"], run["scale_k"]) == ("sim", 100.0)
    assert run["workload"]["path"].endswith("traffic/mixed-inference.yaml")
    assert run["topology"]["path"].endswith("topologies/leaf-spine-ecmp.yaml")


@pytest.mark.parametrize("doc_text, figure, template", FIGURES, ids=[f[0] for f in FIGURES])
def test_the_cli_prints_what_the_worked_example_states(cpmt, doc_text, figure, template):
    assert doc_text in DOC, f"docs/economics.md no longer states {doc_text!r}"
    assert template.format(figure(cpmt)) == doc_text


def test_every_request_meets_the_slo_and_two_of_58_moe_layers_scale_by_14_5(cpmt):
    kv, moe = cpmt["patterns"]["kv"], cpmt["patterns"]["moe"]
    assert (kv["requests"], kv["attainment_ideal"], kv["attainment_measured"]) == (3, 1.0, 1.0)
    assert (moe["steps"], moe["layer_scale"]) == (3, 14.5)
    sp = cpmt["stage_pools"]
    assert sp["stage_rate"]["prefill"] == pytest.approx(5346, abs=0.5)
    assert sp["stage_rate"]["decode"] == pytest.approx(1760, abs=0.5)
    assert (round(sp["prompt_tokens_mean"]), round(sp["output_tokens_mean"])) == (2186, 580)
    fit = sp["fit"]
    assert not fit["mis_sized"] and f"{fit['capacity_requests_per_s']['prefill']:.1f}" == "19.6"
