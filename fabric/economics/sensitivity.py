"""Sensitivity of CPMT to its inputs: one input at a time moved to a low and a high value, the
others at their values for the run (docs/economics.md §4). The result is a tornado: inputs sorted
by how far they swing CPMT, or the CPMT ratio of two designs (which shared inputs mostly cancel).

Every range is stated next to its input; they are plausible spans from the same public sources as
the defaults, not confidence intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from fabric.economics.costs import CostFile, load_costs
from fabric.economics.cpmt import cpmt_for_run


@dataclass(frozen=True)
class Swing:
    """One input moved to ``low`` and ``high`` (ledger units); the figure at each end."""
    name: str
    what: str              # the range, in words
    low: float
    high: float
    figure_low: float
    figure_high: float
    figure_base: float

    @property
    def spread(self) -> float:
        return abs(self.figure_high - self.figure_low)

    def to_dict(self) -> dict:
        return {"input": self.name, "range": self.what, "low": self.low, "high": self.high,
                "figure_low": self.figure_low, "figure_high": self.figure_high, "figure_base": self.figure_base,
                "spread": self.spread}


def _scaled_parts(parts, category: str, factor: float):
    """The network catalog with one category's prices multiplied by ``factor``."""
    items = tuple(replace(p, price_usd=p.price_usd * factor) for p in getattr(parts, category))
    return replace(parts, **{category: items})


def _perturbations(base: dict, costs: CostFile) -> list[tuple[str, str, float, float, Callable[[float], CostFile]]]:
    """(input, range in words, low, high, value -> cost file) for each input of the model."""
    from fabric.catalog.network import load_network_parts
    inputs = {i["name"]: i["value"] for i in base["inputs"]}
    parts = costs.network_parts or load_network_parts()
    acc_prices = [a for a in base["cost"]["accelerator_pricing"].values() if a["pricing"] == "tier"]
    out = []

    def add(name, what, low, high, make):
        out.append((name, what, float(low), float(high), make))

    if acc_prices:
        price = acc_prices[0]["all_in_usd_per_hour"]
        add("accelerator price per hour", "±20% of the tier price", 0.8 * price, 1.2 * price,
            lambda v: replace(costs, price_per_hour_usd=v))
        add("network share of the tier price", "8% to 16%", 0.08, 0.16, lambda v: replace(costs, tier_network_share=v))
    else:
        purchase = next(v for k, v in inputs.items() if k.endswith(".purchase_price_usd"))
        add("accelerator purchase price", "±20%", 0.8 * purchase, 1.2 * purchase,
            lambda v: replace(costs, purchase_price_usd=v))
    add("equipment life", "4 to 6 years", 4.0, 6.0,
        lambda v: replace(costs, accelerator_life_years=v, network_life_years=v))
    add("cost of capital", "6% to 14% a year", 0.06, 0.14,
        lambda v: replace(costs, accelerator_cost_of_capital=v, network_cost_of_capital=v))
    total = inputs["serving.total_tokens_per_s_per_accelerator"]
    output = inputs["serving.output_tokens_per_s_per_accelerator"]
    add("baseline tokens/s per accelerator", "±20% (output in proportion)", 0.8 * total, 1.2 * total,
        lambda v: replace(costs, total_tokens_per_s=v, output_tokens_per_s=output * v / total))
    add("overlap (share of compute hiding communication)", "0 to 0.5", 0.0, 0.5,
        lambda v: replace(costs, overlap_fraction=v))
    if "loss_recovery.rto_s" in inputs:
        rto = inputs["loss_recovery.rto_s"]
        add("retransmission timeout", "½× to 2×", rto / 2, rto * 2, lambda v: replace(costs, rto_s=v))
    for key, label, field in (("slo.ttft_p99_s", "TTFT SLO", "ttft_slo_s"), ("slo.tpot_p99_s", "TPOT SLO", "tpot_slo_s")):
        if key in inputs:
            v0 = inputs[key]
            add(label, "½× to 2×", v0 / 2, v0 * 2, lambda v, f=field: replace(costs, **{f: v}))
    if "serving.prefill_pool_share" in inputs:
        a = inputs["serving.prefill_pool_share"]
        add("prefill pool share", "±0.15", max(a - 0.15, 0.05), min(a + 0.15, 0.95),
            lambda v: replace(costs, prefill_pool_share=v))
    add("PUE", "1.1 to 1.56", 1.1, 1.56, lambda v: replace(costs, pue=v))
    add("electricity", "5 to 12 ¢/kWh", 0.05, 0.12, lambda v: replace(costs, electricity_usd_per_kwh=v))
    for category, label in (("switches", "switch prices"), ("optics", "optic prices"), ("nics", "NIC prices")):
        add(label, "±30%", 0.7, 1.3, lambda v, c=category: replace(costs, network_parts=_scaled_parts(parts, c, v)))
    return out


def cpmt_sensitivity(run_dir: str | Path, costs: str | Path | CostFile | None = None,
                     baseline_dir: str | Path | None = None, progress: Callable[[float], None] | None = None) -> dict:
    """The tornado of CPMT total for ``run_dir`` (or of CPMT(run) ÷ CPMT(baseline) with a baseline).

    Returns ``figure`` ("cpmt_total_usd_per_mtok" or "cpmt_ratio"), ``base``, ``swings`` (sorted,
    widest first) and ``break_even`` (the largest network premium a design may pay per η gain,
    over a range of network shares f).
    """
    if not isinstance(costs, CostFile):
        costs = load_costs(costs)
    cache: dict = {}

    def figure(c: CostFile) -> float:
        r = cpmt_for_run(run_dir, c, cache)["cpmt_total_usd_per_mtok"]
        if baseline_dir is None:
            return r
        return r / cpmt_for_run(baseline_dir, c, cache)["cpmt_total_usd_per_mtok"]

    base_result = cpmt_for_run(run_dir, costs, cache)
    base = figure(costs)
    items = _perturbations(base_result, costs)
    swings = []
    for i, (name, what, low, high, make) in enumerate(items):
        swings.append(Swing(name, what, low, high, figure(make(low)), figure(make(high)), base))
        if progress:
            progress((i + 1) / len(items))
    swings.sort(key=lambda s: (-s.spread, s.name))
    f_values = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30]
    return {
        "figure": "cpmt_ratio" if baseline_dir is not None else "cpmt_total_usd_per_mtok",
        "run_dir": str(run_dir), "baseline_dir": str(baseline_dir) if baseline_dir is not None else None,
        "base": base,
        "swings": [s.to_dict() for s in swings],
        "break_even": {"rule": "a design whose η is higher by a factor r may pay up to (r − 1)/f more for its "
                               "network, f being the network's share of the baseline's hourly cost",
                       "eta_gain": [0.01, 0.02, 0.05, 0.10],
                       "curve": [{"f": f, "max_premium": [g / f for g in (0.01, 0.02, 0.05, 0.10)]}
                                 for f in f_values]},
    }
