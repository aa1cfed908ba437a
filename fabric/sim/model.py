"""The simulator's plan: everything ns-3 is given, computed in plain Python (no ns-3, no root).

From a fabric graph, a Schedule and the scale ``k`` this module derives flat arrays that the
child process hands to the C++ model (:mod:`fabric.sim.child`, ``fabric/sim/engine.h``):

* **nodes** — hosts, then edge switches, then core switches, each with its role code and index;
* **links** — one per graph edge, oriented from the lower tier (host < edge < core): rate (real ÷ k),
  propagation delay (the design's ``link_delay``), the egress buffer of each end (real ÷ k, at
  least four packets, as the emulator shapes it) and the drop site each direction reports;
* **routes** — per switch and destination edge, the ports of its ECMP group (from
  :func:`fabric.topology.routes`, mapped from interface names to port numbers);
* **messages** — the idle-fabric noise probe first, then the load: start (simulated ps), packets,
  payloads, the record offset of the first packet and the per-message UDP source port;
* the **scheduled fabric's** parameters (credit, control latency, VOQ depth, flow control).

Simulated time: the noise probe runs in the emulator's lead time before the load, and schedule time 0
is simulated time :data:`LEAD_NS` (``run.json["t0_ns"]``). No time is dilated.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from fabric.probe import PROBE_UDP_PORT, WIRE_OVERHEAD_BYTES
from fabric.replay import (
    LEAD_S,
    NOISE_PROBE_PAYLOAD_BYTES,
    emulated_sizes,
    noise_probe_schedule,
    shaped_buffer_bytes,
    wire_packet_bytes,
)
from fabric.specs import FabricSpec
from fabric.topology import hosts, links, routes, switches

PPP_HEADER_BYTES = 2
# The simulated header: a frame is payload + header + PPP = payload + WIRE_OVERHEAD_BYTES, the bytes
# the emulator's shaped links count, so both engines put the same bits on every link.
SIM_HEADER_BYTES = WIRE_OVERHEAD_BYTES - PPP_HEADER_BYTES
LEAD_NS = int(round(LEAD_S * 1e9))
PS_PER_NS = 1000
ROLE_CODES = {"host": 0, "edge": 1, "core": 2}
# Drop sites (packets.parquet does not say where a packet was lost; run.json counts them per site).
DROP_SITES = {1: "host nic", 2: "edge->host port", 3: "edge->core port", 4: "core->edge port", 5: "voq"}
# A host NIC's own queue: the sender is the NIC's serializer and never queues more than the packet
# on the wire, so this only has to be larger than one packet; it can never drop.
HOST_NIC_QUEUE_PACKETS = 64
UDP_PROTO = 17
SRC_PORT_BASE = 49152   # per-message source ports spread over 16k values, as the emulator's senders
SRC_PORT_SPREAD = 16384
# Scheduled fabric
CTRL_CELL_BYTES = 64          # a request or credit cell on the fabric
FC_PACKETS = 4                # egress flow control: credits wait while the port holds this many packets
REORDER_TIMEOUT_NS = 10_000   # give up on a sequence gap after this long ...
REORDER_TIMEOUT_PACKETS = 32  # ... or this many packet times at the fabric rate, if longer (k > 1)


@dataclass
class SimPlan:
    """The arrays and settings of one simulation (see the module docstring)."""

    node_names: list[str]
    roles: np.ndarray            # int32 per node: ROLE_CODES
    role_index: np.ndarray       # int32 per node: index within its role
    n_edges: int
    # links
    link_ids: list[str]
    link_kinds: list[str]
    link_a: np.ndarray           # int32 node ids (lower tier end)
    link_b: np.ndarray
    link_rate_bps: np.ndarray    # float64, emulated (real ÷ k)
    link_delay_ps: np.ndarray    # int64
    queue_a_bytes: np.ndarray    # int64, egress buffer of end a (towards b)
    queue_b_bytes: np.ndarray
    site_a: np.ndarray           # int32 drop site codes
    site_b: np.ndarray
    # routes
    route_off: np.ndarray        # int32 [node * n_edges + edge]
    route_len: np.ndarray
    route_ports: np.ndarray      # int32 local port numbers
    host_edge: np.ndarray        # int32 per host
    host_edge_port: np.ndarray   # int32 per host: its edge switch's local port towards it
    # messages (noise probes first, then the load, in schedule order)
    n_probes: int
    msg_src: np.ndarray          # int32 host index
    msg_dst: np.ndarray
    msg_start_ps: np.ndarray     # int64, simulated
    msg_first_rec: np.ndarray    # int64
    msg_packets: np.ndarray      # int32
    msg_payload: np.ndarray      # int32, full packets
    msg_last_payload: np.ndarray
    msg_sport: np.ndarray        # uint32
    src_ip: np.ndarray           # uint32 per message
    dst_ip: np.ndarray
    load_emulated_bytes: np.ndarray  # int64 per load message (bytes / k, at least one header)
    probes: pd.DataFrame
    # settings
    k: float
    payload_bytes: int
    mode: int                    # 0 ecmp, 1 spray, 2 scheduled
    hash_seed: int
    hash_mask: int
    tmax_ps: int
    sample_interval_ps: int
    sample_start_ps: int
    scheduled: dict | None       # the scheduled fabric's parameters (None for leaf-spine)

    @property
    def n_records(self) -> int:
        return int(self.msg_packets.sum())

    @property
    def n_hosts(self) -> int:
        return int((self.roles == ROLE_CODES["host"]).sum())

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything the child needs as arrays (for one npz file)."""
        names = ["roles", "role_index", "link_a", "link_b", "link_rate_bps", "link_delay_ps", "queue_a_bytes",
                 "queue_b_bytes", "site_a", "site_b", "route_off", "route_len", "route_ports", "host_edge",
                 "host_edge_port", "msg_src", "msg_dst", "msg_start_ps", "msg_first_rec", "msg_packets", "msg_payload",
                 "msg_last_payload", "msg_sport", "src_ip", "dst_ip"]
        out = {n: getattr(self, n) for n in names}
        if self.scheduled:
            out["grant_ps_per_byte"] = self.scheduled["grant_ps_per_byte"]
            out["watch_ncp"] = self.scheduled["watch_ncp"]
            out["watch_dst"] = self.scheduled["watch_dst"]
            out["ncp_weight"] = self.scheduled["ncp_weight"]
        return out

    def settings(self) -> dict:
        """Scalar settings for the child (one JSON file)."""
        out = {"n_edges": self.n_edges, "n_records": self.n_records, "n_hosts": self.n_hosts, "mode": self.mode,
               "hash_seed": self.hash_seed, "hash_mask": self.hash_mask, "header_bytes": SIM_HEADER_BYTES,
               "tmax_ps": self.tmax_ps, "sample_interval_ps": self.sample_interval_ps,
               "sample_start_ps": self.sample_start_ps, "udp_proto": UDP_PROTO, "udp_dst_port": PROBE_UDP_PORT,
               "last_start_ps": int(self.msg_start_ps.max()) if self.msg_start_ps.size else 0,
               "max_end_ps": self.max_end_ps()}
        if self.scheduled:
            out["scheduled"] = {k: v for k, v in self.scheduled.items()
                                if k not in ("grant_ps_per_byte", "watch_ncp", "watch_dst", "ncp_weight")}
        return out

    def max_end_ps(self) -> int:
        """A bound on the simulated end: every host's bytes at its NIC rate after the last start,
        plus tmax and a margin. The child refuses to run past it (a model bug, never a result)."""
        host_rates = self.link_rate_bps[self.roles[self.link_a] == ROLE_CODES["host"]].min()
        wire_bits = ((self.msg_payload.astype(np.float64) + WIRE_OVERHEAD_BYTES) * 8 * self.msg_packets).sum()
        last = int(self.msg_start_ps.max()) if self.msg_start_ps.size else 0
        return int(last + wire_bits / host_rates * 1e12 * 2 + self.tmax_ps + 1e12)


def node_order(g: nx.MultiGraph) -> list[str]:
    """Hosts (index order), then edge switches, then core switches."""
    return hosts(g) + switches(g)


def source_ports(wire_ids: np.ndarray) -> np.ndarray:
    """One UDP source port per message (multiplicative hash of its wire id onto 16k ports)."""
    spread = (np.asarray(wire_ids, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return (SRC_PORT_BASE + spread % SRC_PORT_SPREAD).astype(np.uint32)


def build_plan(spec: FabricSpec, g: nx.MultiGraph, schedule: pd.DataFrame, k: float, payload_bytes: int,
               hash_seed: int, tmax_s: float, sample_interval_s: float) -> SimPlan:
    """The simulation of ``schedule`` (normalized) on ``g`` at scale ``k``."""
    names = node_order(g)
    node_id = {n: i for i, n in enumerate(names)}
    tier_rank = {"host": 0, "edge": 1, "core": 2}
    roles = np.array([ROLE_CODES[g.nodes[n]["tier"]] for n in names], dtype=np.int32)
    role_index = np.array([g.nodes[n]["index"] for n in names], dtype=np.int32)
    edge_names = [n for n in names if g.nodes[n]["tier"] == "edge"]
    edge_index = {n: g.nodes[n]["index"] for n in edge_names}
    host_names = hosts(g)
    host_index = {h: i for i, h in enumerate(host_names)}

    # Links, oriented lower tier first; local port numbers in link order.
    ports_of: dict[str, int] = {n: 0 for n in names}
    port_of_ifname: dict[tuple[str, str], int] = {}
    rows = []
    for u, v, d in links(g):
        a, b = (u, v) if tier_rank[g.nodes[u]["tier"]] <= tier_rank[g.nodes[v]["tier"]] else (v, u)
        for end in (a, b):
            port_of_ifname[(end, d["ifname"][end])] = ports_of[end]
            ports_of[end] += 1
        rows.append((d["link_id"], d["kind"], a, b, d["rate_bps"], d["buffer_bytes"]))
    host_queue = HOST_NIC_QUEUE_PACKETS * wire_packet_bytes(payload_bytes)

    def end_queue(end: str, buffer_bytes: int) -> int:
        return host_queue if g.nodes[end]["tier"] == "host" else shaped_buffer_bytes(buffer_bytes, k, payload_bytes)

    def site(end: str, peer: str) -> int:
        tiers = (g.nodes[end]["tier"], g.nodes[peer]["tier"])
        return {("host", "edge"): 1, ("edge", "host"): 2, ("edge", "core"): 3, ("core", "edge"): 4}[tiers]

    link_a = np.array([node_id[r[2]] for r in rows], dtype=np.int32)
    link_b = np.array([node_id[r[3]] for r in rows], dtype=np.int32)

    # Routes: the ECMP group (local ports) of every switch towards every destination edge.
    table = routes(g)
    n_edges = len(edge_names)
    prefix_edge = {g.nodes[e]["host_prefix"]: edge_index[e] for e in edge_names}
    route_len = np.zeros(len(names) * n_edges, dtype=np.int32)
    route_off = np.zeros(len(names) * n_edges, dtype=np.int32)
    route_ports: list[int] = []
    for sw, prefixes in table.items():
        for prefix, hops in prefixes.items():
            slot = node_id[sw] * n_edges + prefix_edge[prefix]
            route_off[slot] = len(route_ports)
            route_len[slot] = len(hops)
            route_ports.extend(port_of_ifname[(sw, ifname)] for _, ifname in hops)
    host_edge = np.array([edge_index[g.nodes[h]["edge"]] for h in host_names], dtype=np.int32)
    host_edge_port = np.empty(len(host_names), dtype=np.int32)
    for u, v, d in links(g, kinds=("host",)):
        h, e = (u, v) if g.nodes[u]["tier"] == "host" else (v, u)
        host_edge_port[host_index[h]] = port_of_ifname[(e, d["ifname"][e])]

    # Messages: the noise probe (one small packet each) in the lead time, then the load.
    probes = noise_probe_schedule(g, LEAD_S)
    emulated, packets, last = emulated_sizes(schedule, k, payload_bytes)
    n_probes = len(probes)
    src = np.concatenate([probes["src"].map(host_index).to_numpy(), schedule["src"].map(host_index).to_numpy()])
    dst = np.concatenate([probes["dst"].map(host_index).to_numpy(), schedule["dst"].map(host_index).to_numpy()])
    t_s = np.concatenate([probes["t_start_s"].to_numpy(np.float64), schedule["t_start_s"].to_numpy(np.float64)])
    start_ps = np.round((t_s + LEAD_S) * 1e12).astype(np.int64)
    n_packets = np.concatenate([np.ones(n_probes, dtype=np.int64), packets]).astype(np.int32)
    payload = np.concatenate([np.full(n_probes, NOISE_PROBE_PAYLOAD_BYTES),
                              np.full(len(schedule), payload_bytes)]).astype(np.int32)
    last_payload = np.concatenate([np.full(n_probes, NOISE_PROBE_PAYLOAD_BYTES), last]).astype(np.int32)
    first_rec = (np.cumsum(n_packets, dtype=np.int64) - n_packets).astype(np.int64)
    address = np.array([int(ipaddress.IPv4Address(g.nodes[h]["address"])) for h in host_names], dtype=np.uint32)

    mode = 2 if spec.kind == "scheduled" else (1 if spec.load_balancing.mode == "spray" else 0)
    interval_ps = int(round(sample_interval_s * 1e12))
    load_start = int(start_ps[n_probes:].min()) if len(schedule) else LEAD_NS * PS_PER_NS
    plan = SimPlan(
        node_names=names, roles=roles, role_index=role_index, n_edges=n_edges,
        link_ids=[r[0] for r in rows], link_kinds=[r[1] for r in rows], link_a=link_a, link_b=link_b,
        link_rate_bps=np.array([r[4] / k for r in rows], dtype=np.float64),
        link_delay_ps=np.full(len(rows), spec.link_delay_ns * PS_PER_NS, dtype=np.int64),
        queue_a_bytes=np.array([end_queue(r[2], r[5]) for r in rows], dtype=np.int64),
        queue_b_bytes=np.array([end_queue(r[3], r[5]) for r in rows], dtype=np.int64),
        site_a=np.array([site(r[2], r[3]) for r in rows], dtype=np.int32),
        site_b=np.array([site(r[3], r[2]) for r in rows], dtype=np.int32),
        route_off=route_off, route_len=route_len, route_ports=np.array(route_ports, dtype=np.int32),
        host_edge=host_edge, host_edge_port=host_edge_port,
        n_probes=n_probes, msg_src=src.astype(np.int32), msg_dst=dst.astype(np.int32), msg_start_ps=start_ps,
        msg_first_rec=first_rec, msg_packets=n_packets, msg_payload=payload, msg_last_payload=last_payload,
        msg_sport=source_ports(np.arange(len(src))), src_ip=address[src], dst_ip=address[dst],
        load_emulated_bytes=emulated, probes=probes, k=float(k), payload_bytes=int(payload_bytes), mode=mode,
        hash_seed=int(hash_seed) & 0xFFFFFFFF, hash_mask=spec.load_balancing.hash_fields_mask,
        tmax_ps=int(round(tmax_s * 1e12)), sample_interval_ps=interval_ps,
        sample_start_ps=max(0, load_start - interval_ps), scheduled=None)
    if spec.kind == "scheduled":
        plan.scheduled = scheduled_parameters(spec, g, plan, k, payload_bytes)
    return plan


def scheduled_parameters(spec: FabricSpec, g: nx.MultiGraph, plan: SimPlan, k: float, payload_bytes: int) -> dict:
    """Credits, control latency, VOQ depth, flow control and reorder timeout of a scheduled fabric.

    The request/credit path is NCP → NCF → NCP: two propagation delays and two serializations of a
    control cell at the fabric link rate. Credits are one full packet's wire bytes (a smaller credit
    would need two grants per packet), spaced at the egress port's rate × the fabric speedup.
    """
    host_names = hosts(g)
    packet = wire_packet_bytes(payload_bytes)
    fabric_bps = spec.effective_fabric_link_rate_bps / k
    cell_ps = CTRL_CELL_BYTES * 8 / fabric_bps * 1e12
    port_bps = np.array([g.nodes[h]["nic_rate_bps"] / k for h in host_names], dtype=np.float64)
    reorder_ns = max(REORDER_TIMEOUT_NS, REORDER_TIMEOUT_PACKETS * packet * 8 / fabric_bps * 1e9)
    # VOQ rows in links.parquet: every (ingress NCP, destination) pair the run uses.
    # Weighted policy: each ingress NCP weighs as its hosts' group (as the emulator's scheduler reads
    # the design), normalized so the lightest gets one credit per round.
    edges = sorted((n for n in g.nodes if g.nodes[n]["tier"] == "edge"), key=lambda n: g.nodes[n]["index"])
    weights = dict(spec.scheduler.weights) if spec.scheduler and spec.scheduler.policy == "weighted" else {}
    ncp_weight = np.array([weights.get(g.nodes[next(h for h in host_names if g.nodes[h]["edge"] == e)]["group"], 1.0)
                           for e in edges], dtype=np.float64)
    ncp_weight /= ncp_weight.min()
    edge_of_src = plan.host_edge[plan.msg_src]
    pairs = np.unique(np.stack([edge_of_src, plan.msg_dst]), axis=1)
    return {
        "credit_bytes": packet,
        "voq_limit_bytes": shaped_buffer_bytes(spec.voq_depth_bytes, k, payload_bytes),
        "fc_packets": FC_PACKETS,
        "ctrl_remote_ps": int(round(2 * spec.link_delay_ns * PS_PER_NS + 2 * cell_ps)),
        "ctrl_local_ps": 0,
        "reorder_timeout_ps": int(round(reorder_ns * PS_PER_NS)),
        "speedup": spec.fabric_speedup,
        "policy": spec.scheduler.policy if spec.scheduler else "fair",
        "grant_ps_per_byte": (8e12 / (port_bps * spec.fabric_speedup)).astype(np.float64),
        "ncp_weight": ncp_weight,
        "watch_ncp": pairs[0].astype(np.int32),
        "watch_dst": pairs[1].astype(np.int32),
    }


def path_serialization_ns(plan: SimPlan, g: nx.MultiGraph, wire_bytes: np.ndarray, src: np.ndarray,
                          dst: np.ndarray) -> np.ndarray:
    """Each packet's serialization at every hop of its path (ns): its NIC, and the edge → core →
    edge links when source and destination sit on different edges, then the destination's port.

    The simulator's arrival times already include it; ``packets.ser_ns`` records it so the
    analysis knows the store-and-forward of a message's last packet (see :mod:`fabric.rundir.tables`).
    """
    host_names = hosts(g)
    nic_bps = np.array([g.nodes[h]["nic_rate_bps"] / plan.k for h in host_names], dtype=np.float64)
    spec: FabricSpec = g.graph["spec"]
    fabric_bps = spec.effective_fabric_link_rate_bps / plan.k
    crosses = plan.host_edge[src] != plan.host_edge[dst]
    inv = 1.0 / nic_bps[src] + 1.0 / nic_bps[dst] + np.where(crosses, 2.0 / fabric_bps, 0.0)
    return np.rint(np.asarray(wire_bytes, np.float64) * 8e9 * inv).astype(np.int64)
