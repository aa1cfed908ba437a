"""Economics: the worked check and break-even rule of docs/economics.md, derating η from synthetic run
directories (ideal ⇒ η = 1, tails ⇒ η falls, loss ⇒ recovery penalty), network pricing, cost files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fabric import economics as E
from fabric.catalog.network import load_network_parts, price_bom
from fabric.economics.derating import workload_from_run
from fabric.errors import CostError
from fabric.probe import WIRE_OVERHEAD_BYTES
from fabric.rundir import write_table
from fabric.specs import parse_fabric_spec
from tests.rundirs import write_run

REPO = Path(__file__).resolve().parents[2]
T0_NS = 1_700_000_000_000_000_000
RATE_BPS = 400e9
IDLE_NS = 10_000
RTO_NS = 4_000_000
PAYLOAD = 4096

FABRIC = {
    "name": "test-leaf-spine", "kind": "leaf-spine", "leaves": 4, "spines": 4, "hosts_per_leaf": 4,
    "host_link_rate": "400G", "fabric_link_rate": "400G", "buffer_per_port": "8MB",
    "host_groups": [{"name": "prefill", "count": 8, "accelerator": "H100", "role": "prefill"},
                    {"name": "decode", "count": 8, "accelerator": "H100", "role": "decode"}],
}

KV_REQUESTS = 20
KV_SHARD_BYTES = 80 * 2**20          # 4 shards of 80 MiB per request
MOE_STEPS, MOE_LAYERS = 5, 2
DISPATCH_BYTES, COMBINE_BYTES = 100_000, 200_000
DECODE = [f"h{i}" for i in range(8, 16)]


def ser_s(nbytes: float) -> float:
    return nbytes * 8 / RATE_BPS


def build_schedule() -> pd.DataFrame:
    """KV: each request's 4 shards on 4 distinct prefill→decode NIC pairs, requests 50 ms apart
    (no NIC shared, so ideal = one shard's serialization + idle delay). MoE: per layer a dispatch
    then a combine among the 8 decode ranks, every rank sending to the 7 others at once (ideal
    group time = 7 back-to-back messages + idle delay)."""
    rows = []
    mid = 0
    for r in range(KV_REQUESTS):
        t = 0.05 * r
        for k in range(4):
            off = 4 * (r % 2)
            rows.append(dict(msg_id=mid, t_start_s=t, src=f"h{k + off}", dst=f"h{8 + k + off}", bytes=KV_SHARD_BYTES,
                             kind="kv", group=f"kv-r{r}", request_id=r, step=-1))
            mid += 1
    for s in range(MOE_STEPS):
        for layer in range(MOE_LAYERS):
            for kind, nbytes, dt in (("a2a_dispatch", DISPATCH_BYTES, 0.0), ("a2a_combine", COMBINE_BYTES, 0.001)):
                t = 2.0 + 0.1 * s + 0.002 * layer + dt
                for a in DECODE:
                    for b in DECODE:
                        if a != b:
                            rows.append(dict(msg_id=mid, t_start_s=t, src=a, dst=b, bytes=nbytes, kind=kind,
                                             group=f"{kind}-s{s}-l{layer}", request_id=-1, step=s))
                            mid += 1
    return pd.DataFrame(rows)


def wire_s(nbytes: float) -> float:
    """Time a message's emulated wire bytes (payload at k = 1000 plus 42 B of headers per
    packet) take at the emulated line rate: what the completion model's ideal counts."""
    emulated = max(nbytes // 1000, 1)
    packets = math.ceil(emulated / PAYLOAD)
    return (emulated + packets * 42) * 8 / (RATE_BPS / 1000)


def ideal_group_time_s(kind: str) -> float:
    """Hand-computed ideal group completion (see build_schedule): each NIC carries its messages."""
    if kind == "kv":
        return wire_s(KV_SHARD_BYTES) + IDLE_NS / 1e9
    nbytes = DISPATCH_BYTES if kind == "a2a_dispatch" else COMBINE_BYTES
    return 7 * wire_s(nbytes) + IDLE_NS / 1e9


def make_run(path: Path, kv_tail_s=None, moe_tail_s=0.0, lost: dict | None = None, workload: dict | None = None,
             with_packets: bool = True, spec=None) -> Path:
    """Write a run directory whose measured completions equal the ideal ones, plus injected tails.

    kv_tail_s : callable r -> extra seconds on request r's first shard (None: no tail)
    moe_tail_s : extra seconds on one message of every MoE group
    lost : {request_id: first_lost_seq} — that request's first shard loses its packets from
           first_lost_seq on (only the first lost one recorded as lost when with_packets)
    """
    sched = build_schedule()
    m = sched.copy()
    m["bytes_emulated"] = (m["bytes"] // 1000).clip(lower=1)        # k = 1000
    m["packets"] = np.ceil(m["bytes_emulated"] / PAYLOAD).astype(int)
    m["packets_received"] = m["packets"]
    m["t_sched_ns"] = T0_NS + (m["t_start_s"] * 1e9).round().astype("int64")
    m["t_tx_first_ns"] = m["t_sched_ns"]
    m["t_tx_last_ns"] = m["t_sched_ns"] + (m["bytes"] * 8 / RATE_BPS * 1e9).astype("int64")
    done_s = m["kind"].map(ideal_group_time_s)
    first_in_group = ~m.duplicated("group")
    extra = pd.Series(0.0, index=m.index)
    if kv_tail_s is not None:
        sel = (m["kind"] == "kv") & first_in_group
        extra[sel] = m.loc[sel, "request_id"].map(kv_tail_s)
    extra[(m["kind"] != "kv") & first_in_group] = moe_tail_s
    m["t_rx_last_ns"] = m["t_sched_ns"] + ((done_s + extra) * 1e9).round().astype("int64")
    packets_rows = []
    for r, first_seq in (lost or {}).items():
        i = m.index[(m["request_id"] == r) & first_in_group][0]
        n = int(m.at[i, "packets"])
        m.at[i, "packets_received"] = first_seq
        if with_packets:
            per = m.at[i, "bytes_emulated"] // n
            for seq in range(first_seq - 2, n):
                tx = int(m.at[i, "t_sched_ns"]) + int(seq * per * 8 / (RATE_BPS / 1000) * 1e9)
                packets_rows.append(dict(msg_id=int(m.at[i, "msg_id"]), seq=seq, src=m.at[i, "src"], dst=m.at[i, "dst"],
                                         bytes=per, tx_ns=tx, rx_ns=-1 if seq >= first_seq else tx + IDLE_NS,
                                         copies=0 if seq >= first_seq else 1, path=-1))
    tables = {"schedule": sched, "messages": m}
    if packets_rows:
        tables["packets"] = pd.DataFrame(packets_rows)
    return write_run(path, tables, spec=spec or parse_fabric_spec(FABRIC, "topologies/test.yaml"), t0_ns=T0_NS,
                     scale_k=1000.0, payload_bytes=PAYLOAD, idle_path_delay_ns=IDLE_NS,
                     loss_recovery={"model": "go-back-n", "rto_ns": RTO_NS},
                     workload=workload if workload is not None else {
                         "model": "DeepSeek-V3", "layers_emulated": MOE_LAYERS,
                         "prefill_compute_s": 0.5, "decode_step_compute_s": 0.04})


def write_costs(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------------------------
# docs/economics.md worked check and break-even rule
# --------------------------------------------------------------------------------------------

def test_worked_check_cpmt():
    assert E.cpmt_usd_per_mtok(1.55, 4951) == pytest.approx(0.087, abs=5e-4)
    assert E.cpmt_usd_per_mtok(1.55, 1072) == pytest.approx(0.40, abs=5e-3)
    assert E.cpmt_usd_per_mtok(1.55, 4951 * 0.90) == pytest.approx(0.0966, abs=1e-4)
    # per cluster it is the same: 1,024 GPUs
    assert E.cpmt_usd_per_mtok(1024 * 1.55, 1024 * 4951) == pytest.approx(E.cpmt_usd_per_mtok(1.55, 4951))


def test_worked_check_through_a_run(tmp_path):
    """1,024 H100 at the neocloud tier with a free network and an ideal fabric: $0.087 / $0.40."""
    run = make_run(tmp_path / "run")
    free = {"network": {"parts": {
        "switches": [{"name": "ethernet-64x400G", "roles": ["leaf", "spine"], "radix": 64, "speed": "400G",
                      "price_usd": 0, "power_w": 0}],
        "optics": [{"speed": "400G", "price_usd": 0, "power_w": 0}],
        "nics": [{"speed": "400G", "price_usd": 0, "power_w": 0}]}},
        "accelerator": {"count": 1024, "tier": "neocloud", "tier_network_share": 0}}  # the all-in price, whole
    r = E.cpmt_for_run(run, write_costs(tmp_path / "c.yaml", free))
    assert r["eta"]["combined"] == pytest.approx(1.0, abs=0.01)
    assert r["cost_per_hour_usd"] == pytest.approx(1024 * 1.55)
    assert r["network_share"] == 0
    assert r["cpmt_total_usd_per_mtok"] == pytest.approx(0.087, abs=1e-3)
    assert r["cpmt_output_usd_per_mtok"] == pytest.approx(0.40, abs=5e-3)


def test_break_even_rule():
    ratio = E.break_even_ratio(0.11, 0.30)
    assert round((ratio - 1) * 100, 1) == 3.3
    assert E.max_network_premium(1.033, 0.11) == pytest.approx(0.30)
    a = {"eta": {"combined": 0.90}, "cost_per_hour_usd": 100.0, "network_share": 0.11,
         "cost": {"network_usd_per_hour": 11.0}, "cpmt_total_usd_per_mtok": 1.0}
    # B: network 30% dearer (C_B = 103.3) with 3% more tokens loses; with 4% more it wins.
    b = {"eta": {"combined": 0.90 * 1.03}, "cost_per_hour_usd": 103.3, "network_share": 0.14,
         "cost": {"network_usd_per_hour": 14.3}, "cpmt_total_usd_per_mtok": 1.0}
    assert not E.compare_break_even(a, b)["b_wins"]
    b["eta"]["combined"] = 0.90 * 1.04
    out = E.compare_break_even(a, b)
    assert out["b_wins"]
    assert out["network_premium_b"] == pytest.approx(0.30)
    assert out["max_network_premium_b"] == pytest.approx(0.04 / 0.11)


def test_capital_recovery():
    assert E.capital_recovery_factor(0.0, 5) == pytest.approx(0.2)
    # annuity: 10% over 5 years
    assert E.capital_recovery_factor(0.10, 5) == pytest.approx(0.263797, rel=1e-5)
    assert E.hourly_capex_usd(8760, 1, 0.0) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Network parts and cost
# --------------------------------------------------------------------------------------------

def test_network_catalog_entries_are_sourced():
    parts = load_network_parts()
    for p in (*parts.switches, *parts.optics, *parts.nics):
        assert p.source or p.assumptions, p
    sw, units = parts.switch_for("spine", 64, "400G")
    assert (sw.radix, units) == (64, 1.0)
    assert 36_000 <= sw.price_usd <= 50_000          # docs/economics.md anchor
    assert 8 <= parts.optic_for("400G").power_w <= 9             # 400G data sheets; 15-30 W is 800G/1.6T
    # a speed-up link (500G) takes the next optic up; a scheduled fabric's roles have their own boxes
    assert parts.optic_for("500G").speed == "800G"
    assert parts.switch_for("ncp", 8, "400G")[0].name.startswith("ncp")
    assert parts.switch_for("ncf", 4, "400G")[0].name.startswith("ncf")


def test_slice_pricing_is_per_port():
    items = price_bom({"switches": [{"role": "leaf", "radix": 8, "speed": "400G", "count": 4},
                                    {"role": "leaf", "radix": 64, "speed": "400G", "count": 1}],
                       "optics": [{"speed": "400G", "count": 10}], "nics": [{"speed": "400G", "count": 3}]})
    small, full = items[0], items[1]
    assert small["unit_price_usd"] * 8 == pytest.approx(full["unit_price_usd"])
    assert items[2]["capex_usd"] == pytest.approx(10 * load_network_parts().optic_for("400G").price_usd)
    assert items[3]["count"] == 3


def test_production_network_share_in_published_range(tmp_path):
    """1,024 H100 on a 64-port 400G leaf-spine: networking 9.9–19% of cost (docs/economics.md §1)."""
    from fabric.specs import load_fabric_spec
    run = make_run(tmp_path / "run", spec=load_fabric_spec(REPO / "topologies/production-1024-h100.yaml"))
    r = E.cpmt_for_run(run)
    assert r["cost"]["accelerators"] == 1024
    assert 0.09 <= r["network_share"] <= 0.19
    switches = [i for i in r["cost"]["bom"] if i["category"] == "switch"]
    assert sum(i["count"] for i in switches) == 48
    # 48 switches + 4096 optics + 1024 NICs, amortized: capex × CRF / 8760
    capex = r["cost"]["network_capex_usd"]
    assert r["cost"]["network_capex_usd_per_hour"] == pytest.approx(capex * E.capital_recovery_factor(0.10, 5) / 8760)
    # The tier price loses its network share; the design's own network is the only one in the bill.
    share = next(i["value"] for i in r["inputs"] if i["name"] == "accelerator.tier_network_share")
    assert r["cost"]["accelerators_usd_per_hour"] == pytest.approx(1024 * 1.55 * (1 - share))


def test_accelerator_count_scales_the_designs_own_network(tmp_path):
    """A 16-host design costed as 1,024 accelerators keeps its network per accelerator (issue: 0.2% share)."""
    run = make_run(tmp_path / "run")
    small = E.cpmt_for_run(run)
    big = E.cpmt_for_run(run, write_costs(tmp_path / "c.yaml", {"accelerator": {"count": 1024}}))
    assert big["cost"]["accelerators"] == 1024
    assert big["network_share"] == pytest.approx(small["network_share"], rel=0.02)
    assert big["cost"]["network_capex_usd"] == pytest.approx(64 * small["cost"]["network_capex_usd"], rel=0.02)
    assert big["cpmt_total_usd_per_mtok"] == pytest.approx(small["cpmt_total_usd_per_mtok"], rel=0.02)


def test_two_designs_differ_exactly_by_their_networks(tmp_path):
    """Same accelerators, networks of different price: p ≠ 0 and docs/economics.md's break-even holds."""
    cheap = E.cpmt_for_run(make_run(tmp_path / "a"))
    dear_parts = {"network": {"parts": {"optics": [{"speed": "400G", "price_usd": 1280, "power_w": 8.5}]}}}
    dear = E.cpmt_for_run(make_run(tmp_path / "b"), write_costs(tmp_path / "c.yaml", dear_parts))
    assert dear["cost"]["accelerators_usd_per_hour"] == pytest.approx(cheap["cost"]["accelerators_usd_per_hour"])
    out = E.compare_break_even(cheap, dear)
    p = out["network_premium_b"]
    assert p > 0.1
    f = cheap["network_share"]
    assert out["cost_ratio"] == pytest.approx(1 + f * p)           # C_B / C_A = 1 + f·p
    assert not out["b_wins"]                                       # same η, dearer network: B loses
    assert out["max_network_premium_b"] == pytest.approx(0.0, abs=1e-9)


def test_bottom_up_accelerator_cost(tmp_path):
    run = make_run(tmp_path / "run")
    costs = write_costs(tmp_path / "c.yaml", {
        "accelerator": {"pricing": "bottom_up", "purchase_price_usd": 30000, "life_years": 4,
                        "cost_of_capital": 0.0, "power_w": 1000, "server_share_usd": 6000, "system_power_ratio": 1.5},
        "facility": {"pue": 1.5, "electricity_usd_per_kwh": 0.10, "colocation_usd_per_kw_month": 100}})
    r = E.cpmt_for_run(run, costs)
    a = r["cost"]["accelerator_pricing"]["H100"]
    assert a["capex_usd_per_hour"] == pytest.approx((30000 + 6000) / 4 / 8760)
    assert a["power_usd_per_hour"] == pytest.approx(1.5 * 1.5 * 0.10)        # 1.5 kW all-in, PUE 1.5
    assert a["colocation_usd_per_hour"] == pytest.approx(1.5 * 100 * 12 / 8760)
    names = {i["name"] for i in r["inputs"]}
    assert {"accelerator.life_years", "facility.pue", "network.life_years"} <= names
    assert all(i["source"] for i in r["inputs"])


# --------------------------------------------------------------------------------------------
# Derating
# --------------------------------------------------------------------------------------------

def test_ideal_run_has_eta_one(tmp_path):
    r = E.cpmt_for_run(make_run(tmp_path / "run"))
    for key in ("kv", "moe", "combined"):
        assert r["eta"][key] == pytest.approx(1.0, abs=0.01), key
    assert r["eta"]["tp"] is None
    assert r["eta"]["set_by"] is None
    kv = r["patterns"]["kv"]
    assert kv["requests"] == KV_REQUESTS
    assert kv["kv_completion_ideal_p99_s"] == pytest.approx(ideal_group_time_s("kv"), rel=1e-6)
    moe = r["patterns"]["moe"]
    assert moe["steps"] == MOE_STEPS
    per_step = MOE_LAYERS * (ideal_group_time_s("a2a_dispatch") + ideal_group_time_s("a2a_combine"))
    assert moe["comm_ideal_mean_s"] == pytest.approx(per_step, rel=1e-6)
    # DeepSeek-V3 has 58 MoE layers; 2 were emulated
    assert moe["layer_scale"] == pytest.approx(29.0)
    assert r["cpmt_total_usd_per_mtok"] == pytest.approx(r["cpmt_ideal"]["total_usd_per_mtok"], rel=0.01)


def test_eta_falls_monotonically_with_tail(tmp_path):
    results = []
    for i, d in enumerate([0.0, 1.5, 3.0, 6.0, 12.0]):
        run = make_run(tmp_path / f"run{i}", kv_tail_s=lambda r, d=d: d * (r + 1) / KV_REQUESTS,
                       moe_tail_s=d / 1000)
        results.append(E.cpmt_for_run(run)["eta"])
    combined = [e["combined"] for e in results]
    assert combined[0] == pytest.approx(1.0, abs=0.01)
    assert all(a > b for a, b in zip(combined, combined[1:])), combined
    kv = [e["kv"] for e in results]
    moe = [e["moe"] for e in results]
    assert all(a >= b for a, b in zip(kv, kv[1:])) and kv[-1] < kv[1] < 1.0, kv
    assert all(a > b for a, b in zip(moe, moe[1:])), moe
    for e in results[1:]:   # the pattern that sets η is the one whose ideal would recover the most
        assert e["set_by"] == max(e["token_loss"], key=e["token_loss"].get)


def test_moe_eta_matches_hand_computation(tmp_path):
    tail = 0.0005
    r = E.cpmt_for_run(make_run(tmp_path / "run", moe_tail_s=tail))
    comm = MOE_LAYERS * (ideal_group_time_s("a2a_dispatch") + ideal_group_time_s("a2a_combine"))
    ideal = 0.04 + 29 * comm
    measured = 0.04 + 29 * (comm + 2 * MOE_LAYERS * tail)
    assert r["eta"]["moe"] == pytest.approx(ideal / measured, rel=1e-6)
    # Rebalanced pools, half the design's accelerators prefill: η = 1 / (a/1 + b/η_d), a = b = 0.5.
    assert r["pools"] == {"model": "rebalanced", "prefill_share": 0.5, "decode_share": 0.5, "prefill_eta_weight": 0.5}
    assert r["eta"]["combined"] == pytest.approx(1 / (0.5 + 0.5 * measured / ideal), rel=1e-6)
    fixed = E.cpmt_for_run(tmp_path / "run", write_costs(tmp_path / "c.yaml", {"serving": {"pool_model": "fixed"}}))
    assert fixed["eta"]["combined"] == pytest.approx(ideal / measured, rel=1e-6)


def test_pools_combine_by_accelerator_time_not_token_share():
    # η_d = 0.8, η_p = 1, a = 0.42: token-share weighting gave 0.957; accelerator time gives 0.873.
    assert E.combined_eta(1.0, 0.8, 0.42, "rebalanced") == pytest.approx(1 / (0.42 + 0.58 / 0.8))
    assert round(E.combined_eta(1.0, 0.8, 0.42, "rebalanced"), 3) == 0.873
    assert E.combined_eta(1.0, 0.8, 0.42, "fixed") == 0.8
    assert E.combined_eta(1.0, 1.0, 0.42, "rebalanced") == pytest.approx(1.0)


def test_decode_tpot_counts_compute_once_and_overlap_as_a_window():
    steps = pd.DataFrame({"ideal_s": [0.010, 0.010], "measured_s": [0.020, 0.020]})
    # MoE and TP each 10 ms ideal, 20 ms measured; compute 40 ms; no overlap: one TPOT per step.
    assert E.eta_decode(0.040, 0.0, [(steps, 1.0), (steps, 1.0)]) == pytest.approx(0.060 / 0.080)
    # A window of half the compute (20 ms) hides 20 ms of communication: 40 + 0 vs 40 + 20.
    assert E.eta_decode(0.040, 0.5, [(steps, 1.0), (steps, 1.0)]) == pytest.approx(0.040 / 0.060)


def test_kv_loss_pays_recovery_penalty(tmp_path):
    clean = E.cpmt_for_run(make_run(tmp_path / "clean"))
    ttft_ideal = clean["patterns"]["kv"]["ttft_ideal_p99_s"]
    # SLO just above the ideal TTFT: a 4 ms RTO pushes a request over it.
    costs = write_costs(tmp_path / "c.yaml", {"slo": {"ttft_p99_s": ttft_ideal + 0.002}})
    assert E.cpmt_for_run(tmp_path / "clean", costs)["eta"]["kv"] == pytest.approx(1.0)

    n = int(np.ceil((KV_SHARD_BYTES // 1000) / PAYLOAD))
    first_seq = n - 5
    assert first_seq > 2
    run = make_run(tmp_path / "lossy", lost={0: first_seq, 3: first_seq, 7: first_seq, 11: first_seq, 19: first_seq})
    frame = E.message_times(run)
    rec = frame[frame["recovered"]]
    assert len(rec) == 5
    # go-back-N from the first lost packet: its send time + RTO + resend of the tail (payload and
    # headers, alone on its NICs) + idle delay
    per = (KV_SHARD_BYTES // 1000) // n
    resend_real = (n - first_seq) * per * KV_SHARD_BYTES / (KV_SHARD_BYTES // 1000)
    headers_s = (n - first_seq) * WIRE_OVERHEAD_BYTES * 8 / (RATE_BPS / 1000)
    first_tx_s = first_seq * per * 8 / (RATE_BPS / 1000)
    expected = (rec["t_start_s"] + first_tx_s + RTO_NS / 1e9 + resend_real * 8 / RATE_BPS + headers_s
                + IDLE_NS / 1e9)
    assert rec["measured_done_s"].to_numpy() == pytest.approx(expected.to_numpy(), abs=2e-9)

    r = E.cpmt_for_run(run, costs)
    assert r["patterns"]["kv"]["recovered_messages"] == 5
    assert r["eta"]["kv"] == pytest.approx(15 / 20)
    assert r["eta"]["set_by"] == "kv"
    assert r["cpmt_total_usd_per_mtok"] > clean["cpmt_total_usd_per_mtok"]


def test_loss_without_packet_records_resends_whole_message(tmp_path):
    run = make_run(tmp_path / "run", lost={0: 5}, with_packets=False)
    rec = E.message_times(run).query("recovered")
    assert len(rec) == 1
    # from t_tx_first = start; the resent bytes are the emulated ones (real ÷ k, rounded down), each
    # of its packets with its headers
    n = int(np.ceil((KV_SHARD_BYTES // 1000) / PAYLOAD))
    wire_bits = ((KV_SHARD_BYTES // 1000) + n * WIRE_OVERHEAD_BYTES) * 8
    expected = wire_bits / (RATE_BPS / 1000) + RTO_NS / 1e9 + IDLE_NS / 1e9
    assert float(rec["measured_done_s"].iloc[0] - rec["t_start_s"].iloc[0]) == pytest.approx(expected, rel=1e-9)


def test_missing_fabric_in_run_json_is_a_clear_error(tmp_path):
    from fabric.errors import RunDirError
    run = make_run(tmp_path / "run")
    data = json.loads((run / "run.json").read_text())
    del data["topology"]
    (run / "run.json").write_text(json.dumps(data))
    with pytest.raises(RunDirError, match="key 'topology' is missing"):
        E.cpmt_for_run(run)


# --------------------------------------------------------------------------------------------
# Cost files
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, key, words", [
    ({"accelerator": {"price_per_hour_usd": -1.0}}, "accelerator.price_per_hour_usd", "at least 0"),
    ({"accelerator": {"name": "H900"}}, "accelerator.name", "unknown accelerator"),
    ({"accelerator": {"tier": "spot"}}, "accelerator.tier", "hyperscaler"),
    ({"network": {"parts": {"switches": [{"name": "x", "roles": ["leaf"], "radix": 64, "speed": "400G",
                                          "power_w": 100}]}}}, "network.parts.switches[0].price_usd", "required"),
    ({"network": {"parts": {"optics": [{"speed": "400G", "price_usd": -5, "power_w": 10}]}}},
     "network.parts.optics[0].price_usd", "at least 0"),
    ({"facility": {"pew": 1.2}}, "facility.pew", "unknown key"),
    ({"acelerator": {}}, "acelerator", "unknown key"),
    ({"accelerator": {"name": "Trainium2", "pricing": "bottom_up"}}, "accelerator.purchase_price_usd", "required"),
    ({"serving": {"total_tokens_per_s_per_accelerator": 100, "output_tokens_per_s_per_accelerator": 200}},
     "serving.output_tokens_per_s_per_accelerator", "cannot exceed"),
])
def test_bad_cost_files_name_file_and_key(tmp_path, data, key, words):
    path = write_costs(tmp_path / "bad.yaml", data)
    with pytest.raises(CostError) as info:
        E.load_costs(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}: "), msg
    assert words in msg


def test_an_accelerator_without_a_tier_price_is_priced_bottom_up_and_says_so(tmp_path):
    """Gaudi 3 has no public hourly market: under the default tier pricing it costs what bottom-up
    pricing gives (purchase, server share, power, colocation), with a warning, instead of refusing
    every design that holds one."""
    run = make_run(tmp_path / "run")
    tier = E.cpmt_for_run(run, write_costs(tmp_path / "t.yaml", {"accelerator": {"name": "Gaudi3"}}))
    bottom_up = E.cpmt_for_run(run, write_costs(tmp_path / "b.yaml", {"accelerator": {"name": "Gaudi3",
                                                                                        "pricing": "bottom_up"}}))
    a, b = tier["cost"]["accelerator_pricing"]["Gaudi3"], bottom_up["cost"]["accelerator_pricing"]["Gaudi3"]
    assert a["pricing"] == "bottom_up" and a["usd_per_hour"] == pytest.approx(b["usd_per_hour"], rel=1e-12)
    assert any("Gaudi3 has no 'neocloud' hourly price" in w for w in tier["warnings"])


def test_example_cost_file_loads_and_matches_defaults(tmp_path):
    costs = E.load_costs(REPO / "costs.example.yaml")
    assert costs.tier == "neocloud"
    r = E.cpmt_for_run(make_run(tmp_path / "run"), costs)
    d = E.cpmt_for_run(tmp_path / "run")
    assert r["cpmt_total_usd_per_mtok"] == pytest.approx(d["cpmt_total_usd_per_mtok"], rel=1e-9)
    assert math.isfinite(r["cpmt_output_usd_per_mtok"])


def test_message_missing_from_records_is_charged_as_lost(tmp_path):
    """A scheduled message with no row in messages.parquet was never delivered: recovery model."""
    run = make_run(tmp_path / "run")
    m = pd.read_parquet(run / "messages.parquet")
    write_table(run, "messages", m[m["msg_id"] != 0])
    frame = E.message_times(run)
    row = frame[frame["msg_id"] == 0].iloc[0]
    assert bool(row["recovered"])
    expected = ser_s(KV_SHARD_BYTES) + RTO_NS / 1e9 + IDLE_NS / 1e9
    assert row["measured_done_s"] - row["t_start_s"] == pytest.approx(expected, rel=1e-9)
    # the others keep exact (integer-ns) measured times
    others = frame[frame["msg_id"] != 0]
    assert not others["recovered"].any()
    kv = others[others["kind"] == "kv"]
    assert (kv["measured_done_s"] - kv["t_start_s"]).to_numpy() == pytest.approx(ideal_group_time_s("kv"), abs=2e-9)


def test_workload_facts_from_patterns_and_profile_path(tmp_path):
    facts = workload_from_run({"workload": {"model": {"name": "DeepSeek-V3"},
                                               "patterns": [{"type": "moe_decode", "layers_emulated": 4},
                                                            {"type": "allreduce", "layers_emulated": 8}]}})
    assert facts["model"] == "DeepSeek-V3"
    assert (facts["moe_layers_emulated"], facts["tp_layers_emulated"]) == (4, 8)
    run = make_run(tmp_path / "run", workload={"model": "DeepSeek-V3", "moe_layers_emulated": 4,
                                               "prefill_compute_s": 0.5, "decode_step_compute_s": 0.04})
    assert E.cpmt_for_run(run)["patterns"]["moe"]["layer_scale"] == pytest.approx(58 / 4)
    # nothing stated: all layers assumed emulated, and the source says so
    run = make_run(tmp_path / "run2", workload={})
    r = E.cpmt_for_run(run)
    assert r["patterns"]["moe"]["layer_scale"] == 1.0
    assert "all layers assumed emulated" in {i["name"]: i for i in r["inputs"]}["moe.layer_scale"]["source"]


# --------------------------------------------------------------------------------------------
# Sensitivity
# --------------------------------------------------------------------------------------------

def test_sensitivity_moves_cpmt_by_each_inputs_share(tmp_path):
    run = make_run(tmp_path / "run", moe_tail_s=0.001)
    base = E.cpmt_for_run(run)
    t = E.cpmt_sensitivity(run)
    assert t["base"] == pytest.approx(base["cpmt_total_usd_per_mtok"])
    swings = {s["input"]: s for s in t["swings"]}
    # ±20% on the accelerators' price moves CPMT by ±20% of the accelerators' share of C_hour.
    acc, c = base["cost"]["accelerators_usd_per_hour"], base["cost_per_hour_usd"]
    price = swings["accelerator price per hour"]
    assert price["figure_high"] / t["base"] == pytest.approx(1 + 0.2 * acc / c, rel=1e-6)
    assert price["figure_low"] / t["base"] == pytest.approx(1 - 0.2 * acc / c, rel=1e-6)
    # Baseline tokens/s: CPMT ∝ 1 / rate.
    rate = swings["baseline tokens/s per accelerator"]
    assert rate["figure_high"] / t["base"] == pytest.approx(1 / 1.2, rel=1e-6)
    # A MoE tail: hiding communication behind compute lowers CPMT; sorted widest first.
    assert swings["overlap (share of compute hiding communication)"]["figure_high"] < t["base"]
    spreads = [s["spread"] for s in t["swings"]]
    assert spreads == sorted(spreads, reverse=True)


def test_sensitivity_of_a_ratio_cancels_shared_prices(tmp_path):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b", moe_tail_s=0.001)
    t = E.cpmt_sensitivity(b, baseline_dir=a)
    swings = {s["input"]: s for s in t["swings"]}
    assert t["figure"] == "cpmt_ratio" and t["base"] > 1          # the tail makes B dearer per token
    # Same accelerators and network in both: their prices move both CPMTs alike.
    assert swings["accelerator price per hour"]["spread"] == pytest.approx(0.0, abs=1e-9)
    assert swings["overlap (share of compute hiding communication)"]["spread"] > 0


def test_eta_interval_brackets_the_estimate_and_shrinks_to_a_point_when_every_step_agrees(tmp_path):
    ideal = E.cpmt_for_run(make_run(tmp_path / "ideal"))
    lo, hi = ideal["eta_interval"]["combined"]
    assert lo == pytest.approx(1.0, abs=0.01) and hi == pytest.approx(1.0, abs=0.01)
    tail = E.cpmt_for_run(make_run(tmp_path / "tail", kv_tail_s=lambda r: 2.0 if r % 3 == 0 else 0.0))
    lo, hi = tail["eta_interval"]["kv"]
    assert lo < tail["eta"]["kv"] < hi                     # requests differ: the estimate has a spread
    lo, hi = tail["cpmt_total_interval"]
    assert lo < tail["cpmt_total_usd_per_mtok"] < hi
    assert tail["eta_interval"]["confidence"] == 0.95


def test_compute_comes_from_what_the_generator_used(tmp_path):
    """Decode step and prefill rate as the schedule was built (per model, per accelerator, TP group)."""
    workload = {"model": "DeepSeek-V3", "patterns": [
        {"type": "disaggregated", "name": "kv", "layers_emulated": 0,
         "compute": {"prefill_tokens_per_s": 50_000.0, "decode_step_compute_s": 0.02, "source": "test"}},
        {"type": "moe_decode", "name": "moe", "layers_emulated": MOE_LAYERS,
         "compute": {"decode_step_compute_s": 0.03, "source": "test catalog"}}]}
    r = E.cpmt_for_run(make_run(tmp_path / "run", workload=workload))
    inputs = {i["name"]: i for i in r["inputs"]}
    decode = inputs["serving.decode_step_compute_s"]
    assert decode["value"] == 0.03 and "'moe'" in decode["source"]           # the MoE pattern's step first
    from fabric.catalog import model
    prompt_tokens = 4 * KV_SHARD_BYTES / model("DeepSeek-V3").kv_bytes_per_token
    assert inputs["serving.prefill_compute_s"]["value"] == pytest.approx(prompt_tokens / 50_000.0)
    assert r["patterns"]["moe"]["compute_s"] == 0.03
    assert not any("back-solved" in w for w in r["warnings"])


# --------------------------------------------------------------------------------------------
# Energy
# --------------------------------------------------------------------------------------------

FREE_NETWORK = {"switches": [{"name": "ethernet-64x400G", "roles": ["leaf", "spine"], "radix": 64, "speed": "400G",
                              "price_usd": 0, "power_w": 0}],
                "optics": [{"speed": "400G", "price_usd": 0, "power_w": 0}],
                "nics": [{"speed": "400G", "price_usd": 0, "power_w": 0}]}


def test_energy_hand_worked_with_tier_pricing(tmp_path):
    """16 accelerators × 1,000 W board × 1.5 all-in = 24 kW, a network drawing nothing, PUE 1.5 →
    36 kW of facility power; an ideal fabric serves 16 × 4,951 tokens/s = 79,216 tokens/s, i.e.
    79,216 × 3,600 ÷ 36 = 7,921,600 tokens per kWh and 79,216 ÷ 0.036 = 2,200,444 tokens/s per MW.
    The price is a tier price: the all-in power ratio applies to the energy all the same."""
    run = make_run(tmp_path / "run")
    costs = write_costs(tmp_path / "c.yaml", {
        "accelerator": {"power_w": 1000, "system_power_ratio": 1.5},
        "facility": {"pue": 1.5}, "network": {"parts": FREE_NETWORK}})
    r = E.cpmt_for_run(run, costs)
    assert r["cost"]["accelerator_pricing"]["H100"]["pricing"] == "tier"
    en = r["energy"]
    assert en["accelerators_power_kw"] == pytest.approx(24.0)
    assert en["network_power_kw"] == 0
    assert en["facility_power_kw"] == pytest.approx(36.0)
    assert r["eta"]["combined"] == pytest.approx(1.0, abs=0.01)
    assert en["tokens_per_kwh"] == pytest.approx(7_921_600, rel=0.01)
    assert en["tokens_per_s_per_mw"] == pytest.approx(2_200_444, rel=0.01)
    # exactly: at the measured η
    served = r["tokens_per_s"]["served_total"]
    assert en["tokens_per_kwh"] == pytest.approx(served * 3600 / 36.0, rel=1e-12)
    assert en["tokens_per_s_per_mw"] == pytest.approx(served / 0.036, rel=1e-12)
    inputs = {i["name"]: i for i in r["inputs"]}
    assert inputs["accelerator.H100.power_w"]["value"] == 1000 and "cost file" in inputs["accelerator.H100.power_w"]["source"]
    assert inputs["accelerator.system_power_ratio"]["value"] == 1.5
    assert inputs["network.power_w"]["value"] == 0


def test_energy_defaults_use_the_catalog_board_power_and_the_dgx_ratio(tmp_path):
    """H100: 700 W × 10.2 kW / (8 × 700 W) = 1,275 W all-in, × 16 = 20.4 kW; + the design's network;
    × PUE 1.3. A tail that halves η halves the tokens per kWh."""
    r = E.cpmt_for_run(make_run(tmp_path / "run"))
    net_w = r["cost"]["network_power_w"]
    assert net_w > 0
    en = r["energy"]
    assert en["accelerators_power_kw"] == pytest.approx(20.4)
    assert en["facility_power_kw"] == pytest.approx((20_400 + net_w) * 1.3 / 1000)
    inputs = {i["name"]: i for i in r["inputs"]}
    assert inputs["accelerator.system_power_ratio"]["value"] == pytest.approx(10200 / 5600)
    assert "DGX H100" in inputs["accelerator.system_power_ratio"]["source"]
    assert inputs["network.power_w"]["value"] == pytest.approx(net_w)
    slow = E.cpmt_for_run(make_run(tmp_path / "slow", moe_tail_s=0.002))
    assert slow["energy"]["facility_power_kw"] == pytest.approx(en["facility_power_kw"])
    assert slow["energy"]["tokens_per_kwh"] / en["tokens_per_kwh"] == pytest.approx(
        slow["eta"]["combined"] / r["eta"]["combined"], rel=1e-9)
    assert slow["energy"]["tokens_per_kwh"] < 0.9 * en["tokens_per_kwh"]


def test_energy_without_a_board_power_is_left_out_with_a_note():
    from fabric.economics.cpmt import energy_figures
    led = E.Ledger()
    en = energy_figures([("decode", 8.0, "MysteryChip")], {"MysteryChip": None}, 500.0, 1.3, 1000.0, led)
    assert en["tokens_per_kwh"] is None and en["facility_power_kw"] is None
    assert "MysteryChip" in en["note"] and "accelerator.power_w" in en["note"]
    # two groups, one network: 8 × 100 W + 2 × 50 W + 100 W = 1 kW IT, PUE 2 → 2 kW; 1,000 tokens/s
    en = energy_figures([("a", 8.0, "X"), ("b", 2.0, "Y")], {"X": 100.0, "Y": 50.0}, 100.0, 2.0, 1000.0, led)
    assert en["facility_power_kw"] == pytest.approx(2.0)
    assert en["tokens_per_kwh"] == pytest.approx(1000 * 3600 / 2.0)
    assert en["tokens_per_s_per_mw"] == pytest.approx(1000 / 0.002)


def test_per_pattern_eta_intervals_and_cpmt_output_interval(tmp_path):
    r = E.cpmt_for_run(make_run(tmp_path / "run", moe_tail_s=0.001, kv_tail_s=lambda q: 2.0 if q % 3 == 0 else 0.0))
    iv = r["eta_interval"]
    lo, hi = iv["moe"]
    assert lo <= r["eta"]["moe"] <= hi and hi < 1.0       # every step carries the tail: below 1 throughout
    assert iv["tp"] is None                                # no all-reduce in the run
    ideal_out = r["cpmt_ideal"]["output_usd_per_mtok"]
    c_lo, c_hi = iv["combined"]
    assert r["cpmt_output_interval"] == pytest.approx([ideal_out / c_hi, ideal_out / c_lo])
    assert r["cpmt_output_interval"][0] < r["cpmt_output_usd_per_mtok"] < r["cpmt_output_interval"][1]


# --------------------------------------------------------------------------------------------
# Queueing before prefill, and decode vs prefill all-reduces
# --------------------------------------------------------------------------------------------

def test_queueing_before_prefill_is_part_of_ttft(tmp_path):
    """20 requests, prefill 0.5 s (stated), TTFT SLO 2 s (DeepSeek-V3). Every 4th request waited
    1.6 s for a prefill instance: it misses the SLO even on the ideal fabric (attainment 15/20).
    Odd requests' KV arrives 1.6 s late: they miss on the measured fabric, so only requests 2, 6,
    10, 14, 18 meet it there (5/20). η_KV = 0.25 / 0.75 = 1/3; without the queue it was 0.5."""
    run = make_run(tmp_path / "run", kv_tail_s=lambda r: 1.6 if r % 2 else 0.0)
    assert E.cpmt_for_run(run)["eta"]["kv"] == pytest.approx(0.5)
    arrival = 0.05 * np.arange(KV_REQUESTS) - np.where(np.arange(KV_REQUESTS) % 4 == 0, 2.1, 0.5)
    write_table(run, "requests", pd.DataFrame({
        "request_id": np.arange(KV_REQUESTS), "arrival_s": arrival,
        "prefill_start_s": 0.05 * np.arange(KV_REQUESTS) - 0.5, "prefill_done_s": 0.05 * np.arange(KV_REQUESTS),
        "prompt_tokens": 1000, "output_tokens": 100}))
    r = E.cpmt_for_run(run)
    kv = r["patterns"]["kv"]
    assert (kv["attainment_ideal"], kv["attainment_measured"]) == (pytest.approx(0.75), pytest.approx(0.25))
    assert r["eta"]["kv"] == pytest.approx(1 / 3)
    assert kv["queue_before_prefill_mean_s"] == pytest.approx(5 * 1.6 / 20)
    inputs = {i["name"]: i for i in r["inputs"]}
    assert "requests.parquet" in inputs["serving.queue_before_prefill_s"]["source"]
    # A stated prefill compute wins over the timeline's; without a statement the timeline's is used.
    assert inputs["serving.prefill_compute_s"]["value"] == 0.5


def _allreduce_run(path: Path, prefill_tail_s: float) -> Path:
    """Two TP4 all-reduce patterns on h0..h3 (ring: h_i → h_i+1), one group per step each: a
    decode one (4 of 126 layers emulated, 50 ms compute per step) and a prefill one (8 emulated,
    1 s of compute per chunk) whose every message arrives ``prefill_tail_s`` late."""
    rows, mid = [], 0
    for name, t0, nbytes in (("tp-decode", 0.0, 65_536), ("tp-prefill", 0.5, 1_048_576)):
        for step in range(6):
            for i in range(4):
                rows.append(dict(msg_id=mid, t_start_s=t0 + 0.01 * step, src=f"h{i}", dst=f"h{(i + 1) % 4}",
                                 bytes=nbytes, kind="allreduce", group=f"{name}/g0/s{step}", request_id=-1, step=step))
                mid += 1
    sched = pd.DataFrame(rows)
    m = sched.copy()
    m["bytes_emulated"] = m["bytes"]
    m["packets"] = np.ceil(m["bytes"] / PAYLOAD).astype(int)
    m["packets_received"] = m["packets"]
    m["t_sched_ns"] = T0_NS + (m["t_start_s"] * 1e9).round().astype("int64")
    m["t_tx_first_ns"] = m["t_sched_ns"]
    wire_ns = ((m["bytes"] + m["packets"] * 42) * 8 / RATE_BPS * 1e9).round().astype("int64")
    m["t_tx_last_ns"] = m["t_sched_ns"] + wire_ns
    tail = np.where(m["group"].str.startswith("tp-prefill"), prefill_tail_s * 1e9, 0).astype("int64")
    m["t_rx_last_ns"] = m["t_sched_ns"] + wire_ns + IDLE_NS + tail
    workload = {"model": "Llama-3.1-405B", "patterns": [
        {"type": "allreduce", "name": "tp-decode", "layers_emulated": 4, "phase": "decode",
         "compute": {"decode_step_compute_s": 0.05, "source": "test"}},
        {"type": "allreduce", "name": "tp-prefill", "layers_emulated": 8, "phase": "prefill",
         "compute": {"prefill_step_compute_s": 1.0, "source": "test"}}]}
    return write_run(path, {"schedule": sched, "messages": m}, spec=parse_fabric_spec(FABRIC, "topologies/test.yaml"),
                     t0_ns=T0_NS, scale_k=1.0, payload_bytes=PAYLOAD, idle_path_delay_ns=IDLE_NS,
                     loss_recovery={"model": "go-back-n", "rto_ns": RTO_NS}, workload=workload)


def test_decode_and_prefill_allreduces_are_separate_steps_with_their_own_layers(tmp_path):
    """A late prefill all-reduce slows the prefill chunk, not the decode TPOT; each pattern scales
    by its own emulated layers (126/4 and 126/8, not the first pattern's for both)."""
    r = E.cpmt_for_run(_allreduce_run(tmp_path / "run", prefill_tail_s=0.002))
    tp, pre = r["patterns"]["tp"], r["patterns"]["tp_prefill"]
    assert (tp["layer_scale"], pre["layer_scale"]) == (126 / 4, 126 / 8)
    assert (tp["steps"], pre["steps"]) == (6, 6)
    assert tp["eta"] == pytest.approx(1.0, abs=1e-4)
    assert tp["comm_ideal_mean_s"] == pytest.approx((65_536 + 16 * 42) * 8 / RATE_BPS + IDLE_NS / 1e9, rel=0.01)
    ci = pre["comm_ideal_mean_s"]
    expected = (1.0 + 15.75 * ci) / (1.0 + 15.75 * (ci + 0.002))
    assert pre["eta"] == pytest.approx(expected, rel=1e-4)
    e = r["eta"]
    assert e["prefill_pool"] == pytest.approx(expected, rel=1e-4) and e["decode_pool"] == pytest.approx(1, abs=1e-4)
    a = r["pools"]["prefill_share"]
    assert e["combined"] == pytest.approx(1 / (a / e["prefill_pool"] + (1 - a) / e["decode_pool"]), rel=1e-9)
    assert e["set_by"] == "tp_prefill"
    lo, hi = r["eta_interval"]["prefill_pool"]
    assert lo <= e["prefill_pool"] <= hi


def test_a_lost_message_is_resent_at_its_own_bottleneck_nic(tmp_path):
    """Decode hosts at 200G in a design whose prefill hosts have 400G: a never-delivered KV shard
    (prefill → decode) is charged its bytes at 200G, not at the design's fastest rate."""
    mixed = {**FABRIC, "host_groups": [{**FABRIC["host_groups"][0]},
                                       {**FABRIC["host_groups"][1], "nic_rate": "200G"}]}
    run = make_run(tmp_path / "run", spec=parse_fabric_spec(mixed, "topologies/test.yaml"))
    m = pd.read_parquet(run / "messages.parquet")
    write_table(run, "messages", m[m["msg_id"] != 0])
    row = E.message_times(run).query("msg_id == 0").iloc[0]
    expected = KV_SHARD_BYTES * 8 / 200e9 + RTO_NS / 1e9 + IDLE_NS / 1e9
    assert row["measured_done_s"] - row["t_start_s"] == pytest.approx(expected, rel=1e-9)
    assert row["ideal_done_s"] - row["t_start_s"] == pytest.approx(KV_SHARD_BYTES * 8 / 200e9 + IDLE_NS / 1e9)
