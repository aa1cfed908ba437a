"""Comparison as a service: several fabric designs, one workload, one seed, one scale factor.

This module owns how a comparison is planned, run and summarised; ``fabric compare`` only parses
options, calls it and renders what it reports (:mod:`fabric.report.terminal`).

* **Plan** (:func:`plan_compare`): every design is loaded, built, checked emulable and given its
  schedule *before* anything runs, and the scale factor ``k`` (and time dilation ``D``) is chosen
  once for all of them (the largest any design needs), so a bad file among several is refused up
  front and every design is measured at the same per-packet granularity. With accelerator mixes
  (``--mix``, :mod:`fabric.mix`) every design is planned once per mix, as ``<design>+<mix>``.
* **Run** (:func:`run_compare`): runs go round-robin over designs (r1 of every design, then r2, …)
  so an interrupted comparison still covers each design and slow drift of the machine hits all
  alike. Each run lands in ``OUT/runs/<design>-r<i>`` (a normal run directory, metrics.json
  included) through the *runner* it is given — ``runner(spec, g, schedule, out_dir, options,
  progress) -> Path``, today :func:`fabric.emu.runner.run` with its ``RunOptions`` — so another
  engine plugs in without touching this module. A mixed design is also written as a design file,
  ``OUT/designs/<design>+<mix>.yaml``, which the summary's ``fabric run`` lines name.
* **Failure policy**: a run that fails is recorded with its reason and the others go on; Ctrl-C
  (or SIGTERM) keeps what finished, the summary marks the rest not run, and the result says it
  was interrupted (the caller exits 130). A comparison in which no run finished exits 1.
* **Summary and report** (:func:`write_comparison_report`): ``OUT/report.html``,
  ``OUT/report.md`` and ``OUT/summary.json``.

Progress and events go to a :class:`CompareEvents` the caller gives; the service prints nothing.
"""

from __future__ import annotations

import shlex
import signal
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from fabric.errors import FabricError, SpecError

if TYPE_CHECKING:
    from fabric.report.summary import DesignRecord, RunRecord

INTERRUPTED_REASON = ("interrupted (Ctrl-C) during this run; its namespaces and processes were removed and its "
                      "incomplete directory removed")
NOT_RUN_REASON = "not run: the comparison was interrupted before it"

# runner(spec, graph, schedule, out_dir, options, progress) -> run directory
Runner = Callable[..., Path]


@dataclass
class PlannedDesign:
    path: Path
    name: str
    spec: object
    graph: object
    facts: dict
    schedule: object
    scale: object          # ScaleChoice this design alone would need
    mix: str | None = None          # the accelerator mix (--mix NAME) applied, else None
    base_design: str | None = None  # with a mix: the design's name without "+<mix>"
    mapping: dict | None = None     # with a mix: the mixed design's YAML mapping (OUT/designs/<name>.yaml)


@dataclass
class ComparePlan:
    workload: object
    traffic: Path
    seed: int
    designs: list[PlannedDesign]
    k: float
    scale: dict
    costs: object          # CostFile
    dilation: float | None = None  # time dilation D, when the emulator has it
    engine: str = "emu"            # "emu" (namespaces, scaled by k) or "sim" (packet simulator, k = 1)
    mixes: list = field(default_factory=list)  # fabric.mix.Mix of --mix; designs are then designs × mixes


@dataclass
class PlannedRun:
    """One run of the comparison: which design, which repeat, and its record (filled as it runs)."""

    design: PlannedDesign
    record: RunRecord
    number: int            # 1-based position in the run order
    total: int

    @property
    def label(self) -> str:
        return f"{self.design.name} r{self.record.repeat} ({self.number}/{self.total})"


@dataclass
class CompareResult:
    plan: ComparePlan
    out: Path
    records: list[DesignRecord]
    summary: dict
    interrupted: bool

    @property
    def runs_root(self) -> Path:
        return self.out / "runs"

    @property
    def finished(self) -> int:
        return sum(r.status == "ok" for d in self.records for r in d.runs)

    @property
    def exit_code(self) -> int:
        """130 when interrupted (the report covers what finished), 1 when no run finished, else 0."""
        if self.interrupted:
            return 130
        return 0 if self.finished else 1


class CompareEvents:
    """What a comparison tells its caller while it works; each method does nothing here, so a
    caller overrides only what it shows."""

    def started(self, plan: ComparePlan, runs: list[PlannedRun]) -> None:
        """Before the first run."""

    def run_started(self, run: PlannedRun) -> None:
        """Before the runner is called for ``run``."""

    def run_stage(self, run: PlannedRun, stage: str, fraction: float) -> None:
        """The runner's own progress: a stage name (see fabric.report.terminal.STAGES) and how far it is."""

    def run_analysing(self, run: PlannedRun) -> None:
        """The run directory is written; metrics and CPMT are being computed."""

    def run_finished(self, run: PlannedRun) -> None:
        """``run.record`` holds the outcome: status ok, failed or interrupted, with its reason."""

    def finished(self) -> None:
        """After the last run (also when interrupted)."""


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------

def plan_compare(designs: list[Path], traffic: Path, seed: int | None, costs: Path | None,
                 budget_pps: int | None = None, engine: str = "emu",
                 schedule_window: tuple[float, float] | None = None, mixes: list | None = None) -> ComparePlan:
    """Validate everything and generate every schedule; nothing runs. Raises FabricError subclasses.

    ``mixes`` (:class:`fabric.mix.Mix`, from ``--mix``) makes the comparison designs × mixes: each
    design with each mix, in that order (so the baseline is the first design with the first mix),
    named ``<design>+<mix>``. Without mixes every design is compared as written.

    ``budget_pps`` None plans with the provisional DEFAULT_BUDGET_PPS: enough to validate, but the
    caller re-plans with the machine's calibrated budget once it knows it (``fabric compare`` does).
    With ``engine="sim"`` (the packet simulator) every design runs at real rates, k = 1.
    ``schedule_window`` (start_s, length_s) keeps only the messages starting in that window.
    """
    from fabric.economics import load_costs
    from fabric.emu.scale import DEFAULT_BUDGET_PPS, choose_scale, design_budget_pps
    from fabric.mix import apply_mix
    from fabric.schedule import window
    from fabric.specs import load_fabric_spec
    from fabric.topology import build_fabric, fabric_facts, hosts
    from fabric.workloads import generate_schedule, load_workload
    from fabric.yamlspec import load_yaml_mapping

    if not designs:
        raise SpecError("fabric compare", "DESIGNS", "give at least one fabric design YAML")
    workload = load_workload(traffic)
    cost_file = load_costs(costs)
    planned: list[PlannedDesign] = []
    names: set[str] = set()
    variants = []  # (path, spec, name, mix, base name, mixed mapping): every design × every mix
    for path in designs:
        base = load_fabric_spec(path)
        name = base.name
        n = 2
        while name in names:  # the same design given twice: keep both, named apart
            name = f"{base.name}-{n}"
            n += 1
        names.add(name)
        if not mixes:
            variants.append((path, base, name, None, None, None))
            continue
        data = load_yaml_mapping(path)
        for mix in mixes:
            spec, mapping = apply_mix(data, base, mix, f"{name}+{mix.name}", path)
            variants.append((path, spec, spec.name, mix.name, name, mapping))
    for path, spec, name, mix, base_name, mapping in variants:
        g = build_fabric(spec)
        facts = fabric_facts(g)
        if engine == "emu" and not facts["emulable"]:
            raise SpecError(spec.source, "", f"{facts['emulable_reason']}; run it on the packet simulator: "
                                             f"--engine sim")
        try:
            schedule = generate_schedule(workload, g, seed=seed)
        except SpecError as exc:
            if mix is None:
                raise
            # The profile is fine on its own; say which (design, mix) it does not place on.
            raise type(exc)(exc.source, exc.key, f"{exc.problem} (on {spec.source})") from None
        if schedule_window is not None:
            schedule = window(schedule, *schedule_window)
        nic = {h: g.nodes[h]["nic_rate_bps"] for h in hosts(g)}
        link_rates = [d["rate_bps"] for _, _, d in g.edges(data=True)]
        choice = (choose_scale(schedule, nic, link_rates, design_budget_pps(spec, budget_pps or DEFAULT_BUDGET_PPS))
                  if engine == "emu" else None)
        planned.append(PlannedDesign(Path(path), name, spec, g, facts, schedule, choice, mix, base_name, mapping))
    run_seed = seed if seed is not None else workload.seed
    if engine == "sim":
        scale = {"k": 1.0, "engine": "sim", "reason": "packet simulator: real link rates, real message sizes",
                 "per_design": {p.name: {"k_needed": 1.0} for p in planned}}
        return ComparePlan(workload, Path(traffic), run_seed, planned, 1.0, scale, cost_file, None, engine,
                           list(mixes or []))
    k = max(p.scale.k for p in planned)
    # Time dilation (when the emulator has it): also one value for all designs, the largest needed.
    dilation = max(getattr(p.scale, "dilation", 1.0) for p in planned) if _has_dilation() else None
    extra = {"dilation": dilation} if dilation is not None else {}
    # The common k (and D) must suit every design (its slowest link must stay above the shaping floor).
    for p in planned:
        nic = {h: p.graph.nodes[h]["nic_rate_bps"] for h in hosts(p.graph)}
        try:
            choose_scale(p.schedule, nic, [d["rate_bps"] for _, _, d in p.graph.edges(data=True)], k=k, **extra)
        except FabricError as exc:
            raise SpecError(p.spec.source, "", f"cannot run at the common scale factor k = {k:g} that the other "
                                             f"designs need: {exc}") from None
    widest = max(planned, key=lambda p: p.scale.k)
    scale = {**widest.scale.to_dict(), "k": k, "engine": "emu",
             "reason": f"largest k any design needs ({widest.name}: {widest.scale.reason})",
             "per_design": {p.name: {"k_needed": p.scale.k, "reason": p.scale.reason,
                                     "peak_offered_bps": p.scale.peak_offered_bps} for p in planned}}
    if dilation is not None:
        scale["dilation"] = dilation
    return ComparePlan(workload, Path(traffic), run_seed, planned, k, scale, cost_file, dilation, engine,
                       list(mixes or []))


def _has_dilation() -> bool:
    """Whether this emulator takes a time dilation (RunOptions.dilation)."""
    from fabric.emu.runner import RunOptions
    return any(f.name == "dilation" for f in fields(RunOptions))


def plan_runs(plan: ComparePlan, out: Path, repeats: int) -> tuple[list[DesignRecord], list[PlannedRun]]:
    """One record per design with a not-yet-run record per repeat (``OUT/runs/<design>-r<i>``), and
    the run order: round-robin over designs, r1 of every design first."""
    from fabric.report.summary import DesignRecord, RunRecord
    runs_root = Path(out) / "runs"
    records = []
    for p in plan.designs:
        d = DesignRecord(name=p.name, kind=p.spec.kind, topology_path=str(p.path),
                         topology_sha256=getattr(p.spec, "content_sha256", None), facts=p.facts,
                         mix=p.mix, base_design=p.base_design)
        for i in range(1, repeats + 1):
            d.runs.append(RunRecord(design=p.name, repeat=i, run_dir=runs_root / f"{p.name}-r{i}",
                                    reason=NOT_RUN_REASON))
        records.append(d)
    total = len(plan.designs) * repeats
    order = [(p, d.runs[i]) for i in range(repeats) for p, d in zip(plan.designs, records)]
    return records, [PlannedRun(p, r, n, total) for n, (p, r) in enumerate(order, start=1)]


def refuse_used_out(plan: ComparePlan, out: Path, repeats: int) -> None:
    """Refuse an ``--out`` that already holds one of this comparison's runs (nothing is overwritten)."""
    records, _ = plan_runs(plan, out, repeats)
    taken = [r.run_dir for d in records for r in d.runs if r.run_dir.exists() and any(r.run_dir.iterdir())]
    if taken:
        raise SpecError(str(out), "--out", f"{taken[0]} already holds a run (from an earlier compare?); remove "
                                           f"{Path(out) / 'runs'} or choose another --out")


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

@dataclass
class _Interrupt:
    """Remembers a Ctrl-C / SIGTERM: it reaches the run's agents too, and the runner may report one
    of them dying (a FabricError) before this process sees its own KeyboardInterrupt."""

    seen: bool = False
    previous: dict = field(default_factory=dict)

    def __enter__(self):
        def handler(signum, frame):
            self.seen = True
            raise KeyboardInterrupt
        self.previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc):
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        return False


def run_compare(plan: ComparePlan, out: Path, *, repeats: int, runner: Runner, options_type: type,
                events: CompareEvents | None = None, costs_path: Path | None = None,
                requested_seed: int | None = None, budget_pps: int | None = None) -> CompareResult:
    """Run every planned design ``repeats`` times through ``runner`` and build the summary.

    ``options_type`` is the runner's options dataclass (``fabric.emu.runner.RunOptions``); each run
    gets the plan's seed, k (and D when the options take one), the design's hash seed, the
    ``budget_pps`` asked for, the run's name and the workload facts for run.json.
    ``costs_path`` and ``requested_seed`` are what the user gave (for the summary and the command
    lines that reproduce the comparison). Never raises for a failing run; see the module docstring.
    """
    from fabric.analysis.run_metrics import write_metrics
    from fabric.economics import cpmt_for_run
    from fabric.report.summary import load_run
    from fabric.workloads import workload_facts

    events = events or CompareEvents()
    out = Path(out)
    refuse_used_out(plan, out, repeats)
    records, runs = plan_runs(plan, out, repeats)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    write_mixed_designs(plan, out)
    takes = {f.name for f in fields(options_type)}
    interrupted = False
    started = time.time()
    with _Interrupt() as interrupt:
        try:
            events.started(plan, runs)
            for run in runs:
                p, rec = run.design, run.record
                t_run = time.time()
                try:
                    events.run_started(run)
                    given = {"seed": plan.seed, "scale": plan.k, "hash_seed": p.spec.load_balancing.hash_seed,
                             "budget_pps": budget_pps, "name": rec.run_dir.name, "dilation": plan.dilation,
                             "extra": {"workload": workload_facts(plan.workload, p.schedule)
                                       | {"path": str(plan.traffic)}}}
                    # Each engine's options take what applies to it (the simulator has no budget).
                    options = options_type(**{k: v for k, v in given.items() if k in takes})
                    runner(p.spec, p.graph, p.schedule, rec.run_dir, options,
                           progress=lambda stage, fraction, run=run: events.run_stage(run, stage, fraction))
                    events.run_analysing(run)
                    rec.metrics = write_metrics(rec.run_dir)
                    try:
                        rec.cpmt = cpmt_for_run(rec.run_dir, plan.costs)
                    except FabricError as exc:
                        rec.cpmt_error = str(exc)
                    rec.status, rec.reason = "ok", None
                except KeyboardInterrupt:
                    rec.status, rec.reason = "interrupted", INTERRUPTED_REASON
                except FabricError as exc:
                    rec.status, rec.reason = "failed", str(exc)
                except Exception as exc:  # a broken run must not sink the other designs
                    rec.status, rec.reason = "failed", f"{type(exc).__name__}: {exc}"
                if interrupt.seen and rec.status != "ok":
                    rec.status, rec.reason = "interrupted", INTERRUPTED_REASON
                interrupted = rec.status == "interrupted"
                rec.wall_time_s = round(time.time() - t_run, 3)
                events.run_finished(run)
                if interrupted:
                    break
            events.finished()
        except KeyboardInterrupt:  # Ctrl-C between runs (analysis, progress refresh)
            interrupted = True
    for d in records:
        for r in d.runs:
            if r.status == "ok":
                load_run(r, plan.costs)
            elif r.status == "not_run" and not interrupted:
                r.reason = None
    summary = _summary(plan, out, records, repeats, interrupted, costs_path, requested_seed)
    summary["wall_time_s"] = round(time.time() - started, 1)
    return CompareResult(plan=plan, out=out, records=records, summary=summary, interrupted=interrupted)


def mixed_design_path(out: Path, design: PlannedDesign) -> Path | None:
    """Where a mixed design's file is written (``OUT/designs/<name>.yaml``); None without a mix."""
    return Path(out) / "designs" / f"{design.name}.yaml" if design.mapping is not None else None


def write_mixed_designs(plan: ComparePlan, out: Path) -> None:
    """Write every mixed design as a design file, so ``fabric run --topo`` reproduces one run of it."""
    from fabric.mix import mixed_yaml
    for p in plan.designs:
        path = mixed_design_path(out, p)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# {p.spec.source}: written by fabric compare --mix\n" + mixed_yaml(p.mapping))


def _summary(plan: ComparePlan, out: Path, records: list[DesignRecord], repeats: int, interrupted: bool,
             costs_path: Path | None, requested_seed: int | None) -> dict:
    from fabric.report.commandlines import compare_command, report_command, run_command
    from fabric.report.summary import build_summary, merge_cost_inputs, workload_facts_from_schedules

    workload = workload_facts_from_schedules(plan.workload, {p.name: p.schedule for p in plan.designs},
                                             path=plan.traffic, seed=plan.seed)
    runs = [(p, r) for p, d in zip(plan.designs, records) for r in d.runs]
    # Each design given once (not once per mix), then the mixes.
    given = [p.path for p in plan.designs[::max(1, len(plan.mixes))]]
    compare = compare_command(given, plan.traffic, out, repeats=repeats, seed=requested_seed, costs=costs_path)
    if plan.mixes:
        compare += " " + shlex.join(arg for m in plan.mixes for arg in ("--mix", m.text))
    commands = {
        "compare": compare,
        "runs": [run_command(topo=mixed_design_path(out, p) or p.path, traffic=plan.traffic, out=r.run_dir,
                             seed=plan.seed,
                             hash_seed=p.spec.load_balancing.hash_seed, scale_k=plan.k, dilation=plan.dilation)
                 for p, r in runs],
        "report": report_command([r.run_dir for _, r in runs], out / "report.html"),
    }
    return build_summary(records, workload=workload, scale=plan.scale, repeats=repeats,
                         status="interrupted" if interrupted else "complete",
                         cost_inputs=merge_cost_inputs(records, costs_path),
                         cost_source=str(costs_path) if costs_path else None, commands=commands)


def write_comparison_report(result: CompareResult) -> dict[str, Path]:
    """Write ``OUT/report.html``, ``report.md`` and ``summary.json``; return their paths."""
    from fabric.report.render import write_report
    return write_report(result.summary, result.out / "report.html")
