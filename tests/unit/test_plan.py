"""The emulator's configuration plan (fabric.emu.plan): the exact commands per namespace (no root needed).

Small designs of each kind are written as YAML into tmp_path, built into graphs and planned at a
scale k; the tests then parse the plan's sysctl / ip / tc / nft lines and check them against facts
of the design (rates ÷ k, buffers ÷ k, one nexthop per spine link, ...), never against numbers
copied from the plan's own output.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

import pytest
import yaml

from fabric.emu.plan import NFT_TABLE, SPRAY_TABLE_BASE, build_plan, ifb_name, voq_layout
from fabric.probe import DEFAULT_PAYLOAD_BYTES, PROBE_UDP_PORT, WIRE_OVERHEAD_BYTES
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric, hosts, switches

K = 40                        # scale factor passed to build_plan
HOST_RATE_BPS = 200e9         # "200G" in the designs below
FABRIC_RATE_BPS = 400e9       # "400G"
BUFFER_BYTES = 8_000_000      # "8MB" (SI prefixes)
VOQ_DEPTH_BYTES = 64_000_000  # "64MB"
SPEEDUP = 1.5
TICK_S = 1e-3                 # "1ms"
GRANT_FRACTION = 0.9
HASH_SEED = 12345
PACKET = DEFAULT_PAYLOAD_BYTES + WIRE_OVERHEAD_BYTES  # one full probe packet on the wire
# Bits of net.ipv4.fib_multipath_hash_fields (Documentation/networking/ip-sysctl.rst).
KERNEL_HASH_BITS = {"src_ip": 0x0001, "dst_ip": 0x0002, "proto": 0x0004, "src_port": 0x0010, "dst_port": 0x0020}


def leaf_spine_design(mode="ecmp", links_per_pair=2, **lb):
    return {
        "name": f"small-{mode}",
        "kind": "leaf-spine",
        "description": f"2 leaves x 2 spines, 4 hosts, {mode}",
        "leaves": 2,
        "spines": 2,
        "hosts_per_leaf": 2,
        "links_per_pair": links_per_pair,
        "host_link_rate": "200G",
        "fabric_link_rate": "400G",
        "buffer_per_port": "8MB",
        "non_blocking": True,
        "load_balancing": {"mode": mode, **lb},
        "host_groups": [{"name": "prefill", "count": 2, "accelerator": "H100", "role": "prefill"},
                        {"name": "decode", "count": 2, "accelerator": "H100", "role": "decode"}],
    }


def scheduled_design(links_per_pair=1):
    return {
        "name": "small-scheduled",
        "kind": "scheduled",
        "description": "2 NCPs x 2 NCFs, 4 hosts, VOQs",
        "ncps": 2,
        "ncfs": 2,
        "hosts_per_ncp": 2,
        "links_per_pair": links_per_pair,
        "host_link_rate": "200G",
        "fabric_link_rate": "400G",
        "fabric_speedup": SPEEDUP,
        "buffer_per_port": "8MB",
        "voq_depth": "64MB",
        "non_blocking": True,
        "scheduler": {"policy": "fair", "tick": "1ms", "grant_fraction": GRANT_FRACTION},
    }


ECMP_FIELDS = ["src_ip", "dst_ip", "dst_port"]


def design_graph(tmp_path, data):
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return build_fabric(load_fabric_spec(path))


@pytest.fixture
def ecmp(tmp_path):
    return design_graph(tmp_path, leaf_spine_design("ecmp", hash_seed=HASH_SEED, hash_fields=ECMP_FIELDS))


@pytest.fixture
def spray(tmp_path):
    return design_graph(tmp_path, leaf_spine_design("spray"))


@pytest.fixture
def scheduled(tmp_path):
    return design_graph(tmp_path, scheduled_design())


@pytest.fixture(params=["ecmp", "spray", "scheduled"])
def any_design(request):
    return request.getfixturevalue(request.param)


def plan_of(g, k=K, **kw):
    return build_plan(g, k, g.graph["spec"].load_balancing.hash_seed, **kw)


# --- parsing the plan's lines ----------------------------------------------------------------

HTB_CLASS_RE = re.compile(r"^class add dev (\S+) parent 1: classid 1:1 htb rate (\d+)bit ceil (\d+)bit "
                          r"burst (\d+) cburst (\d+) quantum (\d+)$")
BFIFO_RE = re.compile(r"^qdisc add dev (\S+) parent 1:1 handle 10: bfifo limit (\d+)$")


def port_shaping(plan):
    """{ifname: {"rate", "ceil", "burst", "cburst", "limit"}} from a node's tc lines (HTB + bfifo ports)."""
    out: dict[str, dict[str, int]] = {}
    roots = set()
    for line in plan.tc:
        if m := re.match(r"^qdisc replace dev (\S+) root handle 1: htb default 1$", line):
            roots.add(m[1])
        elif m := HTB_CLASS_RE.match(line):
            assert m[1] not in out, f"two classes on {m[1]}"
            out[m[1]] = dict(rate=int(m[2]), ceil=int(m[3]), burst=int(m[4]), cburst=int(m[5]), quantum=int(m[6]))
        elif m := BFIFO_RE.match(line):
            out[m[1]]["limit"] = int(m[2])
    assert roots == set(out), "every shaped port needs its HTB root and class"
    return out


def main_routes(plan):
    """{prefix: [(via, dev), ...]} of the main table's multipath routes."""
    out = {}
    for line in plan.ip:
        if line.startswith("route add ") and " nexthop " in line:
            prefix = line.split()[2]
            hops = re.findall(r"nexthop via (\S+) dev (\S+) weight 1", line)
            assert line == f"route add {prefix} " + " ".join(f"nexthop via {ip} dev {dev} weight 1" for ip, dev in hops)
            assert prefix not in out, f"{prefix} routed twice"
            out[prefix] = hops
    return out


def sysctls(plan):
    return dict(s.split("=", 1) for s in plan.sysctl)


def nft_text(plan):
    return " ".join(line.strip() for line in plan.nft)


def link_ends(g, u, v):
    """Every parallel link between u and v as (u's ifname, v's address, link data)."""
    return [(d["ifname"][u], d["addr"][v], d) for d in g.get_edge_data(u, v).values()]


def edge_nodes(g):
    return [n for n in switches(g) if g.nodes[n]["tier"] == "edge"]


def core_nodes(g):
    return [n for n in switches(g) if g.nodes[n]["tier"] == "core"]


# --- hosts -----------------------------------------------------------------------------------


def test_design_yaml_round_trips_the_values_the_tests_assume(ecmp, scheduled):
    for g in (ecmp, scheduled):
        spec = g.graph["spec"]
        assert (spec.host_link_rate_bps, spec.fabric_link_rate_bps) == (HOST_RATE_BPS, FABRIC_RATE_BPS)
        assert spec.buffer_per_port_bytes == BUFFER_BYTES
    assert scheduled.graph["spec"].voq_depth_bytes == VOQ_DEPTH_BYTES
    assert scheduled.graph["spec"].scheduler.tick_ns == TICK_S * 1e9


def test_every_host_gets_its_address_and_a_default_route_via_its_edge_switch(any_design):
    g = any_design
    plans, _ = plan_of(g)
    for h in hosts(g):
        node = g.nodes[h]
        edge = node["edge"]
        (ifname, gateway, _), = link_ends(g, h, edge)
        ip = plans[h].ip
        assert ipaddress.IPv4Address(node["address"]) in ipaddress.IPv4Network(g.nodes[edge]["host_prefix"])
        assert gateway == node["gateway"]
        # host and gateway share one /31
        assert ipaddress.IPv4Interface(f"{node['address']}/31").network == ipaddress.IPv4Interface(
            f"{gateway}/31").network
        assert f"addr add {node['address']}/31 dev {ifname}" in ip
        assert f"link set dev {ifname} up" in ip
        assert ip.count(f"route add default via {gateway}") == 1
        assert [line for line in ip if line.startswith("route ")] == [f"route add default via {gateway}"]
        # the edge switch holds the gateway address on its side of the same link
        (edge_if, host_addr, _), = link_ends(g, edge, h)
        assert host_addr == node["address"]
        assert f"addr add {gateway}/31 dev {edge_if}" in plans[edge].ip
        # hosts do not forward and have no multipath settings
        assert "net.ipv4.ip_forward" not in sysctls(plans[h])
        assert not any("multipath" in s for s in plans[h].sysctl)
        assert sysctls(plans[h])["net.ipv4.conf.all.rp_filter"] == "0"


def test_static_neighbours_carry_the_mac_the_peer_sets_on_its_end(any_design):
    g = any_design
    plans, _ = plan_of(g)
    mac_of = {}
    for node, plan in plans.items():
        for line in plan.ip:
            if m := re.match(r"^link set dev (\S+) address (\S+) mtu (\d+)$", line):
                mac_of[(node, m[1])] = m[2]
    n_ifaces = 2 * g.number_of_edges()
    assert len(mac_of) == n_ifaces
    assert len(set(mac_of.values())) == n_ifaces, "MACs must be unique across the fabric"
    for u, v, d in g.edges(data=True):
        for node, peer in ((u, v), (v, u)):
            expect = (f"neigh replace {d['addr'][peer]} lladdr {mac_of[(peer, d['ifname'][peer])]} "
                      f"dev {d['ifname'][node]} nud permanent")
            assert expect in plans[node].ip
            assert f"ethtool -K {d['ifname'][node]} tso off gso off gro off" in plans[node].ethtool


# --- routes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("links_per_pair", [1, 2])
@pytest.mark.parametrize("mode", ["ecmp", "spray"])
def test_leaf_routes_each_remote_prefix_over_every_spine_link(tmp_path, mode, links_per_pair):
    g = design_graph(tmp_path, leaf_spine_design(mode, links_per_pair))
    spec = g.graph["spec"]
    plans, _ = plan_of(g)
    leaves, spines = edge_nodes(g), core_nodes(g)
    for leaf in leaves:
        uplinks = {(addr, ifname) for s in spines for ifname, addr, _ in link_ends(g, leaf, s)}
        assert len(uplinks) == spec.cores * links_per_pair
        table = main_routes(plans[leaf])
        remote = {g.nodes[other]["host_prefix"] for other in leaves if other != leaf}
        assert set(table) == remote, "routes to every remote leaf's hosts, none to its own"
        for prefix, hops in table.items():
            assert len(hops) == spec.cores * links_per_pair
            assert {(ip, dev) for ip, dev in hops} == uplinks
    for spine in spines:
        table = main_routes(plans[spine])
        assert set(table) == {g.nodes[leaf]["host_prefix"] for leaf in leaves}
        for leaf in leaves:
            down = {(addr, ifname) for ifname, addr, _ in link_ends(g, spine, leaf)}
            hops = table[g.nodes[leaf]["host_prefix"]]
            assert len(hops) == links_per_pair
            assert set(hops) == down


def test_remote_host_address_falls_in_exactly_one_routed_prefix(ecmp):
    plans, _ = plan_of(ecmp)
    for leaf in edge_nodes(ecmp):
        table = main_routes(plans[leaf])
        for h in hosts(ecmp):
            addr = ipaddress.IPv4Address(ecmp.nodes[h]["address"])
            matches = [p for p in table if addr in ipaddress.IPv4Network(p)]
            assert len(matches) == (0 if ecmp.nodes[h]["edge"] == leaf else 1)


# --- ECMP hashing ------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [ECMP_FIELDS, ["src_ip", "dst_ip", "proto", "src_port", "dst_port"], ["dst_port"]])
def test_switches_hash_the_designs_fields_with_its_seed(tmp_path, fields):
    g = design_graph(tmp_path, leaf_spine_design("ecmp", hash_seed=HASH_SEED, hash_fields=fields))
    plans, _ = plan_of(g)
    mask = sum(KERNEL_HASH_BITS[f] for f in fields)
    for sw in switches(g):
        s = sysctls(plans[sw])
        assert s["net.ipv4.ip_forward"] == "1"
        assert s["net.ipv4.fib_multipath_hash_policy"] == "3"   # 3 = custom fields (the only one using _fields)
        assert int(s["net.ipv4.fib_multipath_hash_fields"], 16) == mask
        assert int(s["net.ipv4.fib_multipath_hash_seed"]) == HASH_SEED
        assert s["net.ipv4.conf.all.rp_filter"] == "0"
        # the seed must be set after the policy/fields, in one place
        assert [x.split("=")[0] for x in plans[sw].sysctl].count("net.ipv4.fib_multipath_hash_seed") == 1


def test_default_hash_fields_are_the_full_five_tuple(tmp_path):
    g = design_graph(tmp_path, leaf_spine_design("ecmp", hash_seed=3))
    plans, _ = plan_of(g)
    for sw in switches(g):
        s = sysctls(plans[sw])
        assert int(s["net.ipv4.fib_multipath_hash_fields"], 16) == sum(KERNEL_HASH_BITS.values())
        assert s["net.ipv4.fib_multipath_hash_seed"] == "3"


def test_hash_seed_argument_overrides_the_design(ecmp):
    plans, _ = build_plan(ecmp, K, HASH_SEED + 1)
    for sw in switches(ecmp):
        assert int(sysctls(plans[sw])["net.ipv4.fib_multipath_hash_seed"]) == HASH_SEED + 1


# --- spraying ------------------------------------------------------------------------------------


def spray_rules(plan):
    """(fwmark rules {mark: (table, priority)}, per-table routes {table: {prefix: (via, dev)}})."""
    rules, tables = {}, {}
    for line in plan.ip:
        if m := re.match(r"^rule add fwmark (\d+) lookup (\d+) priority (\d+)$", line):
            rules[int(m[1])] = (int(m[2]), int(m[3]))
        elif m := re.match(r"^route add (\S+) via (\S+) dev (\S+) table (\d+)$", line):
            tables.setdefault(int(m[4]), {})[m[1]] = (m[2], m[3])
    return rules, tables


def expected_nexthops(g, node):
    """{prefix: {(via, dev)}} from the graph alone: a leaf reaches each remote leaf's hosts over all its
    uplinks, a spine reaches each leaf's hosts over the links to that leaf."""
    edges, cores = edge_nodes(g), core_nodes(g)
    if node in edges:
        uplinks = {(addr, ifname) for c in cores for ifname, addr, _ in link_ends(g, node, c)}
        return {g.nodes[e]["host_prefix"]: uplinks for e in edges if e != node}
    return {g.nodes[e]["host_prefix"]: {(addr, ifname) for ifname, addr, _ in link_ends(g, node, e)} for e in edges}


def assert_sprays(g, plans, node):
    """``node`` marks probe packets round-robin over its next hops and has one single-hop table per mark."""
    expected = expected_nexthops(g, node)
    width = max(len(h) for h in expected.values())
    text = nft_text(plans[node])
    assert text.startswith(f"table ip {NFT_TABLE} {{")
    assert ("chain spray { type filter hook prerouting priority mangle; policy accept; "
            f"udp dport {PROBE_UDP_PORT} meta mark set numgen inc mod {width} offset 1 }}") in text
    rules, tables = spray_rules(plans[node])
    assert set(rules) == set(range(1, width + 1)), "numgen ... offset 1 yields marks 1..width"
    assert len({t for t, _ in rules.values()}) == width and len({p for _, p in rules.values()}) == width
    assert set(tables) == {t for t, _ in rules.values()}
    for prefix, hops in expected.items():
        chosen = [tables[t][prefix] for t in sorted(tables)]
        assert set(chosen) == hops, f"{node}: the marks must cover every nexthop of {prefix}"
        assert len(chosen) == len(set(chosen)), f"{node}: two marks on one link for {prefix}"
    assert all(set(t) == set(expected) for t in tables.values())


def test_spray_design_sprays_probe_packets_over_all_uplinks(spray):
    plans, _ = plan_of(spray)
    spines = core_nodes(spray)
    for leaf in edge_nodes(spray):
        assert_sprays(spray, plans, leaf)
    # links_per_pair = 2: a spine sprays over the parallel links down to each leaf as well
    for spine in spines:
        assert_sprays(spray, plans, spine)
    rules, _ = spray_rules(plans[edge_nodes(spray)[0]])
    assert all(t >= SPRAY_TABLE_BASE for t, _ in rules.values())


def test_spray_design_with_single_links_sprays_only_at_leaves(tmp_path):
    g = design_graph(tmp_path, leaf_spine_design("spray", links_per_pair=1))
    plans, _ = plan_of(g)
    for leaf in edge_nodes(g):
        assert_sprays(g, plans, leaf)
    for spine in core_nodes(g):
        assert "numgen" not in nft_text(plans[spine])
        assert spray_rules(plans[spine]) == ({}, {})


def test_ecmp_design_has_no_spraying(ecmp):
    plans, _ = plan_of(ecmp)
    for node, plan in plans.items():
        assert "numgen" not in nft_text(plan)
        assert "chain spray" not in nft_text(plan)
        assert spray_rules(plan) == ({}, {}), node
        assert not any("fwmark" in line or " table " in line for line in plan.ip), node
    for leaf in edge_nodes(ecmp):
        assert plans[leaf].nft == [], "an ECMP leaf needs no nftables at all"


def test_spines_tag_probe_packets_with_their_index(any_design):
    g = any_design
    plans, _ = plan_of(g)
    for core in core_nodes(g):
        assert (f"chain tag {{ type filter hook forward priority mangle; policy accept; "
                f"udp dport {PROBE_UDP_PORT} ip dscp set {g.nodes[core]['index'] + 1} }}") in nft_text(plans[core])
    for h in hosts(g):
        assert plans[h].nft == []


# --- shaping -----------------------------------------------------------------------------------


def expected_rate(kind, k, dilation=1.0, speedup=1.0):
    real = HOST_RATE_BPS if kind == "host" else FABRIC_RATE_BPS * speedup
    return round(real / (k * dilation))


@pytest.mark.parametrize("k", [K, 250])
def test_every_port_is_shaped_to_the_design_rate_and_buffer_over_k(tmp_path, k):
    g = design_graph(tmp_path, leaf_spine_design("ecmp", hash_seed=HASH_SEED, hash_fields=ECMP_FIELDS))
    plans, shapes = plan_of(g, k=k)
    seen = 0
    for u, v, d in g.edges(data=True):
        for node, peer in ((u, v), (v, u)):
            port = port_shaping(plans[node])[d["ifname"][node]]
            rate = expected_rate(d["kind"], k)
            assert port["rate"] == port["ceil"] == rate, (node, d["link_id"])
            assert port["limit"] == round(BUFFER_BYTES / k)
            assert port["quantum"] == PACKET
            assert port["burst"] == port["cburst"]
            seen += 1
    assert seen == 2 * g.number_of_edges() == len(shapes)
    # the shapes list says the same as the tc lines
    for s in shapes:
        port = port_shaping(plans[s.node])[s.ifname]
        assert (s.rate_bps, s.buffer_bytes, s.burst_bytes) == (port["rate"], port["limit"], port["burst"])
        assert s.rate_bps == expected_rate(s.kind, k)
    n_hosts, n_fabric = 2 * 2, 2 * 2 * 2   # leaves × hosts_per_leaf; leaves × spines × links_per_pair
    assert Counter(s.kind for s in shapes) == {"host": 2 * n_hosts, "fabric": 2 * n_fabric}  # both directions


def test_host_links_pace_every_packet_fabric_links_allow_two(ecmp):
    plans, shapes = plan_of(ecmp)
    for s in shapes:
        if s.kind == "host":
            # below one packet: HTB paces each packet; at least 64 bytes
            assert 64 <= s.burst_bytes <= PACKET // 2
            assert s.burst_bytes <= s.rate_bps * 200e-6 / 8 or s.burst_bytes == 64
        else:
            assert s.burst_bytes == 2 * PACKET


def test_dilation_divides_rates_but_not_buffers(ecmp):
    dilation = 2.5
    plans, shapes = plan_of(ecmp, dilation=dilation)
    plans1, shapes1 = plan_of(ecmp)
    for s, s1 in zip(shapes, shapes1):
        assert (s.node, s.ifname) == (s1.node, s1.ifname)
        assert s.rate_bps == expected_rate(s.kind, K, dilation)
        assert s.buffer_bytes == s1.buffer_bytes == round(BUFFER_BYTES / K)
        assert port_shaping(plans[s.node])[s.ifname]["rate"] == expected_rate(s.kind, K, dilation)


def test_shallow_buffer_over_k_is_floored_at_four_packets(tmp_path):
    data = leaf_spine_design("ecmp")
    data["buffer_per_port"] = "64KB"
    g = design_graph(tmp_path, data)
    k = 100   # 640 bytes: less than one packet
    _, shapes = plan_of(g, k=k)
    assert 64_000 / k < PACKET
    assert {s.buffer_bytes for s in shapes} == {4 * PACKET}


def test_host_nic_queue_replaces_the_buffer_on_the_host_side_only(any_design):
    g = any_design
    queue = 16 * PACKET
    plans, shapes = plan_of(g, host_queue_bytes=queue)
    host_side = [s for s in shapes if g.nodes[s.node]["role"] == "host"]
    assert len(host_side) == len(hosts(g))
    for s in host_side:
        assert s.kind == "host"
        assert port_shaping(plans[s.node])[s.ifname]["limit"] == queue
        assert s.rate_bps == expected_rate("host", K)
    for s in shapes:
        if g.nodes[s.node]["role"] != "host":
            assert s.buffer_bytes != queue and s.buffer_bytes >= round(BUFFER_BYTES / K)
    # without a host queue the host NIC holds the design's buffer ÷ k like any port
    _, plain = plan_of(g)
    for s in plain:
        if g.nodes[s.node]["role"] == "host":
            assert s.buffer_bytes == round(BUFFER_BYTES / K)


# --- the scheduled fabric ------------------------------------------------------------------------


def test_scheduled_fabric_links_run_at_rate_times_speedup(scheduled):
    dilation = 2.0
    plans, shapes = plan_of(scheduled, dilation=dilation)
    fabric = [s for s in shapes if s.kind == "fabric"]
    assert len(fabric) == 2 * 2 * 2 * 1   # both directions of ncps × ncfs × links_per_pair
    for s in fabric:
        assert s.rate_bps == expected_rate("fabric", K, dilation, SPEEDUP)
        assert port_shaping(plans[s.node])[s.ifname]["rate"] == expected_rate("fabric", K, dilation, SPEEDUP)
    for s in shapes:
        if s.kind == "host":
            assert s.rate_bps == expected_rate("host", K, dilation)


def test_scheduled_switch_ports_hold_one_scheduler_tick(scheduled):
    queue = 16 * PACKET
    plans, shapes = plan_of(scheduled, host_queue_bytes=queue)
    for s in shapes:
        if scheduled.nodes[s.node]["role"] == "host":
            assert s.buffer_bytes == queue
            continue
        one_tick = int(s.rate_bps * TICK_S / 8) + 2 * PACKET
        assert s.buffer_bytes == max(round(BUFFER_BYTES / K), one_tick)
        assert s.buffer_bytes >= s.rate_bps * TICK_S / 8, "a tick's credit must fit the port's buffer"
        assert port_shaping(plans[s.node])[s.ifname]["limit"] == s.buffer_bytes


VOQ_CLASS_RE = re.compile(r"^class add dev (\S+) parent 1: classid 1:([0-9a-f]+) htb rate (\d+)bit ceil (\d+)bit "
                          r"quantum (\d+)$")
VOQ_TBF_RE = re.compile(r"^qdisc add dev (\S+) parent 1:([0-9a-f]+) handle ([0-9a-f]+): tbf rate (\d+)bit "
                        r"burst (\d+) limit (\d+)$")
VOQ_FILTER_RE = re.compile(r"^filter add dev (\S+) parent 1: protocol ip prio 1 u32 match ip dst (\S+)/32 "
                           r"flowid 1:([0-9a-f]+)$")


@pytest.mark.parametrize("dilation", [1.0, 2.0])
def test_every_ncp_has_one_voq_per_destination_host_on_its_ifb(scheduled, dilation):
    g = scheduled
    plans, _ = plan_of(g, dilation=dilation)
    ncps = edge_nodes(g)
    capacity = round(HOST_RATE_BPS / (K * dilation))
    for ncp in ncps:
        plan, ifb = plans[ncp], ifb_name(ncp)
        assert f"link add {ifb} type ifb" in plan.ip
        assert any(re.match(rf"^link set dev {re.escape(ifb)} mtu \d+ up$", line) for line in plan.ip)
        assert f"qdisc replace dev {ifb} root handle 1: htb" in plan.tc
        classes, tbfs, filters = {}, {}, {}
        for line in plan.tc:
            if m := VOQ_CLASS_RE.match(line):
                assert m[1] == ifb
                classes[m[2]] = int(m[3])
            elif m := VOQ_TBF_RE.match(line):
                assert m[1] == ifb
                tbfs[m[2]] = dict(handle=int(m[3], 16), rate=int(m[4]), burst=int(m[5]), limit=int(m[6]))
            elif m := VOQ_FILTER_RE.match(line):
                assert m[1] == ifb
                assert m[2] not in filters, f"{m[2]} classified twice"
                filters[m[2]] = m[3]
        # one VOQ per destination host of the whole fabric (local ones included)
        assert set(filters) == {g.nodes[h]["address"] for h in hosts(g)}
        assert len(set(filters.values())) == len(hosts(g)), "each destination has its own VOQ"
        assert set(classes) == set(tbfs) == set(filters.values())
        for minor, tbf in tbfs.items():
            assert tbf["rate"] == int(capacity * GRANT_FRACTION / len(ncps)), "initial grant: port share per NCP"
            assert tbf["limit"] == round(VOQ_DEPTH_BYTES / K)
            assert tbf["handle"] == int(minor, 16) * 16
            assert tbf["burst"] >= PACKET
            assert classes[minor] >= capacity, "the HTB class only sorts; it must not limit the grant"
        # the NCP's host ports, and only those, feed the VOQs
        host_ports = {d["ifname"][ncp] for _, nbr, d in g.edges(ncp, data=True) if g.nodes[nbr]["role"] == "host"}
        fabric_ports = {d["ifname"][ncp] for _, nbr, d in g.edges(ncp, data=True) if g.nodes[nbr]["role"] != "host"}
        assert len(host_ports) == 2 and len(fabric_ports) == 2
        for port in host_ports:
            assert f"qdisc add dev {port} handle ffff: ingress" in plan.tc
            assert (f"filter add dev {port} parent ffff: protocol ip prio 1 u32 match u32 0 0 "
                    f"action mirred egress redirect dev {ifb}") in plan.tc
        for port in fabric_ports:
            assert not any(f"dev {port} " in line and "ingress" in line for line in plan.tc)
        # the initial grants of all NCPs never oversubscribe a port
        assert len(ncps) * int(capacity * GRANT_FRACTION / len(ncps)) <= capacity


def test_voq_layout_matches_the_commands(scheduled):
    voqs = voq_layout(scheduled, K, DEFAULT_PAYLOAD_BYTES)
    ncps = edge_nodes(scheduled)
    assert len(voqs) == len(ncps) * len(hosts(scheduled))
    assert Counter(v.ncp for v in voqs) == {n: len(hosts(scheduled)) for n in ncps}
    plans, _ = plan_of(scheduled)
    for v in voqs:
        assert v.dst_address == scheduled.nodes[v.dst]["address"]
        assert v.capacity_bps == round(HOST_RATE_BPS / K)
        assert v.buffer_bytes == round(VOQ_DEPTH_BYTES / K)
        minor = f"{v.classid & 0xFFFF:x}"
        assert v.classid >> 16 == 1
        assert (f"filter add dev {v.ifb} parent 1: protocol ip prio 1 u32 match ip dst {v.dst_address}/32 "
                f"flowid 1:{minor}") in plans[v.ncp].tc
        assert any(line.startswith(f"qdisc add dev {v.ifb} parent 1:{minor} handle {v.leaf_handle >> 16:x}: tbf "
                                   f"rate {v.initial_rate_bps}bit ") for line in plans[v.ncp].tc)


def test_scheduled_fabric_sprays_over_all_fabric_links_and_only_ncps_have_voqs(tmp_path):
    g = design_graph(tmp_path, scheduled_design(links_per_pair=2))
    plans, _ = plan_of(g)
    for ncp in edge_nodes(g):
        table = main_routes(plans[ncp])
        for hops in table.values():
            assert len(hops) == 2 * 2   # ncfs × links_per_pair
        assert_sprays(g, plans, ncp)
    for node in list(core_nodes(g)) + hosts(g):
        assert not any("ifb" in line for line in plans[node].ip)
        assert not any("ingress" in line or "mirred" in line for line in plans[node].tc)


def test_leaf_spine_designs_have_no_voqs(ecmp, spray):
    for g in (ecmp, spray):
        plans, _ = plan_of(g)
        for plan in plans.values():
            assert not any("type ifb" in line for line in plan.ip)
            assert not any("tbf" in line or "ingress" in line or "mirred" in line for line in plan.tc)


def test_commands_render_every_line_in_order(scheduled):
    plans, _ = plan_of(scheduled)
    for node, plan in plans.items():
        cmds = plan.commands()
        n = len(plan.sysctl) + len(plan.ip) + len(plan.ethtool) + len(plan.tc) + (1 if plan.nft else 0)
        assert len(cmds) == n
        assert cmds[:len(plan.sysctl)] == [f"sysctl -w {s}" for s in plan.sysctl]
        if plan.nft:
            assert cmds[-1] == f"nft -f - <<< '{nft_text(plan)}'"
    assert set(plans) == set(scheduled.nodes)
