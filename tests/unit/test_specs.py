"""Fabric design files: the shipped ones load, malformed ones are refused naming file and key."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fabric import cli
from fabric.errors import SpecError
from fabric.specs import FabricSpec, load_fabric_spec, parse_fabric_spec

LEAF_SPINE = {
    "name": "small",
    "kind": "leaf-spine",
    "leaves": 2,
    "spines": 2,
    "hosts_per_leaf": 2,
    "links_per_pair": 1,
    "host_link_rate": "400G",
    "fabric_link_rate": "400G",
    "buffer_per_port": "2MB",
    "non_blocking": True,
    "load_balancing": {"mode": "ecmp", "hash_seed": 7},
    "host_groups": [
        {"name": "prefill", "count": 2, "accelerator": "H100", "role": "prefill"},
        {"name": "decode", "count": 2, "accelerator": "H100", "role": "decode"},
    ],
}

SCHEDULED = {
    "name": "small-ddc",
    "kind": "scheduled",
    "ncps": 2,
    "ncfs": 2,
    "hosts_per_ncp": 2,
    "host_link_rate": "400G",
    "fabric_link_rate": "400G",
    "fabric_speedup": 1.0,
    "buffer_per_port": "2MB",
    "voq_depth": "64MB",
    "non_blocking": True,
    "scheduler": {"policy": "weighted", "tick": "5ms", "grant_fraction": 0.98, "weights": {"prefill": 2}},
    "host_groups": [
        {"name": "prefill", "count": 2, "accelerator": "H100", "role": "prefill"},
        {"name": "decode", "count": 2, "accelerator": "H100", "role": "decode"},
    ],
}

DROP = object()


def variant(base: dict, **changes) -> dict:
    """A deep copy of ``base`` with keys replaced (or removed with DROP)."""
    data = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


def write(tmp_path: Path, content, name: str = "design.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


# --- the shipped designs ---------------------------------------------------------------------

def test_every_shipped_design_loads(topology_files):
    names = {p.stem for p in topology_files}
    assert {"leaf-spine-ecmp", "leaf-spine-spray", "scheduled-fabric", "production-1024-h100"} <= names
    for path in topology_files:
        spec = load_fabric_spec(path)
        assert isinstance(spec, FabricSpec)
        assert spec.name == path.stem, f"{path}: name should match the file name"
        assert spec.source == str(path)
        assert len(spec.content_sha256) == 64
        assert sum(g.count for g in spec.host_groups) == spec.hosts


def test_shipped_designs_parse_units(repo_root):
    ecmp = load_fabric_spec(repo_root / "topologies" / "leaf-spine-ecmp.yaml")
    assert (ecmp.edges, ecmp.cores, ecmp.hosts_per_edge, ecmp.hosts) == (4, 4, 4, 16)
    assert ecmp.host_link_rate_bps == 400_000_000_000
    assert ecmp.buffer_per_port_bytes == 8_000_000
    assert ecmp.load_balancing.mode == "ecmp" and ecmp.load_balancing.hash_seed == 7
    assert ecmp.load_balancing.hash_fields_mask == 0x37  # docs/design.md §5: full 5-tuple
    assert not ecmp.spraying

    spray = load_fabric_spec(repo_root / "topologies" / "leaf-spine-spray.yaml")
    assert spray.spraying and spray.load_balancing.mode == "spray"

    ddc = load_fabric_spec(repo_root / "topologies" / "scheduled-fabric.yaml")
    assert (ddc.edge_role, ddc.core_role) == ("ncp", "ncf")
    assert ddc.voq_depth_bytes == 512_000_000
    assert ddc.scheduler.tick_ns == 5_000_000 and ddc.scheduler.grant_fraction == 0.98
    assert ddc.spraying

    prod = load_fabric_spec(repo_root / "topologies" / "production-1024-h100.yaml")
    assert prod.hosts == 1024 and prod.links_per_pair == 2


def test_defaults_when_optional_keys_are_left_out(tmp_path):
    data = variant(LEAF_SPINE, name=DROP, links_per_pair=DROP, load_balancing=DROP, host_groups=DROP,
                   non_blocking=DROP)
    spec = load_fabric_spec(write(tmp_path, data, "bare.yaml"))
    assert spec.name == "bare"
    assert spec.links_per_pair == 1
    assert spec.load_balancing.mode == "ecmp"
    assert [(g.name, g.count) for g in spec.host_groups] == [("hosts", 4)]


def test_small_scheduled_design_loads(tmp_path):
    spec = load_fabric_spec(write(tmp_path, SCHEDULED))
    assert spec.kind == "scheduled" and spec.scheduler.policy == "weighted"
    assert spec.scheduler.weights == (("prefill", 2),)


def test_same_file_same_digest_different_file_different_digest(tmp_path):
    a = load_fabric_spec(write(tmp_path, LEAF_SPINE, "a.yaml"))
    b = load_fabric_spec(write(tmp_path, LEAF_SPINE, "b.yaml"))
    c = load_fabric_spec(write(tmp_path, variant(LEAF_SPINE, buffer_per_port="4MB"), "c.yaml"))
    assert a.content_sha256 == b.content_sha256 != c.content_sha256


# --- malformed designs -----------------------------------------------------------------------
# (id, file content, key the error must name ('' for whole-file problems), words in the message)
BAD_SPECS = [
    ("malformed-yaml", "kind: leaf-spine\nleaves: [1, 2\n", "", ["malformed YAML", "line"]),
    ("top-level-list", "- leaves: 2\n- spines: 2\n", "", ["top level must be a mapping", "list"]),
    ("empty-file", "", "", ["top level must be a mapping"]),
    ("unknown-key-typo", variant(LEAF_SPINE, spinez=3), "spinez", ["unknown key", "spines"]),
    ("unknown-nested-key", variant(LEAF_SPINE, load_balancing={"mode": "ecmp", "hash_sed": 3}),
     "load_balancing.hash_sed", ["unknown key", "hash_seed"]),
    ("scheduler-on-leaf-spine", variant(LEAF_SPINE, scheduler={"tick": "5ms"}), "scheduler", ["unknown key"]),
    ("wrong-type-string", variant(LEAF_SPINE, leaves="four"), "leaves", ["'four'", "whole number"]),
    ("wrong-type-float", variant(LEAF_SPINE, hosts_per_leaf=2.5), "hosts_per_leaf", ["2.5", "whole number"]),
    ("wrong-type-bool", variant(LEAF_SPINE, non_blocking="yes please"), "non_blocking", ["true or false"]),
    ("zero-spines", variant(LEAF_SPINE, spines=0), "spines", ["got 0", "at least 1"]),
    ("negative-leaves", variant(LEAF_SPINE, leaves=-2), "leaves", ["got -2", "at least 1"]),
    ("zero-buffer", variant(LEAF_SPINE, buffer_per_port="0MB"), "buffer_per_port", ["positive"]),
    ("negative-buffer", variant(LEAF_SPINE, buffer_per_port="-1MB"), "buffer_per_port", ["positive"]),
    ("zero-voq", variant(SCHEDULED, voq_depth=0), "voq_depth", ["positive"]),
    ("too-many-parallel-links", variant(LEAF_SPINE, links_per_pair=17), "links_per_pair", ["at most 16"]),
    ("rate-does-not-parse", variant(LEAF_SPINE, host_link_rate="fast"), "host_link_rate",
     ["'fast'", "not a rate", "400G"]),
    ("rate-is-a-size", variant(LEAF_SPINE, fabric_link_rate="400MB"), "fabric_link_rate", ["not a rate"]),
    ("rate-is-boolean", variant(LEAF_SPINE, fabric_link_rate=True), "fabric_link_rate", ["boolean"]),
    ("unknown-kind", variant(LEAF_SPINE, kind="fat-tree"), "kind", ["'fat-tree'", "leaf-spine, scheduled"]),
    ("unknown-load-balancing", variant(LEAF_SPINE, load_balancing={"mode": "adaptive"}), "load_balancing.mode",
     ["'adaptive'", "ecmp, spray"]),
    ("unknown-hash-field", variant(LEAF_SPINE, load_balancing={"mode": "ecmp", "hash_fields": ["src_mac"]}),
     "load_balancing.hash_fields", ["src_mac", "dst_port"]),
    ("host-groups-do-not-add-up",
     variant(LEAF_SPINE, host_groups=[{"name": "all", "count": 3, "accelerator": "H100"}]),
     "host_groups", ["add up to 3", "has 4"]),
    ("duplicate-group-name",
     variant(LEAF_SPINE, host_groups=[{"name": "a", "count": 2, "accelerator": "H100"},
                                      {"name": "a", "count": 2, "accelerator": "H100"}]),
     "host_groups[1].name", ["duplicate", "'a'"]),
    ("unknown-host-role",
     variant(LEAF_SPINE, host_groups=[{"name": "a", "count": 4, "accelerator": "H100", "role": "trainer"}]),
     "host_groups[0].role", ["'trainer'", "prefill"]),
    ("host-groups-not-a-list", variant(LEAF_SPINE, host_groups={"name": "a", "count": 4}), "host_groups",
     ["list of mappings"]),
    ("non-blocking-but-oversubscribed", variant(LEAF_SPINE, host_link_rate="800G"), "host_link_rate",
     ["non_blocking", "1600 Gbit/s", "800 Gbit/s of uplinks"]),
    ("non-blocking-scheduled-oversubscribed", variant(SCHEDULED, hosts_per_ncp=3, host_groups=DROP, scheduler=DROP),
     "host_link_rate", ["non_blocking"]),
    ("scheduler-tick-too-short", variant(SCHEDULED, scheduler={"tick": "10us"}), "scheduler.tick",
     ["'10us'", "between 100us and 1s"]),
    ("scheduler-tick-too-long", variant(SCHEDULED, scheduler={"tick": "2s"}), "scheduler.tick",
     ["between 100us and 1s"]),
    ("scheduler-weights-unknown-group", variant(SCHEDULED, scheduler={"policy": "weighted", "weights": {"prefil": 2}}),
     "scheduler.weights.prefil", ["no host group named 'prefil'", "decode, prefill"]),
    ("scheduler-weight-negative", variant(SCHEDULED, scheduler={"weights": {"prefill": -1}}),
     "scheduler.weights", ["positive weight"]),
    ("scheduler-grant-above-one", variant(SCHEDULED, scheduler={"grant_fraction": 1.5}),
     "scheduler.grant_fraction", ["at most 1.0"]),
    ("speedup-below-one", variant(SCHEDULED, fabric_speedup=0.5), "fabric_speedup", ["at least 1.0"]),
    ("scheduled-with-ecmp", variant(SCHEDULED, load_balancing={"mode": "ecmp"}), "load_balancing.mode",
     ["'ecmp'", "always sprays"]),
    ("missing-required-rate", variant(LEAF_SPINE, fabric_link_rate=DROP), "fabric_link_rate", ["is required"]),
    ("missing-kind", variant(LEAF_SPINE, kind=DROP), "kind", ["is required"]),
    ("missing-ncps", variant(SCHEDULED, ncps=DROP), "ncps", ["is required"]),
    ("empty-value-is-missing", "kind: leaf-spine\nleaves:\n", "leaves", ["is required"]),
]


@pytest.mark.parametrize("content, key, words", [case[1:] for case in BAD_SPECS],
                         ids=[case[0] for case in BAD_SPECS])
def test_malformed_design_is_refused_naming_file_and_key(tmp_path, content, key, words):
    path = write(tmp_path, content)
    with pytest.raises(SpecError) as info:
        load_fabric_spec(path)
    err = info.value
    assert err.source == str(path)
    assert err.key == key
    message = str(err)
    expected_start = f"{path}: {key}: " if key else f"{path}: "
    assert message.startswith(expected_start), message
    assert "\n" not in message, "errors are one line"
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


def test_there_are_at_least_ten_distinct_refusals():
    assert len({case[2] for case in BAD_SPECS}) >= 10


def test_missing_file_is_a_spec_error(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="file not found") as info:
        load_fabric_spec(path)
    assert info.value.source == str(path)


def test_parse_fabric_spec_names_its_source():
    with pytest.raises(SpecError) as info:
        parse_fabric_spec(variant(LEAF_SPINE, leaves=0), "inline.yaml")
    assert str(info.value).startswith("inline.yaml: leaves: ")


def test_non_blocking_false_allows_oversubscription(tmp_path):
    spec = load_fabric_spec(write(tmp_path, variant(LEAF_SPINE, host_link_rate="800G", non_blocking=False)))
    assert spec.host_link_rate_bps == 800_000_000_000


def test_speedup_counts_towards_non_blocking(tmp_path):
    # 3 x 400G down vs 2 x 400G up fails at speedup 1 but passes at speedup 1.5.
    data = variant(SCHEDULED, hosts_per_ncp=3, host_groups=DROP, scheduler=DROP, fabric_speedup=1.5)
    spec = load_fabric_spec(write(tmp_path, data))
    assert spec.effective_fabric_link_rate_bps == 600_000_000_000


# --- the CLI on a bad design -----------------------------------------------------------------

@pytest.fixture
def bad_design(tmp_path) -> Path:
    return write(tmp_path, variant(LEAF_SPINE, spinez=3), "bad.yaml")


def test_cli_runner_bad_design_exits_1_with_one_line(bad_design):
    result = CliRunner().invoke(cli.app, ["topo", "validate", str(bad_design)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad_design) in lines[0] and "spinez" in lines[0] and "unknown key" in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_cli_runner_debug_raises_the_error(bad_design):
    result = CliRunner().invoke(cli.app, ["--debug", "topo", "validate", str(bad_design)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SpecError)
    assert result.exc_info[2] is not None  # the traceback is there to show


def test_cli_runner_debug_flag_does_not_stick(bad_design):
    CliRunner().invoke(cli.app, ["--debug", "topo", "validate", str(bad_design)])
    result = CliRunner().invoke(cli.app, ["topo", "validate", str(bad_design)])
    assert result.exit_code == 1 and not isinstance(result.exception, SpecError)


def test_main_bad_design_exits_1_with_one_line(bad_design, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["topo", "validate", str(bad_design)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {bad_design}: spinez: unknown key")


def test_main_debug_lets_the_traceback_through(bad_design):
    with pytest.raises(SpecError, match="spinez"):
        cli.main(["--debug", "topo", "validate", str(bad_design)])


def test_main_valid_design_exits_0(repo_root, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["topo", "validate", str(repo_root / "topologies" / "leaf-spine-ecmp.yaml")])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("ok  ")


def test_main_usage_error_exits_2_without_traceback(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["topo", "no-such-command"])
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_installed_script_prints_one_line_and_debug_prints_traceback(bad_design):
    # The real entry point, as a user runs it: stderr is exactly one line, and --debug adds the traceback.
    cmd = [sys.executable, "-c", "from fabric.cli import main; main()"]
    plain = subprocess.run([*cmd, "topo", "validate", str(bad_design)], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [plain.stderr.strip()]
    assert "spinez" in plain.stderr and "Traceback" not in plain.stderr
    debug = subprocess.run([*cmd, "--debug", "topo", "validate", str(bad_design)], capture_output=True, text=True,
                           timeout=60)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "SpecError" in debug.stderr
