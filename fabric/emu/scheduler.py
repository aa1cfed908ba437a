"""The credit scheduler of a scheduled (DDC-style) fabric: a process the run starts and stops.

Every tick it reads the counters of every VOQ on every NCP (HTB class stats over netlink) and, for
each egress host port, grants the port's capacity × ``grant_fraction`` to the VOQs requesting it,
max-min fair on their measured demand (``fair``), or weighted by the ingress NCP's host group
(``weighted``). A VOQ requests credit when it holds a backlog or received traffic during the last
tick (a steady low-rate flow is rarely caught with a backlog at the tick instant, but must not be
treated as idle). Idle VOQs keep a small standing grant so a new flow's first packets do not wait
a whole tick for credit. The grants for one port always add up to at most its capacity, so the
fabric and the egress port are never oversubscribed; the excess waits in the ingress VOQs.

Grants are applied by changing each VOQ's TBF rate over netlink (~5 µs per change; a ``tc``
subprocess costs ~2 ms); a TBF refills its small bucket on every change, so a VOQ that had a tiny
grant owes nothing when its grant grows (an HTB class would owe one packet at the old rate).
Real DDC credits take microseconds to round-trip; here the loop runs at the spec's tick (default
5 ms), so a VOQ keeps requesting for :data:`HOLD_TICKS` ticks after its last traffic: a bursty flow
(an all-to-all every few ms) keeps its share between bursts instead of restarting from idle. Fabric
links and egress ports of scheduled designs hold one tick of traffic to absorb the quantization.

Each tick's interval, backlogs and grants go to ``scheduler.parquet``.
"""

from __future__ import annotations

import os
import select
import signal
import time

import pandas as pd

from fabric.emu.agents import SENDER_NICE
from fabric.emu.netlink import RTM_GETTCLASS, TcNetlink
from fabric.emu.netns import enter_netns_of
from fabric.emu.plan import VoqShape

IDLE_SHARE = 0.05  # of a port's grant, split over its idle VOQs
HOLD_TICKS = 4     # a VOQ is still requesting this many ticks after it last carried traffic
DEMAND_HEADROOM = 1.5  # a VOQ is granted up to this multiple of its measured demand
GRANT_HYSTERESIS = 0.02  # of the port's capacity
MIN_GRANT_BPS = 8_000


def compute_grants(capacity_bps: float, demands_bps: dict[str, float | None], weights: dict[str, float],
                   grant_fraction: float) -> dict[str, int]:
    """Split one egress port's grant over its VOQs, keyed by ingress NCP.

    ``demands_bps``: a requesting VOQ's demand in bit/s (what it sent during the last tick if it
    kept no backlog; ``inf`` if it holds a backlog; 0 in its hold period), or None if idle. Requesting VOQs share the port max-min
    fairly — a VOQ asking for little gets what it asks (× :data:`DEMAND_HEADROOM`), the rest goes
    to the ones asking for more, in proportion to their weights — and capacity nobody asked for is
    spread over all requesting VOQs, so a burst finds credit waiting. Idle VOQs share a small
    reserve. The grants never add up to more than ``capacity_bps × grant_fraction``.

    >>> compute_grants(100, {"a": float("inf"), "b": None, "c": 5, "d": None}, {}, 1.0)
    {'a': 87, 'b': 2, 'c': 7, 'd': 2}
    >>> compute_grants(100, {"a": None, "b": None}, {}, 0.9)
    {'a': 45, 'b': 45}
    """
    total = capacity_bps * grant_fraction
    active = {n: d for n, d in demands_bps.items() if d is not None}
    idle = [n for n, d in demands_bps.items() if d is None]
    if not active:
        return {n: int(total / len(demands_bps)) for n in demands_bps}
    reserve = total * IDLE_SHARE if idle else 0.0
    remaining = total - reserve
    grants: dict[str, float] = {}
    # Water-filling in order of demand per unit weight.
    left = sorted(active, key=lambda n: active[n] * DEMAND_HEADROOM / weights.get(n, 1.0))
    while left:
        weight_left = sum(weights.get(n, 1.0) for n in left)
        n = left[0]
        fair = remaining * weights.get(n, 1.0) / weight_left
        want = active[n] * DEMAND_HEADROOM
        if want >= fair:
            for m in left:  # everyone left wants at least their fair share: split by weight
                grants[m] = remaining * weights.get(m, 1.0) / weight_left
            remaining = 0.0
            break
        grants[n] = want
        remaining -= want
        left.pop(0)
    if remaining > 0:  # capacity nobody asked for: headroom for the next burst
        for n in active:
            grants[n] += remaining / len(active)
    return {n: int(grants[n]) if n in grants else int(reserve / len(idle)) for n in demands_bps}


def run_scheduler(voqs: list[VoqShape], ncp_pids: dict[str, int], tick_ns: int, grant_fraction: float,
                  weights: dict[str, float], burst_bytes: int, quantum: int, out_path: str,
                  stop_fd: int, ready_fd: int) -> None:
    """Tick until ``stop_fd`` is readable; write the tick records to ``out_path``."""
    import socket

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, SENDER_NICE)  # a late tick is a fidelity failure
    except OSError:
        pass
    links: dict[str, TcNetlink] = {}
    ifindex: dict[str, int] = {}
    for ncp, pid in ncp_pids.items():
        enter_netns_of(pid)
        links[ncp] = TcNetlink()
        ifindex[ncp] = socket.if_nametoindex(next(v.ifb for v in voqs if v.ncp == ncp))
    by_dst: dict[str, list[VoqShape]] = {}
    for v in voqs:
        by_dst.setdefault(v.dst, []).append(v)
    current = {(v.ncp, v.dst): v.initial_rate_bps for v in voqs}
    sent_before: dict[tuple[str, str], int] = {}
    requesting_until: dict[tuple[str, str], int] = {}
    os.write(ready_fd, b"r")

    poller = select.poll()
    poller.register(stop_fd, select.POLLIN)
    rows = []
    last_tick = time.time_ns()
    next_tick = time.monotonic_ns() + tick_ns
    while True:
        now = time.time_ns()
        interval = now - last_tick
        last_tick = now
        backlog: dict[tuple[str, str], int] = {}
        demand: dict[tuple[str, str], float | None] = {}
        for ncp, nl in links.items():
            by_class = {handle: st for idx, handle, _p, _k, st in nl.stats(RTM_GETTCLASS, ifindex[ncp])}
            for v in voqs:
                if v.ncp == ncp:
                    st = by_class.get(v.classid)
                    key = (ncp, v.dst)
                    sent = st[0] if st else 0
                    backlog[key] = st[7] if st else 0
                    served = max(0, sent - sent_before.get(key, sent))
                    if backlog[key] > 0 or served > 0:
                        requesting_until[key] = now + HOLD_TICKS * tick_ns
                    if requesting_until.get(key, 0) < now:
                        demand[key] = None
                    elif backlog[key] > 0:
                        # It could not send everything it received: it wants more than it had.
                        demand[key] = float("inf")
                    else:
                        # It sent all it received: its demand is what it sent.
                        demand[key] = served * 8e9 / tick_ns
                    sent_before[key] = sent
        for dst, items in by_dst.items():
            grants = compute_grants(items[0].capacity_bps, {v.ncp: demand[(v.ncp, dst)] for v in items},
                                    weights, grant_fraction)
            # Decreases first, so the port is never oversubscribed even between two changes; every
            # decrease is applied (the sum must stay within the grant), an increase only when it is
            # worth a refilled bucket and a syscall (more than 2% of the port).
            for v in sorted(items, key=lambda v: grants[v.ncp] - current[(v.ncp, dst)]):
                key = (v.ncp, dst)
                rate = max(grants[v.ncp], MIN_GRANT_BPS)
                change = rate - current[key]
                if change < 0 or change > GRANT_HYSTERESIS * v.capacity_bps:
                    links[v.ncp].set_tbf_rate(ifindex[v.ncp], v.leaf_handle, v.classid, rate, burst_bytes,
                                              v.buffer_bytes)
                    current[key] = rate
            for v in items:
                rows.append((now, interval, v.ncp, dst, backlog[(v.ncp, dst)], current[(v.ncp, dst)]))
        wait_ms = max(0.0, (next_tick - time.monotonic_ns()) / 1e6)
        next_tick += tick_ns
        if poller.poll(wait_ms):
            break
        if time.monotonic_ns() > next_tick:
            next_tick = time.monotonic_ns() + tick_ns  # fell behind: do not try to catch up
    pd.DataFrame(rows, columns=["t_ns", "tick_interval_ns", "ncp", "dst", "backlog_bytes", "granted_bps"]).to_parquet(
        out_path, index=False)
