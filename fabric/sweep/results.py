"""A sweep's results: one row per point, the Pareto frontier, and the files a sweep writes.

* :func:`point_row` turns a point's record (its inputs, status, metrics.json and cpmt result) into
  a flat row: the swept values, seed, engine, status and reason, η per pattern, of the decode
  pool and combined, with 95% intervals (η_KV, decode pool, combined), CPMT total with its
  interval, p99 TTFT and TPOT with their SLOs, p99 MCT and OWD per traffic class, the fidelity
  verdict.
* :func:`pareto_mask` marks the points no other point beats on CPMT and every latency at once.
* :func:`write_results` writes ``DIR/sweep.parquet``, ``DIR/sweep.md`` and ``DIR/sweep_<key>.png``.

Figures are copied from metrics.json and the cpmt result, never recomputed here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fabric import fmt
from fabric.jsonio import number

# Objectives of the Pareto frontier, all minimised: cost, and the p99 latencies the SLOs bound.
PARETO_COLUMNS = ("cpmt_total_usd_per_mtok", "ttft_p99_s", "tpot_p99_s")


def _f(value) -> float:
    v = number(value)
    return math.nan if v is None else v


def point_row(record) -> dict:
    """One flat row for a :class:`fabric.sweep.service.PointRecord`."""
    p = record.point
    row = {"point": p.hash, "role": p.role}
    row.update({k: v for k, v in p.values})
    row.update({"seed": p.seed, "engine": p.engine, "status": record.status, "reason": record.reason,
                "cached": record.cached, "wall_time_s": _f(record.wall_time_s)})
    m, c = record.metrics or {}, record.cpmt or {}
    row["scale_k"] = _f((m.get("scale") or {}).get("k"))
    eta = c.get("eta") or {}
    for name in ("kv", "moe", "tp", "decode_pool", "combined"):
        row[f"eta_{name}"] = _f(eta.get(name))
    intervals = c.get("eta_interval") or {}
    for name, col in (("kv", "eta_kv"), ("decode_pool", "eta_decode_pool"), ("combined", "eta_combined")):
        lo, hi = (intervals.get(name) or [None, None])
        row[f"{col}_lo"], row[f"{col}_hi"] = _f(lo), _f(hi)
    row["cpmt_total_usd_per_mtok"] = _f(c.get("cpmt_total_usd_per_mtok"))
    lo, hi = c.get("cpmt_total_interval") or [None, None]
    row["cpmt_total_lo"], row["cpmt_total_hi"] = _f(lo), _f(hi)
    patterns = c.get("patterns") or {}
    kv = patterns.get("kv") or {}
    row["ttft_p99_s"], row["ttft_slo_s"] = _f(kv.get("ttft_measured_p99_s")), _f(kv.get("ttft_slo_s"))
    tpots = [(patterns.get(n) or {}) for n in ("moe", "tp")]
    tpots = [d for d in tpots if d]
    # One decode step pays every exposed communication: the worst pattern's p99 TPOT is the step's.
    row["tpot_p99_s"] = max((_f(d.get("tpot_measured_p99_s")) for d in tpots), default=math.nan)
    row["tpot_slo_s"] = min((_f(d.get("tpot_slo_s")) for d in tpots), default=math.nan)
    row["cpmt_error"] = record.cpmt_error
    for kind, cls in sorted((m.get("classes") or {}).items()):
        row[f"mct_p99_ms.{kind}"] = _f((cls.get("mct_ms") or {}).get("p99"))
        row[f"owd_p99_us.{kind}"] = _f((cls.get("owd_us") or {}).get("p99"))
    row["fidelity"] = (m.get("fidelity") or {}).get("verdict")
    return row


def pareto_mask(frame: pd.DataFrame, columns=PARETO_COLUMNS) -> np.ndarray:
    """True for rows on the frontier: finite in every objective some row measures, and no other such
    row at most as large in all of them and smaller in one (all objectives minimised)."""
    cols = [c for c in columns if c in frame and np.isfinite(frame[c].to_numpy(float)).any()]
    if not cols or frame.empty:
        return np.zeros(len(frame), dtype=bool)
    x = frame[cols].to_numpy(float)
    ok = np.isfinite(x).all(axis=1)
    if "status" in frame:
        ok &= (frame["status"] == "ok").to_numpy()
    mask = np.zeros(len(frame), dtype=bool)
    idx = np.flatnonzero(ok)
    if not idx.size:
        return mask
    y = x[idx]
    le = (y[:, None, :] <= y[None, :, :]).all(axis=2)     # le[j, i]: j at most i everywhere
    lt = (y[:, None, :] < y[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)
    mask[idx[~dominated]] = True
    return mask


def results_frame(records, keys: list[str]) -> pd.DataFrame:
    """Rows of every record, swept keys first, with the ``pareto`` column."""
    frame = pd.DataFrame([point_row(r) for r in records])
    if frame.empty:
        return frame
    for key in keys:
        if key not in frame:
            frame[key] = None
        # Parquet wants one type per column; a key swept over "1MB" and 2_000_000 is kept as text.
        values = [v for v in frame[key] if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if len({type(v) for v in values}) > 1 or any(isinstance(v, (list, dict)) for v in values):
            frame[key] = frame[key].map(lambda v: None if v is None else str(v))
    frame["pareto"] = pareto_mask(frame)
    front = ["point", "role", *keys, "seed", "engine", "status", "reason", "pareto"]
    return frame[front + [c for c in frame.columns if c not in front]]


# --------------------------------------------------------------------------------------------
# sweep.md
# --------------------------------------------------------------------------------------------

def _ms(v) -> str:
    return fmt.fixed(None if v is None or (isinstance(v, float) and math.isnan(v)) else v, 3, scale=1e3,
                     none="-")


def _interval(v, lo, hi, show) -> str:
    if any(isinstance(x, float) and math.isnan(x) for x in (lo, hi)) or lo == hi:
        return show(v)
    return f"{show(v)} [{show(lo)}–{show(hi)}]"


def _nan_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def markdown(frame: pd.DataFrame, keys: list[str], info: dict, searches: list[dict], plots: list[Path]) -> str:
    """sweep.md: what was swept, one table row per point, the Pareto frontier, failures, searches."""
    lines = [f"# Sweep {info['name']}", ""]
    if info.get("description"):
        lines += [info["description"], ""]
    lines += [f"* sweep file: `{info['source']}`" + (f"; follows {info['follows']}" if info.get("follows") else ""),
              f"* base design: `{info['design']}`; base workload: `{info['workload']}`",
              f"* engine(s): {', '.join(info['engines'])}; seeds: {info['seeds']}; executor: {info['executor']}",
              f"* cost file: `{info['costs']}`" if info.get("costs") else "* costs: catalog defaults",
              f"* points: {info['counts']}" + (" — interrupted" if info.get("interrupted") else ""),
              "* η and CPMT: `fabric cpmt` of each run (95% bootstrap interval within the run in brackets); "
              "p99 TTFT/TPOT from its patterns; MCT/OWD p99 per class from metrics.json", ""]
    classes = sorted({c.split(".", 1)[1] for c in frame.columns if c.startswith("mct_p99_ms.")})
    headers = ["point", *keys, "seed", "engine", "status", "η", "CPMT $/Mtok", "TTFT p99 ms", "TPOT p99 ms",
               *[f"MCT p99 ms {k}" for k in classes], *[f"OWD p99 µs {k}" for k in classes], "fidelity", "Pareto"]
    rows = []
    for _, r in frame.iterrows():
        rows.append([r["point"][:8], *[_nan_none(r.get(k)) for k in keys], r["seed"], r["engine"], r["status"],
                     _interval(r["eta_combined"], r["eta_combined_lo"], r["eta_combined_hi"],
                               lambda v: fmt.ratio(_nan_none(v), none="-")),
                     _interval(r["cpmt_total_usd_per_mtok"], r["cpmt_total_lo"], r["cpmt_total_hi"],
                               lambda v: fmt.usd(_nan_none(v), 4, none="-")),
                     _ms(r["ttft_p99_s"]), _ms(r["tpot_p99_s"]),
                     *[fmt.fixed(_nan_none(r.get(f"mct_p99_ms.{k}")), 3, none="-") for k in classes],
                     *[fmt.fixed(_nan_none(r.get(f"owd_p99_us.{k}")), 1, none="-") for k in classes],
                     r.get("fidelity") or "-", "✓" if r["pareto"] else ""])
    lines += ["## Points", ""] + _md_table(headers, rows) + [""]
    front = frame[frame["pareto"]] if "pareto" in frame else frame.iloc[0:0]
    objectives = [c for c in PARETO_COLUMNS if c in frame and np.isfinite(frame[c].to_numpy(float)).any()]
    lines += ["## Pareto frontier", "",
              f"Points no other point beats on {', '.join(objectives) or 'anything'} at once (all minimised):", ""]
    if front.empty:
        lines += ["none (no finished point has a CPMT and a p99 latency)", ""]
    for _, r in front.sort_values("cpmt_total_usd_per_mtok").iterrows():
        vals = ", ".join(f"{k}={_nan_none(r.get(k))}" for k in keys) or "base"
        lines.append(f"* `{r['point'][:8]}` {vals}, seed {r['seed']}, {r['engine']}: CPMT "
                     f"{fmt.usd(_nan_none(r['cpmt_total_usd_per_mtok']), 4)}/Mtok, TTFT p99 {_ms(r['ttft_p99_s'])} ms, "
                     f"TPOT p99 {_ms(r['tpot_p99_s'])} ms")
    lines.append("")
    failed = frame[frame["status"] != "ok"]
    if not failed.empty:
        lines += ["## Points that did not finish", ""]
        lines += [f"* `{r['point'][:8]}` ({', '.join(f'{k}={_nan_none(r.get(k))}' for k in keys) or 'base'}, seed "
                  f"{r['seed']}, {r['engine']}): {r['status']} — {r['reason']}" for _, r in failed.iterrows()]
        lines.append("")
    if searches:
        lines += ["## Highest rate within the SLOs (find: max_rate_within_slo)", "",
                  "Bisection of the key over its range; a rate meets the SLOs when p99 TTFT ≤ its SLO and every "
                  "decode pattern's p99 TPOT ≤ its SLO (fabric cpmt).", ""]
        headers = ["design point", "seed", "engine", "key", "max rate within SLO", "η there", "CPMT there $/Mtok",
                   "probes (value: met?)", "note"]
        rows = [[s["label"], s["seed"], s["engine"], s["key"], fmt.figure(s["found"], none="none in range"),
                 fmt.ratio(s["eta_combined"], none="-"), fmt.usd(s["cpmt_total_usd_per_mtok"], 4, none="-"),
                 ", ".join(f"{v:g}: {'yes' if ok else 'no'}" for v, ok in sorted(s["probes"].items())), s["note"]]
                for s in searches]
        lines += _md_table(headers, rows) + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------

def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")


def plot_key(frame: pd.DataFrame, key: str, out: Path, keys: list[str] = ()) -> Path | None:
    """``sweep_<key>.png``: CPMT and p99 latencies of every finished point against one swept key
    (values in the order first seen, or ascending when numeric; the other swept ``keys`` vary
    within each x position and label the CPMT points)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[frame["status"] == "ok"]
    if ok.empty or key not in ok:
        return None
    order = list(dict.fromkeys(str(v) for v in frame[key]))
    numeric = pd.to_numeric(frame[key], errors="coerce")
    if numeric.notna().all():
        order = [str(v) for v in sorted(dict.fromkeys(frame[key]), key=float)]
    x = ok[key].map(lambda v: order.index(str(v))).to_numpy(float)
    others = [c for c in ok.columns if c.startswith("mct_p99_ms.")]
    lat = [("ttft_p99_s", "TTFT p99", 1e3), ("tpot_p99_s", "TPOT p99", 1e3)]
    lat = [(c, label, s) for c, label, s in lat if np.isfinite(ok[c].to_numpy(float)).any()]
    lat += [(c, f"MCT p99 {c.split('.', 1)[1]}", 1.0) for c in others]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    jitter = np.linspace(-0.12, 0.12, max(1, len(ok)))[np.argsort(np.argsort(ok.index.to_numpy()))]
    y = ok["cpmt_total_usd_per_mtok"].to_numpy(float)
    lo, hi = ok["cpmt_total_lo"].to_numpy(float), ok["cpmt_total_hi"].to_numpy(float)
    err = np.where(np.isfinite(lo) & np.isfinite(hi), np.vstack([y - lo, hi - y]), 0.0)
    a.errorbar(x + jitter, y, yerr=np.clip(err, 0, None), fmt="o", capsize=3)
    if "pareto" in ok:
        front = ok["pareto"].to_numpy(bool)
        a.scatter((x + jitter)[front], y[front], s=120, facecolors="none", edgecolors="tab:red", label="Pareto")
        if front.any():
            a.legend(loc="best", fontsize=8)
    others_swept = [k for k in keys if k != key and k in ok]
    if others_swept and len(ok) <= 16:  # say which point is which when a few share an x position
        for xi, yi, (_, r) in zip(x + jitter, y, ok.iterrows()):
            a.annotate(", ".join(str(r[k]) for k in others_swept), (xi, yi), fontsize=7, rotation=30,
                       xytext=(3, 3), textcoords="offset points")
    a.set_ylabel("CPMT total, $/Mtok")
    for col, label, scale in lat:
        b.plot(x + jitter, ok[col].to_numpy(float) * scale, "o", label=label)
    b.set_ylabel("p99, ms")
    if lat:
        b.legend(loc="best", fontsize=8)
        shown = np.concatenate([ok[c].to_numpy(float) * s for c, _, s in lat])
        shown = shown[np.isfinite(shown) & (shown > 0)]
        if shown.size and shown.max() / shown.min() > 50:  # classes orders of magnitude apart
            b.set_yscale("log")
    for ax in (a, b):
        ax.set_xticks(range(len(order)), order)
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    fig.suptitle(f"CPMT and p99 against {key}", fontsize=10)
    fig.tight_layout()
    path = Path(out) / f"sweep_{_slug(key)}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(frame: pd.DataFrame, out: Path, keys: list[str], info: dict, searches: list[dict]) -> dict:
    """``sweep.parquet``, plots and ``sweep.md`` in ``out``; returns their paths."""
    out = Path(out)
    parquet = out / "sweep.parquet"
    tmp = out / ".sweep.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(parquet)
    plots = [p for p in (plot_key(frame, k, out, keys) for k in keys) if p is not None]
    md = out / "sweep.md"
    md.write_text(markdown(frame, keys, info, searches, plots))
    return {"parquet": parquet, "md": md, "plots": plots}
