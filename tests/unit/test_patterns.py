"""The traffic-pattern registry (fabric.workloads.patterns): a pattern type declared there is all the
profile parser, the generator, the schedule contract and the report need — its kinds are valid
schedule kinds, its type parses, its generator emits exactly its declared kinds and records its
declared endpoints for later references."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fabric import schedule
from fabric.report import summary
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric
from fabric.workloads import generate, load_workload
from fabric.workloads.hosts import HostContext
from fabric.workloads.patterns import ALL_KINDS, ETA_KINDS, ETA_ROLES, KINDS, PATTERNS, eta_role_of, kinds_of_role
from fabric.workloads.profile import LoadSpec, Pattern
from fabric.workloads.rows import Rows

ROOT = Path(__file__).resolve().parents[2]
PROFILES = (sorted((ROOT / "traffic").glob("*.yaml")) + sorted((ROOT / "traffic/production").glob("*.yaml"))
            + sorted((ROOT / "tests/emulation/profiles").glob("*.yaml")))




@pytest.fixture(scope="module")
def graph():
    return build_fabric(load_fabric_spec(ROOT / "topologies/leaf-spine-ecmp.yaml"))


@pytest.fixture(scope="module")
def production_graph():
    return build_fabric(load_fabric_spec(ROOT / "topologies/production-1024-h100.yaml"))


@pytest.fixture(scope="module")
def shipped():
    """Every pattern of every shipped profile: (profile path, pattern)."""
    return [(path, p) for path in PROFILES for p in load_workload(path).patterns]


def test_the_schedule_and_the_report_read_their_kinds_from_the_registry():
    assert schedule.KINDS == KINDS and schedule.ETA_KINDS == ETA_KINDS
    assert len(set(KINDS)) == len(KINDS)
    assert summary.CLASS_ORDER == KINDS
    for p in PATTERNS.values():
        assert {k.name for k in p.kinds} <= set(schedule.KINDS), p.name
        assert p.kinds, f"{p.name} declares no message kinds"


def test_eta_roles_are_consistent():
    for k in ALL_KINDS:
        assert k.eta_role in (*ETA_ROLES, None), k
        if k.eta_role is not None:   # a kind that sets an η is one whose resolution the scale choice keeps
            assert k.completion_matters and k.name in ETA_KINDS, k
    for role in ETA_ROLES:
        assert kinds_of_role(role), f"no message kind sets η {role}"
    assert kinds_of_role("moe") == ("a2a_dispatch", "a2a_combine")
    assert {t: eta_role_of(t) for t in PATTERNS} == {
        "disaggregated": "kv", "moe_decode": "moe", "allreduce": "tp", "incast": None, "permutation": None,
        "victim": None, "background": None}
    assert eta_role_of("from-a-newer-fabric") is None
    with pytest.raises(ValueError, match="valid: kv, moe, tp"):
        kinds_of_role("ttft")


def test_every_declared_type_is_exercised_by_a_shipped_profile(shipped):
    assert {p.type for _, p in shipped} == set(PATTERNS)


def test_every_profile_type_resolves_to_its_parser(shipped):
    for path, p in shipped:
        decl = PATTERNS[p.type]
        assert callable(decl.parser) and callable(decl.generator)
        # the parser's return annotation names the Pattern subclass it builds
        assert isinstance(p, Pattern) and type(p).__name__ == decl.parser.__annotations__["return"], (path, p.type)


def test_load_key_is_declared_exactly_for_patterns_without_a_load_option(shipped):
    for _, p in shipped:
        has_load = any(isinstance(getattr(p, f.name), LoadSpec) for f in dataclasses.fields(p))
        assert (PATTERNS[p.type].load_key is None) == has_load, p.type


def test_generators_emit_their_declared_kinds_and_record_their_endpoints(graph, production_graph):
    seen_kinds, seen_endpoints = set(), set()
    for path in PROFILES:
        # One context per profile, patterns in order: later patterns refer to earlier ones' endpoints.
        # traffic/production/: profiles for the production-size design (too many ranks for 16 hosts)
        on = production_graph if path.parent.name == "production" else graph
        if path.name == "hetero-stages.yaml":   # staged across the three vendors and a front end
            on = build_fabric(load_fabric_spec(ROOT / "topologies/multi-vendor.yaml"))
        ctx = HostContext(graph=on, source=str(path), resolved={})
        for p in load_workload(path).patterns:
            ctx.current = p.name
            rows = Rows()
            PATTERNS[p.type].generator(p, ctx, np.random.default_rng(1), rows)
            kinds = set(rows.frame()["kind"])
            declared = {k.name for k in PATTERNS[p.type].kinds}
            assert kinds <= declared, (path.name, p.type, kinds - declared)
            seen_kinds |= kinds
            recorded = {key.split(".", 1)[1] for key in ctx.resolved if key.startswith(f"{p.name}.")}
            # a profile may leave out optional endpoints (a disaggregated pattern's front end)
            assert recorded <= set(PATTERNS[p.type].endpoints), (path.name, p.type, recorded)
            seen_endpoints |= {(p.type, e) for e in recorded}
    # every kind a pattern declares is generated, and every endpoint recorded, by some shipped profile
    assert seen_kinds == {k.name for p in PATTERNS.values() for k in p.kinds}
    assert seen_endpoints == {(p.name, e) for p in PATTERNS.values() for e in p.endpoints}


def test_whole_profiles_generate_through_the_registry(graph):
    gen = generate(load_workload(ROOT / "traffic/mixed-inference.yaml"), graph)
    by_pattern = {p.name: p.type for p in gen.workload.patterns}
    for name, kind in zip(gen.pattern_of_msg, gen.frame["kind"]):
        assert kind in {k.name for k in PATTERNS[by_pattern[name]].kinds}


def test_unknown_type_lists_the_registry(tmp_path):
    from fabric.errors import WorkloadError
    from fabric.workloads import parse_workload
    with pytest.raises(WorkloadError, match="expected one of " + ", ".join(PATTERNS)):
        parse_workload({"duration": "1s", "patterns": [{"type": "ring"}]}, "p.yaml")


def test_fabric_schedule_imports_first_without_a_cycle():
    """fabric.schedule reads the registry, which imports the fabric.workloads package: importing the
    schedule first in a fresh interpreter must work."""
    for first in ("fabric.schedule", "fabric.workloads.patterns", "fabric.workloads.profile", "fabric.emu.scale"):
        res = subprocess.run([sys.executable, "-c", f"import {first}; import fabric.schedule as s; print(s.KINDS)"],
                             cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, (first, res.stderr)
