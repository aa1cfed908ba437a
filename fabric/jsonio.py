"""The one JSON convention of every file fabric writes (run.json, metrics.json, summary.json,
``fabric cpmt --json``, ``fabric analyze --json``); docs/design.md §3.

JSON has no infinity and no NaN, so:

* **infinity is the string ``"inf"``** (``"-inf"`` for minus infinity): a loss-aware percentile
  that falls on a lost packet, a CPMT that no token pays for. ``float("inf")`` reads it back.
* **undefined is ``null``** (NaN, no samples, not in the run).
* numpy scalars are plain numbers; dict keys are strings; anything else is its ``str()``.

Files are written atomically (a temporary file renamed over the target), so a reader never sees
half a file, and deterministically (sorted keys unless asked otherwise, fixed indent), so
re-analysing a run gives byte-identical output.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np


def plain(obj):
    """A plain-Python copy of ``obj`` that follows the convention above."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def number(value) -> float | None:
    """A figure read back from a file: ``"inf"`` → ``math.inf``, null or non-numeric → None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def dumps(obj, sort_keys: bool = True) -> str:
    return json.dumps(plain(obj), indent=2, sort_keys=sort_keys, allow_nan=False, ensure_ascii=False) + "\n"


def write_json(path: Path, obj, sort_keys: bool = True) -> None:
    """Write ``obj`` to ``path`` atomically, following the convention."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(dumps(obj, sort_keys=sort_keys))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
