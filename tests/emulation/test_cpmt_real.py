"""CPMT on real runs: disaggregated KV and MoE decode over the ECMP and scheduled designs.

`fabric cpmt` gives η and CPMT for each run, and the explain output shows the measured tails that
set η (KV completion for η_KV, the per-step all-to-all time for η_MoE), so a difference between
designs can be traced to them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulation.conftest import assert_fidelity_holds

REPO = Path(__file__).resolve().parents[2]
FABRIC = str(Path(sys.executable).parent / "fabric")


def _fabric(*args):
    proc = subprocess.run([FABRIC, *args], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("profile,pattern", [("disagg-llama70b", "kv"), ("moe-deepseek-v3-decode", "moe")])
def test_cpmt_for_each_design_traces_eta_to_measured_tails(tmp_path, profile, pattern):
    results = {}
    for design in ("leaf-spine-ecmp", "scheduled-fabric"):
        out = tmp_path / design
        # MoE: 3 of the profile's 7 decode steps (a dilated scheduled-fabric run takes a minute for 7).
        window = ["--window", "1ns:100ms"] if pattern == "moe" else []
        _fabric("run", "--topo", f"topologies/{design}.yaml", "--traffic", f"traffic/{profile}.yaml",
                "--out", str(out), "--quiet", *window)
        if design == "leaf-spine-ecmp":
            # The same run test_run_cli's every-profile test would make: it keeps its fidelity invariant.
            assert_fidelity_holds(json.loads((out / "metrics.json").read_text())["fidelity"])
        data = json.loads(_fabric("cpmt", str(out), "--json"))
        explain = _fabric("cpmt", str(out), "--explain")
        eta = data["eta"][pattern]
        # η is not capped at 1. Measured on this VM over runs: η_MoE 1.027–1.061 on the scheduled
        # fabric (a dilated run): its ideal overestimates MoE group completion by 3–6%, an open gap
        # of the emulator's ideal (issue 11). Well beyond that is a bug.
        assert 0 < eta <= 1.08, (eta, data["eta_interval"])
        assert 0 < data["cpmt_total_usd_per_mtok"] and 0 < data["cpmt_output_usd_per_mtok"]
        assert 0 < data["network_share"] < 1 and data["cost_per_hour_usd"] > 0
        detail = data["patterns"][pattern]
        if pattern == "kv":
            measured = detail["kv_completion_measured_p99_s"]
            assert f"{measured * 1e3:.3f} ms" in explain
        else:
            measured = detail["comm_measured_mean_s"]
            assert f"measured {measured * 1e3:.3f} ms" in explain
        assert f"{eta:.4f}" in explain
        # CPMT is the hourly cost over the tokens served within the SLO (docs/economics.md §1).
        served = data["tokens_per_s"]["served_total"]
        assert data["cpmt_total_usd_per_mtok"] == pytest.approx(data["cost_per_hour_usd"] * 1e6 / (served * 3600))
        results[design] = (data["eta"]["combined"], data["cost_per_hour_usd"], data["cpmt_total_usd_per_mtok"])
    # The break-even rule holds on measured figures: B is cheaper per token iff η_B/η_A > C_B/C_A.
    (eta_a, cost_a, cpmt_a), (eta_b, cost_b, cpmt_b) = results["leaf-spine-ecmp"], results["scheduled-fabric"]
    assert cost_b > cost_a
    assert (cpmt_b < cpmt_a) == (eta_b / eta_a > cost_b / cost_a)
