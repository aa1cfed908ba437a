"""The one way tests write run directories: through the real recorder (:func:`fabric.rundir.record`).

Tests build the tables they need and hand them here with the run.json keys they care about; the
rest of the contract (engine, nodes, versions, ...) is filled in from a small default design, so a
fake run directory can never drift from what the engines write.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd

from fabric import __version__
from fabric.probe import DEFAULT_PAYLOAD_BYTES
from fabric.rundir import RunJson, node_facts, record
from fabric.specs import parse_fabric_spec
from fabric.topology import build_fabric, fabric_facts

# 2 leaves × 2 spines × 2 hosts per leaf: h0, h1 on leaf0; h2, h3 on leaf1.
SMALL_DESIGN = {"name": "test-leaf-spine", "kind": "leaf-spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 2,
                "host_link_rate": "400G", "fabric_link_rate": "400G", "buffer_per_port": "8MB"}

CONTRACT_KEYS = {f.name for f in fields(RunJson)} - {"details"}


def run_json(spec=None, g=None, **keys) -> RunJson:
    """A RunJson for ``spec`` (default: :data:`SMALL_DESIGN`); ``keys`` override contract keys or
    add engine-specific ones (``host_side_drops``, ``loss_recovery``, ...)."""
    spec = spec or parse_fabric_spec(SMALL_DESIGN, "tests/rundirs.py")
    g = g or build_fabric(spec)
    base = dict(engine="emu", engine_version="test", name="test-run", fabric_version=__version__,
                topology={"path": spec.source, "sha256": spec.content_sha256, "spec": spec.to_dict(),
                          "facts": fabric_facts(g)},
                workload={}, seed=1, hash_seed=1, scale_k=1.0, dilation=1.0, payload_bytes=DEFAULT_PAYLOAD_BYTES,
                t0_ns=0, tmax_ns=1_000_000_000, nodes=node_facts(g), idle_path_delay_ns=None, wall_time_s=0.0)
    contract = {k: v for k, v in keys.items() if k in CONTRACT_KEYS}
    details = {k: v for k, v in keys.items() if k not in CONTRACT_KEYS}
    return RunJson(**(base | contract), details=details)


def write_run(path: Path, tables: dict[str, pd.DataFrame], spec=None, g=None, **keys) -> Path:
    """Write run directory ``path`` (created) with ``tables`` and run.json from :func:`run_json`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    record(path, tables, run_json(spec, g, **keys))
    return path
