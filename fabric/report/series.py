"""The distributions and time series behind the report's plots, read from run directories.

Figures in the tables come from metrics.json; the plots need the samples themselves:
one-way delay per packet (packets.parquet, lost packets counted as infinitely late, as in
RFC 7679), slowdown per message (recomputed with the same functions as metrics.json), and
per-interval utilization of every fabric link (links.parquet). Everything is in real time;
utilization is a ratio, so the scale factor cancels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fabric.analysis import metrics as M
from fabric.analysis.run_metrics import completions, read_frames

MAX_CURVE_POINTS = 1500


def owd_by_class(run_dir: Path, tmax_ns: int | None = None) -> dict[str, tuple[np.ndarray, int]]:
    """Per traffic class: received one-way delays in µs (sorted) and the count of lost packets."""
    run_dir = Path(run_dir)
    pk = pd.read_parquet(run_dir / "packets.parquet", columns=["msg_id", "tx_ns", "rx_ns"])
    msgs = pd.read_parquet(run_dir / "messages.parquet", columns=["msg_id", "kind"])
    kind = pd.Series(msgs["kind"].astype(str).to_numpy(), index=msgs["msg_id"].to_numpy())
    k = kind.reindex(pk["msg_id"].to_numpy()).to_numpy(dtype=object)
    owd = (pk["rx_ns"].to_numpy(np.int64) - pk["tx_ns"].to_numpy(np.int64))
    received = pk["rx_ns"].to_numpy(np.int64) >= 0
    if tmax_ns is not None:
        received &= owd <= int(tmax_ns)
    out = {}
    for name in sorted({str(x) for x in k if x is not None and x == x}):
        sel = k == name
        d = np.sort(owd[sel & received]) / 1e3
        out[name] = (d, int(np.count_nonzero(sel & ~received)))
    return out


def ccdf_points(sorted_values: np.ndarray, n_lost: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x, P(X > x)) with lost samples counted as +inf, thinned to ~MAX_CURVE_POINTS points
    spaced evenly in log(1 − F) so the tail keeps its resolution."""
    n = sorted_values.size + n_lost
    if sorted_values.size == 0:
        return np.empty(0), np.empty(0)
    ranks = np.arange(1, sorted_values.size + 1)
    p = (n - ranks) / n
    if sorted_values.size > MAX_CURVE_POINTS:
        # from the tail: 1, 2, ..., n samples above, log spaced
        above = np.unique(np.round(np.logspace(0, np.log10(sorted_values.size), MAX_CURVE_POINTS)).astype(np.int64))
        idx = np.clip(sorted_values.size - above, 0, sorted_values.size - 1)
        idx = np.unique(np.r_[0, idx, sorted_values.size - 1])
        return sorted_values[idx], p[idx]
    return sorted_values, p


def cdf_points(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, P(X ≤ x)), thinned to ~MAX_CURVE_POINTS points."""
    n = sorted_values.size
    if n == 0:
        return np.empty(0), np.empty(0)
    p = np.arange(1, n + 1) / n
    if n > MAX_CURVE_POINTS:
        idx = np.unique(np.r_[np.linspace(0, n - 1, MAX_CURVE_POINTS // 2).astype(np.int64),
                              n - np.unique(np.round(np.logspace(0, np.log10(n), MAX_CURVE_POINTS // 2))).astype(np.int64)])
        idx = idx[(idx >= 0) & (idx < n)]
        return sorted_values[idx], p[idx]
    return sorted_values, p


def slowdown_by_class(run_dir: Path) -> dict[str, np.ndarray]:
    """Per traffic class: message slowdowns (MCT / ideal MCT, docs/metrics.md), sorted.

    The same computation as metrics.json (messages with lost packets use the loss-recovery model).
    """
    comp, prep = completions(read_frames(Path(run_dir)))
    msgs = prep["messages"]
    kinds = msgs["kind"].astype(str).to_numpy(dtype=object)
    sd = comp["slowdown"].to_numpy()
    out = {}
    for name in sorted(set(kinds)):
        v = sd[kinds == name]
        out[name] = np.sort(v[np.isfinite(v)])
    return out


def fabric_utilization(run_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """Fabric links × time: (row labels ``node→peer``, interval end times in s since t0, utilization).

    Utilization per sampling interval = delivered bits / (configured rate × interval). Only
    ``kind == 'fabric'`` port queues (edge ↔ spine/NCF); None when the run has no such counters.
    """
    from fabric.rundir import read_run_json
    path = Path(run_dir) / "links.parquet"
    if not path.exists():
        return None
    links = pd.read_parquet(path)
    f = links[(links["kind"] == "fabric") & (links["queue"].fillna("port") == "port")]
    if f.empty:
        return None
    iv = M.link_intervals(f)
    if iv.empty:
        return None
    t0 = int(read_run_json(Path(run_dir)).get("t0_ns") or iv["t_ns"].min())
    iv = iv.assign(label=iv["node"].astype(str) + "→" + iv["peer"].astype(str))
    times = np.sort(iv["t_ns"].unique())
    labels = sorted(iv["label"].unique(), key=_natural_key)
    grid = iv.pivot_table(index="label", columns="t_ns", values="util", aggfunc="mean")
    grid = grid.reindex(index=labels, columns=times)
    return labels, (times - t0) / 1e9, grid.to_numpy(dtype=np.float64)


def _natural_key(label: str):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label)]
