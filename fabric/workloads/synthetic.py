"""Synthetic patterns that isolate one fabric behaviour: incast, permutation, background, victim.

* incast — N senders send equal messages to one receiver at the same moment, every ``period``:
  the egress port's buffer (or the VOQs of a scheduled fabric) must absorb N−1 messages.
* permutation — every host sends to one host on another edge switch, ``flows_per_host``
  concurrent messages per round: full bisection load where ECMP collisions show.
* background — steady low-rate messages from each host to random other hosts.
* victim — one steady low-rate flow whose delay shows whether congestion elsewhere spills over.

Loads are per sender (fraction of its NIC or an absolute rate). The number of messages is
rounded to the nearest whole number that carries the target bytes over the window and the
messages are spread evenly, so the offered load equals the target to within half a message.
"""

from __future__ import annotations

import numpy as np

from fabric.workloads.hosts import HostContext
from fabric.workloads.profile import Background, Incast, Permutation, Victim
from fabric.workloads.rows import Rows


def _rounds(span_s: float, rate_bps: float, bytes_per_round: int) -> int:
    """Whole rounds that carry ``rate_bps`` over ``span_s`` (at least one)."""
    return max(1, int(round(span_s * rate_bps / (bytes_per_round * 8))))


def incast(p: Incast, ctx: HostContext, rng: np.random.Generator, rows: Rows) -> list[str]:
    receiver = ctx.select_one(p.name, "receiver", p.receiver)
    senders = [h for h in ctx.select_as(p.name, "senders", p.senders) if h != receiver]
    if not senders:
        raise ctx.fail(p.senders.key, f"selects no host other than the receiver {receiver}")
    ctx.resolved[f"{p.name}.senders"] = senders
    times = p.start_s + np.arange(0, p.stop_s - p.start_s, p.period_s)
    if p.repeats is not None:
        times = times[:p.repeats]
    k = np.repeat(np.arange(len(times)), len(senders))
    src = np.tile(np.asarray(senders, dtype=object), len(times))
    group = np.char.add(f"{p.name}/k", k.astype(str)).astype(object)
    rows.add(times[k], src, receiver, p.message_bytes, "incast", group, -1, k)
    fan_in_bytes = len(senders) * p.message_bytes
    return [f"{p.name}: {len(senders)} -> 1 ({', '.join(senders)} -> {receiver}), {p.message_bytes / 1e6:g} MB "
            f"each, {len(times)} rounds every {p.period_s * 1e3:g} ms; {fan_in_bytes / 1e6:g} MB arrive at once, "
            f"{fan_in_bytes * 8 / ctx.nic_bps(receiver) * 1e3:.2f} ms of the receiver's NIC"]


def edge_permutation(hosts: list[str], edge_of, rng: np.random.Generator, tries: int = 1000) -> list[str]:
    """A random permutation of ``hosts`` where nobody maps to a host on its own edge switch.

    Falls back to a deterministic rotation by one edge block when random tries fail (which
    happens only when one edge switch holds more than half the hosts).
    """
    edges = [edge_of(h) for h in hosts]
    for _ in range(tries):
        perm = rng.permutation(len(hosts))
        if all(edges[i] != edges[perm[i]] for i in range(len(hosts))):
            return [hosts[i] for i in perm]
    order = sorted(range(len(hosts)), key=lambda i: (edges[i], i))
    shift = max(edges.count(e) for e in set(edges))
    out = [None] * len(hosts)
    for pos, i in enumerate(order):
        out[i] = hosts[order[(pos + shift) % len(hosts)]]
    if any(edges[i] == edge_of(out[i]) for i in range(len(hosts))):
        raise ValueError("no cross-edge permutation exists for these hosts")
    return out


def permutation(p: Permutation, ctx: HostContext, rng: np.random.Generator, rows: Rows) -> list[str]:
    hosts = ctx.select_as(p.name, "hosts", p.hosts, minimum=2)
    if len({ctx.edge(h) for h in hosts}) < 2:
        raise ctx.fail(p.hosts.key, f"selects hosts on one edge switch only ({p.hosts.describe()}); a permutation "
                                    f"needs hosts on at least two")
    try:
        edge_permutation(hosts, ctx.edge, np.random.default_rng(0))
    except ValueError:
        raise ctx.fail(p.hosts.key, "more than half the selected hosts sit on one edge switch; no permutation "
                                    "can send every host across the fabric") from None
    span = p.stop_s - p.start_s
    # Each host gets its own round count from its own NIC rate (heterogeneous designs).
    rate = {h: p.load.bps(ctx.nic_bps(h)) for h in hosts}
    n_rounds = {h: _rounds(span, rate[h], p.flows_per_host * p.message_bytes) for h in hosts}
    rounds = max(n_rounds.values())
    perms = [edge_permutation(hosts, ctx.edge, rng)]
    for _ in range(1, rounds if p.reshuffle else 1):
        perms.append(edge_permutation(hosts, ctx.edge, rng))
    for h_i, h in enumerate(hosts):
        n = n_rounds[h]
        period = span / n
        k = np.repeat(np.arange(n), p.flows_per_host)
        dst = np.asarray([perms[kk % len(perms)][h_i] for kk in k], dtype=object)
        group = np.char.add(f"{p.name}/k", k.astype(str)).astype(object)
        rows.add(p.start_s + k * period, h, dst, p.message_bytes, "permutation", group, -1, k)
    return [f"{p.name}: {len(hosts)} hosts, each to one host on another edge switch, {p.flows_per_host} x "
            f"{p.message_bytes / 1e6:g} MB per round, {p.load.describe()} per host"
            + ("; new permutation every round" if p.reshuffle else "")]


def background(p: Background, ctx: HostContext, rng: np.random.Generator, rows: Rows) -> list[str]:
    hosts = ctx.select_as(p.name, "hosts", p.hosts)
    dests = ctx.select_as(p.name, "destinations", p.destinations)
    span = p.stop_s - p.start_s
    for h in hosts:
        choices = np.asarray([d for d in dests if d != h], dtype=object)
        if len(choices) == 0:
            raise ctx.fail(p.destinations.key, f"leaves {h} no destination other than itself")
        n = _rounds(span, p.load.bps(ctx.nic_bps(h)), p.message_bytes)
        period = span / n
        # A random phase per host keeps senders from firing in lockstep; steady, not bursty.
        t = p.start_s + (np.arange(n) + rng.random()) * period
        dst = choices[rng.integers(0, len(choices), size=n)]
        rows.add(t, h, dst, p.message_bytes, "background", f"{p.name}/{h}", -1, np.arange(n))
    return [f"{p.name}: {len(hosts)} hosts, {p.message_bytes / 1e3:g} KB messages to random hosts at "
            f"{p.load.describe()} each"]


def victim(p: Victim, ctx: HostContext, rng: np.random.Generator, rows: Rows) -> list[str]:
    src = ctx.select_one(p.name, "src", p.src)
    dst = ctx.select_one(p.name, "dst", p.dst)
    if src == dst:
        raise ctx.fail(p.dst.key, f"selects {dst}, the victim flow's own source")
    span = p.stop_s - p.start_s
    n = _rounds(span, p.load.bps(ctx.nic_bps(src)), p.message_bytes)
    t = p.start_s + np.arange(n) * (span / n)
    rows.add(t, src, dst, p.message_bytes, "victim", p.name, -1, np.arange(n))
    return [f"{p.name}: {src} -> {dst} ({ctx.edge(src)} -> {ctx.edge(dst)}), {p.message_bytes / 1e3:g} KB every "
            f"{span / n * 1e3:.3g} ms ({p.load.describe()})"]
