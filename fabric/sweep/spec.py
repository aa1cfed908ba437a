"""The sweep file (``scenarios/*.yaml``): what to vary, over which base design and workload.

Format (paths relative to the sweep file)::

    name: kv-buffer-lb                  # default: the file name
    description: ...
    follows: draft-calabria-bmwg-ai-fabric-inference-bench-05 §5.2   # optional: the method it follows
    design: ../topologies/small.yaml    # base fabric design
    workload: ../traffic/small.yaml     # base workload profile
    engine: sim                         # sim (default) | emu | [emu, sim] (every point on each)
    seeds: [1, 2]                       # workload seeds (default: the profile's)
    scale: 1                            # optional k for every point (sim default 1; emu: its own choice)
    costs: ../costs.example.yaml        # optional cost file for η and CPMT
    grid:                               # cartesian product ...
      design.buffer_per_port: [1MB, 8MB]
      design.load_balancing.mode: [ecmp, spray]
    points:                             # ... or a list of points (not both)
      - {design.spines: 2, workload.patterns[background].load: 5%}
    find:                               # optional: SLO-bound goodput per point of grid/points
      max_rate_within_slo:
        key: workload.patterns[kv].arrivals.rate_per_s
        range: [10, 200]
        steps: 4

Keys start with ``design.`` (a dotted path into the design YAML) or ``workload.`` (into the
profile); :mod:`fabric.sweep.paths` reads them. This module checks the file's own shape; whether
each value is one the design or profile parser accepts is checked by :mod:`fabric.sweep.plan`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from fabric.errors import SpecError
from fabric.sweep.paths import DottedPath, PathError, parse_path
from fabric.yamlspec import Section, load_yaml_mapping

ENGINES = ("sim", "emu")
TARGETS = ("design", "workload")
FIND_DIRECTIVES = ("max_rate_within_slo",)
MAX_FIND_STEPS = 12


@dataclass(frozen=True)
class SweepKey:
    """One swept key: which file (design or workload) and the dotted path inside it."""

    text: str               # as written, e.g. "design.load_balancing.mode"
    target: str             # "design" or "workload"
    path: DottedPath


@dataclass(frozen=True)
class FindSpec:
    """``find: max_rate_within_slo``: bisection of one workload key over [low, high]."""

    directive: str
    key: SweepKey
    low: float
    high: float
    steps: int
    where: str              # dotted key of the directive in the sweep file, for errors


@dataclass(frozen=True)
class SweepSpec:
    name: str
    description: str
    follows: str
    source: str
    design_path: Path
    workload_path: Path
    engines: tuple[str, ...]
    seeds: tuple[int, ...] | None          # None: the profile's seed
    scale: float | None
    costs_path: Path | None
    keys: tuple[SweepKey, ...]              # every swept key, in the order written
    points: tuple[tuple[tuple[SweepKey, object], ...], ...]   # each point: (key, value) pairs
    where: tuple[str, ...]                  # each point's place in the file (grid / points[i])
    find: FindSpec | None = None
    content_sha256: str = ""
    grid: dict = field(default_factory=dict)  # key text -> values, as written (grid sweeps)


def sweep_key(text, source: str, where: str) -> SweepKey:
    """Parse ``design.x.y`` / ``workload.patterns[0].z``; a SpecError naming ``where`` otherwise."""
    if not isinstance(text, str) or "." not in text:
        raise SpecError(source, where, f"got {text!r}; a swept key starts with design. or workload. followed by "
                                       f"a dotted path, e.g. design.load_balancing.mode or workload.patterns[0].load")
    target, _, rest = text.strip().partition(".")
    if target not in TARGETS:
        raise SpecError(source, where, f"got {text!r}; a swept key starts with design. or workload., not {target}.")
    try:
        path = parse_path(rest)
    except PathError as exc:
        raise SpecError(source, where, str(exc)) from None
    return SweepKey(text.strip(), target, path)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file. Raises SpecError naming the file, the key and the value."""
    path = Path(path)
    data = load_yaml_mapping(path)
    return parse_sweep(data, str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def _file(top: Section, name: str, base: Path, required: bool = True) -> Path | None:
    raw = top.text(name) if required or top.has(name) else top.raw(name, None)
    if raw is None:
        return None
    p = Path(raw).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise top.fail(name, f"got {raw!r}; no such file ({p})")
    return p


def parse_sweep(data: dict, source: str = "<sweep>", digest: str = "") -> SweepSpec:
    top = Section(data, source)
    base = Path(source).resolve().parent
    name = top.text("name", Path(source).stem)
    description = str(top.raw("description", "")).strip()
    follows = str(top.raw("follows", "")).strip()
    design = _file(top, "design", base)
    workload = _file(top, "workload", base)
    costs = _file(top, "costs", base, required=False)

    engine_raw = top.raw("engine", "sim")
    engines = engine_raw if isinstance(engine_raw, list) else [engine_raw]
    if not engines or any(e not in ENGINES for e in engines) or len(set(engines)) != len(engines):
        raise top.fail("engine", f"got {engine_raw!r}; expected sim, emu or a list of both")

    seeds_raw = top.raw("seeds", None)
    seeds = None
    if seeds_raw is not None:
        seeds = seeds_raw if isinstance(seeds_raw, list) else [seeds_raw]
        if (not seeds or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32 for s in seeds)
                or len(set(seeds)) != len(seeds)):
            raise top.fail("seeds", f"got {seeds_raw!r}; expected a list of distinct whole numbers from 0 to 2**32-1")
        seeds = tuple(seeds)
    scale = top.number("scale", minimum=1.0) if top.has("scale") else top.raw("scale", None)

    if top.has("grid") and top.has("points"):
        raise top.fail("points", "give grid: (a cartesian product) or points: (a list), not both")
    keys: dict[str, SweepKey] = {}
    points: list[tuple] = []
    where: list[str] = []
    grid: dict = {}
    if top.has("grid"):
        raw = top.raw("grid")
        if not isinstance(raw, dict) or not raw:
            raise top.fail("grid", f"got {raw!r}; expected a mapping of swept key to a list of values")
        axes = []
        for text, values in raw.items():
            k = sweep_key(text, source, f"grid.{text}")
            if not isinstance(values, list) or not values:
                raise SpecError(source, f"grid.{text}", f"got {values!r}; expected a non-empty list of values")
            if len({repr(v) for v in values}) != len(values):
                raise SpecError(source, f"grid.{text}", f"got {values!r}; a value is listed twice")
            keys[k.text] = k
            axes.append((k, values))
            grid[k.text] = list(values)
        combos = [()]
        for k, values in axes:
            combos = [c + ((k, v),) for c in combos for v in values]
        points = combos
        where = [f"grid ({', '.join(f'{k.text}={v!r}' for k, v in c)})" for c in combos]
    elif top.has("points"):
        raw = top.raw("points")
        if not isinstance(raw, list) or not raw:
            raise top.fail("points", f"got {raw!r}; expected a non-empty list of mappings of swept key to value")
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or not item:
                raise SpecError(source, f"points[{i}]", f"got {item!r}; expected a mapping of swept key to value")
            pairs = []
            for text, value in item.items():
                k = keys.get(text) or sweep_key(text, source, f"points[{i}].{text}")
                keys[k.text] = k
                pairs.append((k, value))
            points.append(tuple(pairs))
            where.append(f"points[{i}]")
    else:
        top.raw("grid", None)
        top.raw("points", None)
        points, where = [()], ["the base design and workload"]

    find = _find(top, source) if top.has("find") else top.raw("find", None)
    top.finish()
    return SweepSpec(name=name, description=description, follows=follows, source=source, design_path=design,
                     workload_path=workload, engines=tuple(engines), seeds=seeds, scale=scale, costs_path=costs,
                     keys=tuple(keys.values()), points=tuple(points), where=tuple(where), find=find,
                     content_sha256=digest, grid=grid)


def _find(top: Section, source: str) -> FindSpec:
    sec = top.section("find")
    directive = next(iter(sec.data), None)
    if directive not in FIND_DIRECTIVES or len(sec.data) != 1:
        raise top.fail("find", f"got {sorted(sec.data)!r}; expected one directive: {', '.join(FIND_DIRECTIVES)}")
    d = sec.section(directive)
    where = d.prefix
    key = sweep_key(d.raw("key"), source, f"{where}.key")
    if key.target != "workload":
        raise d.fail("key", f"got {key.text!r}; max_rate_within_slo searches a workload rate key (workload....)")
    rng = d.raw("range")
    if (not isinstance(rng, list) or len(rng) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in rng) or not 0 < rng[0] < rng[1]):
        raise d.fail("range", f"got {rng!r}; expected [low, high] with 0 < low < high (plain numbers, in the "
                              f"key's own unit)")
    steps = d.integer("steps", 4, minimum=1, maximum=MAX_FIND_STEPS)
    d.finish()
    sec.finish()
    return FindSpec(directive, key, float(rng[0]), float(rng[1]), steps, where)
