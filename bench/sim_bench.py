"""`make bench`, simulator section: how fast the packet simulator runs on this machine.

Three runs at real rates (k = 1), each a window of a workload on a design of 16, 128 and 1,024
hosts, measured with :func:`fabric.sim.bench.measure`; two of them are the targets the simulator
was built for, which the second table holds against their wall-time limits:

* 16 hosts: ``topologies/leaf-spine-ecmp.yaml``, 100 ms of ``traffic/mixed-inference.yaml`` (messages
  starting in [1.4 s, 1.5 s), where KV transfers, the MoE all-to-all and background meet) — target
  2 minutes;
* 128 hosts: ``bench/leaf-spine-128.yaml``, 2 ms of the same workload from 1.4 s (one MoE step's
  dispatch and combine of EP32, background, a KV transfer);
* 1,024 hosts: ``topologies/production-1024-h100.yaml``, 1 ms from the first message of
  ``traffic/production/moe-deepseek-v3-decode-ep256.yaml`` (one decode step of EP256: a dispatch and a combine
  all-to-all) — target 5 minutes.

Speed columns: events/s is the simulate stage's (events ÷ its seconds); simulated ms is the traffic's
span, from the window's first message to the last packet delivered or dropped; "sim ms / wall s" is
that span per second of the run's wall time, and wall time is the whole run as ``fabric run --engine
sim`` does it up to the run directory (plan, start the child, load the compiled model, simulate, write
the tables), the analysis after it excluded (``--analyze`` adds and times it); "start s" is its part
before the child builds the network (the model is compiled once and cached, not per run). The estimate is
:func:`fabric.sim.runner.estimate`'s, made before the run from the cost model. Figures depend on what
else the machine runs: the 1-minute load average before and after each run is printed with it.

Usage::

    .venv/bin/python bench/sim_bench.py              # the three runs (~3 minutes on 2 vCPUs)
    .venv/bin/python bench/sim_bench.py --json out.json --analyze
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Case:
    name: str                 # directory name and row key
    topo: Path
    traffic: Path
    what: str                 # the window, in words
    window: tuple[float, float] | None = None
    first_s: float | None = None
    target: str | None = None  # the target's statement, when this run is one
    target_wall_s: float | None = None


CASES = (
    Case("16-hosts", ROOT / "topologies/leaf-spine-ecmp.yaml", ROOT / "traffic/mixed-inference.yaml",
         "mixed-inference, 1.4-1.5 s", window=(1.4, 0.1),
         target="16-host 400G, 100 ms of traffic/mixed-inference.yaml (window 1.4-1.5 s)", target_wall_s=120.0),
    Case("128-hosts", HERE / "leaf-spine-128.yaml", ROOT / "traffic/mixed-inference.yaml",
         "mixed-inference, 1.4-1.402 s", window=(1.4, 0.002)),
    Case("1024-hosts", ROOT / "topologies/production-1024-h100.yaml",
         ROOT / "traffic/production/moe-deepseek-v3-decode-ep256.yaml", "MoE EP256 decode step, 1 ms from first", first_s=0.001,
         target="production-1024-h100, 1 ms of a MoE decode step", target_wall_s=300.0),
)


def _n(x: float) -> str:
    return f"{x:,.0f}"


def speed_table(results: dict[str, dict]) -> list[str]:
    head = (f"{'hosts':>6}  {'design':<21}{'window':<40}{'messages':>9}{'packets':>11}{'events':>12}"
            f"{'events/s':>10}{'sim ms':>8}{'sim ms/wall s':>14}{'wall s':>8}{'start s':>8}{'estimate s':>11}"
            f"{'load avg':>11}")
    lines = [head]
    for case in CASES:
        r = results[case.name]
        sim = r["sim"]
        lines.append(f"{r['hosts']:>6}  {r['design']:<21}{case.what:<40}{_n(r['messages']):>9}"
                     f"{_n(sim['packets_total']):>11}{_n(sim['events']):>12}{_n(sim['events_per_s']):>10}"
                     f"{r['traffic_span_s'] * 1e3:>8.2f}{r['simulated_ms_per_wall_s']:>14.3f}{r['wall_s']:>8.1f}"
                     f"{r['startup_s']:>8.2f}{r['estimate']['wall_s']:>11.1f}"
                     f"{r['load_average_1min']['before']:>6.1f}>{r['load_average_1min']['after']:<4.1f}")
    return lines


def targets_table(results: dict[str, dict]) -> list[str]:
    lines = [f"{'target':<75}{'wall s':>8}{'limit s':>9}  verdict"]
    for case in CASES:
        if case.target is None:
            continue
        r = results[case.name]
        wall = r["wall_s"] + r.get("analyze_s", 0.0)
        verdict = "met" if wall <= case.target_wall_s else "MISSED"
        lines.append(f"{case.target:<75}{wall:>8.1f}{case.target_wall_s:>9.0f}  {verdict} "
                     f"({wall / case.target_wall_s:.0%} of the limit)")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write every run's figures to this file")
    ap.add_argument("--analyze", action="store_true", help="also analyse each run (fabric analyze) and time it")
    a = ap.parse_args()
    from fabric.errors import EnvironmentNotReady
    from fabric.sim.runner import ns3_wheel_version
    try:
        wheel = ns3_wheel_version()
    except EnvironmentNotReady as exc:  # the wheel is optional: say why the section is skipped
        print(f"packet simulator speed: skipped ({exc})")
        return 0
    from fabric.sim.bench import measure

    results: dict[str, dict] = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="fabric-sim-bench-") as tmp:
        for case in CASES:
            print(f"  simulating {case.name}: {case.what} ...", file=sys.stderr, flush=True)
            results[case.name] = measure(case.topo, case.traffic, Path(tmp) / case.name, window=case.window,
                                         first_s=case.first_s, analyze=a.analyze)
    total = time.time() - started
    print(f"packet simulator speed (ns3 wheel {wheel}, {os.cpu_count()} CPUs, real rates k = 1; "
          f"{total:.0f} s for this section)")
    print("\n".join(speed_table(results)))
    print("events/s: simulate stage; sim ms: first message to last packet delivered or dropped; wall s: the run "
          "up to its run directory" + (" (+ analysis in the targets)" if a.analyze else ", analysis excluded")
          + "; start s: its start-up, before the network is built; load avg: 1-minute load average before>after")
    print()
    print("\n".join(targets_table(results)))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
