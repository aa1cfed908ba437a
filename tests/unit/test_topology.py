"""Fabric graphs: invariants of the shipped designs and of parametrised sizes (no root needed)."""

from __future__ import annotations

import doctest
import ipaddress
import itertools
from collections import Counter

import networkx as nx
import pytest

import fabric.topology
from fabric.specs import load_fabric_spec, parse_fabric_spec
from fabric.topology import (
    bill_of_materials,
    build_fabric,
    fabric_facts,
    hosts,
    hosts_by_group,
    hosts_by_role,
    leaf_spine,
    links,
    path_count,
    routes,
    scheduled_fabric,
    switches,
)

IFNAMSIZ = 15  # Linux interface names hold at most 15 characters


def leaf_spine_spec(leaves, spines, hosts_per_leaf, links_per_pair=1, host_rate="400G", fabric_rate="400G",
                    **extra):
    data = {"kind": "leaf-spine", "leaves": leaves, "spines": spines, "hosts_per_leaf": hosts_per_leaf,
            "links_per_pair": links_per_pair, "host_link_rate": host_rate, "fabric_link_rate": fabric_rate,
            "buffer_per_port": "1MB", **extra}
    return parse_fabric_spec(data, "test.yaml")


def scheduled_spec(ncps, ncfs, hosts_per_ncp, links_per_pair=1, speedup=1.0, **extra):
    data = {"kind": "scheduled", "ncps": ncps, "ncfs": ncfs, "hosts_per_ncp": hosts_per_ncp,
            "links_per_pair": links_per_pair, "host_link_rate": "400G", "fabric_link_rate": "400G",
            "fabric_speedup": speedup, "buffer_per_port": "1MB", "voq_depth": "64MB", **extra}
    return parse_fabric_spec(data, "test.yaml")


SIZES = [
    # (edges, cores, hosts per edge, links per pair)
    (2, 2, 2, 1),
    (4, 2, 3, 1),
    (3, 4, 2, 2),
    (2, 3, 4, 2),
    (4, 4, 4, 1),
    (2, 1, 1, 3),
]
SIZE_IDS = [f"{e}x{c}x{h}-lpp{k}" for e, c, h, k in SIZES]


@pytest.fixture(scope="module")
def shipped(repo_root):
    """The three 16-host designs, built once."""
    names = ("leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric")
    return {n: build_fabric(load_fabric_spec(repo_root / "topologies" / f"{n}.yaml")) for n in names}


def all_graphs(shipped):
    """Shipped 16-host graphs plus every parametrised size, as leaf-spine and as scheduled fabric."""
    graphs = list(shipped.values())
    for e, c, h, k in SIZES:
        graphs.append(leaf_spine(leaf_spine_spec(e, c, h, k)))
        graphs.append(scheduled_fabric(scheduled_spec(e, c, h, k)))
    return graphs


@pytest.fixture(scope="module")
def graphs(shipped):
    return all_graphs(shipped)


def _role_nodes(g, tier):
    return [n for n, d in g.nodes(data=True) if d["tier"] == tier]


# --- counts and degrees ----------------------------------------------------------------------

def test_shipped_16_host_designs_have_expected_size(shipped):
    for name, g in shipped.items():
        assert len(hosts(g)) == 16, name
        assert g.number_of_nodes() == 16 + 4 + 4, name
        assert g.number_of_edges() == 16 + 16, name
        assert len(links(g, ("host",))) == 16 and len(links(g, ("fabric",))) == 16


@pytest.mark.parametrize("edges, cores, hpe, lpp", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("kind", ["leaf-spine", "scheduled"])
def test_node_edge_counts_and_degrees(kind, edges, cores, hpe, lpp):
    spec = leaf_spine_spec(edges, cores, hpe, lpp) if kind == "leaf-spine" else scheduled_spec(edges, cores, hpe, lpp)
    g = build_fabric(spec)
    assert isinstance(g, nx.MultiGraph)
    assert g.number_of_nodes() == edges * hpe + edges + cores
    assert g.number_of_edges() == edges * hpe + edges * cores * lpp
    roles = Counter(d["role"] for _, d in g.nodes(data=True))
    assert roles == Counter({"host": edges * hpe, spec.edge_role: edges, spec.core_role: cores})
    for n, d in g.nodes(data=True):
        if d["tier"] == "host":
            assert g.degree(n) == 1
        elif d["tier"] == "edge":
            assert g.degree(n) == hpe + cores * lpp, n
        else:
            assert g.degree(n) == edges * lpp, n
    # parallel links are separate edges with their own keys
    assert g.number_of_edges(f"{spec.edge_role}0", f"{spec.core_role}0") == lpp


def test_shipped_degrees(shipped):
    for g in shipped.values():
        spec = g.graph["spec"]
        for n in _role_nodes(g, "edge"):
            assert g.degree(n) == spec.hosts_per_edge + spec.cores * spec.links_per_pair == 8
        for n in _role_nodes(g, "core"):
            assert g.degree(n) == spec.edges * spec.links_per_pair == 4
        assert all(g.degree(h) == 1 for h in hosts(g))


def test_builder_refuses_the_other_kind():
    with pytest.raises(ValueError, match="leaf-spine"):
        leaf_spine(scheduled_spec(2, 2, 2))
    with pytest.raises(ValueError, match="scheduled"):
        scheduled_fabric(leaf_spine_spec(2, 2, 2))


def test_hosts_and_switches_order_and_groups(shipped):
    g = shipped["leaf-spine-ecmp"]
    assert hosts(g) == [f"h{i}" for i in range(16)]
    assert switches(g) == [f"leaf{i}" for i in range(4)] + [f"spine{i}" for i in range(4)]
    assert hosts_by_group(g) == {"prefill": [f"h{i}" for i in range(8)], "decode": [f"h{i}" for i in range(8, 16)]}
    assert set(hosts_by_role(g)) == {"prefill", "decode"}
    # hosts fill edges in order: h0..h3 on leaf0, h4..h7 on leaf1
    assert [g.nodes[f"h{i}"]["edge"] for i in (0, 3, 4, 15)] == ["leaf0", "leaf0", "leaf1", "leaf3"]


# --- reachability, routes, ECMP sets ---------------------------------------------------------

def test_every_host_pair_is_reachable(graphs):
    for g in graphs:
        assert nx.is_connected(g)
        hs = hosts(g)
        lengths = dict(nx.all_pairs_shortest_path_length(g))
        for a, b in itertools.combinations(hs, 2):
            same_edge = g.nodes[a]["edge"] == g.nodes[b]["edge"]
            assert lengths[a][b] == (2 if same_edge else 4)


def _check_routes(g):
    spec = g.graph["spec"]
    table = routes(g)
    edges, cores = _role_nodes(g, "edge"), _role_nodes(g, "core")
    assert set(table) == set(edges) | set(cores)
    prefixes = {g.nodes[e]["host_prefix"]: e for e in edges}
    for node, rt in table.items():
        tier = g.nodes[node]["tier"]
        expected = set(prefixes) - ({g.nodes[node]["host_prefix"]} if tier == "edge" else set())
        assert set(rt) == expected, node
        for prefix, hops in rt.items():
            want = spec.cores * spec.links_per_pair if tier == "edge" else spec.links_per_pair
            assert len(hops) == want, (node, prefix)
            assert len(set(hops)) == len(hops)
            for next_hop, ifname in hops:
                # find the link leaving `node` on `ifname`; the next hop is the neighbour's end of it
                matches = [(nbr, d) for _, nbr, d in g.edges(node, data=True) if d["ifname"][node] == ifname]
                assert len(matches) == 1, (node, ifname)
                nbr, data = matches[0]
                assert data["kind"] == "fabric"
                assert data["addr"][nbr] == next_hop
                if tier == "core":
                    assert nbr == prefixes[prefix]  # spines go straight to the destination's edge
                else:
                    assert g.nodes[nbr]["tier"] == "core"


@pytest.mark.parametrize("edges, cores, hpe, lpp", SIZES, ids=SIZE_IDS)
def test_routes_and_ecmp_sets(edges, cores, hpe, lpp):
    _check_routes(leaf_spine(leaf_spine_spec(edges, cores, hpe, lpp)))
    _check_routes(scheduled_fabric(scheduled_spec(edges, cores, hpe, lpp)))


def test_routes_of_shipped_designs(shipped):
    for g in shipped.values():
        _check_routes(g)
    table = routes(shipped["leaf-spine-ecmp"])
    assert len(table["leaf0"]["10.64.2.0/23"]) == 4
    assert table["spine0"]["10.64.2.0/23"] == [("10.0.0.8", "spine0-eth1")]


def test_interface_names_short_and_unique_per_node(graphs, repo_root):
    production = build_fabric(load_fabric_spec(repo_root / "topologies" / "production-1024-h100.yaml"))
    for g in [*graphs, production]:
        names: dict[str, list[str]] = {n: [] for n in g.nodes}
        for u, v, d in g.edges(data=True):
            assert set(d["ifname"]) == {u, v}
            for node, ifname in d["ifname"].items():
                assert len(ifname) <= IFNAMSIZ, ifname
                names[node].append(ifname)
        for node, ifnames in names.items():
            assert len(ifnames) == g.degree(node)
            assert len(set(ifnames)) == len(ifnames), node


def test_point_to_point_addressing(graphs):
    for g in graphs:
        seen: set[ipaddress.IPv4Address] = set()
        subnets: set[ipaddress.IPv4Network] = set()
        for u, v, d in g.edges(data=True):
            a, b = (ipaddress.IPv4Address(d["addr"][n]) for n in (u, v))
            net = ipaddress.ip_network(f"{min(a, b)}/31")
            assert b in net and a in net and a != b, d["link_id"]
            subnets.add(net)
            seen.update((a, b))
        assert len(seen) == 2 * g.number_of_edges(), "every link end has its own address"
        assert len(subnets) == g.number_of_edges(), "every link has its own /31"
        # host addresses lie in their edge switch's prefix; hosts' gateways are the switch end
        for h in hosts(g):
            data = g.nodes[h]
            edge = data["edge"]
            prefix = ipaddress.ip_network(g.nodes[edge]["host_prefix"])
            assert ipaddress.ip_address(data["address"]) in prefix
            assert g.edges[h, edge, 0]["addr"] == {h: data["address"], edge: data["gateway"]}
        prefixes = [ipaddress.ip_network(g.nodes[e]["host_prefix"]) for e in _role_nodes(g, "edge")]
        assert not any(p.overlaps(q) for p, q in itertools.combinations(prefixes, 2))


# --- path counts and capacities --------------------------------------------------------------

@pytest.mark.parametrize("edges, cores, hpe, lpp", SIZES, ids=SIZE_IDS)
def test_path_count(edges, cores, hpe, lpp):
    g = leaf_spine(leaf_spine_spec(edges, cores, hpe, lpp))
    first, last = "h0", f"h{edges * hpe - 1}"  # on leaf0 and on the last leaf
    assert path_count(g, first, last) == cores * lpp**2
    if hpe > 1:
        assert path_count(g, "h0", "h1") == 1  # same leaf: through the leaf only


def test_path_count_shipped(shipped):
    assert path_count(shipped["leaf-spine-ecmp"], "h0", "h15") == 4
    assert path_count(shipped["scheduled-fabric"], "h0", "h4") == 4


def test_oversubscription_two_to_one():
    # 4 hosts x 400G down, 2 spines x 400G up per leaf: 2:1
    g = leaf_spine(leaf_spine_spec(4, 2, 4, 1))
    facts = fabric_facts(g)
    assert facts["oversubscription"] == pytest.approx(2.0)
    # bisection: 2 leaves' uplinks (the smaller side of the cut) = 2 x 800G
    assert facts["bisection_bps"] == 1_600_000_000_000


def test_oversubscription_with_parallel_links_and_mixed_rates():
    # 8 x 100G down = 800G; 2 spines x 2 links x 200G up = 800G: 1:1
    facts = fabric_facts(leaf_spine(leaf_spine_spec(2, 2, 8, 2, host_rate="100G", fabric_rate="200G")))
    assert facts["oversubscription"] == pytest.approx(1.0)
    assert facts["bisection_bps"] == 800_000_000_000
    assert facts["ports"]["leaf"]["ports_by_speed"] == {"100G": 8, "200G": 4}


def test_non_blocking_flag_refuses_oversubscription():
    from fabric.errors import SpecError
    with pytest.raises(SpecError, match="non_blocking"):
        leaf_spine_spec(4, 2, 4, 1, non_blocking=True)


@pytest.mark.parametrize("name", ["leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric"])
def test_bisection_of_shipped_designs(shipped, name):
    # Half the hosts (8 x 400G) send to the other half: 3.2 Tbit/s, which the uplinks of half the
    # leaves (2 x 4 x 400G) carry exactly in a non-blocking design.
    facts = fabric_facts(shipped[name])
    assert facts["oversubscription"] == pytest.approx(1.0)
    assert facts["bisection_bps"] == 8 * 400_000_000_000 == 3_200_000_000_000


def test_ports_per_tier(shipped):
    facts = fabric_facts(shipped["leaf-spine-ecmp"])
    assert facts["ports"] == {
        "leaf": {"count": 4, "ports_per_switch": 8, "ports_by_speed": {"400G": 8}},
        "spine": {"count": 4, "ports_per_switch": 4, "ports_by_speed": {"400G": 4}},
    }
    assert facts["ecmp_paths_between_edges"] == 4


@pytest.mark.parametrize("edges, cores, hpe, lpp", SIZES, ids=SIZE_IDS)
def test_bill_of_materials_counts(edges, cores, hpe, lpp):
    g = leaf_spine(leaf_spine_spec(edges, cores, hpe, lpp))
    bom = bill_of_materials(g)
    by_role = Counter()
    for entry in bom["switches"]:
        by_role[entry["role"]] += entry["count"]
    assert by_role == Counter({"leaf": edges, "spine": cores})
    radix = {e["role"]: e["radix"] for e in bom["switches"]}
    assert radix == {"leaf": hpe + cores * lpp, "spine": edges * lpp}
    assert sum(o["count"] for o in bom["optics"]) == 2 * g.number_of_edges()
    assert sum(n["count"] for n in bom["nics"]) == edges * hpe


def test_production_design(repo_root):
    g = build_fabric(load_fabric_spec(repo_root / "topologies" / "production-1024-h100.yaml"))
    facts = fabric_facts(g)
    assert facts["emulable"] is False
    assert "too large to emulate" in facts["emulable_reason"]
    assert facts["hosts"] == 1024
    assert facts["switches"] == {"leaf": 32, "spine": 16}
    assert facts["links"] == {"host": 1024, "fabric": 32 * 16 * 2, "total": 2048}
    assert facts["oversubscription"] == pytest.approx(1.0)
    assert facts["bisection_bps"] == 512 * 400_000_000_000
    assert facts["bom"]["switches"] == [{"role": "leaf", "radix": 64, "speed": "400G", "count": 32},
                                        {"role": "spine", "radix": 64, "speed": "400G", "count": 16}]
    assert facts["bom"]["optics"] == [{"speed": "400G", "count": 4096}]
    assert facts["bom"]["nics"] == [{"speed": "400G", "count": 1024}]
    assert path_count(g, "h0", "h1023") == 16 * 2**2


def test_small_designs_are_emulable(shipped):
    for g in shipped.values():
        facts = fabric_facts(g)
        assert facts["emulable"] is True, facts["emulable_reason"]


# --- scheduled fabric ------------------------------------------------------------------------

def test_speedup_multiplies_fabric_link_rate():
    g = scheduled_fabric(scheduled_spec(2, 2, 2, speedup=1.5))
    for _, _, d in g.edges(data=True):
        assert d["rate_bps"] == (600_000_000_000 if d["kind"] == "fabric" else 400_000_000_000)
    facts = fabric_facts(g)
    assert facts["fabric_link_rate_bps"] == 600_000_000_000
    assert facts["oversubscription"] == pytest.approx(800 / 1200)


def test_ncp_nodes_carry_voq_attributes(shipped):
    g = shipped["scheduled-fabric"]
    ncps = [n for n, d in g.nodes(data=True) if d["role"] == "ncp"]
    assert len(ncps) == 4
    for n in ncps:
        assert g.nodes[n]["voq_bytes"] == 512_000_000
        assert g.nodes[n]["voqs"] == 16  # one per egress host port in the fabric
    for n, d in g.nodes(data=True):
        if d["role"] != "ncp":
            assert "voq_bytes" not in d, n
    # leaf-spine designs have no VOQs
    assert not any("voq_bytes" in d for _, d in shipped["leaf-spine-ecmp"].nodes(data=True))


def test_docstring_examples():
    result = doctest.testmod(fabric.topology, verbose=False)
    assert result.attempted >= 3, "topology.py examples went missing"
    assert result.failed == 0
