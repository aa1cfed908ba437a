"""The Schedule: one row per message to send, in real-world units (docs/design.md §3).

Workload generators produce it, the emulator replays it (scaled by ``k`` at emulation time),
analysis and economics read it back from ``schedule.parquet``. This module owns the column
contract so every stage agrees on it.

Columns
-------
msg_id : int64      unique, ascending with ``t_start_s`` order not required
t_start_s : float64 seconds from the start of the workload (real time)
src, dst : str      host names of the fabric graph (``h0`` ...)
bytes : int64       message size in real-world bytes (> 0)
kind : str          traffic class, one of :data:`KINDS` (declared in fabric/workloads/patterns.py)
group : str         messages that complete together (a collective step, one request's KV shards)
request_id : int64  request the message belongs to, -1 if none
step : int64        decode step / collective step / repetition index, -1 if none
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fabric.errors import RunDirError

# Both declared per pattern type in the registry. ETA_KINDS: the kinds whose completion a reported
# figure reads (requests' KV transfers, collectives' steps, incasts); their resolution (packets per
# message) is what the emulator's scale choice keeps.
from fabric.workloads.patterns import ETA_KINDS as ETA_KINDS
from fabric.workloads.patterns import KINDS as KINDS

COLUMNS = {
    "msg_id": "int64",
    "t_start_s": "float64",
    "src": "object",
    "dst": "object",
    "bytes": "int64",
    "kind": "object",
    "group": "object",
    "request_id": "int64",
    "step": "int64",
}


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly the schedule columns, in order, typed, sorted by start time.

    Missing optional columns (``group``, ``request_id``, ``step``) get neutral defaults.
    Raises ``ValueError`` naming the first violated rule.
    """
    frame = frame.copy()
    if "group" not in frame:
        frame["group"] = ""
    for col in ("request_id", "step"):
        if col not in frame:
            frame[col] = -1
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"schedule lacks columns {missing}")
    frame = frame[list(COLUMNS)].astype(COLUMNS)
    if frame["msg_id"].duplicated().any():
        raise ValueError("schedule msg_id values must be unique")
    if (frame["bytes"] <= 0).any():
        raise ValueError("schedule bytes must be positive")
    if (frame["t_start_s"] < 0).any() or not np.isfinite(frame["t_start_s"]).all():
        raise ValueError("schedule t_start_s must be finite and non-negative")
    if (frame["src"] == frame["dst"]).any():
        raise ValueError("schedule has a message whose src equals its dst")
    unknown = set(frame["kind"]) - set(KINDS)
    if unknown:
        raise ValueError(f"schedule has unknown kinds {sorted(unknown)}; valid: {', '.join(KINDS)}")
    return frame.sort_values(["t_start_s", "msg_id"], kind="stable").reset_index(drop=True)


def write_schedule(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a normalized schedule to Parquet, byte-identical for identical input."""
    normalize(frame).to_parquet(path, index=False, compression="zstd")


def read_schedule(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path}: schedule file not found")
    return normalize(pd.read_parquet(path))


def parse_window(text: str, source: str = "--window") -> tuple[float, float]:
    """``START:LENGTH`` (durations with units, e.g. ``1.4s:100ms``) -> (start_s, length_s)."""
    from fabric.errors import SpecError
    from fabric.units import UnitError, parse_duration_ns
    start, sep, length = str(text).partition(":")
    if not sep:
        raise SpecError(source, "", f"got {text!r}; give START:LENGTH, e.g. 1.4s:100ms")
    try:
        start_s = 0.0 if start.strip() in ("0", "") else parse_duration_ns(start) / 1e9
        length_s = parse_duration_ns(length) / 1e9
    except (UnitError, ValueError) as exc:
        raise SpecError(source, "", f"got {text!r}: {exc}") from None
    if length_s <= 0:
        raise SpecError(source, "", f"got {text!r}; the window's length must be positive")
    return start_s, length_s


def window(frame: pd.DataFrame, start_s: float, length_s: float, source: str = "--window") -> pd.DataFrame:
    """The messages of ``frame`` that start in [start, start + length): a slice of a long workload
    (the packet simulator at real rates takes minutes per simulated 100 ms). Times stay as they were,
    so the run's records line up with the full schedule's."""
    from fabric.errors import SpecError
    t = frame["t_start_s"]
    out = frame[(t >= start_s) & (t < start_s + length_s)].reset_index(drop=True)
    out.attrs = dict(frame.attrs)  # what the generator recorded about the whole workload
    if out.empty:
        raise SpecError(source, "", f"no message starts in [{start_s:g} s, {start_s + length_s:g} s); the schedule "
                                    f"spans {t.min():g}–{t.max():g} s")
    return out
