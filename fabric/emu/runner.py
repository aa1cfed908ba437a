"""One emulation run, end to end: build, probe the idle fabric, replay, collect, tear down.

This is the emulator backend behind ``run(...)``: it takes a fabric graph and a Schedule and
leaves a self-describing run directory (:mod:`fabric.rundir`). Everything it creates — namespaces,
veths, qdiscs, nft tables, agent processes — is removed on success, on error and on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import select
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
from fabric.analysis.completion import processor_sharing_finish
from fabric.emu.agents import MessagePlan
from fabric.emu.counters import run_sampler
from fabric.emu.native import receiver_binary, rx_to_npz, sender_binary, tx_to_npz, write_plan, write_receiver_plan
from fabric.emu.network import EmulatedFabric
from fabric.emu.plan import VOQ_BUCKET_PACKETS, build_plan, voq_layout
from fabric.emu.scale import ScaleChoice, choose_scale, design_budget_pps
from fabric.emu.scheduler import Arrivals, run_scheduler
from fabric.errors import EmulationError, SpecError
from fabric.probe import DEFAULT_PAYLOAD_BYTES, PROBE_UDP_PORT, WIRE_OVERHEAD_BYTES
from fabric.replay import LEAD_S, NOISE_PROBE_PAYLOAD_BYTES, emulated_sizes, noise_probe_schedule, wire_packet_bytes
from fabric.rundir import RunJson, check_out_dir, node_facts, record, staged_run_dir
from fabric.schedule import normalize
from fabric.specs import FabricSpec
from fabric.topology import fabric_facts, hosts, path_link_rates_bps

HOST_QUEUE_PACKETS = 32          # the host NIC queue (bfifo) — a safety net
HOST_SLACK_PACKETS = 16          # what the senders keep queued there, to ride out their own stalls...
HOST_TARGET_QUEUE_PACKETS = 4    # ...draining to this before the host's next message starts (sender.c)
SENDER_PROCESSES = 2   # one per vCPU


@dataclass
class RunOptions:
    seed: int = 1              # workload seed (recorded)
    hash_seed: int = 1         # ECMP hash seed written to fib_multipath_hash_seed
    scale: float | None = None
    dilation: float | None = None  # time dilation D (None: chosen from message bursts)
    captures: list[str] = field(default_factory=list)  # link ids to capture with tcpdump
    payload_bytes: int = DEFAULT_PAYLOAD_BYTES
    budget_pps: int | None = None  # packets/s (None: this machine's calibrated budget, calibrating first if needed)
    tmax_s: float = 1.0
    sample_interval_s: float = 0.1
    name: str | None = None
    extra: dict = field(default_factory=dict)  # workload facts etc., copied into run.json


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def _resolve_budget(given_pps: int | None, report: Callable[[str, float], None]) -> tuple[int, dict]:
    """The packet budget to plan with, and what run.json says about where it came from."""
    if given_pps is not None:
        return int(given_pps), {"source": "--budget", "pps": int(given_pps)}
    from fabric.emu.calibrate import budget_pps  # lazy: calibrate runs this module's run()
    cal = budget_pps(progress=lambda message, fraction: report("calibrate", fraction))
    return cal.budget_pps, cal.run_facts()


def _tool_versions() -> dict:
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unavailable"
    try:
        from mininet.net import VERSION as mininet_version
    except ImportError:
        mininet_version = "unavailable"
    return {"fabric": __version__, "python": sys.version.split()[0], "kernel": platform.release(),
            "mininet": mininet_version, "iproute2": first_line(["ip", "-V"]),
            "nftables": first_line(["nft", "--version"]), "numpy": np.__version__, "pandas": pd.__version__}


def run(spec: FabricSpec, g: nx.MultiGraph, schedule: pd.DataFrame, out_dir: Path,
        options: RunOptions, progress: Callable[[str, float], None] | None = None) -> Path:
    """Emulate ``schedule`` on fabric ``g`` and write the run directory ``out_dir``.

    ``progress(stage, fraction)`` is called as the run advances (for a progress bar).
    """
    started = time.time()
    report = progress or (lambda stage, frac: None)
    facts = fabric_facts(g)
    if not facts["emulable"]:
        raise SpecError(spec.source, "", facts["emulable_reason"])
    schedule = normalize(schedule)
    known = set(hosts(g))
    unknown = sorted((set(schedule["src"]) | set(schedule["dst"])) - known)
    if unknown:
        raise SpecError(spec.source, "", f"schedule uses hosts {unknown[:5]} that the design lacks (it has h0..h{len(known) - 1})")
    if schedule.empty:
        raise SpecError(spec.source, "", "the schedule has no messages")
    check_out_dir(out_dir)  # before the calibration: fail in a second, not in a minute

    link_ends = {d["link_id"]: (u, d["ifname"][u]) for u, v, d in g.edges(data=True)}
    for link_id in options.captures:
        if link_id not in link_ends:
            raise SpecError("--capture", link_id, f"no such link; links look like {', '.join(sorted(link_ends)[:4])}, ...")
    nic_rate = {h: g.nodes[h]["nic_rate_bps"] for h in known}
    link_rates = [d["rate_bps"] for _, _, d in g.edges(data=True)]
    budget_pps, budget_facts = _resolve_budget(options.budget_pps, report)
    options = replace(options, extra={**options.extra, "budget": budget_facts},
                      name=options.name or Path(out_dir).name)
    choice: ScaleChoice = choose_scale(schedule, nic_rate, link_rates, design_budget_pps(spec, budget_pps),
                                       options.payload_bytes, options.scale, options.dilation)
    with staged_run_dir(out_dir) as stage:
        _emulate(spec, g, schedule, stage, options, choice, report, started)
    report("collect", 1.0)
    return Path(out_dir)


def _emulate(spec: FabricSpec, g: nx.MultiGraph, schedule: pd.DataFrame, out_dir: Path, options: RunOptions,
             choice: ScaleChoice, report: Callable[[str, float], None], started: float) -> None:
    """Build the fabric, replay the schedule and record into ``out_dir`` (the staging directory)."""
    k, dilation = choice.k, choice.dilation
    link_ends = {d["link_id"]: (u, d["ifname"][u]) for u, v, d in g.edges(data=True)}
    work = out_dir / ".work"
    work.mkdir()

    host_names = hosts(g)
    index_of = {h: i for i, h in enumerate(host_names)}
    probes = noise_probe_schedule(g, LEAD_S)
    load_emulated, load_packets, load_last = emulated_sizes(schedule, k, options.payload_bytes)
    n_probe = len(probes)
    packet_wire = wire_packet_bytes(options.payload_bytes)
    host_queue = HOST_QUEUE_PACKETS * packet_wire
    plans, shapes = build_plan(g, k, options.hash_seed, options.payload_bytes, host_queue_bytes=host_queue,
                               dilation=dilation)

    commands = {node: plans[node].commands() for node in sorted(plans)}
    # A signal handler can only be set from the main thread (a Dask worker runs us off it); there
    # the worker's own shutdown ends the run.
    in_main = threading.current_thread() is threading.main_thread()
    old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    ctx = multiprocessing.get_context("fork")
    children: list[multiprocessing.Process] = []
    captures: list[subprocess.Popen] = []
    senders: list[subprocess.Popen] = []  # compiled senders, each in its own process group
    receiver: subprocess.Popen | None = None  # the compiled receiver, in its own process group
    fabric = EmulatedFabric(g, plans, work)
    try:
        total_nodes = g.number_of_nodes() * 2
        done = [0]

        def step():
            done[0] += 1
            report("build", done[0] / total_nodes)

        fabric.build(progress=step)
        pids = [fabric.pids[h] for h in host_names]
        addrs = [g.nodes[h]["address"] for h in host_names]

        # Records: noise probes first (wire ids 0..P-1), then the load (P..P+N-1).
        src = np.concatenate([probes["src"].map(index_of).to_numpy(), schedule["src"].map(index_of).to_numpy()])
        dst = np.concatenate([probes["dst"].map(index_of).to_numpy(), schedule["dst"].map(index_of).to_numpy()])
        packets = np.concatenate([np.ones(n_probe, dtype=np.int64), load_packets])
        payload = np.concatenate([np.full(n_probe, NOISE_PROBE_PAYLOAD_BYTES), np.full(len(schedule), options.payload_bytes)])
        last = np.concatenate([np.full(n_probe, NOISE_PROBE_PAYLOAD_BYTES), load_last])
        t_rel = np.concatenate([probes["t_start_s"].to_numpy(), schedule["t_start_s"].to_numpy()])
        first_s = max(float(schedule["t_start_s"].min()), 0.0)

        if options.captures:
            (out_dir / "captures").mkdir()
        for link_id in options.captures:
            node, ifname = link_ends[link_id]
            pcap = out_dir / "captures" / f"{link_id.replace('#', '_')}.pcap"
            # Headers only (snaplen 128): enough for our probe header, small files.
            captures.append(subprocess.Popen(
                ["mnexec", "-a", str(fabric.pids[node]), "tcpdump", "-q", "--immediate-mode",
                 "--time-stamp-precision=nano", "-i", ifname, "-s", "128", "-U",
                 "-w", str(pcap), "udp", "port", str(PROBE_UDP_PORT)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if captures:
            time.sleep(0.5)  # tcpdump needs a moment before it captures

        stop_r, stop_w = os.pipe()
        ready_r, ready_w = os.pipe()
        targets = [dict(pid=fabric.pids[s.node], ifname=s.ifname, link_id=s.link_id, node=s.node, peer=s.peer,
                        kind=s.kind, queue="port", rate_bps=s.rate_bps) for s in shapes]
        voqs = voq_layout(g, k, options.payload_bytes, dilation) if spec.kind == "scheduled" else []
        targets += [dict(pid=fabric.pids[v.ncp], ifname=v.ifb, classid=v.classid, link_id=f"{v.ncp}-voq",
                         node=v.ncp, peer=v.dst, kind="voq", queue=f"voq:{v.dst}", rate_bps=v.capacity_bps)
                    for v in voqs]
        sampler = ctx.Process(target=run_sampler, name="fabric-sampler",
                              args=(targets, options.sample_interval_s, str(work / "links.parquet"),
                                    str(work / "cpu.parquet"), stop_r, ready_w))
        # The plan's start times are filled in once the receiver is ready; build a placeholder.
        plan = MessagePlan(src=src, dst=dst, t_start_ns=np.zeros(len(src), dtype=np.int64), packets=packets,
                           payload=payload, last_payload=last, host_pids=pids, host_addrs=addrs,
                           host_rate_bps=[g.nodes[h]["nic_rate_bps"] / (k * dilation) for h in host_names])
        receiver_exe = receiver_binary()  # before the agents start: a first build takes a moment
        write_receiver_plan(work / "rx_plan.bin", plan)
        agents = [sampler]
        # The load's schedule is stretched by the dilation; the noise probes (before t0) are not.
        # The load starts at t0 with its first message (a profile may hold its patterns back until
        # a queue has filled, and waiting out that stretch dilated would only cost wall time).
        wall_rel = np.where(np.arange(len(t_rel)) < n_probe, t_rel, (t_rel - first_s) * dilation)
        t0_shared = ctx.Value("q", 0, lock=False)  # the load's start, once known (the scheduler looks ahead)
        if voqs:
            sched = spec.scheduler
            ncp_group = {n: g.nodes[next(h for h in host_names if g.nodes[h]["edge"] == n)]["group"]
                         for n in sorted({v.ncp for v in voqs})}
            weights = ({n: dict(sched.weights).get(grp, 1.0) for n, grp in ncp_group.items()}
                       if sched.policy == "weighted" else {})
            agents.append(ctx.Process(target=run_scheduler, name="fabric-scheduler", args=(
                voqs, {n: fabric.pids[n] for n in ncp_group}, sched.tick_ns, sched.grant_fraction, weights,
                VOQ_BUCKET_PACKETS * packet_wire, packet_wire, _arrivals(g, host_names, plan, wall_rel, k * dilation, t0_shared),
                str(work / "scheduler.parquet"), stop_r, ready_w)))
        for proc in agents:
            proc.start()
            children.append(proc)
        # The compiled receiver keeps the agents' protocol: one byte on ready_w once its sockets are
        # bound; it stops (after a last drain) when stop_r becomes readable. Own process group, as the
        # senders: a terminal's Ctrl-C reaches the runner only, which then kills it (finally).
        with open(work / "receiver.log", "wb") as log:
            argv = [str(receiver_exe), str(work / "rx_plan.bin"), str(work / "rx.bin"), str(stop_r), str(ready_w)]
            receiver = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        pass_fds=(stop_r, ready_w), start_new_session=True)
        pending = len(agents) + 1
        while pending:
            if select.select([ready_r], [], [], 0.5)[0]:
                if not os.read(ready_r, 1):
                    raise EmulationError("an agent failed to start")
                pending -= 1
            elif receiver.poll() is not None:
                why = (work / "receiver.log").read_text(errors="replace").strip().splitlines()
                raise EmulationError(f"fabric-receiver failed to start (exit code {receiver.returncode}): "
                                     f"{why[-1] if why else 'no message'}")
            elif not all(proc.is_alive() for proc in agents):
                raise EmulationError("an agent failed to start")
        sender_exe = sender_binary()  # before t0: a first build takes a moment
        t0_ns = time.time_ns() + int((LEAD_S + 0.3) * 1e9)
        t0_shared.value = t0_ns
        plan.t_start_ns = (t0_ns + np.round(wall_rel * 1e9)).astype(np.int64)
        for i in range(SENDER_PROCESSES):
            subset = list(range(i, len(host_names), SENDER_PROCESSES))
            write_plan(work / f"plan{i}.bin", plan, subset, HOST_TARGET_QUEUE_PACKETS, HOST_SLACK_PACKETS)
            # Own process group: a terminal's Ctrl-C reaches the runner only, which then kills it (finally).
            with open(work / f"sender{i}.log", "wb") as log:
                argv = [str(sender_exe), str(work / f"plan{i}.bin"), str(work / f"tx{i}.bin")]
                senders.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                start_new_session=True))

        span_s = (float(schedule["t_start_s"].max()) - first_s) * dilation + LEAD_S + 0.3
        t_begin = time.time()
        while any(s.poll() is None for s in senders):
            time.sleep(0.1)
            report("replay", min(0.99, (time.time() - t_begin) / max(span_s, 0.1)))
            for proc in agents:
                if not proc.is_alive():
                    raise EmulationError(f"{proc.name} died (exit code {proc.exitcode}) during the run")
            if receiver.poll() is not None:
                raise EmulationError(f"fabric-receiver died (exit code {receiver.returncode}) during the run")
        for i, s in enumerate(senders):
            if s.returncode != 0:
                why = (work / f"sender{i}.log").read_text(errors="replace").strip().splitlines()
                raise EmulationError(f"sender {i} failed (exit code {s.returncode}): {why[-1] if why else 'no message'}")
            tx_to_npz(work / f"tx{i}.bin", work / f"tx{i}.npz", plan.total_packets, len(host_names))
        report("replay", 1.0)
        # Wait Tmax for the last packets, then stop the receiver and the sampler.
        time.sleep(options.tmax_s)
        os.write(stop_w, b"s" * len(agents))  # the agents and the receiver watch stop_r; none reads it
        for proc in agents:
            proc.join(30)
            if proc.exitcode != 0:
                raise EmulationError(f"{proc.name} failed (exit code {proc.exitcode})")
        try:
            receiver.wait(30)
        except subprocess.TimeoutExpired:
            raise EmulationError("fabric-receiver did not stop within 30 s") from None
        if receiver.returncode != 0:
            why = (work / "receiver.log").read_text(errors="replace").strip().splitlines()
            raise EmulationError(f"fabric-receiver failed (exit code {receiver.returncode}): "
                                 f"{why[-1] if why else 'no message'}")
        rx_to_npz(work / "rx.bin", work / "rx.npz", plan.total_packets)
        report("collect", 0.5)
    finally:
        for cap in captures:
            if cap.poll() is None:
                cap.terminate()
            try:
                cap.wait(5)
            except subprocess.TimeoutExpired:
                cap.kill()
        for proc in children:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for sender in senders:
            if sender.poll() is None:
                try:
                    os.killpg(sender.pid, signal.SIGKILL)  # its own group: nothing else is in it
                except ProcessLookupError:
                    pass
                sender.wait()
        if receiver is not None and receiver.poll() is None:
            try:
                os.killpg(receiver.pid, signal.SIGKILL)  # its own group: nothing else is in it
            except ProcessLookupError:
                pass
            receiver.wait()
        fabric.teardown()
        if in_main:
            signal.signal(signal.SIGTERM, old_sigterm)

    _write_run_dir(out_dir, work, spec, g, schedule, probes, choice, options, plan, load_emulated,
                   commands, shapes, pids_gone=list(fabric.pids.values()), started=started, t0_ns=t0_ns,
                   first_s=first_s)


def _arrivals(g: nx.MultiGraph, host_names: list[str], plan: MessagePlan, wall_rel_s: np.ndarray,
              rate_divisor: float, t0_shared) -> Arrivals:
    """When the plan's bytes (noise probes and load) reach each VOQ (the source host's NCP, the
    destination host), for the credit scheduler to request ahead of its tick: in wire bytes at the
    emulated scale, each message evenly from its start (wall ns after t0) to when its host's NIC,
    shared equally by the host's messages at once (as the senders share it, round-robin), would
    have sent it."""
    src = np.asarray(plan.src)
    ncp = np.array([g.nodes[h]["edge"] for h in host_names], dtype=object)[src]
    dst = np.array(host_names, dtype=object)[np.asarray(plan.dst)]
    host_rate_bps = np.array([g.nodes[h]["nic_rate_bps"] / rate_divisor for h in host_names])[src]
    starts_ns = np.round(np.asarray(wall_rel_s) * 1e9).astype(np.int64)
    wire = ((plan.packets - 1) * (plan.payload + WIRE_OVERHEAD_BYTES) + plan.last_payload + WIRE_OVERHEAD_BYTES)
    durations_ns = np.zeros(len(src), dtype=np.int64)
    for idx in pd.Series(src).groupby(src, sort=False).indices.values():
        finish = processor_sharing_finish(starts_ns[idx], wire[idx] * 8e9 / host_rate_bps[idx])
        durations_ns[idx] = np.ceil(finish - starts_ns[idx]).astype(np.int64)
    per_voq = {}
    for key, idx in pd.DataFrame({"ncp": ncp, "dst": dst}).groupby(["ncp", "dst"]).indices.items():
        per_voq[key] = (starts_ns[idx], durations_ns[idx], wire[idx].astype(np.int64))
    return Arrivals(per_voq, t0_shared)


def serialization_ns(g: nx.MultiGraph, src: np.ndarray, dst: np.ndarray, payload_bytes: np.ndarray,
                     k: float) -> np.ndarray:
    """Each packet's serialization at every hop it crosses, in virtual ns (emulated rates ÷ k).

    A veth hands a packet to its peer at once and HTB releases a packet at the start of its
    transmission, so the kernel's receive stamp misses the time a real store-and-forward hop takes
    to clock the packet out. The recorder adds it back (``packets.ser_ns``) so that no message can
    arrive faster than its bytes at line rate.
    """
    names = hosts(g)
    inv_rate = np.zeros((len(names), len(names)))
    for s_idx, d_idx in set(zip(np.asarray(src).tolist(), np.asarray(dst).tolist())):
        rates = path_link_rates_bps(g, names[s_idx], names[d_idx])
        inv_rate[s_idx, d_idx] = sum(k / r for r in rates)
    wire_bits = (np.asarray(payload_bytes, np.float64) + WIRE_OVERHEAD_BYTES) * 8.0
    return np.rint(wire_bits * 1e9 * inv_rate[src, dst]).astype(np.int64)


def _write_run_dir(out_dir, work, spec, g, schedule, probes, choice, options, plan: MessagePlan, load_emulated,
                   commands, shapes, pids_gone, started, t0_ns, first_s=0.0) -> None:
    host_names = hosts(g)
    parts = [np.load(work / f"tx{i}.npz") for i in range(SENDER_PROCESSES)]
    tx = {"tx_ns": np.maximum.reduce([p["tx_ns"] for p in parts]),
          "tx_user_ns": np.maximum.reduce([p["tx_user_ns"] for p in parts]),
          "refused": sum(int(p["refused"].sum()) for p in parts)}
    rx = np.load(work / "rx.npz")
    offsets = plan.offsets
    wire = np.repeat(np.arange(len(plan.packets)), plan.packets)
    seq = np.arange(plan.total_packets) - np.repeat(offsets, plan.packets)
    sizes = np.where(seq == np.repeat(plan.packets - 1, plan.packets),
                     np.repeat(plan.last_payload, plan.packets), np.repeat(plan.payload, plan.packets))
    names = np.array(host_names, dtype=object)
    n_probe = len(probes)
    dilation = choice.dilation

    def virtual(t_ns: np.ndarray) -> np.ndarray:
        """Wall-clock ns -> undilated (virtual) ns, anchored at t0; -1 (never) stays -1."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        if dilation == 1:
            return t_ns
        return np.where(t_ns >= 0, t0_ns + np.round((t_ns - t0_ns) / dilation), -1).astype(np.int64)

    msg_ids = np.concatenate([probes["msg_id"].to_numpy(), schedule["msg_id"].to_numpy()])
    is_probe = wire < n_probe
    ser_ns = np.where(is_probe, 0, serialization_ns(g, plan.src[wire], plan.dst[wire], sizes, choice.k))
    rx_virtual = virtual(rx["rx_ns"])
    frame = pd.DataFrame({
        "msg_id": msg_ids[wire], "seq": seq, "src": names[plan.src[wire]], "dst": names[plan.dst[wire]],
        "bytes": sizes, "tx_ns": virtual(np.where(tx["tx_ns"] >= 0, tx["tx_ns"], tx["tx_user_ns"])),
        "rx_ns": np.where(rx_virtual >= 0, rx_virtual + ser_ns, -1), "copies": rx["copies"], "path": rx["path"],
        "ser_ns": ser_ns,
    })
    tables = {"noise": frame[is_probe], "packets": frame[~is_probe].reset_index(drop=True)}

    # Per message, from the load part only.
    load = ~is_probe
    starts = offsets[n_probe:] - offsets[n_probe]
    tx_load = virtual(tx["tx_user_ns"][load])
    rx_load = frame["rx_ns"].to_numpy()[load]
    received = rx["copies"][load] > 0
    counts = plan.packets[n_probe:]
    first_idx = starts
    last_idx = starts + counts - 1
    rx_for_max = np.where(received, rx_load, -1)
    t_rx_last = np.maximum.reduceat(rx_for_max, starts) if len(starts) else np.array([], dtype=np.int64)
    messages = pd.DataFrame({
        "msg_id": schedule["msg_id"].to_numpy(), "src": schedule["src"], "dst": schedule["dst"],
        "kind": schedule["kind"], "group": schedule["group"], "request_id": schedule["request_id"],
        "step": schedule["step"], "bytes": schedule["bytes"], "bytes_emulated": load_emulated,
        "packets": counts, "packets_received": np.add.reduceat(received.astype(np.int64), starts),
        "t_sched_ns": virtual(plan.t_start_ns[n_probe:]), "t_tx_first_ns": tx_load[first_idx],
        "t_tx_last_ns": tx_load[last_idx], "t_rx_last_ns": t_rx_last,
    })
    tables["messages"] = messages
    links = pd.read_parquet(work / "links.parquet")
    # In virtual time a link carries D times more per second than its wall-clock shaper rate.
    links["t_ns"] = virtual(links["t_ns"].to_numpy())
    links["rate_bps"] = np.round(links["rate_bps"] * dilation).astype(np.int64)
    tables |= {"links": links, "cpu": pd.read_parquet(work / "cpu.parquet"), "schedule": schedule}
    scheduler_facts = None
    if (work / "scheduler.parquet").exists():
        ticks = pd.read_parquet(work / "scheduler.parquet")
        tables["scheduler"] = ticks
        intervals = ticks.drop_duplicates("t_ns")["tick_interval_ns"].to_numpy()[1:]
        tick_ns = spec.scheduler.tick_ns
        scheduler_facts = {
            "policy": spec.scheduler.policy, "tick_ns": tick_ns, "grant_fraction": spec.scheduler.grant_fraction,
            "ticks": int(len(intervals) + 1),
            "tick_interval_p50_ns": int(np.percentile(intervals, 50)) if len(intervals) else None,
            "tick_interval_p99_ns": int(np.percentile(intervals, 99)) if len(intervals) else None,
            "tick_late_p99_ns": int(np.percentile(intervals, 99) - tick_ns) if len(intervals) else None,
            "note": "credits are granted every tick by changing VOQ (HTB class) rates over netlink; the credit "
                    "round-trip of a real DDC (microseconds) is not modelled",
        }

    host_side_drops = 0
    if not links.empty:
        last_sample = links[links["t_ns"] == links["t_ns"].max()]
        host_side_drops = int(last_sample.loc[last_sample["kind"].eq("host") &
                                              last_sample["node"].isin(host_names), "drops"].sum()) - int(tx["refused"])
    tools = _tool_versions()
    details = {
        "budget": options.extra.get("budget"),  # where the packet budget came from (calibration or --budget)
        "scale": choice.to_dict() | {
            "note": "link rates, message sizes and buffers divided by k; times are real; packet size is "
                    "not scaled, so per-packet serialization is k times coarser than on the real fabric; "
                    "with dilation D > 1 the fabric ran D times slower (rates divided by k*D, schedule "
                    "stretched by D) and all recorded times were divided by D"},
        "noise_probe_payload_bytes": NOISE_PROBE_PAYLOAD_BYTES,
        "clock": ("packets, noise, messages and links are in virtual (undilated) time: wall time since t0 "
                  "divided by the dilation; cpu and scheduler samples are wall time (they describe the machine)"),
        "host_queue_packets": HOST_QUEUE_PACKETS,
        "host_target_queue_packets": HOST_TARGET_QUEUE_PACKETS,
        "host_slack_packets": HOST_SLACK_PACKETS,
        "tx_timestamps_missing": int(((tx["tx_user_ns"] >= 0) & (tx["tx_ns"] < 0)).sum()),
        "host_side_drops": host_side_drops,
        # Sends the host NIC queue refused (retried): they show up as drops on the host's own
        # link and are subtracted from host_side_drops, which should then be zero.
        "sender_refused": int(tx["refused"]),
        "receiver_foreign_packets": int(rx["unknown"]),
        "links_shaped": [dict(link_id=s.link_id, node=s.node, peer=s.peer, ifname=s.ifname, kind=s.kind,
                              rate_bps=s.rate_bps, buffer_bytes=s.buffer_bytes, burst_bytes=s.burst_bytes)
                         for s in shapes],
        "commands": commands,
        "captures": sorted(options.captures),
        "scheduler": scheduler_facts,
        "tools": tools,
        "namespace_owner_pids": sorted(pids_gone),
    }
    run = RunJson(
        engine="emu", engine_version=f"linux {tools['kernel']}, compiled agents", name=options.name,
        fabric_version=__version__,
        topology={"path": spec.source, "sha256": spec.content_sha256, "spec": spec.to_dict(),
                  "facts": fabric_facts(g)},
        workload=options.extra.get("workload", {}), seed=options.seed, hash_seed=options.hash_seed,
        scale_k=float(choice.k), dilation=float(dilation), payload_bytes=options.payload_bytes,
        # The instant schedule time 0 maps to (virtual): the load's first message started at t0_ns
        # of the wall clock, which is schedule time first_s.
        t0_ns=int(t0_ns) - int(round(first_s * 1e9)), tmax_ns=int(options.tmax_s * 1e9 / dilation),
        nodes=node_facts(g), idle_path_delay_ns=None, wall_time_s=round(time.time() - started, 3),
        details=details)
    record(out_dir, tables, run)
    for f in work.iterdir():
        f.unlink()
    work.rmdir()

