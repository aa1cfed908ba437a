"""What fabric prints on the terminal: figures of one run, a run's CPMT, the verdict of a
comparison, a finished run's status line, and a progress bar while the emulator works.

Commands render through these functions, so ``fabric run`` shows the same per-class table as
``fabric analyze`` and the same CPMT lines as ``fabric cpmt``, and ``fabric compare`` and
``fabric report`` print the same verdict. Every number goes through :mod:`fabric.fmt`. Functions
return text where they can (the command echoes it); the verdict and the progress bars draw
with rich.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fabric import fmt

# What each emulator stage is doing, for progress bars (the runner reports stages by these keys).
STAGES = {"calibrate": "measuring the packet budget (once per boot)", "build": "building the fabric",
          "replay": "replaying the schedule", "collect": "collecting records",
          "import": "starting the simulator (ns-3)", "simulate": "simulating the schedule"}


def _us(v) -> str:
    return fmt.fixed(v, 1, none="-")


def metrics_summary(metrics: dict) -> str:
    """A short table per traffic class: OWD p50/p99/p99.9 (loss-aware), loss, MCT p99, then
    spine/NCF imbalance and the fidelity verdict with the signals that tripped (``fabric analyze``,
    ``fabric run``). Undefined figures show as ``-``."""
    lines = []
    k = (metrics.get("scale") or {}).get("k")
    dilation = (metrics.get("scale") or {}).get("dilation", 1.0) or 1.0
    slow = f", time dilation {dilation:g} (the fabric ran {dilation:g}x slower; times shown undilated)" if dilation > 1 else ""
    lines.append(f"scale k = {k:g} (bytes and rates in real units; times unscaled){slow}" if k else "scale k = ?")
    head = f"{'class':<14}{'packets':>10}{'OWD p50 us':>12}{'p99 us':>10}{'p99.9 us':>10}" \
           f"{'p99-p50':>10}{'loss':>9}{'MCT p99 ms':>12}{'recovered':>10}"
    lines.append(head)
    for name, c in sorted((metrics.get("classes") or {}).items()):
        o = c.get("owd_us", {})
        p50, p99 = o.get("p50"), o.get("p99")
        spread = "inf" if "inf" in (p50, p99) else (None if p50 is None or p99 is None else float(p99) - float(p50))
        loss = c.get("loss_ratio")
        lines.append(f"{name:<14}{o.get('n', 0):>10}{_us(p50):>12}{_us(p99):>10}{_us(o.get('p99_9')):>10}"
                   f"{_us(spread):>10}{fmt.percent(loss, 3, none='-'):>9}"
                   f"{fmt.fixed((c.get('mct_ms') or {}).get('p99'), 3, none='-'):>12}"
                   f"{(c.get('messages') or {}).get('recovered', 0):>10}")
    si = metrics.get("spine_imbalance") or {}
    if si.get("cores"):
        lines.append(f"core load imbalance (max/mean over {si['cores']} spines/NCFs): {fmt.fixed(si.get('max_over_mean'), 3, none='-')}")
    fid = metrics.get("fidelity") or {}
    verdict = fid.get("verdict", "?")
    flagged = fid.get("failing", []) + fid.get("warning", [])
    lines.append(f"fidelity: {verdict}" + (f" ({', '.join(flagged)})" if flagged else ""))
    for reason in fid.get("reasons", []):
        lines.append(f"  {reason}")
    return "\n".join(lines)


def _eta(v) -> str:
    return fmt.ratio(v, none="not in run")


def _ms(seconds) -> str:
    return fmt.fixed(seconds, 3, scale=1e3, suffix=" ms")


def _interval(bounds, show) -> str:
    """`` [lo–hi]`` (95% bootstrap interval within the run), or nothing when undefined or a point."""
    if not bounds or bounds[0] == bounds[1]:
        return ""
    return f" [95% {show(bounds[0])}–{show(bounds[1])}]"


def cpmt_summary(r: dict) -> str:
    """Seven lines: η per pattern, CPMT measured and ideal, hourly cost, energy (tokens per kWh and per MW of
    facility power), break-even (``fabric cpmt``, ``fabric run``)."""
    e = r["eta"]
    d = r["design"]
    pools = r["pools"]
    lines = [
        f"{d['name']} ({d['kind']}, {d['hosts']} hosts"
        + (f", costed at {d['costed_accelerators']:,.0f} accelerators" if d["costed_accelerators"] != d["hosts"] else "")
        + f"; {pools['model']} pools, prefill {fmt.percent(pools['prefill_share'], 0)} of accelerator time)",
        f"  η           kv {_eta(e['kv'])}  moe {_eta(e['moe'])}  tp {_eta(e['tp'])}  "
        + (f"tp prefill {_eta(e['tp_prefill'])}  " if e.get("tp_prefill") is not None else "") +
        f"combined {fmt.ratio(e['combined'])}" + _interval(r["eta_interval"]["combined"], fmt.ratio)
        + (f"  (set by {e['set_by']})" if e["set_by"] else ""),
        f"  CPMT total  {fmt.usd(r['cpmt_total_usd_per_mtok'])}/Mtok measured"
        + _interval(r["cpmt_total_interval"], fmt.usd) + f", {fmt.usd(r['cpmt_ideal']['total_usd_per_mtok'])}/Mtok ideal",
        f"  CPMT output {fmt.usd(r['cpmt_output_usd_per_mtok'])}/Mtok measured, "
        f"{fmt.usd(r['cpmt_ideal']['output_usd_per_mtok'])}/Mtok ideal",
        f"  cost        {fmt.usd(r['cost_per_hour_usd'])}/h, network share {fmt.percent(r['network_share'], 1)}",
        f"  energy      {_energy_line(r.get('energy'))}",
        f"  break-even  a design with a 30% dearer network must serve ≥ "
        f"{fmt.percent((r['break_even']['example_eta_ratio_needed'] - 1), 1)} more tokens (η_B/η_A > 1 + f·p)",
    ]
    lines += stage_pool_lines(r.get("stage_pools"))
    lines += front_end_lines(r)
    lines += [f"  warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)


def front_end_lines(r: dict, indent: str = "  ") -> list[str]:
    """The front-end CPU servers' cost and their share of TTFT (docs/economics.md §6); none without a front end."""
    c = r["cost"]
    out = []
    if c.get("frontend_servers"):
        each = ", ".join(f"{name} {fmt.usd(p['usd_per_hour'], 4)}/h" for name, p in c["frontend_pricing"].items())
        share = c["frontend_usd_per_hour"] / r["cost_per_hour_usd"] if r["cost_per_hour_usd"] else 0.0
        busy = c.get("frontend_busy_share")
        out.append(f"{indent}front end   {c['frontend_servers']:g} CPU servers ({each} each) = "
                   f"{fmt.usd(c['frontend_usd_per_hour'])}/h, {fmt.percent(share, 1)} of cost"
                   + (f"; cores {_busy(busy)} busy at the target rate (priced as built)" if busy is not None else ""))
    fe = ((r.get("patterns") or {}).get("kv") or {}).get("frontend")
    if fe:
        ttft = fe["ttft_share"]
        hops = []
        for name, label in (("tokens", "token ids"), ("stream", "first-token stream")):
            if fe.get(f"{name}_hop_measured_p99_s") is not None:
                hops.append(f"{label} hop p99 {fe[f'{name}_hop_measured_p99_s'] * 1e6:,.1f} µs "
                            f"(ideal p50 {fe[f'{name}_hop_ideal_p50_s'] * 1e6:,.1f} µs)")
        out.append(f"{indent}TTFT parts  " + ", ".join(f"{name} {fmt.percent(v, 1)}" for name, v in ttft.items()))
        if hops:
            out.append(f"{indent}            " + "; ".join(hops))
    return out


def stage_pool_lines(sp: dict | None, indent: str = "  ") -> list[str]:
    """Each stage's pools (accelerators costed, $/accelerator-hour, η, the size the target rate needs)
    and how the design's own pools fit the workload (docs/economics.md §6)."""
    if not sp:
        return []
    rate = sp["target_requests_per_s"]
    out = [f"{indent}pools       sized from the stages: P = {sp['prompt_tokens_mean']:,.0f} prompt, "
           f"O = {sp['output_tokens_mean']:,.0f} output tokens per request; at {rate:.3g} requests/s:"]
    for row in sp["pools"]:
        out.append(f"{indent}  {row['stage']:<8}{row['group']:<18}{row['accelerator']:<8}"
                   f"{row['accelerators']:>7.2f} costed  {fmt.usd(row['usd_per_accelerator_hour'])}/h each  "
                   f"η {fmt.ratio(row['eta'])}  {fmt.count(row['tokens_per_s_per_accelerator'])} tokens/s each  "
                   f"needs {row['accelerators_at_target']:.2f} ({row['instances_at_target']} × {row['instance_hosts']})")
    out.append(f"{indent}pool fit    {sp['fit']['statement']}")
    return out


def _busy(share: float) -> str:
    return fmt.percent(share, 1) if share >= 0.001 else f"{share * 100:.2g}%"


def _energy_line(en: dict | None) -> str:
    if not en or en.get("tokens_per_kwh") is None:
        return f"n/a ({en['note']})" if en and en.get("note") else "n/a"
    return (f"{fmt.count(en['tokens_per_kwh'])} tokens/kWh, {fmt.count(en['tokens_per_s_per_mw'])} tokens/s per MW "
            f"(facility {fmt.fixed(en['facility_power_kw'], 1)} kW at PUE {en['pue']:g})")


def cpmt_explain(r: dict) -> str:
    """The CPMT arithmetic step by step, every input with its source (``fabric cpmt --explain``)."""
    inputs = {i["name"]: i for i in r["inputs"]}

    def val(name, default=None):
        return inputs[name]["value"] if name in inputs else default

    p = r["patterns"]
    e = r["eta"]
    out = []
    rate = val("host_link_rate_bps", 0.0)
    idle = val("idle_path_delay_s", 0.0)
    out.append(f"Step 1 — completion times ({r['messages']} messages in {r['run_dir']})")
    out.append(f"  ideal    = message bytes × 8 / its NICs' rate ({rate / 1e9:g} Gbit/s for every host unless the design "
               f"mixes NICs; each NIC's messages back to back, no fabric contention) + idle path delay "
               f"{idle * 1e6:.1f} µs")
    out.append(f"  measured = t_rx_last − t_sched; {r['recovered_messages']} message(s) with lost packets charged "
               f"first lost packet's send + RTO {val('loss_recovery.rto_s', 0) * 1e3:.1f} ms + go-back-N resend from the first lost packet (the run's resends take turns on their NICs)")
    out.append("Step 2 — η per pattern")
    kv = p.get("kv")
    if kv:
        out.append(f"  KV (prefill→decode): {kv['requests']} requests, {kv['messages']} messages "
                   f"({kv['recovered_messages']} recovered), TTFT SLO {kv['ttft_slo_s']:.3f} s")
        out.append(f"    TTFT = queueing before prefill {fmt.fixed(kv.get('queue_before_prefill_mean_s', 0.0), 4)} s "
                   f"(mean) + prefill {fmt.fixed(kv['prefill_compute_s_mean'], 4)} s (mean) + KV group completion + "
                   f"first decode step {fmt.fixed(kv['first_decode_step_s'], 4)} s"
                   + (f" + front end: wait for a core and tokenize, token ids hop, first-token stream hop, detokenize "
                      f"(CPU {fmt.fixed(kv['frontend']['cpu_mean_s'], 4)} s mean)" if kv.get("frontend") else ""))
        out.append(f"    KV completion p50/p99: ideal {_ms(kv['kv_completion_ideal_p50_s'])} / "
                   f"{_ms(kv['kv_completion_ideal_p99_s'])}, measured {_ms(kv['kv_completion_measured_p50_s'])} / "
                   f"{_ms(kv['kv_completion_measured_p99_s'])}")
        out.append(f"    TTFT p99: ideal {fmt.fixed(kv['ttft_ideal_p99_s'], 4)} s, measured {fmt.fixed(kv['ttft_measured_p99_s'], 4)} s")
        if kv["eta"] is None:
            out.append(f"    requests meeting the SLO: ideal {fmt.percent(kv['attainment_ideal'], 1)} → η_KV undefined ({kv['note']})")
        else:
            out.append(f"    requests meeting the SLO: measured {fmt.percent(kv['attainment_measured'], 1)} ÷ ideal "
                       f"{fmt.percent(kv['attainment_ideal'], 1)} → η_KV = {fmt.ratio(kv['eta'])}")
    else:
        out.append("  KV (prefill→decode): no kv messages in this run → η_KV = 1")
    for key, label, what, sym in (("moe", "MoE all-to-all", "dispatch + combine", "η_MoE"),
                                  ("tp", "TP all-reduce (decode)", "all-reduce", "η_TP"),
                                  ("tp_prefill", "TP all-reduce (prefill)", "all-reduce", "η_TP,prefill")):
        d = p.get(key)
        if not d:
            if key != "tp_prefill":
                out.append(f"  {label}: not in this run → {sym} = 1")
            continue
        if key == "tp_prefill":
            out.append(f"  {label}: {d['steps']} prefill chunks, {d['groups']} groups, layer scale ×{d['layer_scale']:g}")
            out.append(f"    chunk = compute {_ms(d['compute_s'])} + max(0, {d['layer_scale']:g} × Σ(all-reduce group "
                       f"completions) − {d['overlap_fraction']:g} × compute): ideal {_ms(d['tpot_ideal_mean_s'])} ÷ "
                       f"measured {_ms(d['tpot_measured_mean_s'])} (means) → {sym} = {fmt.ratio(d['eta'])} "
                       f"(the prefill pool's η)")
            continue
        out.append(f"  {label}: {d['steps']} decode steps, {d['groups']} groups ({d['recovered_messages']} "
                   f"recovered messages), layer scale ×{d['layer_scale']:g}, overlap {fmt.percent(d['overlap_fraction'], 0)}")
        out.append(f"    TPOT = compute {_ms(d['compute_s'])} + max(0, {d['layer_scale']:g} × Σ({what} group "
                   f"completions) − {d['overlap_fraction']:g} × compute)")
        out.append(f"    Σ per step, mean: ideal {_ms(d['comm_ideal_mean_s'])}, measured {_ms(d['comm_measured_mean_s'])} "
                   f"(measured p99 {_ms(d['comm_measured_p99_s'])})")
        out.append(f"    TPOT mean: ideal {_ms(d['tpot_ideal_mean_s'])} ÷ measured {_ms(d['tpot_measured_mean_s'])} "
                   f"→ {sym} = {fmt.ratio(d['eta'])}; TPOT p99 measured {_ms(d['tpot_measured_p99_s'])} vs SLO "
                   f"{_ms(d['tpot_slo_s'])} ({'met' if d['tpot_slo_met_measured'] else 'MISSED'})")
    pools = r["pools"]
    share_src = inputs.get("serving.prefill_pool_share", {}).get("source", "")
    out.append(f"Step 3 — combined η (pools by their share of accelerator time; {pools['model']} pools)")
    out.append(f"  pool split: prefill a = {fmt.fixed(pools['prefill_share'], 3)}, decode b = "
               f"{fmt.fixed(pools['decode_share'], 3)} ({share_src})")
    out.append(f"  η_decode = one TPOT per step (compute once + exposed MoE + TP communication) = "
               f"{fmt.ratio(e['decode_pool'])}; η_prefill = {fmt.ratio(e['prefill_pool'])} "
               + ("(prefill chunk time, TP all-reduces across hosts)" if p.get("tp_prefill") else
                  "(prefill compute is not slowed)"))
    out += stage_pool_lines(r.get("stage_pools"), indent="  ")
    weight = pools.get("prefill_eta_weight", pools["prefill_share"])
    if pools["model"] == "rebalanced" and abs(weight - pools["prefill_share"]) > 1e-12:
        out.append(f"  weighted by cost: a rebalanced cluster buys 1/η_s more of stage s's accelerators, so each stage "
                   f"counts by its share of the pools' cost, prefill w = {fmt.fixed(weight, 3)} (accelerators "
                   f"priced apart, docs/economics.md §6)")
    pools_formula = (("1 / (a/η_prefill + b/η_decode)" if abs(weight - pools["prefill_share"]) <= 1e-12 else
                      "1 / (w/η_prefill + (1 − w)/η_decode)") if pools["model"] == "rebalanced" else
                     "min(β·η_prefill, η_decode) / min(β, 1), β = prefill ÷ decode capacity "
                     f"{fmt.fixed(val('serving.prefill_capacity_ratio', 1.0), 3)}")
    out.append(f"  η = η_KV (goodput: a request that misses TTFT serves no tokens) {fmt.ratio(e['kv_goodput'])} × "
               f"{pools_formula} = {fmt.ratio(e['combined'])}"
               + (f"; set by {e['set_by']}" if e["set_by"] else "; no pattern below 1"))
    c = r["cost"]
    out.append("Step 4 — hourly cost")
    for name, a in c["accelerator_pricing"].items():
        how = (f"{a['tier']} tier, all-in {fmt.usd(a['all_in_usd_per_hour'], 4)}/h less its network share "
               f"{fmt.percent(a['network_share_removed'], 0)} (the design's own network is added below)"
               if a["pricing"] == "tier" else
               f"bottom-up: {fmt.usd(a['purchase_price_usd'], 0)} + server {fmt.usd(a['server_share_usd'], 0)} amortized "
               f"{fmt.usd(a['capex_usd_per_hour'], 4)}/h + {a['power_w']:g} W all-in power "
               f"{fmt.usd(a['power_usd_per_hour'], 4)}/h + colocation {fmt.usd(a['colocation_usd_per_hour'], 4)}/h")
        out.append(f"  {name}: {fmt.usd(a['usd_per_hour'], 4)}/h per accelerator ({how})")
    out.append(f"  accelerators: {c['accelerators']:g} → {fmt.usd(c['accelerators_usd_per_hour'], 2)}/h")
    for name, a in (c.get("frontend_pricing") or {}).items():
        out.append(f"  {name} (front-end CPU server): bottom-up {fmt.usd(a['purchase_price_usd'], 0)} amortized "
                   f"{fmt.usd(a['capex_usd_per_hour'], 4)}/h + {a['power_w']:g} W {fmt.usd(a['power_usd_per_hour'], 4)}/h "
                   f"+ colocation {fmt.usd(a['colocation_usd_per_hour'], 4)}/h = {fmt.usd(a['usd_per_hour'], 4)}/h")
    if c.get("frontend_servers"):
        out.append(f"  front end: {c['frontend_servers']:g} servers → {fmt.usd(c['frontend_usd_per_hour'], 2)}/h")
    for i in c["bom"]:
        what = f"{i['role']} switch r{i['radix']} {i['speed']}" if i["category"] == "switch" else f"{i['speed']} {i['category']}"
        out.append(f"    {i['count']:>6} × {what:<26} {i['priced_as']:<34} {fmt.usd(i['unit_price_usd'], 0):>11}  "
                   f"{i['unit_power_w']:>7.1f} W each")
    out.append(f"  network capex {fmt.usd(c['network_capex_usd'], 0)} × CRF {fmt.fixed(c['network_crf_per_year'], 4)}/yr "
               f"(life {val('network.life_years'):g} y, cost of capital {fmt.percent(val('network.cost_of_capital'), 0)}) ÷ 8760 h "
               f"= {fmt.usd(c['network_capex_usd_per_hour'], 2)}/h")
    out.append(f"  network power {c['network_power_w'] / 1e3:,.2f} kW × PUE {val('facility.pue'):g} × "
               f"${val('facility.electricity_usd_per_kwh'):g}/kWh = {fmt.usd(c['network_power_usd_per_hour'], 2)}/h")
    front = f" + {fmt.usd(c['frontend_usd_per_hour'], 2)}" if c.get("frontend_servers") else ""
    out.append(f"  C_hour = {fmt.usd(c['accelerators_usd_per_hour'], 2)}{front} + {fmt.usd(c['network_usd_per_hour'], 2)} = "
               f"{fmt.usd(r['cost_per_hour_usd'], 2)}/h; network share f = {fmt.fixed(r['network_share'], 4)}")
    t = r["tokens_per_s"]
    out.append("Step 5 — tokens and CPMT")
    out.append(f"  ideal tokens/s: {c['accelerators']:g} × {val('serving.total_tokens_per_s_per_accelerator'):,g} = "
               f"{fmt.count(t['ideal_total'])} total, × {val('serving.output_tokens_per_s_per_accelerator'):,g} = "
               f"{fmt.count(t['ideal_output'])} output")
    out.append(f"  served = ideal × η {fmt.ratio(e['combined'])} = {fmt.count(t['served_total'])} total, {fmt.count(t['served_output'])} output")
    out.append(f"  CPMT total  = {r['cost_per_hour_usd']:,.2f} × 1e6 / ({fmt.count(t['served_total'])} × 3600) = "
               f"{fmt.usd(r['cpmt_total_usd_per_mtok'])} (ideal {fmt.usd(r['cpmt_ideal']['total_usd_per_mtok'])})")
    out.append(f"  CPMT output = {r['cost_per_hour_usd']:,.2f} × 1e6 / ({fmt.count(t['served_output'])} × 3600) = "
               f"{fmt.usd(r['cpmt_output_usd_per_mtok'])} (ideal {fmt.usd(r['cpmt_ideal']['output_usd_per_mtok'])})")
    b = r["break_even"]
    out.append("Step 6 — break-even")
    out.append(f"  design B beats this one iff η_B/η_A > C_B/C_A = 1 + f·p; with f = {fmt.fixed(b['network_share'], 4)}, "
               f"a network p = {fmt.percent(b['example_network_premium'], 0)} dearer needs η_B/η_A > {fmt.ratio(b['example_eta_ratio_needed'])}")
    en = r.get("energy") or {}
    out.append("Step 7 — energy (served tokens per unit of facility power)")
    if en.get("tokens_per_kwh") is None:
        out.append(f"  n/a: {en.get('note') or 'not computed'}")
    else:
        for name, a in c["accelerator_pricing"].items():
            board = val(f"accelerator.{name}.power_w")
            ratio = val("accelerator.system_power_ratio")
            if board is not None and ratio is not None:
                out.append(f"  {name}: board {board:g} W × all-in ratio {ratio:.4g} = {board * ratio:,.1f} W per accelerator")
        out.append(f"  IT power = accelerators {fmt.fixed(en['accelerators_power_kw'], 2)} kW + network "
                   f"{fmt.fixed(en['network_power_kw'], 2)} kW = {fmt.fixed(en['it_power_kw'], 2)} kW; × PUE {en['pue']:g} "
                   f"= facility {fmt.fixed(en['facility_power_kw'], 2)} kW")
        out.append(f"  tokens/kWh = served {fmt.count(en['served_tokens_per_s'])} tokens/s × 3600 ÷ "
                   f"{fmt.fixed(en['facility_power_kw'], 2)} kW = {fmt.count(en['tokens_per_kwh'])}")
        out.append(f"  tokens/s per MW = {fmt.count(en['served_tokens_per_s'])} ÷ "
                   f"{fmt.fixed(en['facility_power_kw'] / 1e3, 5)} MW = {fmt.count(en['tokens_per_s_per_mw'])}")
    out.append("Inputs")
    for i in r["inputs"]:
        v = i["value"]
        shown = f"{v:,.6g}" if isinstance(v, (int, float)) else str(v)
        out.append(f"  {i['name']} = {shown}{(' ' + i['unit']) if i['unit'] else ''}  [{i['source']}]")
    out += [f"warning: {w}" for w in r["warnings"]]
    return "\n".join(out)


def print_verdict(summary: dict) -> None:
    """The verdict table and the break-even lines of a comparison, on stdout (rich)."""
    from rich.console import Console
    from rich.table import Table

    from fabric.report.tables import break_even_lines, mix_break_even_lines, pools_table, verdict_table, winner_line
    t = verdict_table(summary)
    console = Console(width=None if sys.stdout.isatty() else 230, highlight=False, soft_wrap=False)
    table = Table(title=t.title + (f" (k = {summary['scale']['k']:g})" if summary["scale"].get("k") else ""),
                  show_lines=False)
    for h in t.headers:
        table.add_column(h, overflow="fold")
    for row in t.rows:
        table.add_row(*row)
    console.print(table)
    for note in t.notes:
        console.print(f"  {note}")
    console.print("break-even (docs/economics.md): design B beats A iff η_B/η_A > 1 + f·p")
    for line in break_even_lines(summary):
        console.print(f"  {line}")
    if winner_line(summary):
        console.print(f"  {winner_line(summary)}")
    pools = pools_table(summary)
    if pools is not None:
        console.print("pools sized from the stages (docs/economics.md §6): design, stage, group, accelerator, "
                      "accelerators costed, price each, η, tokens/s each, needed at the target rate")
        for row in pools.rows:
            console.print("  " + "  ".join(row))
        for note in pools.notes:
            console.print(f"  {note}")
    mixes = mix_break_even_lines(summary)
    if mixes:
        console.print("accelerator mixes: B beats A on one fabric iff η_B/η_A > CPMT_ideal,B/CPMT_ideal,A")
        for line in mixes:
            console.print(f"  {line}")
    for nt in summary["comparison"].get("not_trusted") or []:
        console.print(f"  NOTE: {nt['design']} is {nt['verdict']}, not trusted"
                      + (f" ({', '.join(nt['tripped'])})" if nt["tripped"] else ""))


def run_status_line(label: str, rec) -> str:
    """One line per finished run of a comparison (a :class:`~fabric.report.summary.RunRecord`)."""
    if rec.status == "ok":
        fid = (rec.metrics or {}).get("fidelity", {}).get("verdict", fmt.NA)
        econ = (f", η {fmt.ratio(rec.cpmt['eta']['combined'])}, CPMT {fmt.usd(rec.cpmt['cpmt_total_usd_per_mtok'])}"
                f"/Mtok total" if rec.cpmt else f", cost model failed: {rec.cpmt_error}")
        return f"✓ {label}: {rec.wall_time_s:.1f} s, fidelity {fid}{econ}"
    if rec.status == "interrupted":
        return f"✗ {label}: interrupted"
    return f"✗ {label}: FAILED — {rec.reason}"


def run_with_progress(runner, spec, g, schedule, out: Path, options, quiet: bool = False) -> Path:
    """``runner(spec, g, schedule, out, options, progress)`` with a rich progress bar per stage, on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<32}"), BarColumn(), TextColumn("{task.percentage:>5.0f}%"),
                  TimeElapsedColumn(), console=console, disable=quiet, transient=False) as progress:
        tasks = {}

        def report(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGES.get(stage, stage), total=1.0)
            progress.update(tasks[stage], completed=fraction)

        return runner(spec, g, schedule, out, options, progress=report)


def sensitivity_table(t: dict) -> str:
    """The tornado as text (``fabric cpmt --sensitivity``): widest swing first."""
    ratio = t["figure"] == "cpmt_ratio"

    def show(v: float) -> str:
        return fmt.fixed(v, 4) if ratio else fmt.usd(v, 4)

    title = (f"CPMT ratio {t['run_dir']} ÷ {t['baseline_dir']}: {show(t['base'])}" if ratio
             else f"CPMT total of {t['run_dir']}: {show(t['base'])}/Mtok")
    lines = [title, f"  {'input':<48} {'range':<28} {'at low':>10} {'at high':>10} {'swing':>10}"]
    for s in t["swings"]:
        lines.append(f"  {s['input']:<48} {s['range']:<28} {show(s['figure_low']):>10} {show(s['figure_high']):>10} "
                     f"{show(s['spread']):>10}")
    be = t["break_even"]
    gains = "  ".join(f"{'+' + format(g, '.0%') + ' η':>6}" for g in be["eta_gain"])
    lines.append(f"break-even network premium ({be['rule']}):")
    lines.append(f"  {'f':>6}   {gains}")
    for row in be["curve"]:
        lines.append(f"  {row['f']:>6.0%}   " + "  ".join(f"{p:>6.0%}" for p in row["max_premium"]))
    return "\n".join(lines)


def crosscheck_table(r: dict) -> str:
    """``fabric crosscheck``: per class and figure, emulator vs simulator at the same k."""
    lines = [f"{r['design']}: emulator (fidelity {r['emu_fidelity']}) vs packet simulator, both at k = "
             f"{r['scale_k']:g} (dilation {r['dilation']:g} on the emulator); agreement within "
             f"{fmt.percent(r['tolerance'], 0)}",
             f"  {'class':<14} {'figure':<9} {'emulator':>12} {'simulator':>12} {'diff':>7}  "]
    for row in r["rows"]:
        unit = f" {row['unit']}" if row["unit"] else ""

        def show(v):
            if v is None:
                return fmt.NA
            return fmt.percent(v, 2) if row["figure"] == "loss" else fmt.fixed(v, 3) + unit
        diff = fmt.NA if row["rel_diff"] is None else fmt.percent(row["rel_diff"], 1)
        flag = "  DISAGREE" if row["agrees"] is False else (f"  ({row['note']})" if row.get("note") else "")
        lines.append(f"  {row['class']:<14} {row['figure']:<9} {show(row['emu']):>12} {show(row['sim']):>12} "
                     f"{diff:>7}{flag}")
    lines.append("engines agree" if r["agree"] else "engines DISAGREE on the rows marked; see "
                 f"{r['emu_dir']} and {r['sim_dir']}")
    return "\n".join(lines)
