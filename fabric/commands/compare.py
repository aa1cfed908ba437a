"""``fabric compare``: several fabric designs, one workload, one seed, one scale factor — and a report.

Order of work: every design is loaded, built, checked emulable and given its schedule *before*
anything runs, and the scale factor ``k`` is chosen once for all of them (the largest any design
needs), so a bad file among several is refused up front and every design is measured at the same
per-packet granularity. Runs go round-robin over designs (r1 of every design, then r2, …) so an
interrupted comparison still covers each design and slow drift of the machine hits all alike.

Each run lands in ``OUT/runs/<design>-r<i>`` (a normal run directory, metrics.json included);
``OUT/report.html``, ``OUT/report.md`` and ``OUT/summary.json`` summarise them. A run that fails
is reported with its reason and the others continue; Ctrl-C keeps what finished, writes the
report of it (the rest marked not run) and exits 130. Exit status is 1 when no run finished.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer

from fabric.errors import EnvironmentNotReady, FabricError, SpecError


@dataclass
class PlannedDesign:
    path: Path
    name: str
    spec: object
    graph: object
    facts: dict
    schedule: object
    scale: object          # ScaleChoice this design alone would need


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


def plan_compare(designs: list[Path], traffic: Path, seed: int | None, costs: Path | None,
                 budget_pps: int | None = None) -> ComparePlan:
    """Validate everything and generate every schedule; nothing runs. Raises FabricError subclasses.

    ``budget_pps`` None plans with the provisional DEFAULT_BUDGET_PPS: enough to validate, but the
    comparison re-plans with the machine's calibrated budget once it knows it (see ``compare``).
    """
    from fabric.economics import load_costs
    from fabric.emu.scale import DEFAULT_BUDGET_PPS, choose_scale
    from fabric.specs import load_fabric_spec
    from fabric.topology import build_fabric, fabric_facts, hosts
    from fabric.workloads import generate_schedule, load_workload

    if not designs:
        raise SpecError("fabric compare", "DESIGNS", "give at least one fabric design YAML")
    workload = load_workload(traffic)
    cost_file = load_costs(costs)
    planned: list[PlannedDesign] = []
    names: set[str] = set()
    for path in designs:
        spec = load_fabric_spec(path)
        g = build_fabric(spec)
        facts = fabric_facts(g)
        if not facts["emulable"]:
            raise SpecError(str(path), "", facts["emulable_reason"])
        schedule = generate_schedule(workload, g, seed=seed)
        nic = {h: g.nodes[h]["nic_rate_bps"] for h in hosts(g)}
        link_rates = [d["rate_bps"] for _, _, d in g.edges(data=True)]
        choice = choose_scale(schedule, nic, link_rates, budget_pps or DEFAULT_BUDGET_PPS)
        name = spec.name
        n = 2
        while name in names:  # the same design given twice: keep both, named apart
            name = f"{spec.name}-{n}"
            n += 1
        names.add(name)
        planned.append(PlannedDesign(Path(path), name, spec, g, facts, schedule, choice))
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
            raise SpecError(str(p.path), "", f"cannot run at the common scale factor k = {k:g} that the other "
                                             f"designs need: {exc}") from None
    widest = max(planned, key=lambda p: p.scale.k)
    scale = {**widest.scale.to_dict(), "k": k,
             "reason": f"largest k any design needs ({widest.name}: {widest.scale.reason})",
             "per_design": {p.name: {"k_needed": p.scale.k, "reason": p.scale.reason,
                                     "peak_offered_bps": p.scale.peak_offered_bps} for p in planned}}
    if dilation is not None:
        scale["dilation"] = dilation
    run_seed = seed if seed is not None else workload.seed
    return ComparePlan(workload, Path(traffic), run_seed, planned, k, scale, cost_file, dilation)


def _has_dilation() -> bool:
    """Whether this emulator takes a time dilation (RunOptions.dilation)."""
    from dataclasses import fields

    from fabric.emu.runner import RunOptions
    return any(f.name == "dilation" for f in fields(RunOptions))


def _check_environment() -> None:
    """Root, Mininet, mnexec, and a packet budget measured on this boot (calibrates once if none)."""
    if os.geteuid() != 0:
        raise EnvironmentNotReady("emulation needs root (network namespaces); run with sudo")
    try:
        import mininet.net  # noqa: F401
    except ImportError as exc:
        raise EnvironmentNotReady(f"Mininet is not importable ({exc}); run 'sudo make setup'") from None
    if shutil.which("mnexec") is None:
        raise EnvironmentNotReady("mnexec is missing (it comes with the mininet package); run 'sudo make setup'")
    from fabric.emu.calibrate import budget_pps
    budget_pps(progress=lambda message, fraction: typer.echo(message, err=True))


def print_verdict(summary: dict, verdict_table=None, break_even_lines=None) -> None:
    """The verdict table and the break-even lines, on stdout (rich)."""
    from rich.console import Console
    from rich.table import Table

    from fabric.report import tables as T
    verdict_table = verdict_table or T.verdict_table
    break_even_lines = break_even_lines or T.break_even_lines
    t = verdict_table(summary)
    console = Console(width=None if sys.stdout.isatty() else 230, highlight=False, soft_wrap=False)
    table = Table(title=t.title + (f" (k = {summary['scale']['k']:g})" if summary["scale"].get("k") else ""),
                  show_lines=False)
    for h in t.headers:
        table.add_column(h, overflow="fold")
    for row in t.rows:
        table.add_row(*row)
    console.print(table)
    for note in t.notes:
        console.print(f"  {note}")
    console.print("break-even (docs/economics.md): design B beats A iff η_B/η_A > 1 + f·p")
    for line in break_even_lines(summary):
        console.print(f"  {line}")
    for nt in summary["comparison"].get("not_trusted") or []:
        console.print(f"  NOTE: {nt['design']} is {nt['verdict']}, not trusted"
                      + (f" ({', '.join(nt['tripped'])})" if nt["tripped"] else ""))


_signalled = {"interrupt": False}


def _on_interrupt(signum, frame):
    # Remember it: Ctrl-C reaches the run's agents too, and the runner may report one of them
    # dying before this process sees its own KeyboardInterrupt.
    _signalled["interrupt"] = True
    raise KeyboardInterrupt


def compare(designs: List[Path] = typer.Argument(..., help="Fabric design YAML files (the first is the baseline)."),
            traffic: Path = typer.Option(..., "--traffic", help="Workload profile YAML (the same for every design)."),
            out: Path = typer.Option(..., "--out", help="Output directory: runs/, report.html, report.md, summary.json."),
            repeat: int = typer.Option(1, "--repeat", min=1, help="Runs per design; the spread across them decides "
                                                                   "what is significant."),
            seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Workload seed (default: the profile's)."),
            costs: Optional[Path] = typer.Option(None, "--costs", help="Cost file (YAML) overriding catalog defaults."),
            quiet: bool = typer.Option(False, "--quiet", help="No progress bar or per-run lines."),
            budget: Optional[int] = typer.Option(None, "--budget", min=1,
                                                 help="Packet budget in packets/s (default: measured on this "
                                                      "machine, once per boot; see fabric doctor)."),
            ) -> None:
    """Emulate several fabric designs on one workload (same seed, same k) and write a comparison report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fabric.analysis.run_metrics import write_metrics
    from fabric.commands.run import STAGES, workload_facts
    from fabric.economics import cpmt_for_run
    from fabric.report.render import write_report
    from fabric.report.summary import DesignRecord, RunRecord, build_summary, load_run, merge_cost_inputs

    plan = plan_compare(list(designs), traffic, seed, costs, budget)
    out = Path(out)
    runs_root = out / "runs"
    records: list[DesignRecord] = []
    for p in plan.designs:
        d = DesignRecord(name=p.name, kind=p.spec.kind, topology_path=str(p.path),
                         topology_sha256=getattr(p.spec, "content_sha256", None), facts=p.facts)
        for i in range(1, repeat + 1):
            d.runs.append(RunRecord(design=p.name, repeat=i, run_dir=runs_root / f"{p.name}-r{i}",
                                    reason="not run: the comparison was interrupted before it"))
        records.append(d)
    taken = [r.run_dir for d in records for r in d.runs if r.run_dir.exists() and any(r.run_dir.iterdir())]
    if taken:
        raise SpecError(str(out), "--out", f"{taken[0]} already holds a run (from an earlier compare?); remove "
                                           f"{runs_root} or choose another --out")
    _check_environment()
    if budget is None:
        from fabric.emu.calibrate import load_calibration
        calibrated = load_calibration()  # _check_environment measured it if this boot had none
        if calibrated is not None:  # k from the machine's budget, not the provisional one
            plan = plan_compare(list(designs), traffic, seed, costs, calibrated.budget_pps)

    from fabric.emu.runner import RunOptions
    from fabric.emu.runner import run as emulate
    compare_cmd = ["fabric", "compare", *map(str, designs), "--traffic", str(traffic), "--out", str(out)]
    if repeat > 1:
        compare_cmd += ["--repeat", str(repeat)]
    if seed is not None:
        compare_cmd += ["--seed", str(seed)]
    if costs is not None:
        compare_cmd += ["--costs", str(costs)]
    run_cmds = []
    for p, d in zip(plan.designs, records):
        for r in d.runs:
            run_cmds.append(shlex.join(["fabric", "run", "--topo", str(p.path), "--traffic", str(traffic),
                                        "--out", str(r.run_dir), "--seed", str(plan.seed), "--hash-seed",
                                        str(p.spec.load_balancing.hash_seed), "--scale", f"{plan.k:g}"]
                                       + (["--dilation", f"{plan.dilation:g}"] if plan.dilation is not None else [])))

    out.mkdir(parents=True, exist_ok=True)
    runs_root.mkdir(exist_ok=True)
    order = [(i, p, d) for i in range(repeat) for p, d in zip(plan.designs, records)]
    err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
    interrupted = False
    _signalled["interrupt"] = False
    old_handlers = {sig: signal.signal(sig, _on_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.time()
    try:
        with Progress(TextColumn("{task.description:<48}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=quiet, transient=False) as progress:
            overall = progress.add_task(f"compare: {len(plan.designs)} designs × {repeat} run(s), k = {plan.k:g}",
                                        total=len(order))
            current = progress.add_task("", total=1.0)
            for n, (i, p, d) in enumerate(order, start=1):
                rec = d.runs[i]
                label = f"{p.name} r{i + 1} ({n}/{len(order)})"

                def stage(name: str, fraction: float, label=label) -> None:
                    progress.update(current, description=f"  {label}: {STAGES.get(name, name)}", completed=fraction)

                t_run = time.time()
                try:
                    progress.update(current, description=f"  {label}: starting", completed=0)
                    dil = {"dilation": plan.dilation} if plan.dilation is not None else {}
                    options = RunOptions(seed=plan.seed, scale=plan.k, hash_seed=p.spec.load_balancing.hash_seed, **dil,
                                         budget_pps=budget,
                                         name=rec.run_dir.name,
                                         extra={"workload": workload_facts(plan.workload, p.schedule)
                                                | {"path": str(traffic)}})
                    emulate(p.spec, p.graph, p.schedule, rec.run_dir, options, progress=stage)
                    progress.update(current, description=f"  {label}: analysing")
                    rec.metrics = write_metrics(rec.run_dir)
                    try:
                        rec.cpmt = cpmt_for_run(rec.run_dir, plan.costs)
                    except FabricError as exc:
                        rec.cpmt_error = str(exc)
                    rec.status, rec.reason = "ok", None
                except KeyboardInterrupt:
                    rec.status = "interrupted"
                    rec.reason = ("interrupted (Ctrl-C) during this run; its namespaces and processes were removed "
                                  "and its incomplete directory removed")
                    interrupted = True
                except FabricError as exc:
                    rec.status, rec.reason = "failed", str(exc)
                except Exception as exc:  # a broken run must not sink the other designs
                    rec.status, rec.reason = "failed", f"{type(exc).__name__}: {exc}"
                if _signalled["interrupt"] and rec.status != "ok":
                    rec.status = "interrupted"
                    rec.reason = ("interrupted (Ctrl-C) during this run; its namespaces and processes were removed "
                                  "and its incomplete directory removed")
                    interrupted = True
                rec.wall_time_s = round(time.time() - t_run, 3)
                progress.update(overall, advance=1)
                if not quiet:
                    progress.console.print(_status_line(label, rec))
                if interrupted:
                    break
            progress.update(current, visible=False)
    except KeyboardInterrupt:  # Ctrl-C between runs (analysis, progress refresh)
        interrupted = True
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    for d in records:
        for r in d.runs:
            if r.status == "ok":
                load_run(r, plan.costs)
            elif r.status == "not_run" and not interrupted:
                r.reason = None

    first = plan.designs[0]
    per_kind = first.schedule.groupby("kind", sort=True)["bytes"].agg(["size", "sum"])
    w = plan.workload
    workload = {"path": str(traffic), "name": w.name, "description": w.description,
                "model": w.model.name if w.model else None, "duration_s": w.duration_s, "seed": plan.seed,
                "messages": int(len(first.schedule)), "bytes": int(first.schedule["bytes"].sum()),
                "per_kind": {str(k): {"messages": int(r["size"]), "bytes": int(r["sum"])} for k, r in per_kind.iterrows()},
                "patterns": [{"name": pt.name, "type": pt.type} for pt in w.patterns]}
    counts = {p.name: int(len(p.schedule)) for p in plan.designs}
    if len(set(counts.values())) > 1:
        workload["mismatch"] = f"the profile resolves to different schedules on these designs: messages {counts}"
    summary = build_summary(records, workload=workload, scale=plan.scale, repeats=repeat,
                            status="interrupted" if interrupted else "complete",
                            cost_inputs=merge_cost_inputs(records, costs), cost_source=str(costs) if costs else None,
                            commands={"compare": shlex.join(compare_cmd), "runs": run_cmds,
                                      "report": shlex.join(["fabric", "report", *[str(r.run_dir) for d in records
                                                                                 for r in d.runs],
                                                            "-o", str(out / "report.html")])})
    summary["wall_time_s"] = round(time.time() - started, 1)
    try:
        paths = write_report(summary, out / "report.html")
    except KeyboardInterrupt:
        typer.echo(f"interrupted again while writing the report; finished runs are kept in {runs_root}", err=True)
        raise typer.Exit(130) from None
    print_verdict(summary)
    typer.echo(f"report: {paths['html']}  (also {paths['md']}, {paths['json']}; runs in {runs_root})")
    if interrupted:
        done = sum(r.status == "ok" for d in records for r in d.runs)
        typer.echo(f"interrupted: kept {done} finished run(s); the report covers them and marks the rest not run",
                   err=True)
        raise typer.Exit(130)
    if not any(r.status == "ok" for d in records for r in d.runs):
        typer.echo("error: no run finished; see the reasons above and in the report", err=True)
        raise typer.Exit(1)


def _status_line(label: str, rec) -> str:
    if rec.status == "ok":
        fid = (rec.metrics or {}).get("fidelity", {}).get("verdict", "n/a")
        eta = rec.cpmt["eta"]["combined"] if rec.cpmt else None
        cp = rec.cpmt["cpmt_total_usd_per_mtok"] if rec.cpmt else None
        econ = (f", η {eta:.4f}, CPMT ${cp:.4f}/Mtok total" if rec.cpmt else f", cost model failed: {rec.cpmt_error}")
        return f"✓ {label}: {rec.wall_time_s:.1f} s, fidelity {fid}{econ}"
    if rec.status == "interrupted":
        return f"✗ {label}: interrupted"
    return f"✗ {label}: FAILED — {rec.reason}"
