"""Fabric graphs built from a :class:`~fabric.specs.FabricSpec`, and the facts derived from them.

The graph is a pure-data description (no root needed): a ``networkx.MultiGraph`` whose nodes are
hosts and switches with their roles, and whose edges are physical links (parallel links between
the same pair are separate edges) with rates, buffers, interface names and /31 addresses. Routes
(ECMP next-hop sets per destination prefix) are computed from it; the emulator realises it.

Addressing plan (private, inside the run's own namespaces only):

* host links: edge switch ``i`` owns ``10.64.0.0/10`` slice ``i`` as a /23; host ``j`` on it uses
  the /31 ``base + 2j`` (switch side even, host side odd);
* fabric links: consecutive /31s from ``10.0.0.0/10`` (edge side even, core side odd).

A host with several NICs (its group's ``nic_count``) has ONE host link at ``nic_count × nic_rate``
(``nic_striping: split``: every message is spread evenly over the NICs, so they act as one
link); the link records ``ports`` and ``port_rate_bps`` so the bill of materials counts each
NIC, cable end and switch port at its own speed.
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
            # nic_rate_bps is the host's whole link (all its NICs): what every engine shapes and
            # every analysis divides by; nic_count and nic_port_rate_bps say what it is made of.
            g.add_node(host, role="host", tier="host", index=host_index, edge=edge, group=group.name,
                       accelerator=group.accelerator, host_role=group.role, address=host_ip,
                       gateway=switch_ip, nic_rate_bps=group.host_rate_bps, nic_count=group.nic_count,
                       nic_port_rate_bps=group.nic_rate_bps)
            g.add_edge(host, edge, key=0, kind="host", rate_bps=group.host_rate_bps,
                       ports=group.nic_count, port_rate_bps=group.nic_rate_bps,
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
    edge_down = [sum(d["rate_bps"] for _, _, d in g.edges(edge, data=True) if d["kind"] == "host")
                 for edge in sorted((n for n, d in g.nodes(data=True) if d["tier"] == "edge"),
                                    key=lambda n: g.nodes[n]["index"])]
    per_edge_up = spec.cores * spec.links_per_pair * spec.effective_fabric_link_rate_bps
    # Bisection: the worst cut between two halves of the edge switches (and their hosts); all
    # traffic across it crosses the core tier, so it is the smaller of a half's uplinks and the
    # host capacity of the half with the slowest hosts.
    half = spec.edges // 2
    bisection_bps = min(half * per_edge_up, sum(sorted(edge_down)[:half])) if spec.edges > 1 else 0

    ports = {}
    for role in (spec.edge_role, spec.core_role):
        members = sorted((n for n, d in g.nodes(data=True) if d["role"] == role), key=lambda n: g.nodes[n]["index"])
        layouts: Counter = Counter(tuple(sorted(_switch_ports(g, m).items())) for m in members)
        first = _switch_ports(g, members[0])
        ports[role] = {"count": len(members), "ports_per_switch": sum(first.values()), "ports_by_speed": first}
        if len(layouts) > 1:
            # Hosts of different rates make edge switches differ: one entry per port layout.
            ports[role]["layouts"] = [{"count": n, "ports_per_switch": sum(c for _, c in layout),
                                       "ports_by_speed": dict(layout)}
                                      for layout, n in sorted(layouts.items(), key=lambda e: (-e[1], e[0]))]

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
        "host_link_mix": host_link_mix(g),
        "fabric_link_rate_bps": spec.effective_fabric_link_rate_bps,
        # The busiest edge switch's: host link capacity under it ÷ its uplink capacity.
        "oversubscription": max(edge_down) / per_edge_up,
        "bisection_bps": bisection_bps,
        "ecmp_paths_between_edges": spec.cores * spec.links_per_pair,
        "load_balancing": spec.load_balancing.mode,
        "ports": ports,
        "bom": bill_of_materials(g),
        "host_groups": [{"name": grp.name, "count": grp.count, "accelerator": grp.accelerator, "role": grp.role,
                         "nic_count": grp.nic_count, "nic_rate_bps": grp.nic_rate_bps, "nic_from": grp.nic_from,
                         "host_rate_bps": grp.host_rate_bps,
                         # The group's share of the bill of materials' host side (bill_of_materials counts
                         # the same): one NIC, one edge-switch port and two optics per cable.
                         "bom": {"nics": grp.count * grp.nic_count, "optics": 2 * grp.count * grp.nic_count,
                                 "edge_ports": grp.count * grp.nic_count, "speed": _speed_label(grp.nic_rate_bps)}}
                        for grp in spec.host_groups],
        "emulable": emulable,
        "emulable_reason": (f"{namespaces} namespaces; fits this machine (at most {MAX_EMULATED_NAMESPACES})"
                            if emulable else
                            f"{namespaces} namespaces; too large to emulate here (at most "
                            f"{MAX_EMULATED_NAMESPACES}): validate and cost it, emulate a scaled slice"),
    }


def host_link_mix(g: nx.MultiGraph) -> list[dict]:
    """The host links by rate, fastest first: ``[{rate_bps, nic_count, nic_rate_bps, hosts}]``
    (one entry when every host has the same NICs)."""
    mix: Counter = Counter((d["nic_rate_bps"], d["nic_count"], d["nic_port_rate_bps"])
                           for _, d in g.nodes(data=True) if d["role"] == "host")
    return [{"rate_bps": rate, "nic_count": count, "nic_rate_bps": port, "hosts": n}
            for (rate, count, port), n in sorted(mix.items(), key=lambda e: (-e[0][0], -e[0][2]))]


def host_link_label(rate_bps: float, nic_count: int, nic_rate_bps: float) -> str:
    """``800G``, or ``600G (3 x 200G)`` for a host whose link is several NICs."""
    if nic_count == 1:
        return _speed_label(rate_bps)
    return f"{_speed_label(rate_bps)} ({nic_count} x {_speed_label(nic_rate_bps)})"


def _switch_ports(g: nx.MultiGraph, node: str) -> dict[str, int]:
    """A switch's physical ports by speed: a host link of several NICs takes one port per NIC."""
    by_speed: Counter = Counter()
    for _, _, d in g.edges(node, data=True):
        by_speed[_speed_label(d.get("port_rate_bps", d["rate_bps"]))] += d.get("ports", 1)
    return dict(by_speed)


def bill_of_materials(g: nx.MultiGraph) -> dict:
    """Switches by role, radix and port speed; optics per link end; NICs — counted from the graph.

    Every link end counts one optic (host links included: NIC-side and switch-side pluggables),
    as in the build sheets cited in docs/economics.md. A host of ``nic_count`` NICs has that many
    cables: ``nic_count`` NICs, ``2 × nic_count`` optics and ``nic_count`` switch ports, each at
    one NIC's speed.
    """
    switches_by_kind: Counter = Counter()
    for node, data in g.nodes(data=True):
        if data["role"] == "host":
            continue
        speeds = _switch_ports(g, node)
        radix = sum(speeds.values())
        top_speed = max(speeds, key=lambda s: (speeds[s], s))
        switches_by_kind[(data["role"], radix, top_speed)] += 1
    optics: Counter = Counter()
    for _, _, d in g.edges(data=True):
        optics[_speed_label(d.get("port_rate_bps", d["rate_bps"]))] += 2 * d.get("ports", 1)
    nics: Counter = Counter()
    for _, d in g.nodes(data=True):
        if d["role"] == "host":
            nics[_speed_label(d.get("nic_port_rate_bps", d["nic_rate_bps"]))] += d.get("nic_count", 1)
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
