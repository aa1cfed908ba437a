"""The credit scheduler of a scheduled (DDC-style) fabric: a process the run starts and stops.

Every tick it reads the counters of every VOQ on every NCP (HTB class stats over netlink) and, for
each egress host port, grants the port's capacity × ``grant_fraction`` to the VOQs requesting it —
an equal share each (``fair``) or in proportion to the weight of the ingress NCP's host group
(``weighted``). A VOQ requests credit when it holds a backlog or received traffic during the last
tick (a steady low-rate flow is rarely caught with a backlog at the tick instant, but must not be
treated as idle). Idle VOQs keep a small standing grant so a new flow's first packets do not wait
a whole tick for credit. The grants for one port always add up to at most its capacity, so the
fabric and the egress port are never oversubscribed; the excess waits in the ingress VOQs.

Grants are applied by changing each class's rate over netlink (~5 µs per change; a ``tc``
subprocess costs ~2 ms). Real DDC credits take microseconds to round-trip; here the loop runs at
the spec's tick (default 5 ms). Two things keep that quantization from dominating the results:

* a VOQ keeps requesting for :data:`HOLD_TICKS` ticks after its last traffic, so a bursty flow
  (an all-to-all every few ms) keeps its share between bursts instead of restarting from idle;
* each VOQ's credit accumulates for one tick (HTB ``burst`` = grant × tick) and may be spent at up
  to the port rate (``ceil`` = port rate, ``cburst`` = one packet): as with real credits, a VOQ
  that was granted bandwidth can send what it was granted as soon as it has data. Per tick the
  VOQs of a port can never send more than the port carries in that tick; the egress port buffer is
  sized to absorb one tick of credit (see :func:`fabric.emu.plan.voq_layout`).

Each tick's interval, backlogs and grants go to ``scheduler.parquet``.
"""

from __future__ import annotations

import os
import select
import signal
import time

import pandas as pd

from fabric.emu.netlink import RTM_GETTCLASS, TcNetlink
from fabric.emu.netns import enter_netns_of
from fabric.emu.plan import VoqShape

IDLE_SHARE = 0.05  # of a port's grant, split over its idle VOQs
HOLD_TICKS = 4     # a VOQ is still requesting this many ticks after it last carried traffic


def compute_grants(capacity_bps: float, backlogs: dict[str, int], weights: dict[str, float],
                   grant_fraction: float) -> dict[str, int]:
    """Split one egress port's grant over its VOQs (keyed by ingress NCP; value > 0: requesting).

    >>> compute_grants(100, {"a": 10, "b": 0, "c": 5, "d": 0}, {}, 1.0)
    {'a': 47, 'b': 2, 'c': 47, 'd': 2}
    """
    total = capacity_bps * grant_fraction
    active = [n for n, b in backlogs.items() if b > 0]
    idle = [n for n, b in backlogs.items() if b <= 0]
    if not active:
        return {n: int(total / len(backlogs)) for n in backlogs}
    reserve = total * IDLE_SHARE if idle else 0.0
    weight_sum = sum(weights.get(n, 1.0) for n in active)
    grants = {n: int((total - reserve) * weights.get(n, 1.0) / weight_sum) for n in active}
    grants.update({n: int(reserve / len(idle)) for n in idle})
    return grants


def run_scheduler(voqs: list[VoqShape], ncp_pids: dict[str, int], tick_ns: int, grant_fraction: float,
                  weights: dict[str, float], burst_bytes: int, quantum: int, out_path: str,
                  stop_fd: int, ready_fd: int) -> None:
    """Tick until ``stop_fd`` is readable; write the tick records to ``out_path``."""
    import socket

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
        demand: dict[tuple[str, str], int] = {}
        for ncp, nl in links.items():
            by_class = {handle: st for idx, handle, _p, _k, st in nl.stats(RTM_GETTCLASS, ifindex[ncp])}
            for v in voqs:
                if v.ncp == ncp:
                    st = by_class.get(v.classid)
                    key = (ncp, v.dst)
                    sent = st[0] if st else 0
                    backlog[key] = st[7] if st else 0
                    if backlog[key] > 0 or sent != sent_before.get(key, sent):
                        requesting_until[key] = now + HOLD_TICKS * tick_ns
                    demand[key] = 1 if requesting_until.get(key, 0) >= now else 0
                    sent_before[key] = sent
        for dst, items in by_dst.items():
            grants = compute_grants(items[0].capacity_bps, {v.ncp: demand[(v.ncp, dst)] for v in items},
                                    weights, grant_fraction)
            for v in items:
                rate = max(grants[v.ncp], 8_000)
                if rate != current[(v.ncp, dst)]:
                    credit = max(burst_bytes, int(rate * tick_ns / 8e9))
                    links[v.ncp].set_htb_rate(ifindex[v.ncp], v.classid, 1 << 16, rate, credit, quantum,
                                              ceil_bps=v.capacity_bps, cburst_bytes=burst_bytes)
                    current[(v.ncp, dst)] = rate
                rows.append((now, interval, v.ncp, dst, backlog[(v.ncp, dst)], current[(v.ncp, dst)]))
        wait_ms = max(0.0, (next_tick - time.monotonic_ns()) / 1e6)
        next_tick += tick_ns
        if poller.poll(wait_ms):
            break
        if time.monotonic_ns() > next_tick:
            next_tick = time.monotonic_ns() + tick_ns  # fell behind: do not try to catch up
    pd.DataFrame(rows, columns=["t_ns", "tick_interval_ns", "ncp", "dst", "backlog_bytes", "granted_bps"]).to_parquet(
        out_path, index=False)
