"""Spraying and the scheduled fabric (VOQs + credit scheduler), emulated and compared with ECMP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fabric.analysis.run_metrics import write_metrics
from fabric.probe import WIRE_OVERHEAD_BYTES
from fabric.specs import parse_fabric_spec
from tests.emulation.conftest import messages, small_spec

K = 1000.0


def noise_tolerance_us(*run_dirs) -> float:
    """Slack for what the emulator itself adds, from what this machine measured: twice the worst
    idle-fabric probe p99 (the noise floor) of the runs compared, plus half a packet time on a
    fabric link at this scale (a victim packet may find an incast packet in service on a sprayed
    link it shares; packets are k times coarser than on the real fabric). It stays an order of
    magnitude below what a victim sharing a congested ECMP path suffers."""
    worst = 0.0
    for run_dir in run_dirs:
        noise = pd.read_parquet(run_dir / "noise.parquet")
        got = noise[noise.rx_ns >= 0]
        worst = max(worst, float(np.percentile((got.rx_ns - got.tx_ns) / 1e3, 99)))
    half_packet_us = (4096 + WIRE_OVERHEAD_BYTES) * 8 / (100e9 / K) * 1e6 / 2
    return 2 * worst + half_packet_us


def scheduled_spec(**overrides):
    data = {"kind": "scheduled", "name": "test-scheduled", "ncps": 4, "ncfs": 2, "hosts_per_ncp": 2,
            "host_link_rate": "100G", "fabric_link_rate": "100G", "buffer_per_port": "16MB",
            "voq_depth": "512MB", "scheduler": {"tick": "5ms"}}
    data.update(overrides)
    return parse_fabric_spec(data, "<test-scheduled>")


def ecmp_spec():
    return parse_fabric_spec({"kind": "leaf-spine", "name": "test-ecmp", "leaves": 4, "spines": 2,
                              "hosts_per_leaf": 2, "host_link_rate": "100G", "fabric_link_rate": "100G",
                              "buffer_per_port": "16MB", "load_balancing": {"mode": "ecmp", "hash_seed": 7}},
                             "<test-ecmp>")


def test_spray_splits_one_flow_evenly_over_spines_and_reports_reordering(emulate):
    spec = small_spec(spines=4, leaves=2, hosts_per_leaf=4, load_balancing={"mode": "spray"})
    run_dir, _, packets, _, links = emulate(spec, messages([(0.0, "h4", "h0", 100e9 / 8 * 1.0, "background")]),
                                            scale=K)
    got = packets[packets.copies > 0]
    shares = got.path.value_counts(normalize=True).sort_index()
    assert list(shares.index) == [0, 1, 2, 3]
    print(f"\nspray: spine shares {shares.round(4).to_dict()}")
    assert np.all(np.abs(shares.to_numpy() / shares.mean() - 1) < 0.02), shares.to_dict()
    # The counters agree with the per-packet paths: every leaf1 uplink carried a quarter.
    last = links[links.t_ns == links.t_ns.max()]
    up = last[(last.node == "leaf1") & (last.kind == "fabric")].tx_bytes.to_numpy()
    assert np.all(np.abs(up / up.mean() - 1) < 0.02), up
    metrics = write_metrics(run_dir)
    reorder = metrics["classes"]["background"]["reorder"]
    assert reorder["n_received"] == len(got)
    assert {"ratio", "max_extent", "n_reordered_ge3"} <= set(reorder)
    assert metrics["spine_imbalance"]["max_over_mean"] < 1.02


def _incast_and_victim():
    size = 100e9 / 8 * 0.8  # each incast sender at line rate for 0.8 s
    rows = [(0.2, s, "h0", size, "incast") for s in ("h2", "h3", "h4", "h6")]
    rows += [(0.005 * i, "h5", "h1", 8 * 4096 * K, "victim") for i in range(300)]
    return messages(rows)


def _victim_p99_us(packets: pd.DataFrame, msgs: pd.DataFrame, window_s: tuple[float, float]) -> float:
    ids = msgs[msgs.kind == "victim"].msg_id
    v = packets[packets.msg_id.isin(ids) & (packets.copies > 0)]
    t0 = msgs.t_sched_ns.min()
    t = (v.tx_ns - t0) / 1e9
    sel = v[(t >= window_s[0]) & (t < window_s[1])]
    assert len(sel) > 100
    # Delay beyond the packets' own serialization (the same for every victim packet): what queues add.
    return float(np.percentile((sel.rx_ns - sel.ser_ns - sel.tx_ns) / 1e3, 99))


def _victim_alone():
    return messages([(0.005 * i, "h5", "h1", 8 * 4096 * K, "victim") for i in range(300)])


def test_scheduled_fabric_absorbs_incast_in_voqs_and_isolates_the_victim(emulate):
    spec = scheduled_spec()
    idle_dir, _, idle_packets, idle_msgs, _ = emulate(spec, _victim_alone(), scale=K)
    idle_p99 = _victim_p99_us(idle_packets, idle_msgs, (0.25, 1.0))
    run_dir, run_json, packets, msgs, links = emulate(spec, _incast_and_victim(), scale=K)
    tolerance_us = noise_tolerance_us(idle_dir, run_dir)
    # No drops on any fabric link or egress port: only the ingress VOQs hold (and drop) the excess.
    last = links[links.t_ns == links.t_ns.max()]
    assert last[(last.kind != "voq") & (last.drops > 0)].empty, last[last.drops > 0]
    voq_h0 = last[(last.kind == "voq") & (last.peer == "h0")]
    assert voq_h0.drops.sum() > 0
    assert links[(links.kind == "voq") & (links.peer == "h0")].backlog_bytes.max() > 0
    # Even spraying over the NCFs.
    fabric_up = last[(last.kind == "fabric") & last.node.str.startswith("ncp")].groupby("peer").tx_bytes.sum()
    assert np.all(np.abs(fabric_up / fabric_up.mean() - 1) < 0.05), fabric_up.to_dict()
    # The victim to another port on the congested NCP keeps its idle delay: within 2x, plus the
    # emulator's own software noise, which the busy NCP namespace adds.
    during_p99 = _victim_p99_us(packets, msgs, (0.25, 1.0))
    print(f"\nscheduled: victim p99 {during_p99:.0f} us during incast vs {idle_p99:.0f} us idle; "
          f"VOQ drops to h0 {voq_h0.drops.tolist()}; NCF shares {(fabric_up / fabric_up.sum()).round(4).to_dict()}")
    assert during_p99 <= 2 * idle_p99 + tolerance_us, \
        f"victim p99 {during_p99:.0f} us during incast vs {idle_p99:.0f} us idle"
    # Scheduler fidelity: grants to a port never exceed its capacity; ticks are recorded.
    ticks = pd.read_parquet(run_dir / "scheduler.parquet")
    capacity = 100e9 / K
    assert ticks.groupby(["t_ns", "dst"]).granted_bps.sum().max() <= capacity
    assert run_json["scheduler"]["ticks"] > 100
    assert run_json["scheduler"]["tick_interval_p50_ns"] == pytest.approx(5e6, rel=0.3)
    metrics = write_metrics(run_dir)
    assert set(metrics["spine_imbalance"]["shares"]) == {"ncf0", "ncf1"}


def test_ecmp_victim_sharing_a_congested_path_suffers(emulate):
    spec = ecmp_spec()
    idle_dir, _, idle_packets, idle_msgs, _ = emulate(spec, _victim_alone(), scale=K, hash_seed=7)
    idle_p99 = _victim_p99_us(idle_packets, idle_msgs, (0.25, 1.0))
    run_dir, _, packets, msgs, links = emulate(spec, _incast_and_victim(), scale=K, hash_seed=7)
    tolerance_us = noise_tolerance_us(idle_dir, run_dir)
    victim_path = packets[packets.msg_id.isin(msgs[msgs.kind == "victim"].msg_id) & (packets.copies > 0)].path
    incast_paths = set(packets[packets.msg_id.isin(msgs[msgs.kind == "incast"].msg_id) & (packets.copies > 0)].path)
    assert set(victim_path) & incast_paths, "with this seed the victim should share a spine with the incast"
    during_p99 = _victim_p99_us(packets, msgs, (0.25, 1.0))
    print(f"\nECMP victim p99: {during_p99:.0f} us during incast vs {idle_p99:.0f} us idle")
    assert during_p99 > 2 * idle_p99 + tolerance_us, \
        f"victim p99 {during_p99:.0f} us during incast vs {idle_p99:.0f} us idle"
    last = links[links.t_ns == links.t_ns.max()]
    assert last[(last.kind == "fabric") & (last.drops > 0)].shape[0] > 0, "ECMP collisions should drop in the fabric"


def test_a_run_whose_scheduler_falls_behind_is_not_trusted(emulate):
    # A 100 us tick with 64 VOQs is beyond a 2-vCPU machine: the scheduler falls behind.
    spec = scheduled_spec(ncps=4, hosts_per_ncp=4, scheduler={"tick": "100us"})
    run_dir, run_json, _, _, _ = emulate(spec, messages([(0.0, "h4", "h0", 100e9 / 8 * 0.5, "background")]),
                                         scale=K)
    assert run_json["scheduler"]["tick_late_p99_ns"] > 0.5 * 100_000
    fidelity = write_metrics(run_dir)["fidelity"]
    assert fidelity["verdict"] in ("degraded", "untrusted")
    assert "scheduler_lateness" in fidelity["failing"] + fidelity["warning"]
