"""A sweep's plan: every point resolved to a design mapping, a workload mapping, a seed and an
engine, validated before anything runs, and named by the hash of those inputs.

* **Resolution**: each point's values are written into deep copies of the base design and profile
  mappings (:mod:`fabric.sweep.paths`).
* **Validation** (:func:`plan_sweep`): every swept value alone on the base files first, so a value
  the design or profile parser refuses is named with its key and where it is in the sweep file; then
  every point as a whole (design parsed and built, profile parsed, schedule generated for every
  seed, the emulator's emulability or the simulator's size estimate). The first problem raises one
  SpecError; nothing is created.
* **Identity** (:func:`point_hash`): sha256 over the resolved design mapping, workload mapping,
  seed, engine, scale and fabric version. The run directory is ``DIR/points/<hash>/``, so a point
  already run (by an interrupted sweep, or another sweep into the same DIR) is not run again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from fabric import __version__
from fabric.errors import FabricError, SpecError
from fabric.sweep.paths import PathError, set_value
from fabric.sweep.spec import SweepKey, SweepSpec
from fabric.yamlspec import load_yaml_mapping

HASH_CHARS = 16


@dataclass(frozen=True)
class Point:
    """One run of the sweep."""

    hash: str
    values: tuple[tuple[str, object], ...]   # swept key text -> value (find probes include the searched key)
    seed: int
    engine: str
    scale: float | None
    design: dict = field(repr=False, compare=False)
    workload: dict = field(repr=False, compare=False)
    role: str = "grid"                     # "grid" (a point of grid/points) or "find" (a search probe)
    where: str = ""                        # where the point comes from, for messages

    @property
    def label(self) -> str:
        vals = ", ".join(f"{k}={v}" for k, v in self.values) or "base"
        return f"{vals} seed {self.seed} {self.engine}"


@dataclass(frozen=True)
class Search:
    """A ``max_rate_within_slo`` search for one grid point, seed and engine."""

    base: Point
    key: SweepKey
    low: float
    high: float
    steps: int


@dataclass
class SweepPlan:
    spec: SweepSpec
    base_design: dict
    base_workload: dict
    points: list[Point]
    searches: list[Search]
    costs: object                           # fabric.economics CostFile


def point_hash(design: dict, workload: dict, seed: int, engine: str, scale: float | None) -> str:
    """The identity of a run: its inputs, canonical JSON, sha256 (first HASH_CHARS hex digits)."""
    blob = json.dumps({"design": design, "workload": workload, "seed": int(seed), "engine": engine,
                       "scale": scale, "fabric_version": __version__}, sort_keys=True, default=str,
                       separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:HASH_CHARS]


def resolve(spec: SweepSpec, base_design: dict, base_workload: dict, values, where: str) -> tuple[dict, dict]:
    """The base mappings with ``values`` ((SweepKey, value) pairs) written in."""
    design, workload = base_design, base_workload
    for key, value in values:
        try:
            if key.target == "design":
                design = set_value(design, key.path, value)
            else:
                workload = set_value(workload, key.path, value)
        except PathError as exc:
            raise SpecError(spec.source, where, f"{key.text} = {value!r}: {exc} in {_file(spec, key)}") from None
    return design, workload


def _file(spec: SweepSpec, key: SweepKey) -> Path:
    return spec.design_path if key.target == "design" else spec.workload_path


def make_point(spec: SweepSpec, base_design: dict, base_workload: dict, values, seed: int | None, engine: str,
               role: str = "grid", where: str = "") -> Point:
    design, workload = resolve(spec, base_design, base_workload, values, where)
    if seed is None:
        seed = workload.get("seed", 1) if isinstance(workload.get("seed", 1), int) else 1
    return Point(hash=point_hash(design, workload, seed, engine, spec.scale),
                 values=tuple((k.text, v) for k, v in values), seed=int(seed), engine=engine, scale=spec.scale,
                 design=design, workload=workload, role=role, where=where)


def materialize(point: Point, design_source: str, workload_source: str):
    """(FabricSpec, graph, Workload, schedule) of a point; raises the parsers' SpecErrors."""
    from fabric.specs import parse_fabric_spec
    from fabric.topology import build_fabric
    from fabric.workloads import generate_schedule, parse_workload

    spec = parse_fabric_spec(point.design, design_source, _digest(point.design))
    g = build_fabric(spec)
    workload = parse_workload(point.workload, workload_source, _digest(point.workload))
    schedule = generate_schedule(workload, g, seed=point.seed)
    return spec, g, workload, schedule


def _digest(mapping: dict) -> str:
    return hashlib.sha256(json.dumps(mapping, sort_keys=True, default=str).encode()).hexdigest()


def _check_value_alone(spec: SweepSpec, base_design: dict, base_workload: dict, key: SweepKey, value,
                       where: str) -> None:
    """One swept value on the base files: refused paths and values name the sweep key and value."""
    from fabric.specs import parse_fabric_spec
    from fabric.topology import build_fabric
    from fabric.workloads import parse_workload

    design, workload = resolve(spec, base_design, base_workload, [(key, value)], where)
    try:
        if key.target == "design":
            build_fabric(parse_fabric_spec(design, str(spec.design_path)))
        else:
            parse_workload(workload, str(spec.workload_path))
    except FabricError as exc:
        raise SpecError(spec.source, where, f"value {value!r} is refused: {exc}") from None


def _check_point(point: Point, spec: SweepSpec, needs_slo: bool = False) -> None:
    """The whole point: design, graph, profile, schedule; the engine's own up-front refusals; with
    ``needs_slo`` (a search probe) messages whose completion an SLO bounds (kv, MoE, TP)."""
    try:
        fspec, g, _, schedule = materialize(point, str(spec.design_path), str(spec.workload_path))
        if needs_slo:
            from fabric.economics import A2A_KINDS, KV_KINDS, TP_KINDS
            if not schedule["kind"].isin(set(KV_KINDS) | set(A2A_KINDS) | set(TP_KINDS)).any():
                raise SpecError(str(spec.workload_path), "", f"at {point.values[-1][0]} = {point.values[-1][1]!r} "
                                                             f"the profile generates no kv, MoE or TP messages, so "
                                                             f"no TTFT or TPOT to hold to an SLO; raise the low end "
                                                             f"of the range or the duration")
        if point.engine == "emu":
            from fabric.topology import fabric_facts
            facts = fabric_facts(g)
            if not facts["emulable"]:
                raise SpecError(str(spec.design_path), "", facts["emulable_reason"])
        else:
            from fabric.sim.runner import MAX_WALL_S, SimOptions, estimate
            est = estimate(fspec, g, schedule, SimOptions(scale=point.scale or 1.0))
            if est["wall_s"] > MAX_WALL_S:
                raise SpecError(str(spec.design_path), "", f"the simulation is estimated at {est['wall_s'] / 60:.1f} "
                                                           f"min, over the simulator's {MAX_WALL_S // 60} min limit")
    except FabricError as exc:
        what = point.label if point.role == "find" else f"seed {point.seed}, {point.engine}"
        raise SpecError(spec.source, point.where, f"{what}: {exc}") from None


def _validate_values(spec: SweepSpec, base_design: dict, base_workload: dict) -> None:
    seen = set()
    for values, where in zip(spec.points, spec.where):
        for key, value in values:
            token = (key.text, repr(value))
            if token in seen:
                continue
            seen.add(token)
            at = f"grid.{key.text}" if spec.grid else f"{where}.{key.text}"
            _check_value_alone(spec, base_design, base_workload, key, value, at)


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Every point of ``spec`` resolved and validated (see the module docstring); nothing runs."""
    from fabric.economics import load_costs

    costs = load_costs(spec.costs_path)
    base_design = load_yaml_mapping(spec.design_path)
    from fabric.errors import WorkloadError
    base_workload = load_yaml_mapping(spec.workload_path, WorkloadError)
    _validate_values(spec, base_design, base_workload)
    if spec.find is not None:
        if any(k.text == spec.find.key.text for k in spec.keys):
            raise SpecError(spec.source, f"{spec.find.where}.key", f"{spec.find.key.text} is also swept by "
                                                                    f"grid/points; search it or sweep it, not both")
        for bound in (spec.find.low, spec.find.high):
            _check_value_alone(spec, base_design, base_workload, spec.find.key, _as_value(bound),
                               f"{spec.find.where}.range")
    seeds = spec.seeds or (None,)
    points, searches, hashes = [], [], set()
    for values, where in zip(spec.points, spec.where):
        for seed in seeds:
            for engine in spec.engines:
                p = make_point(spec, base_design, base_workload, values, seed, engine, "grid", where)
                _check_point(p, spec)
                if spec.find is not None:
                    for bound in (spec.find.low, spec.find.high):
                        probe = make_point(spec, base_design, base_workload,
                                           values + ((spec.find.key, _as_value(bound)),), seed, engine, "find",
                                           f"{spec.find.where}.range")
                        _check_point(probe, spec, needs_slo=True)
                    searches.append(Search(p, spec.find.key, spec.find.low, spec.find.high, spec.find.steps))
                    continue
                if p.hash in hashes:
                    raise SpecError(spec.source, where, f"{p.label} resolves to the same design and workload as an "
                                                        f"earlier point; list each point once")
                hashes.add(p.hash)
                points.append(p)
    return SweepPlan(spec, base_design, base_workload, points, searches, costs)


def _as_value(x: float):
    """A searched value as written into the profile: whole numbers stay integers."""
    return int(x) if float(x).is_integer() else float(x)


def probe_point(plan: SweepPlan, search: Search, value: float) -> Point:
    """The run of ``search`` at ``value`` of its key."""
    spec = plan.spec
    keys = {k.text: k for k in spec.keys}
    values = tuple((keys[t], v) for t, v in search.base.values) + ((search.key, _as_value(value)),)
    return make_point(spec, plan.base_design, plan.base_workload, values, search.base.seed, search.base.engine,
                      "find", f"{spec.find.where}")
