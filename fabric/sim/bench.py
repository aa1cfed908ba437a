"""Measure the packet simulator on a design and a window of a workload.

``python -m fabric.sim.bench --topo topologies/leaf-spine-ecmp.yaml --traffic traffic/mixed-inference.yaml
--window 1.4 0.1 --out /tmp/sim-bench`` simulates the messages that start in [1.4 s, 1.5 s) and prints
the estimate next to what the run measured (events, events/s, wall time per stage, memory), one JSON
object. These figures set the cost model of :func:`fabric.sim.runner.estimate`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from fabric.sim.runner import SimOptions, estimate, run
from fabric.specs import load_fabric_spec
from fabric.topology import build_fabric


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topo", required=True)
    ap.add_argument("--traffic", required=True)
    ap.add_argument("--window", nargs=2, type=float, metavar=("START_S", "LENGTH_S"),
                    help="simulate only messages starting in [START, START + LENGTH)")
    ap.add_argument("--out", required=True, help="run directory (replaced)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--analyze", action="store_true", help="also run write_metrics and time it")
    a = ap.parse_args()

    from fabric.workloads import generate_schedule, load_workload

    spec = load_fabric_spec(a.topo)
    g = build_fabric(spec)
    workload = load_workload(a.traffic)
    schedule = generate_schedule(workload, g, seed=a.seed)
    if a.window:
        start, length = a.window
        schedule = schedule[(schedule["t_start_s"] >= start) & (schedule["t_start_s"] < start + length)]
    options = SimOptions(seed=a.seed if a.seed is not None else workload.seed, scale=a.scale,
                         hash_seed=spec.load_balancing.hash_seed,
                         extra={"workload": {"name": workload.name, "window_s": a.window, "messages": len(schedule)}})
    est = estimate(spec, g, schedule, options)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    run(spec, g, schedule, out, options)
    wall = time.time() - t
    sim = json.loads((out / "run.json").read_text())["sim"]
    figures = {"design": spec.name, "hosts": spec.hosts, "messages": len(schedule), "estimate": est, "wall_s": wall,
               "sim": sim}
    if a.analyze:
        from fabric.analysis.run_metrics import write_metrics
        t = time.time()
        write_metrics(out)
        figures["analyze_s"] = time.time() - t
    print(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
