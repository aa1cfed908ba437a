"""One simulation run, end to end: plan, estimate, simulate in a child process, record.

The packet simulator is the second engine behind ``fabric run``: it takes the same fabric graph
and Schedule as the emulator (:mod:`fabric.emu.runner`) and writes the same run directory
(:mod:`fabric.rundir`), at real link rates (``scale = 1``) or divided by ``k`` for a cross-check
against the emulator. ns-3 runs in a child process (:mod:`fabric.sim.child`) in its own process
group; a failure or Ctrl-C kills it, and the staged run directory is removed with everything in it.

Times in the run directory are simulated nanoseconds; schedule time 0 is ``run.json["t0_ns"]``
(the noise probe runs before it). Nothing is dilated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import networkx as nx
import numpy as np
import pandas as pd

from fabric import __version__
from fabric.errors import FabricError, SpecError
from fabric.probe import DEFAULT_PAYLOAD_BYTES, HEADER_BYTES, WIRE_OVERHEAD_BYTES
from fabric.replay import LEAD_S, NOISE_PROBE_PAYLOAD_BYTES, emulated_sizes, noise_probe_schedule, wire_packet_bytes
from fabric.rundir import RunJson, check_out_dir, node_facts, record, staged_run_dir
from fabric.schedule import normalize
from fabric.sim import native
from fabric.sim.model import DROP_SITES, LEAD_NS, SimPlan, build_plan, node_order, path_serialization_ns
from fabric.sim.native import ns3_wheel_version
from fabric.specs import FabricSpec
from fabric.topology import fabric_facts, hosts

NS3_VERSION = "ns-3.44"
MAX_WALL_S = 30 * 60          # refuse runs estimated longer than this
# Cost model of estimate(), measured on the 2-vCPU development machine with fabric/sim/bench.py
# (2026-12-01, machine otherwise idle): 16 hosts, 100 ms of mixed inference: 33.6M events at 0.58M/s;
# 1,024 hosts, a 1 ms MoE window: 12.1M events at 0.38M/s; ~8 events per packet sent (9 across the
# fabric). Another busy process on the machine costs up to a quarter of that speed.
EVENTS_PER_PACKET = 1.0       # the sender's slot
EVENTS_PER_LINK = 2.0         # transmit complete + arrival at the far end, per link crossed
EVENTS_PER_SCHEDULED_PACKET = 3.0  # request, grant, credit ...
CONTROL_EVENT_COST = 0.2      # ... each about a fifth of a packet event (no packet is touched): the
                              # scheduled fabric's 100 ms of mixed inference ran 47.9M events at 0.62M/s
EVENTS_PER_S_SMALL = 0.58e6   # up to SMALL_NODES nodes
EVENTS_PER_S_LARGE = 0.38e6   # at LARGE_NODES nodes (interpolated on log(nodes))
SMALL_NODES, LARGE_NODES = 64, 1100
STARTUP_S = 0.3               # start the child, load the compiled model: 0.24 s of a 0.47 s run of 20k packets
                              # (2026-12-01; ~7 s while the child parsed ns-3's headers and compiled the model)
COLLECT_S_PER_PACKET = 2e-6   # reading records back and writing the tables
COLLECT_S_PER_MESSAGE = 2e-5
BASE_MEMORY_BYTES = 510e6     # the child after loading the model; 240 MB less than when it compiled the model
                              # itself (39 MB against 278 MB resident after start-up, measured 2026-12-01)
RECORD_BYTES = 60.0           # per packet: the child's records, their file, the parent's arrays
ROW_BYTES = 250.0             # per packets.parquet row kept (a DataFrame with host names)
PORT_BYTES = 4096.0           # per link direction: device, queue, channel
QUEUED_PACKET_BYTES = 600.0   # a packet waiting in a queue (ns-3 Packet, buffer, our bookkeeping)


class SimulationError(FabricError):
    """The simulator process failed (a model bug, a crash of the compiled C++, out of memory)."""


@dataclass
class SimOptions:
    seed: int = 1              # workload seed (recorded; also seeds the packet sample)
    hash_seed: int = 1         # ECMP hash seed
    scale: float = 1.0         # k: rates, buffers and message sizes divided by k (1 = real)
    payload_bytes: int = DEFAULT_PAYLOAD_BYTES
    tmax_s: float = 0.01       # wait after the last send, simulated
    sample_interval_s: float = 1e-4   # link-counter sampling period, simulated
    packet_cap: int = 2_000_000       # packets.parquet rows kept; above it a sample of whole messages
    name: str | None = None
    extra: dict = field(default_factory=dict)  # copied into run.json (workload facts)


# --------------------------------------------------------------------------------------------
# Estimate
# --------------------------------------------------------------------------------------------

def _available_memory_bytes() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def events_per_s(nodes: int) -> float:
    """Simulator speed at this many nodes (measured; slower as the working set outgrows the caches)."""
    if nodes <= SMALL_NODES:
        return EVENTS_PER_S_SMALL
    f = min(1.0, np.log(nodes / SMALL_NODES) / np.log(LARGE_NODES / SMALL_NODES))
    return float(np.exp((1 - f) * np.log(EVENTS_PER_S_SMALL) + f * np.log(EVENTS_PER_S_LARGE)))


def estimate(spec: FabricSpec, g: nx.MultiGraph, schedule: pd.DataFrame, options: SimOptions) -> dict:
    """Events, memory and wall time the simulation of ``schedule`` will take (before running it).

    Events: one per packet sent, two per link it crosses (four links between edges, two within
    one), three more per packet on a scheduled fabric (request, grant, credit). Speed and memory
    are the development machine's (module constants), so the figures are estimates.
    """
    schedule = normalize(schedule)
    _, packets, _ = emulated_sizes(schedule, options.scale, options.payload_bytes)
    edge_of = {h: g.nodes[h]["edge"] for h in hosts(g)}
    crosses = schedule["src"].map(edge_of).to_numpy() != schedule["dst"].map(edge_of).to_numpy()
    links_crossed = np.where(crosses, 4, 2)
    n_probes = len(noise_probe_schedule(g, LEAD_S))
    n_packets = int(packets.sum()) + n_probes
    packet_events = float((packets * (EVENTS_PER_PACKET + EVENTS_PER_LINK * links_crossed)).sum()
                          + n_probes * (EVENTS_PER_PACKET + 4 * EVENTS_PER_LINK) + 2 * len(schedule))
    control_events = n_packets * EVENTS_PER_SCHEDULED_PACKET if spec.kind == "scheduled" else 0.0
    events = packet_events + control_events
    nodes = g.number_of_nodes()
    directions = 2 * g.number_of_edges()
    span_s = (float(schedule["t_start_s"].max() - schedule["t_start_s"].min()) if len(schedule) else 0.0) + options.tmax_s
    samples = directions * (span_s / options.sample_interval_s + 2)
    buffered = sum(d["buffer_bytes"] / options.scale for _, _, d in g.edges(data=True)) * 2
    if spec.kind == "scheduled":
        edges = sum(1 for n in g.nodes if g.nodes[n]["tier"] == "edge")
        buffered += edges * len(edge_of) * spec.voq_depth_bytes / options.scale
    queued = min(n_packets, buffered / wire_packet_bytes(options.payload_bytes))
    memory = (BASE_MEMORY_BYTES + n_packets * RECORD_BYTES + min(n_packets, options.packet_cap) * ROW_BYTES
              + directions * PORT_BYTES + queued * QUEUED_PACKET_BYTES + samples * 60.0)
    wall = (STARTUP_S + (packet_events + CONTROL_EVENT_COST * control_events) / events_per_s(nodes)
            + n_packets * COLLECT_S_PER_PACKET
            + len(schedule) * COLLECT_S_PER_MESSAGE + samples * 2e-7)
    return {"events": events, "packets": n_packets, "memory_bytes": float(memory), "wall_s": float(wall),
            "events_per_s": events_per_s(nodes), "nodes": nodes,
            "available_memory_bytes": _available_memory_bytes(), "max_wall_s": MAX_WALL_S}


def _refuse_if_too_big(spec: FabricSpec, est: dict) -> None:
    what = (f"the simulation is estimated at {est['events']:.3g} events ({est['packets']:,} packets), "
            f"{est['wall_s'] / 60:.1f} min of wall time and {est['memory_bytes'] / 2**30:.1f} GiB")
    if est["wall_s"] > MAX_WALL_S:
        raise SpecError(spec.source, "", f"{what}, over the {MAX_WALL_S // 60} min limit; simulate a shorter "
                                         f"window of the schedule or a smaller design, or raise the scale k")
    if est["memory_bytes"] > est["available_memory_bytes"]:
        raise SpecError(spec.source, "", f"{what}, over the {est['available_memory_bytes'] / 2**30:.1f} GiB this "
                                         f"machine has available; simulate a shorter window or a smaller design")


# --------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------

MAX_PAYLOAD_BYTES = 9000 - WIRE_OVERHEAD_BYTES  # the links' MTU


def check_options(options: SimOptions) -> None:
    """Refuse options no run can honour, naming the option and what would be valid."""
    checks = [
        ("scale", options.scale >= 1, "k must be at least 1 (1 = real rates)"),
        ("payload_bytes", HEADER_BYTES <= options.payload_bytes <= MAX_PAYLOAD_BYTES,
         f"must be between {HEADER_BYTES} (the probe header) and {MAX_PAYLOAD_BYTES} (a 9000-byte MTU)"),
        ("tmax_s", options.tmax_s >= 0, "must be zero or positive"),
        ("sample_interval_s", options.sample_interval_s >= 1e-9, "must be at least 1 ns"),
        ("packet_cap", options.packet_cap >= 0, "must be zero or positive"),
    ]
    for name, ok, what in checks:
        if not ok:
            raise SpecError("simulator options", name, f"got {getattr(options, name)!r}; {what}")


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def run(spec: FabricSpec, g: nx.MultiGraph, schedule: pd.DataFrame, out_dir: Path, options: SimOptions,
        progress: Callable[[str, float], None] | None = None) -> Path:
    """Simulate ``schedule`` on fabric ``g`` and write the run directory ``out_dir``.

    ``progress(stage, fraction)`` is called as the run advances (stages: import, build, simulate,
    collect). Raises :class:`SpecError` before any work when the run is estimated too big.
    """
    started = time.time()
    report = progress or (lambda stage, fraction: None)
    try:
        schedule = normalize(schedule)
    except ValueError as exc:
        raise SpecError("schedule", "", str(exc)) from None
    if schedule.empty:
        raise SpecError(spec.source, "", "the schedule has no messages")
    known = set(hosts(g))
    unknown = sorted((set(schedule["src"]) | set(schedule["dst"])) - known)
    if unknown:
        raise SpecError(spec.source, "", f"schedule uses hosts {unknown[:5]} that the design lacks "
                                         f"(it has h0..h{len(known) - 1})")
    check_options(options)
    check_out_dir(out_dir)
    est = estimate(spec, g, schedule, options)
    _refuse_if_too_big(spec, est)
    wheel = ns3_wheel_version()
    options = replace(options, name=options.name or Path(out_dir).name)
    plan = build_plan(spec, g, schedule, options.scale, options.payload_bytes, options.hash_seed, options.tmax_s,
                      options.sample_interval_s)
    in_main = threading.current_thread() is threading.main_thread()
    old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        with staged_run_dir(out_dir) as stage:
            work = stage / ".work"
            work.mkdir()
            result = _simulate(plan, work, report)
            report("collect", 0.5)
            _write_run_dir(stage, work, spec, g, schedule, plan, options, result, est, started, wheel)
            shutil.rmtree(work)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_sigterm)
    report("collect", 1.0)
    return Path(out_dir)


def _simulate(plan: SimPlan, work: Path, report: Callable[[str, float], None]) -> dict:
    """Run the child on ``plan``; return its result (the records are in ``work/records.npz``).

    The model library is found (or, the first time, compiled) here rather than in the child, so a
    missing compiler or a failed build is an :class:`EnvironmentNotReady` in the caller's process."""
    report("import", 0.0)
    t = time.time()
    library = native.model_library()
    library_s = time.time() - t
    np.savez(work / "plan.npz", **plan.arrays())
    (work / "settings.json").write_text(json.dumps(plan.settings()))
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(work / "child.log", "wb") as log:
        # Own process group: a terminal's Ctrl-C reaches this process only, which then kills it.
        proc = subprocess.Popen([sys.executable, "-m", "fabric.sim.child", str(work), str(library)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                                start_new_session=True)
    try:
        for line in proc.stdout:
            try:
                msg = json.loads(line)
                report(str(msg["stage"]), float(msg["fraction"]))
            except (ValueError, KeyError, TypeError):
                continue  # not a progress line (ns-3 printing)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own group: nothing else is in it
            except ProcessLookupError:
                pass
            proc.wait()
        proc.stdout.close()
    if code != 0 or not (work / "result.json").exists():
        lines = [ln for ln in (work / "child.log").read_text(errors="replace").splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else "no message"
        raise SimulationError(f"the simulator process failed (exit code {code}): {why}")
    return json.loads((work / "result.json").read_text()) | {"model_library_s": round(library_s, 3)}


def _ns(ps: np.ndarray) -> np.ndarray:
    """Picoseconds -> nanoseconds (nearest); -1 (never) stays -1."""
    ps = np.asarray(ps, dtype=np.int64)
    return np.where(ps >= 0, (ps + 500) // 1000, -1).astype(np.int64)


def packet_sample(counts: np.ndarray, kinds: np.ndarray, cap: int, seed: int) -> np.ndarray | None:
    """Load messages whose packets are kept in packets.parquet when there are more than ``cap``
    (None: keep all).

    Whole messages, per traffic class in proportion to the class's packets (so every class keeps
    its packet metrics), in a seeded random order while they fit; a class whose every message is
    larger than its share keeps its smallest one.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total <= cap:
        return None
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(counts), dtype=bool)
    kinds = np.asarray(kinds, dtype=object)
    for kind in sorted(set(kinds.tolist())):
        idx = np.flatnonzero(kinds == kind)
        share = cap * counts[idx].sum() / total
        order = idx[rng.permutation(len(idx))]
        fits = np.cumsum(counts[order]) <= share
        keep[order[fits]] = True
        if not fits.any():
            keep[idx[np.argmin(counts[idx])]] = True
    return keep


def _write_run_dir(out_dir: Path, work: Path, spec: FabricSpec, g: nx.MultiGraph, schedule: pd.DataFrame,
                   plan: SimPlan, options: SimOptions, result: dict, est: dict, started: float, wheel: str) -> None:
    r = np.load(work / "records.npz")
    host_names = np.array(hosts(g), dtype=object)
    n_probe, n_msgs = plan.n_probes, len(plan.msg_packets)
    counts = plan.msg_packets.astype(np.int64)
    rec_msg = np.repeat(np.arange(n_msgs), counts)
    seq = np.arange(plan.n_records, dtype=np.int64) - plan.msg_first_rec[rec_msg]
    sizes = np.where(seq == counts[rec_msg] - 1, plan.msg_last_payload[rec_msg], plan.msg_payload[rec_msg])
    tx_ns, rx_ns = _ns(r["tx_ps"]), _ns(r["rx_ps"])
    received = rx_ns >= 0
    src, dst = plan.msg_src[rec_msg], plan.msg_dst[rec_msg]
    msg_ids = np.concatenate([plan.probes["msg_id"].to_numpy(np.int64), schedule["msg_id"].to_numpy(np.int64)])
    is_probe = rec_msg < n_probe

    load_counts = counts[n_probe:]
    keep_msgs = packet_sample(load_counts, schedule["kind"].to_numpy(dtype=object), options.packet_cap, options.seed)
    keep = is_probe.copy()
    keep[~is_probe] = True if keep_msgs is None else keep_msgs[rec_msg[~is_probe] - n_probe]
    rows = np.flatnonzero(keep)
    frame = pd.DataFrame({
        "msg_id": msg_ids[rec_msg[rows]], "seq": seq[rows], "src": host_names[src[rows]], "dst": host_names[dst[rows]],
        "bytes": sizes[rows], "tx_ns": tx_ns[rows], "rx_ns": rx_ns[rows], "copies": received[rows].astype(np.int16),
        "path": r["path"][rows],
        # Serialization at every hop: already in rx_ns (a simulated link clocks every packet out);
        # recorded so the analysis knows each message's store-and-forward (fabric/rundir/tables.py).
        "ser_ns": path_serialization_ns(plan, g, sizes[rows] + WIRE_OVERHEAD_BYTES, src[rows], dst[rows]),
    })
    probe_rows = is_probe[rows]
    tables = {"noise": frame[probe_rows].reset_index(drop=True), "packets": frame[~probe_rows].reset_index(drop=True)}
    del frame

    # Messages: every load message, from every record (not only the kept ones).
    load = ~is_probe
    starts = plan.msg_first_rec[n_probe:] - plan.msg_first_rec[n_probe]
    tx_load, rx_load, got = tx_ns[load], rx_ns[load], received[load]
    ends = starts + load_counts - 1
    dropped_per_msg = np.add.reduceat((r["dropped"][load] > 0).astype(np.int64), starts)
    tables["messages"] = pd.DataFrame({
        "msg_id": schedule["msg_id"].to_numpy(), "src": schedule["src"], "dst": schedule["dst"],
        "kind": schedule["kind"], "group": schedule["group"], "request_id": schedule["request_id"],
        "step": schedule["step"], "bytes": schedule["bytes"], "bytes_emulated": plan.load_emulated_bytes,
        "packets": load_counts, "packets_received": np.add.reduceat(got.astype(np.int64), starts),
        "t_sched_ns": _ns(plan.msg_start_ps[n_probe:]), "t_tx_first_ns": tx_load[starts],
        "t_tx_last_ns": tx_load[ends], "t_rx_last_ns": np.maximum.reduceat(np.where(got, rx_load, -1), starts),
    })
    tables["links"] = _links_table(r, plan, g)
    tables["cpu"] = pd.DataFrame()
    tables["schedule"] = schedule

    acc = result["accounting"]
    # Every packet sent is received, dropped or still in the network, by the devices' own counters;
    # and the per-packet records agree with them.
    in_network = acc["queued"] + acc["on_wire"] + acc["held"]
    accounted = (acc["sent"] == acc["received"] + acc["dropped"] + in_network
                 and acc["dropped"] == acc["dropped_records"] == int(r["dropped"].sum())
                 and acc["received"] == int(received.sum()) and acc["sent"] == int((tx_ns >= 0).sum()))
    site = r["drop_site"][r["dropped"] > 0]
    drops_by_queue = {name: int((site == code).sum()) for code, name in DROP_SITES.items()}
    if plan.scheduled is None:
        drops_by_queue.pop("voq")
    messages = tables["messages"]
    wall = time.time() - started
    sim = {
        "events": result["events"], "simulated_s": result["simulated_end_ps"] / 1e12,
        "wall_s": round(wall, 3), "events_per_s": round(result["events"] / max(result["run_s"], 1e-9)),
        "last_send_end_ns": _ns(result["last_send_ps"]).item(),
        "packets_total": int(plan.n_records - n_probe), "packets_recorded": int(len(tables["packets"])),
        "packets_sampled": keep_msgs is not None, "drops_by_queue": drops_by_queue,
        "messages_unfinished": int((messages["packets_received"] < messages["packets"]).sum()),
        # Unfinished with packets neither received nor dropped: still in the network when the run ended.
        "messages_cut_off": int((messages["packets_received"] + dropped_per_msg < messages["packets"]).sum()),
        "messages_with_drops": int((dropped_per_msg > 0).sum()),
        "every_packet_accounted": bool(accounted), "accounting": acc,
        # model_library_s: finding the compiled model in the cache (~0), or compiling it when missing
        "timings_s": {k: result[k] for k in ("model_library_s", "import_s", "build_s", "run_s", "collect_s")},
        "estimate": {k: est[k] for k in ("events", "wall_s", "memory_bytes")},
        "max_rss_bytes": result["max_rss_bytes"], "noise_probe_packets": int(n_probe),
    }
    details = {
        "engine_details": "packet-level, ns-3 point-to-point links with DropTail byte queues; per-packet logic "
                          "in C++ (fabric/sim/engine.h, ddc.h), compiled once into a cached library",
        "sim": sim,
        "scale": {"k": plan.k, "dilation": 1.0,
                  "note": "link rates, message sizes and buffers divided by k (1: real rates); times are "
                          "simulated nanoseconds; propagation delays are not scaled"},
        "link_delay_ns": spec.link_delay_ns,
        "noise_probe_payload_bytes": NOISE_PROBE_PAYLOAD_BYTES,
        "clock": "simulated time in ns; the noise probe runs before t0_ns, schedule time 0 is t0_ns",
        "host_side_drops": drops_by_queue["host nic"],
        "links_shaped": _links_shaped(plan, spec),
    }
    if keep_msgs is not None:
        details["packet_sample"] = {
            "cap": options.packet_cap, "messages_kept": int(keep_msgs.sum()), "messages": int(len(keep_msgs)),
            "packets_kept": int(load_counts[keep_msgs].sum()),
            "method": "whole load messages, per traffic class in proportion to its packets, in a random order "
                      "seeded by the run's seed while they fit (a class keeps at least its smallest message); "
                      "messages.parquet covers every message, and messages without packet rows complete from "
                      "it"}
    if plan.scheduled is not None:
        d = plan.scheduled
        details["scheduled_fabric"] = {
            "credit_bytes": d["credit_bytes"], "voq_limit_bytes": d["voq_limit_bytes"],
            "egress_flow_control_packets": d["fc_packets"], "speedup": d["speedup"], "policy": d["policy"],
            "ncp_weights": {f"{spec.edge_role}{i}": float(w) for i, w in enumerate(d["ncp_weight"])},
            "request_credit_one_way_ns": d["ctrl_remote_ps"] / 1e3, "reorder_timeout_ns": d["reorder_timeout_ps"] / 1e3,
            **result["scheduled"],
            "note": "VOQ per (ingress NCP, egress host port); credits of one packet spaced at the port rate x "
                    "speedup, held while the egress queue holds egress_flow_control_packets; requests and credits "
                    "take the NCP-NCF-NCP latency and no link capacity; packets sprayed round-robin per "
                    "destination NCP and reordered at the egress NCP; the design's scheduler tick and "
                    "grant_fraction describe the emulator's tick-based scheduler and are not used"}
    extra = {k: v for k, v in options.extra.items() if k != "workload"}
    run = RunJson(
        engine="sim", engine_version=f"{NS3_VERSION} (ns3 wheel {wheel})", name=options.name,
        fabric_version=__version__,
        topology={"path": spec.source, "sha256": spec.content_sha256, "spec": spec.to_dict(), "facts": fabric_facts(g)},
        workload=options.extra.get("workload", {}), seed=options.seed, hash_seed=options.hash_seed,
        scale_k=float(plan.k), dilation=1.0, payload_bytes=options.payload_bytes, t0_ns=LEAD_NS,
        tmax_ns=int(round(options.tmax_s * 1e9)), nodes=node_facts(g), idle_path_delay_ns=None,
        wall_time_s=round(wall, 3), details=extra | details)
    record(out_dir, tables, run)


def _links_table(r, plan: SimPlan, g: nx.MultiGraph) -> pd.DataFrame:
    """links.parquet rows from the port samples (port 2i: link i's lower-tier end) and VOQ samples."""
    names = np.array(node_order(g), dtype=object)
    port = r["link_port"].astype(np.int64)
    link, end = port // 2, port % 2
    a, b = names[plan.link_a[link]], names[plan.link_b[link]]
    frame = pd.DataFrame({
        "t_ns": _ns(r["link_t_ps"]), "link_id": np.array(plan.link_ids, dtype=object)[link],
        "node": np.where(end == 0, a, b), "peer": np.where(end == 0, b, a),
        "kind": np.array(plan.link_kinds, dtype=object)[link], "queue": "port",
        "rate_bps": np.rint(plan.link_rate_bps[link]).astype(np.int64),
        "tx_bytes": r["link_tx_bytes"].astype(np.int64), "tx_packets": r["link_tx_packets"].astype(np.int64),
        "drops": r["link_drops"].astype(np.int64), "backlog_bytes": r["link_backlog_bytes"].astype(np.int64),
        "backlog_packets": r["link_backlog_packets"].astype(np.int64)})
    parts = [frame]
    if plan.scheduled is not None and "voq_port" in r:
        w = r["voq_port"].astype(np.int64)
        edges = np.array([n for n in names if g.nodes[n]["tier"] == "edge"], dtype=object)
        edges = edges[np.argsort([g.nodes[n]["index"] for n in edges])]
        host_names = np.array(hosts(g), dtype=object)
        ncp = edges[plan.scheduled["watch_ncp"][w]]
        dst = host_names[plan.scheduled["watch_dst"][w]]
        port_bps = np.array([g.nodes[h]["nic_rate_bps"] / plan.k for h in host_names])
        parts.append(pd.DataFrame({
            "t_ns": _ns(r["voq_t_ps"]), "link_id": pd.Series(ncp).astype(str) + "-voq", "node": ncp, "peer": dst,
            "kind": "voq", "queue": "voq:" + pd.Series(dst).astype(str),
            "rate_bps": np.rint(port_bps[plan.scheduled["watch_dst"][w]]).astype(np.int64),
            "tx_bytes": r["voq_tx_bytes"].astype(np.int64), "tx_packets": r["voq_tx_packets"].astype(np.int64),
            "drops": r["voq_drops"].astype(np.int64), "backlog_bytes": r["voq_backlog_bytes"].astype(np.int64),
            "backlog_packets": r["voq_backlog_packets"].astype(np.int64)}))
    links = pd.concat(parts, ignore_index=True)
    # The end-of-run sample can fall on a periodic one.
    return links.drop_duplicates(["t_ns", "link_id", "node", "queue"], keep="last").reset_index(drop=True)


def _links_shaped(plan: SimPlan, spec: FabricSpec) -> list[dict]:
    """Each link direction as built: rate, egress buffer, propagation delay (emulated units)."""
    names = plan.node_names
    out = []
    for i, link_id in enumerate(plan.link_ids):
        a, b = names[plan.link_a[i]], names[plan.link_b[i]]
        for node, peer, buf in ((a, b, plan.queue_a_bytes[i]), (b, a, plan.queue_b_bytes[i])):
            out.append({"link_id": link_id, "node": node, "peer": peer, "kind": plan.link_kinds[i],
                        "rate_bps": int(round(plan.link_rate_bps[i])), "buffer_bytes": int(buf), "burst_bytes": 0,
                        "delay_ns": spec.link_delay_ns})
    return out
