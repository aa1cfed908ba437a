"""The comparison summary: run directories grouped by design → one stable dict (``summary.json``).

This module owns what a comparison *says*: per design its runs and their status, the headline
figures (mean over the repeats that finished), their spread (relative standard deviation across
repeats), η, CPMT, the fidelity verdict; and across designs the break-even rule (docs/economics.md §1,
via :func:`fabric.economics.compare_break_even`) and which differences exceed the spread.
Every key is documented in ``docs/summary-json.md``; units are in the key names.

Value conventions (the same as metrics.json): infinity is the string ``"inf"`` (e.g. a
loss-aware OWD percentile that falls on a lost packet); a value that could not be computed is
``null`` and, for headline figures, ``figures_na`` / ``classes_na`` say why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fabric import __version__, fmt
from fabric.analysis.run_metrics import SCALE_MEANING, analyze_run
from fabric.errors import FabricError
from fabric.jsonio import number, plain
from fabric.workloads.patterns import KINDS, kinds_of_role

FORMAT = "fabric-compare-summary"
FORMAT_VERSION = 1

# Traffic classes in the order reports show them: as the pattern registry declares them (others,
# e.g. from a newer fabric, follow alphabetically).
CLASS_ORDER = KINDS
RUN_STATUSES = ("ok", "failed", "interrupted", "not_run")

# Design-level headline figures: key -> (label, unit shown in reports).
FIGURES = {
    "eta_combined": ("η combined", ""),
    "eta_kv": ("η KV", ""),
    "eta_moe": ("η MoE", ""),
    "eta_tp": ("η TP", ""),
    "cpmt_total_usd_per_mtok": ("CPMT total", "$/Mtok"),
    "cpmt_output_usd_per_mtok": ("CPMT output", "$/Mtok"),
    "cpmt_ideal_total_usd_per_mtok": ("CPMT total, ideal fabric", "$/Mtok"),
    "cpmt_ideal_output_usd_per_mtok": ("CPMT output, ideal fabric", "$/Mtok"),
    "served_total_tokens_per_s": ("tokens served", "tokens/s"),
    "cost_per_hour_usd": ("cluster cost", "$/h"),
    "network_usd_per_hour": ("network cost", "$/h"),
    "network_share": ("network share of cost", "fraction"),
    "tokens_per_kwh": ("tokens per kWh", "tokens/kWh"),
    "tokens_per_s_per_mw": ("tokens/s per MW of facility power", "tokens/s/MW"),
    "facility_power_kw": ("facility power", "kW"),
    "loss_ratio": ("loss", "fraction"),
    "core_imbalance_max_over_mean": ("spine/NCF imbalance", "max/mean"),
}
# Per-class headline figures.
CLASS_FIGURES = {
    "owd_p50_us": ("OWD p50", "µs"),
    "owd_p99_us": ("OWD p99", "µs"),
    "owd_p99_9_us": ("OWD p99.9", "µs"),
    "owd_p99_minus_p50_us": ("OWD p99−p50", "µs"),
    "mct_p50_ms": ("MCT p50", "ms"),
    "mct_p99_ms": ("MCT p99", "ms"),
    "mct_p99_9_ms": ("MCT p99.9", "ms"),
    "slowdown_p50": ("slowdown p50", "×"),
    "slowdown_p99": ("slowdown p99", "×"),
    "group_completion_p99_ms": ("group completion p99", "ms"),
    "loss_ratio": ("loss", "fraction"),
    "packets_sent": ("packets sent", "packets"),
    "messages": ("messages", "messages"),
}
# Headline η figure -> (η role, what traffic sets it); the kinds of each role come from the registry.
PATTERN_OF_ETA = {"eta_kv": ("kv", "KV transfers (disaggregated prefill → decode)"),
                  "eta_moe": ("moe", f"MoE all-to-all ({' / '.join(kinds_of_role('moe'))})"),
                  "eta_tp": ("tp", "tensor-parallel all-reduce")}
# Figures shown with a 95% interval, and where one run's cpmt_for_run result keeps its bootstrap bounds.
INTERVAL_FIGURES = {"eta_combined": ("eta_interval", "combined"), "eta_kv": ("eta_interval", "kv"),
                    "eta_moe": ("eta_interval", "moe"), "eta_tp": ("eta_interval", "tp"),
                    "cpmt_total_usd_per_mtok": ("cpmt_total_interval", None),
                    "cpmt_output_usd_per_mtok": ("cpmt_output_interval", None)}
VERDICT_RANK = {"trusted": 0, "degraded": 1, "untrusted": 2}
TORNADO_ROWS = 10   # inputs the report's tornado chart draws (its table lists them all)
SIGNIFICANCE_METHOD = (
    "Welch's t-test over repeats: a difference between a design and the baseline is significant when "
    "the 95% confidence interval of the difference of their means excludes zero (p < 0.05); with one "
    "finished repeat of either design, η and CPMT fall back to the runs' own 95% bootstrap intervals "
    "(significant when they do not overlap) and other figures have no significance (use --repeat N)")
CONFIDENCE = 0.95


@dataclass
class RunRecord:
    """One run of one design: where it is, what happened, and (when ok) what it measured."""

    design: str
    repeat: int
    run_dir: Path
    status: str = "not_run"            # one of RUN_STATUSES
    reason: str | None = None          # why it failed / was not run
    run_json: dict | None = None
    metrics: dict | None = None
    cpmt: dict | None = None
    cpmt_error: str | None = None
    wall_time_s: float | None = None


@dataclass
class DesignRecord:
    """One fabric design of a comparison and its runs (repeats)."""

    name: str
    kind: str | None = None
    topology_path: str | None = None
    topology_sha256: str | None = None
    facts: dict | None = None
    runs: list[RunRecord] = field(default_factory=list)
    mix: str | None = None             # the accelerator mix (fabric compare --mix NAME) it ran with
    base_design: str | None = None     # with a mix: the design's name without "+<mix>"


# --------------------------------------------------------------------------------------------
# Reading one run
# --------------------------------------------------------------------------------------------

def load_run(record: RunRecord, costs=None) -> RunRecord:
    """Fill ``run_json``, ``metrics`` and ``cpmt`` of an ok run from its directory.

    metrics.json is read when present, else recomputed in memory (the directory is not written);
    a cost-model failure is kept as ``cpmt_error`` (the measured figures still count).
    """
    from fabric.economics import cpmt_for_run
    from fabric.rundir import read_run_json
    run_dir = Path(record.run_dir)
    if record.run_json is None:
        record.run_json = read_run_json(run_dir)
    if record.metrics is None:
        path = run_dir / "metrics.json"
        if path.exists():
            import json
            record.metrics = json.loads(path.read_text())
        else:
            record.metrics = analyze_run(run_dir)
    if record.cpmt is None and record.cpmt_error is None:
        try:
            record.cpmt = cpmt_for_run(run_dir, costs)
        except FabricError as exc:
            record.cpmt_error = str(exc)
    if record.wall_time_s is None:
        record.wall_time_s = record.run_json.get("wall_time_s")
    return record


# --------------------------------------------------------------------------------------------
# Figures of one run
# --------------------------------------------------------------------------------------------

def ordered_classes(names) -> list[str]:
    names = set(names)
    return [c for c in CLASS_ORDER if c in names] + sorted(names - set(CLASS_ORDER))


def class_figures(metrics: dict) -> tuple[dict, dict]:
    """Per traffic class: the headline figures of one run, and why any is null."""
    out, na = {}, {}
    groups = metrics.get("groups") or {}
    for kind in ordered_classes((metrics.get("classes") or {}).keys()):
        cm = metrics["classes"][kind]
        owd, mct, sd = cm.get("owd_us") or {}, cm.get("mct_ms") or {}, cm.get("slowdown") or {}
        p50, p99 = number(owd.get("p50")), number(owd.get("p99"))
        f = {
            "owd_p50_us": p50, "owd_p99_us": p99, "owd_p99_9_us": number(owd.get("p99_9")),
            "owd_p99_minus_p50_us": (p99 - p50) if p50 is not None and p99 is not None else None,
            "mct_p50_ms": number(mct.get("p50")), "mct_p99_ms": number(mct.get("p99")),
            "mct_p99_9_ms": number(mct.get("p99_9")),
            "slowdown_p50": number(sd.get("p50")), "slowdown_p99": number(sd.get("p99")),
            "group_completion_p99_ms": number(((groups.get(kind) or {}).get("completion_ms") or {}).get("p99")),
            "loss_ratio": number(cm.get("loss_ratio")),
            "packets_sent": number((cm.get("loss") or {}).get("sent")),
            "messages": number((cm.get("messages") or {}).get("count")),
        }
        why = {}
        for key, value in f.items():
            if value is None:
                why[key] = "no samples in this class" if key != "group_completion_p99_ms" else "no groups"
            elif value == math.inf and key.startswith("owd"):
                why[key] = "infinite: lost packets count as infinitely late (RFC 7679) and loss exceeds the tail"
        out[kind] = f
        if why:
            na[kind] = why
    return out, na


def run_figures(metrics: dict, cpmt: dict | None, cpmt_error: str | None) -> tuple[dict, dict]:
    """Design-level headline figures of one run, and why any is null."""
    classes = metrics.get("classes") or {}
    sent = sum(int((c.get("loss") or {}).get("sent") or 0) for c in classes.values())
    lost = sum(int((c.get("loss") or {}).get("lost") or 0) for c in classes.values())
    f: dict[str, Any] = {k: None for k in FIGURES}
    na: dict[str, str] = {}
    f["loss_ratio"] = lost / sent if sent else None
    if not sent:
        na["loss_ratio"] = "no packets sent"
    imb = number((metrics.get("spine_imbalance") or {}).get("max_over_mean"))
    f["core_imbalance_max_over_mean"] = imb
    if imb is None:
        na["core_imbalance_max_over_mean"] = "no fabric-link counters in links.parquet (or no traffic crossed a spine/NCF)"
    if cpmt is None:
        why = f"cost model failed: {cpmt_error}" if cpmt_error else "cost model not computed"
        for k in FIGURES:
            if k not in ("loss_ratio", "core_imbalance_max_over_mean"):
                na[k] = why
        return f, na
    eta = cpmt["eta"]
    f["eta_combined"] = number(eta.get("combined"))
    for key, (pat, label) in PATTERN_OF_ETA.items():
        f[key] = number(eta.get(pat))
        if f[key] is None:
            detail = cpmt.get("patterns", {}).get(pat)
            note = detail.get("note") if isinstance(detail, dict) else None
            na[key] = note or f"no {label} traffic in the workload (counts as 1 in η combined)"
    f["cpmt_total_usd_per_mtok"] = number(cpmt.get("cpmt_total_usd_per_mtok"))
    f["cpmt_output_usd_per_mtok"] = number(cpmt.get("cpmt_output_usd_per_mtok"))
    f["cpmt_ideal_total_usd_per_mtok"] = number((cpmt.get("cpmt_ideal") or {}).get("total_usd_per_mtok"))
    f["cpmt_ideal_output_usd_per_mtok"] = number((cpmt.get("cpmt_ideal") or {}).get("output_usd_per_mtok"))
    f["served_total_tokens_per_s"] = number((cpmt.get("tokens_per_s") or {}).get("served_total"))
    f["cost_per_hour_usd"] = number(cpmt.get("cost_per_hour_usd"))
    f["network_usd_per_hour"] = number((cpmt.get("cost") or {}).get("network_usd_per_hour"))
    f["network_share"] = number(cpmt.get("network_share"))
    energy = cpmt.get("energy") or {}
    for key in ("tokens_per_kwh", "tokens_per_s_per_mw", "facility_power_kw"):
        f[key] = number(energy.get(key))
        if f[key] is None:
            na[key] = energy.get("note") or "energy not computed (a run directory from an older fabric)"
    return f, na


def run_interval(cpmt: dict | None, key: str) -> list[float] | None:
    """One run's own 95% bootstrap interval of a figure of :data:`INTERVAL_FIGURES` (None: none)."""
    if not cpmt or key not in INTERVAL_FIGURES:
        return None
    top, sub = INTERVAL_FIGURES[key]
    found = cpmt.get(top)
    if sub is not None:
        found = (found or {}).get(sub)
    if not found or len(found) != 2 or any(v is None or not math.isfinite(v) for v in found):
        return None
    return [float(found[0]), float(found[1])]


def mean_interval(values: list) -> list[float] | None:
    """Student-t 95% interval of the mean over repeats (the one-design half of :func:`welch`);
    None below two finite values."""
    from scipy import stats
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size < 2 or x.size != len([v for v in values if v is not None]):
        return None
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    m = float(x.mean())
    return [m - half, m + half]


def design_intervals(samples: dict[str, list], cpmts: list[dict | None]) -> tuple[dict, dict]:
    """Per figure of :data:`INTERVAL_FIGURES`: a 95% interval of the design's value and how it was got.

    Two or more finished repeats: the Student-t interval of the mean over repeats (run-to-run
    spread, the same t distribution as the Welch test of significance). One repeat, or a figure
    with fewer than two values: the runs' own bootstrap bounds (over requests and decode steps),
    averaged over the runs that have them.
    """
    out, how = {}, {}
    for key in INTERVAL_FIGURES:
        vals = samples.get(key) or []
        t = mean_interval(vals)
        if t is not None:
            out[key], how[key] = t, f"repeats: Student-t 95% interval of the mean over {len(vals)} repeats"
            continue
        boot = [b for b in (run_interval(c, key) for c in cpmts) if b is not None]
        if boot:
            out[key] = [float(np.mean([b[0] for b in boot])), float(np.mean([b[1] for b in boot]))]
            how[key] = ("bootstrap: the run's 95% interval over its requests and decode steps" if len(boot) == 1 else
                        f"bootstrap: mean of {len(boot)} runs' 95% bounds over their requests and decode steps")
        else:
            out[key], how[key] = None, None
    return out, how


# --------------------------------------------------------------------------------------------
# Aggregation over repeats
# --------------------------------------------------------------------------------------------

def aggregate(values: list) -> float | None:
    """Mean over repeats: ``inf`` if any repeat is infinite, None if none has a value."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if any(math.isinf(v) for v in vals):
        return math.inf
    return float(np.mean(vals))


def relative_spread(values: list) -> float | None:
    """Relative standard deviation (sample std ÷ |mean|) across repeats; None with < 2 finite values."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if len(vals) < 2 or len(vals) != len([v for v in values if v is not None]):
        return None
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1))
    if mean == 0:
        return 0.0 if std == 0 else None
    return std / abs(mean)


def _worst_verdict(verdicts: list[str]) -> str | None:
    known = [v for v in verdicts if v in VERDICT_RANK]
    return max(known, key=VERDICT_RANK.get) if known else None


def _design_status(runs: list[RunRecord]) -> str:
    statuses = {r.status for r in runs}
    if statuses == {"ok"}:
        return "ok"
    if "ok" in statuses:
        return "partial"
    if statuses <= {"not_run"}:
        return "not_run"
    if "interrupted" in statuses and "failed" not in statuses:
        return "interrupted"
    return "failed"


def _aggregate_cpmt_for_break_even(ok: list[RunRecord]) -> dict | None:
    """A cpmt_for_run-shaped dict averaged over repeats (what compare_break_even reads)."""
    rs = [r.cpmt for r in ok if r.cpmt is not None]
    if not rs:
        return None
    mean = lambda get: float(np.mean([get(r) for r in rs]))  # noqa: E731
    return {"eta": {"combined": mean(lambda r: r["eta"]["combined"])},
            "cost_per_hour_usd": mean(lambda r: r["cost_per_hour_usd"]),
            "network_share": mean(lambda r: r["network_share"]),
            "cost": {"network_usd_per_hour": mean(lambda r: r["cost"]["network_usd_per_hour"])},
            "cpmt_total_usd_per_mtok": mean(lambda r: r["cpmt_total_usd_per_mtok"]),
            "cpmt_ideal": {"total_usd_per_mtok": mean(lambda r: r["cpmt_ideal"]["total_usd_per_mtok"])},
            "tokens_per_s": {"ideal_total": mean(lambda r: r["tokens_per_s"]["ideal_total"])}}


def _tripped(fid: dict) -> list[str]:
    """Signals past their warning or fail threshold."""
    return sorted(set(fid.get("failing") or []) | set(fid.get("warning") or []))


def _run_entry(r: RunRecord) -> dict:
    fid = (r.metrics or {}).get("fidelity") or {}
    rj = r.run_json or {}
    return {
        "repeat": r.repeat, "run_dir": str(r.run_dir), "status": r.status, "reason": r.reason,
        "wall_time_s": r.wall_time_s, "scale_k": rj.get("scale_k"), "dilation": rj.get("dilation"),
        "seed": rj.get("seed"),
        "hash_seed": rj.get("hash_seed"),
        "fidelity_verdict": fid.get("verdict"), "fidelity_tripped": _tripped(fid),
        "fidelity_failing": fid.get("failing") or [], "fidelity_warning": fid.get("warning") or [],
        "fidelity_reasons": fid.get("reasons") or [],
        "fidelity_levels": {name: sig.get("level") for name, sig in sorted((fid.get("signals") or {}).items())},
        "fidelity_measures": {m: v for sig in (fid.get("signals") or {}).values()
                              for m, v in sorted((sig.get("measures") or {}).items())},
        "cpmt_error": r.cpmt_error,
        "warnings": list((r.cpmt or {}).get("warnings") or []),
    }


def _design_entry(d: DesignRecord) -> dict:
    ok = [r for r in d.runs if r.status == "ok" and r.metrics is not None]
    per_run = [run_figures(r.metrics, r.cpmt, r.cpmt_error) for r in ok]
    per_run_cls = [class_figures(r.metrics) for r in ok]
    figures, spread, na = {}, {}, {}
    status = _design_status(d.runs)
    for key in FIGURES:
        vals = [f[key] for f, _ in per_run]
        figures[key] = aggregate(vals)
        spread[key] = relative_spread(vals)
        if figures[key] is None:
            if not ok:
                na[key] = {"failed": "the design's run failed", "not_run": "not run (comparison interrupted)",
                           "interrupted": "run interrupted"}.get(status, "no finished run")
            else:
                na[key] = next((n[key] for _, n in per_run if key in n), "not computed")
    classes, cspread, cna = {}, {}, {}
    kinds = ordered_classes({k for c, _ in per_run_cls for k in c})
    for kind in kinds:
        classes[kind], cspread[kind] = {}, {}
        for key in CLASS_FIGURES:
            vals = [c.get(kind, {}).get(key) for c, _ in per_run_cls]
            classes[kind][key] = aggregate(vals)
            cspread[kind][key] = relative_spread(vals)
            reasons = [n.get(kind, {}).get(key) for _, n in per_run_cls if n.get(kind, {}).get(key)]
            if reasons and (classes[kind][key] is None or classes[kind][key] == math.inf):
                cna.setdefault(kind, {})[key] = reasons[0]
    verdicts = [((r.metrics or {}).get("fidelity") or {}).get("verdict") for r in ok]
    first = ok[0] if ok else None
    samples = {key: [f[key] for f, _ in per_run] for key in FIGURES}
    interval_95, interval_method = design_intervals(samples, [r.cpmt for r in ok])
    eta_src = first.cpmt["eta"] if first is not None and first.cpmt else {}
    scale_k = sorted({(r.run_json or {}).get("scale_k") for r in ok} - {None})
    return {
        "name": d.name, "kind": d.kind, "topology_path": d.topology_path, "topology_sha256": d.topology_sha256,
        "mix": d.mix, "base_design": d.base_design,
        "status": status,
        "reason": next((r.reason for r in d.runs if r.status != "ok" and r.reason), None),
        "repeats_ok": len(ok), "repeats_total": len(d.runs),
        "scale_k": scale_k[0] if len(scale_k) == 1 else (scale_k or None),
        "facts": _facts(d.facts),
        "runs": [_run_entry(r) for r in d.runs],
        "figures": figures, "figures_na": na, "spread_rsd": spread,
        "samples": samples,
        # One run's own 95% intervals (bootstrap over its requests and steps), for one-repeat significance.
        "intervals": {key: run_interval(first.cpmt if first else None, key) for key in INTERVAL_FIGURES},
        # What the report shows next to each η and CPMT (design_intervals).
        "interval_95": interval_95, "interval_method": interval_method,
        "classes": classes, "classes_na": cna, "classes_spread_rsd": cspread,
        "classes_samples": {kind: {key: [c.get(kind, {}).get(key) for c, _ in per_run_cls] for key in CLASS_FIGURES}
                            for kind in kinds},
        "eta": {"kv": figures["eta_kv"], "moe": figures["eta_moe"], "tp": figures["eta_tp"],
                "combined": figures["eta_combined"],
                "set_by": eta_src.get("set_by") if eta_src else None},
        # Each stage's pools (size, price, η) of the first finished run (docs/economics.md §6).
        "stage_pools": (first.cpmt or {}).get("stage_pools") if first is not None else None,
        "frontend": _front_end(first.cpmt if first is not None else None),
        "cpmt": {"total_usd_per_mtok": figures["cpmt_total_usd_per_mtok"],
                 "output_usd_per_mtok": figures["cpmt_output_usd_per_mtok"],
                 "ideal_total_usd_per_mtok": figures["cpmt_ideal_total_usd_per_mtok"],
                 "ideal_output_usd_per_mtok": figures["cpmt_ideal_output_usd_per_mtok"],
                 "cost_per_hour_usd": figures["cost_per_hour_usd"],
                 "network_usd_per_hour": figures["network_usd_per_hour"],
                 "network_share": figures["network_share"],
                 "network_capex_usd": (first.cpmt["cost"]["network_capex_usd"] if first and first.cpmt else None),
                 "accelerators": (first.cpmt["cost"]["accelerators"] if first and first.cpmt else None),
                 "error": next((r.cpmt_error for r in ok if r.cpmt_error), None)},
        "energy": {"tokens_per_kwh": figures["tokens_per_kwh"], "tokens_per_s_per_mw": figures["tokens_per_s_per_mw"],
                   "facility_power_kw": figures["facility_power_kw"]},
        "fidelity": {"verdict": _worst_verdict(verdicts),
                     "trusted": bool(verdicts) and all(v == "trusted" for v in verdicts),
                     "per_run": [{"repeat": r.repeat, "verdict": v,
                                  "tripped": _tripped((r.metrics or {}).get("fidelity") or {}),
                                  "failing": ((r.metrics or {}).get("fidelity") or {}).get("failing") or [],
                                  "warning": ((r.metrics or {}).get("fidelity") or {}).get("warning") or [],
                                  "reasons": ((r.metrics or {}).get("fidelity") or {}).get("reasons") or []}
                                 for r, v in zip(ok, verdicts)]},
    }


def _front_end(cpmt: dict | None) -> dict | None:
    """The design's front-end CPU servers (docs/economics.md §6) from one run's CPMT; None without them."""
    cost = (cpmt or {}).get("cost") or {}
    if not cost.get("frontend_servers"):
        return None
    kv = ((cpmt.get("patterns") or {}).get("kv") or {}).get("frontend") or {}
    return {"servers": cost["frontend_servers"], "usd_per_hour": cost["frontend_usd_per_hour"],
            "usd_per_server_hour": {name: p["usd_per_hour"] for name, p in cost["frontend_pricing"].items()},
            "busy_share": cost.get("frontend_busy_share"), "ttft_share": kv.get("ttft_share")}


def _facts(facts: dict | None) -> dict | None:
    if not facts:
        return None
    keep = ("hosts", "switches", "links", "host_link_rate_bps", "host_link_mix", "fabric_link_rate_bps", "oversubscription",
            "bisection_bps", "ecmp_paths_between_edges", "load_balancing", "host_groups", "bom")
    return {k: facts.get(k) for k in keep if k in facts}


# --------------------------------------------------------------------------------------------
# Across designs
# --------------------------------------------------------------------------------------------

def welch(a: list[float], b: list[float]) -> dict | None:
    """Welch's t-test of mean(b) − mean(a): the difference, its 95% interval and p (None below two
    finite samples on either side). Identical samples on both sides give a zero-width interval."""
    from scipy import stats
    xa = np.array([v for v in a if v is not None and math.isfinite(v)], dtype=np.float64)
    xb = np.array([v for v in b if v is not None and math.isfinite(v)], dtype=np.float64)
    if xa.size < 2 or xb.size < 2:
        return None
    diff = float(xb.mean() - xa.mean())
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se = math.sqrt(va + vb)
    if se == 0:
        return {"difference": diff, "interval": [diff, diff], "p_value": 0.0 if diff else 1.0}
    df = (va + vb) ** 2 / (va ** 2 / (xa.size - 1) + vb ** 2 / (xb.size - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return {"difference": diff, "interval": [diff - half, diff + half], "p_value": p}


def _significance(a: dict, b: dict) -> dict:
    out = {}

    def judge(va, vb, sa, sb, name, samples_a=None, samples_b=None, ia=None, ib=None):
        entry = {"a": va, "b": vb, "relative_difference": None, "spread_rsd": None, "significant": None,
                 "difference_interval": None, "p_value": None, "why": None}
        if va is None or vb is None:
            entry["why"] = "a value is missing"
            out[name] = entry
            return
        if math.isinf(va) or math.isinf(vb):
            entry["why"] = "a value is infinite"
            out[name] = entry
            return
        entry["relative_difference"] = abs(vb - va) / abs(va) if va != 0 else (0.0 if vb == 0 else math.inf)
        if sa is not None and sb is not None:
            entry["spread_rsd"] = max(sa, sb)
        test = welch(samples_a or [], samples_b or [])
        if test is not None:
            entry["difference_interval"], entry["p_value"] = test["interval"], test["p_value"]
            lo, hi = test["interval"]
            entry["significant"] = bool(lo > 0 or hi < 0)
            entry["why"] = (f"Welch's t over repeats: 95% interval of B − A [{lo:.4g}, {hi:.4g}] "
                            + ("excludes 0" if entry["significant"] else "includes 0: not significant")
                            + f" (p = {test['p_value']:.3g})")
        elif ia and ib:
            entry["significant"] = bool(ia[1] < ib[0] or ib[1] < ia[0])
            entry["why"] = ("one repeat: the runs' 95% bootstrap intervals "
                            + ("do not overlap" if entry["significant"] else "overlap: not significant"))
        else:
            entry["why"] = "spread unknown: fewer than two finished repeats (use --repeat N)"
        out[name] = entry

    for key in FIGURES:
        judge(a["figures"][key], b["figures"][key], a["spread_rsd"][key], b["spread_rsd"][key], key,
              a.get("samples", {}).get(key), b.get("samples", {}).get(key),
              a.get("intervals", {}).get(key), b.get("intervals", {}).get(key))
    for kind in ordered_classes(set(a["classes"]) & set(b["classes"])):
        for key in CLASS_FIGURES:
            judge(a["classes"][kind][key], b["classes"][kind][key], a["classes_spread_rsd"][kind][key],
                  b["classes_spread_rsd"][kind][key], f"{kind}.{key}",
                  a.get("classes_samples", {}).get(kind, {}).get(key), b.get("classes_samples", {}).get(kind, {}).get(key))
    return out


def _headroom(p: float) -> str:
    if p != p:
        return "network headroom undefined"
    if math.isinf(p):
        return "B would win at any network price" if p > 0 else "B cannot win at any network price"
    if p >= 0:
        return f"B's network could be up to {fmt.percent(p, 1)} dearer than A's and B would still win"
    if p < -1:
        return "B cannot win on network price: it would lose even with a free network"
    return f"B would need a network at least {fmt.percent(-p, 1)} cheaper than A's to win"


def _outcome(b_wins: bool, cpmt_significant: bool | None) -> str:
    """``b_wins``, ``a_wins``, ``tie`` (the CPMT difference is within its 95% interval) or, when
    significance could not be judged, ``b_wins_unjudged`` / ``a_wins_unjudged``."""
    if cpmt_significant is False:
        return "tie"
    return ("b_wins" if b_wins else "a_wins") + ("" if cpmt_significant else "_unjudged")


def _break_even(a_name, a_cpmt, b_name, b_cpmt, sig_eta, sig_cpmt=None) -> dict:
    from fabric.economics import break_even_ratio, compare_break_even
    be = compare_break_even(a_cpmt, b_cpmt)
    f, p = be["network_share_a"], be["network_premium_b"]
    needed = break_even_ratio(f, p) if p == p else None  # p is NaN when A has no network cost
    wins = be["b_wins"]
    cpmt_sig = None if sig_cpmt is None else sig_cpmt.get("significant")
    outcome = _outcome(wins, cpmt_sig)
    if outcome == "tie":
        # The point estimate leans one way, but the 95% interval includes a tie: no winner is called.
        said = (f"TIE — no winner: the CPMT difference is within its 95% interval ({sig_cpmt.get('why')}; "
                f"point estimate leans to {b_name if wins else a_name})")
    else:
        said = f"{b_name} {'WINS' if wins else 'does not win'}"
        if cpmt_sig is None:
            said += (" (point estimate; significance not judged: "
                     + ((sig_cpmt or {}).get("why") or "no interval for CPMT") + ")")
    if abs(be["ideal_rate_ratio"] - 1.0) > 1e-6:
        # Other accelerators (or pools): the bar is the hourly cost ratio over the ideal token-rate ratio.
        needed = be["cost_ratio"] / be["ideal_rate_ratio"]
        statement = (f"{b_name} vs {a_name}: on an ideal fabric {b_name} serves {fmt.fixed(be['ideal_rate_ratio'], 3)}× "
                     f"the tokens of {a_name} at {fmt.fixed(be['cost_ratio'], 3)}× the hourly cost, so {b_name} beats "
                     f"{a_name} iff η_B/η_A > {fmt.fixed(needed, 3)}; measured η_B/η_A = {fmt.ratio(be['eta_ratio'])} → "
                     f"{said} (CPMT ratio B/A {fmt.fixed(be['cpmt_total_ratio'], 3)})")
    elif p == p:
        dearer = f"{fmt.percent(abs(p), 1)} {'dearer' if p >= 0 else 'cheaper'}"
        statement = (f"{b_name} vs {a_name}: {b_name}'s network is {dearer}, network share of {a_name}'s cost "
                     f"f = {fmt.percent(f, 1)}, so {b_name} beats {a_name} iff η_B/η_A > 1 + f·p = "
                     f"{fmt.ratio(needed)}; measured η_B/η_A = {fmt.ratio(be['eta_ratio'])} → {said} "
                     f"(CPMT ratio B/A {fmt.fixed(be['cpmt_total_ratio'], 3)}; "
                     + _headroom(be['max_network_premium_b']) + ")")
    else:
        statement = (f"{b_name} vs {a_name}: network premium undefined ({a_name} has no network cost); "
                     f"CPMT ratio B/A {fmt.fixed(be['cpmt_total_ratio'], 3)} → {said}")
    if sig_eta is not None and sig_eta.get("significant") is False:
        statement += "; the η difference is within its 95% interval: not significant"
    return {"a": a_name, "b": b_name, **be, "eta_ratio_needed": needed, "statement": statement, "outcome": outcome,
            "eta_difference_significant": None if sig_eta is None else sig_eta.get("significant"),
            "cpmt_difference_significant": cpmt_sig}


def _mix_break_evens(entries: list[dict], designs: list[DesignRecord]) -> list[dict]:
    """Each accelerator mix against the first mix compared on the same fabric (docs/economics.md §6)."""
    out = []
    reference: dict[str, tuple[dict, dict]] = {}
    for e, d in zip(entries, designs):
        if not e.get("mix") or not e.get("base_design"):
            continue
        agg = _aggregate_cpmt_for_break_even([r for r in d.runs if r.status == "ok"])
        if agg is None:
            continue
        if e["base_design"] not in reference:
            reference[e["base_design"]] = (e, agg)
            continue
        a_entry, a = reference[e["base_design"]]
        out.append(_mix_break_even(e["base_design"], a_entry["mix"], a, e["mix"], agg))
    return out


def _mix_break_even(fabric_name: str, a_mix: str, a_cpmt: dict, b_mix: str, b_cpmt: dict) -> dict:
    from fabric.economics import mix_break_even
    be = mix_break_even(a_cpmt, b_cpmt)
    wins = be["b_wins"]
    back = be["network_takes_back"]
    takes = ("the network takes back " + (f"{fmt.percent(back, 0)} of its ideal advantage" if back is not None and
                                          back <= 1 else "all of its ideal advantage and more")
             if back is not None else f"{b_mix} has no ideal advantage to lose")
    statement = (f"{b_mix} vs {a_mix} on {fabric_name}: ideal-fabric CPMT ratio {fmt.fixed(be['ideal_cpmt_ratio'], 3)}, "
                 f"so {b_mix} is cheaper per token iff η_{b_mix}/η_{a_mix} > {fmt.fixed(be['eta_ratio_needed'], 3)}; "
                 f"measured η ratio {fmt.fixed(be['eta_ratio'], 3)} → {b_mix} {'WINS' if wins else 'does not win'} "
                 f"(CPMT ratio {fmt.fixed(be['cpmt_ratio'], 3)}; {takes})")
    return {"fabric": fabric_name, "a": a_mix, "b": b_mix, **be, "statement": statement}


def _winner(entries: list[dict], lowest: str | None) -> dict | None:
    """The lowest-CPMT design and whether its lead over each other priced design is significant.

    A winner is named only when every other design's CPMT is significantly higher; a design whose
    difference is within the 95% interval is a tie, one whose difference cannot be judged is
    listed as such."""
    if lowest is None:
        return None
    best = next(e for e in entries if e["name"] == lowest)
    others = [e for e in entries if e["name"] != lowest and e["cpmt"]["total_usd_per_mtok"] is not None]
    tied, unjudged, beaten = [], [], []
    for e in others:
        sig = _significance(e, best)["cpmt_total_usd_per_mtok"]
        (beaten if sig["significant"] else tied if sig["significant"] is False else unjudged).append(e["name"])
    cost = fmt.usd(best["cpmt"]["total_usd_per_mtok"])
    if not others:
        statement = f"{lowest} is the only priced design ({cost}/Mtok total): nothing to compare"
        winner = None
    elif tied:
        statement = (f"No winner on CPMT: {lowest} has the lowest point estimate ({cost}/Mtok total), but "
                     f"{', '.join(tied)} {'is' if len(tied) == 1 else 'are'} within the 95% interval of the "
                     f"difference (tie)")
        winner = None
    elif unjudged:
        statement = (f"{lowest} has the lowest CPMT ({cost}/Mtok total); whether its lead over "
                     f"{', '.join(unjudged)} is significant could not be judged (no interval)")
        winner = None
    else:
        statement = (f"{lowest} has the lowest CPMT ({cost}/Mtok total), significantly below "
                     f"{', '.join(beaten)} (95%)")
        winner = lowest
    return {"design": winner, "lowest": lowest, "tied_with": tied, "unjudged": unjudged,
            "significantly_below": beaten, "statement": statement}


def _first_priced_run(d: DesignRecord) -> RunRecord | None:
    return next((r for r in d.runs if r.status == "ok" and r.cpmt is not None), None)


def comparison_sensitivity(designs: list[DesignRecord], entries: list[dict], costs=None) -> dict | None:
    """The tornado of CPMT(B) ÷ CPMT(A) (:func:`fabric.economics.cpmt_sensitivity`), A the baseline
    and B the lowest-CPMT design (the cheapest other one when the baseline is lowest), on their first
    finished runs; ``skipped`` says why when it could not be drawn."""
    if len(designs) < 2:
        return None
    base = entries[0]["name"]
    priced = [e for e in entries[1:] if e["cpmt"]["total_usd_per_mtok"] is not None]
    out = {"a": base, "b": None, "run_a": None, "run_b": None, "skipped": None, "note": None}
    if not priced:
        out["skipped"] = "no design other than the baseline has a finished, priced run"
        return out
    b_entry = min(priced, key=lambda e: e["cpmt"]["total_usd_per_mtok"])
    out["b"] = b_entry["name"]
    base_cpmt = entries[0]["cpmt"]["total_usd_per_mtok"]
    if base_cpmt is not None and base_cpmt <= b_entry["cpmt"]["total_usd_per_mtok"]:
        out["note"] = (f"the baseline {base} has the lowest CPMT; the tornado is of the cheapest other design, "
                       f"{b_entry['name']}, against it")
    run_a = _first_priced_run(designs[0])
    run_b = _first_priced_run(designs[[e["name"] for e in entries].index(b_entry["name"])])
    if run_a is None or run_b is None:
        out["skipped"] = (f"{base if run_a is None else b_entry['name']} has no finished run with a cost model")
        return out
    out["run_a"], out["run_b"] = str(run_a.run_dir), str(run_b.run_dir)
    from fabric.economics import cpmt_sensitivity
    try:
        t = cpmt_sensitivity(run_b.run_dir, costs, baseline_dir=run_a.run_dir)
    except FabricError as exc:
        out["skipped"] = f"sensitivity failed: {exc}"
        return out
    out.update({k: t[k] for k in ("figure", "base", "swings", "break_even")})
    return out


def build_summary(designs: list[DesignRecord], *, workload: dict | None = None, scale: dict | None = None,
                  repeats: int = 1, status: str = "complete", cost_inputs: list | None = None,
                  cost_source: str | None = None, commands: dict | None = None, notes: list | None = None,
                  costs=None, sensitivity: bool = True) -> dict:
    """The summary dict of a comparison (see docs/summary-json.md), JSON-ready.

    Parameters
    ----------
    designs : list of DesignRecord
        In the order given; the first is the baseline of break-even and significance.
    workload, scale, commands : dict
        Facts the caller knows (compare) or recovered from run.json (report).
    status : str
        ``complete`` or ``interrupted`` (Ctrl-C: what finished is summarised, the rest is not_run).
    costs : CostFile or path, optional
        The cost model for the sensitivity tornado; ``cost_source`` (the cost file's path) when not given.
    sensitivity : bool
        Compute ``comparison.sensitivity`` (about 30 cost-model evaluations of two runs).
    """
    entries = [_design_entry(d) for d in designs]
    comparison: dict = {"baseline": entries[0]["name"] if entries else None, "break_even": [],
                        "significance": {"method": SIGNIFICANCE_METHOD, "pairs": []},
                        "lowest_cpmt_total": None, "not_trusted": []}
    base, base_rec = (entries[0], designs[0]) if entries else (None, None)
    for e, d in zip(entries[1:], designs[1:]):
        if base["repeats_ok"] == 0 or e["repeats_ok"] == 0:
            continue
        sig = _significance(base, e)
        comparison["significance"]["pairs"].append({"a": base["name"], "b": e["name"], "figures": sig})
        a_c = _aggregate_cpmt_for_break_even([r for r in base_rec.runs if r.status == "ok"])
        b_c = _aggregate_cpmt_for_break_even([r for r in d.runs if r.status == "ok"])
        if a_c is not None and b_c is not None:
            comparison["break_even"].append(_break_even(base["name"], a_c, e["name"], b_c, sig.get("eta_combined"),
                                                        sig.get("cpmt_total_usd_per_mtok")))
    comparison["mix_break_even"] = _mix_break_evens(entries, designs)
    priced = [e for e in entries if e["cpmt"]["total_usd_per_mtok"] is not None]
    if priced:
        comparison["lowest_cpmt_total"] = min(priced, key=lambda e: e["cpmt"]["total_usd_per_mtok"])["name"]
    comparison["winner"] = _winner(entries, comparison["lowest_cpmt_total"])
    comparison["sensitivity"] = (comparison_sensitivity(designs, entries, costs if costs is not None else cost_source)
                                 if sensitivity else None)
    comparison["not_trusted"] = [{"design": e["name"], "verdict": e["fidelity"]["verdict"],
                                  "tripped": sorted({s for r in e["fidelity"]["per_run"] for s in r["tripped"]})}
                                 for e in entries if e["repeats_ok"] and not e["fidelity"]["trusted"]]
    ks = sorted({e["scale_k"] for e in entries if isinstance(e["scale_k"], (int, float))})
    scale = dict(scale or {})
    scale.setdefault("k", ks[0] if len(ks) == 1 else None)
    scale.setdefault("meaning", SCALE_MEANING)
    if len(ks) > 1:
        (notes := list(notes or [])).append(
            f"designs were run at different scale factors k ({', '.join(f'{k:g}' for k in ks)}): per-packet "
            f"serialization differs between them; compare with care")
    return plain({
        "format": FORMAT, "format_version": FORMAT_VERSION, "fabric_version": __version__,
        "status": status, "repeats": repeats,
        "workload": workload or {}, "scale": scale,
        "designs": entries, "comparison": comparison,
        "cost_inputs": {"source": cost_source, "inputs": cost_inputs or []},
        "commands": commands or {}, "notes": list(notes or []),
    })


def workload_facts_from_schedules(workload, schedules: dict, *, path, seed: int) -> dict:
    """Workload facts for a comparison that generated the schedules itself: the profile (a loaded
    :class:`~fabric.workloads.Workload`), messages and bytes per class of the first design's
    schedule, and a ``mismatch`` note when the profile resolves to different schedules on different
    designs (``schedules``: design name → schedule frame)."""
    first = next(iter(schedules.values()))
    per_kind = first.groupby("kind", sort=True)["bytes"].agg(["size", "sum"])
    w = workload
    out = {"path": str(path), "name": w.name, "description": w.description,
           "model": w.model.name if w.model else None, "duration_s": w.duration_s, "seed": seed,
           "messages": int(len(first)), "bytes": int(first["bytes"].sum()),
           "per_kind": {str(k): {"messages": int(r["size"]), "bytes": int(r["sum"])} for k, r in per_kind.iterrows()},
           "patterns": [{"name": pt.name, "type": pt.type} for pt in w.patterns]}
    counts = {name: int(len(s)) for name, s in schedules.items()}
    if len(set(counts.values())) > 1:
        out["mismatch"] = f"the profile resolves to different schedules on these designs: messages {counts}"
    return out


def workload_facts_from_runs(designs: list[DesignRecord]) -> dict:
    """Workload facts for a report built from run directories: run.json + schedule.

    run.json carries the profile's name, model, duration and patterns; only run directories from
    before it did fall back to loading the profile file, if it is still there.
    """
    runs = [r for d in designs for r in d.runs if r.run_json is not None]
    if not runs:
        return {}
    first = runs[0]
    w = dict(first.run_json.get("workload") or {})
    out = {"path": w.get("path"), "seed": first.run_json.get("seed"), "messages": w.get("messages"),
           "bytes": w.get("bytes")}
    if w.get("name"):
        out.update(name=w["name"], description=w.get("description", ""), model=w.get("model"),
                   duration_s=w.get("duration_s"),
                   patterns=[{"name": p["name"], "type": p["type"]} for p in w.get("patterns", [])])
    path = Path(w["path"]) if w.get("path") else None
    if not w.get("name") and path is not None and path.exists():
        try:
            from fabric.workloads import load_workload
            prof = load_workload(path)
            out.update(name=prof.name, description=prof.description, model=prof.model.name if prof.model else None,
                       duration_s=prof.duration_s, patterns=[{"name": p.name, "type": p.type} for p in prof.patterns])
        except FabricError as exc:
            out["profile_error"] = str(exc)
    sched = Path(first.run_dir) / "schedule.parquet"
    if sched.exists():
        s = pd.read_parquet(sched, columns=["t_start_s", "kind", "bytes"])
        out["per_kind"] = {str(k): {"messages": int(len(g)), "bytes": int(g["bytes"].sum())}
                           for k, g in s.groupby("kind", sort=True)}
        out["schedule_span_s"] = float(s["t_start_s"].max() - s["t_start_s"].min()) if len(s) else 0.0
    paths = sorted({(r.run_json.get("workload") or {}).get("path") for r in runs} - {None})
    seeds = sorted({r.run_json.get("seed") for r in runs} - {None})
    if len(paths) > 1 or len(seeds) > 1:
        out["mismatch"] = (f"the runs do not share one workload: profiles {paths}, seeds {seeds}; "
                           f"the comparison is not like for like")
    return out


def merge_cost_inputs(designs: list[DesignRecord], costs=None) -> list[dict]:
    """Cost-model inputs over every priced run: one row per input, or per distinct value when the
    designs differ (their network parts do); ``designs`` names who used it ("all" when everyone)."""
    seen: dict[str, dict] = {}
    names = []
    for d in designs:
        for r in d.runs:
            if r.status != "ok" or r.cpmt is None:
                continue
            names.append(d.name)
            for item in r.cpmt.get("inputs") or []:
                key = item["name"]
                val = repr(item.get("value"))
                seen.setdefault(key, {}).setdefault(val, {**item, "_designs": []})
                if d.name not in seen[key][val]["_designs"]:
                    seen[key][val]["_designs"].append(d.name)
    everyone = sorted(set(names))
    if not seen:
        from fabric.economics import cost_inputs, load_costs
        try:
            return [{**i, "designs": "all"} for i in cost_inputs(load_costs(costs) if costs else None)]
        except FabricError:
            return []
    out = []
    for key in sorted(seen):
        for item in seen[key].values():
            who = item.pop("_designs")
            item["designs"] = "all" if sorted(who) == everyone else ", ".join(who)
            out.append(item)
    return out
