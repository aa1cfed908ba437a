"""The credit scheduler of a scheduled (DDC-style) fabric: a process the run starts and stops.

On a real DDC a VOQ asks for credit the moment data lands in it, the grant is back within
microseconds, and the egress port's scheduler hands out credit packet by packet to the VOQs that
hold data for it (round-robin, or weighted): the port never idles while any VOQ has data, and the
fabric is never oversubscribed. This loop runs every tick of the spec (default 5 ms) on 2 vCPUs,
and sets each VOQ's rate for the tick; it emulates that credit loop as follows.

* **Requests.** Every tick it reads each VOQ's backlog (HTB class stats over netlink, on every
  NCP) and adds the bytes the run's plan will deliver to it before the tick after next
  (:data:`LOOKAHEAD_TICKS`; :class:`Arrivals`: each message from its start, at its host's share
  of the host's line rate, since the host link is one hop). That sum, the VOQ's *pending* bytes,
  is what a real VOQ would request as the data lands, known early enough for a tick-based loop:
  a new message does not wait a tick at the idle share.
* **Grants** (:func:`compute_grants`). For each egress port, the bytes the port can take in one
  tick (its capacity × ``grant_fraction``) are water-filled over the pending bytes: max-min fair
  (``fair``), or weighted by the ingress NCP's host group (``weighted``). That is what
  packet-by-packet credits hand each VOQ over the tick. If everything pending fits in the tick,
  the rest of the port is spread in proportion to the pending bytes, so all VOQs drain by the same
  instant: as early as a work-conserving scheduler would finish the last of them (fixed rates for
  a tick would otherwise leave the port idle once the VOQ with less to send had finished). VOQs
  with nothing pending share a small reserve (:data:`IDLE_SHARE`). The grants for one port never
  add up to more than its capacity; the excess waits in the ingress VOQs.

Grants are applied by changing each VOQ's TBF rate over netlink (~5 µs per change; a ``tc``
subprocess costs ~2 ms); a TBF refills its small bucket on every change, so a VOQ that had a tiny
grant owes nothing when its grant grows (an HTB class would owe one packet at the old rate).
Fabric links and egress ports of scheduled designs hold one tick of traffic to absorb the
quantization. What the emulation still cannot do is change a rate within a tick: a VOQ whose
pending bytes arrive later than the plan says (a late sender) waits for the next tick.

Each tick's interval, backlogs and grants go to ``scheduler.parquet``.
"""

from __future__ import annotations

import os
import select
import signal
import time

import numpy as np
import pandas as pd

from fabric.emu.agents import SENDER_NICE
from fabric.emu.netlink import TcNetlink
from fabric.emu.netns import enter_netns_of
from fabric.emu.plan import VoqShape

IDLE_SHARE = 0.01  # of a port's grant, split over the VOQs with nothing pending
GRANT_HYSTERESIS = 0.02  # of the port's capacity
KEEP_WITHIN = 0.05       # current grants stay while they drain a port's pending bytes this close to new ones
MIN_GRANT_BPS = 8_000
# A VOQ requests the bytes that reach it before the tick after next: one tick for the grant to
# last, half a tick more for a late tick (scheduler_lateness warns at half a tick late).
LOOKAHEAD_TICKS = 1.5


def _prefix_sums(x: np.ndarray) -> np.ndarray:
    """0, x[0], x[0] + x[1], ...: a sum over sorted positions i..j is one subtraction."""
    return np.concatenate([[0.0], np.cumsum(x)])


class Arrivals:
    """When the plan's bytes reach each VOQ: each message's wire bytes arrive evenly from its start
    over its duration (wall-clock ns after the load's start t0).

    ``per_voq``: (ingress NCP, egress host) -> (starts_ns, durations_ns, wire_bytes). t0 is known
    only once the agents are ready, so it comes later, through a shared value (0 until then:
    nothing is known to arrive). A tick asks for every VOQ at once in a few vectorized lookups (a
    loop over 64 VOQs would cost the scheduler milliseconds of CPU per tick, taken from the senders).
    """

    def __init__(self, per_voq: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]], t0_ns):
        self.t0_ns = t0_ns
        self.keys = list(per_voq)
        voq = np.concatenate([np.full(len(v[0]), i, dtype=np.int64) for i, v in enumerate(per_voq.values())] or [[]])
        starts = np.concatenate([np.asarray(v[0], np.int64) for v in per_voq.values()] or [[]]).astype(np.int64)
        durations = np.maximum(np.concatenate([np.asarray(v[1], np.int64) for v in per_voq.values()] or [[]]), 1)
        wire = np.concatenate([np.asarray(v[2], np.float64) for v in per_voq.values()] or [[]])
        self.t_min = int(starts.min(initial=0)) - 1
        s = (starts - self.t_min).astype(np.float64)
        e = s + durations
        self.span = int(e.max(initial=1)) + 2
        rate = wire / durations                      # bytes per ns while the message arrives
        # A VOQ's arrived bytes at t: Σ_{e<=t} w + t·Σ_{s<t<e} r − Σ_{s<t<e} r·s, from prefix sums
        # over messages sorted by (VOQ, start) and by (VOQ, end).
        by_start = np.lexsort((s, voq))
        by_end = np.lexsort((e, voq))
        self.start_keys = voq[by_start] * self.span + s[by_start]
        self.end_keys = voq[by_end] * self.span + e[by_end]
        self.r_by_start, self.rs_by_start = _prefix_sums(rate[by_start]), _prefix_sums((rate * s)[by_start])
        self.w_by_end = _prefix_sums(wire[by_end])
        self.r_by_end, self.rs_by_end = _prefix_sums(rate[by_end]), _prefix_sums((rate * s)[by_end])
        self.base = np.arange(len(self.keys), dtype=np.float64) * self.span

    def _arrived(self, t_rel_ns: float) -> np.ndarray:
        """Bytes arrived at every VOQ by ``t_rel_ns`` (after t_min)."""
        t = min(max(float(t_rel_ns), 0.0), self.span - 1.0)
        at, lo = self.base + t, self.base
        i_s, i_s0 = np.searchsorted(self.start_keys, at, side="left"), np.searchsorted(self.start_keys, lo)
        i_e, i_e0 = np.searchsorted(self.end_keys, at, side="right"), np.searchsorted(self.end_keys, lo)
        whole = self.w_by_end[i_e] - self.w_by_end[i_e0]
        r = (self.r_by_start[i_s] - self.r_by_start[i_s0]) - (self.r_by_end[i_e] - self.r_by_end[i_e0])
        rs = (self.rs_by_start[i_s] - self.rs_by_start[i_s0]) - (self.rs_by_end[i_e] - self.rs_by_end[i_e0])
        return whole + t * r - rs

    def between(self, from_ns: int, to_ns: int) -> dict[tuple[str, str], float]:
        """VOQ -> bytes arriving in (from_ns, to_ns] (absolute wall-clock ns), for VOQs with any."""
        t0 = self.t0_ns.value
        if not t0 or not self.keys:
            return {}
        got = self._arrived(to_ns - t0 - self.t_min) - self._arrived(from_ns - t0 - self.t_min)
        return {self.keys[i]: float(got[i]) for i in np.flatnonzero(got > 0.5)}


def drained_by_s(pending_bits: dict[str, float], rates_bps: dict[str, float]) -> float:
    """When the last VOQ of a port has sent what it has pending, at these rates (0 if nothing is).

    >>> drained_by_s({"a": 100, "b": 0}, {"a": 50, "b": 1})
    2.0
    """
    return max((bits / rates_bps[n] for n, bits in pending_bits.items() if bits > 0), default=0.0)


def compute_grants(capacity_bps: float, pending_bits: dict[str, float], weights: dict[str, float],
                   grant_fraction: float, tick_s: float) -> dict[str, int]:
    """Split one egress port's grant (bit/s) over its VOQs, keyed by ingress NCP.

    ``pending_bits``: what each VOQ holds or will receive before the next tick (module docstring).
    The bits the port takes in ``tick_s`` are water-filled over them, max-min fair in proportion to
    ``weights`` (default 1); if all of them fit, the rest is spread in proportion to them, so every
    VOQ drains by the same instant. VOQs with nothing pending share :data:`IDLE_SHARE`. The grants
    never add up to more than ``capacity_bps × grant_fraction``.

    >>> compute_grants(1000, {"a": 6, "b": 0, "c": 3, "d": 0}, {}, 1.0, tick_s=0.01)  # 9 bits fit in 9.9
    {'a': 660, 'b': 5, 'c': 330, 'd': 5}
    >>> compute_grants(1000, {"a": 50, "b": 0, "c": 2, "d": 0}, {}, 1.0, tick_s=0.01)  # 52 bits do not
    {'a': 790, 'b': 5, 'c': 200, 'd': 5}
    >>> compute_grants(100, {"a": 0, "b": 0}, {}, 0.9, tick_s=0.01)
    {'a': 45, 'b': 45}
    """
    total = capacity_bps * grant_fraction
    active = {n: b for n, b in pending_bits.items() if b > 0}
    idle = [n for n in pending_bits if n not in active]
    if not active:
        return {n: int(total / len(pending_bits)) for n in pending_bits}
    reserve = total * IDLE_SHARE if idle else 0.0
    tick_bits = (total - reserve) * tick_s
    granted: dict[str, float] = {}
    remaining = tick_bits
    # Water-filling in order of pending bits per unit weight.
    left = sorted(active, key=lambda n: active[n] / weights.get(n, 1.0))
    while left:
        weight_left = sum(weights.get(n, 1.0) for n in left)
        n = left[0]
        fair = remaining * weights.get(n, 1.0) / weight_left
        if active[n] >= fair:
            for m in left:  # everyone left has at least their fair share pending: split by weight
                granted[m] = remaining * weights.get(m, 1.0) / weight_left
            break
        granted[n] = active[n]
        remaining -= active[n]
        left.pop(0)
    # All pending fits (spare >= 1): spread the rest so every VOQ drains at the same instant.
    spare = tick_bits / sum(granted.values())
    return {n: int(granted[n] * spare / tick_s) if n in granted else int(reserve / len(idle)) for n in pending_bits}


def run_scheduler(voqs: list[VoqShape], ncp_pids: dict[str, int], tick_ns: int, grant_fraction: float,
                  weights: dict[str, float], burst_bytes: int, quantum: int, arrivals: Arrivals, out_path: str,
                  stop_fd: int, ready_fd: int) -> None:
    """Tick until ``stop_fd`` is readable; write the tick records to ``out_path``.

    ``arrivals``: when the plan's bytes reach each VOQ (module docstring).
    """
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
    voqs_of: dict[str, list[VoqShape]] = {}
    for v in voqs:
        by_dst.setdefault(v.dst, []).append(v)
        voqs_of.setdefault(v.ncp, []).append(v)
    voq_classes = {ncp: frozenset(v.classid for v in of) for ncp, of in voqs_of.items()}
    current = {(v.ncp, v.dst): v.initial_rate_bps for v in voqs}
    os.write(ready_fd, b"r")

    poller = select.poll()
    poller.register(stop_fd, select.POLLIN)
    rows = []
    tick_cpu_ns: list[tuple[int, int]] = []
    last_tick = time.time_ns()
    next_tick = time.monotonic_ns() + tick_ns
    while True:
        now = time.time_ns()
        cpu_start_ns = time.process_time_ns()
        interval = now - last_tick
        last_tick = now
        backlog: dict[tuple[str, str], int] = {}
        arriving = arrivals.between(now, now + int(LOOKAHEAD_TICKS * tick_ns))
        for ncp, nl in links.items():
            by_class = nl.class_backlogs(ifindex[ncp], voq_classes[ncp])
            for v in voqs_of[ncp]:
                backlog[(ncp, v.dst)] = by_class.get(v.classid, 0)
        for dst, items in by_dst.items():
            pending_bits = {v.ncp: (backlog[(v.ncp, dst)] + arriving.get((v.ncp, dst), 0.0)) * 8 for v in items}
            # Nothing pending: any grants drain nothing at once, so they stay (KEEP_WITHIN below).
            grants = (compute_grants(items[0].capacity_bps, pending_bits, weights, grant_fraction, tick_ns / 1e9)
                      if any(pending_bits.values()) else None)
            # Grants change only when the current ones would drain what is pending more than
            # KEEP_WITHIN later than the new ones (each change refills a bucket and costs a syscall).
            # Then a change is applied when it moves a VOQ by more than 2% of the port, and every
            # decrease too, first, so the port is never oversubscribed even between two changes
            # (increases below 2% wait: the sum stays within the grant).
            rates = {v.ncp: max(grants[v.ncp], MIN_GRANT_BPS) for v in items} if grants else {}
            if rates and drained_by_s(pending_bits, {v.ncp: current[(v.ncp, dst)] for v in items}) > (
                    drained_by_s(pending_bits, rates) * (1 + KEEP_WITHIN)):
                for v in sorted(items, key=lambda v: rates[v.ncp] - current[(v.ncp, dst)]):
                    key = (v.ncp, dst)
                    change = rates[v.ncp] - current[key]
                    if change < 0 or change > GRANT_HYSTERESIS * v.capacity_bps:
                        links[v.ncp].set_tbf_rate(ifindex[v.ncp], v.leaf_handle, v.classid, rates[v.ncp],
                                                  burst_bytes, v.buffer_bytes)
                        current[key] = rates[v.ncp]
            for v in items:
                rows.append((now, interval, v.ncp, dst, backlog[(v.ncp, dst)], current[(v.ncp, dst)]))
        tick_cpu_ns.append((now, time.process_time_ns() - cpu_start_ns))
        wait_ms = max(0.0, (next_tick - time.monotonic_ns()) / 1e6)
        next_tick += tick_ns
        if poller.poll(wait_ms):
            break
        if time.monotonic_ns() > next_tick:
            next_tick = time.monotonic_ns() + tick_ns  # fell behind: do not try to catch up
    ticks = pd.DataFrame(rows, columns=["t_ns", "tick_interval_ns", "ncp", "dst", "backlog_bytes", "granted_bps"])
    # What each tick cost the scheduler in CPU time: taken from the senders when it runs on their vCPU.
    ticks = ticks.merge(pd.DataFrame(tick_cpu_ns, columns=["t_ns", "tick_cpu_ns"]), on="t_ns", how="left")
    ticks.to_parquet(out_path, index=False)
