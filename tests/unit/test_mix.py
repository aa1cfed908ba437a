"""Accelerator mixes (``fabric compare --mix NAME=SPEC``, fabric/mix.py): parsing, which entry a host
group takes (group name > role > *), NICs dropped unless ``@NIC`` gives them, every refusal naming
--mix, the mix and the bad part, comparisons planned as designs × mixes with one k, the mix carried
into summary.json and run.json, and a sweep varying one group's accelerator. No root, no emulation,
no simulation: plans are made with engine="sim" and runs written by a synthetic runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fabric.errors import SpecError
from fabric.mix import Mix, MixEntry, apply_mix, mixed_mapping, parse_mix, parse_mixes
from fabric.specs import load_fabric_spec, parse_fabric_spec
from fabric.yamlspec import load_yaml_mapping

REPO = Path(__file__).resolve().parents[2]
MULTI = REPO / "topologies" / "multi-vendor.yaml"
ECMP = REPO / "topologies" / "leaf-spine-ecmp.yaml"
PROFILE = REPO / "tests" / "emulation" / "profiles" / "small-mixed.yaml"


def mixed(path: Path, text: str):
    """(spec, mapping) of the design at ``path`` with the mix ``text``."""
    mix = parse_mix(text)
    base = load_fabric_spec(path)
    return apply_mix(load_yaml_mapping(path), base, mix, f"{base.name}+{mix.name}", path)


def groups(spec) -> dict:
    return {g.name: g for g in spec.host_groups}


@pytest.fixture
def fast_design(tmp_path) -> Path:
    """leaf-spine-ecmp with 800G fabric links and no host_link_rate: each group takes its own NICs."""
    data = load_yaml_mapping(ECMP)
    data.pop("host_link_rate")
    data.update(name="fast-ecmp", fabric_link_rate="800G")
    path = tmp_path / "fast-ecmp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def no_groups_design(tmp_path) -> Path:
    """leaf-spine-ecmp without host_groups: the default single group of 16 H100 (role any)."""
    data = load_yaml_mapping(ECMP)
    data.pop("host_groups")
    data["name"] = "plain"
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def test_a_mix_is_parsed_into_entries_with_the_catalog_spelling():
    mix = parse_mix(" b200-prefill = prefill:b200@800G, decode-gaudi3:GAUDI3@3x200G ,*:mi300x ")
    assert mix.name == "b200-prefill" and not mix.as_written
    assert mix.entries == (MixEntry("prefill", "B200", 1, "800G"), MixEntry("decode-gaudi3", "Gaudi3", 3, "200G"),
                           MixEntry("*", "MI300X"))


def test_design_means_the_design_as_written():
    mix = parse_mix("as-built=design")
    assert mix == Mix("as-built", "as-built=design") and mix.as_written
    spec, mapping = mixed(MULTI, "as-built=design")
    base = load_fabric_spec(MULTI)
    assert spec.name == "multi-vendor+as-built" and mapping["name"] == spec.name
    assert spec.host_groups == base.host_groups
    assert spec.source == f"{MULTI} with mix as-built"


def test_several_mixes_keep_their_order():
    assert [m.name for m in parse_mixes(["a=design", "b=*:H100", "c=decode:H200"])] == ["a", "b", "c"]
    assert parse_mixes(None) == [] and parse_mixes([]) == []


# --------------------------------------------------------------------------------------------
# Applying: precedence and NICs
# --------------------------------------------------------------------------------------------

def test_a_group_name_beats_a_role_which_beats_every_group():
    spec, _ = mixed(MULTI, "m=*:H200,decode:MI300X,decode-gaudi3:Gaudi3,prefill-b200:B200")
    g = groups(spec)
    assert g["prefill-b200"].accelerator == "B200"      # by name, although * also matches
    assert g["decode-gaudi3"].accelerator == "Gaudi3"   # by name, over its role decode
    assert g["decode-mi300x"].accelerator == "MI300X"   # by role, over *
    spec, _ = mixed(MULTI, "m=*:H200,decode:MI300X")
    assert groups(spec)["prefill-b200"].accelerator == "H200"   # * where nothing closer matches
    assert groups(spec)["decode-gaudi3"].accelerator == "MI300X"


def test_a_group_no_entry_matches_keeps_its_accelerator_and_nics():
    spec, mapping = mixed(MULTI, "m=decode:H100")
    g = groups(spec)
    assert (g["prefill-b200"].accelerator, g["prefill-b200"].nic_rate_bps, g["prefill-b200"].nic_from) == \
        ("B200", 800_000_000_000, "group")
    assert mapping["host_groups"][0] == {"name": "prefill-b200", "count": 4, "accelerator": "B200",
                                         "role": "prefill", "nic_rate": "800G"}


def test_a_matched_group_drops_its_nics_and_takes_the_new_accelerators():
    """The B200 build's 800G NIC does not stick to the H100 that replaces it: catalog H100, 1 x 400G."""
    spec, mapping = mixed(MULTI, "h100-only=*:H100")
    accelerators = [g for g in spec.host_groups if g.role != "frontend"]
    assert all(g.accelerator == "H100" for g in accelerators)
    assert {(g.nic_count, g.nic_rate_bps, g.nic_from) for g in accelerators} == {(1, 400_000_000_000, "catalog")}
    assert not any({"nic_rate", "nic_count"} & set(raw) for raw in mapping["host_groups"])
    # `*` is every accelerator: the front-end CPU servers stay as they are
    assert groups(spec)["frontend"].accelerator == "EPYC-9354-frontend"
    # Gaudi 3's three ports go with it: a group turned into Gaudi 3 gets 3 x 200G from the catalog.
    spec, _ = mixed(MULTI, "m=decode:Gaudi3")
    assert {(g.nic_count, g.nic_rate_bps) for g in spec.host_groups if g.role == "decode"} == {(3, 200_000_000_000)}


def test_at_nic_gives_the_groups_nics():
    spec, mapping = mixed(MULTI, "m=prefill:H200@800G,decode-gaudi3:Gaudi3@2x200G")
    g = groups(spec)
    assert (g["prefill-b200"].accelerator, g["prefill-b200"].nic_count, g["prefill-b200"].nic_rate_bps) == \
        ("H200", 1, 800_000_000_000)
    assert (g["decode-gaudi3"].nic_count, g["decode-gaudi3"].host_rate_bps, g["decode-gaudi3"].nic_from) == \
        (2, 400_000_000_000, "group")
    assert mapping["host_groups"][2]["nic_count"] == 2 and mapping["host_groups"][2]["nic_rate"] == "200G"


def test_a_design_host_link_rate_still_comes_before_the_catalog():
    spec, _ = mixed(ECMP, "m=*:Gaudi3")
    assert {(g.accelerator, g.nic_count, g.nic_rate_bps, g.nic_from) for g in spec.host_groups} == \
        {("Gaudi3", 1, 400_000_000_000, "host_link_rate")}


def test_a_design_without_host_groups_takes_star_and_role_any(no_groups_design):
    for text in ("m=*:B200", "m=any:B200", "m=hosts:B200"):
        spec, mapping = mixed(no_groups_design, text)
        assert [(g.name, g.count, g.accelerator, g.role) for g in spec.host_groups] == [("hosts", 16, "B200", "any")]
        assert mapping["host_groups"] == [{"name": "hosts", "count": 16, "accelerator": "B200"}]
    spec, mapping = mixed(no_groups_design, "m=design")
    assert "host_groups" not in mapping and spec.host_groups[0].accelerator == "H100"
    with pytest.raises(SpecError, match="'prefill' matches no host group or role of .*plain.yaml"):
        mixed(no_groups_design, "m=prefill:B200")


def test_the_mapping_given_is_not_changed():
    data = load_yaml_mapping(MULTI)
    before = json.dumps(data, sort_keys=True)
    mixed_mapping(data, load_fabric_spec(MULTI), parse_mix("m=*:H100"), "x", str(MULTI))
    assert json.dumps(data, sort_keys=True) == before


# --------------------------------------------------------------------------------------------
# Refusals: one SpecError naming --mix, the mix and the bad part
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, part", [
    ("h100-only", "expected NAME=SPEC"),
    ("=*:H100", "expected NAME=SPEC"),
    ("h100-only=", "expected NAME=SPEC"),
    ("m=*H100", "'*H100'"),
    ("m=*:H100,", "''"),
    ("m=:H100", "':H100'"),
    ("m=decode:", "'decode:'"),
    ("m=*:H100@", "the NIC ''"),
    ("m=*:H100@fast", "the NIC 'fast'"),
    ("m=*:H100@0x400G", "at least one NIC"),
    ("m=*:H100,*:B200", "'*' is given twice"),
])
def test_a_malformed_mix_is_refused(text, part):
    with pytest.raises(SpecError) as err:
        parse_mix(text)
    msg = str(err.value)
    assert msg.startswith(f"--mix: {text.strip()}: ") and part in msg


def test_an_unknown_accelerator_is_refused_with_the_valid_ones():
    with pytest.raises(SpecError) as err:
        parse_mix("m=decode:MI400X")
    msg = str(err.value)
    assert msg.startswith("--mix: m=decode:MI400X: unknown accelerator 'MI400X' in 'decode:MI400X'; valid: ")
    assert "B200" in msg and "Gaudi3" in msg and "H100" in msg and "MI300X" in msg


@pytest.mark.parametrize("name", ["a b", "../x", "a/b", "-lead", ".hidden", "h100+b200", "é"])
def test_a_mix_name_unsafe_for_a_directory_is_refused(name):
    with pytest.raises(SpecError, match=r"^--mix: .*: mix name .* cannot be part of a directory name"):
        parse_mix(f"{name}=*:H100")


def test_a_mix_name_given_twice_is_refused():
    with pytest.raises(SpecError, match=r"^--mix: a=design: mix name 'a' is given twice"):
        parse_mixes(["a=*:H100", "a=design"])


def test_a_key_that_matches_nothing_names_the_design():
    with pytest.raises(SpecError) as err:
        mixed(ECMP, "m=prefill-b200:H100")
    msg = str(err.value)
    assert msg.startswith("--mix: m=prefill-b200:H100: 'prefill-b200' matches no host group or role of ")
    assert str(ECMP) in msg and "groups: prefill, decode" in msg


def test_a_mixed_design_failing_a_design_check_names_the_file_the_mix_and_the_key():
    """non_blocking holds for the mixed design: 4 hosts x 3 x 400G exceed leaf0's 3.2T of uplinks."""
    with pytest.raises(SpecError) as err:
        mixed(MULTI, "wide=prefill:B200@3x400G")
    msg = str(err.value)
    assert msg.startswith(f"--mix: wide=prefill:B200@3x400G: {MULTI} with mix wide: host_groups: leaf0 holds ")
    assert "non_blocking is true" in msg


# --------------------------------------------------------------------------------------------
# fabric compare: designs × mixes
# --------------------------------------------------------------------------------------------

MIXES = ["h100-only=*:H100", "b200-gaudi=prefill:B200@800G,decode:Gaudi3"]


def test_plan_compare_plans_every_design_with_every_mix_at_one_k(fast_design):
    from fabric.compare import plan_compare
    plan = plan_compare([MULTI, fast_design], PROFILE, None, None, engine="sim", mixes=parse_mixes(MIXES))
    assert [p.name for p in plan.designs] == ["multi-vendor+h100-only", "multi-vendor+b200-gaudi",
                                              "fast-ecmp+h100-only", "fast-ecmp+b200-gaudi"]
    assert [(p.base_design, p.mix) for p in plan.designs] == [
        ("multi-vendor", "h100-only"), ("multi-vendor", "b200-gaudi"),
        ("fast-ecmp", "h100-only"), ("fast-ecmp", "b200-gaudi")]
    assert [p.spec.name for p in plan.designs] == [p.name for p in plan.designs]
    assert [m.name for m in plan.mixes] == ["h100-only", "b200-gaudi"]
    G = 1_000_000_000
    accel = {p.name: [g.accelerator for g in p.spec.host_groups] for p in plan.designs}
    rates = {p.name: sorted(set(p.spec.host_rates_bps)) for p in plan.designs}
    # `*` changes every accelerator group; the front-end CPU servers keep theirs (and their 100G NICs).
    assert accel["multi-vendor+h100-only"] == ["H100"] * 3 + ["EPYC-9354-frontend"]
    assert rates["multi-vendor+h100-only"] == [100 * G, 400 * G]
    assert accel["multi-vendor+b200-gaudi"] == ["B200", "Gaudi3", "Gaudi3", "EPYC-9354-frontend"]
    assert rates["multi-vendor+b200-gaudi"] == [100 * G, 600 * G, 800 * G]
    assert accel["fast-ecmp+h100-only"] == ["H100", "H100"] and rates["fast-ecmp+h100-only"] == [400 * G]
    assert accel["fast-ecmp+b200-gaudi"] == ["B200", "Gaudi3"] and rates["fast-ecmp+b200-gaudi"] == [600 * G, 800 * G]
    # The graph is built from the mixed design: the hosts' links run at the mix's rates.
    from fabric.topology import hosts
    mv = plan.designs[1]
    assert sorted({mv.graph.nodes[h]["nic_rate_bps"] for h in hosts(mv.graph)}) == [100 * G, 600 * G, 800 * G]
    assert plan.k == 1.0 and set(plan.scale["per_design"]) == {p.name for p in plan.designs}


def test_the_emulator_plan_takes_one_k_for_every_design_and_mix(fast_design):
    from fabric.compare import plan_compare
    plan = plan_compare([MULTI, fast_design], PROFILE, None, None, mixes=parse_mixes(MIXES))
    assert len(plan.designs) == 4
    assert plan.k == max(p.scale.k for p in plan.designs)
    assert set(plan.scale["per_design"]) == {p.name for p in plan.designs}


def test_without_mixes_nothing_changes():
    from fabric.compare import plan_compare
    plan = plan_compare([ECMP, ECMP], PROFILE, None, None, engine="sim")
    assert [(p.name, p.mix, p.base_design, p.mapping) for p in plan.designs] == [
        ("leaf-spine-ecmp", None, None, None), ("leaf-spine-ecmp-2", None, None, None)]
    assert plan.designs[0].spec.source == str(ECMP) and plan.mixes == []


def test_the_same_design_twice_with_mixes_is_named_apart():
    from fabric.compare import plan_compare
    plan = plan_compare([ECMP, ECMP], PROFILE, None, None, engine="sim", mixes=parse_mixes(["a=design", "b=*:H200"]))
    assert [p.name for p in plan.designs] == ["leaf-spine-ecmp+a", "leaf-spine-ecmp+b",
                                              "leaf-spine-ecmp-2+a", "leaf-spine-ecmp-2+b"]


def test_a_profile_that_does_not_place_on_a_mixed_design_names_the_design_and_mix():
    """small-mixed's decode pattern needs one decode accelerator; multi-vendor as built has two."""
    from fabric.compare import plan_compare
    from fabric.errors import WorkloadError
    with pytest.raises(WorkloadError, match=r"several accelerator types .*\(on .*multi-vendor.yaml with mix as-built\)"):
        plan_compare([MULTI], PROFILE, None, None, engine="sim", mixes=parse_mixes(["as-built=design"]))


def test_plan_runs_names_run_directories_and_records_the_mix(tmp_path, fast_design):
    from fabric.compare import plan_compare, plan_runs
    from fabric.report.summary import build_summary
    plan = plan_compare([MULTI, fast_design], PROFILE, None, None, engine="sim", mixes=parse_mixes(MIXES))
    records, runs = plan_runs(plan, tmp_path, 1)
    assert [r.record.run_dir.name for r in runs] == ["multi-vendor+h100-only-r1", "multi-vendor+b200-gaudi-r1",
                                                     "fast-ecmp+h100-only-r1", "fast-ecmp+b200-gaudi-r1"]
    assert [(d.mix, d.base_design) for d in records] == [(p.mix, p.base_design) for p in plan.designs]
    summary = json.loads(json.dumps(build_summary(records, sensitivity=False)))
    assert [(d["name"], d["mix"], d["base_design"]) for d in summary["designs"]] == [
        ("multi-vendor+h100-only", "h100-only", "multi-vendor"), ("multi-vendor+b200-gaudi", "b200-gaudi", "multi-vendor"),
        ("fast-ecmp+h100-only", "h100-only", "fast-ecmp"), ("fast-ecmp+b200-gaudi", "b200-gaudi", "fast-ecmp")]
    assert summary["comparison"]["baseline"] == "multi-vendor+h100-only"


def test_a_design_record_without_a_mix_serialises_nulls():
    from fabric.report.summary import DesignRecord, build_summary
    summary = build_summary([DesignRecord("leaf-spine-ecmp", "leaf-spine", str(ECMP))], sensitivity=False)
    assert summary["designs"][0]["mix"] is None and summary["designs"][0]["base_design"] is None


def test_a_mixed_run_records_the_mixed_design_and_a_design_file_reproduces_it(tmp_path, fast_design):
    """What the runner is given is the mixed design, so run.json (which economics prices) records the
    mix's accelerators; OUT/designs/<name>.yaml is a design file the summary's run lines name."""
    from dataclasses import dataclass, field

    from fabric.compare import plan_compare, run_compare
    from fabric.rundir.runjson import fabric_spec, read_run_json
    from tests.unit.test_report import synthetic_run

    @dataclass
    class Options:
        seed: int
        scale: float
        hash_seed: int
        name: str
        extra: dict = field(default_factory=dict)

    def runner(spec, g, schedule, out_dir, options, progress):
        return synthetic_run(spec, g, schedule, out_dir, k=options.scale, seed=options.seed,
                             hash_seed=options.hash_seed, name=options.name, traffic=PROFILE)

    mixes = parse_mixes(["h100-only=*:H100", "b200-gaudi=prefill:B200@800G,decode:Gaudi3"])
    # Planned for the emulator (no root needed to plan): a large k keeps the synthetic runs small.
    plan = plan_compare([fast_design], PROFILE, None, None, mixes=mixes, schedule_window=(0.0, 0.1))
    out = tmp_path / "cmp"
    result = run_compare(plan, out, repeats=1, runner=runner, options_type=Options)
    assert result.finished == 2
    rj = read_run_json(out / "runs" / "fast-ecmp+b200-gaudi-r1")
    assert rj["topology"]["path"] == f"{fast_design} with mix b200-gaudi"
    recorded = fabric_spec(rj)
    assert recorded.name == "fast-ecmp+b200-gaudi"
    assert [(g.name, g.accelerator, g.host_rate_bps) for g in recorded.host_groups] == [
        ("prefill", "B200", 800_000_000_000), ("decode", "Gaudi3", 600_000_000_000)]
    written = out / "designs" / "fast-ecmp+b200-gaudi.yaml"
    again = load_fabric_spec(written)
    assert again.name == recorded.name and again.host_groups == recorded.host_groups
    assert again.content_sha256 != "" and recorded.content_sha256 == plan.designs[1].spec.content_sha256
    cmds = result.summary["commands"]
    assert cmds["compare"].endswith(" --mix 'h100-only=*:H100' --mix b200-gaudi=prefill:B200@800G,decode:Gaudi3")
    assert cmds["compare"].count(str(fast_design)) == 1
    assert f"--topo {written}" in cmds["runs"][1]
    assert [(d["mix"], d["base_design"]) for d in result.summary["designs"]] == [
        ("h100-only", "fast-ecmp"), ("b200-gaudi", "fast-ecmp")]


def test_compare_help_describes_mix():
    from typer.testing import CliRunner

    from tests.unit.test_compare_cli import cli_app
    res = CliRunner().invoke(cli_app(), ["compare", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--mix" in res.output and "NAME=SPEC" in res.output


def test_compare_refuses_a_bad_mix_before_anything_runs(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import fabric.emu.runner as runner
    from tests.unit.test_compare_cli import cli_app

    def boom(*a, **k):
        raise AssertionError("ran although the mix should have been refused")
    monkeypatch.setattr(runner, "run", boom)
    res = CliRunner().invoke(cli_app(), ["compare", str(MULTI), "--traffic", str(PROFILE), "--out",
                                         str(tmp_path / "o"), "--mix", "x=*:H999"])
    assert res.exit_code == 1
    assert "--mix: x=*:H999: unknown accelerator 'H999'" in res.output
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------
# fabric sweep: a grid over one group's accelerator
# --------------------------------------------------------------------------------------------

def test_a_sweep_grid_over_a_groups_accelerator_resolves(tmp_path):
    """``design.host_groups[prefill-b200].accelerator`` already works as a sweep key (an entry by name).
    Unlike --mix it changes that one key: the group's nic_rate stays."""
    from fabric.sweep.plan import make_point
    from fabric.sweep.spec import parse_sweep
    sweep = parse_sweep({"design": str(MULTI), "workload": str(PROFILE),
                         "grid": {"design.host_groups[prefill-b200].accelerator": ["B200", "H100", "MI300X"]}},
                        str(tmp_path / "sweep.yaml"))
    base_design, base_workload = load_yaml_mapping(MULTI), load_yaml_mapping(PROFILE)
    seen = []
    for values in sweep.points:
        point = make_point(sweep, base_design, base_workload, values, None, "sim")
        spec = parse_fabric_spec(point.design, str(MULTI))
        prefill = groups(spec)["prefill-b200"]
        seen.append((prefill.accelerator, prefill.nic_rate_bps))
        assert [g.accelerator for g in spec.host_groups[1:]] == ["MI300X", "Gaudi3", "EPYC-9354-frontend"]
    assert seen == [("B200", 800_000_000_000), ("H100", 800_000_000_000), ("MI300X", 800_000_000_000)]
    assert len({make_point(sweep, base_design, base_workload, v, None, "sim").hash for v in sweep.points}) == 3
