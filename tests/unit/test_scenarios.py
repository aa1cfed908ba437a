"""The shipped scenarios (``scenarios/*.yaml``) and the sweep file's ``kpis:``: every scenario
parses and plans (every point validated, nothing run), follows a section of the draft and names
its KPIs by the draft's names; a pattern list a point writes out is the base profile's own; a bad
KPI entry is one line naming file, key and value; Jain's index on hand-worked numbers; the KPI
table of sweep.md and the kpi.* columns of sweep.parquet from fake runs (tests.unit.test_sweep)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fabric.analysis.metrics import jain_index
from fabric.errors import SpecError
from fabric.sweep import load_sweep, plan_sweep
from fabric.sweep.results import measure
from fabric.sweep.spec import DRAFT_KPIS, parse_measure
from tests.unit.test_sweep import RATE_KEY, assert_refused_in_one_line, run, write_sweep

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
DRAFT = "draft-calabria-bmwg-ai-fabric-inference-bench-05"


def test_the_draft_sections_each_have_a_scenario():
    sections = {load_sweep(p).follows.split()[1] for p in SCENARIOS}
    assert {"§5.2", "§5.3", "§7.1", "§7.3", "§7.4", "§8.1", "§9.3", "§9.4", "§10.4"} <= sections


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_a_shipped_scenario_parses_plans_and_names_the_drafts_kpis(path):
    spec = load_sweep(path)
    assert spec.follows.startswith(f"{DRAFT} §"), spec.follows
    assert spec.engines == ("sim",) and spec.kpis
    assert all(k.kpi in DRAFT_KPIS for k in spec.kpis)
    # Says what it runs instead of the draft's >= 20 trials of >= 60 s.
    assert "Trials:" in path.read_text()
    plan = plan_sweep(spec)     # every value alone, then every point whole; raises on the first problem
    assert len(plan.points) == len(spec.points) * len(spec.seeds or (1,))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_a_pattern_list_written_out_in_a_scenario_is_the_base_profiles(path):
    spec = load_sweep(path)
    base = {p["name"]: p for p in yaml.safe_load(spec.workload_path.read_text())["patterns"]}
    for values in spec.points:
        for key, value in values:
            if key.text == "workload.patterns":
                for pattern in value:
                    assert pattern == base[pattern["name"]], (path.name, pattern["name"])


# --------------------------------------------------------------------------------------------
# kpis: parsing
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kpis, key, words", [
    ([{"kpi": "KV_latency", "measure": "mct_us.kv.p99"}], "kpis[0].kpi", ["'KV_latency'", "KV_xfer_latency"]),
    ([{"kpi": "TTFT", "measure": "ttft_ms.p99"}, {"kpi": "ITL", "measure": "mct_us.kvv.p99"}], "kpis[1].measure",
     ["'mct_us.kvv.p99'", "valid classes"]),
    ([{"kpi": "KV_xfer_latency", "measure": "mct_us.kv.p98"}], "kpis[0].measure", ["'mct_us.kv.p98'", "p99.9"]),
    ([{"kpi": "JFI", "measure": "uplinks"}], "kpis[0].measure", ["'uplinks'", "uplink_jain"]),
    ([{"kpi": "scaling efficiency", "measure": "mct_us.kv.p50", "baseline": {RATE_KEY: 30}}],
     f"kpis[0].baseline.{RATE_KEY}", ["30", "not a value the grid sweeps"]),
    ([{"kpi": "JFI", "measure": "jain_dst.kv", "ratio": "this/baseline"}], "kpis[0].ratio", ["needs a baseline"]),
])
def test_a_bad_kpi_entry_is_one_line_naming_file_key_and_value(tmp_path, kpis, key, words):
    path = write_sweep(tmp_path, {"follows": f"{DRAFT} §5.2", "grid": {RATE_KEY: [40, 60]}, "kpis": kpis})
    assert_refused_in_one_line(path, tmp_path / "out", key, words)


def test_kpis_need_follows_and_measures_parse():
    with pytest.raises(SpecError, match="give follows:"):
        from fabric.sweep.spec import parse_sweep
        parse_sweep({"design": str(REPO / "scenarios/base/small-leaf-spine.yaml"),
                     "workload": str(REPO / "scenarios/base/kv-pairs-16mb.yaml"),
                     "kpis": [{"kpi": "JFI", "measure": "uplink_jain"}]}, str(REPO / "scenarios/x.yaml"))
    assert parse_measure("mct_us.kv.p99.9", "f", "k") == ("mct_us", "kv", "p99.9")
    assert parse_measure("uplink_util_pct.max", "f", "k") == ("uplink_util_pct", None, "max")
    assert parse_measure("jain_pair.permutation", "f", "k") == ("jain_pair", "permutation", None)


# --------------------------------------------------------------------------------------------
# Jain's index
# --------------------------------------------------------------------------------------------

def test_jains_index_on_hand_worked_numbers():
    # J = (Σx)² / (n Σx²)
    assert jain_index([5, 5, 5, 5]) == 1.0
    assert jain_index([1, 0, 0, 0]) == 0.25                     # 1 / (4 × 1)
    assert jain_index([1, 2, 3, 4]) == pytest.approx(100 / 120)  # 10² / (4 × 30)


class _FakeRun:
    """Just what the jain_pair measure reads: messages and their completion times."""

    def __init__(self):
        self.metrics = {}
        self._msgs = pd.DataFrame({"kind": ["kv", "kv", "kv", "background"], "src": ["a", "a", "c", "a"],
                                   "dst": ["b", "b", "d", "b"], "bytes": [100, 100, 100, 1000]})
        self._comp = pd.DataFrame({"mct_ns": [1.0, 1.0, 4.0, 1.0]})

    def completion(self):
        return self._msgs, self._comp


def test_jain_over_pairs_uses_each_pairs_bytes_over_its_completion_times():
    # Pair a->b: 200 bytes in 2 ns (rate 100); c->d: 100 bytes in 4 ns (rate 25); background ignored.
    # J = 125² / (2 × (100² + 25²)) = 15,625 / 21,250
    from fabric.sweep.spec import KpiSpec
    kpi = KpiSpec("JFI", "jain_pair.kv", "jain_pair", "kv", None, "JFI", "kpis[0]")
    assert measure(kpi, _FakeRun()) == pytest.approx(15_625 / 21_250)


# --------------------------------------------------------------------------------------------
# The KPI table from fake runs
# --------------------------------------------------------------------------------------------

def test_the_kpi_table_and_columns_from_fake_runs(tmp_path):
    kpis = [{"kpi": "KV_xfer_latency", "measure": "mct_us.kv.p99"},
            {"kpi": "KV_xfer_latency", "measure": "mct_us.kv.p95"},
            {"kpi": "JFI", "measure": "jain_pair.kv", "label": "JFI across pairs"},
            {"kpi": "latency degradation factor", "measure": "mct_us.kv.p99", "baseline": {RATE_KEY: 40}}]
    path = write_sweep(tmp_path, {"follows": f"{DRAFT} §5.3 (Concurrent KV Cache Transfer Scaling)",
                                  "grid": {RATE_KEY: [40, 60]},
                                  "kpis": kpis})
    out = tmp_path / "out"
    result, paths = run(path, out)
    assert result.counts == {"ok": 2}
    md = (out / "sweep.md").read_text()
    assert f"## KPIs ({DRAFT} §5.3 (Concurrent KV Cache Transfer Scaling))" in md
    for label in ("KV_xfer_latency P99 (µs)", "KV_xfer_latency P95 (µs)", "JFI across pairs",
                  "latency degradation factor P99 (×)"):
        assert f"| {label} " in md or f" {label} |" in md, label
        assert f"* **{label}** (draft §" in md
    frame = pd.read_parquet(out / "sweep.parquet")
    p99, p95 = frame["kpi.KV_xfer_latency P99 (µs)"], frame["kpi.KV_xfer_latency P95 (µs)"]
    assert np.isfinite(p99).all() and (p95 <= p99).all() and (p95 > 0).all()
    # P99 comes from metrics.json (ms there, µs here).
    assert np.allclose(p99, frame["mct_p99_ms.kv"] * 1e3)
    assert ((frame["kpi.JFI across pairs"] > 0) & (frame["kpi.JFI across pairs"] <= 1)).all()
    # The ratio: each point's P99 ÷ the P99 of the point at rate 40.
    ratio = frame.set_index(RATE_KEY)["kpi.latency degradation factor P99 (×)"]
    p99 = frame.set_index(RATE_KEY)["kpi.KV_xfer_latency P99 (µs)"]
    assert ratio[40] == 1.0 and math.isclose(ratio[60], p99[60] / p99[40])
