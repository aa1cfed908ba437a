"""A sweep's results: one row per point, the Pareto frontier, and the files a sweep writes.

* :func:`point_row` turns a point's record (its inputs, status, metrics.json and cpmt result) into
  a flat row: the swept values, seed, engine, status and reason, η per pattern, of the decode
  pool and combined, with 95% intervals (η_KV, decode pool, combined), CPMT total with its
  interval, p99 TTFT and TPOT with their SLOs, p99 MCT and OWD per traffic class, the fidelity
  verdict.
* :func:`pareto_mask` marks the points no other point beats on CPMT and every latency at once.
* :func:`kpi_columns` computes the sweep file's ``kpis:`` (draft-calabria-bmwg-ai-fabric-inference-bench
  KPIs by the draft's names) per point, optionally divided by a baseline point's.
* :func:`write_results` writes ``DIR/sweep.parquet``, ``DIR/sweep.md`` and ``DIR/sweep_<key>.png``.

Figures are copied from metrics.json and the cpmt result, never recomputed here. The KPIs that
metrics.json does not hold (P95, per-pair and per-group rates) are computed from the run
directory's tables through :func:`fabric.analysis.run_metrics.completions`, the same completion
model metrics.json comes from.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fabric import fmt
from fabric.analysis.metrics import jain_index, percentiles
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
    # The swept values exactly (a column may hold them as text): what a KPI baseline is matched on.
    row["values_json"] = values_json(dict(p.values))
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
    # A request's KV shards all in (the fabric's part of TTFT): what the draft calls TTFT_fabric.
    row["ttft_fabric_p50_s"] = _f(kv.get("kv_completion_measured_p50_s"))
    row["ttft_fabric_p99_s"] = _f(kv.get("kv_completion_measured_p99_s"))
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


def values_json(values: dict) -> str:
    """Canonical JSON of a point's swept values (key order and YAML spelling do not matter)."""
    return json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# KPIs (the sweep file's kpis:, fabric.sweep.spec.MEASURES)
# --------------------------------------------------------------------------------------------

# metrics.json's key of each percentile statistic
_STAT_KEYS = {"p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99", "p99.9": "p99_9", "max": "max", "mean": "mean"}


class _Run:
    """One point's run directory, read as far as its KPIs need: metrics.json and run.json always,
    the per-message completion table only for what metrics.json does not hold."""

    def __init__(self, run_dir: Path, row):
        self.dir = Path(run_dir)
        self.row = row
        self.metrics = json.loads((self.dir / "metrics.json").read_text())
        self.run = json.loads((self.dir / "run.json").read_text())
        self._comp = None

    def completion(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(messages sorted by msg_id, their completion table) — fabric.analysis.run_metrics.completions."""
        if self._comp is None:
            from fabric.analysis.run_metrics import completions, read_frames
            comp, prep = completions(read_frames(self.dir))
            self._comp = (prep["messages"], comp)
        return self._comp

    def class_mct_ns(self, cls: str) -> np.ndarray:
        msgs, comp = self.completion()
        v = comp["mct_ns"].to_numpy(np.float64)[msgs["kind"].astype(str).to_numpy() == cls]
        return v[np.isfinite(v)]

    def class_groups(self, cls: str) -> pd.DataFrame:
        """Groups of the class: completion_ns and bytes (the members' real bytes)."""
        from fabric.analysis.completion import group_completion
        msgs, comp = self.completion()
        kinds = msgs["kind"].astype(str).to_numpy(dtype=object)
        g = group_completion(msgs["group"].to_numpy(dtype=object), kinds, msgs["t_sched_ns"].to_numpy(),
                             comp["done_ns"].to_numpy(), comp["recovered"].to_numpy())
        g = g[g["kind"] == cls].copy()
        g["bytes"] = msgs.groupby(msgs["group"].astype(object))["bytes"].sum().reindex(g.index).to_numpy(np.float64)
        return g

    def uplinks(self) -> list[dict]:
        """metrics.json entries of edge → core port queues, of edge switches whose uplinks sent anything."""
        tiers = {n: d.get("tier") for n, d in (self.run.get("nodes") or {}).items()}
        ups = [e for e in (self.metrics.get("links") or {}).values()
               if e.get("queue", "port") == "port" and tiers.get(e.get("node")) == "edge"
               and tiers.get(e.get("peer")) == "core"]
        sent = {}
        for e in ups:
            sent[e["node"]] = sent.get(e["node"], 0.0) + (_f(e.get("tx_bytes")) or 0.0)
        return [e for e in ups if sent[e["node"]] > 0]


def _stat(stats: dict, stat: str, scale: float) -> float:
    return _f((stats or {}).get(_STAT_KEYS[stat])) * scale


def _nearest_rank(values: np.ndarray, stat: str) -> float:
    if not values.size:
        return math.nan
    if stat == "max":
        return float(values.max())
    if stat == "mean":
        return float(values.mean())
    level = int(round(float(stat[1:]) * 1000))
    return percentiles(values, [("q", level)])["q"]


def measure(kpi, run: _Run) -> float:
    """The value of ``kpi``'s measure (fabric.sweep.spec.MEASURES) for one finished point."""
    family, cls, stat = kpi.family, kpi.cls, kpi.stat
    m = run.metrics
    cm = (m.get("classes") or {}).get(cls) or {} if cls else {}
    if family == "mct_us":
        if stat == "p95":   # metrics.json keeps p50/p90/p99/p99.9: P95 from the completion table
            return _nearest_rank(run.class_mct_ns(cls), stat) / 1e3
        return _stat(cm.get("mct_ms"), stat, 1e3) if cm else math.nan
    if family == "mct_spread_us":
        s = cm.get("mct_ms") or {}
        return (_f(s.get("p99")) - _f(s.get("p50"))) * 1e3
    if family == "group_us":
        if stat == "p95":
            c = run.class_groups(cls)["completion_ns"].to_numpy(np.float64)
            return _nearest_rank(c[np.isfinite(c)], stat) / 1e3
        return _stat(((m.get("groups") or {}).get(cls) or {}).get("completion_ms"), stat, 1e3)
    if family == "group_gbyte_s":
        g = run.class_groups(cls)
        ok = g["completion_ns"].to_numpy(np.float64) > 0
        return float((g["bytes"].to_numpy(np.float64)[ok] / g["completion_ns"].to_numpy(np.float64)[ok]).mean()) \
            if ok.any() else math.nan
    if family == "goodput_gbyte_s":
        return _f(cm.get("goodput_bps")) / 8e9
    if family == "loss_ppm":
        return _f(cm.get("loss_ratio")) * 1e6
    fair = (m.get("fairness") or {}).get(cls) or {} if cls else {}
    if family == "jain_dst":
        return _f(fair.get("jain"))
    if family == "maxmin_dst":
        hi, lo = _f(fair.get("max_goodput_bps")), _f(fair.get("min_goodput_bps"))
        return math.inf if lo == 0 and hi > 0 else hi / lo if lo > 0 else math.nan
    if family == "jain_pair":
        msgs, comp = run.completion()
        sel = msgs["kind"].astype(str).to_numpy() == cls
        f = pd.DataFrame({"src": msgs["src"].astype(str).to_numpy()[sel], "dst": msgs["dst"].astype(str).to_numpy()[sel],
                          "bytes": msgs["bytes"].to_numpy(np.float64)[sel], "mct": comp["mct_ns"].to_numpy(np.float64)[sel]})
        f = f[np.isfinite(f["mct"])]
        pair = f.groupby(["src", "dst"])[["bytes", "mct"]].sum()
        return jain_index((pair["bytes"] / pair["mct"]).to_numpy()) if len(pair) else math.nan
    if family in ("uplink_util_pct", "uplink_jain"):
        util = np.array([_f((e.get("utilization") or {}).get("mean")) for e in run.uplinks()], dtype=np.float64)
        util = util[np.isfinite(util)]
        if not util.size:
            return math.nan
        if family == "uplink_jain":
            return jain_index(util)
        return float({"max": util.max, "min": util.min, "mean": util.mean}[stat]()) * 100
    if family == "buffer_peak_pct":
        tiers = {n: d.get("tier") for n, d in (run.run.get("nodes") or {}).items()}
        buffer = _f(((run.run.get("topology") or {}).get("spec") or {}).get("buffer_per_port_bytes"))
        peaks = [_f((e.get("backlog_bytes") or {}).get("max")) for e in (m.get("links") or {}).values()
                 if e.get("queue", "port") == "port" and tiers.get(e.get("node")) in ("edge", "core")]
        return max(peaks) / buffer * 100 if peaks and buffer > 0 else math.nan
    column = {"ttft_ms": "ttft_p99_s", "tpot_ms": "tpot_p99_s"}.get(family) or f"ttft_fabric_{stat}_s"
    return _f(run.row.get(column)) * 1e3


def kpi_columns(frame: pd.DataFrame, out: Path, kpis) -> dict[str, list[float]]:
    """``kpi.<label>`` -> one value per row of ``frame`` (NaN where the point did not finish or its run
    has no such figure). A KPI with a baseline is its measure at the point ÷ at the baseline point
    (or the inverse), the baseline being the finished grid point of the same seed and engine whose
    swept values are the point's with the baseline's written over them (``points[i]``: that point)."""
    raw: dict[str, list[float]] = {k.label: [] for k in kpis}
    for _, row in frame.iterrows():
        run = None
        if row.get("status") == "ok":
            try:
                run = _Run(Path(out) / "points" / row["point"], row)
            except (OSError, ValueError):
                run = None
        for k in kpis:
            raw[k.label].append(measure(k, run) if run is not None else math.nan)
    out_cols: dict[str, list[float]] = {}
    index = {(r["values_json"], r["seed"], r["engine"]): i for i, r in frame.reset_index(drop=True).iterrows()
             if r.get("role") == "grid" and r.get("status") == "ok"}
    for k in kpis:
        values = raw[k.label]
        if k.baseline is None:
            out_cols[f"kpi.{k.label}"] = values
            continue
        ratios = []
        for i, r in frame.reset_index(drop=True).iterrows():
            if k.baseline[0] == "point":
                wanted = dict(k.baseline[1])
            else:
                wanted = dict(json.loads(r["values_json"]))
                for key, v in k.baseline[1]:
                    if v is None:
                        wanted.pop(key, None)
                    else:
                        wanted[key] = v
            j = index.get((values_json(wanted), r["seed"], r["engine"]))
            this, base = values[i], (values[j] if j is not None else math.nan)
            num, den = (this, base) if k.ratio == "this/baseline" else (base, this)
            ratios.append(num / den if den and np.isfinite(den) and np.isfinite(num) else math.nan)
        out_cols[f"kpi.{k.label}"] = ratios
    return out_cols


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


def _show(values: dict, key: str) -> str:
    """A swept value for a table: ``base`` where the point leaves the key at the base file's value,
    a list of named mappings (a replaced pattern list) by its names."""
    if key not in values:
        return "base"
    v = values[key]
    if isinstance(v, list) and v and all(isinstance(i, dict) and "name" in i for i in v):
        return "[" + ", ".join(str(i["name"]) for i in v) + "]"
    return str(v)


def _row_values(r) -> dict:
    try:
        return json.loads(r["values_json"])
    except (KeyError, TypeError, ValueError):
        return {}


def _kpi_cell(v, unit: str) -> str:
    # Dimensionless indices and ratios keep 4 decimals (a Jain index of 0.9995 is not 1).
    return fmt.ratio(v, none="-") if unit in ("", "×") else fmt.figure(v, none="-")


def kpi_markdown(frame: pd.DataFrame, keys: list[str], kpis, follows: str) -> list[str]:
    """The "KPIs (<follows>)" section: one row per point, one column per KPI by the draft's name,
    then what each column is computed from."""
    from fabric.sweep.spec import DRAFT_KPIS, MEASURES
    lines = [f"## KPIs ({follows})" if follows else "## KPIs", "",
             "Each KPI by the draft's name, computed from the point's run directory (metrics.json, fabric cpmt, "
             "or the run's tables); `-`: the point did not finish or its run has no such figure. Columns "
             "`kpi.<name>` of sweep.parquet.", ""]
    headers = ["point", *keys, "seed", "engine", *[k.label for k in kpis]]
    rows = []
    for _, r in frame.iterrows():
        values = _row_values(r)
        rows.append([r["point"][:8], *[_show(values, k) for k in keys], r["seed"], r["engine"],
                     *[_kpi_cell(r.get(f"kpi.{k.label}"), k.unit) for k in kpis]])
    lines += _md_table(headers, rows) + [""]
    for k in kpis:
        what = f"`{k.measure}`: {MEASURES[k.family][3]}"
        if k.cls:
            what += f" (class {k.cls})"
        if k.baseline is not None:
            base = ", ".join(f"{key}={_show(dict(k.baseline[1]), key)}" for key, _ in k.baseline[1])
            who = "that point" if k.baseline[0] == "point" else "the point with these values"
            what += f"; {k.ratio.replace('this', 'the point')}, baseline {who}: {base}"
        lines.append(f"* **{k.label}** (draft {DRAFT_KPIS[k.kpi]}): {what}")
    return lines + [""]


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def markdown(frame: pd.DataFrame, keys: list[str], info: dict, searches: list[dict], plots: list[Path],
             kpis=()) -> str:
    """sweep.md: what was swept, the KPIs, one table row per point, the Pareto frontier, failures,
    searches."""
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
    if kpis:
        lines += kpi_markdown(frame, keys, kpis, info.get("follows") or "")
    classes = sorted({c.split(".", 1)[1] for c in frame.columns if c.startswith("mct_p99_ms.")})
    headers = ["point", *keys, "seed", "engine", "status", "η", "CPMT $/Mtok", "TTFT p99 ms", "TPOT p99 ms",
               *[f"MCT p99 ms {k}" for k in classes], *[f"OWD p99 µs {k}" for k in classes], "fidelity", "Pareto"]
    rows = []
    for _, r in frame.iterrows():
        values = _row_values(r)
        rows.append([r["point"][:8], *[_show(values, k) for k in keys], r["seed"], r["engine"], r["status"],
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
        vals = ", ".join(f"{k}={_show(_row_values(r), k)}" for k in keys) or "base"
        lines.append(f"* `{r['point'][:8]}` {vals}, seed {r['seed']}, {r['engine']}: CPMT "
                     f"{fmt.usd(_nan_none(r['cpmt_total_usd_per_mtok']), 4)}/Mtok, TTFT p99 {_ms(r['ttft_p99_s'])} ms, "
                     f"TPOT p99 {_ms(r['tpot_p99_s'])} ms")
    lines.append("")
    failed = frame[frame["status"] != "ok"]
    if not failed.empty:
        lines += ["## Points that did not finish", ""]
        lines += [f"* `{r['point'][:8]}` ({', '.join(f'{k}={_show(_row_values(r), k)}' for k in keys) or 'base'}, seed "
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


def sweep_kpis(info: dict) -> tuple:
    """The sweep file's ``kpis:``: ``info["kpis"]`` when the caller passes them, else read again from
    the sweep file (``info["source"]``: the service passes the file, not its parsed KPI list)."""
    if "kpis" in info:
        return tuple(info["kpis"] or ())
    from fabric.errors import FabricError
    from fabric.sweep.spec import load_sweep
    try:
        return load_sweep(info["source"]).kpis if info.get("source") else ()
    except (FabricError, OSError):
        return ()   # the file changed or went since the sweep ran: the rest of the results still stand


def write_results(frame: pd.DataFrame, out: Path, keys: list[str], info: dict, searches: list[dict]) -> dict:
    """``sweep.parquet`` (with a ``kpi.<name>`` column per KPI of the sweep file), plots and
    ``sweep.md`` in ``out``; returns their paths."""
    out = Path(out)
    kpis = sweep_kpis(info)
    for column, values in (kpi_columns(frame, out, kpis) if kpis else {}).items():
        frame[column] = values
    parquet = out / "sweep.parquet"
    tmp = out / ".sweep.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(parquet)
    plots = [p for p in (plot_key(frame, k, out, keys) for k in keys) if p is not None]
    md = out / "sweep.md"
    md.write_text(markdown(frame, keys, info, searches, plots, kpis))
    return {"parquet": parquet, "md": md, "plots": plots}
