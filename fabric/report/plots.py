"""The report's figures, drawn with matplotlib (Agg backend) and returned as PNG bytes.

Each function takes already-read series (:mod:`fabric.report.series`) or the summary dict and
returns one PNG; :func:`all_plots` reads the run directories and builds every figure with its
caption. All axes are in real-world units, and every title states the scale factor ``k``.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fabric import fmt  # noqa: E402
from fabric.report import series as S  # noqa: E402
from fabric.report.summary import TORNADO_ROWS, ordered_classes  # noqa: E402

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
DPI = 90


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _k_text(k) -> str:
    return f"k = {k:g}" if isinstance(k, (int, float)) else "k differs between designs"


def _grid(n: int, ncols: int = 2):
    ncols = min(ncols, max(n, 1))
    nrows = max(1, math.ceil(n / ncols))
    return nrows, ncols


def owd_ccdf(per_design: dict[str, dict[str, tuple[np.ndarray, int]]], k) -> bytes:
    """One-way delay CCDF per class (one panel each), one line per design, log–log."""
    classes = ordered_classes({c for d in per_design.values() for c in d})
    nrows, ncols = _grid(len(classes))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.6 * nrows), squeeze=False)
    for ax, cls in zip(axes.flat, classes):
        for i, (design, data) in enumerate(per_design.items()):
            if cls not in data:
                continue
            d, lost = data[cls]
            x, p = S.ccdf_points(d, lost)
            if x.size == 0:
                continue
            x = np.maximum(x, 1e-3)
            label = f"{design} (N={d.size + lost:,}" + (f", lost {lost:,}" if lost else "") + ")"
            ax.step(x, np.maximum(p, 0.5 / (d.size + lost)), where="post", color=COLORS[i % len(COLORS)],
                    label=label, lw=1.6)
            if lost:
                ax.axhline(lost / (d.size + lost), color=COLORS[i % len(COLORS)], ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{cls}: one-way delay CCDF")
        ax.set_xlabel("one-way delay (µs, real time)")
        ax.set_ylabel("P(delay > x)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    for ax in list(axes.flat)[len(classes):]:
        ax.axis("off")
    fig.suptitle(f"One-way delay, complementary CDF (tails: lower right); {_k_text(k)}; "
                 f"dotted line = loss ratio (lost packets never arrive)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def slowdown_cdf(per_design: dict[str, dict[str, np.ndarray]], k) -> bytes:
    """Message-completion slowdown CDF per class, one line per design, log x."""
    classes = ordered_classes({c for d in per_design.values() for c in d})
    nrows, ncols = _grid(len(classes))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, cls in zip(axes.flat, classes):
        for i, (design, data) in enumerate(per_design.items()):
            v = data.get(cls)
            if v is None or v.size == 0:
                continue
            x, p = S.cdf_points(v)
            ax.step(np.maximum(x, 1e-3), p, where="post", color=COLORS[i % len(COLORS)],
                    label=f"{design} ({v.size:,} messages)", lw=1.6)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.01)
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{cls}: message completion slowdown")
        ax.set_xlabel("slowdown = MCT / ideal MCT (1 = contention-free)")
        ax.set_ylabel("P(slowdown ≤ x)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[len(classes):]:
        ax.axis("off")
    fig.suptitle(f"Message completion time slowdown, CDF; {_k_text(k)}", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def utilization_heatmap(per_design: dict[str, tuple[list[str], np.ndarray, np.ndarray]], k) -> bytes:
    """Fabric links × time utilization, one panel per design, shared 0–1 colour scale."""
    n = len(per_design)
    heights = [max(2.2, 0.13 * len(v[0]) + 1.0) for v in per_design.values()]
    fig, axes = plt.subplots(n, 1, figsize=(12, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    im = None
    for ax, (design, (labels, t, grid)) in zip(axes[:, 0], per_design.items()):
        dt = float(np.median(np.diff(t))) if t.size > 1 else 0.1
        extent = (float(t[0] - dt), float(t[-1]), len(labels) - 0.5, -0.5)
        im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", interpolation="nearest", cmap="viridis",
                       vmin=0.0, vmax=1.0, extent=extent)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=6)
        ax.set_title(f"{design}: utilization of each fabric link direction per {dt * 1e3:.0f} ms sample", fontsize=9)
        ax.set_xlabel("time since schedule start (s, real time)")
    if im is not None:
        fig.colorbar(im, ax=axes[:, 0].tolist(), label="utilization (delivered / configured rate)", shrink=0.8)
    fig.suptitle(f"Fabric link utilization (edge ↔ spine/NCF, both directions); {_k_text(k)}", fontsize=10)
    return _png(fig)


def eta_cpmt_bars(summary: dict) -> bytes:
    """η per pattern and CPMT (total and output, measured vs ideal fabric) per design."""
    designs = [d for d in summary["designs"] if d["repeats_ok"]]
    names = [d["name"] for d in designs]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
    pats = [("kv", "η KV"), ("moe", "η MoE"), ("tp", "η TP"), ("combined", "η combined")]
    width = 0.8 / len(pats)
    x = np.arange(len(names))
    for j, (key, label) in enumerate(pats):
        vals = [d["eta"][key] for d in designs]
        errs = [_abs_err(d["eta"][key], d["spread_rsd"].get(f"eta_{key}")) for d in designs]
        pos = x - 0.4 + width * (j + 0.5)
        ax1.bar(pos, [v if isinstance(v, (int, float)) else 0 for v in vals], width, yerr=errs,
                label=label, color=COLORS[j], capsize=3)
        for p_, v in zip(pos, vals):
            if not isinstance(v, (int, float)):
                ax1.text(p_, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax1.set_xticks(x, names, fontsize=8)
    ax1.set_ylim(0, 1.1)
    ax1.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax1.set_ylabel("η (served ÷ ideal tokens)")
    ax1.set_title("Fabric derating η per pattern (n/a: pattern not in workload)", fontsize=9)
    ax1.legend(fontsize=7)
    for ax, key, title in ((ax2, "total", "CPMT, total tokens"), (ax3, "output", "CPMT, output tokens")):
        meas = [d["cpmt"][f"{key}_usd_per_mtok"] for d in designs]
        ideal = [d["cpmt"][f"ideal_{key}_usd_per_mtok"] for d in designs]
        errs = [_abs_err(m, d["spread_rsd"].get(f"cpmt_{key}_usd_per_mtok")) for m, d in zip(meas, designs)]
        ax.bar(x - 0.2, [i if isinstance(i, (int, float)) else 0 for i in ideal], 0.4, label="ideal fabric",
               color="#bbbbbb")
        ax.bar(x + 0.2, [m if isinstance(m, (int, float)) else 0 for m in meas], 0.4, yerr=errs,
               label="measured fabric", color=COLORS[0], capsize=3)
        for xi, m in zip(x, meas):
            if isinstance(m, (int, float)):
                ax.text(xi + 0.2, m, fmt.usd(m, 4), ha="center", va="bottom", fontsize=7)
            else:
                ax.text(xi + 0.2, 0, "n/a", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_ylabel("USD per million tokens")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Derating and cost per million tokens; {_k_text(summary['scale'].get('k'))}"
                 + ("; error bars = std across repeats" if summary.get("repeats", 1) > 1 else ""), fontsize=10)
    fig.tight_layout()
    return _png(fig)


def tornado(sens: dict, top: int = 10) -> bytes:
    """Horizontal bars around the base CPMT ratio B ÷ A, one per input, widest on top."""
    swings = sens["swings"][:top]
    base = sens["base"]
    fig, ax = plt.subplots(figsize=(9.5, 0.42 * len(swings) + 1.6))
    y = np.arange(len(swings))[::-1]          # widest first = top row
    for yi, sw in zip(y, swings):
        for end, color, label in (("figure_low", COLORS[0], "input at its low end"),
                                  ("figure_high", COLORS[1], "input at its high end")):
            ax.barh(yi, sw[end] - base, left=base, color=color, height=0.6,
                    label=label if yi == y[0] else None)
    ax.set_yticks(y, [f"{sw['input']} ({sw['range']})" for sw in swings], fontsize=8)
    ax.axvline(base, color="black", lw=1)
    if min(min(sw["figure_low"], sw["figure_high"]) for sw in swings) < 1 < max(
            max(sw["figure_low"], sw["figure_high"]) for sw in swings):
        ax.axvline(1.0, color="grey", lw=1, ls="--", label="1 = equal CPMT")
    ax.set_xlabel(f"CPMT {sens['b']} ÷ CPMT {sens['a']} (base {base:.4f}; below 1: {sens['b']} is cheaper per token)")
    ax.set_title(f"Sensitivity of the CPMT ratio, widest {len(swings)} inputs", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def break_even_curve(sens: dict) -> bytes:
    """Largest network premium (r − 1)/f against the network share f, one line per η gain."""
    be = sens["break_even"]
    f = np.array([row["f"] for row in be["curve"]])
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for j, gain in enumerate(be["eta_gain"]):
        ax.plot(f * 100, [row["max_premium"][j] * 100 for row in be["curve"]], marker="o", color=COLORS[j % len(COLORS)],
                label=f"η higher by {gain * 100:g}%")
    ax.set_xlabel("network share f of the baseline's hourly cost (%)")
    ax.set_ylabel("largest network premium (%)")
    ax.set_yscale("log")
    ax.set_title("Break-even: how much dearer a network may be for an η gain", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _abs_err(value, rsd):
    if isinstance(value, (int, float)) and isinstance(rsd, (int, float)) and math.isfinite(value):
        return abs(value) * rsd
    return 0.0


def all_plots(summary: dict) -> list[dict]:
    """Every figure of the report: ``[{id, title, caption, png}]`` (or ``error`` instead of ``png``).

    Distributions use the first finished repeat of each design (the tables average all repeats).
    """
    k = summary["scale"].get("k")
    firsts = {}
    for d in summary["designs"]:
        ok = [r for r in d["runs"] if r["status"] == "ok"]
        if ok:
            firsts[d["name"]] = ok[0]
    plots = []

    def attempt(pid, title, caption, make):
        try:
            png = make()
            plots.append({"id": pid, "title": title, "caption": caption, "png": png, "error": None})
        except Exception as exc:  # a figure that cannot be drawn is reported, not fatal
            plots.append({"id": pid, "title": title, "caption": caption, "png": None,
                          "error": f"{type(exc).__name__}: {exc}"})

    if not firsts:
        return [{"id": "none", "title": "Plots", "caption": "", "png": None,
                 "error": "n/a: no design finished a run, so there is nothing to plot"}]
    reps = ", ".join(f"{n} r{r['repeat']}" for n, r in firsts.items())

    def owd():
        return owd_ccdf({n: S.owd_by_class(Path(r["run_dir"]), None) for n, r in firsts.items()}, k)

    def slow():
        return slowdown_cdf({n: S.slowdown_by_class(Path(r["run_dir"])) for n, r in firsts.items()}, k)

    def heat():
        data = {n: S.fabric_utilization(Path(r["run_dir"])) for n, r in firsts.items()}
        missing = [n for n, v in data.items() if v is None]
        data = {n: v for n, v in data.items() if v is not None}
        if not data:
            raise ValueError("no fabric-link counters in any run's links.parquet")
        if missing:
            raise_note.append(f"no fabric-link counters for {', '.join(missing)}")
        return utilization_heatmap(data, k)

    raise_note: list[str] = []
    attempt("owd-ccdf", "One-way delay CCDF per class",
            f"P(one-way delay > x) on log–log axes, per traffic class, one line per design ({reps}). Lost "
            f"packets count as infinitely late: the curve cannot fall below the loss ratio (dotted). "
            f"Delays are real time; scale factor {_k_text(k)}.", owd)
    attempt("slowdown-cdf", "Message completion slowdown CDF",
            f"Per message: completion time ÷ the contention-free ideal (bytes at the sender's line rate + idle "
            f"path delay). 1 = no fabric penalty. Messages with lost packets use the go-back-N recovery model. "
            f"Runs: {reps}; {_k_text(k)}.", slow)
    attempt("util-heatmap", "Fabric link utilization over time",
            f"Each row is one direction of one edge ↔ spine/NCF link; colour = delivered bits ÷ configured rate "
            f"per counter sample. Uneven rows at the same time show load-balancing imbalance (ECMP hash "
            f"collisions). Runs: {reps}; {_k_text(k)}.", heat)
    if raise_note:
        plots[-1]["caption"] += " " + "; ".join(raise_note) + "."
    attempt("eta-cpmt", "η and CPMT per design",
            "Left: fabric derating η per traffic pattern and combined (1 = the fabric costs no tokens). Middle and "
            "right: cost per million tokens on the measured fabric vs an ideal (contention-free) one.",
            lambda: eta_cpmt_bars(summary))
    sens = summary["comparison"].get("sensitivity") or {}
    if sens.get("swings"):
        attempt("tornado", "Sensitivity of the CPMT ratio (tornado)",
                f"CPMT {sens['b']} ÷ CPMT {sens['a']} (runs {sens['run_b']} and {sens['run_a']}) with one input at a "
                f"time at the low (blue) and high (red) end of its range, the widest {min(TORNADO_ROWS, len(sens['swings']))} "
                f"inputs, widest on top; the black line is the base ratio. Ranges are plausible spans, not confidence "
                f"intervals (docs/economics.md §4).", lambda: tornado(sens, TORNADO_ROWS))
        attempt("break-even-plot", "Break-even network premium against network share",
                "The largest network premium a design may pay and still win, (r − 1)/f, against the network's share f "
                "of the baseline's hourly cost, for η gains r − 1 of 1–10%.", lambda: break_even_curve(sens))
    return plots
