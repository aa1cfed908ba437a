"""Measure the packet simulator on a design and a window of a workload.

``python -m fabric.sim.bench --topo topologies/leaf-spine-ecmp.yaml --traffic traffic/mixed-inference.yaml
--window 1.4 0.1 --out /tmp/sim-bench`` simulates the messages that start in [1.4 s, 1.5 s) and prints
the estimate next to what the run measured (events, events/s, wall time per stage, memory, simulated
time per wall second), one JSON object; ``--first 0.001`` instead keeps the messages that start
within 1 ms of the first one. These figures set the cost model of :func:`fabric.sim.runner.estimate`,
and :func:`measure` is what ``make bench`` (``bench/sim_bench.py``) runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from fabric.replay import LEAD_S
from fabric.sim.runner import SimOptions, estimate, run
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric


def select_window(schedule: pd.DataFrame, window: tuple[float, float] | None = None,
                  first_s: float | None = None) -> tuple[pd.DataFrame, tuple[float, float] | None]:
    """The messages starting in ``[start, start + length)`` of ``window``, or within ``first_s`` of
    the schedule's first message; returns them and the window applied (None: all)."""
    if window is not None and first_s is not None:
        raise ValueError("give a window or a length from the first message, not both")
    if first_s is not None:
        window = (float(schedule["t_start_s"].min()), float(first_s))
    if window is None:
        return schedule, None
    start, length = window
    if length <= 0:
        raise ValueError(f"window length must be positive, got {length:g} s")
    chosen = schedule[(schedule["t_start_s"] >= start) & (schedule["t_start_s"] < start + length)]
    if chosen.empty:
        raise ValueError(f"no message of the schedule starts in [{start:g} s, {start + length:g} s)")
    return chosen, (float(start), float(length))


def measure(topo: str | Path, traffic: str | Path, out: str | Path, *, window: tuple[float, float] | None = None,
            first_s: float | None = None, scale: float = 1.0, seed: int | None = None,
            analyze: bool = False) -> dict:
    """Simulate a window of ``traffic`` on ``topo`` into ``out`` (replaced) and return the figures.

    Besides the run's own ``sim`` record (events, events/s of the simulate stage, stage timings,
    memory) and the estimate made before it, the figures hold ``traffic_span_s``: simulated time
    from the first load message's start to the end of the simulation (the last packet delivered
    or dropped), ``simulated_ms_per_wall_s``: that span in ms per second of the run's wall time
    (start of the run to the run directory written, so start-up and collection count), and
    ``startup_s``: the run's fixed cost, from its start to the child building the network (the
    plan, starting the child, loading the compiled model, or compiling it first when missing).
    """
    from fabric.workloads import generate_schedule, load_workload

    spec = load_fabric_spec(topo)
    g = build_fabric(spec)
    workload = load_workload(traffic)
    schedule, applied = select_window(generate_schedule(workload, g, seed=seed), window, first_s)
    options = SimOptions(seed=seed if seed is not None else workload.seed, scale=scale,
                         hash_seed=spec.load_balancing.hash_seed,
                         extra={"workload": {"name": workload.name, "window_s": applied, "messages": len(schedule)}})
    est = estimate(spec, g, schedule, options)
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    stage_started: dict[str, float] = {}
    t = time.time()
    run(spec, g, schedule, out, options, progress=lambda stage, fraction: stage_started.setdefault(stage, time.time()))
    wall = time.time() - t
    sim = json.loads((out / "run.json").read_text())["sim"]
    span = sim["simulated_s"] - (LEAD_S + float(schedule["t_start_s"].min()))
    figures = {"design": spec.name, "hosts": spec.hosts, "nodes": g.number_of_nodes(), "workload": workload.name,
               "window_s": applied, "messages": len(schedule), "estimate": est, "wall_s": wall,
               "traffic_span_s": span, "simulated_ms_per_wall_s": span * 1e3 / wall,
               "startup_s": stage_started["build"] - t,
               "load_average_1min": {"before": load, "after": os.getloadavg()[0]}, "sim": sim}
    if analyze:
        from fabric.analysis.run_metrics import write_metrics
        t = time.time()
        write_metrics(out)
        figures["analyze_s"] = time.time() - t
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topo", required=True)
    ap.add_argument("--traffic", required=True)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--window", nargs=2, type=float, metavar=("START_S", "LENGTH_S"),
                       help="simulate only messages starting in [START, START + LENGTH)")
    which.add_argument("--first", type=float, metavar="LENGTH_S",
                       help="simulate only messages starting within LENGTH of the first message")
    ap.add_argument("--out", required=True, help="run directory (replaced)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--analyze", action="store_true", help="also run write_metrics and time it")
    a = ap.parse_args()
    figures = measure(a.topo, a.traffic, a.out, window=tuple(a.window) if a.window else None, first_s=a.first,
                      scale=a.scale, seed=a.seed, analyze=a.analyze)
    print(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
