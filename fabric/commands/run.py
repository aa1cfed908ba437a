"""``fabric run``: emulate one fabric design carrying one workload, and analyse the run."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fabric.emu.scale import MAX_DILATION
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric

STAGES = {"calibrate": "measuring the packet budget (once per boot)", "build": "building namespaces and links",
          "replay": "replaying the schedule", "collect": "collecting records"}


def run_with_progress(spec, g, schedule, out: Path, options, quiet: bool = False) -> Path:
    """Run the emulator with a rich progress bar (one task per stage)."""
    from fabric.emu.runner import run as emulate

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<32}"), BarColumn(), TextColumn("{task.percentage:>5.0f}%"),
                  TimeElapsedColumn(), console=console, disable=quiet, transient=False) as progress:
        tasks = {}

        def report(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGES.get(stage, stage), total=1.0)
            progress.update(tasks[stage], completed=fraction)

        return emulate(spec, g, schedule, out, options, progress=report)


def workload_facts(workload, schedule) -> dict:
    """What economics and reports need to know about the workload, stored in run.json."""
    facts = {
        "name": workload.name, "description": workload.description, "source": str(workload.source), "sha256": workload.content_sha256,
        "model": workload.model.name if workload.model else None, "duration_s": workload.duration_s,
        "seed": workload.seed,
        "patterns": [{"type": p.type, "name": p.name, "model": p.model.name if p.model else None,
                      "layers_emulated": getattr(p, "layers_emulated", 0) or 0} for p in workload.patterns],
        "messages_by_kind": {str(k): int(v) for k, v in schedule["kind"].value_counts().sort_index().items()},
    }
    facts["messages"] = int(len(schedule))
    facts["bytes"] = int(schedule["bytes"].sum())
    return facts


def run(topo: Path = typer.Option(..., "--topo", help="Fabric design YAML."),
        traffic: Path = typer.Option(..., "--traffic", help="Workload profile YAML."),
        out: Path = typer.Option(..., "--out", help="Run directory to create (must not exist or be empty)."),
        seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Workload seed (default: the profile's)."),
        hash_seed: Optional[int] = typer.Option(None, "--hash-seed", min=0, max=2**32 - 1,
                                                help="ECMP hash seed (default: the design's hash_seed)."),
        scale: Optional[float] = typer.Option(None, "--scale", min=1.0,
                                              help="Scale factor k (default: chosen from the packet budget)."),
        budget: Optional[int] = typer.Option(None, "--budget", min=1,
                                             help="Packet budget in packets/s (default: measured on this machine, "
                                                  "once per boot; see fabric doctor)."),
        dilation: Optional[float] = typer.Option(None, "--dilation", min=1.0, max=MAX_DILATION,
                                                 help="Time dilation D (default: chosen from the packet budget, "
                                                      "message bursts and the resolution of eta-setting messages)."),
        capture: Optional[List[str]] = typer.Option(None, "--capture",
                                                    help="Link id to capture to pcap (repeatable), e.g. h0-leaf0."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        ) -> None:
    """Emulate a fabric design carrying a workload, with real packets; write and analyse the run."""
    from fabric.analysis.run_metrics import write_metrics
    from fabric.commands.analyze import print_summary
    from fabric.emu.runner import RunOptions
    from fabric.workloads import generate_schedule, load_workload

    spec = load_fabric_spec(topo)
    g = build_fabric(spec)
    workload = load_workload(traffic)
    schedule = generate_schedule(workload, g, seed=seed)
    run_seed = seed if seed is not None else getattr(workload, "seed", 1)
    options = RunOptions(seed=run_seed, scale=scale, dilation=dilation, budget_pps=budget,
                         hash_seed=hash_seed if hash_seed is not None else spec.load_balancing.hash_seed,
                         captures=list(capture or []),
                         extra={"workload": workload_facts(workload, schedule) | {"path": str(traffic)}})
    run_with_progress(spec, g, schedule, out, options, quiet=quiet)
    metrics = write_metrics(out)
    print_summary(metrics)
    from fabric.commands.cpmt import render_summary
    from fabric.economics import cpmt_for_run

    typer.echo(render_summary(cpmt_for_run(out)))
    typer.echo(f"run directory: {out}   (details: fabric analyze {out}; fabric cpmt {out} --explain)")
