"""CPMT for one run directory, and the break-even between two designs (docs/economics.md §1–2)."""

from __future__ import annotations

import math
from pathlib import Path

from fabric import rundir
from fabric.economics.costs import (
    CostFile,
    Ledger,
    accelerator_hourly_usd,
    accelerator_power_w,
    frontend_hourly_usd,
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
from fabric.specs import FRONTEND_ROLE

# --------------------------------------------------------------------------------------------
# CPMT for one run
# --------------------------------------------------------------------------------------------

def cpmt_for_run(run_dir: str | Path, costs: str | Path | CostFile | None = None, cache: dict | None = None) -> dict:
    """Everything ``fabric cpmt`` reports for one run directory, as a JSON-ready dict.

    Keys: ``design``, ``eta`` (kv, moe, tp, prefill_pool, decode_pool, combined, set_by),
    ``cpmt_total_usd_per_mtok``, ``cpmt_output_usd_per_mtok`` (measured = ideal ÷ η),
    ``cpmt_ideal``, ``tokens_per_s``, ``cost_per_hour_usd``, ``cost`` (breakdown and priced BOM),
    ``energy`` (:func:`energy_figures`: tokens per kWh and per MW of facility power), ``eta_interval``,
    ``cpmt_total_interval`` and ``cpmt_output_interval`` (95% bootstrap within the run),
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
    pue = led.pick("facility.pue", (costs.pue, cf))
    kwh = led.pick("facility.electricity_usd_per_kwh", (costs.electricity_usd_per_kwh, cf))
    acc_costs: dict[str, dict] = {}

    def priced(acc_name: str) -> dict:
        """One accelerator's hourly pricing, computed once (derating weights the stages by it)."""
        if acc_name not in acc_costs:
            try:
                acc_costs[acc_name] = accelerator_hourly_usd(acc_name, costs, led, pue, kwh)
            except FabricError as exc:
                if isinstance(exc, CostError):
                    raise
                raise CostError(costs.source or "run.json fabric design", "accelerator.name", str(exc)) from None
        return acc_costs[acc_name]

    # A cost file's accelerator.name replaces every accelerator: then the stages are not priced apart.
    stage_prices = (lambda name: priced(name)["usd_per_hour"]) if costs.accelerator_name is None else None
    der = derating(run_dir, costs, led, run, spec, cache, stage_prices)

    # Accelerators and network at the size to cost: the design's own, or the count the cost file
    # asks for (accelerator.count, or the hosts of network.fabric). Each design keeps its own
    # network, scaled with its accelerators, so two designs differ exactly by their networks.
    if costs.accelerator_count is not None:
        count, count_src = float(costs.accelerator_count), cf + " accelerator.count"
    elif costs.network_fabric:
        count = float(load_fabric_spec(costs.network_fabric).accelerator_hosts)
        count_src = f"{cf} network.fabric: the hosts of {costs.network_fabric}"
    else:
        count = float(spec.accelerator_hosts)
        count_src = (f"run.json fabric design: one accelerator per host ({spec.name}"
                     + (f"; its {spec.frontend_hosts} front-end CPU servers are not accelerators)"
                        if spec.frontend_hosts else ")"))
    n_acc = led.use("accelerators", count, "", count_src)
    scale = led.use("network.scale", count / spec.accelerator_hosts, "",
                    f"the design's own network ({spec.name}, {spec.accelerator_hosts} accelerator hosts) per "
                    f"accelerator, times "
                    f"{count:g} accelerators: every port priced as in the design (switches by the port); a fabric "
                    f"much larger than the design may need another tier, which this does not price")
    bom = scale_bom(bill_of_materials(build_fabric(spec)), scale)
    stages = der["stages"] if costs.accelerator_name is None else None
    if stages is not None:
        # Each stage's pool priced at its own accelerator, sized to the load (or as the design built them).
        costed = stages.costed_counts(count, der["pools"]["model"], der["pools"]["prefill_share"])
        groups = [(f"{pool.stage}:{pool.group}", n, pool.accelerator) for pool, n in costed]
    else:
        groups = [(g.name, g.count * scale, costs.accelerator_name or g.accelerator) for g in spec.host_groups
                  if g.role != FRONTEND_ROLE]
    acc_total = sum(count * priced(acc_name)["usd_per_hour"] for _, count, acc_name in groups)
    net = network_hourly_usd(bom, costs, led, pue, kwh)
    # Front-end CPU servers: priced as the design builds them, scaled with its accelerators like
    # its network (a front end serves far more than one design's worth of load; docs/economics.md §6).
    front_groups = [(g.name, g.count * scale, g.accelerator) for g in spec.host_groups if g.role == FRONTEND_ROLE]
    front_costs = {a: frontend_hourly_usd(a, costs, led, pue, kwh) for a in {a for _, _, a in front_groups}}
    front_total = sum(n * front_costs[a]["usd_per_hour"] for _, n, a in front_groups)
    cost_per_hour = acc_total + front_total + net["usd_per_hour"]
    acc_power = {}
    for _, _, acc_name in groups:
        if acc_name not in acc_power:
            acc_power[acc_name] = accelerator_power_w(acc_name, costs, led)
    acc_power |= {a: c["power_w"] for a, c in front_costs.items()}
    share = net["usd_per_hour"] / cost_per_hour if cost_per_hour > 0 else 0.0

    total_rate = led.items["serving.total_tokens_per_s_per_accelerator"]["value"]
    output_rate = led.items["serving.output_tokens_per_s_per_accelerator"]["value"]
    eta = der["eta"]["combined"]
    ideal_total, ideal_output = n_acc * total_rate, n_acc * output_rate
    served_total, served_output = ideal_total * eta, ideal_output * eta
    ideal_cpmt_total = cpmt_usd_per_mtok(cost_per_hour, ideal_total)
    ideal_cpmt_output = cpmt_usd_per_mtok(cost_per_hour, ideal_output)
    example_p = 0.30
    energy = energy_figures(groups + front_groups, acc_power, net["power_w"], pue, served_total, led)
    pools = pool_table(stages, der, costed, acc_costs) if stages is not None else None
    return {
        "run_dir": str(run_dir),
        "design": {"name": spec.name, "kind": spec.kind, "hosts": spec.hosts, "costed_accelerators": n_acc},
        "eta": der["eta"],
        "eta_interval": der["eta_interval"],
        # CPMT ∝ 1/η: the η interval's ends give CPMT's.
        "cpmt_total_interval": _cpmt_interval(ideal_cpmt_total, der["eta_interval"]["combined"]),
        "cpmt_output_interval": _cpmt_interval(ideal_cpmt_output, der["eta_interval"]["combined"]),
        "pools": der["pools"],
        "stage_pools": pools,
        "token_shares": der["token_shares"],
        "cpmt_total_usd_per_mtok": cpmt_usd_per_mtok(cost_per_hour, served_total),
        "cpmt_output_usd_per_mtok": cpmt_usd_per_mtok(cost_per_hour, served_output),
        "cpmt_ideal": {"total_usd_per_mtok": ideal_cpmt_total, "output_usd_per_mtok": ideal_cpmt_output},
        "tokens_per_s": {"ideal_total": ideal_total, "ideal_output": ideal_output,
                         "served_total": served_total, "served_output": served_output},
        "cost_per_hour_usd": cost_per_hour,
        "network_share": share,
        "energy": energy,
        "cost": {
            "accelerators": n_acc,
            "accelerators_usd_per_hour": acc_total,
            "accelerator_pricing": acc_costs,
            "frontend_servers": sum(n for _, n, _ in front_groups),
            "frontend_usd_per_hour": front_total,
            "frontend_pricing": front_costs,
            "frontend_busy_share": der["stages"].frontend_busy_share() if der["stages"] is not None else None,
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
        "warnings": der["warnings"] + [a["note"] for a in acc_costs.values() if a.get("note")]
        + ([energy["note"]] if energy["note"] else []),
    }


def energy_figures(groups: list[tuple[str, float, str]], acc_power_w: dict[str, float | None], network_power_w: float,
                   pue: float, served_tokens_per_s: float, led: Ledger) -> dict:
    """Tokens per kWh and per MW of facility power (docs/economics.md "Energy").

    Facility power = (Σ accelerators × all-in W + network W) × PUE; the tokens are those served
    at the measured η. ``groups`` is (name, accelerators, accelerator) per host group.
    """
    missing = sorted({a for _, _, a in groups if acc_power_w.get(a) is None})
    if missing:
        note = (f"energy figures left out: no board power for {', '.join(missing)} (give accelerator.power_w "
                f"in the cost file)")
        return {"tokens_per_kwh": None, "tokens_per_s_per_mw": None, "facility_power_kw": None,
                "it_power_kw": None, "accelerators_power_kw": None, "network_power_kw": network_power_w / 1e3,
                "pue": pue, "served_tokens_per_s": served_tokens_per_s, "note": note}
    acc_w = sum(count * acc_power_w[a] for _, count, a in groups)
    led.use("network.power_w", network_power_w, "W",
            "the priced bill of materials: Σ count × catalog watts of switches, optics and NICs")
    it_w = acc_w + network_power_w
    facility_kw = it_w * pue / 1e3
    return {
        "tokens_per_kwh": served_tokens_per_s * 3600.0 / facility_kw if facility_kw > 0 else math.inf,
        "tokens_per_s_per_mw": served_tokens_per_s / (facility_kw / 1e3) if facility_kw > 0 else math.inf,
        "facility_power_kw": facility_kw,
        "it_power_kw": it_w / 1e3,
        "accelerators_power_kw": acc_w / 1e3,
        "network_power_kw": network_power_w / 1e3,
        "pue": pue,
        "served_tokens_per_s": served_tokens_per_s,
        "note": None,
    }


def pool_table(stages, der: dict, costed: list, acc_costs: dict) -> dict:
    """Each stage's pools for the report: size in the costed cluster (``costed``: (pool, accelerators)),
    $/accelerator-hour, η, and accelerators and instances needed at the target request rate; plus how
    the design's own pools fit the workload (docs/economics.md §6)."""
    eta = {"prefill": der["eta"]["prefill_pool"], "decode": der["eta"]["decode_pool"]}
    needed = {(row["stage"], row["group"]): row for row in stages.sized(eta)}
    rows = []
    for pool, count in costed:
        need, price = needed[(pool.stage, pool.group)], acc_costs[pool.accelerator]["usd_per_hour"]
        rows.append({"stage": pool.stage, "group": pool.group, "accelerator": pool.accelerator,
                     "accelerators": count, "usd_per_accelerator_hour": price, "usd_per_hour": count * price,
                     "eta": eta[pool.stage], "tokens_per_s_per_accelerator": pool.tokens_per_s_per_accelerator,
                     "accelerators_at_target": need["accelerators"], "instances_at_target": need["instances"],
                     "instance_hosts": pool.instance_hosts})
    return {"pools": rows, "prompt_tokens_mean": stages.prompt_tokens_mean,
            "output_tokens_mean": stages.output_tokens_mean, "target_requests_per_s": stages.request_rate_per_s,
            "stage_rate": {s: stages.stage_rate(s) for s in ("prefill", "decode")},
            "prefill_share_sized": stages.prefill_share, "fit": stages.design_fit(), "pattern": stages.pattern}


def _cpmt_interval(ideal_cpmt: float, eta_interval: list[float] | None) -> list[float] | None:
    if not eta_interval or min(eta_interval) <= 0:
        return None
    return [ideal_cpmt / eta_interval[1], ideal_cpmt / eta_interval[0]]


def scale_bom(bom: dict, scale: float) -> dict:
    """A bill of materials with every count multiplied by ``scale`` (rounded up: no half optics)."""
    if scale == 1.0:
        return bom
    return {category: [dict(row, count=int(math.ceil(row["count"] * scale - 1e-9))) for row in rows]
            for category, rows in bom.items()}


def compare_break_even(a: dict, b: dict) -> dict:
    """Break-even between two :func:`cpmt_for_run` results (A the baseline, B the challenger).

    B wins iff η_B/η_A > C_B/C_A; with B's network dearer by p and A's network share f that is
    η_B/η_A > 1 + f·p, so B may cost up to ``(η_B/η_A − 1)/f`` more in network and still win.
    When the two serve different ideal token rates (other accelerators, or pools sized from other
    stages), the bar is C_B/C_A ÷ (ideal tokens B / ideal tokens A) (``ideal_rate_ratio``).
    """
    ratio = b["eta"]["combined"] / a["eta"]["combined"] if a["eta"]["combined"] > 0 else math.inf
    cost_ratio = b["cost_per_hour_usd"] / a["cost_per_hour_usd"]
    ideal_a = (a.get("tokens_per_s") or {}).get("ideal_total")
    ideal_b = (b.get("tokens_per_s") or {}).get("ideal_total")
    rate_ratio = ideal_b / ideal_a if ideal_a and ideal_b else 1.0
    f = a["network_share"]
    net_a, net_b = a["cost"]["network_usd_per_hour"], b["cost"]["network_usd_per_hour"]
    return {
        "eta_ratio": ratio,
        "cost_ratio": cost_ratio,
        "ideal_rate_ratio": rate_ratio,
        "network_share_a": f,
        "network_premium_b": (net_b / net_a - 1.0) if net_a > 0 else math.nan,
        "max_network_premium_b": max_network_premium(ratio * rate_ratio, f),
        "b_wins": bool(ratio * rate_ratio > cost_ratio),
        "cpmt_total_ratio": b["cpmt_total_usd_per_mtok"] / a["cpmt_total_usd_per_mtok"],
    }



def mix_break_even(a: dict, b: dict) -> dict:
    """Break-even of accelerator mix B against mix A on one fabric (two :func:`cpmt_for_run` results).

    CPMT = CPMT_ideal ÷ η, so B is cheaper per token iff η_B/η_A > CPMT_ideal,B / CPMT_ideal,A: the
    ideal ratio is what the accelerators are worth to each other, the η ratio what the network
    gives back. ``network_takes_back`` is the share of B's ideal advantage lost to the network:
    (CPMT_B/CPMT_A − ideal ratio) / (1 − ideal ratio); None when B has no ideal advantage.
    """
    ideal_ratio = b["cpmt_ideal"]["total_usd_per_mtok"] / a["cpmt_ideal"]["total_usd_per_mtok"]
    measured_ratio = b["cpmt_total_usd_per_mtok"] / a["cpmt_total_usd_per_mtok"]
    eta_a, eta_b = a["eta"]["combined"], b["eta"]["combined"]
    return {
        "ideal_cpmt_ratio": ideal_ratio,
        "cpmt_ratio": measured_ratio,
        "eta_ratio": eta_b / eta_a if eta_a > 0 else math.inf,
        "eta_ratio_needed": ideal_ratio,
        "b_wins": bool(measured_ratio < 1.0),
        "network_takes_back": (measured_ratio - ideal_ratio) / (1.0 - ideal_ratio) if ideal_ratio < 1.0 else None,
        "rule": "mix B beats mix A on one fabric iff eta_B/eta_A > CPMT_ideal,B/CPMT_ideal,A",
    }
