"""Sampling link counters (tc statistics over netlink) and CPU pressure during a run.

One sampler process opens a netlink socket inside every namespace of the run (a netlink socket
stays in the namespace it was created in) and, every interval, dumps the root qdisc of each shaped
interface: cumulative bytes/packets sent, drops, and current backlog. ``tc -j`` is not used: it
prints plain text for HTB classes on this iproute2, and a subprocess per sample would cost more
CPU than the fabric itself, and pyroute2 costs ~1.5 ms per namespace dump; the small reader in
:mod:`fabric.emu.netlink` costs a tenth of that. ``/proc/pressure/cpu`` is read in the same loop.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time

import pandas as pd

from fabric.emu.agents import SAMPLER_NICE
from fabric.emu.netns import enter_netns_of

TC_H_ROOT = 0xFFFFFFFF


def read_cpu_pressure() -> tuple[float, int, int]:
    """Return (some avg10 %, some total µs, full total µs) from /proc/pressure/cpu."""
    try:
        with open("/proc/pressure/cpu") as fh:
            lines = fh.read().split("\n")
    except OSError:
        return -1.0, -1, -1
    fields = {}
    for line in lines:
        if not line:
            continue
        kind, *pairs = line.split()
        fields[kind] = dict(p.split("=") for p in pairs)
    some = fields.get("some", {})
    full = fields.get("full", {})
    return float(some.get("avg10", -1)), int(some.get("total", -1)), int(full.get("total", -1))


def run_sampler(targets: list[dict], interval_s: float, links_out: str, cpu_out: str,
                stop_fd: int, ready_fd: int) -> None:
    """Sample until ``stop_fd`` is readable.

    ``targets``: one dict per shaped interface: ``pid`` (namespace owner), ``ifname``, and the
    identifying columns written with each sample (link_id, node, peer, kind, queue, rate_bps).
    A target with a ``classid`` is an HTB class (a VOQ), read from the class dump instead.
    """
    from fabric.emu.netlink import RTM_GETTCLASS, TcNetlink

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, SAMPLER_NICE)
        # Run only when no sender, receiver or scheduler wants the CPU: a sample dumps every
        # namespace's qdiscs in kernel mode, and on a kernel without preemption (preempt=none, as
        # on this kind of VM) a 2-3 ms dump held a woken sender off its CPU and opened holes in
        # its NIC's timeline.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        pass
    by_pid: dict[int, list[dict]] = {}
    for t in targets:
        by_pid.setdefault(t["pid"], []).append(t)
    sockets = {}
    for pid, items in by_pid.items():
        enter_netns_of(pid)
        for t in items:
            t["ifindex"] = socket.if_nametoindex(t["ifname"])
        sockets[pid] = TcNetlink()
    os.write(ready_fd, b"r")

    rows = []
    cpu_rows = []
    poller = select.poll()
    poller.register(stop_fd, select.POLLIN)
    next_t = time.monotonic()
    stopping = False
    while True:
        # One timestamp per sweep (readers take "the last sample" as one sweep); each link is read
        # at about the same offset within every sweep, so its intervals stay consistent.
        t_ns = time.time_ns()
        for pid, items in by_pid.items():
            wanted = {t["ifindex"]: t for t in items if "classid" not in t}
            classes = {(t["ifindex"], t["classid"]): t for t in items if "classid" in t}
            for ifindex in sorted({i for i, _ in classes}):
                for idx, handle, _parent, _kind, st in sockets[pid].stats(RTM_GETTCLASS, ifindex):
                    t = classes.get((idx, handle))
                    if t is not None:
                        nbytes, npackets, drops, _over, _bps, _pps, qlen, backlog = st
                        rows.append((t_ns, t["link_id"], t["node"], t["peer"], t["kind"], t["queue"],
                                     t["rate_bps"], nbytes, npackets, drops, backlog, qlen))
            for ifindex, _handle, parent, _kind, st in sockets[pid].stats():
                t = wanted.get(ifindex)
                if t is None or parent != TC_H_ROOT:
                    continue
                nbytes, npackets, drops, _over, _bps, _pps, qlen, backlog = st
                rows.append((t_ns, t["link_id"], t["node"], t["peer"], t["kind"], t["queue"], t["rate_bps"],
                             nbytes, npackets, drops, backlog, qlen))
            os.sched_yield()  # one namespace's dump at a time: let a woken sender in between
        some_avg10, some_total, full_total = read_cpu_pressure()
        cpu_rows.append((t_ns, some_avg10, some_total, full_total))
        if stopping:
            break
        next_t += interval_s
        wait_ms = max(0, int((next_t - time.monotonic()) * 1000))
        if poller.poll(wait_ms):
            stopping = True  # take one last sample, then stop
    cols = ["t_ns", "link_id", "node", "peer", "kind", "queue", "rate_bps", "tx_bytes", "tx_packets", "drops",
            "backlog_bytes", "backlog_packets"]
    pd.DataFrame(rows, columns=cols).to_parquet(links_out, index=False)
    pd.DataFrame(cpu_rows, columns=["t_ns", "some_avg10", "some_total_us", "full_total_us"]).to_parquet(
        cpu_out, index=False)
