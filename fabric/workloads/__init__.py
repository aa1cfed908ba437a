"""Workload profiles turned into deterministic Schedules (docs/design.md §3).

:func:`load_workload` reads and validates a ``traffic/*.yaml`` profile (format in
:mod:`fabric.workloads.profile`); :func:`generate_schedule` runs each of its patterns against a
fabric graph with its own seeded random stream and returns one normalized Schedule frame.
:func:`generate` returns the same frame plus notes (what was simplified, e.g. emulated layer
subsets) and the per-pattern targets; :func:`summarize` condenses a schedule into the figures
``fabric traffic show`` prints.

Determinism: pattern *i* draws from ``SeedSequence(seed).spawn(n)[i]``, so the same profile and
seed give a byte-identical schedule, and adding a pattern at the end leaves earlier ones unchanged.

A profile whose offered load a host's NIC cannot carry over the whole duration is refused
(it would only measure the sender's own queue, at any scale factor).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from fabric.errors import WorkloadError
from fabric.topology import hosts as graph_hosts
from fabric.workloads.hosts import HostContext
from fabric.workloads.patterns import PATTERNS
from fabric.workloads.profile import MAX_MESSAGES, Pattern, Workload, load_workload, parse_workload
from fabric.workloads.rows import Rows

# Pattern type -> generator, from the registry (kept for callers that look a generator up by type).
GENERATORS = {name: p.generator for name, p in PATTERNS.items()}


@dataclass
class Generated:
    """A generated schedule with what the generator wants a reader to know."""

    workload: Workload
    seed: int
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    pattern_of_msg: np.ndarray | None = None   # pattern name per row of ``frame``


def generate(workload: Workload, graph: nx.MultiGraph, seed: int | None = None) -> Generated:
    """Generate the schedule of ``workload`` on ``graph`` (``seed`` overrides the profile's)."""
    # Imported here: fabric.schedule reads its kinds from the pattern registry, which imports this package.
    from fabric.schedule import normalize

    seed = workload.seed if seed is None else int(seed)
    if seed < 0:
        raise WorkloadError(workload.source, "seed", f"got {seed}; must be a non-negative integer")
    streams = np.random.SeedSequence(seed).spawn(len(workload.patterns))
    ctx = HostContext(graph=graph, source=workload.source, resolved={})
    parts, notes = [], []
    for index, (pattern, stream) in enumerate(zip(workload.patterns, streams)):
        ctx.current = pattern.name
        rows = Rows()
        notes += PATTERNS[pattern.type].generator(pattern, ctx, np.random.default_rng(stream), rows)
        frame = rows.frame()
        frame = frame[(frame["t_start_s"] >= pattern.start_s) & (frame["t_start_s"] < pattern.stop_s)]
        frame = frame.assign(_pattern=index, _order=np.arange(len(frame)))
        parts.append(frame)
    frame = pd.concat(parts, ignore_index=True)
    if frame.empty:
        raise WorkloadError(workload.source, "patterns", "the profile generates no messages in its duration")
    if len(frame) > MAX_MESSAGES:
        raise WorkloadError(workload.source, "patterns",
                            f"{len(frame):,} messages, above the {MAX_MESSAGES:,} a small emulator replays; shorten "
                            f"the duration or lower layers_emulated / rates")
    frame = frame.sort_values(["t_start_s", "_pattern", "_order"], kind="stable").reset_index(drop=True)
    frame["msg_id"] = np.arange(len(frame), dtype=np.int64)
    pattern_of_msg = np.asarray([workload.patterns[i].name for i in frame["_pattern"]], dtype=object)
    _check_load(workload, graph, frame)
    frame = normalize(frame)
    frame.attrs["compute"] = dict(ctx.compute)  # read by workload_facts; survives slicing (--window)
    if ctx.requests:  # written as requests.parquet by the recorder
        # plain lists: pandas compares attrs (concat, copies), which arrays would make ambiguous
        frame.attrs["requests"] = {c: np.concatenate([r[c] for r in ctx.requests]).tolist() for c in ctx.requests[0]}
    return Generated(workload=workload, seed=seed, frame=frame, notes=notes, pattern_of_msg=pattern_of_msg)


def generate_schedule(workload: Workload, graph: nx.MultiGraph, seed: int | None = None) -> pd.DataFrame:
    """The normalized Schedule of ``workload`` on ``graph``; ``seed`` overrides the profile's."""
    return generate(workload, graph, seed).frame


def workload_facts(workload: Workload, schedule: pd.DataFrame) -> dict:
    """What economics and reports need to know about a workload and its schedule, stored in run.json."""
    return {
        "name": workload.name, "description": workload.description, "source": str(workload.source),
        "sha256": workload.content_sha256, "model": workload.model.name if workload.model else None,
        "duration_s": workload.duration_s, "seed": workload.seed,
        "patterns": [{"type": p.type, "name": p.name, "model": p.model.name if p.model else None,
                      "layers_emulated": getattr(p, "layers_emulated", 0) or 0,
                      **({"phase": p.phase} if getattr(p, "phase", None) else {}),
                      "compute": schedule.attrs.get("compute", {}).get(p.name)} for p in workload.patterns],
        "messages_by_kind": {str(k): int(v) for k, v in schedule["kind"].value_counts().sort_index().items()},
        "messages": int(len(schedule)),
        "bytes": int(schedule["bytes"].sum()),
    }


def load_key(pattern: Pattern) -> str:
    """The profile key that sets a pattern's offered load (named when a load is refused)."""
    key = PATTERNS[pattern.type].load_key
    return f"{pattern.key}.{key}" if key else pattern.load.key


def _check_load(workload: Workload, graph: nx.MultiGraph, frame: pd.DataFrame) -> None:
    """Refuse a host whose average send or receive rate over the duration exceeds its NIC."""
    for column, verb in (("src", "send"), ("dst", "receive")):
        per = frame.groupby([column, "_pattern"])["bytes"].sum()
        totals = per.groupby(level=0).sum()
        for host, total in totals.items():
            nic = graph.nodes[host]["nic_rate_bps"]
            bps = total * 8 / workload.duration_s
            if bps > nic:
                worst = int(per.loc[host].idxmax())
                pattern = workload.patterns[worst]
                raise WorkloadError(
                    workload.source, load_key(pattern),
                    f"host {host} would {verb} {bps / 1e9:.1f} Gbit/s on average over {workload.duration_s:g} s "
                    f"({total / 1e9:.2f} GB, mostly from pattern {pattern.name!r}), above its "
                    f"{nic / 1e9:g} Gbit/s NIC; no scale factor makes that carryable — lower the load")


# ----------------------------------------------------------------------------------------------
# summary for `fabric traffic show`

def summarize(gen: Generated, graph: nx.MultiGraph) -> dict:
    """Messages and bytes per class, offered load per host and in total versus capacity, peak
    fan-in per destination and an edge-to-edge traffic matrix (all in real units)."""
    frame, wl = gen.frame, gen.workload
    duration = wl.duration_s
    all_hosts = graph_hosts(graph)
    nic = {h: float(graph.nodes[h]["nic_rate_bps"]) for h in all_hosts}
    capacity = sum(nic.values())
    by_kind = frame.groupby("kind").agg(messages=("bytes", "size"), bytes=("bytes", "sum"),
                                        groups=("group", "nunique"),
                                        min_bytes=("bytes", "min"), max_bytes=("bytes", "max"))
    classes = {k: {"messages": int(r.messages), "bytes": int(r.bytes), "groups": int(r.groups),
                   "min_message_bytes": int(r.min_bytes), "max_message_bytes": int(r.max_bytes),
                   "offered_load_bps": float(r.bytes) * 8 / duration}
               for k, r in by_kind.iterrows()}
    tx = frame.groupby("src")["bytes"].sum()
    rx = frame.groupby("dst")["bytes"].sum()
    per_host = {h: {"edge": graph.nodes[h]["edge"], "group": graph.nodes[h]["group"],
                    "nic_rate_bps": nic[h],
                    "tx_bps": float(tx.get(h, 0)) * 8 / duration,
                    "rx_bps": float(rx.get(h, 0)) * 8 / duration,
                    "tx_load": float(tx.get(h, 0)) * 8 / duration / nic[h],
                    "rx_load": float(rx.get(h, 0)) * 8 / duration / nic[h]}
                for h in all_hosts}
    total_bytes = int(frame["bytes"].sum())
    fan_in = peak_fan_in(frame, nic)
    edge_of = {h: graph.nodes[h]["edge"] for h in all_hosts}
    edges = sorted(set(edge_of.values()), key=lambda e: graph.nodes[e]["index"])
    matrix = (frame.assign(se=frame["src"].map(edge_of), de=frame["dst"].map(edge_of))
              .pivot_table(index="se", columns="de", values="bytes", aggfunc="sum", fill_value=0)
              .reindex(index=edges, columns=edges, fill_value=0))
    return {
        "workload": wl.name,
        "source": wl.source,
        "fabric": graph.graph.get("name", ""),
        "seed": gen.seed,
        "duration_s": duration,
        "messages": int(len(frame)),
        "bytes": total_bytes,
        "offered_load_bps": total_bytes * 8 / duration,
        "host_capacity_bps": capacity,
        "offered_load_share": total_bytes * 8 / duration / capacity,
        "classes": classes,
        "hosts": per_host,
        "peak_fan_in": fan_in,
        "edge_matrix_bytes": {"edges": edges, "bytes": matrix.astype("int64").values.tolist()},
        "notes": list(gen.notes),
    }


def peak_fan_in(frame: pd.DataFrame, nic_bps: dict[str, float]) -> dict[str, int]:
    """Most distinct senders transmitting to each destination at once, on an ideal fabric.

    Each message occupies ``[t_start, t_start + bytes × 8 / sender NIC rate)``, its time at line
    rate; back-to-back messages of one sender to one destination count once.
    """
    out: dict[str, int] = {}
    ends = frame["t_start_s"].to_numpy() + frame["bytes"].to_numpy() * 8 / frame["src"].map(nic_bps).to_numpy()
    work = pd.DataFrame({"dst": frame["dst"].to_numpy(), "src": frame["src"].to_numpy(),
                         "t0": frame["t_start_s"].to_numpy(), "t1": ends})
    for dst, sub in work.groupby("dst", sort=True):
        intervals = []
        for _, s in sub.sort_values("t0").groupby("src"):
            # Merge one sender's overlapping intervals: its NIC sends them one after another.
            t0s, t1s = s["t0"].to_numpy(), s["t1"].to_numpy()
            cur0, cur1 = t0s[0], t1s[0]
            for a, b in zip(t0s[1:], t1s[1:]):
                if a <= cur1:
                    cur1 = cur1 + (b - a)      # queued behind the previous message
                else:
                    intervals.append((cur0, cur1))
                    cur0, cur1 = a, b
            intervals.append((cur0, cur1))
        events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1]))
        live = peak = 0
        for _, step in events:
            live += step
            peak = max(peak, live)
        out[str(dst)] = peak
    return out


__all__ = ["Workload", "Generated", "load_workload", "parse_workload", "generate", "generate_schedule",
           "workload_facts", "summarize", "peak_fan_in", "GENERATORS"]
