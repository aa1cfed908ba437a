"""``fabric compare``: several fabric designs, one workload, one seed, one scale factor — and a report.

The comparison itself (planning, the round-robin runs, the failure policy, the summary and the
report) is :mod:`fabric.compare`; this module parses the options, checks the machine can emulate,
hands the service the emulator as its runner, and renders progress, the verdict and the exit status:
0, 1 when no run finished, 130 when interrupted (the report then covers the runs that finished).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import typer

from fabric.compare import CompareEvents
from fabric.errors import EnvironmentNotReady
from fabric.rundir.runjson import Engine


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
            engine: Engine = typer.Option(Engine.emu, "--engine",
                                       help="emu: real Linux routers in namespaces, rates scaled by k (needs root); "
                                            "sim: the packet simulator at real rates (k = 1), any size."),
            schedule_window: Optional[str] = typer.Option(None, "--window",
                                                          help="Only the messages starting in START:LENGTH of the "
                                                               "schedule, e.g. 1.4s:100ms."),
            mix: Optional[List[str]] = typer.Option(
                None, "--mix", metavar="NAME=SPEC",
                help="An accelerator mix to compare (repeatable): every design runs once per mix, named "
                     "DESIGN+NAME; the first design with the first mix is the baseline. SPEC is 'design' (as "
                     "written) or comma-separated KEY:ACCELERATOR[@NIC], KEY a host group name, a role "
                     "(prefill, decode, expert, tensor, any) or * (group name beats role beats *), ACCELERATOR "
                     "a catalog name, @NIC e.g. 800G or 3x200G (without it the group's nic_rate/nic_count are "
                     "dropped: the NICs come from the design's host_link_rate, else the accelerator's catalog "
                     "entry). E.g. --mix as-built=design --mix h100-only=*:H100 "
                     "--mix b200-prefill=prefill:B200@800G,decode:MI300X"),
            ) -> None:
    """Run several fabric designs on one workload (same seed, same k) and write a comparison report."""
    from fabric.compare import plan_compare, refuse_used_out, run_compare, write_comparison_report
    from fabric.mix import parse_mixes
    from fabric.report import terminal
    from fabric.schedule import parse_window
    engine = Engine(engine).value
    span = parse_window(schedule_window) if schedule_window else None
    mixes = parse_mixes(mix)
    plan = plan_compare(list(designs), traffic, seed, costs, budget, engine=engine, schedule_window=span,
                        mixes=mixes)
    refuse_used_out(plan, out, repeat)
    if engine == "sim":
        from fabric.sim import runner as engine_module
        options_type = engine_module.SimOptions
    else:
        from fabric.emu import runner as engine_module
        options_type = engine_module.RunOptions
        _check_environment()
    if engine == "emu" and budget is None:
        from fabric.emu.calibrate import load_calibration
        calibrated = load_calibration()  # _check_environment measured it if this boot had none
        if calibrated is not None:  # k from the machine's budget, not the provisional one
            plan = plan_compare(list(designs), traffic, seed, costs, calibrated.budget_pps, engine=engine,
                                schedule_window=span, mixes=mixes)

    with CompareProgress(quiet) as progress:
        result = run_compare(plan, out, repeats=repeat, runner=engine_module.run, options_type=options_type,
                             events=progress, costs_path=costs, requested_seed=seed, budget_pps=budget)
    try:
        paths = write_comparison_report(result)
    except KeyboardInterrupt:
        typer.echo(f"interrupted again while writing the report; finished runs are kept in {result.runs_root}",
                   err=True)
        raise typer.Exit(130) from None
    terminal.print_verdict(result.summary)
    typer.echo(f"report: {paths['html']}  (also {paths['md']}, {paths['json']}; runs in {result.runs_root})")
    if result.interrupted:
        typer.echo(f"interrupted: kept {result.finished} finished run(s); the report covers them and marks the rest "
                   f"not run", err=True)
    elif not result.finished:
        typer.echo("error: no run finished; see the reasons above and in the report", err=True)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


class CompareProgress(CompareEvents):
    """A comparison's progress on stderr: one bar over all runs, one for the current run's stage,
    and a status line per finished run (none with ``quiet``); a context manager around the runs."""

    def __init__(self, quiet: bool = False):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from fabric.report import terminal
        self.terminal = terminal  # imported here, not at the top, so `fabric --help` stays fast
        self.quiet = quiet
        err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
        self.progress = Progress(TextColumn("{task.description:<48}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err, disable=quiet, transient=False)
        self.overall = self.current = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def started(self, plan, runs) -> None:
        repeats = len(runs) // max(1, len(plan.designs))
        self.overall = self.progress.add_task(
            f"compare: {len(plan.designs)} designs × {repeats} run(s), k = {plan.k:g}", total=len(runs))
        self.current = self.progress.add_task("", total=1.0)

    def run_started(self, run) -> None:
        self.progress.update(self.current, description=f"  {run.label}: starting", completed=0)

    def run_stage(self, run, stage: str, fraction: float) -> None:
        self.progress.update(self.current, description=f"  {run.label}: {self.terminal.STAGES.get(stage, stage)}",
                             completed=fraction)

    def run_analysing(self, run) -> None:
        self.progress.update(self.current, description=f"  {run.label}: analysing")

    def run_finished(self, run) -> None:
        self.progress.update(self.overall, advance=1)
        if not self.quiet:
            self.progress.console.print(self.terminal.run_status_line(run.label, run.record))

    def finished(self) -> None:
        self.progress.update(self.current, visible=False)
