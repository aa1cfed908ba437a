"""The one recorder: every engine hands its tables and its :class:`RunJson` here, and the run
directory appears under the user's name only when it is complete.

The run is staged in a hidden sibling directory (``.NAME.partial-XXXX``) and renamed into place in
one step at the end; a failure, a crash of the engine or Ctrl-C removes the staging directory and
any parent directory the run created, so nothing half-written is left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pandas as pd

from fabric.errors import SpecError
from fabric.jsonio import write_json
from fabric.rundir.runjson import RunJson, to_record
from fabric.rundir.tables import write_table


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``--out`` that already holds something (before any work starts)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise SpecError(str(out_dir), "--out", "exists and is not an empty directory; choose a new one or remove it")


@contextmanager
def staged_run_dir(out_dir: Path):
    """Yield a staging directory that becomes ``out_dir`` when the block completes."""
    out_dir = Path(out_dir).absolute()
    check_out_dir(out_dir)
    created = []  # parents this run creates, outermost last
    parent = out_dir.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(stage, 0o777 & ~umask)  # mkdtemp makes it private; a run directory is not
    try:
        yield stage
        check_out_dir(out_dir)  # something may have appeared there during the run
        if out_dir.exists():
            out_dir.rmdir()
        os.rename(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for path in created:
            try:
                path.rmdir()
            except OSError:
                break
        raise


def record(run_dir: Path, tables: dict[str, pd.DataFrame], run: RunJson) -> None:
    """Write the tables and run.json (last) into ``run_dir``.

    ``tables`` maps names of :data:`fabric.rundir.tables.FILES` (and ``schedule``) to frames.
    When the engine does not state its idle path delay, it is the noise probe's median one-way
    delay (docs/metrics.md), computed here once for every reader.
    """
    from fabric.analysis.metrics import idle_path_delay_ns
    from fabric.schedule import write_schedule
    run_dir = Path(run_dir)
    for name, frame in tables.items():
        if name == "schedule":
            write_schedule(frame, run_dir / "schedule.parquet")
            if frame.attrs.get("requests"):
                write_table(run_dir, "requests", pd.DataFrame(frame.attrs["requests"]))
        else:
            write_table(run_dir, name, frame)
    if run.idle_path_delay_ns is None and "noise" in tables and len(tables["noise"]):
        delay = float(idle_path_delay_ns(tables["noise"]))
        run = replace(run, idle_path_delay_ns=delay if delay == delay else None)
    write_json(run_dir / "run.json", to_record(run))
