"""Parameter sweeps (``fabric sweep SWEEP.yaml --out DIR``): one base design and workload, keys
varied by dotted path, every point a run directory named by the hash of its inputs, run through
Dask distributed, with results, a Pareto frontier and SLO-bound goodput searches.

Modules follow the pipeline: :mod:`.spec` (the sweep file), :mod:`.paths` (dotted paths into a
mapping), :mod:`.plan` (points resolved, validated and hashed), :mod:`.engines` (runners and
options per engine, the emulator resource), :mod:`.point` (one point on a worker),
:mod:`.executor` (Dask local or remote cluster, or the synchronous scheduler), :mod:`.find`
(max_rate_within_slo bisection), :mod:`.service` (running a plan, resume, failure policy) and
:mod:`.results` (sweep.parquet, sweep.md, plots, Pareto). docs/sweeps.md is the user's guide.
"""

from fabric.sweep.plan import Point, SweepPlan, plan_sweep  # noqa: F401
from fabric.sweep.service import SweepEvents, SweepResult, run_sweep, write_sweep_results  # noqa: F401
from fabric.sweep.spec import SweepSpec, load_sweep, parse_sweep  # noqa: F401
