"""One point on a worker: build it from its mappings, run the engine, analyse, hand the run back.

:func:`run_point` is what the executor sends to a worker. It carries everything the point needs
(mappings, seed, engine, where the sweep's DIR is), raises nothing but KeyboardInterrupt (Ctrl-C
in the synchronous executor stops the sweep), and returns an outcome dict:
``status`` ok or failed, ``reason``, ``wall_time_s``, ``worker`` (host name), and ``archive``.

Where the run directory goes: the client writes a random token to ``DIR/.sweep-token``. A worker
that reads the same token there shares the client's filesystem and writes
``DIR/points/<hash>/`` itself (staged and renamed into place by the engine's recorder). Any other
worker runs into a local temporary directory and returns it as a gzipped tar (``archive``), which
:func:`unpack` puts in place on the client.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fabric.errors import FabricError
from fabric.sweep.plan import Point

TOKEN_FILE = ".sweep-token"


@dataclass(frozen=True)
class PointTask:
    point: Point
    design_source: str        # base design path (names the design in run.json and errors)
    workload_source: str
    out_root: str             # the sweep's DIR as the client sees it
    token: str                # content of DIR/.sweep-token
    sweep_name: str

    @property
    def run_dir(self) -> Path:
        return points_dir(Path(self.out_root)) / self.point.hash


def points_dir(out: Path) -> Path:
    return Path(out) / "points"


def shares_filesystem(out_root: str, token: str) -> bool:
    try:
        return (Path(out_root) / TOKEN_FILE).read_text().strip() == token
    except OSError:
        return False


def run_point(task: PointTask, runner=None) -> dict:
    """Run one point (see the module docstring). ``runner``: None (each engine's real runner), one
    runner for every engine, or a mapping of engine name to runner (missing: the real one)."""
    from fabric.analysis.run_metrics import write_metrics
    from fabric.sweep.engines import default_runner, options_for
    from fabric.sweep.plan import materialize
    from fabric.workloads import workload_facts

    started = time.time()
    p = task.point
    outcome = {"hash": p.hash, "status": "failed", "reason": None, "archive": None, "worker": socket.gethostname()}
    local = None if shares_filesystem(task.out_root, task.token) else Path(tempfile.mkdtemp(prefix="fabric-sweep-"))
    run_dir = task.run_dir if local is None else local / p.hash
    try:
        spec, g, workload, schedule = materialize(p, task.design_source, task.workload_source)
        extra = {"workload": workload_facts(workload, schedule) | {"path": task.workload_source},
                 "sweep": {"name": task.sweep_name, "point": p.hash, "values": {k: v for k, v in p.values}}}
        options = options_for(p.engine, seed=p.seed, hash_seed=spec.load_balancing.hash_seed, scale=p.scale,
                              name=p.hash, extra=extra)
        if isinstance(runner, dict):
            runner = runner.get(p.engine)
        (runner or default_runner(p.engine))(spec, g, schedule, run_dir, options, progress=None)
        write_metrics(run_dir)
        if local is not None:
            outcome["archive"] = _pack(run_dir)
        outcome["status"] = "ok"
    except Exception as exc:  # the point's reason; the sweep goes on with the others
        outcome["reason"] = str(exc) if isinstance(exc, FabricError) else f"{type(exc).__name__}: {exc}"
    finally:
        if local is not None:
            shutil.rmtree(local, ignore_errors=True)
    outcome["wall_time_s"] = round(time.time() - started, 3)
    return outcome


def _pack(run_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(run_dir, arcname=".")
    return buf.getvalue()


def unpack(archive: bytes, run_dir: Path) -> None:
    """Put a returned run directory in place: extracted beside it, then renamed (never half there)."""
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.partial-", dir=run_dir.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            try:
                tar.extractall(stage, filter="data")
            except TypeError:  # a Python without extraction filters
                tar.extractall(stage)
        os.replace(stage, run_dir)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
