"""``fabric sweep SWEEP.yaml --out DIR``: a parameter sweep over one design and workload.

The sweep itself (plan, points, resume, failure policy, searches, results) is :mod:`fabric.sweep`;
this module parses options, builds the Dask executor (a local cluster, ``--scheduler ADDRESS``,
or ``--sync`` in this process), shows a progress bar over points and prints where the results
are. Exit status: 0, 1 when no point finished, 130 when interrupted (the results cover what finished).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from fabric.sweep.service import SweepEvents


def sweep(sweep_file: Path = typer.Argument(..., help="Sweep file (YAML; see docs/sweeps.md and scenarios/)."),
          out: Path = typer.Option(..., "--out", help="Output directory: points/, sweep.parquet, sweep.md, plots. "
                                                      "An existing one is resumed: points already there are not "
                                                      "run again."),
          scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                                  help="Address of an existing Dask scheduler (tcp://host:8786); "
                                                       "default: a local cluster on this machine."),
          workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                                help="Worker processes of the local cluster (default: one per core)."),
          sync: bool = typer.Option(False, "--sync", help="Run the points one by one in this process (Dask's "
                                                          "synchronous scheduler), for debugging."),
          quiet: bool = typer.Option(False, "--quiet", help="No progress bar or per-point lines."),
          ) -> None:
    """Run a parameter sweep: every point a run directory, results in sweep.parquet and sweep.md."""
    from fabric import fmt
    from fabric.sweep import load_sweep, plan_sweep, run_sweep, write_sweep_results

    if scheduler and (sync or workers):
        raise typer.BadParameter("--scheduler uses an existing cluster; drop --sync and --workers")
    plan = plan_sweep(load_sweep(sweep_file))
    engines = set(plan.spec.engines)
    if "emu" in engines and not scheduler and os.geteuid() != 0:
        from fabric.errors import EnvironmentNotReady
        raise EnvironmentNotReady("the sweep has emulation points, which need root (network namespaces); run with "
                                  "sudo, or give --scheduler with workers started as root (docs/sweeps.md)")
    with _executor(scheduler, workers, sync) as executor:
        executor.check_resources(engines)
        with SweepProgress(quiet) as progress:
            result = run_sweep(plan, out, executor, progress)
    paths = write_sweep_results(result)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result.counts.items()))
    typer.echo(f"sweep {plan.spec.name}: {len(result.records)} point(s): {counts}; {result.wall_time_s:.1f} s "
               f"({result.executor})")
    frame = paths.get("frame")
    if frame is not None and not frame.empty:
        for _, r in frame[frame["pareto"]].sort_values("cpmt_total_usd_per_mtok").iterrows():
            vals = ", ".join(f"{k.text}={r[k.text]}" for k in plan.spec.keys) or "base"
            typer.echo(f"  Pareto: {vals} (seed {r['seed']}, {r['engine']}): CPMT "
                       f"{fmt.usd(r['cpmt_total_usd_per_mtok'], 4)}/Mtok")
    if plan.spec.find:
        import json
        for s in json.loads(paths["find"].read_text())["searches"]:
            typer.echo(f"  {plan.spec.find.directive} {s['label']} (seed {s['seed']}, {s['engine']}): "
                       f"{fmt.figure(s['found'], none='none in range')}; {s['note']}")
    if "md" in paths:
        typer.echo(f"results: {paths['parquet']}, {paths['md']}" + (f", {len(paths['plots'])} plot(s)"
                                                                    if paths["plots"] else ""))
    if result.interrupted:
        typer.echo(f"interrupted: kept the finished points in {out / 'points'}; run the same command again to "
                   f"resume", err=True)
    elif not any(r.status == "ok" for r in result.records):
        typer.echo("error: no point finished; see the reasons in sweep.md", err=True)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@contextmanager
def _executor(scheduler: str | None, workers: int | None, sync: bool):
    from fabric.sweep.executor import DaskExecutor, SynchronousExecutor

    if sync:
        yield SynchronousExecutor()
    elif scheduler:
        with DaskExecutor.connect(scheduler) as ex:
            yield ex
    else:
        with DaskExecutor.local(workers) as ex:
            yield ex


class SweepProgress(SweepEvents):
    """One bar over points on stderr and a line per finished point (none with ``quiet``)."""

    def __init__(self, quiet: bool = False):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
        self.progress = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err, disable=quiet, transient=False)
        self.task = None
        self.done = 0
        self.searching = False

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def started(self, plan, total: int, executor: str) -> None:
        from rich.markup import escape

        self.task = self.progress.add_task(escape(f"sweep {plan.spec.name}"), total=total)
        self.searching = bool(plan.searches)
        if not self.quiet:
            self.progress.console.print(escape(f"sweep {plan.spec.name}: {len(plan.points)} point(s)"
                                               + (f", {len(plan.searches)} search(es)" if plan.searches else "")
                                               + f" on {executor}"))

    def point_finished(self, record) -> None:
        from rich.markup import escape

        from fabric import fmt
        self.done += 1
        self.progress.update(self.task, advance=1)
        if self.quiet:
            return
        p = record.point
        if record.status == "ok":
            c = record.cpmt or {}
            econ = (f"η {fmt.ratio((c.get('eta') or {}).get('combined'))}, CPMT "
                    f"{fmt.usd(c.get('cpmt_total_usd_per_mtok'), 4)}/Mtok" if c else f"cost model: {record.cpmt_error}")
            when = "already in DIR" if record.cached else f"{record.wall_time_s or 0:.1f} s"
            self.progress.console.print(escape(f"✓ {p.hash[:8]} {p.label}: {when}, {econ}"))
        else:
            self.progress.console.print(escape(f"✗ {p.hash[:8]} {p.label}: FAILED — {record.reason}"))

    def finished(self) -> None:
        if self.task is not None and self.searching and self.done:  # a search may stop before its last probe
            self.progress.update(self.task, total=self.done, completed=self.done)
