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
      - design.spines: 2                # block style: a key with [...] is not plain YAML inside {...}
        workload.patterns[background].load: 5%
    find:                               # optional: SLO-bound goodput per point of grid/points
      max_rate_within_slo:
        key: workload.patterns[kv].arrivals.rate_per_s
        range: [10, 200]
        steps: 4
    kpis:                               # optional (needs follows:): the draft's KPIs, by its names
      - {kpi: KV_xfer_latency, measure: mct_us.kv.p99}
      - {kpi: latency degradation factor, measure: ttft_ms.p99, baseline: "points[0]"}

Keys start with ``design.`` (a dotted path into the design YAML) or ``workload.`` (into the
profile); :mod:`fabric.sweep.paths` reads them. This module checks the file's own shape; whether
each value is one the design or profile parser accepts is checked by :mod:`fabric.sweep.plan`.

``kpis:`` names KPIs of draft-calabria-bmwg-ai-fabric-inference-bench (:data:`DRAFT_KPIS`), each
with a measure from :data:`MEASURES` (what a run directory holds); :mod:`fabric.sweep.results`
computes them into ``sweep.parquet`` and a KPI table of ``sweep.md``.
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

# The KPI names a sweep may report (`kpis:`), as draft-calabria-bmwg-ai-fabric-inference-bench-05
# (8 October 2026) spells them, with the section defining each: the KPI tables of §4 and the derived
# metrics its tests name. A name outside this list is refused, so a report never invents one.
DRAFT_KPIS = {
    "TTFT": "§4.1", "ITL": "§4.1", "TTFT_fabric": "§4.1", "ITL_fabric": "§4.1", "E2E_latency": "§4.1",
    "TPS_input": "§4.2", "TPS_output": "§4.2", "TPS_per_GPU": "§4.2", "Goodput": "§4.2", "Request_Rate": "§4.2",
    "Prefix_cache_hit_rate": "§4.2", "JFI_decode": "§4.2",
    "KV_xfer_latency": "§4.3", "KV_xfer_bandwidth": "§4.3", "EP_alltoall_latency": "§4.3",
    "EP_alltoall_bandwidth": "§4.3", "Fabric_FCT": "§4.3", "Buffer_utilization": "§4.3", "ECN_marking_rate": "§4.3",
    "PFC_frame_count": "§4.3", "Link_utilization": "§4.3", "Packet_drop_rate": "§4.3",
    "tail latency spread": "§5.2", "aggregate throughput": "§5.3, §8.1", "JFI": "§5.3, §8.3, §9.3",
    "scaling efficiency": "§7.3", "contention penalty": "§7.4", "max/min ratio": "§9.4",
    "latency degradation factor": "§10.4",
}

# What a KPI is computed from: ``family`` or ``family.<class>`` or ``family.<class>.<stat>`` (a class
# is a message kind: kv, a2a_dispatch, permutation, ...). family -> (takes a class, stats, unit, meaning).
PERCENTILE_STATS = ("p50", "p90", "p95", "p99", "p99.9", "max", "mean")
MEASURES = {
    "mct_us": (True, PERCENTILE_STATS, "µs", "message completion time of the class (last packet in − scheduled "
                                             "start; loss-recovered messages included)"),
    "mct_spread_us": (True, (), "µs", "P99 − P50 of the class's message completion time"),
    "group_us": (True, PERCENTILE_STATS, "µs", "group completion time: a request's KV shards, one all-to-all "
                                               "phase of one MoE layer, one incast round (last member in − "
                                               "first scheduled start)"),
    "group_gbyte_s": (True, (), "GB/s", "mean over the class's groups of group bytes ÷ group completion time"),
    "goodput_gbyte_s": (True, (), "GB/s", "bytes of the class delivered ÷ the class's span (first send to last "
                                          "arrival)"),
    "loss_ppm": (True, (), "ppm", "packets of the class lost per million sent"),
    "jain_dst": (True, (), "", "Jain's index over per-destination goodput of the class (metrics.json fairness)"),
    "maxmin_dst": (True, (), "×", "highest ÷ lowest per-destination goodput of the class"),
    "jain_pair": (True, (), "", "Jain's index over the class's (source, destination) pairs of each pair's "
                                "transfer rate: its bytes ÷ the sum of its messages' completion times"),
    "uplink_util_pct": (False, ("max", "min", "mean"), "%", "mean utilization over the run of each edge → core "
                                                             "link (uplink) of an edge switch that sent any"),
    "uplink_jain": (False, (), "", "Jain's index over the uplinks' mean utilization (same uplinks)"),
    "buffer_peak_pct": (False, (), "%", "largest backlog seen on any switch egress port ÷ its buffer"),
    "ttft_ms": (False, ("p99",), "ms", "TTFT of the KV pattern's requests (fabric cpmt: queue + prefill + KV "
                                       "group + first decode step)"),
    "ttft_fabric_ms": (False, ("p50", "p99"), "ms", "completion of a request's KV shards (fabric cpmt)"),
    "tpot_ms": (False, ("p99",), "ms", "time per output token of the decode patterns, the larger of MoE and TP "
                                       "(fabric cpmt)"),
}
RATIOS = ("this/baseline", "baseline/this")


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
class KpiSpec:
    """One ``kpis:`` entry: a draft KPI name, the measure it is computed from, and optionally a
    baseline point the measure is divided by (or divides)."""

    kpi: str                # a DRAFT_KPIS name
    measure: str            # as written, e.g. "mct_us.kv.p99"
    family: str             # a MEASURES key
    cls: str | None         # message kind, for per-class families
    stat: str | None
    label: str              # column of sweep.parquet (with "kpi." before it) and of sweep.md's KPI table
    where: str              # "kpis[i]", for errors
    baseline: tuple | None = None   # ("point" | "values", ((key text, value), ...)), see _baseline
    ratio: str = "this/baseline"

    @property
    def unit(self) -> str:
        return "×" if self.baseline is not None else MEASURES[self.family][2]


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
    kpis: tuple[KpiSpec, ...] = ()


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
    kpis = _kpis(top, source, follows, keys, grid, points if top.has("points") else [])
    top.finish()
    return SweepSpec(name=name, description=description, follows=follows, source=source, design_path=design,
                     workload_path=workload, engines=tuple(engines), seeds=seeds, scale=scale, costs_path=costs,
                     keys=tuple(keys.values()), points=tuple(points), where=tuple(where), find=find,
                     content_sha256=digest, grid=grid, kpis=kpis)


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


def parse_measure(text, source: str, where: str) -> tuple[str, str | None, str | None]:
    """``family[.class][.stat]`` -> (family, class, stat); a SpecError naming ``where`` otherwise."""
    from fabric.workloads.patterns import KINDS

    def fail(problem: str) -> SpecError:
        return SpecError(source, where, f"got {text!r}; {problem}")

    if not isinstance(text, str) or not text.strip():
        raise fail(f"expected a measure such as mct_us.kv.p99; valid families: {', '.join(MEASURES)}")
    family, _, rest = text.strip().partition(".")
    if family not in MEASURES:
        raise fail(f"unknown measure {family!r}; valid: {', '.join(MEASURES)}")
    per_class, stats, _, _ = MEASURES[family]
    cls = None
    if per_class:
        # The stat may hold a dot itself (p99.9), so the class is what comes before the first one.
        cls, _, rest = rest.partition(".")
        if cls not in KINDS:
            raise fail(f"{family} needs a traffic class (message kind) next: {family}.<class>"
                       f"{'.<stat>' if stats else ''}; valid classes: {', '.join(KINDS)}")
    stat = rest or None
    if stats and stat not in stats:
        raise fail(f"{family} takes one of {', '.join(stats)} last, e.g. {family}{'.kv' if per_class else ''}"
                   f".{stats[0]}")
    if not stats and stat is not None:
        raise fail(f"{family} takes no statistic after {family}{'.' + cls if cls else ''}")
    return family, cls, stat


def _kpi_label(kpi: str, family: str, stat: str | None, baseline) -> str:
    """``KV_xfer_latency P99.9 (µs)``: the draft's name, the statistic, the unit."""
    stat_text = {"mean": "mean", "max": "max", "min": "min"}.get(stat, (stat or "").upper())
    unit = "×" if baseline is not None else MEASURES[family][2]
    return " ".join(x for x in (kpi, stat_text) if x) + (f" ({unit})" if unit else "")


def _kpis(top: Section, source: str, follows: str, keys: dict, grid: dict, points: list) -> tuple[KpiSpec, ...]:
    raw = top.raw("kpis", None)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise top.fail("kpis", f"got {raw!r}; expected a list of {{kpi: NAME, measure: MEASURE}} mappings")
    if not follows:
        raise top.fail("kpis", "KPIs are named after a method: give follows: (the draft, its revision and section)")
    out: list[KpiSpec] = []
    labels: set[str] = set()
    for i, item in enumerate(raw):
        where = f"kpis[{i}]"
        sec = Section(item, source, where)
        kpi = sec.raw("kpi")
        if kpi not in DRAFT_KPIS:
            raise sec.fail("kpi", f"got {kpi!r}; not a KPI name of draft-calabria-bmwg-ai-fabric-inference-bench-05; "
                                  f"valid: {', '.join(DRAFT_KPIS)}")
        measure = sec.raw("measure")
        family, cls, stat = parse_measure(measure, source, f"{where}.measure")
        baseline = _baseline(sec, source, keys, grid, points) if sec.has("baseline") else sec.raw("baseline", None)
        ratio = sec.choice("ratio", RATIOS, "this/baseline")
        if sec.has("ratio") and baseline is None:
            raise sec.fail("ratio", "a ratio needs a baseline: point")
        label = sec.text("label", _kpi_label(kpi, family, stat, baseline))
        if label in labels:
            raise sec.fail("label", f"got {label!r}, already the label of an earlier KPI; give each a label: of its own")
        labels.add(label)
        sec.finish()
        out.append(KpiSpec(kpi, measure.strip(), family, cls, stat, label, where, baseline, ratio))
    return tuple(out)


def _baseline(sec: Section, source: str, keys: dict, grid: dict, points: list) -> tuple:
    """``points[i]`` (a sweep with points:): ("point", that point's (key, value) pairs); or a mapping of
    swept keys to the values the baseline has instead of the point's (null: the key unset), as
    ("values", pairs)."""
    raw = sec.raw("baseline")
    where = sec.key("baseline")
    if isinstance(raw, str):
        import re
        m = re.fullmatch(r"points\[(\d+)\]", raw.strip())
        if not m or not points:
            raise SpecError(source, where, f"got {raw!r}; expected points[i] (in a sweep with points:) or a mapping "
                                           f"of swept keys to the baseline's values")
        i = int(m.group(1))
        if i >= len(points):
            raise SpecError(source, where, f"got {raw!r}; points has {len(points)} entries (0..{len(points) - 1})")
        return ("point", tuple((k.text, v) for k, v in points[i]))
    if not isinstance(raw, dict) or not raw:
        raise SpecError(source, where, f"got {raw!r}; expected points[i] or a mapping of swept keys to values")
    for text, value in raw.items():
        if text not in keys:
            raise SpecError(source, f"{where}.{text}", f"got {text!r}; not a swept key of this file; swept: "
                                                        f"{', '.join(keys) or 'none'}")
        if text in grid and value not in grid[text]:
            raise SpecError(source, f"{where}.{text}", f"got {value!r}; not a value the grid sweeps ({grid[text]!r})")
    return ("values", tuple(raw.items()))
