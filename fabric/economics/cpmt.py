"""CPMT for one run directory, and the break-even between two designs (docs/economics.md §1–2)."""

from __future__ import annotations

import math
from pathlib import Path

from fabric import rundir
from fabric.economics.costs import (
    CostFile,
    Ledger,
    accelerator_hourly_usd,
    load_costs,
    network_hourly_usd,
)
from fabric.economics.derating import (
    derating,
)
from fabric.economics.formulas import (
    break_even_ratio,
    cpmt_usd_per_mtok,
    max_network_premium,
)
from fabric.errors import CostError, FabricError

# --------------------------------------------------------------------------------------------
# CPMT for one run
# --------------------------------------------------------------------------------------------

def cpmt_for_run(run_dir: str | Path, costs: str | Path | CostFile | None = None) -> dict:
    """Everything ``fabric cpmt`` reports for one run directory, as a JSON-ready dict.

    Keys: ``design``, ``eta`` (kv, moe, tp, prefill_pool, decode_pool, combined, set_by),
    ``cpmt_total_usd_per_mtok``, ``cpmt_output_usd_per_mtok`` (measured = ideal ÷ η),
    ``cpmt_ideal``, ``tokens_per_s``, ``cost_per_hour_usd``, ``cost`` (breakdown and priced BOM),
    ``network_share``, ``break_even``, ``patterns`` (per-pattern details), ``inputs`` (every input
    with its source), ``warnings``.
    """
    from fabric.rundir import read_run_json
    from fabric.specs import load_fabric_spec
    from fabric.topology import bill_of_materials, build_fabric
    run_dir = Path(run_dir)
    if not isinstance(costs, CostFile):
        costs = load_costs(costs)
    led = Ledger()
    cf = f"cost file {costs.source}"
    run = read_run_json(run_dir)
    spec = rundir.fabric_spec(run, f"{run_dir}/run.json")
    der = derating(run_dir, costs, led, run, spec)

    # Accelerators and network: the run's design, or the design the cost file names.
    cost_spec = load_fabric_spec(costs.network_fabric) if costs.network_fabric else spec
    design_src = cf + " network.fabric" if costs.network_fabric else "run.json fabric design"
    bom = bill_of_materials(build_fabric(cost_spec))
    pue = led.pick("facility.pue", (costs.pue, cf))
    kwh = led.pick("facility.electricity_usd_per_kwh", (costs.electricity_usd_per_kwh, cf))
    groups = [(g.name, g.count, costs.accelerator_name or g.accelerator) for g in cost_spec.host_groups]
    if costs.accelerator_count is not None:
        total_hosts = sum(c for _, c, _ in groups)
        groups = [(n, costs.accelerator_count * c / total_hosts, a) for n, c, a in groups]
    n_acc = led.use("accelerators", float(sum(c for _, c, _ in groups)), "",
                    cf + " accelerator.count" if costs.accelerator_count is not None
                    else f"{design_src}: one accelerator per host ({cost_spec.name})")
    acc_costs = {}
    acc_total = 0.0
    for name, count, acc_name in groups:
        if acc_name not in acc_costs:
            try:
                acc_costs[acc_name] = accelerator_hourly_usd(acc_name, costs, led, pue, kwh)
            except FabricError as exc:
                if isinstance(exc, CostError):
                    raise
                raise CostError(costs.source or design_src, "accelerator.name", str(exc)) from None
        acc_total += count * acc_costs[acc_name]["usd_per_hour"]
    net = network_hourly_usd(bom, costs, led, pue, kwh)
    cost_per_hour = acc_total + net["usd_per_hour"]
    share = net["usd_per_hour"] / cost_per_hour if cost_per_hour > 0 else 0.0

    total_rate = led.items["serving.total_tokens_per_s_per_accelerator"]["value"]
    output_rate = led.items["serving.output_tokens_per_s_per_accelerator"]["value"]
    eta = der["eta"]["combined"]
    ideal_total, ideal_output = n_acc * total_rate, n_acc * output_rate
    served_total, served_output = ideal_total * eta, ideal_output * eta
    ideal_cpmt_total = cpmt_usd_per_mtok(cost_per_hour, ideal_total)
    ideal_cpmt_output = cpmt_usd_per_mtok(cost_per_hour, ideal_output)
    example_p = 0.30
    return {
        "run_dir": str(run_dir),
        "design": {"name": cost_spec.name, "kind": cost_spec.kind, "hosts": cost_spec.hosts,
                   "emulated_design": spec.name},
        "eta": der["eta"],
        "token_shares": der["token_shares"],
        "cpmt_total_usd_per_mtok": cpmt_usd_per_mtok(cost_per_hour, served_total),
        "cpmt_output_usd_per_mtok": cpmt_usd_per_mtok(cost_per_hour, served_output),
        "cpmt_ideal": {"total_usd_per_mtok": ideal_cpmt_total, "output_usd_per_mtok": ideal_cpmt_output},
        "tokens_per_s": {"ideal_total": ideal_total, "ideal_output": ideal_output,
                         "served_total": served_total, "served_output": served_output},
        "cost_per_hour_usd": cost_per_hour,
        "network_share": share,
        "cost": {
            "accelerators": n_acc,
            "accelerators_usd_per_hour": acc_total,
            "accelerator_pricing": acc_costs,
            "network_usd_per_hour": net["usd_per_hour"],
            "network_capex_usd": net["capex_usd"],
            "network_capex_usd_per_hour": net["capex_usd_per_hour"],
            "network_power_w": net["power_w"],
            "network_power_usd_per_hour": net["power_usd_per_hour"],
            "network_crf_per_year": net["crf_per_year"],
            "bom": net["items"],
        },
        "break_even": {
            "network_share": share,
            "rule": "design B beats A iff eta_B/eta_A > C_hour,B/C_hour,A = 1 + f*p "
                    "(f: network share of A's hourly cost, p: how much dearer B's network is)",
            "example_network_premium": example_p,
            "example_eta_ratio_needed": break_even_ratio(share, example_p),
        },
        "patterns": der["patterns"],
        "messages": der["messages"],
        "recovered_messages": der["recovered_messages"],
        "inputs": led.as_list(),
        "warnings": der["warnings"],
    }


def compare_break_even(a: dict, b: dict) -> dict:
    """Break-even between two :func:`cpmt_for_run` results (A the baseline, B the challenger).

    B wins iff η_B/η_A > C_B/C_A; with B's network dearer by p and A's network share f that is
    η_B/η_A > 1 + f·p, so B may cost up to ``(η_B/η_A − 1)/f`` more in network and still win.
    """
    ratio = b["eta"]["combined"] / a["eta"]["combined"] if a["eta"]["combined"] > 0 else math.inf
    cost_ratio = b["cost_per_hour_usd"] / a["cost_per_hour_usd"]
    f = a["network_share"]
    net_a, net_b = a["cost"]["network_usd_per_hour"], b["cost"]["network_usd_per_hour"]
    return {
        "eta_ratio": ratio,
        "cost_ratio": cost_ratio,
        "network_share_a": f,
        "network_premium_b": (net_b / net_a - 1.0) if net_a > 0 else math.nan,
        "max_network_premium_b": max_network_premium(ratio, f),
        "b_wins": bool(ratio > cost_ratio),
        "cpmt_total_ratio": b["cpmt_total_usd_per_mtok"] / a["cpmt_total_usd_per_mtok"],
    }

