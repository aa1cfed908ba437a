"""The command lines that reproduce a comparison (summary.json ``commands``, the report's
"Reproduce" section): one ``fabric run`` line per run, the ``fabric compare`` line and the
``fabric report`` line.

A run's line is built by :func:`run_command` only, whether the run was just planned by
``fabric compare`` or is read back from its run.json by ``fabric report``, so both say the same.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Iterable


def run_command(*, topo, traffic, out, seed: int | None = None, hash_seed: int | None = None,
                scale_k: float | None = None, dilation: float | None = None) -> str:
    """The ``fabric run`` line that reproduces one run (same design, workload, seeds, k and D)."""
    parts = ["fabric", "run", "--topo", str(topo), "--traffic", str(traffic), "--out", str(out)]
    if seed is not None:
        parts += ["--seed", str(seed)]
    if hash_seed is not None:
        parts += ["--hash-seed", str(hash_seed)]
    if scale_k is not None:
        parts += ["--scale", f"{float(scale_k):g}"]
    if dilation is not None:
        parts += ["--dilation", f"{float(dilation):g}"]
    return shlex.join(parts)


def run_command_from_run_json(run_json: dict, run_dir: Path | str) -> str:
    """:func:`run_command` for a finished run, from what its run.json recorded."""
    return run_command(topo=(run_json.get("topology") or {}).get("path") or "DESIGN.yaml",
                       traffic=(run_json.get("workload") or {}).get("path") or "WORKLOAD.yaml",
                       out=run_dir, seed=run_json.get("seed"), hash_seed=run_json.get("hash_seed"),
                       scale_k=run_json.get("scale_k"), dilation=run_json.get("dilation"))


def compare_command(designs: Iterable, traffic, out, *, repeats: int = 1, seed: int | None = None,
                    costs=None) -> str:
    """The ``fabric compare`` line: options at their defaults are left out."""
    parts = ["fabric", "compare", *map(str, designs), "--traffic", str(traffic), "--out", str(out)]
    if repeats > 1:
        parts += ["--repeat", str(repeats)]
    if seed is not None:
        parts += ["--seed", str(seed)]
    if costs is not None:
        parts += ["--costs", str(costs)]
    return shlex.join(parts)


def report_command(run_dirs: Iterable, html) -> str:
    """The ``fabric report`` line that rebuilds the report from the run directories."""
    return shlex.join(["fabric", "report", *map(str, run_dirs), "-o", str(html)])
