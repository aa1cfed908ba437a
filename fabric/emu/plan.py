"""The configuration plan: every command the emulator applies, per node, computed without root.

Given the fabric graph and the scale factor ``k``, this module decides addresses, MACs, static
neighbours, routes (ECMP multipath or spraying tables), sysctls, nftables rules and tc shaping,
as plain command lines. :mod:`fabric.emu.network` runs them inside each namespace, and
``run.json`` records them, so a run can be audited and reproduced command by command.

Why each piece:

* sysctls: ``fib_multipath_hash_policy=3`` hashes the packet's 5-tuple with a seed (policy 1 hashes
  the socket and moves flows between spines; policy 0 hashes addresses only); rp_filter off because
  multipath makes return paths asymmetric.
* static neighbours: ARP must not add first-packet latency or traffic to the measurement.
* HTB with one class + bfifo: a rate-limited port with a byte-limited tail-drop buffer, the model of
  a switch egress port that this kernel supports (no netem, no RED/fq_codel).
* TSO/GSO/GRO off: the kernel must not merge or split our packets behind the shaper's back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from fabric.probe import DEFAULT_PAYLOAD_BYTES, PROBE_UDP_PORT
from fabric.replay import shaped_buffer_bytes, wire_packet_bytes
from fabric.specs import FabricSpec
from fabric.topology import hosts, routes, switches

MTU = 9000
VOQ_BUCKET_PACKETS = 2   # a VOQ's TBF bucket: two packets, refilled at every grant change
VOQ_IFB_MTU = 4200
BURST_TIME_S = 200e-6
SPRAY_TABLE_BASE = 100
NFT_TABLE = "fabric"


@dataclass
class NodePlan:
    """Commands for one namespace, in the order they must run."""

    sysctl: list[str] = field(default_factory=list)
    ip: list[str] = field(default_factory=list)      # `ip -batch` lines
    ethtool: list[str] = field(default_factory=list)  # full command lines
    tc: list[str] = field(default_factory=list)      # `tc -batch` lines
    nft: list[str] = field(default_factory=list)     # `nft -f` script lines

    def commands(self) -> list[str]:
        """The plan as the command lines run.json records."""
        out = [f"sysctl -w {s}" for s in self.sysctl]
        out += [f"ip {line}" for line in self.ip]
        out += list(self.ethtool)
        out += [f"tc {line}" for line in self.tc]
        if self.nft:
            out.append("nft -f - <<< '" + " ".join(line.strip() for line in self.nft) + "'")
        return out


@dataclass(frozen=True)
class LinkShape:
    """One shaped direction of a link: the egress port of ``node`` towards ``peer``."""

    link_id: str
    node: str
    peer: str
    ifname: str
    kind: str
    rate_bps: int           # emulated (real ÷ k)
    buffer_bytes: int       # emulated bfifo limit
    burst_bytes: int = 0    # HTB bucket


def mac_for(node_index: int, port: int) -> str:
    """A locally administered, deterministic MAC per (node, port)."""
    return "02:fa:%02x:%02x:%02x:%02x" % ((node_index >> 8) & 0xFF, node_index & 0xFF, (port >> 8) & 0xFF, port & 0xFF)


def burst_bytes_for(rate_bps: float, payload_bytes: int = DEFAULT_PAYLOAD_BYTES) -> int:
    """HTB bucket of a host link (either direction): :data:`BURST_TIME_S` of its rate, at most half
    a packet (≥ 64 bytes).

    A NIC serializes every packet: a bucket of whole packets would let dozens of small packets (an
    all-to-all's messages) leave at once and skip their serialization. A bucket below one packet
    makes HTB pace every packet (tokens go negative, the next packet waits), and up to
    :data:`BURST_TIME_S` of slack absorbs the timer's lateness so a busy NIC still reaches its rate.
    The bucket is the most a packet can leave early; the causality check allows exactly that.
    """
    return max(64, min(int(rate_bps * BURST_TIME_S / 8), wire_packet_bytes(payload_bytes) // 2))


def port_burst_bytes(payload_bytes: int) -> int:
    """HTB bucket of a fabric (switch-to-switch) port: two full packets.

    Emulated packets take k times longer to serialize than real ones; a port that paced each packet
    strictly would make a packet wait a whole (scaled) packet time behind another on a lightly loaded
    link, which on the real fabric is nanoseconds. Two packets of slack keep a lightly loaded port
    fluid while a loaded one still queues at exactly its rate.
    """
    return 2 * wire_packet_bytes(payload_bytes)


def htb_lines(ifname: str, rate_bps: int, limit_bytes: int, payload_bytes: int, burst_bytes: int) -> list[str]:
    """HTB root + one class at ``rate_bps`` + a bfifo leaf of ``limit_bytes``."""
    packet = wire_packet_bytes(payload_bytes)
    return [
        f"qdisc replace dev {ifname} root handle 1: htb default 1",
        f"class add dev {ifname} parent 1: classid 1:1 htb rate {rate_bps}bit ceil {rate_bps}bit "
        f"burst {burst_bytes} cburst {burst_bytes} quantum {packet}",
        f"qdisc add dev {ifname} parent 1:1 handle 10: bfifo limit {limit_bytes}",
    ]


def build_plan(g: nx.MultiGraph, k: float, seed: int, payload_bytes: int = DEFAULT_PAYLOAD_BYTES,
               host_queue_bytes: int | None = None, dilation: float = 1.0) -> tuple[dict[str, NodePlan], list[LinkShape]]:
    """Compute every node's commands and the list of shaped link directions.

    Rates are divided by ``k × dilation``, buffers by ``k`` (a buffer's delay, bytes ÷ rate, then
    grows by the dilation like every other time of the dilated run).

    ``host_queue_bytes`` is the host NIC's own queue (its egress towards the edge switch). It must
    hold what a sender's socket buffer lets it queue, so that hosts never drop: host-side loss
    would be the emulator's fault, not the fabric's.
    """
    spec: FabricSpec = g.graph["spec"]
    node_index = {n: i for i, n in enumerate(sorted(g.nodes, key=lambda n: (g.nodes[n]["tier"], g.nodes[n]["index"])))}
    plans: dict[str, NodePlan] = defaultdict(NodePlan)
    shapes: list[LinkShape] = []
    macs: dict[tuple[str, str], str] = {}
    port_counter: dict[str, int] = defaultdict(int)

    for u, v, data in sorted(g.edges(data=True), key=lambda e: e[2]["link_id"]):
        for node in (u, v):
            macs[(node, data["ifname"][node])] = mac_for(node_index[node], port_counter[node])
            port_counter[node] += 1

    for u, v, data in sorted(g.edges(data=True), key=lambda e: e[2]["link_id"]):
        rate = int(round(data["rate_bps"] / (k * dilation)))
        for node, peer in ((u, v), (v, u)):
            ifname, peer_if = data["ifname"][node], data["ifname"][peer]
            plan = plans[node]
            plan.ip.append(f"link set dev {ifname} address {macs[(node, ifname)]} mtu {MTU}")
            plan.ip.append(f"addr add {data['addr'][node]}/31 dev {ifname}")
            plan.ip.append(f"link set dev {ifname} up")
            plan.ip.append(f"neigh replace {data['addr'][peer]} lladdr {macs[(peer, peer_if)]} dev {ifname} nud permanent")
            plan.ethtool.append(f"ethtool -K {ifname} tso off gso off gro off")
            is_host_nic = g.nodes[node]["role"] == "host"
            if is_host_nic and host_queue_bytes is not None:
                limit = host_queue_bytes
            else:
                limit = shaped_buffer_bytes(data["buffer_bytes"], k, payload_bytes)
            if spec.kind == "scheduled" and not is_host_nic:
                # The credit scheduler works in ticks: credit granted for one tick may be spent at
                # port rate anywhere within it, so fabric links and egress ports hold one tick at
                # their rate. A real DDC's credits are exact to microseconds and need no such slack.
                limit = max(limit, int(rate * spec.scheduler.tick_ns / 8e9) + 2 * wire_packet_bytes(payload_bytes))
            # Both directions of a host link stand for the host's NIC (it serializes what it sends
            # and what it receives): pace every packet there; fabric links keep some slack.
            burst = burst_bytes_for(rate, payload_bytes) if data["kind"] == "host" else port_burst_bytes(payload_bytes)
            plan.tc.extend(htb_lines(ifname, rate, limit, payload_bytes, burst))
            shapes.append(LinkShape(data["link_id"], node, peer, ifname, data["kind"], rate, limit, burst))

    for h in hosts(g):
        plan = plans[h]
        plan.sysctl += ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.default.rp_filter=0"]
        plan.ip.append("link set dev lo up")
        plan.ip.append(f"route add default via {g.nodes[h]['gateway']}")

    table = routes(g)
    lb = spec.load_balancing
    for sw in switches(g):
        plan = plans[sw]
        plan.sysctl += [
            "net.ipv4.ip_forward=1", "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
            "net.ipv4.fib_multipath_hash_policy=3",
            f"net.ipv4.fib_multipath_hash_fields={lb.hash_fields_mask:#x}",
            f"net.ipv4.fib_multipath_hash_seed={seed}",
        ]
        plan.ip.append("link set dev lo up")
        for prefix, hops in sorted(table[sw].items()):
            plan.ip.append(f"route add {prefix} " + " ".join(
                f"nexthop via {ip} dev {dev} weight 1" for ip, dev in hops))
        width = max((len(h) for h in table[sw].values()), default=0)
        nft = [f"table ip {NFT_TABLE} {{"]
        if spec.spraying and width > 1:
            # Per-packet spraying: round-robin mark, one single-next-hop table per mark.
            for i in range(width):
                plan.ip.append(f"rule add fwmark {i + 1} lookup {SPRAY_TABLE_BASE + i} priority {1000 + i}")
                for prefix, hops in sorted(table[sw].items()):
                    ip, dev = hops[i % len(hops)]
                    plan.ip.append(f"route add {prefix} via {ip} dev {dev} table {SPRAY_TABLE_BASE + i}")
            nft += ["  chain spray {",
                    "    type filter hook prerouting priority mangle; policy accept;",
                    f"    udp dport {PROBE_UDP_PORT} meta mark set numgen inc mod {width} offset 1",
                    "  }"]
        if g.nodes[sw]["tier"] == "core":
            # Path tagging: the core switch writes its index into DSCP so receivers learn each
            # packet's path (IP_RECVTOS). Only our probe packets are touched.
            nft += ["  chain tag {",
                    "    type filter hook forward priority mangle; policy accept;",
                    f"    udp dport {PROBE_UDP_PORT} ip dscp set {g.nodes[sw]['index'] + 1}",
                    "  }"]
        nft.append("}")
        if len(nft) > 2:
            plan.nft.extend(nft)
    if spec.kind == "scheduled":
        for voq_ncp, lines_ip, lines_tc in _voq_commands(g, voq_layout(g, k, payload_bytes, dilation), payload_bytes):
            plans[voq_ncp].ip.extend(lines_ip)
            plans[voq_ncp].tc.extend(lines_tc)
    return dict(plans), shapes


@dataclass(frozen=True)
class VoqShape:
    """One virtual output queue: at ingress NCP ``ncp``, for egress host port ``dst``.

    All VOQs of an NCP are HTB classes of one IFB device that the NCP's host ports redirect
    their ingress traffic into; the credit scheduler sets each class's rate every tick.
    """

    ncp: str
    ifb: str
    classid: int          # full tc handle (major 1 << 16 | minor)
    dst: str
    dst_address: str
    capacity_bps: int     # the egress port's emulated rate: what all VOQs for dst may share
    initial_rate_bps: int
    buffer_bytes: int     # emulated VOQ depth

    @property
    def leaf_handle(self) -> int:
        """tc handle of the VOQ's TBF (major = minor of its class × 16, e.g. class 1:a -> a0:)."""
        return ((self.classid & 0xFFFF) * 16) << 16


def ifb_name(ncp: str) -> str:
    return f"{ncp}-voq"


def voq_layout(g: nx.MultiGraph, k: float, payload_bytes: int = DEFAULT_PAYLOAD_BYTES,
               dilation: float = 1.0) -> list[VoqShape]:
    """Every VOQ of a scheduled fabric: one per (ingress NCP, egress host port).

    Initial grants split each port's capacity (× grant fraction) evenly over the NCPs, so the
    fabric starts out never oversubscribed, before the scheduler's first tick.
    """
    spec: FabricSpec = g.graph["spec"]
    ncps = [n for n in switches(g) if g.nodes[n]["tier"] == "edge"]
    out = []
    for ncp in ncps:
        for i, h in enumerate(hosts(g)):
            capacity = int(round(g.nodes[h]["nic_rate_bps"] / (k * dilation)))
            granted = int(capacity * spec.scheduler.grant_fraction / len(ncps))
            out.append(VoqShape(ncp, ifb_name(ncp), (1 << 16) | (i + 1), h, g.nodes[h]["address"], capacity,
                                granted, shaped_buffer_bytes(spec.voq_depth_bytes, k, payload_bytes)))
    return out


def _voq_commands(g: nx.MultiGraph, voqs: list[VoqShape], payload_bytes: int):
    by_ncp: dict[str, list[VoqShape]] = defaultdict(list)
    for v in voqs:
        by_ncp[v.ncp].append(v)
    packet = wire_packet_bytes(payload_bytes)
    for ncp, items in by_ncp.items():
        ifb = items[0].ifb
        # The IFB's MTU only sets TBF's burst floor: our packets are 4 KB on the wire.
        ip_lines = [f"link add {ifb} type ifb", f"link set dev {ifb} mtu {VOQ_IFB_MTU} up"]
        tc = [f"qdisc replace dev {ifb} root handle 1: htb"]
        for v in items:
            minor = f"{v.classid & 0xFFFF:x}"
            # The HTB class only sorts packets into their VOQ and round-robins between VOQs; the
            # grant is the TBF below it. A TBF refills its bucket whenever its rate is changed, so a
            # VOQ whose grant was tiny a tick ago owes nothing (an HTB class would carry a token
            # debt of one packet at the old rate — seconds at a tiny grant).
            tc += [
                f"class add dev {ifb} parent 1: classid 1:{minor} htb rate {v.capacity_bps * 16}bit "
                f"ceil {v.capacity_bps * 16}bit quantum {packet}",
                f"qdisc add dev {ifb} parent 1:{minor} handle {v.leaf_handle >> 16:x}: tbf rate {v.initial_rate_bps}bit "
                f"burst {VOQ_BUCKET_PACKETS * packet} limit {v.buffer_bytes}",
                f"filter add dev {ifb} parent 1: protocol ip prio 1 u32 match ip dst {v.dst_address}/32 flowid 1:{minor}",
            ]
        # Every host port of the NCP sends what it receives into the VOQs first.
        for _, nbr, data in sorted(g.edges(ncp, data=True), key=lambda e: e[2]["link_id"]):
            if g.nodes[nbr]["role"] != "host":
                continue
            port = data["ifname"][ncp]
            tc += [f"qdisc add dev {port} handle ffff: ingress",
                   # u32 "match anything": matchall/flower are often not built (not on this kernel).
                   f"filter add dev {port} parent ffff: protocol ip prio 1 u32 match u32 0 0 "
                   f"action mirred egress redirect dev {ifb}"]
        yield ncp, ip_lines, tc
