"""The report's tables as rows of display strings, built once from the summary dict.

HTML, Markdown and the terminal all render these same :class:`Table` objects, so the three
always show the same numbers. A value that could not be computed shows as ``n/a [n]`` where
note ``[n]`` (listed under the table) says why; infinity shows as ``∞``. Numbers are formatted
by :mod:`fabric.fmt`, like everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric import fmt
from fabric.analysis.fidelity import THRESHOLDS
from fabric.report.summary import CLASS_FIGURES, FIGURES, INTERVAL_FIGURES


@dataclass
class Table:
    id: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    caption: str = ""


class _Notes:
    """Numbered footnotes, one per distinct reason; each lists the cells it explains.

    The table's notes list holds them first, in number order (see :meth:`finish`)."""

    def __init__(self, table: Table):
        self.table = table
        self.index: dict[str, int] = {}
        self.where: dict[str, list[str]] = {}

    def mark(self, reason: str, where: str = "") -> str:
        if reason not in self.index:
            self.index[reason] = len(self.index) + 1
            self.where[reason] = []
        if where and where not in self.where[reason]:
            self.where[reason].append(where)
        return f"[{self.index[reason]}]"

    def finish(self) -> Table:
        lines = [f"[{n}] {r}" + (f" ({'; '.join(self.where[r])})" if self.where[r] else "")
                 for r, n in self.index.items()]
        self.table.notes = lines + self.table.notes
        return self.table


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt_value(v, kind: str = "num") -> str:
    """One figure for display in a report table (:func:`fabric.fmt.figure`, infinity as ∞)."""
    return fmt.figure(v, kind, inf=fmt.INF_SIGN)


FIGURE_FORMAT = {"eta_combined": "ratio", "eta_kv": "ratio", "eta_moe": "ratio", "eta_tp": "ratio",
                 "cpmt_total_usd_per_mtok": "usd", "cpmt_output_usd_per_mtok": "usd",
                 "cpmt_ideal_total_usd_per_mtok": "usd", "cpmt_ideal_output_usd_per_mtok": "usd",
                 "cost_per_hour_usd": "usd", "network_usd_per_hour": "usd", "network_share": "pct",
                 "tokens_per_kwh": "int", "tokens_per_s_per_mw": "int", "facility_power_kw": "num",
                 "loss_ratio": "pct", "served_total_tokens_per_s": "int", "core_imbalance_max_over_mean": "ratio",
                 "packets_sent": "int", "messages": "int"}


def _significance_of(summary: dict, design: str) -> dict:
    for pair in summary["comparison"]["significance"]["pairs"]:
        if pair["b"] == design:
            return pair["figures"]
    return {}


def interval_text(bounds, kind: str) -> str:
    """`` [lo–hi]``: a 95% interval in the figure's own format; nothing when there is none."""
    if not bounds or bounds[0] is None or bounds[1] is None:
        return ""
    return f" [{fmt_value(bounds[0], kind)}–{fmt_value(bounds[1], kind)}]"


def _interval_notes(summary: dict) -> list[str]:
    """Which interval each design's η and CPMT cells show (one note per distinct method)."""
    by_method: dict[str, list[str]] = {}
    for d in summary["designs"]:
        methods = {m for m in (d.get("interval_method") or {}).values() if m}
        for m in sorted(methods):
            by_method.setdefault(m, []).append(d["name"])
    if not by_method:
        return []
    return ["[lo–hi] = 95% interval of η and CPMT. " + "; ".join(f"{', '.join(names)}: {m}"
                                                                 for m, names in by_method.items())
            + ". With repeats the significance of a difference from the baseline is judged by Welch's t-test over "
              "repeats; with one repeat by whether the runs' bootstrap intervals overlap."]


def _cell(summary, d, key, value, rsd, na_reason, notes: _Notes, sig_key=None, interval=False) -> str:
    if value is None and not d["repeats_ok"]:
        return "n/a " + notes.mark(f"{d['name']}: {d['status'].replace('_', ' ')}"
                                   + (f" — {d['reason']}" if d.get("reason") else ""))
    if value is None:
        reason = na_reason or "not computed"
        return "n/a " + notes.mark(reason, f"{d['name']} {FIGURES.get(key, CLASS_FIGURES.get(key, (key,)))[0]}")
    text = fmt_value(value, FIGURE_FORMAT.get(key, "num"))
    if interval:
        text += interval_text((d.get("interval_95") or {}).get(key), FIGURE_FORMAT.get(key, "num"))
    if value == "inf" and na_reason:
        text += " " + notes.mark(na_reason, f"{d['name']} {CLASS_FIGURES.get(key, FIGURES.get(key, (key,)))[0]}")
    if summary.get("repeats", 1) > 1 and _is_num(rsd):
        text += f" ±{fmt.percent(rsd, 0)}"
    sig = _significance_of(summary, d["name"]).get(sig_key or key)
    if sig and sig.get("significant") is False:
        text += " (n.s.)"
    return text


def _fidelity_cell(d: dict) -> str:
    fid = d["fidelity"]
    v = fid["verdict"]
    if v is None:
        return "n/a"
    if fid["trusted"]:
        return "trusted"
    failing = sorted({s for r in fid["per_run"] for s in r["tripped"]})
    return f"⚠ {v.upper()}" + (f" ({', '.join(failing)})" if failing else "")


def _status_cell(d: dict) -> str:
    if d["status"] == "ok":
        return f"ok ({d['repeats_ok']}/{d['repeats_total']})" if d["repeats_total"] > 1 else "ok"
    return f"{d['status'].upper()} ({d['repeats_ok']}/{d['repeats_total']} ok)"


def verdict_table(summary: dict) -> Table:
    k = summary["scale"].get("k")
    t = Table("verdict", "Verdict per design", [
        "Design", "Status", "Fidelity", "η combined (set by)", "η KV", "η MoE", "η TP", "CPMT total $/Mtok",
        "CPMT output $/Mtok", "Cluster cost $/h", "Network share of cost", "Loss (all packets)",
        "Spine/NCF imbalance max/mean"],
        caption=(f"Means over finished repeats; [lo–hi] = 95% interval (see the note below the table); ±x% = "
                 f"relative standard deviation across repeats; (n.s.) = the difference from the baseline "
                 f"{summary['comparison']['baseline']} is not significant (its 95% interval includes zero). "
                 f"Real-world units; scale factor k = {k:g}." if _is_num(k) else
                 "Means over finished repeats; real-world units; designs ran at different scale factors k."))
    notes = _Notes(t)
    t.notes += _interval_notes(summary)
    for d in summary["designs"]:
        f, na, sp = d["figures"], d["figures_na"], d["spread_rsd"]
        c = lambda key: _cell(summary, d, key, f[key], sp.get(key), na.get(key), notes,  # noqa: E731
                              interval=key in INTERVAL_FIGURES)
        eta = c("eta_combined")
        if d["eta"].get("set_by") and f["eta_combined"] is not None:
            eta += f" ({d['eta']['set_by']})"
        t.rows.append([d["name"], _status_cell(d), _fidelity_cell(d), eta, c("eta_kv"), c("eta_moe"), c("eta_tp"),
                       c("cpmt_total_usd_per_mtok"), c("cpmt_output_usd_per_mtok"), c("cost_per_hour_usd"),
                       c("network_share"), c("loss_ratio"), c("core_imbalance_max_over_mean")])
        if d["status"] == "partial":
            bad = [r for r in d["runs"] if r["status"] != "ok"]
            t.notes.append(f"{d['name']}: {len(bad)} of {len(d['runs'])} runs did not finish ("
                           + "; ".join(f"r{r['repeat']} {r['status']}: {r.get('reason')}" for r in bad)
                           + "); figures are over the finished ones")
    return notes.finish()


def class_table(summary: dict) -> Table:
    k = summary["scale"].get("k")
    t = Table("classes", "Tails per traffic class", [
        "Class", "Design", "Packets sent", "OWD p50 µs", "OWD p99 µs", "OWD p99.9 µs", "OWD p99−p50 µs",
        "MCT p50 ms", "MCT p99 ms", "MCT p99.9 ms", "Slowdown p99", "Group completion p99 ms", "Loss"],
        caption=("One-way delay (OWD, RFC 7679; lost packets count as infinitely late) and message completion "
                 "time (MCT: scheduled start → last packet's kernel receive time; lost packets → go-back-N "
                 "recovery model). Slowdown = MCT ÷ contention-free MCT. Real time"
                 + (f"; scale factor k = {k:g}." if _is_num(k) else ".")))
    notes = _Notes(t)
    from fabric.report.summary import ordered_classes
    kinds = ordered_classes({c for d in summary["designs"] for c in d["classes"]})
    keys = ["packets_sent", "owd_p50_us", "owd_p99_us", "owd_p99_9_us", "owd_p99_minus_p50_us", "mct_p50_ms",
            "mct_p99_ms", "mct_p99_9_ms", "slowdown_p99", "group_completion_p99_ms", "loss_ratio"]
    for kind in kinds:
        for d in summary["designs"]:
            if kind not in d["classes"]:
                if d["repeats_ok"] == 0:
                    reason = f"{d['name']}: {d['status'].replace('_', ' ')}" + (f" — {d['reason']}" if d.get("reason") else "")
                    t.rows.append([kind, d["name"]] + ["n/a " + notes.mark(reason)] * len(keys))
                continue
            row = [kind, d["name"]]
            for key in keys:
                row.append(_cell(summary, d, key, d["classes"][kind][key],
                                 d["classes_spread_rsd"].get(kind, {}).get(key),
                                 d["classes_na"].get(kind, {}).get(key), notes, sig_key=f"{kind}.{key}"))
            t.rows.append(row)
    return notes.finish()


def economics_table(summary: dict) -> Table:
    t = Table("economics", "Tokens and cost", [
        "Design", "Accelerators", "Tokens/s served (total)", "CPMT total $/Mtok", "CPMT total, ideal fabric",
        "CPMT output, ideal fabric", "Tokens per kWh", "Tokens/s per MW", "Facility power kW",
        "Cluster cost $/h", "Network cost $/h", "Network capex $", "η set by"],
        caption="Ideal fabric = the same cluster with no contention (η = 1). CPMT = C_hour × 10⁶ ÷ (tokens/s × 3600). "
                "Energy: facility power = (accelerators × board power × all-in ratio + network power) × PUE; tokens "
                "served at the measured η per kWh and per MW of it (docs/economics.md, Energy).")
    notes = _Notes(t)
    t.notes += _interval_notes(summary)
    for d in summary["designs"]:
        f, na = d["figures"], d["figures_na"]
        c = lambda key: _cell(summary, d, key, f[key], d["spread_rsd"].get(key), na.get(key), notes,  # noqa: E731
                              interval=key in INTERVAL_FIGURES)
        t.rows.append([d["name"], fmt_value(d["cpmt"]["accelerators"], "int"), c("served_total_tokens_per_s"),
                       c("cpmt_total_usd_per_mtok"),
                       c("cpmt_ideal_total_usd_per_mtok"), c("cpmt_ideal_output_usd_per_mtok"),
                       c("tokens_per_kwh"), c("tokens_per_s_per_mw"), c("facility_power_kw"),
                       c("cost_per_hour_usd"), c("network_usd_per_hour"),
                       fmt_value(d["cpmt"]["network_capex_usd"], "int") if d["cpmt"]["network_capex_usd"] is not None
                       else "n/a", d["eta"].get("set_by") or ("none below 1" if d["repeats_ok"] else "n/a")])
    return notes.finish()


def break_even_lines(summary: dict) -> list[str]:
    lines = []
    comp = summary["comparison"]
    if len(summary["designs"]) < 2:
        return ["n/a: only one design, nothing to compare"]
    for be in comp["break_even"]:
        lines.append(be["statement"])
    finished = {d["name"] for d in summary["designs"] if d["repeats_ok"]}
    for d in summary["designs"][1:]:
        if d["name"] not in {b["b"] for b in comp["break_even"]}:
            why = ("the baseline has no finished run" if comp["baseline"] not in finished else
                   "it has no finished run" if d["name"] not in finished else "its cost model failed")
            lines.append(f"{d['name']} vs {comp['baseline']}: n/a ({why})")
    return lines


def mix_break_even_lines(summary: dict) -> list[str]:
    """One line per accelerator mix against the fabric's first mix (``comparison.mix_break_even``)."""
    return [be["statement"] for be in summary["comparison"].get("mix_break_even") or []]


def pools_table(summary: dict) -> Table | None:
    """Each design's serving pools sized from the stages (docs/economics.md §6); None when no design has them."""
    rows = []
    fits = []
    for d in summary["designs"]:
        sp = d.get("stage_pools")
        if not sp:
            continue
        for p in sp["pools"]:
            rows.append([d["name"], p["stage"], p["group"], p["accelerator"], f"{p['accelerators']:.2f}",
                         fmt.usd(p["usd_per_accelerator_hour"]) + "/h", fmt.ratio(p["eta"]),
                         fmt.count(p["tokens_per_s_per_accelerator"]),
                         f"{p['accelerators_at_target']:.2f} ({p['instances_at_target']} × {p['instance_hosts']})"])
        fits.append(f"{d['name']}: {sp['fit']['statement']}; pools above are sized to the load at "
                    f"{sp['target_requests_per_s']:.3g} requests/s")
        fe = d.get("frontend")
        if fe:
            busy = fe["busy_share"]
            rows.append([d["name"], "front end", "(CPU servers)", ", ".join(fe["usd_per_server_hour"]),
                         f"{fe['servers']:.2f}", ", ".join(fmt.usd(v) + "/h" for v in fe["usd_per_server_hour"].values()),
                         "n/a", "n/a", "as built" + (f" ({fmt.percent(busy, 2)} busy)" if busy is not None else "")])
    if not rows:
        return None
    return Table("pools", "Serving pools sized from the stages",
                 ["Design", "Stage", "Host group", "Accelerator", "Accelerators costed", "Price each", "η",
                  "Tokens/s each", "Needed at target (instances)"], rows, notes=fits,
                 caption="Each stage's accelerators from its catalog rate and the requests' prompt and output tokens, "
                         "each pool priced at its own accelerator (docs/economics.md §6).")


def winner_line(summary: dict) -> str | None:
    """The lowest-CPMT statement: a winner only when its lead is significant (``comparison.winner``)."""
    w = summary["comparison"].get("winner")
    return w["statement"] if w else None


def sensitivity_table(summary: dict) -> Table | None:
    """The tornado of ``comparison.sensitivity`` as rows, widest swing first (None: not applicable)."""
    sens = summary["comparison"].get("sensitivity")
    if not sens:
        return None
    b, a = sens.get("b") or "n/a", sens["a"]
    t = Table("sensitivity", f"Sensitivity: CPMT {b} ÷ CPMT {a}",
              ["Input", "Range", "Ratio at low", "Ratio at high", "Swing"],
              caption=("One input at a time moved across a plausible range (not a confidence interval), the others at "
                       "their values; the CPMT ratio B ÷ A at each end, widest swing first. Below 1, B is cheaper per "
                       "token. Inputs both designs share mostly cancel (docs/economics.md §4)."))
    if sens.get("skipped"):
        t.notes.append(f"n/a: {sens['skipped']}")
        return t
    t.caption = f"Base ratio {fmt.fixed(sens['base'], 4)} (runs {sens['run_b']} ÷ {sens['run_a']}). " + t.caption
    for sw in sens["swings"]:
        flips = (sw["figure_low"] - 1) * (sw["figure_high"] - 1) < 0
        t.rows.append([sw["input"], sw["range"], fmt.fixed(sw["figure_low"], 4), fmt.fixed(sw["figure_high"], 4),
                       fmt.fixed(sw["spread"], 4) + (" (crosses 1)" if flips else "")])
    if sens.get("note"):
        t.notes.append(sens["note"])
    t.notes.append("(crosses 1) = within its range this input alone changes which design is cheaper per token.")
    return t


def break_even_curve_table(summary: dict) -> Table | None:
    """Largest network premium a design may pay for an η gain, per network share f (``comparison.sensitivity``)."""
    sens = summary["comparison"].get("sensitivity")
    if not sens or sens.get("skipped"):
        return None
    be = sens["break_even"]
    t = Table("break-even-curve", "Break-even network premium",
              ["Network share f"] + [f"η +{fmt.percent(g, 0)}" for g in be["eta_gain"]],
              caption=f"Largest network premium (r − 1)/f a design may pay and still win: {be['rule']}.")
    for row in be["curve"]:
        t.rows.append([fmt.percent(row["f"], 0)] + [fmt.percent(p, 0) for p in row["max_premium"]])
    return t


FIDELITY_MEASURES = ["noise_floor_p99_us", "cpu_some_avg10_max_pct", "cpu_some_stall_fraction",
                     "sender_late_p95_us", "sender_late_p95_rel", "link_rate_error", "host_side_loss_ratio",
                     "scheduler_late_p99_rel"]


def fidelity_table(summary: dict) -> Table:
    heads = ["Design", "Run", "Verdict"] + [f"{m} (warn/fail {THRESHOLDS[m][0]:g}/{THRESHOLDS[m][1]:g})"
                                           for m in FIDELITY_MEASURES] + ["Failing signals"]
    t = Table("fidelity", "Fidelity per run", heads,
              caption="A measure trips when strictly above its threshold. trusted: none past warn; degraded: exactly "
                      "one signal past warn; untrusted: any past fail or two past warn. '—' = not measurable in "
                      "this run (e.g. no busy link, no scheduler).")
    for d in summary["designs"]:
        for r in d["runs"]:
            if r["status"] != "ok":
                t.rows.append([d["name"], f"r{r['repeat']}", f"{r['status']}"] + ["—"] * len(FIDELITY_MEASURES)
                              + [r.get("reason") or ""])
                continue
            m = r.get("fidelity_measures") or {}
            cells = []
            for name in FIDELITY_MEASURES:
                v = m.get(name)
                if v is None:
                    cells.append("—")
                    continue
                warn, fail, _ = THRESHOLDS[name]
                mark = " ✗" if _is_num(v) and v > fail else " !" if _is_num(v) and v > warn else ""
                cells.append(fmt_value(v) + mark)
            t.rows.append([d["name"], f"r{r['repeat']}", r.get("fidelity_verdict") or "n/a"] + cells
                          + [", ".join(r.get("fidelity_tripped") or []) or "none"])
    t.notes.append("! = past the warning threshold, ✗ = past the fail threshold.")
    return t


def designs_table(summary: dict) -> Table:
    t = Table("designs", "Designs", ["Design", "Kind", "File (sha256)", "Hosts", "Switches", "Host link",
                                     "Fabric link", "Load balancing", "Oversubscription", "Bisection", "Runs"])
    for d in summary["designs"]:
        f = d.get("facts") or {}
        sw = ", ".join(f"{n} {role}" for role, n in (f.get("switches") or {}).items()) or "n/a"
        t.rows.append([d["name"], d.get("kind") or "n/a",
                       f"{d.get('topology_path') or 'n/a'} ({(d.get('topology_sha256') or '')[:12] or 'n/a'})",
                       fmt_value(f.get("hosts"), "int"), sw, host_link_text(f),
                       _rate(f.get("fabric_link_rate_bps")), str(f.get("load_balancing") or "n/a"),
                       fmt_value(f.get("oversubscription"), "num") + ":1" if _is_num(f.get("oversubscription")) else "n/a",
                       _rate(f.get("bisection_bps")), f"{d['repeats_ok']}/{d['repeats_total']} ok"])
    return t


def runs_table(summary: dict) -> Table:
    t = Table("runs", "Runs", ["Design", "Repeat", "Status", "Wall time s", "k", "Seed / hash seed", "Run directory",
                               "Reason"])
    for d in summary["designs"]:
        for r in d["runs"]:
            t.rows.append([d["name"], f"r{r['repeat']}", r["status"], fmt_value(r.get("wall_time_s")),
                           fmt_value(r.get("scale_k")) if r.get("scale_k") else "n/a",
                           f"{r.get('seed') if r.get('seed') is not None else 'n/a'} / "
                           f"{r.get('hash_seed') if r.get('hash_seed') is not None else 'n/a'}",
                           r["run_dir"], r.get("reason") or r.get("cpmt_error") or ""])
    return t


def cost_inputs_table(summary: dict) -> Table:
    src = summary["cost_inputs"].get("source")
    t = Table("cost-inputs", "Cost-model inputs", ["Input", "Value", "Unit", "Source", "Designs"],
              caption=("Every input the cost model used, with where it came from"
                       + (f"; cost file {src}" if src else "; catalog defaults (no --costs file)") + "."))
    for item in summary["cost_inputs"].get("inputs") or []:
        v = item.get("value")
        shown = fmt_value(v) if _is_num(v) else str(v)
        t.rows.append([item["name"], shown, item.get("unit") or "", item.get("source") or "",
                       item.get("designs") or "all"])
    return t


def workload_lines(summary: dict) -> list[str]:
    w = summary.get("workload") or {}
    lines = []
    name = w.get("name") or "n/a"
    lines.append(f"profile: {w.get('path') or 'n/a'} ({name})" + (f" — {w['description']}" if w.get("description") else ""))
    if w.get("model"):
        lines.append(f"model: {w['model']}")
    parts = []
    if w.get("duration_s") is not None:
        parts.append(f"duration {w['duration_s']:g} s")
    if w.get("seed") is not None:
        parts.append(f"seed {w['seed']}")
    if w.get("messages") is not None:
        parts.append(f"{fmt.count(w['messages'])} messages")
    if w.get("bytes") is not None:
        parts.append(f"{w['bytes'] / 1e9:,.2f} GB real-world")
    if parts:
        lines.append(", ".join(parts))
    for kind, pk in (w.get("per_kind") or {}).items():
        lines.append(f"class {kind}: {fmt.count(pk['messages'])} messages, {pk['bytes'] / 1e9:,.3f} GB")
    if w.get("mismatch"):
        lines.append(f"WARNING: {w['mismatch']}")
    return lines


def scale_lines(summary: dict) -> list[str]:
    s = summary.get("scale") or {}
    k = s.get("k")
    if not _is_num(k):
        return ["k differs between designs (see the runs table): " + (s.get("meaning") or "")]
    lines = [f"k = {k:g}: {s.get('meaning') or ''}"]
    facts = next((d["facts"] for d in summary["designs"] if d.get("facts")), {})
    # Every host link rate of the first design (one, unless its host groups have different NICs).
    rates = [m["rate_bps"] for m in facts.get("host_link_mix") or []] or [facts.get("host_link_rate_bps")]
    packet_bits = 4096 * 8
    for hl in (r for r in rates if _is_num(r)):
        lines.append(f"a {_rate(hl)} host link was emulated at {_rate(hl / k)}; a 4096-byte packet then takes "
                     f"{fmt.count(packet_bits / (hl / k) * 1e6)} µs to serialize instead of "
                     f"{fmt.count(packet_bits / hl * 1e9)} ns: queueing delays come out in real time, per-packet "
                     f"granularity is k× coarser")
    if _is_num(s.get("dilation")) and s["dilation"] != 1:
        lines.append(f"time dilation D = {s['dilation']:g}: the emulated fabric ran D× slower (rates ÷ k·D, schedule "
                     f"times × D) so bursts of small messages fit the machine; figures are converted back to real time")
    if s.get("reason"):
        lines.append(f"chosen because: {s['reason']}")
    if _is_num(s.get("peak_offered_bps")):
        lines.append(f"peak offered load {fmt.count(s['peak_offered_bps'] / 1e9)} Gbit/s real → "
                     f"{fmt.count(s.get('peak_pps_emulated', 0))} packets/s emulated "
                     f"(budget {fmt.count(s.get('budget_pps', 0))} packets/s)")
    lines.append("the same k is used for every design, so their per-packet granularity is the same")
    return lines


def _rate(bps) -> str:
    return fmt.rate(bps, inf=fmt.INF_SIGN)


def host_link_text(facts: dict) -> str:
    """A design's host link rate, or its mix when host groups have different NICs:
    ``4 × 800 Gbit/s, 4 × 600 Gbit/s (3 × 200 Gbit/s), 8 × 400 Gbit/s`` (hosts × rate, fastest first)."""
    mix = facts.get("host_link_mix") or []
    if len(mix) <= 1 and all(m["nic_count"] == 1 for m in mix):
        return _rate(facts.get("host_link_rate_bps"))
    parts = []
    for m in mix:
        nics = f" ({m['nic_count']} × {_rate(m['nic_rate_bps'])})" if m["nic_count"] > 1 else ""
        parts.append(f"{m['hosts']} × {_rate(m['rate_bps'])}{nics}")
    return ", ".join(parts)


def all_tables(summary: dict) -> dict[str, Table]:
    """Every table of the report by id; ``sensitivity`` and ``break-even-curve`` only when applicable."""
    tables = (verdict_table(summary), class_table(summary), economics_table(summary), pools_table(summary),
              sensitivity_table(summary), break_even_curve_table(summary),
              fidelity_table(summary), designs_table(summary), runs_table(summary), cost_inputs_table(summary))
    return {t.id: t for t in tables if t is not None}


def markdown_table(t: Table) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")
    out = ["| " + " | ".join(esc(h) for h in t.headers) + " |",
           "|" + "|".join("---" for _ in t.headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in t.rows]
    return "\n".join(out)
