"""``fabric cpmt``: turn one run directory's measured tails into η, tokens served and CPMT.

The arithmetic lives in :mod:`fabric.economics`; this module prints it (a summary, ``--json``
for automation, or ``--explain`` step by step with every input and its source).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from fabric.economics import cpmt_for_run
from fabric.jsonio import dumps

__all__ = ["cpmt", "cpmt_for_run", "render_summary", "render_explain", "to_json"]


def cpmt(run_dir: Path = typer.Argument(..., help="Run directory written by `fabric run`."),
         costs: Optional[Path] = typer.Option(None, "--costs", help="Cost file (YAML) overriding catalog defaults; "
                                              "see costs.example.yaml."),
         as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
         explain: bool = typer.Option(False, "--explain", help="Show the arithmetic step by step, with inputs.")) -> None:
    """Fabric derating η and cost per million tokens (ideal vs measured) for one run."""
    result = cpmt_for_run(run_dir, costs)
    if as_json:
        typer.echo(to_json(result))
    elif explain:
        typer.echo(render_explain(result))
    else:
        typer.echo(render_summary(result))


def to_json(result: dict) -> str:
    return dumps(result).rstrip("\n")


def _eta(v) -> str:
    return "not in run" if v is None else f"{v:.4f}"


def _usd(v: float) -> str:
    return "inf" if not math.isfinite(v) else f"${v:,.4f}" if v < 10 else f"${v:,.2f}"


def _ms(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v * 1e3:.3f} ms"


def render_summary(r: dict) -> str:
    e = r["eta"]
    lines = [
        f"{r['design']['name']} ({r['design']['kind']}, {r['design']['hosts']} accelerators)"
        + (f" — measured on {r['design']['emulated_design']}" if r['design']['emulated_design'] != r['design']['name'] else ""),
        f"  η           kv {_eta(e['kv'])}  moe {_eta(e['moe'])}  tp {_eta(e['tp'])}  "
        f"combined {e['combined']:.4f}" + (f"  (set by {e['set_by']})" if e["set_by"] else ""),
        f"  CPMT total  {_usd(r['cpmt_total_usd_per_mtok'])}/Mtok measured, "
        f"{_usd(r['cpmt_ideal']['total_usd_per_mtok'])}/Mtok ideal",
        f"  CPMT output {_usd(r['cpmt_output_usd_per_mtok'])}/Mtok measured, "
        f"{_usd(r['cpmt_ideal']['output_usd_per_mtok'])}/Mtok ideal",
        f"  cost        {_usd(r['cost_per_hour_usd'])}/h, network share {r['network_share']:.1%}",
        f"  break-even  a design with a 30% dearer network must serve ≥ "
        f"{(r['break_even']['example_eta_ratio_needed'] - 1):.1%} more tokens (η_B/η_A > 1 + f·p)",
    ]
    lines += [f"  warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)


def render_explain(r: dict) -> str:
    inputs = {i["name"]: i for i in r["inputs"]}

    def val(name, default=None):
        return inputs[name]["value"] if name in inputs else default

    p = r["patterns"]
    e = r["eta"]
    out = []
    rate = val("host_link_rate_bps", 0.0)
    idle = val("idle_path_delay_s", 0.0)
    out.append(f"Step 1 — completion times ({r['messages']} messages in {r['run_dir']})")
    out.append(f"  ideal    = message bytes × 8 / {rate / 1e9:g} Gbit/s (each NIC's messages back to back, "
               f"no fabric contention) + idle path delay {idle * 1e6:.1f} µs")
    out.append(f"  measured = t_rx_last − t_sched; {r['recovered_messages']} message(s) with lost packets charged "
               f"first lost packet's send + RTO {val('loss_recovery.rto_s', 0) * 1e3:.1f} ms + go-back-N resend from the first lost packet")
    out.append("Step 2 — η per pattern")
    kv = p.get("kv")
    if kv:
        out.append(f"  KV (prefill→decode): {kv['requests']} requests, {kv['messages']} messages "
                   f"({kv['recovered_messages']} recovered), TTFT SLO {kv['ttft_slo_s']:.3f} s")
        out.append(f"    TTFT = prefill {kv['prefill_compute_s_mean']:.4f} s (mean) + KV group completion + "
                   f"first decode step {kv['first_decode_step_s']:.4f} s")
        out.append(f"    KV completion p50/p99: ideal {_ms(kv['kv_completion_ideal_p50_s'])} / "
                   f"{_ms(kv['kv_completion_ideal_p99_s'])}, measured {_ms(kv['kv_completion_measured_p50_s'])} / "
                   f"{_ms(kv['kv_completion_measured_p99_s'])}")
        out.append(f"    TTFT p99: ideal {kv['ttft_ideal_p99_s']:.4f} s, measured {kv['ttft_measured_p99_s']:.4f} s")
        if kv["eta"] is None:
            out.append(f"    requests meeting the SLO: ideal {kv['attainment_ideal']:.1%} → η_KV undefined ({kv['note']})")
        else:
            out.append(f"    requests meeting the SLO: measured {kv['attainment_measured']:.1%} ÷ ideal "
                       f"{kv['attainment_ideal']:.1%} → η_KV = {kv['eta']:.4f}")
    else:
        out.append("  KV (prefill→decode): no kv messages in this run → η_KV = 1")
    for key, label, what, sym in (("moe", "MoE all-to-all", "dispatch + combine", "η_MoE"),
                                  ("tp", "TP all-reduce", "all-reduce", "η_TP")):
        d = p.get(key)
        if not d:
            out.append(f"  {label}: not in this run → {sym} = 1")
            continue
        out.append(f"  {label}: {d['steps']} decode steps, {d['groups']} groups ({d['recovered_messages']} "
                   f"recovered messages), layer scale ×{d['layer_scale']:g}, overlap {d['overlap_fraction']:.0%}")
        out.append(f"    TPOT = compute {_ms(d['compute_s'])} + {d['layer_scale']:g} × Σ({what} group completions) "
                   f"× (1 − {d['overlap_fraction']:g})")
        out.append(f"    Σ per step, mean: ideal {_ms(d['comm_ideal_mean_s'])}, measured {_ms(d['comm_measured_mean_s'])} "
                   f"(measured p99 {_ms(d['comm_measured_p99_s'])})")
        out.append(f"    TPOT mean: ideal {_ms(d['tpot_ideal_mean_s'])} ÷ measured {_ms(d['tpot_measured_mean_s'])} "
                   f"→ {sym} = {d['eta']:.4f}; TPOT p99 measured {_ms(d['tpot_measured_p99_s'])} vs SLO "
                   f"{_ms(d['tpot_slo_s'])} ({'met' if d['tpot_slo_met_measured'] else 'MISSED'})")
    s = r["token_shares"]
    out.append("Step 3 — combined η (each pool weighted by the tokens it serves)")
    out.append(f"  η = input share {s['prefill_input']:.4f} × η_prefill {e['prefill_pool']:.4f} + output share "
               f"{s['decode_output']:.4f} × η_decode {e['decode_pool']:.4f} = {e['combined']:.4f}"
               + (f"; set by {e['set_by']}" if e["set_by"] else "; no pattern below 1"))
    c = r["cost"]
    out.append("Step 4 — hourly cost")
    for name, a in c["accelerator_pricing"].items():
        how = (f"{a['tier']} tier" if a["pricing"] == "tier" else
               f"bottom-up: ${a['purchase_price_usd']:,.0f} amortized ${a['capex_usd_per_hour']:.4f}/h + "
               f"{a['power_w']:g} W power ${a['power_usd_per_hour']:.4f}/h")
        out.append(f"  {name}: ${a['usd_per_hour']:.4f}/h per accelerator ({how})")
    out.append(f"  accelerators: {c['accelerators']:g} → ${c['accelerators_usd_per_hour']:,.2f}/h")
    for i in c["bom"]:
        what = f"{i['role']} switch r{i['radix']} {i['speed']}" if i["category"] == "switch" else f"{i['speed']} {i['category']}"
        out.append(f"    {i['count']:>6} × {what:<26} {i['priced_as']:<34} ${i['unit_price_usd']:>10,.0f}  "
                   f"{i['unit_power_w']:>7.1f} W each")
    out.append(f"  network capex ${c['network_capex_usd']:,.0f} × CRF {c['network_crf_per_year']:.4f}/yr "
               f"(life {val('network.life_years'):g} y, cost of capital {val('network.cost_of_capital'):.0%}) ÷ 8760 h "
               f"= ${c['network_capex_usd_per_hour']:,.2f}/h")
    out.append(f"  network power {c['network_power_w'] / 1e3:,.2f} kW × PUE {val('facility.pue'):g} × "
               f"${val('facility.electricity_usd_per_kwh'):g}/kWh = ${c['network_power_usd_per_hour']:,.2f}/h")
    out.append(f"  C_hour = ${c['accelerators_usd_per_hour']:,.2f} + ${c['network_usd_per_hour']:,.2f} = "
               f"${r['cost_per_hour_usd']:,.2f}/h; network share f = {r['network_share']:.4f}")
    t = r["tokens_per_s"]
    out.append("Step 5 — tokens and CPMT")
    out.append(f"  ideal tokens/s: {c['accelerators']:g} × {val('serving.total_tokens_per_s_per_accelerator'):,g} = "
               f"{t['ideal_total']:,.0f} total, × {val('serving.output_tokens_per_s_per_accelerator'):,g} = "
               f"{t['ideal_output']:,.0f} output")
    out.append(f"  served = ideal × η {e['combined']:.4f} = {t['served_total']:,.0f} total, {t['served_output']:,.0f} output")
    out.append(f"  CPMT total  = {r['cost_per_hour_usd']:,.2f} × 1e6 / ({t['served_total']:,.0f} × 3600) = "
               f"{_usd(r['cpmt_total_usd_per_mtok'])} (ideal {_usd(r['cpmt_ideal']['total_usd_per_mtok'])})")
    out.append(f"  CPMT output = {r['cost_per_hour_usd']:,.2f} × 1e6 / ({t['served_output']:,.0f} × 3600) = "
               f"{_usd(r['cpmt_output_usd_per_mtok'])} (ideal {_usd(r['cpmt_ideal']['output_usd_per_mtok'])})")
    b = r["break_even"]
    out.append("Step 6 — break-even")
    out.append(f"  design B beats this one iff η_B/η_A > C_B/C_A = 1 + f·p; with f = {b['network_share']:.4f}, "
               f"a network p = {b['example_network_premium']:.0%} dearer needs η_B/η_A > {b['example_eta_ratio_needed']:.4f}")
    out.append("Inputs")
    for i in r["inputs"]:
        v = i["value"]
        shown = f"{v:,.6g}" if isinstance(v, (int, float)) else str(v)
        out.append(f"  {i['name']} = {shown}{(' ' + i['unit']) if i['unit'] else ''}  [{i['source']}]")
    out += [f"warning: {w}" for w in r["warnings"]]
    return "\n".join(out)
