"""Per-group NICs: host groups of different NIC rates and counts in one design (issue 16).

What each layer must show for a mixed design: the spec's precedence (group > design
host_link_rate > catalog), every host's link at its own rate in the graph, the emulator and
simulator shaping that link at that rate in both directions, per-leaf non-blocking and
oversubscription, and the bill of materials counting every NIC, optic and port at its own speed.
"""

from __future__ import annotations

import re

import pytest
import yaml
from typer.testing import CliRunner

from fabric.cli import app
from fabric.emu.plan import build_plan as emu_plan
from fabric.errors import SpecError
from fabric.report.tables import host_link_text
from fabric.sim.model import build_plan as sim_plan
from fabric.specs import FabricSpec, load_fabric_spec
from fabric.topology import bill_of_materials, build_fabric, fabric_facts, hosts
from fabric.units import format_rate

G = 1_000_000_000
# 2 leaves x 2 spines x 2 hosts: an 800G host and a catalog MI300X (1 x 400G) on leaf0, two
# catalog Gaudi 3 (3 x 200G) on leaf1. Leaf0's hosts: 1.2T; uplinks 2 x 800G = 1.6T.
MIXED = {
    "name": "mixed", "kind": "leaf-spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
    "fabric_link_rate": "800G", "buffer_per_port": "8MB", "non_blocking": True,
    "host_groups": [
        {"name": "b200", "count": 1, "accelerator": "B200", "role": "prefill", "nic_rate": "800G"},
        {"name": "mi300x", "count": 1, "accelerator": "MI300X", "role": "decode"},
        {"name": "gaudi3", "count": 2, "accelerator": "Gaudi3", "role": "decode"},
    ],
}


def write(tmp_path, data: dict, name: str = "design.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def with_group(index: int, **changes) -> dict:
    groups = [dict(g) for g in MIXED["host_groups"]]
    groups[index].update(changes)
    for key in [k for k, v in groups[index].items() if v is None]:
        del groups[index][key]
    return {**MIXED, "host_groups": groups}


@pytest.fixture()
def mixed(tmp_path):
    spec = load_fabric_spec(write(tmp_path, MIXED))
    return spec, build_fabric(spec)


def test_groups_take_their_own_rate_else_the_catalog(mixed):
    spec, _ = mixed
    nics = {g.name: (g.nic_count, g.nic_rate_bps, g.nic_from, g.host_rate_bps) for g in spec.host_groups}
    assert nics == {"b200": (1, 800 * G, "group", 800 * G),
                    "mi300x": (1, 400 * G, "catalog", 400 * G),
                    "gaudi3": (3, 200 * G, "catalog", 600 * G)}
    assert spec.nic_striping == "split" and spec.mixed_host_rates
    # No host_link_rate in the design: old callers read the fastest host link.
    assert spec.host_link_rate_bps == 800 * G
    assert spec.edge_host_rates_bps() == [1200 * G, 1200 * G]


def test_design_host_link_rate_beats_the_catalog_and_a_group_rate_beats_both(tmp_path):
    data = {**with_group(1, nic_rate="100G"), "host_link_rate": "200G", "non_blocking": False}
    spec = load_fabric_spec(write(tmp_path, data))
    nics = {g.name: (g.nic_count, g.nic_rate_bps, g.nic_from) for g in spec.host_groups}
    # Gaudi 3 takes ONE NIC at host_link_rate (what every design meant before groups had NICs),
    # not its catalog 3 x 200G.
    assert nics == {"b200": (1, 800 * G, "group"), "mi300x": (1, 100 * G, "group"),
                    "gaudi3": (1, 200 * G, "host_link_rate")}
    assert spec.host_link_rate_bps == 200 * G


def test_nic_count_alone_multiplies_the_rate_it_would_have_had(tmp_path):
    spec = load_fabric_spec(write(tmp_path, {**with_group(1, nic_count=2), "non_blocking": False}))
    mi300x = spec.host_groups[1]
    assert (mi300x.nic_count, mi300x.nic_rate_bps, mi300x.host_rate_bps) == (2, 400 * G, 800 * G)


def test_graph_puts_every_host_link_at_its_own_rate(mixed):
    spec, g = mixed
    want = {"h0": (800 * G, 1, 800 * G), "h1": (400 * G, 1, 400 * G), "h2": (600 * G, 3, 200 * G),
            "h3": (600 * G, 3, 200 * G)}
    for h, (rate, count, port) in want.items():
        node = g.nodes[h]
        assert (node["nic_rate_bps"], node["nic_count"], node["nic_port_rate_bps"]) == (rate, count, port)
        (link,) = g.get_edge_data(h, node["edge"]).values()
        assert (link["rate_bps"], link["ports"], link["port_rate_bps"]) == (rate, count, port)
    # addressing is unchanged by NICs: one /31 per host link
    assert [g.nodes[h]["address"] for h in hosts(g)] == ["10.64.0.1", "10.64.0.3", "10.64.2.1", "10.64.2.3"]


def test_facts_show_the_mix_and_per_leaf_capacity(mixed):
    _, g = mixed
    facts = fabric_facts(g)
    assert [(m["hosts"], m["rate_bps"], m["nic_count"]) for m in facts["host_link_mix"]] == [
        (1, 800 * G, 1), (2, 600 * G, 3), (1, 400 * G, 1)]
    assert facts["oversubscription"] == pytest.approx(1200 / 1600)
    assert facts["bisection_bps"] == 1200 * G
    # leaf0: 800G + 400G + 2 x 800G up; leaf1: 6 x 200G + 2 x 800G up
    assert facts["ports"]["leaf"]["layouts"] == [
        {"count": 1, "ports_per_switch": 8, "ports_by_speed": {"200G": 6, "800G": 2}},
        {"count": 1, "ports_per_switch": 4, "ports_by_speed": {"400G": 1, "800G": 3}}]
    assert "layouts" not in facts["ports"]["spine"]
    assert [(f["name"], f["host_rate_bps"]) for f in facts["host_groups"]] == [
        ("b200", 800 * G), ("mi300x", 400 * G), ("gaudi3", 600 * G)]
    assert host_link_text(facts) == "1 × 800 Gbit/s, 2 × 600 Gbit/s (3 × 200 Gbit/s), 1 × 400 Gbit/s"


def test_bill_of_materials_counts_each_nic_at_its_own_speed(mixed):
    _, g = mixed
    bom = bill_of_materials(g)
    assert bom["nics"] == [{"speed": "200G", "count": 6}, {"speed": "400G", "count": 1},
                           {"speed": "800G", "count": 1}]
    # one optic per cable end: 6 Gaudi cables, 1 MI300X cable, 1 B200 + 4 fabric cables
    assert bom["optics"] == [{"speed": "200G", "count": 12}, {"speed": "400G", "count": 2},
                             {"speed": "800G", "count": 10}]
    assert sorted((s["role"], s["radix"], s["count"]) for s in bom["switches"]) == [
        ("leaf", 4, 1), ("leaf", 8, 1), ("spine", 2, 2)]


def test_emulator_shapes_each_host_link_both_ways_at_its_rate(mixed):
    _, g = mixed
    k = 1000
    _, shapes = emu_plan(g, k=k, seed=1)
    for h in hosts(g):
        both = [s for s in shapes if s.kind == "host" and h in (s.node, s.peer)]
        assert len(both) == 2
        assert {s.rate_bps for s in both} == {round(g.nodes[h]["nic_rate_bps"] / k)}


def test_simulator_runs_each_host_link_both_ways_at_its_rate(mixed):
    import pandas as pd
    spec, g = mixed
    schedule = pd.DataFrame({"msg_id": [0], "t_start_s": [0.0], "src": ["h0"], "dst": ["h2"], "bytes": [4096],
                             "kind": ["background"], "group": ["x"]})
    plan = sim_plan(spec, g, schedule, k=1.0, payload_bytes=4096, hash_seed=1, tmax_s=0.001,
                    sample_interval_s=1e-4)
    for i, link_id in enumerate(plan.link_ids):
        if plan.link_kinds[i] == "host":
            host = link_id.split("-")[0]
            # one rate per link: ns-3 gives both of its devices (host NIC and leaf port) that rate
            assert plan.link_rate_bps[i] == g.nodes[host]["nic_rate_bps"]


def test_non_blocking_is_checked_per_leaf(tmp_path):
    # three Gaudi 3 hosts would not fit... make leaf0 hold 800G + 1.2T (MI300X with 3 x 400G) > 1.6T
    data = with_group(1, nic_count=3)
    with pytest.raises(SpecError) as err:
        load_fabric_spec(write(tmp_path, data))
    text = str(err.value)
    assert "host_groups" in text and "leaf0" in text and "2000 Gbit/s" in text and "1600 Gbit/s" in text
    assert "1 x 800G (b200)" in text and "1 x 3 x 400G (mi300x)" in text


@pytest.mark.parametrize("change, key, words", [
    ({"nic_rate": "fast"}, "host_groups[1].nic_rate", ["'fast'", "is not a rate"]),
    ({"nic_rate": 0}, "host_groups[1].nic_rate", ["positive rate"]),
    ({"nic_rate": "0G"}, "host_groups[1].nic_rate", ["positive rate"]),
    ({"nic_count": 0}, "host_groups[1].nic_count", ["got 0", "at least 1"]),
    ({"nic_count": 1.5}, "host_groups[1].nic_count", ["got 1.5", "whole number"]),
    ({"nic_count": "two"}, "host_groups[1].nic_count", ["'two'", "whole number"]),
    ({"accelerator": "TPUv9"}, "host_groups[1].accelerator", ["'TPUv9'", "catalog", "MI300X", "nic_rate"]),
    ({"nic_speed": "400G"}, "host_groups[1].nic_speed", ["unknown key", "nic_rate"]),
])
def test_bad_group_nics_name_file_key_and_value(tmp_path, change, key, words):
    path = write(tmp_path, with_group(1, **change))
    with pytest.raises(SpecError) as err:
        load_fabric_spec(path)
    text = str(err.value)
    assert text.startswith(f"{path}: {key}: "), text
    for w in words:
        assert w in text, text


def test_unknown_accelerator_is_fine_with_a_rate(tmp_path):
    spec = load_fabric_spec(write(tmp_path, with_group(1, accelerator="TPUv9", nic_rate="400G")))
    assert spec.host_groups[1].host_rate_bps == 400 * G


@pytest.mark.parametrize("value, words", [
    ("round_robin", ["'round_robin'", "not modelled yet", "split"]),
    ("stripe", ["'stripe'", "expected one of split"]),
])
def test_nic_striping_other_than_split_is_refused(tmp_path, value, words):
    path = write(tmp_path, {**MIXED, "nic_striping": value})
    with pytest.raises(SpecError) as err:
        load_fabric_spec(path)
    text = str(err.value)
    assert text.startswith(f"{path}: nic_striping: ")
    for w in words:
        assert w in text, text


def test_recorded_designs_without_group_nics_still_load(mixed):
    spec, _ = mixed
    data = spec.to_dict()
    assert FabricSpec.from_dict(data) == spec
    # A run.json written before groups had NICs: every host had one NIC at host_link_rate.
    old = {**data, "host_link_rate_bps": 400 * G,
           "host_groups": [{"name": "all", "count": 4, "accelerator": "H100", "role": "any"}]}
    del old["nic_striping"]
    (grp,) = FabricSpec.from_dict(old).host_groups
    assert (grp.nic_count, grp.nic_rate_bps, grp.host_rate_bps) == (1, 400 * G, 400 * G)


def test_every_shipped_design_with_host_link_rate_builds_as_before(topology_files):
    """Designs that give host_link_rate: every host one NIC at that rate, so the graph, addresses,
    oversubscription and BOM are what they were before groups had NICs."""
    for path in topology_files:
        if "host_link_rate" not in yaml.safe_load(path.read_text()):
            continue
        spec = load_fabric_spec(path)
        g = build_fabric(spec)
        assert {(g.nodes[h]["nic_rate_bps"], g.nodes[h]["nic_count"]) for h in hosts(g)} == {
            (spec.host_link_rate_bps, 1)}, path
        rates = {d["kind"]: set() for _, _, d in g.edges(data=True)}
        for _, _, d in g.edges(data=True):
            rates[d["kind"]].add(d["rate_bps"])
        assert rates == {"host": {spec.host_link_rate_bps}, "fabric": {spec.effective_fabric_link_rate_bps}}, path
        facts = fabric_facts(g)
        assert facts["oversubscription"] == pytest.approx(
            spec.hosts_per_edge * spec.host_link_rate_bps
            / (spec.cores * spec.links_per_pair * spec.effective_fabric_link_rate_bps))
        assert facts["bom"]["nics"] == [{"speed": format_rate(spec.host_link_rate_bps), "count": spec.hosts}]
        assert len(facts["host_link_mix"]) == 1 and "layouts" not in facts["ports"][spec.edge_role]


def test_shipped_multi_vendor_design(repo_root):
    spec = load_fabric_spec(repo_root / "topologies" / "multi-vendor.yaml")
    g = build_fabric(spec)
    facts = fabric_facts(g)
    assert len({grp.accelerator for grp in spec.host_groups}) >= 3
    assert {grp.host_rate_bps for grp in spec.host_groups} == {800 * G, 400 * G, 600 * G, 100 * G}
    assert facts["hosts"] == 20 and facts["emulable"] and spec.non_blocking
    assert spec.accelerator_hosts == 16 and spec.frontend_hosts == 4
    assert facts["oversubscription"] <= 1.0
    assert {n["speed"]: n["count"] for n in facts["bom"]["nics"]} == {"800G": 4, "400G": 8, "200G": 12, "100G": 4}
    # Each group's share of the bill of materials: its NICs, and the optics of its host links.
    per_group = {grp["name"]: grp["bom"] for grp in facts["host_groups"]}
    assert per_group == {
        "prefill-b200": {"nics": 4, "optics": 8, "edge_ports": 4, "speed": "800G"},
        "decode-mi300x": {"nics": 8, "optics": 16, "edge_ports": 8, "speed": "400G"},
        "decode-gaudi3": {"nics": 12, "optics": 24, "edge_ports": 12, "speed": "200G"},
        "frontend": {"nics": 4, "optics": 8, "edge_ports": 4, "speed": "100G"}}
    optics = {o["speed"]: o["count"] for o in facts["bom"]["optics"]}
    assert optics["200G"] == 24 and optics["400G"] == 16 and optics["100G"] == 8  # only host links run at these
    assert optics["800G"] == 8 + 2 * facts["links"]["fabric"]    # the B200s' host links + every fabric link


def test_topo_show_prints_the_mix_and_each_groups_nics(repo_root):
    result = CliRunner().invoke(app, ["topo", "show", str(repo_root / "topologies" / "multi-vendor.yaml")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "hosts            20: 4 at 800G, 4 at 600G (3 x 200G), 8 at 400G, 4 at 100G" in out
    assert re.search(r"decode-gaudi3: 4 x Gaudi3 \(decode\), NIC 3 x 200G \(from the accelerator catalog\)", out)
    assert "prefill-b200: 4 x B200 (prefill), NIC 800G (from the group's nic_rate)" in out
    assert "decode-gaudi3" in out and "bill of materials: 12 x 200G NICs, 24 optics, 12 edge-switch ports" in out
    assert "   12 x 200G NICs" in out
    assert ("leaf             2 x 8 ports (4 x 400G, 4 x 800G); 1 x 8 ports (4 x 100G, 4 x 800G); "
            "1 x 16 ports (12 x 200G, 4 x 800G); ") in out
