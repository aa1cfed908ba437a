"""Workload profiles (``traffic/*.yaml``) parsed into typed, validated objects.

A profile names a model from the catalog, a duration, a seed, and a list of traffic patterns.
Each pattern picks its hosts with a *selector* that refers to host groups or roles of the fabric
design (never to one design's host names unless it must), so one profile runs on every design
whose host groups carry those names or roles. Selectors are checked against a fabric graph only
when the schedule is generated (:mod:`fabric.workloads.hosts`); everything else is checked here,
with errors naming file, key and value.

Format (all durations with units, sizes in bytes with units, rates in bit/s with units)::

    name: disagg-llama70b
    description: ...
    model: Llama-3-70B            # catalog name; patterns may override with their own `model`
    duration: 3s                  # schedule length (real time)
    seed: 1
    patterns:
      - type: disaggregated | moe_decode | allreduce | incast | permutation | victim | background
                                  # (the types declared in fabric/workloads/patterns.py)
        name: kv                  # unique label, prefix of every message group (default: type)
        start: 0s                 # optional window inside [0, duration)
        stop: 3s
        ...                       # type-specific keys, see the parse_* functions below

Selector (a mapping, or the string ``all``)::

    {role: prefill} | {group: [prefill, decode]} | {hosts: [h0, h5]} | {all: true}
    + count: N            first N matches, taken round-robin over edge switches
    + index: i            only the i-th match
    + same_edge_as: REF   only hosts on the edge switch(es) of REF (``<pattern>.<endpoint>``)
    + other_edge_than: REF  only hosts on other edge switches than REF's
    + exclude: REF        never hosts of REF
    + accelerator: NAME   compute timing as if these hosts were NAME (default: the design's; a
                          disaggregated stage without it forms instances per host group)
    + instance_hosts: N   hosts per serving instance (tensor-parallel size) where that matters
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric import catalog
from fabric.catalog import Model
from fabric.errors import WorkloadError
from fabric.yamlspec import Section, load_yaml_mapping

ARRIVAL_PROCESSES = ("poisson", "bursty", "trace")
LENGTH_DISTS = ("lognormal", "zipf", "fixed", "trace")
PLACEMENTS = ("round-robin", "least-loaded", "random")
EXPERT_PLACEMENTS = ("random", "contiguous")
PHASES = ("decode", "prefill")
# Limits that keep a profile emulable on a small VM; a schedule beyond them is refused, not trimmed.
MAX_MESSAGES = 400_000
MAX_DURATION_S = 60.0


@dataclass(frozen=True)
class Selector:
    """Which hosts a pattern endpoint uses; resolved against a fabric graph later."""

    key: str                                  # dotted key in the profile, for errors
    all: bool = False
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    count: int | None = None
    index: int | None = None
    same_edge_as: str | None = None
    other_edge_than: str | None = None
    exclude: str | None = None
    accelerator: str | None = None
    instance_hosts: int | None = None

    def describe(self) -> str:
        parts = []
        if self.all:
            parts.append("all hosts")
        if self.groups:
            parts.append("group " + "/".join(self.groups))
        if self.roles:
            parts.append("role " + "/".join(self.roles))
        if self.hosts:
            parts.append("hosts " + ",".join(self.hosts))
        for label, value in (("count", self.count), ("index", self.index), ("same edge as", self.same_edge_as),
                             ("other edge than", self.other_edge_than), ("excluding", self.exclude)):
            if value is not None:
                parts.append(f"{label} {value}")
        return ", ".join(parts)


@dataclass(frozen=True)
class LoadSpec:
    """Offered load per sending host: a fraction of its NIC rate, or an absolute rate."""

    key: str
    fraction: float | None = None
    rate_bps: int | None = None

    def bps(self, nic_rate_bps: float) -> float:
        return self.rate_bps if self.rate_bps is not None else self.fraction * nic_rate_bps

    def describe(self) -> str:
        return f"{self.fraction:.1%} of NIC" if self.fraction is not None else f"{self.rate_bps / 1e9:g} Gbit/s"


@dataclass(frozen=True)
class LengthDist:
    """A token-count distribution: lognormal (median, sigma), bounded Zipf, fixed, or trace column."""

    key: str
    dist: str
    median: float = 0.0
    sigma: float = 0.0
    exponent: float = 0.0
    minimum: int = 1
    maximum: int = 1_000_000
    tokens: int = 0


@dataclass(frozen=True)
class Arrivals:
    key: str
    process: str
    rate_per_s: float = 0.0
    burst_size: int = 1
    burst_spread_s: float = 0.0


@dataclass(frozen=True)
class Trace:
    """Rows of (prompt_tokens, output_tokens[, arrival_s]) replayed in order."""

    path: str
    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    arrival_s: tuple[float, ...] | None


@dataclass(frozen=True)
class Pattern:
    """Fields every pattern has."""

    type: str
    name: str
    key: str                # e.g. "patterns[2]"
    start_s: float
    stop_s: float
    model: Model | None


@dataclass(frozen=True)
class Disaggregated(Pattern):
    prefill: Selector = None
    decode: Selector = None
    arrivals: Arrivals = None
    prompt_tokens: LengthDist = None
    output_tokens: LengthDist = None
    trace: Trace | None = None
    placement: str = "least-loaded"
    decode_batch: int = 64
    tokenize: Selector | None = None          # front-end (CPU) hosts that tokenize prompts; None: not modelled
    detokenize: Selector | None = None        # front-end hosts the output streams to


@dataclass(frozen=True)
class MoEDecode(Pattern):
    ranks: Selector = None
    batch_per_rank: int = 128
    step_interval_s: float | None = None     # None: derived from the catalog (decode step time)
    context_tokens: int = 4096
    exponent: float = 1.0
    expert_placement: str = "random"
    layers_emulated: int = 0
    dispatch_bytes_per_token: int = 0
    combine_bytes_per_token: int = 0
    combine_offset: float = 0.5


@dataclass(frozen=True)
class AllReduce(Pattern):
    ranks: Selector = None
    tp: int = 0                               # 0: one group of all ranks
    phase: str = "decode"
    tokens: int = 64
    step_interval_s: float | None = None
    context_tokens: int = 4096
    layers_emulated: int = 0
    hop_latency_s: float = 5e-6


@dataclass(frozen=True)
class Incast(Pattern):
    receiver: Selector = None
    senders: Selector = None
    message_bytes: int = 0
    period_s: float = 0.0
    repeats: int | None = None


@dataclass(frozen=True)
class Permutation(Pattern):
    hosts: Selector = None
    message_bytes: int = 0
    flows_per_host: int = 1
    load: LoadSpec = None
    reshuffle: bool = False


@dataclass(frozen=True)
class Background(Pattern):
    hosts: Selector = None
    destinations: Selector = None
    message_bytes: int = 0
    load: LoadSpec = None


@dataclass(frozen=True)
class Victim(Pattern):
    src: Selector = None
    dst: Selector = None
    message_bytes: int = 0
    load: LoadSpec = None


@dataclass(frozen=True)
class Workload:
    """A validated workload profile."""

    name: str
    description: str
    source: str
    model: Model | None
    duration_s: float
    seed: int
    patterns: tuple[Pattern, ...]
    content_sha256: str = ""

    def pattern(self, name: str) -> Pattern:
        for p in self.patterns:
            if p.name == name:
                return p
        raise KeyError(name)


# ----------------------------------------------------------------------------------------------
# parsing

def load_workload(path: str | Path) -> Workload:
    """Load and validate one workload profile.

    Raises
    ------
    WorkloadError
        Naming the file, the key and what would be valid.
    """
    import hashlib

    path = Path(path)
    data = load_yaml_mapping(path, WorkloadError)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return parse_workload(data, str(path), digest)


def parse_workload(data: dict, source: str = "<workload>", digest: str = "") -> Workload:
    """Validate an already-parsed profile mapping (see :func:`load_workload`)."""
    top = Section(data, source, "", WorkloadError)
    name = top.text("name", Path(source).stem)
    description = str(top.raw("description", "")).strip()
    model = _model(top, "model") if top.has("model") else top.raw("model", None)
    duration_s = _seconds(top, "duration")
    if duration_s > MAX_DURATION_S:
        raise top.fail("duration", f"got {top.data['duration']!r}; at most {MAX_DURATION_S:g}s of schedule "
                                   f"(emulations replay it in real time)")
    seed = top.integer("seed", 1, minimum=0, maximum=2**32 - 1)
    patterns: list[Pattern] = []
    names: dict[str, str] = {}
    for sec in top.sections("patterns"):
        pattern = _parse_pattern(sec, model, duration_s, names)
        names[pattern.name] = pattern.type
        patterns.append(pattern)
    top.finish()
    return Workload(name=name, description=description, source=source, model=model, duration_s=duration_s,
                    seed=seed, patterns=tuple(patterns), content_sha256=digest)


def _parse_pattern(sec: Section, default_model: Model | None, duration_s: float, earlier: dict[str, str]) -> Pattern:
    from fabric.workloads.patterns import PATTERNS  # the registry imports this module's parsers
    ptype = sec.choice("type", tuple(PATTERNS))
    name = sec.text("name", ptype)
    if name in earlier:
        raise sec.fail("name", f"duplicate pattern name {name!r}; give each pattern a unique name")
    if "." in name or "/" in name:
        raise sec.fail("name", f"got {name!r}; use letters, digits, '-' or '_' (no '.' or '/')")
    start_s = _seconds(sec, "start", 0.0, allow_zero=True)
    stop_s = _seconds(sec, "stop", duration_s)
    if not 0 <= start_s < stop_s <= duration_s + 1e-12:
        raise sec.fail("stop", f"window [{start_s:g}s, {stop_s:g}s) must lie inside [0, duration={duration_s:g}s) "
                               f"and be non-empty")
    model = _model(sec, "model") if sec.has("model") else (sec.raw("model", None) or default_model)
    common = dict(type=ptype, name=name, key=sec.prefix, start_s=start_s, stop_s=stop_s, model=model)
    refs = _RefCheck(sec, earlier)
    pattern = PATTERNS[ptype].parser(sec, common, refs)
    sec.finish()
    return pattern


def _need_model(sec: Section, common: dict, moe: bool = False) -> Model:
    model = common["model"]
    if model is None:
        raise sec.fail("model", f"pattern type {common['type']!r} needs a model; set `model:` at the top of the "
                                f"profile or in the pattern; valid: {', '.join(sorted(catalog.load_models()))}")
    if moe and not model.is_moe:
        moe_models = sorted(n for n, m in catalog.load_models().items() if m.is_moe)
        raise sec.fail("model", f"got {model.name!r}, a dense model; {common['type']} needs an MoE model: "
                                f"{', '.join(moe_models)}")
    return model


def parse_disaggregated(sec: Section, common: dict, refs) -> Disaggregated:
    _need_model(sec, common)
    prefill = _selector(sec, "prefill", refs, compute=True)
    decode = _selector(sec, "decode", refs, compute=True)
    trace = _trace(sec) if sec.has("trace") else sec.raw("trace", None)
    arrivals = _arrivals(sec.section("arrivals"), trace)
    prompt = _length(sec, "prompt_tokens", trace, "prompt_tokens")
    output = _length(sec, "output_tokens", trace, "output_tokens",
                     default={"dist": "fixed", "tokens": 256})
    placement = sec.choice("placement", PLACEMENTS, "least-loaded")
    batch = sec.integer("decode_batch", 64, minimum=1, maximum=65536)
    tokenize = _selector(sec, "tokenize", refs) if sec.has("tokenize") else sec.raw("tokenize", None)
    detokenize = _selector(sec, "detokenize", refs) if sec.has("detokenize") else sec.raw("detokenize", None)
    return Disaggregated(**common, prefill=prefill, decode=decode, arrivals=arrivals, prompt_tokens=prompt,
                         output_tokens=output, trace=trace, placement=placement, decode_batch=batch,
                         tokenize=tokenize, detokenize=detokenize)


def parse_moe_decode(sec: Section, common: dict, refs) -> MoEDecode:
    model = _need_model(sec, common, moe=True)
    ranks = _selector(sec, "ranks", refs, compute=True)
    batch = sec.integer("batch_per_rank", 128, minimum=1, maximum=65536)
    step = None if sec.raw("step_interval", "auto") == "auto" else _seconds(sec, "step_interval")
    context = sec.integer("context_tokens", 4096, minimum=1)
    exponent = sec.number("exponent", model.expert_popularity_exponent, minimum=0.0, maximum=4.0)
    placement = sec.choice("expert_placement", EXPERT_PLACEMENTS, "random")
    layers = sec.integer("layers_emulated", model.moe_layers, minimum=1, maximum=model.moe_layers)
    precision = sec.choice("dispatch_precision", ("fp8", "bf16"), "fp8")
    dispatch = model.dispatch_bytes_per_token if precision == "fp8" else model.combine_bytes_per_token
    offset = sec.number("combine_offset", 0.5, minimum=0.0, maximum=0.95)
    return MoEDecode(**common, ranks=ranks, batch_per_rank=batch, step_interval_s=step, context_tokens=context,
                     exponent=exponent, expert_placement=placement, layers_emulated=layers,
                     dispatch_bytes_per_token=dispatch, combine_bytes_per_token=model.combine_bytes_per_token,
                     combine_offset=offset)


def parse_allreduce(sec: Section, common: dict, refs) -> AllReduce:
    model = _need_model(sec, common)
    ranks = _selector(sec, "ranks", refs, compute=True)
    tp = sec.integer("tp", 0, minimum=0, maximum=1024)
    if tp == 1:
        raise sec.fail("tp", "got 1; a tensor-parallel group needs at least 2 ranks (0 = all selected ranks)")
    phase = sec.choice("phase", PHASES, "decode")
    tokens = sec.integer("tokens", 64 if phase == "decode" else 8192, minimum=1)
    step = None if sec.raw("step_interval", "auto") == "auto" else _seconds(sec, "step_interval")
    context = sec.integer("context_tokens", 4096, minimum=1)
    layers = sec.integer("layers_emulated", model.layers, minimum=1, maximum=model.layers)
    hop = _seconds(sec, "hop_latency", 5e-6, allow_zero=True)
    return AllReduce(**common, ranks=ranks, tp=tp, phase=phase, tokens=tokens, step_interval_s=step,
                     context_tokens=context, layers_emulated=layers, hop_latency_s=hop)


def parse_incast(sec: Section, common: dict, refs) -> Incast:
    receiver = _selector(sec, "receiver", refs)
    refs.local["receiver"] = True
    senders = _selector(sec, "senders", refs)
    size = sec.size_bytes("message")
    period = _seconds(sec, "period")
    repeats = sec.integer("repeats", 0, minimum=0) or None
    return Incast(**common, receiver=receiver, senders=senders, message_bytes=size, period_s=period, repeats=repeats)


def parse_permutation(sec: Section, common: dict, refs) -> Permutation:
    hosts = _selector(sec, "hosts", refs, default="all")
    size = sec.size_bytes("message")
    flows = sec.integer("flows_per_host", 1, minimum=1, maximum=64)
    load = _load(sec)
    reshuffle = sec.boolean("reshuffle", False)
    return Permutation(**common, hosts=hosts, message_bytes=size, flows_per_host=flows, load=load, reshuffle=reshuffle)


def parse_background(sec: Section, common: dict, refs) -> Background:
    hosts = _selector(sec, "hosts", refs, default="all")
    refs.local["hosts"] = True
    dests = _selector(sec, "destinations", refs, default="all")
    size = sec.size_bytes("message")
    load = _load(sec)
    return Background(**common, hosts=hosts, destinations=dests, message_bytes=size, load=load)


def parse_victim(sec: Section, common: dict, refs) -> Victim:
    src = _selector(sec, "src", refs)
    refs.local["src"] = True
    dst = _selector(sec, "dst", refs)
    size = sec.size_bytes("message")
    load = _load(sec)
    return Victim(**common, src=src, dst=dst, message_bytes=size, load=load)


# ----------------------------------------------------------------------------------------------
# pieces

class _RefCheck:
    """Checks `same_edge_as` / `other_edge_than` / `exclude` references point at earlier endpoints."""

    def __init__(self, sec: Section, earlier: dict[str, str]):
        self.sec = sec
        self.earlier = earlier
        self.local: dict[str, bool] = {}

    def check(self, sel: Section, key: str, ref: Any) -> str:
        if not isinstance(ref, str) or not ref.strip():
            raise sel.fail(key, f"got {ref!r}; expected '<pattern name>.<endpoint>' or an endpoint of this pattern")
        ref = ref.strip()
        if ref in self.local:
            return ref
        from fabric.workloads.patterns import PATTERNS  # the registry imports this module's parsers
        endpoints = {name: p.endpoints for name, p in PATTERNS.items()}
        pattern, _, endpoint = ref.partition(".")
        if pattern not in self.earlier:
            valid = [f"{n}.{e}" for n, t in self.earlier.items() for e in endpoints[t]] + list(self.local)
            raise sel.fail(key, f"got {ref!r}; no earlier pattern named {pattern!r}; valid references: "
                                f"{', '.join(valid) or 'none (define the referenced pattern first)'}")
        if endpoint not in endpoints[self.earlier[pattern]]:
            raise sel.fail(key, f"got {ref!r}; pattern {pattern!r} ({self.earlier[pattern]}) has endpoints "
                                f"{', '.join(endpoints[self.earlier[pattern]])}")
        return ref


def _selector(sec: Section, name: str, refs: _RefCheck, compute: bool = False, default: Any = None) -> Selector:
    raw = sec.raw(name, default) if default is not None else sec.raw(name)
    key = sec.key(name)
    if raw == "all":
        return Selector(key=key, all=True)
    sel = Section(raw, sec.source, key, WorkloadError)
    everything = sel.boolean("all", False)
    groups = _names(sel, "group")
    roles = _names(sel, "role")
    hosts = _names(sel, "hosts")
    if sum(bool(x) for x in (everything, groups, roles, hosts)) != 1:
        raise sec.fail(name, f"got {raw!r}; give exactly one of group, role, hosts or all: true")
    count = sel.integer("count", 0, minimum=0) or None
    index = sel.integer("index", -1, minimum=0) if sel.has("index") else sel.raw("index", None)
    same = refs.check(sel, "same_edge_as", sel.raw("same_edge_as")) if sel.has("same_edge_as") else None
    other = refs.check(sel, "other_edge_than", sel.raw("other_edge_than")) if sel.has("other_edge_than") else None
    exclude = refs.check(sel, "exclude", sel.raw("exclude")) if sel.has("exclude") else None
    for k in ("same_edge_as", "other_edge_than", "exclude"):
        sel.raw(k, None)
    accelerator = instance_hosts = None
    if compute:
        if sel.has("accelerator"):
            accelerator = sel.text("accelerator")
            try:
                accelerator = catalog.accelerator(accelerator).name
            except WorkloadError:
                raise sel.fail("accelerator", f"got {accelerator!r}; unknown accelerator; valid: "
                                              f"{', '.join(sorted(catalog.load_accelerators()))}") from None
        else:
            sel.raw("accelerator", None)
        instance_hosts = sel.integer("instance_hosts", 0, minimum=0, maximum=1024) or None
    sel.finish()
    return Selector(key=key, all=everything, groups=groups, roles=roles, hosts=hosts, count=count, index=index,
                    same_edge_as=same, other_edge_than=other, exclude=exclude, accelerator=accelerator,
                    instance_hosts=instance_hosts)


def _names(sel: Section, name: str) -> tuple[str, ...]:
    raw = sel.raw(name, None)
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise sel.fail(name, f"got {raw!r}; expected a name or a list of names")
    return tuple(i.strip() for i in items)


def _model(sec: Section, name: str) -> Model:
    value = sec.text(name)
    try:
        return catalog.model(value)
    except WorkloadError:
        raise sec.fail(name, f"got {value!r}; unknown model; valid: {', '.join(sorted(catalog.load_models()))}") from None


def _seconds(sec: Section, name: str, default: Any = ..., allow_zero: bool = False) -> float:
    raw = sec.raw(name, None)
    if raw is None:
        if default is ...:
            raise sec.fail(name, "is required")
        return float(default)
    if allow_zero and raw in (0, "0", "0s"):
        return 0.0
    return sec.duration_ns(name) / 1e9


def _load(sec: Section) -> LoadSpec:
    """``load: 30%`` / ``load: 0.3`` (of each sender's NIC) or ``rate: 20G`` (per sender)."""
    if sec.has("load") == sec.has("rate"):
        raise sec.fail("load", "give exactly one of load (fraction of each sender's NIC, e.g. 30%) or "
                               "rate (per sender, e.g. 20G)")
    if sec.has("rate"):
        return LoadSpec(key=sec.key("rate"), rate_bps=sec.rate_bps("rate"))
    raw = sec.raw("load")
    value = raw
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            value = float(raw.strip()[:-1]) / 100
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise sec.fail("load", f"got {raw!r}; expected a fraction of the NIC rate in (0, 1] or a percentage "
                               f"such as 30%; a host cannot offer more than its NIC carries")
    return LoadSpec(key=sec.key("load"), fraction=float(value))


def _arrivals(sec: Section, trace: Trace | None) -> Arrivals:
    process = sec.choice("process", ARRIVAL_PROCESSES)
    if process == "trace":
        if trace is None or trace.arrival_s is None:
            raise sec.fail("process", "got 'trace' but the pattern has no `trace:` file with an arrival_s column")
        sec.finish()
        return Arrivals(key=sec.prefix, process=process)
    rate = sec.number("rate_per_s", minimum=0.0, exclusive_minimum=True)
    burst_size, spread = 1, 0.0
    if process == "bursty":
        burst_size = sec.integer("burst_size", minimum=2, maximum=10_000)
        spread = _seconds(sec, "burst_spread", 0.0, allow_zero=True)
    sec.finish()
    return Arrivals(key=sec.prefix, process=process, rate_per_s=rate, burst_size=burst_size, burst_spread_s=spread)


def _length(sec: Section, name: str, trace: Trace | None, column: str, default: dict | None = None) -> LengthDist:
    sub = sec.section(name, default) if default is not None else sec.section(name)
    dist = sub.choice("dist", LENGTH_DISTS)
    key = sub.prefix
    if dist == "trace":
        if trace is None:
            raise sub.fail("dist", "got 'trace' but the pattern has no `trace:` file")
        sub.finish()
        return LengthDist(key=key, dist=dist)
    if dist == "fixed":
        tokens = sub.integer("tokens", minimum=1, maximum=10_000_000)
        sub.finish()
        return LengthDist(key=key, dist=dist, tokens=tokens, minimum=tokens, maximum=tokens)
    minimum = sub.integer("min", 1, minimum=1)
    maximum = sub.integer("max", 131072, minimum=1, maximum=10_000_000)
    if maximum < minimum:
        raise sub.fail("max", f"got {maximum}; must be at least min ({minimum})")
    if dist == "lognormal":
        median = sub.number("median", minimum=1.0)
        sigma = sub.number("sigma", minimum=0.0, maximum=5.0)
        sub.finish()
        return LengthDist(key=key, dist=dist, median=median, sigma=sigma, minimum=minimum, maximum=maximum)
    exponent = sub.number("exponent", minimum=0.0, maximum=10.0, exclusive_minimum=True)
    sub.finish()
    return LengthDist(key=key, dist=dist, exponent=exponent, minimum=minimum, maximum=maximum)


def _trace(sec: Section) -> Trace:
    """Read a CSV of prompt_tokens,output_tokens[,arrival_s]; the path is relative to the profile."""
    raw = sec.text("trace")
    path = Path(raw)
    if not path.is_absolute():
        path = Path(sec.source).resolve().parent / path
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or ())
            if not {"prompt_tokens", "output_tokens"} <= columns:
                raise sec.fail("trace", f"{raw!r} has columns {sorted(columns)}; needs prompt_tokens, output_tokens "
                                        f"(and optionally arrival_s)")
            rows = list(reader)
    except OSError as exc:
        raise sec.fail("trace", f"cannot read {raw!r} ({exc.strerror})") from None
    if not rows:
        raise sec.fail("trace", f"{raw!r} has no rows")
    try:
        prompt = tuple(int(r["prompt_tokens"]) for r in rows)
        output = tuple(int(r["output_tokens"]) for r in rows)
        arrival = tuple(float(r["arrival_s"]) for r in rows) if "arrival_s" in columns else None
    except (TypeError, ValueError) as exc:
        raise sec.fail("trace", f"{raw!r}: non-numeric value ({exc})") from None
    if min(prompt) < 1 or min(output) < 0:
        raise sec.fail("trace", f"{raw!r}: prompt_tokens must be >= 1 and output_tokens >= 0")
    if arrival is not None and (min(arrival) < 0 or list(arrival) != sorted(arrival)):
        raise sec.fail("trace", f"{raw!r}: arrival_s must be non-negative and non-decreasing")
    return Trace(path=str(path), prompt_tokens=prompt, output_tokens=output, arrival_s=arrival)
