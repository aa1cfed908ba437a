"""``fabric run``: emulate one fabric design carrying one workload, and analyse the run."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from fabric.emu.scale import MAX_DILATION
from fabric.errors import SpecError
from fabric.rundir.runjson import Engine
from fabric.schedule import parse_window, window
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric, fabric_facts


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
        schedule_window: Optional[str] = typer.Option(None, "--window",
                                                      help="Only the messages starting in START:LENGTH of the "
                                                           "schedule, e.g. 1.4s:100ms."),
        engine: Engine = typer.Option(Engine.emu, "--engine",
                                   help="emu: real Linux routers in namespaces, rates scaled by k (needs root); "
                                        "sim: the packet simulator at real rates (k = 1 unless --scale), any size."),
        ) -> None:
    """Run a fabric design carrying a workload (emulated with real packets, or simulated); write and analyse it."""
    from fabric.analysis.run_metrics import write_metrics
    from fabric.economics import cpmt_for_run
    from fabric.emu import runner as emulator
    from fabric.report import terminal
    from fabric.workloads import generate_schedule, load_workload, workload_facts

    spec = load_fabric_spec(topo)
    g = build_fabric(spec)
    workload = load_workload(traffic)
    schedule = generate_schedule(workload, g, seed=seed)
    if schedule_window:
        schedule = window(schedule, *parse_window(schedule_window))
    run_seed = seed if seed is not None else getattr(workload, "seed", 1)
    engine = Engine(engine).value
    facts = {"workload": workload_facts(workload, schedule) | {"path": str(traffic)}}
    hash_seed = hash_seed if hash_seed is not None else spec.load_balancing.hash_seed
    if engine == "sim":
        from fabric.sim import runner as simulator
        for flag, given in (("--budget", budget), ("--dilation", dilation), ("--capture", capture)):
            if given:
                raise typer.BadParameter("applies to the emulator only (--engine emu)", param_hint=flag)
        options = simulator.SimOptions(seed=run_seed, scale=scale or 1.0, hash_seed=hash_seed, extra=facts)
        terminal.run_with_progress(simulator.run, spec, g, schedule, out, options, quiet=quiet)
    else:
        facts_g = fabric_facts(g)
        if not facts_g["emulable"]:
            raise SpecError(str(topo), "", f"{facts_g['emulable_reason']}; run it on the packet simulator: "
                                           f"--engine sim")
        options = emulator.RunOptions(seed=run_seed, scale=scale, dilation=dilation, budget_pps=budget,
                                      hash_seed=hash_seed, captures=list(capture or []), extra=facts)
        terminal.run_with_progress(emulator.run, spec, g, schedule, out, options, quiet=quiet)
    typer.echo(terminal.metrics_summary(write_metrics(out)))
    typer.echo(terminal.cpmt_summary(cpmt_for_run(out)))
    typer.echo(f"run directory: {out}   (details: fabric analyze {out}; fabric cpmt {out} --explain)")
