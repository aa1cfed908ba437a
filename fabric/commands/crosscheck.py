"""``fabric crosscheck``: one design and workload on both engines at the emulator's scale; loss,
MCT and OWD per class side by side (the service is :mod:`fabric.crosscheck`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric


def crosscheck(topo: Path = typer.Argument(..., help="Fabric design YAML (small enough to emulate here)."),
               traffic: Path = typer.Option(..., "--traffic", help="Workload profile YAML."),
               out: Path = typer.Option(..., "--out", help="Directory to create: emu/ and sim/ run directories "
                                                           "and crosscheck.json."),
               seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Workload seed (default: the profile's)."),
               scale: Optional[float] = typer.Option(None, "--scale", min=1.0,
                                                     help="Scale factor k for both engines (default: the emulator's "
                                                          "choice from the packet budget)."),
               as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
               quiet: bool = typer.Option(False, "--quiet", help="No progress bar.")) -> None:
    """Run a design on the emulator and on the packet simulator at the same k; compare per class."""
    from fabric.crosscheck import crosscheck as check
    from fabric.emu import runner as emulator
    from fabric.jsonio import dumps
    from fabric.report import terminal
    from fabric.workloads import generate_schedule, load_workload, workload_facts

    spec = load_fabric_spec(topo)
    g = build_fabric(spec)
    workload = load_workload(traffic)
    schedule = generate_schedule(workload, g, seed=seed)
    options = emulator.RunOptions(seed=seed if seed is not None else getattr(workload, "seed", 1), scale=scale,
                                  hash_seed=spec.load_balancing.hash_seed,
                                  extra={"workload": workload_facts(workload, schedule) | {"path": str(traffic)}})
    result = terminal.run_with_progress(check, spec, g, schedule, out, options, quiet=quiet)
    typer.echo(dumps(result).rstrip("\n") if as_json else terminal.crosscheck_table(result))
    if not result["agree"]:
        raise typer.Exit(2)
