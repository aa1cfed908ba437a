"""The simulator's plan and runner without ns-3: invariants of the arrays, estimates, refusals, cleanup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fabric.errors import SpecError
from fabric.probe import DEFAULT_PAYLOAD_BYTES, WIRE_OVERHEAD_BYTES
from fabric.replay import noise_probe_schedule
from fabric.schedule import normalize
from fabric.sim import runner
from fabric.sim.model import LEAD_NS, PPP_HEADER_BYTES, SIM_HEADER_BYTES, build_plan
from fabric.sim.runner import SimOptions, estimate, packet_sample, run
from fabric.topology import build_fabric
from tests.sim import scenarios as S


@pytest.fixture
def ecmp(tmp_path):
    spec = S.load_design(tmp_path, S.LEAF_SPINE)
    return spec, build_fabric(spec)


def plan_of(spec, g, schedule, k=1.0):
    return build_plan(spec, g, normalize(schedule), k, DEFAULT_PAYLOAD_BYTES, 7, 0.01, 1e-4)


def test_frames_carry_the_wire_overhead():
    assert SIM_HEADER_BYTES + PPP_HEADER_BYTES == WIRE_OVERHEAD_BYTES


def test_plan_links_ports_and_routes(ecmp):
    spec, g = ecmp
    plan = plan_of(spec, g, S.leaf_spine_schedule())
    assert len(plan.link_ids) == g.number_of_edges()
    assert (plan.roles[plan.link_a] <= plan.roles[plan.link_b]).all()  # oriented from the lower tier
    ports = np.bincount(np.concatenate([plan.link_a, plan.link_b]), minlength=len(plan.node_names))
    assert (ports[plan.roles == 0] == 1).all()  # a host has one NIC
    edges = plan.n_edges
    groups = plan.route_len.reshape(len(plan.node_names), edges)
    leaves = np.flatnonzero(plan.roles == 1)
    spines = np.flatnonzero(plan.roles == 2)
    for leaf in leaves:
        own = plan.role_index[leaf]
        assert groups[leaf, own] == 0  # hosts of its own are directly attached
        assert all(groups[leaf, e] == spec.cores * spec.links_per_pair for e in range(edges) if e != own)
    assert (groups[spines] == spec.links_per_pair).all()
    assert (groups[plan.roles == 0] == 0).all()
    host_end = plan.roles[plan.link_a] == 0
    assert (plan.queue_b_bytes[host_end] == S.BUFFER_BYTES).all()  # the leaf's port towards a host
    assert (plan.link_delay_ps == S.LINK_DELAY_NS * 1000).all()


def test_plan_records_and_times(ecmp):
    spec, g = ecmp
    schedule = normalize(S.leaf_spine_schedule())
    plan = plan_of(spec, g, schedule)
    probes = len(noise_probe_schedule(g, 0.6))
    assert plan.n_probes == probes
    packets = -(-schedule["bytes"].to_numpy() // DEFAULT_PAYLOAD_BYTES)
    assert plan.n_records == probes + packets.sum()
    assert (plan.msg_first_rec[1:] == np.cumsum(plan.msg_packets)[:-1]).all()
    load_start_ps = plan.msg_start_ps[probes:]
    assert (load_start_ps == np.round((schedule["t_start_s"].to_numpy() * 1e9 + LEAD_NS) * 1000)).all()
    assert (plan.msg_start_ps[:probes] < LEAD_NS * 1000).all()  # the noise probe runs before the load
    assert len(set(plan.msg_sport[probes:].tolist())) > 0.9 * len(schedule)  # a source port per message


def test_scale_divides_rates_buffers_and_sizes(ecmp):
    spec, g = ecmp
    schedule = S.leaf_spine_schedule()
    real, scaled = plan_of(spec, g, schedule), plan_of(spec, g, schedule, k=50.0)
    assert np.allclose(scaled.link_rate_bps, real.link_rate_bps / 50)
    switch_end = plan_of(spec, g, schedule, k=50.0).queue_b_bytes
    assert (switch_end == np.maximum(S.BUFFER_BYTES / 50, 4 * (DEFAULT_PAYLOAD_BYTES + WIRE_OVERHEAD_BYTES))).all()
    assert scaled.load_emulated_bytes.sum() < real.load_emulated_bytes.sum() / 40


def test_scheduled_plan_control_latency(tmp_path):
    spec = S.load_design(tmp_path, S.SCHEDULED)
    g = build_fabric(spec)
    plan = plan_of(spec, g, S.scheduled_schedule())
    d = plan.scheduled
    assert d["credit_bytes"] == DEFAULT_PAYLOAD_BYTES + WIRE_OVERHEAD_BYTES
    # NCP -> NCF -> NCP: two propagation delays and two 64-byte cells at 400G
    assert d["ctrl_remote_ps"] == pytest.approx(2 * 500_000 + 2 * 64 * 8 / 400e9 * 1e12, abs=1)
    assert np.allclose(d["grant_ps_per_byte"], 8e12 / 400e9)
    assert d["voq_limit_bytes"] == 64_000_000


def test_estimate_grows_with_packets_and_hops(ecmp):
    spec, g = ecmp
    one = pd.DataFrame({"msg_id": [0], "t_start_s": [0.0], "src": ["h0"], "dst": ["h1"], "bytes": [4_096_000],
                        "kind": ["background"]})
    local = estimate(spec, g, one, SimOptions())
    remote = estimate(spec, g, one.assign(dst="h10"), SimOptions())
    assert remote["events"] > local["events"] > 1000 * 5
    assert remote["wall_s"] >= local["wall_s"] > 0 and local["memory_bytes"] > 0


def test_run_refuses_a_run_estimated_too_long_before_any_work(ecmp, tmp_path):
    spec, g = ecmp
    huge = pd.DataFrame({"msg_id": range(200), "t_start_s": [i * 1e-3 for i in range(200)],
                         "src": [f"h{i % 10}" for i in range(200)], "dst": [f"h{10 + i % 10}" for i in range(200)],
                         "bytes": [10_000_000_000] * 200, "kind": ["background"] * 200})
    out = tmp_path / "never"
    with pytest.raises(SpecError, match="min of wall time"):
        run(spec, g, huge, out, SimOptions())
    assert not out.exists()


def test_a_failed_simulator_leaves_no_run_directory(ecmp, tmp_path, monkeypatch):
    spec, g = ecmp
    monkeypatch.setattr(runner.sys, "executable", "/bin/false")  # the child exits 1 at once
    monkeypatch.setattr(runner, "ns3_wheel_version", lambda: "test")
    monkeypatch.setattr(runner.native, "model_library", lambda: tmp_path / "never-loaded.so")
    out = tmp_path / "runs" / "failed"
    with pytest.raises(runner.SimulationError, match="exit code 1"):
        run(spec, g, S.flows_schedule(), out, SimOptions())
    assert not (tmp_path / "runs").exists()


def test_an_interrupt_leaves_no_run_directory(ecmp, tmp_path, monkeypatch):
    spec, g = ecmp

    def interrupted(plan, work, report):
        (work / "records.npz").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_simulate", interrupted)
    monkeypatch.setattr(runner, "ns3_wheel_version", lambda: "test")
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        run(spec, g, S.flows_schedule(), out, SimOptions())
    assert list(tmp_path.iterdir()) == [tmp_path / f"{S.LEAF_SPINE['name']}.yaml"]


def test_packet_sample_keeps_whole_messages_of_every_class():
    counts = np.array([5, 1, 7, 3, 2, 9, 4, 40])
    kinds = np.array(["a", "a", "a", "a", "a", "a", "a", "b"], dtype=object)
    assert packet_sample(counts, kinds, 100, seed=1) is None
    keep = packet_sample(counts, kinds, 30, seed=1)
    assert keep[kinds == "a"].any() and keep[7]  # class b keeps its only (too large) message
    assert counts[keep & (kinds == "a")].sum() <= 30 * counts[kinds == "a"].sum() / counts.sum()
    assert (packet_sample(counts, kinds, 30, seed=1) == keep).all()  # seeded


@pytest.mark.parametrize("field, value", [("scale", 0.5), ("payload_bytes", 9000), ("sample_interval_s", 0.0)])
def test_options_no_run_can_honour_are_refused(ecmp, tmp_path, field, value):
    spec, g = ecmp
    with pytest.raises(SpecError, match=field):
        run(spec, g, S.flows_schedule(), tmp_path / "never", SimOptions(**{field: value}))
    assert not (tmp_path / "never").exists()


def test_bench_window_selects_by_start_time_or_from_the_first_message():
    from fabric.sim.bench import select_window
    sched = normalize(pd.DataFrame({"msg_id": range(5), "t_start_s": [0.0012, 0.0013, 0.0023, 0.0025, 0.5],
                                    "src": "h0", "dst": "h2", "bytes": 1000, "kind": "kv"}))
    chosen, applied = select_window(sched, first_s=0.001)
    assert chosen["msg_id"].tolist() == [0, 1] and applied == (0.0012, 0.001)
    chosen, applied = select_window(sched, window=(0.0023, 0.0005))
    assert chosen["msg_id"].tolist() == [2, 3] and applied == (0.0023, 0.0005)
    assert select_window(sched)[0] is sched
    with pytest.raises(ValueError, match="no message"):
        select_window(sched, window=(1.0, 0.1))
    with pytest.raises(ValueError, match="not both"):
        select_window(sched, window=(0.0, 1.0), first_s=0.1)
