"""Pools sized from the stages and priced per accelerator, on hand-worked numbers (docs/economics.md §6).

The case: prefill on 4 accelerators at 6,000 prompt tokens/s each (instances of 2); decode on 8 at
400 and 4 at 250 output tokens/s each (instances of 4); requests of P = 2,000 prompt and O = 250
output tokens.

* r_p = 6000; r_d = (8·400 + 4·250) / 12 = 350 tokens/s per accelerator
* accelerator-seconds per request: prefill 2000/6000 = 1/3, decode 250/350 = 5/7
* a = (1/3) / (1/3 + 5/7) = 7/22; tokens/s per accelerator = 2250 / (22/21) = 2250·21/22
* the design's pools: prefill 4·6000/2000 = 12 requests/s, decode (3200 + 1000)/250 = 16.8, so
  decode idles 1 − 12/16.8 = 2/7 ≈ 29% (> 20%: mis-sized)
"""

import math

import pandas as pd
import pytest

from fabric.economics.derating import combined_eta
from fabric.economics.pools import Pool, StageModel, stage_model

POOLS = (
    Pool("prefill", "prefill-x", "B200", 4, 2, 6000.0),
    Pool("decode", "decode-y", "MI300X", 8, 4, 400.0),
    Pool("decode", "decode-z", "Gaudi3", 4, 4, 250.0),
)


def model(rate=10.0) -> StageModel:
    return StageModel(pools=POOLS, prompt_tokens_mean=2000.0, output_tokens_mean=250.0,
                      request_rate_per_s=rate, pattern="kv")


def test_stage_rates_and_split_match_the_hand_worked_case():
    m = model()
    assert m.stage_rate("prefill") == pytest.approx(6000.0)
    assert m.stage_rate("decode") == pytest.approx(350.0)
    assert m.prefill_share == pytest.approx(7 / 22)
    assert m.total_tokens_per_s_per_accelerator == pytest.approx(2250 * 21 / 22)
    assert m.output_tokens_per_s_per_accelerator == pytest.approx(250 * 21 / 22)


def test_design_fit_names_the_bottleneck_and_the_idle_stage():
    fit = model().design_fit()
    assert fit["capacity_requests_per_s"] == pytest.approx({"prefill": 12.0, "decode": 16.8})
    assert fit["bottleneck"] == "prefill" and fit["idle_stage"] == "decode"
    assert fit["idle_share"] == pytest.approx(2 / 7)
    assert fit["mis_sized"] is True
    assert fit["prefill_share_design"] == pytest.approx(4 / 16)
    assert fit["serves_target"] is True             # 10 requests/s ≤ 12
    assert model(rate=13.0).design_fit()["serves_target"] is False


def test_balanced_design_is_not_mis_sized():
    # 5 prefill at 6000 = 15 requests/s; decode 12 at 350 = 4200/250 = 16.8: idles 1 − 15/16.8 ≈ 11%
    pools = (Pool("prefill", "p", "B200", 5, 1, 6000.0),) + POOLS[1:]
    fit = StageModel(pools, 2000.0, 250.0, 10.0, "kv").design_fit()
    assert fit["idle_share"] == pytest.approx(1 - 15 / 16.8)
    assert fit["mis_sized"] is False


def test_sizing_at_the_target_rate_splits_each_stage_as_the_design_does():
    rows = {r["group"]: r for r in model().sized({"prefill": 1.0, "decode": 1.0})}
    # prefill: 10 · 2000 / 6000 = 3.33 accelerators -> 2 instances of 2
    assert rows["prefill-x"]["accelerators"] == pytest.approx(10 / 3)
    assert rows["prefill-x"]["instances"] == 2
    # decode: 10 · 250 / 350 = 7.14, of which 8/12 on MI300X (4.76 -> 2 instances of 4), 4/12 on Gaudi3
    assert rows["decode-y"]["accelerators"] == pytest.approx(2500 / 350 * 8 / 12)
    assert rows["decode-y"]["instances"] == 2
    assert rows["decode-z"]["accelerators"] == pytest.approx(2500 / 350 * 4 / 12)
    assert rows["decode-z"]["instances"] == 1


def test_a_derated_stage_needs_proportionally_more_accelerators():
    ideal = {r["group"]: r["accelerators"] for r in model().sized({"prefill": 1.0, "decode": 1.0})}
    slow = {r["group"]: r["accelerators"] for r in model().sized({"prefill": 1.0, "decode": 0.5})}
    assert slow["prefill-x"] == pytest.approx(ideal["prefill-x"])
    assert slow["decode-y"] == pytest.approx(2 * ideal["decode-y"])


def test_costed_counts_follow_the_sized_split_or_the_design():
    counts = {p.group: n for p, n in model().costed_counts(16, "rebalanced")}
    assert counts["prefill-x"] == pytest.approx(16 * 7 / 22)
    assert counts["decode-y"] == pytest.approx(16 * 15 / 22 * 8 / 12)
    assert counts["decode-z"] == pytest.approx(16 * 15 / 22 * 4 / 12)
    assert sum(counts.values()) == pytest.approx(16)
    fixed = {p.group: n for p, n in model().costed_counts(16, "fixed")}
    assert fixed == pytest.approx({"prefill-x": 4, "decode-y": 8, "decode-z": 4})
    # priced per accelerator: B200 $3, MI300X $2, Gaudi 3 $1.5 an hour
    price = {"B200": 3.0, "MI300X": 2.0, "Gaudi3": 1.5}
    usd = sum(n * price[p.accelerator] for p, n in model().costed_counts(16, "rebalanced"))
    assert usd == pytest.approx(16 * (7 / 22 * 3.0 + 15 / 22 * (8 / 12 * 2.0 + 4 / 12 * 1.5)))


def test_fixed_pools_serve_at_the_bottleneck_and_absorb_derating_in_the_spare_stage():
    m = model()
    assert m.fixed_capacity_ratio() == pytest.approx(12 / 16.8)
    total, output = m.fixed_tokens_per_s_per_accelerator()
    assert total == pytest.approx(12 * 2250 / 16)
    assert output == pytest.approx(12 * 250 / 16)
    beta = m.fixed_capacity_ratio()
    # decode slowed by 20%: its 29% spare capacity absorbs it
    assert combined_eta(1.0, 0.8, 0.25, "fixed", beta) == pytest.approx(1.0)
    # decode slowed by 40%: it becomes the bottleneck, 16.8 · 0.6 = 10.08 of 12 requests/s
    assert combined_eta(1.0, 0.6, 0.25, "fixed", beta) == pytest.approx(16.8 * 0.6 / 12)
    # balanced pools: the slower pool caps the whole, as before
    assert combined_eta(0.9, 0.7, 0.5, "fixed") == pytest.approx(0.7)


def test_rebalanced_eta_is_the_accelerator_time_weighted_harmonic_mean():
    a = model().prefill_share
    assert combined_eta(1.0, 0.5, a, "rebalanced") == pytest.approx(1 / (a + (1 - a) / 0.5))


def test_rebalanced_pools_of_different_prices_weight_each_stage_by_its_cost():
    """B200 prefill at $3, decode on MI300X at $2 and Gaudi 3 at $1.5 an hour: decode's mean
    accelerator costs (8·2 + 4·1.5)/12 = 11/6, so prefill's cost share is (7/22·3) / (7/22·3 + 15/22·11/6)
    = 21/48.5. With decode derated to 0.8 a rebalanced cluster buys 1/0.8 more decode: its cost
    grows from C_p + C_d to C_p + C_d/0.8, and CPMT by the same factor."""
    m = model()
    price = {"B200": 3.0, "MI300X": 2.0, "Gaudi3": 1.5}.get
    assert m.stage_price_usd_per_hour("decode", price) == pytest.approx(11 / 6)
    w = m.prefill_cost_share(m.prefill_share, price)
    assert w == pytest.approx(21 / 48.5)
    costed = m.costed_counts(16, "rebalanced")
    c_p = sum(n * price(p.accelerator) for p, n in costed if p.stage == "prefill")
    c_d = sum(n * price(p.accelerator) for p, n in costed if p.stage == "decode")
    assert combined_eta(1.0, 0.8, w, "rebalanced") == pytest.approx((c_p + c_d) / (c_p + c_d / 0.8))
    # one price for all: the cost share is the accelerator share, as without prices
    assert m.prefill_cost_share(m.prefill_share, lambda name: 2.0) == pytest.approx(m.prefill_share)


def test_stage_model_reads_the_run_records_and_requests():
    run = {"workload": {"duration_s": 2.0, "patterns": [
        {"name": "bg", "type": "background", "compute": None},
        {"name": "kv", "type": "disaggregated", "compute": {"pools": [
            {"stage": p.stage, "group": p.group, "accelerator": p.accelerator, "hosts": p.hosts,
             "instances": p.hosts // p.instance_hosts, "instance_hosts": p.instance_hosts,
             "tokens_per_s_per_accelerator": p.tokens_per_s_per_accelerator} for p in POOLS]}}]}}
    requests = pd.DataFrame({"prompt_tokens": [1000, 3000], "output_tokens": [200, 300]})
    m = stage_model(run, requests)
    assert m.pools == POOLS and m.pattern == "kv"
    assert (m.prompt_tokens_mean, m.output_tokens_mean) == (2000.0, 250.0)
    assert m.request_rate_per_s == pytest.approx(1.0)       # 2 requests in 2 s
    assert stage_model(run, requests.iloc[:0]) is None
    assert stage_model({"workload": {"patterns": [{"type": "disaggregated", "compute": {}}]}}, requests) is None
    assert math.isfinite(m.total_tokens_per_s_per_accelerator)
    # a run recording the profile's offered load is sized for it, not for the requests that were sent
    run["workload"]["patterns"][1]["compute"].update(
        {"requests_offered": 39, "offered_requests_per_s": 13.0, "prompt_tokens_mean": 1500.0,
         "output_tokens_mean": 300.0})
    offered = stage_model(run, requests)
    assert (offered.request_rate_per_s, offered.prompt_tokens_mean, offered.output_tokens_mean) == (13.0, 1500.0, 300.0)
    assert stage_model(run, None) == offered


def test_hosts_left_out_of_instances_serve_nothing():
    rec = {"stage": "decode", "group": "g", "accelerator": "MI300X", "hosts": 6, "instances": 1,
           "instance_hosts": 4, "tokens_per_s_per_accelerator": 700.0}
    assert Pool.from_record(rec).hosts == 4


def test_cpmt_of_a_staged_run_prices_each_pool_at_its_own_accelerator(tmp_path):
    """A run recording its stages' pools: tokens/s per accelerator, prefill share and the hourly cost
    come from the pools (hand-worked case above), each pool priced at its own accelerator's price
    (as the pricing function gives it: tier less the network share, Gaudi 3 bottom-up)."""
    from fabric.economics import CostFile, Ledger, accelerator_hourly_usd, cpmt_for_run
    from fabric.rundir.tables import write_table
    from tests.unit.test_economics import make_run
    pools = [{"stage": p.stage, "group": p.group, "accelerator": p.accelerator, "hosts": p.hosts,
              "instances": p.hosts // p.instance_hosts, "instance_hosts": p.instance_hosts,
              "tokens_per_s_per_accelerator": p.tokens_per_s_per_accelerator} for p in POOLS]
    run = make_run(tmp_path / "run", workload={
        "model": "DeepSeek-V3", "duration_s": 2.0, "prefill_compute_s": 0.5, "decode_step_compute_s": 0.04,
        "patterns": [{"name": "kv", "type": "disaggregated", "compute": {"pools": pools}}]})
    write_table(run, "requests", pd.DataFrame({
        "request_id": [0, 1], "arrival_s": [0.0, 0.1], "prefill_start_s": [0.0, 0.1], "prefill_done_s": [0.2, 0.3],
        "prompt_tokens": [1000, 3000], "output_tokens": [200, 300]}))
    r = cpmt_for_run(run)
    led = Ledger()
    price = {name: accelerator_hourly_usd(name, CostFile(), led, 1.3, 0.08)["usd_per_hour"]
             for name in ("B200", "MI300X", "Gaudi3")}
    assert r["pools"]["prefill_share"] == pytest.approx(7 / 22)
    assert r["tokens_per_s"]["ideal_total"] == pytest.approx(16 * 2250 * 21 / 22)
    assert r["cost"]["accelerators_usd_per_hour"] == pytest.approx(
        16 * (7 / 22 * price["B200"] + 15 / 22 * (8 / 12 * price["MI300X"] + 4 / 12 * price["Gaudi3"])))
    rows = {row["group"]: row for row in r["stage_pools"]["pools"]}
    assert rows["decode-z"]["accelerators"] == pytest.approx(16 * 15 / 22 * 4 / 12)
    assert rows["decode-z"]["usd_per_accelerator_hour"] == pytest.approx(price["Gaudi3"])
    assert rows["prefill-x"]["accelerators_at_target"] == pytest.approx(1.0 * 2000 / 6000)   # 1 request/s
    assert r["stage_pools"]["fit"]["mis_sized"] is True
    assert any("mis-sized" in w for w in r["warnings"])
    # a cost file that states tokens/s per accelerator replaces the stages (and their pricing)
    stated = cpmt_for_run(run, CostFile(source="c.yaml", total_tokens_per_s=4951.0, output_tokens_per_s=1072.0))
    assert stated["stage_pools"] is None
    assert stated["tokens_per_s"]["ideal_total"] == pytest.approx(16 * 4951.0)


def test_the_generator_records_the_offered_load_of_every_request():
    """hetero-prefill-decode on multi-vendor: most of its requests finish prefill after the window and
    send no KV; the offered load still counts them (so every accelerator mix is sized for the same load)."""
    from pathlib import Path

    from fabric.specs import load_fabric_spec
    from fabric.topology import build_fabric
    from fabric.workloads import generate, load_workload
    root = Path(__file__).resolve().parents[2]
    graph = build_fabric(load_fabric_spec(root / "topologies" / "multi-vendor.yaml"))
    schedule = generate(load_workload(root / "traffic" / "hetero-prefill-decode.yaml"), graph).frame
    facts = schedule.attrs["compute"]["kv"]
    n_sent = len(schedule.attrs["requests"]["request_id"])
    assert facts["requests_offered"] > n_sent > 0
    assert facts["offered_requests_per_s"] == pytest.approx(facts["requests_offered"] / 3.0)
    m = stage_model({"workload": {"patterns": [{"name": "kv", "type": "disaggregated", "compute": facts}]}}, None)
    assert m.request_rate_per_s == facts["offered_requests_per_s"]
    assert [(p.stage, p.accelerator) for p in m.pools] == [("prefill", "B200"), ("decode", "MI300X")]
