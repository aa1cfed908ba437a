"""Scale factor and time dilation: chosen from the packet budget, refused when nothing fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fabric.emu.scale import BURST_WINDOW_S, choose_scale, nice_ceiling, offered_load_profile, peak_burst_packets
from fabric.errors import BudgetError

NIC = {f"h{i}": 400e9 for i in range(16)}


def sched(rows):
    return pd.DataFrame([dict(msg_id=i, t_start_s=t, src=s, dst=d, bytes=int(b), kind="background")
                         for i, (t, s, d, b) in enumerate(rows)])


@pytest.mark.parametrize("x,expected", [(0.5, 1), (1, 1), (1.2, 2), (2, 2), (2.2, 2.5), (3, 5), (977, 1000),
                                        (1001, 2000), (4500, 5000)])
def test_nice_ceiling(x, expected):
    assert nice_ceiling(x) == expected


def test_peak_offered_load_counts_simultaneous_senders():
    # Two hosts send 50 MB at once (1 ms at 400G each); a third alone later.
    peak, mean = offered_load_profile(sched([(0, "h0", "h1", 50e6), (0, "h2", "h1", 50e6),
                                             (0.01, "h3", "h1", 50e6)]), NIC)
    assert peak == pytest.approx(800e9)
    assert mean == pytest.approx(3 * 50e6 * 8 / 0.011)


def test_back_to_back_messages_of_one_host_do_not_add_up():
    peak, _ = offered_load_profile(sched([(0, "h0", "h1", 50e6), (0, "h0", "h2", 50e6)]), NIC)
    assert peak == pytest.approx(400e9)


def test_k_fits_the_peak_into_the_budget():
    four = sched([(0, f"h{i}", "h0", 400e6) for i in range(1, 5)])
    choice = choose_scale(four, NIC, [400e9], budget_pps=50_000, payload_bytes=4096)
    assert choice.k == 1000  # 1.6 Tbit/s / (50k * 32768 bit) = 977 -> 1000
    assert choice.peak_pps_emulated <= 50_000
    assert choice.dilation == 1


def test_many_small_messages_at_once_are_dilated_not_scaled():
    # An all-to-all among 16 ranks: 240 one-packet messages start together.
    a2a = sched([(0, f"h{i}", f"h{j}", 10_000) for i in range(16) for j in range(16) if i != j])
    assert peak_burst_packets(a2a, 1000, 4096, NIC) == 240
    choice = choose_scale(a2a, NIC, [400e9], budget_pps=50_000, payload_bytes=4096)
    need = 240 / (50_000 * BURST_WINDOW_S)
    assert choice.dilation >= need and choice.dilation == nice_ceiling(need)
    assert choice.rate_divisor == choice.k * choice.dilation


def test_impossible_loads_are_refused_with_the_reason():
    a2a = sched([(0, f"h{i}", f"h{j}", 10_000) for i in range(16) for j in range(16) if i != j])
    with pytest.raises(BudgetError, match="dilation 25"):
        choose_scale(a2a, NIC, [400e9], budget_pps=10_000, payload_bytes=4096)
    with pytest.raises(BudgetError, match="cannot be emulated"):
        choose_scale(sched([(0, "h0", "h1", 1e9)]), {"h0": 400e9}, [400e9], budget_pps=1, payload_bytes=4096)
    with pytest.raises(BudgetError, match="--scale 5"):
        choose_scale(sched([(0, "h0", "h1", 1e9)]), {"h0": 400e9}, [400e9], k=5)
    with pytest.raises(BudgetError, match="--dilation"):
        choose_scale(sched([(0, "h0", "h1", 1e9)]), {"h0": 400e9}, [400e9], dilation=500)


def test_credit_grants_are_max_min_fair_and_never_exceed_the_port():
    import doctest

    import fabric.emu.scheduler as scheduler
    from fabric.emu.scheduler import compute_grants

    assert doctest.testmod(scheduler).failed == 0
    tick_s = 0.005
    # More pending than a tick takes: the light VOQs get their bits over the tick, the heavy one the rest.
    g = compute_grants(1000, {"a": 2000 * tick_s, "b": 10 * tick_s, "c": 20 * tick_s, "d": 0}, {}, 0.98, tick_s)
    reserve = 980 * scheduler.IDLE_SHARE
    assert g["b"] == pytest.approx(10, abs=1) and g["c"] == pytest.approx(20, abs=1) and g["d"] == int(reserve)
    assert g["a"] == pytest.approx(980 - reserve - 30, abs=1)
    assert sum(g.values()) <= 980
    # An incast that fits in the tick: 2 flows behind one NCP, 1 behind each of two others. Grants
    # in proportion to the bits pending drain all three VOQs at the same instant, when a
    # work-conserving scheduler would have finished the last (total bits / port), not later.
    pending = {"a": 2.0, "b": 1.0, "c": 1.0}
    g = compute_grants(1000, pending, {}, 1.0, tick_s)
    drained_at_s = {n: pending[n] / g[n] for n in pending}
    assert max(drained_at_s.values()) == pytest.approx(4.0 / 1000, rel=1e-2)
    assert min(drained_at_s.values()) == pytest.approx(max(drained_at_s.values()), rel=1e-2)
    # Two heavy VOQs split evenly; weights tilt the split.
    assert compute_grants(1000, {"a": 5000, "b": 5000}, {}, 1.0, tick_s) == {"a": 500, "b": 500}
    w = compute_grants(1000, {"a": 5000, "b": 5000}, {"a": 3.0}, 1.0, tick_s)
    assert w == {"a": 750, "b": 250}

def test_the_scheduler_knows_what_reaches_each_voq_before_it_lands():
    from types import SimpleNamespace

    from fabric.emu.scheduler import Arrivals

    rng = np.random.default_rng(1)
    per_voq = {}
    for v in range(12):
        n = int(rng.integers(0, 60))
        per_voq[(f"ncp{v % 4}", f"h{v}")] = (np.sort(rng.integers(0, 10**9, n)), rng.integers(1, 10**7, n),
                                             rng.integers(100, 10**6, n))
    t0 = SimpleNamespace(value=0)
    arrivals = Arrivals(per_voq, t0)
    assert arrivals.between(5, 10**9) == {}  # the load's start not known yet: nothing is
    t0.value = 10**12

    def by_definition(key, a, b):  # each message's bytes evenly over its duration
        starts, durations, wire = per_voq[key]
        return sum(np.sum(wire * np.clip((t - t0.value - starts) / durations, 0, 1)) * sign for t, sign in ((b, 1), (a, -1)))

    for a in rng.integers(0, 10**9, 30):
        a = t0.value + int(a)
        b = a + int(rng.integers(1, 10**8))
        got = arrivals.between(a, b)
        for key in per_voq:
            assert got.get(key, 0.0) == pytest.approx(by_definition(key, a, b), rel=1e-6, abs=1.0)


def test_a_scheduled_design_plans_with_the_budget_its_credit_scheduler_leaves():
    from fabric.emu.scale import SCHEDULER_CPU_S_PER_VOQ_TICK, design_budget_pps
    from fabric.specs import load_fabric_spec

    repo = Path(__file__).resolve().parents[2]
    leaf_spine = load_fabric_spec(repo / "topologies" / "leaf-spine-ecmp.yaml")
    scheduled = load_fabric_spec(repo / "topologies" / "scheduled-fabric.yaml")
    assert design_budget_pps(leaf_spine, 40_000, cpus=2) == 40_000
    # 4 NCPs x 16 host ports = 64 VOQs, a 5 ms tick, 2 vCPUs.
    share = 64 * SCHEDULER_CPU_S_PER_VOQ_TICK / 0.005 / 2
    assert design_budget_pps(scheduled, 40_000, cpus=2) == int(40_000 * (1 - share))
    assert 0.8 < 1 - share < 0.95
