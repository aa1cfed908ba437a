"""Fabric graphs built from a :class:`~fabric.specs.FabricSpec`, and the facts derived from them.

The graph is a pure-data description (no root needed): a ``networkx.MultiGraph`` whose nodes are
hosts and switches with their roles, and whose edges are physical links (parallel links between
the same pair are separate edges) with rates, buffers, interface names and /31 addresses. Routes
(ECMP next-hop sets per destination prefix) are computed from it; the emulator realises it.

Addressing plan (private, inside the run's own namespaces only):

* host links: edge switch ``i`` owns ``10.64.0.0/10`` slice ``i`` as a /23; host ``j`` on it uses
  the /31 ``base + 2j`` (switch side even, host side odd);
* fabric links: consecutive /31s from ``10.0.0.0/10`` (edge side even, core side odd).
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from typing import Iterable

import networkx as nx

from fabric.specs import FabricSpec
from fabric.units import format_rate

HOST_BLOCK = ipaddress.IPv4Address("10.64.0.0")
FABRIC_BLOCK = ipaddress.IPv4Address("10.0.0.0")
HOSTS_PER_EDGE_MAX = 256
# Namespaces this 2-vCPU machine can hold while keeping packet timing trustworthy.
MAX_EMULATED_NAMESPACES = 64
SWITCH_ROLES = ("leaf", "spine", "ncp", "ncf")


def leaf_spine(spec: FabricSpec) -> nx.MultiGraph:
    """Return the graph of a leaf-spine (Clos) fabric.

    Examples
    --------
    >>> from fabric.specs import parse_fabric_spec
    >>> spec = parse_fabric_spec({"kind": "leaf-spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
    ...     "host_link_rate": "100G", "fabric_link_rate": "100G", "buffer_per_port": "1MB"})
    >>> g = leaf_spine(spec)
    >>> g.number_of_nodes(), g.number_of_edges()
    (8, 8)
    """
    if spec.kind != "leaf-spine":
        raise ValueError(f"leaf_spine() needs a leaf-spine spec, got kind {spec.kind!r}")
    return _two_tier(spec)


def scheduled_fabric(spec: FabricSpec) -> nx.MultiGraph:
    """Return the graph of a scheduled (DDC-style) fabric: hosts, NCPs and NCFs.

    Fabric (NCP–NCF) links carry ``fabric_link_rate × fabric_speedup``; NCPs hold one VOQ per
    egress host port, recorded as ``voq_bytes`` on each NCP node.
    """
    if spec.kind != "scheduled":
        raise ValueError(f"scheduled_fabric() needs a scheduled spec, got kind {spec.kind!r}")
    g = _two_tier(spec)
    for node, data in g.nodes(data=True):
        if data["role"] == "ncp":
            data["voq_bytes"] = spec.voq_depth_bytes
            data["voqs"] = spec.hosts
    return g


def build_fabric(spec: FabricSpec) -> nx.MultiGraph:
    """The builder for the spec's kind."""
    return leaf_spine(spec) if spec.kind == "leaf-spine" else scheduled_fabric(spec)


def _two_tier(spec: FabricSpec) -> nx.MultiGraph:
    if spec.hosts_per_edge > HOSTS_PER_EDGE_MAX:
        raise ValueError(f"at most {HOSTS_PER_EDGE_MAX} hosts per {spec.edge_role} fit the address plan")
    g = nx.MultiGraph(name=spec.name, kind=spec.kind, spec=spec)
    next_ifindex: Counter = Counter()

    def ifname(node: str) -> str:
        index = next_ifindex[node]
        next_ifindex[node] += 1
        return f"{node}-eth{index}"

    edges = [f"{spec.edge_role}{i}" for i in range(spec.edges)]
    cores = [f"{spec.core_role}{i}" for i in range(spec.cores)]
    group_of_host = [grp for grp in spec.host_groups for _ in range(grp.count)]

    for i, edge in enumerate(edges):
        prefix = ipaddress.IPv4Network((int(HOST_BLOCK) + i * 2 * HOSTS_PER_EDGE_MAX, 23))
        g.add_node(edge, role=spec.edge_role, tier="edge", index=i, host_prefix=str(prefix))
    for i, core in enumerate(cores):
        g.add_node(core, role=spec.core_role, tier="core", index=i)

    host_index = 0
    for i, edge in enumerate(edges):
        base = int(HOST_BLOCK) + i * 2 * HOSTS_PER_EDGE_MAX
        for j in range(spec.hosts_per_edge):
            host = f"h{host_index}"
            group = group_of_host[host_index]
            switch_ip = str(ipaddress.IPv4Address(base + 2 * j))
            host_ip = str(ipaddress.IPv4Address(base + 2 * j + 1))
            g.add_node(host, role="host", tier="host", index=host_index, edge=edge, group=group.name,
                       accelerator=group.accelerator, host_role=group.role, address=host_ip,
                       gateway=switch_ip, nic_rate_bps=spec.host_link_rate_bps)
            g.add_edge(host, edge, key=0, kind="host", rate_bps=spec.host_link_rate_bps,
                       buffer_bytes=spec.buffer_per_port_bytes, link_id=f"{host}-{edge}",
                       addr={host: host_ip, edge: switch_ip}, ifname={host: ifname(host), edge: ifname(edge)})
            host_index += 1

    fabric_link = 0
    for edge in edges:
        for core in cores:
            for k in range(spec.links_per_pair):
                base = int(FABRIC_BLOCK) + 2 * fabric_link
                fabric_link += 1
                edge_ip, core_ip = str(ipaddress.IPv4Address(base)), str(ipaddress.IPv4Address(base + 1))
                g.add_edge(edge, core, key=k, kind="fabric", rate_bps=spec.effective_fabric_link_rate_bps,
                           buffer_bytes=spec.buffer_per_port_bytes, link_id=f"{edge}-{core}#{k}",
                           addr={edge: edge_ip, core: core_ip}, ifname={edge: ifname(edge), core: ifname(core)})
    return g


def hosts(g: nx.MultiGraph) -> list[str]:
    """Host names in index order."""
    return sorted((n for n, d in g.nodes(data=True) if d["role"] == "host"), key=lambda n: g.nodes[n]["index"])


def switches(g: nx.MultiGraph) -> list[str]:
    """Switch (router) names: edges first, then cores, each in index order."""
    order = {"edge": 0, "core": 1}
    return sorted((n for n, d in g.nodes(data=True) if d["role"] != "host"),
                  key=lambda n: (order[g.nodes[n]["tier"]], g.nodes[n]["index"]))


def routes(g: nx.MultiGraph) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """Static routes for every switch: ``{switch: {prefix: [(next_hop_ip, out_ifname), ...]}}``.

    Each destination edge switch's host prefix is routed along all shortest paths; a list of more
    than one next hop is an ECMP set. Directly attached host /31s need no route. Hosts use a
    default route via their gateway and are not listed.
    """
    table: dict[str, dict[str, list[tuple[str, str]]]] = {s: {} for s in switches(g)}
    switch_graph = g.subgraph(switches(g))
    for dest in (n for n in switches(g) if g.nodes[n]["tier"] == "edge"):
        prefix = g.nodes[dest]["host_prefix"]
        dist = nx.single_source_shortest_path_length(switch_graph, dest)
        for node in table:
            if node == dest or node not in dist:
                continue
            hops = []
            for _, nbr, data in sorted(g.edges(node, data=True), key=lambda e: (e[1], e[2]["link_id"])):
                if g.nodes[nbr]["role"] != "host" and dist.get(nbr) == dist[node] - 1:
                    hops.append((data["addr"][nbr], data["ifname"][node]))
            table[node][prefix] = hops
    return table


def path_count(g: nx.MultiGraph, src_host: str, dst_host: str) -> int:
    """Number of distinct shortest physical paths (parallel links count separately)."""
    simple = nx.Graph()
    for u, v in g.edges():
        simple.add_edge(u, v, mult=simple.get_edge_data(u, v, {"mult": 0})["mult"] + 1)
    total = 0
    for path in nx.all_shortest_paths(simple, src_host, dst_host):
        n = 1
        for u, v in zip(path, path[1:]):
            n *= simple[u][v]["mult"]
        total += n
    return total


def path_link_rates_bps(g: nx.MultiGraph, src_host: str, dst_host: str) -> list[float]:
    """Real rates of the links a packet crosses from ``src_host`` to ``dst_host``, in order.

    Every shortest path of these designs crosses links of the same rates (hosts' own links, then
    uplink and downlink of one core switch), so one path tells them all.
    """
    path = nx.shortest_path(g, src_host, dst_host)
    return [min(d["rate_bps"] for d in g.get_edge_data(u, v).values()) for u, v in zip(path, path[1:])]


def fabric_facts(g: nx.MultiGraph) -> dict:
    """Derived facts of a fabric: sizes, oversubscription, bisection, ports per tier, BOM, emulability."""
    spec: FabricSpec = g.graph["spec"]
    host_links = [d for _, _, d in g.edges(data=True) if d["kind"] == "host"]
    fabric_links = [d for _, _, d in g.edges(data=True) if d["kind"] == "fabric"]
    per_edge_down = spec.hosts_per_edge * spec.host_link_rate_bps
    per_edge_up = spec.cores * spec.links_per_pair * spec.effective_fabric_link_rate_bps
    # Bisection: the cut between two halves of the edge switches (and their hosts); all traffic
    # across it crosses the core tier, so it is the smaller of the halves' uplink and host capacity.
    half = spec.edges // 2
    bisection_bps = min(half * per_edge_up, half * per_edge_down) if spec.edges > 1 else 0

    ports = {}
    for role in (spec.edge_role, spec.core_role):
        members = [n for n, d in g.nodes(data=True) if d["role"] == role]
        by_speed: Counter = Counter()
        for _, _, d in g.edges(members[0], data=True):
            by_speed[_speed_label(d["rate_bps"])] += 1
        ports[role] = {"count": len(members), "ports_per_switch": sum(by_speed.values()),
                       "ports_by_speed": dict(by_speed)}

    namespaces = g.number_of_nodes()
    emulable = namespaces <= MAX_EMULATED_NAMESPACES
    return {
        "name": spec.name,
        "kind": spec.kind,
        "hosts": spec.hosts,
        "switches": {spec.edge_role: spec.edges, spec.core_role: spec.cores},
        "links": {"host": len(host_links), "fabric": len(fabric_links),
                  "total": len(host_links) + len(fabric_links)},
        "host_link_rate_bps": spec.host_link_rate_bps,
        "fabric_link_rate_bps": spec.effective_fabric_link_rate_bps,
        "oversubscription": per_edge_down / per_edge_up,
        "bisection_bps": bisection_bps,
        "ecmp_paths_between_edges": spec.cores * spec.links_per_pair,
        "load_balancing": spec.load_balancing.mode,
        "ports": ports,
        "bom": bill_of_materials(g),
        "host_groups": [{"name": grp.name, "count": grp.count, "accelerator": grp.accelerator, "role": grp.role}
                        for grp in spec.host_groups],
        "emulable": emulable,
        "emulable_reason": (f"{namespaces} namespaces; fits this machine (at most {MAX_EMULATED_NAMESPACES})"
                            if emulable else
                            f"{namespaces} namespaces; too large to emulate here (at most "
                            f"{MAX_EMULATED_NAMESPACES}): validate and cost it, emulate a scaled slice"),
    }


def bill_of_materials(g: nx.MultiGraph) -> dict:
    """Switches by role, radix and port speed; optics per link end; NICs — counted from the graph.

    Every link end counts one optic (host links included: NIC-side and switch-side pluggables),
    as in the build sheets cited in docs/economics.md.
    """
    switches_by_kind: Counter = Counter()
    for node, data in g.nodes(data=True):
        if data["role"] == "host":
            continue
        speeds = Counter(_speed_label(d["rate_bps"]) for _, _, d in g.edges(node, data=True))
        radix = sum(speeds.values())
        top_speed = max(speeds, key=lambda s: (speeds[s], s))
        switches_by_kind[(data["role"], radix, top_speed)] += 1
    optics: Counter = Counter()
    for _, _, d in g.edges(data=True):
        optics[_speed_label(d["rate_bps"])] += 2
    nics: Counter = Counter(_speed_label(d["nic_rate_bps"]) for _, d in g.nodes(data=True) if d["role"] == "host")
    return {
        "switches": [{"role": role, "radix": radix, "speed": speed, "count": count}
                     for (role, radix, speed), count in sorted(switches_by_kind.items())],
        "optics": [{"speed": s, "count": c} for s, c in sorted(optics.items())],
        "nics": [{"speed": s, "count": c} for s, c in sorted(nics.items())],
    }


def _speed_label(bps: float) -> str:
    return format_rate(bps)


def hosts_by_group(g: nx.MultiGraph) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for h in hosts(g):
        out[g.nodes[h]["group"]].append(h)
    return dict(out)


def hosts_by_role(g: nx.MultiGraph) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for h in hosts(g):
        out[g.nodes[h]["host_role"]].append(h)
    return dict(out)


def links(g: nx.MultiGraph, kinds: Iterable[str] = ("host", "fabric")) -> list[tuple[str, str, dict]]:
    """Links as ``(edge_or_host_end, switch_end, data)`` in a stable order."""
    kinds = set(kinds)
    out = [(u, v, d) for u, v, d in g.edges(data=True) if d["kind"] in kinds]
    return sorted(out, key=lambda e: e[2]["link_id"])
