"""Economics: measured completion times -> fabric derating η -> tokens served -> cost per million tokens.

This module owns the arithmetic of docs/economics.md; it reads a run directory (:mod:`fabric.rundir`)
and an optional cost file, and returns every figure together with the inputs it used and where
each input came from (catalog entry, cost file, run.json, or a named default with its source).

Pipeline (docs/economics.md §1–2)::

    ideal MCT      = sender/receiver NIC serialization at line rate (bytes × 8 / host link rate,
                     messages of one NIC served back to back) + idle path delay      (computed)
    measured MCT   = t_rx_last − t_sched (real time), or the loss-recovery model for a message
                     with lost packets: last send + RTO + go-back-N resend from the first lost packet
    η_KV           = share of requests with TTFT ≤ SLO, measured ÷ ideal  (DistServe goodput)
                     TTFT = prefill compute + KV group completion + first decode step
    η_MoE, η_TP    = mean TPOT_ideal ÷ mean TPOT_measured;  TPOT = compute + layers scale ×
                     Σ group completions of the step × (1 − overlap)
    η              = input-token share × η_KV + output-token share × η_MoE × η_TP; the pattern
                     that "sets" it is the one with the largest token share × (1 − η)
    C_hour         = accelerators × $/accelerator-hour + network capex × CRF / 8760
                     + network power × PUE × $/kWh
    CPMT           = C_hour × 10⁶ / (tokens/s ideal × η × 3600)

Cost-file layout: see ``costs.example.yaml`` at the repository root, and :func:`load_costs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fabric import rundir
from fabric.analysis.completion import recovery_completion_ns
from fabric.analysis.metrics import idle_path_delay_ns
from fabric.analysis.run_metrics import DEFAULT_RTO_NS
from fabric.errors import CostError, FabricError, RunDirError
from fabric.yamlspec import Section, load_yaml_mapping

HOURS_PER_YEAR = 8760.0
PRICE_TIERS = ("hyperscaler", "neocloud", "rental")
PRICING_MODES = ("tier", "bottom_up")
A2A_KINDS = ("a2a_dispatch", "a2a_combine")
TP_KINDS = ("allreduce",)
KV_KINDS = ("kv",)


@dataclass(frozen=True)
class Default:
    """A default input and the source that justifies it."""

    value: Any
    unit: str
    source: str


# Every default the model uses, with its source (docs/economics.md §3 is the index of sources).
DEFAULTS: dict[str, Default] = {
    "accelerator.tier": Default("neocloud", "", "docs/economics.md §1 worked check prices H100 at the neocloud tier ($1.55/GPU-hour)"),
    "accelerator.life_years": Default(5.0, "years", "assumption: 5-year depreciation, the upper end of the 4–6 years cloud operators use for servers"),
    "accelerator.cost_of_capital": Default(0.10, "1/year", "assumption: 10% per year weighted cost of capital for data-center hardware"),
    "network.life_years": Default(5.0, "years", "assumption: 5-year depreciation for switches, optics and NICs"),
    "network.cost_of_capital": Default(0.10, "1/year", "assumption: 10% per year weighted cost of capital"),
    "facility.pue": Default(1.3, "", "assumption: modern AI data hall; Uptime Institute's 2024 survey average is 1.56"),
    "facility.electricity_usd_per_kwh": Default(0.08, "USD/kWh", "assumption: US industrial electricity price, about 8 ¢/kWh (EIA 2024 average)"),
    "serving.total_tokens_per_s_per_accelerator": Default(
        4951.0, "tokens/s", "DeepSeek open-infra-index day 6 (V3/R1 inference system overview): 608B input + 168B output "
        "tokens in 24 h on an average of 226.75 nodes x 8 H800 = 4,951 total tokens/s per deployed GPU; docs/economics.md §1"),
    "serving.output_tokens_per_s_per_accelerator": Default(
        1072.0, "tokens/s", "DeepSeek open-infra-index day 6: 168B output tokens in 24 h on 1,814 H800 = 1,072 output "
        "tokens/s per deployed GPU; docs/economics.md §1"),
    "serving.decode_step_s": Default(
        1 / 21.0, "s", "DeepSeek open-infra-index day 6: 20–22 output tokens/s per request, so an ideal decode step "
        "(TPOT) of 1/21 s; compute per step = this minus the ideal network time of the step"),
    "serving.overlap_fraction": Default(0.0, "", "assumption: no communication hidden behind compute (worst case for the network; docs/economics.md §2 'minus overlap, a parameter')"),
    "loss_recovery.rto_s": Default(
        DEFAULT_RTO_NS / 1e9, "s", "fabric.analysis.run_metrics.DEFAULT_RTO_NS: a deliberately short, "
        "datacenter-tuned retransmission timeout, the same one metrics.json uses"),
    "idle_path_delay_s": Default(10e-6, "s", "docs/design.md §5 noise floor: idle one-way delay p50 5–7 µs, p99 12–20 µs on the emulation host"),
}

# p99 SLOs by catalog model: MLPerf Inference loadgen (docs/economics.md §3); others get the IETF default.
SLO_BY_MODEL: dict[str, tuple[float, float, str]] = {
    "DeepSeek-V3": (2.0, 0.080, "MLPerf Inference DeepSeek-R1 (same architecture as V3): TTFT 2 s, TPOT 80 ms (docs/economics.md §3)"),
    "DeepSeek-R1": (2.0, 0.080, "MLPerf Inference DeepSeek-R1: TTFT 2 s, TPOT 80 ms (docs/economics.md §3)"),
    "Llama-2-70B": (2.0, 0.200, "MLPerf Inference Llama-2-70B server: TTFT 2 s, TPOT 200 ms (docs/economics.md §3)"),
    "Llama-3-70B": (2.0, 0.200, "MLPerf Inference Llama-2-70B server scenario, applied to the same size class: TTFT 2 s, TPOT 200 ms (docs/economics.md §3)"),
    "Llama-3.1-8B": (2.0, 0.100, "MLPerf Inference Llama-3.1-8B: TTFT 2 s, TPOT 100 ms (docs/economics.md §3)"),
    "Llama-3-8B": (2.0, 0.100, "MLPerf Inference Llama-3.1-8B, applied to Llama-3-8B: TTFT 2 s, TPOT 100 ms (docs/economics.md §3)"),
}
IETF_SLO = (0.5, 0.050, "IETF draft-calabria-bmwg-ai-fabric-inference-bench default SLO: TTFT p99 < 500 ms, ITL p99 < 50 ms (docs/economics.md §3)")


# --------------------------------------------------------------------------------------------
# Pure formulas (the worked check in docs/economics.md §1 exercises these)
# --------------------------------------------------------------------------------------------

def capital_recovery_factor(rate: float, years: float) -> float:
    """Share of a purchase price to pay per year to repay it with interest over ``years``.

    ``r (1+r)^n / ((1+r)^n − 1)``; straight-line ``1/n`` when ``r = 0``.

    >>> round(capital_recovery_factor(0.10, 5), 4)
    0.2638
    >>> capital_recovery_factor(0.0, 4)
    0.25
    """
    if years <= 0:
        raise ValueError("life must be positive")
    if rate == 0:
        return 1.0 / years
    growth = (1.0 + rate) ** years
    return rate * growth / (growth - 1.0)


def hourly_capex_usd(price_usd: float, life_years: float, cost_of_capital: float) -> float:
    """A purchase amortized per hour of life, with cost of capital."""
    return price_usd * capital_recovery_factor(cost_of_capital, life_years) / HOURS_PER_YEAR


def power_usd_per_hour(power_w: float, pue: float, usd_per_kwh: float) -> float:
    """Electricity cost per hour of ``power_w`` of IT load at ``pue``."""
    return power_w / 1000.0 * pue * usd_per_kwh


def cpmt_usd_per_mtok(cost_per_hour_usd: float, tokens_per_s: float) -> float:
    """Cost per million tokens: ``C_hour × 10⁶ / (tokens/s × 3600)``.

    >>> round(cpmt_usd_per_mtok(1.55, 4951), 4)   # docs/economics.md §1 worked check
    0.087
    """
    if tokens_per_s <= 0:
        return math.inf
    return cost_per_hour_usd * 1e6 / (tokens_per_s * 3600.0)


def break_even_ratio(network_share: float, network_premium: float) -> float:
    """η_B/η_A that design B needs to win when its network is dearer by ``network_premium``.

    ``1 + f·p`` (docs/economics.md §1).

    >>> round(break_even_ratio(0.11, 0.30), 3)
    1.033
    """
    return 1.0 + network_share * network_premium


def max_network_premium(eta_ratio: float, network_share: float) -> float:
    """How much dearer B's network may be for B to still win: ``(η_B/η_A − 1) / f``."""
    if network_share <= 0:
        return math.inf if eta_ratio > 1 else 0.0
    return (eta_ratio - 1.0) / network_share


# --------------------------------------------------------------------------------------------
# Cost file
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostFile:
    """A validated cost file: only what it states; defaults are applied per run.

    Attributes hold ``None`` where the file is silent.
    """

    source: str = ""
    accelerator_name: str | None = None
    accelerator_count: int | None = None
    pricing: str | None = None
    tier: str | None = None
    price_per_hour_usd: float | None = None
    purchase_price_usd: float | None = None
    accelerator_life_years: float | None = None
    accelerator_cost_of_capital: float | None = None
    accelerator_power_w: float | None = None
    total_tokens_per_s: float | None = None
    output_tokens_per_s: float | None = None
    prefill_compute_s: float | None = None
    decode_step_compute_s: float | None = None
    overlap_fraction: float | None = None
    network_life_years: float | None = None
    network_cost_of_capital: float | None = None
    network_fabric: str | None = None
    network_parts: Any = None  # NetworkParts with overrides applied, or None
    pue: float | None = None
    electricity_usd_per_kwh: float | None = None
    ttft_slo_s: float | None = None
    tpot_slo_s: float | None = None
    rto_s: float | None = None
    idle_path_delay_s: float | None = None


def load_costs(path: str | Path | None) -> CostFile:
    """Read and validate a cost file (``--costs``); ``None`` gives an empty override set.

    Every problem raises one :class:`~fabric.errors.CostError` naming the file, the dotted key
    and what would be valid: negative prices, unknown accelerators or tiers, missing required
    fields, unknown keys.
    """
    if path is None:
        return CostFile()
    path = Path(path)
    src = str(path)
    top = Section(load_yaml_mapping(path, CostError), src, error=CostError)
    out: dict[str, Any] = {"source": src}

    def opt_number(sec: Section, name: str, minimum: float = 0.0, maximum: float | None = None,
                   positive: bool = False):
        if not sec.has(name):
            return None
        return sec.number(name, minimum=minimum, maximum=maximum, exclusive_minimum=positive)

    if top.has("accelerator"):
        acc = top.section("accelerator", {})  # a section of only comments reads as empty
        if acc.has("name"):
            name = acc.text("name")
            out["accelerator_name"] = _catalog_accelerator_name(name, src, acc.key("name"))
        if acc.has("count"):
            out["accelerator_count"] = acc.integer("count", minimum=1)
        out["pricing"] = acc.choice("pricing", PRICING_MODES, None) if acc.has("pricing") else None
        out["tier"] = acc.choice("tier", PRICE_TIERS, None) if acc.has("tier") else None
        out["price_per_hour_usd"] = opt_number(acc, "price_per_hour_usd")
        out["purchase_price_usd"] = opt_number(acc, "purchase_price_usd")
        out["accelerator_life_years"] = opt_number(acc, "life_years", positive=True)
        out["accelerator_cost_of_capital"] = opt_number(acc, "cost_of_capital", maximum=1.0)
        out["accelerator_power_w"] = opt_number(acc, "power_w")
        acc.finish()
        if out["pricing"] == "bottom_up" and out["purchase_price_usd"] is None:
            # Checked again per run (the catalog may supply it); name the key now if it cannot.
            name = out.get("accelerator_name")
            if name is not None and _catalog_accelerator(name).purchase_price_usd is None:
                raise CostError(src, "accelerator.purchase_price_usd",
                                f"is required for pricing: bottom_up (the catalog has no purchase price for {name})")
    if top.has("serving"):
        srv = top.section("serving", {})  # a section of only comments reads as empty
        out["total_tokens_per_s"] = opt_number(srv, "total_tokens_per_s_per_accelerator", positive=True)
        out["output_tokens_per_s"] = opt_number(srv, "output_tokens_per_s_per_accelerator", positive=True)
        out["prefill_compute_s"] = opt_number(srv, "prefill_compute_s")
        out["decode_step_compute_s"] = opt_number(srv, "decode_step_compute_s")
        out["overlap_fraction"] = opt_number(srv, "overlap_fraction", maximum=1.0)
        srv.finish()
        total, output = out["total_tokens_per_s"], out["output_tokens_per_s"]
        if total is not None and output is not None and output > total:
            raise CostError(src, "serving.output_tokens_per_s_per_accelerator",
                            f"got {output:g}; cannot exceed total_tokens_per_s_per_accelerator {total:g}")
    if top.has("network"):
        net = top.section("network", {})  # a section of only comments reads as empty
        out["network_life_years"] = opt_number(net, "life_years", positive=True)
        out["network_cost_of_capital"] = opt_number(net, "cost_of_capital", maximum=1.0)
        if net.has("fabric"):
            fabric_path = Path(net.text("fabric"))
            candidates = [fabric_path] if fabric_path.is_absolute() else [path.parent / fabric_path, fabric_path]
            found = next((c for c in candidates if c.exists()), None)
            if found is None:
                raise CostError(src, net.key("fabric"), f"fabric design {str(fabric_path)!r} not found "
                                f"(looked next to the cost file and in the current directory)")
            out["network_fabric"] = str(found)
        if net.has("parts"):
            from fabric.catalog.network import load_network_parts, with_overrides
            out["network_parts"] = with_overrides(load_network_parts(), net.section("parts"))
        net.finish()
    if top.has("facility"):
        fac = top.section("facility", {})  # a section of only comments reads as empty
        out["pue"] = opt_number(fac, "pue", minimum=1.0, maximum=3.0)
        out["electricity_usd_per_kwh"] = opt_number(fac, "electricity_usd_per_kwh")
        fac.finish()
    if top.has("slo"):
        slo = top.section("slo", {})  # a section of only comments reads as empty
        out["ttft_slo_s"] = opt_number(slo, "ttft_p99_s", positive=True)
        out["tpot_slo_s"] = opt_number(slo, "tpot_p99_s", positive=True)
        slo.finish()
    if top.has("loss_recovery"):
        lr = top.section("loss_recovery", {})  # a section of only comments reads as empty
        out["rto_s"] = opt_number(lr, "rto_s", positive=True)
        lr.finish()
    if top.has("idle_path_delay_s"):
        out["idle_path_delay_s"] = top.number("idle_path_delay_s", minimum=0.0)
    top.finish()
    return CostFile(**out)


def _catalog_accelerator(name: str):
    from fabric.catalog import accelerator
    return accelerator(name)


def _catalog_accelerator_name(name: str, source: str, key: str) -> str:
    """The catalog's spelling of ``name``, or a CostError naming the cost file and key."""
    from fabric.catalog import load_accelerators
    table = load_accelerators()
    folded = {k.lower(): k for k in table}
    if name.lower() not in folded:
        raise CostError(source, key, f"unknown accelerator {name!r}; valid: {', '.join(sorted(table))}")
    return folded[name.lower()]


# --------------------------------------------------------------------------------------------
# Inputs ledger: every number used, with its origin
# --------------------------------------------------------------------------------------------

class Ledger:
    """Records each input the calculation used: name, value, unit and source."""

    def __init__(self):
        self.items: dict[str, dict] = {}

    def use(self, name: str, value, unit: str, source: str):
        self.items[name] = {"name": name, "value": value, "unit": unit, "source": source}
        return value

    def pick(self, name: str, *candidates: tuple[Any, str]):
        """The first candidate ``(value, source)`` whose value is not None, else ``DEFAULTS[name]``."""
        for value, source in candidates:
            if value is not None:
                return self.use(name, value, DEFAULTS[name].unit if name in DEFAULTS else "", source)
        d = DEFAULTS[name]
        return self.use(name, d.value, d.unit, d.source)

    def as_list(self) -> list[dict]:
        return [self.items[k] for k in sorted(self.items)]


def cost_inputs(costs: CostFile | None = None) -> list[dict]:
    """Every cost-model input with its value and source, before any run is read (for reports)."""
    costs = costs or CostFile()
    led = Ledger()
    cf = f"cost file {costs.source}" if costs.source else ""
    led.pick("accelerator.tier", (costs.tier, cf))
    led.pick("accelerator.life_years", (costs.accelerator_life_years, cf))
    led.pick("accelerator.cost_of_capital", (costs.accelerator_cost_of_capital, cf))
    led.pick("network.life_years", (costs.network_life_years, cf))
    led.pick("network.cost_of_capital", (costs.network_cost_of_capital, cf))
    led.pick("facility.pue", (costs.pue, cf))
    led.pick("facility.electricity_usd_per_kwh", (costs.electricity_usd_per_kwh, cf))
    led.pick("serving.total_tokens_per_s_per_accelerator", (costs.total_tokens_per_s, cf))
    led.pick("serving.output_tokens_per_s_per_accelerator", (costs.output_tokens_per_s, cf))
    led.pick("serving.overlap_fraction", (costs.overlap_fraction, cf))
    led.pick("loss_recovery.rto_s", (costs.rto_s, cf))
    return led.as_list()


# --------------------------------------------------------------------------------------------
# Hourly cost
# --------------------------------------------------------------------------------------------

def accelerator_hourly_usd(name: str, costs: CostFile, led: Ledger, pue: float, usd_per_kwh: float) -> dict:
    """$/hour of one accelerator: an all-in tier price, or bottom-up capex + power."""
    cf = f"cost file {costs.source}"
    try:
        acc = _catalog_accelerator(name)
    except FabricError:
        if costs.price_per_hour_usd is None:
            raise
        acc = None
    pricing = led.use("accelerator.pricing", costs.pricing or "tier", "",
                      cf if costs.pricing else "default: an all-in hourly tier price (docs/economics.md §1)")
    cat = f"catalog accelerators.yaml {name}: {acc.source}" if acc else ""
    if pricing == "tier":
        if costs.price_per_hour_usd is not None:
            price = led.use(f"accelerator.{name}.price_per_hour_usd", costs.price_per_hour_usd, "USD/h", cf)
            return {"name": name, "pricing": "tier", "tier": "cost file", "usd_per_hour": price}
        tier = led.pick("accelerator.tier", (costs.tier, cf))
        if acc is None or tier not in acc.price_per_hour_usd:
            have = ", ".join(sorted(acc.price_per_hour_usd)) if acc else "none"
            raise CostError(costs.source or "catalog", "accelerator.price_per_hour_usd",
                            f"is required: the catalog has no {tier!r} hourly price for {name} (tiers it has: "
                            f"{have or 'none'}); give price_per_hour_usd, another tier, or pricing: bottom_up")
        price = led.use(f"accelerator.{name}.price_per_hour_usd", acc.price_per_hour_usd[tier], "USD/h",
                        f"{tier} tier, {cat}")
        return {"name": name, "pricing": "tier", "tier": tier, "usd_per_hour": price}
    purchase = costs.purchase_price_usd if costs.purchase_price_usd is not None else (acc.purchase_price_usd if acc else None)
    if purchase is None:
        raise CostError(costs.source or "catalog", "accelerator.purchase_price_usd",
                        f"is required for pricing: bottom_up (the catalog has no purchase price for {name})")
    led.use(f"accelerator.{name}.purchase_price_usd", purchase, "USD",
            cf if costs.purchase_price_usd is not None else cat)
    power_w = costs.accelerator_power_w if costs.accelerator_power_w is not None else acc.power_w
    led.use(f"accelerator.{name}.power_w", power_w, "W", cf if costs.accelerator_power_w is not None else cat)
    life = led.pick("accelerator.life_years", (costs.accelerator_life_years, cf))
    rate = led.pick("accelerator.cost_of_capital", (costs.accelerator_cost_of_capital, cf))
    capex_h = hourly_capex_usd(purchase, life, rate)
    power_h = power_usd_per_hour(power_w, pue, usd_per_kwh)
    return {"name": name, "pricing": "bottom_up", "purchase_price_usd": purchase, "power_w": power_w,
            "capex_usd_per_hour": capex_h, "power_usd_per_hour": power_h, "usd_per_hour": capex_h + power_h}


def network_hourly_usd(bom: dict, costs: CostFile, led: Ledger, pue: float, usd_per_kwh: float) -> dict:
    """Network capex (priced BOM) amortized per hour plus its power."""
    from fabric.catalog.network import load_network_parts, price_bom
    cf = f"cost file {costs.source}"
    parts = costs.network_parts or load_network_parts()
    items = price_bom(bom, parts)
    capex = sum(i["capex_usd"] for i in items)
    power_w = sum(i["power_w"] for i in items)
    life = led.pick("network.life_years", (costs.network_life_years, cf))
    rate = led.pick("network.cost_of_capital", (costs.network_cost_of_capital, cf))
    for i in items:
        label = (f"network.switch.{i['role']}.r{i['radix']}.{i['speed']}" if i["category"] == "switch"
                 else f"network.{i['category']}.{i['speed']}")
        led.use(f"{label}.unit_price_usd", i["unit_price_usd"], "USD",
                f"{i['priced_as']}: " + (i["source"] or "; ".join(i["assumptions"])))
    capex_h = hourly_capex_usd(capex, life, rate)
    power_h = power_usd_per_hour(power_w, pue, usd_per_kwh)
    return {"items": items, "capex_usd": capex, "power_w": power_w, "capex_usd_per_hour": capex_h,
            "power_usd_per_hour": power_h, "usd_per_hour": capex_h + power_h,
            "crf_per_year": capital_recovery_factor(rate, life)}


# --------------------------------------------------------------------------------------------
# Reading a run directory
# --------------------------------------------------------------------------------------------

def _workload_from_run(run: dict, run_dir: Path | None = None) -> dict:
    """Workload facts economics uses, flattened from run.json["workload"].

    Read directly: ``model`` (name or mapping with ``name``), ``layers_emulated`` /
    ``moe_layers_emulated`` / ``tp_layers_emulated``, ``layers`` / ``moe_layers`` / ``tp_layers``,
    ``prefill_compute_s``, ``decode_step_compute_s``, ``overlap_fraction``, ``slo``. Else, from a
    ``patterns`` list (``type`` moe_decode / allreduce with ``layers_emulated`` and ``model``), or
    by loading the profile at ``path`` when the file is still there.
    """
    w = run.get("workload") or (run.get("specs") or {}).get("workload") or {}
    w = dict(w) if isinstance(w, dict) else {}
    if isinstance(w.get("model"), dict):
        w["model"] = w["model"].get("name")
    patterns = w.get("patterns") if isinstance(w.get("patterns"), list) else None
    if patterns is None and w.get("path") and not w.get("model"):
        path = Path(w["path"])
        if not path.exists() and run_dir is not None:
            path = Path(run_dir) / w["path"]
        if path.exists():
            try:
                from fabric.workloads.profile import load_workload
                prof = load_workload(path)
            except (FabricError, ImportError):
                prof = None
            if prof is not None:
                w.setdefault("model", prof.model.name if prof.model else None)
                patterns = [{"type": pt.type, "layers_emulated": getattr(pt, "layers_emulated", 0),
                             "model": pt.model.name if pt.model else None} for pt in prof.patterns]
    for pt in patterns or []:
        if not isinstance(pt, dict):
            continue
        label = {"moe_decode": "moe", "allreduce": "tp"}.get(pt.get("type"))
        mname = pt["model"].get("name") if isinstance(pt.get("model"), dict) else pt.get("model")
        if label and pt.get("layers_emulated"):
            w.setdefault(f"{label}_layers_emulated", pt["layers_emulated"])
        if mname and not w.get("model"):
            w["model"] = mname
    return w


def _first(mapping: dict, *names, default=None):
    for n in names:
        if isinstance(mapping, dict) and mapping.get(n) is not None:
            return mapping[n]
    return default


def _idle_path_delay_s(run: dict, run_dir: Path, costs: CostFile, led: Ledger) -> float:
    cf = f"cost file {costs.source}"
    if costs.idle_path_delay_s is not None:
        return led.use("idle_path_delay_s", costs.idle_path_delay_s, "s", cf)
    if run.get("idle_path_delay_ns") is not None:
        return led.use("idle_path_delay_s", float(run["idle_path_delay_ns"]) / 1e9, "s", "run.json idle_path_delay_ns")
    path = Path(run_dir) / "noise.parquet"
    if path.exists():
        noise = pd.read_parquet(path, columns=["tx_ns", "rx_ns"])
        received = int((noise["rx_ns"] >= 0).sum())
        if received:
            owd_s = max(float(idle_path_delay_ns(noise)), 0.0) / 1e9
            return led.use("idle_path_delay_s", owd_s, "s",
                           f"noise.parquet: nearest-rank median idle one-way delay over {received} probe packets")
    return led.pick("idle_path_delay_s")


def message_times(run_dir: Path, costs: CostFile | None = None, led: Ledger | None = None,
                  run: dict | None = None, host_rate_bps: float | None = None) -> pd.DataFrame:
    """One row per scheduled message with ideal and measured completion (seconds from workload start).

    Columns: ``msg_id, kind, group, request_id, step, src, dst, bytes, t_start_s, ideal_done_s,
    measured_done_s, recovered`` (``recovered``: the message lost packets, or never showed up in
    messages.parquet, and its completion comes from the loss-recovery model).
    """
    from fabric.rundir import read_run_json
    from fabric.schedule import read_schedule
    run_dir = Path(run_dir)
    costs = costs or CostFile()
    led = led or Ledger()
    run = run if run is not None else read_run_json(run_dir)
    if host_rate_bps is None:
        host_rate_bps = float(rundir.fabric_spec(run, f"{run_dir}/run.json").host_link_rate_bps)
    rate = led.use("host_link_rate_bps", float(host_rate_bps), "bit/s", "run.json fabric design: host_link_rate")
    idle = _idle_path_delay_s(run, run_dir, costs, led)
    lr = run.get("loss_recovery") or {}
    rto = led.pick("loss_recovery.rto_s", (costs.rto_s, f"cost file {costs.source}"),
                   (lr.get("rto_ns") / 1e9 if lr.get("rto_ns") is not None else None, "run.json loss_recovery.rto_ns"))

    from fabric.analysis.run_metrics import completions, read_frames
    frames = read_frames(run_dir, packets_required=False)
    scale_k = float(run.get("scale_k", 1) or 1)
    # Every completion time comes from the one model of fabric.analysis.completion; a run without
    # link counters (hand-made) falls back to the design's host link rate, emulated (÷ k).
    comp, prep = completions(frames, fallback_rate_bps=rate / scale_k)
    msgs = prep["messages"]
    comp = comp.assign(msg_id=msgs["msg_id"].to_numpy(), t_sched_ns=msgs["t_sched_ns"].to_numpy())
    sched_path = run_dir / "schedule.parquet"
    t0_ns = run.get("t0_ns")
    if sched_path.exists():
        sched = read_schedule(sched_path)
        unknown = set(msgs["msg_id"]) - set(sched["msg_id"])
        if unknown:
            raise RunDirError(f"{run_dir}: messages.parquet has {len(unknown)} msg_id values that schedule.parquet "
                              f"lacks (e.g. {min(unknown)}); the two files are from different runs")
        frame = sched.merge(comp, on="msg_id", how="left")
    else:
        frame = msgs.drop(columns=["t_sched_ns"]).merge(comp, on="msg_id", how="left")
        if t0_ns is None:
            t0_ns = int(frame["t_sched_ns"].min()) if len(frame) else 0
        frame["t_start_s"] = (frame["t_sched_ns"] - t0_ns) / 1e9
    frame = frame.reset_index(drop=True)
    frame["ideal_done_s"] = frame["t_start_s"] + frame["ideal_ns"] / 1e9
    measured = frame["t_start_s"] + frame["mct_ns"] / 1e9
    missing = frame["mct_ns"].isna()
    if missing.any():
        # A scheduled message with no record was never delivered: the loss-recovery model from its
        # scheduled start, resending all of it (real bytes at the real line rate: same time).
        sub = frame[missing]
        measured[missing] = sub["t_start_s"] + recovery_completion_ns(
            np.zeros(len(sub)), sub["bytes"].to_numpy(np.float64), np.full(len(sub), rate), rto * 1e9, idle * 1e9) / 1e9
        frame.loc[missing, "ideal_done_s"] = sub["t_start_s"] + sub["bytes"] * 8.0 / rate + idle
    frame["recovered"] = frame["recovered"].fillna(True).astype(bool) | missing
    frame["measured_done_s"] = measured.astype("float64")
    cols = ["msg_id", "kind", "group", "request_id", "step", "src", "dst", "bytes", "t_start_s",
            "ideal_done_s", "measured_done_s", "recovered"]
    return frame[cols]


# --------------------------------------------------------------------------------------------
# Derating
# --------------------------------------------------------------------------------------------

def group_completions(frame: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Per group: start (first member's start), ideal and measured completion time (max − start)."""
    g = frame.groupby(by, sort=True)
    start = g["t_start_s"].min()
    out = pd.DataFrame({
        "start_s": start,
        "ideal_s": g["ideal_done_s"].max() - start,
        "measured_s": g["measured_done_s"].max() - start,
        "messages": g.size(),
        "recovered": g["recovered"].sum(),
    })
    return out


def nearest_rank(values, q: float) -> float:
    """Nearest-rank percentile (docs/metrics.md): the ⌈q/100 · N⌉-th smallest value."""
    arr = np.sort(np.asarray(values, dtype="float64"))
    if not len(arr):
        return math.nan
    k = max(int(math.ceil(q / 100.0 * len(arr))), 1)
    return float(arr[k - 1])


def eta_kv(frame: pd.DataFrame, ttft_slo_s: float, prefill_compute_s, first_decode_step_s: float) -> dict | None:
    """η_KV: share of requests meeting the TTFT SLO, measured ÷ ideal (DistServe goodput).

    ``prefill_compute_s`` is a number or a Series indexed by request key.
    """
    kv = frame[frame["kind"].isin(KV_KINDS)]
    if kv.empty:
        return None
    key = np.where(kv["request_id"] >= 0, "r" + kv["request_id"].astype(str), "g" + kv["group"].astype(str))
    groups = group_completions(kv.assign(_req=key), "_req")
    prefill = prefill_compute_s.reindex(groups.index).fillna(0.0) if isinstance(prefill_compute_s, pd.Series) \
        else pd.Series(float(prefill_compute_s), index=groups.index)
    ttft_ideal = prefill + groups["ideal_s"] + first_decode_step_s
    ttft_meas = prefill + groups["measured_s"] + first_decode_step_s
    att_ideal = float((ttft_ideal <= ttft_slo_s).mean())
    att_meas = float((ttft_meas <= ttft_slo_s).mean())
    eta = None if att_ideal == 0 else min(att_meas / att_ideal, 1.0)
    return {
        "eta": eta, "requests": int(len(groups)), "messages": int(len(kv)),
        "recovered_messages": int(kv["recovered"].sum()),
        "ttft_slo_s": ttft_slo_s, "attainment_ideal": att_ideal, "attainment_measured": att_meas,
        "prefill_compute_s_mean": float(prefill.mean()), "first_decode_step_s": first_decode_step_s,
        "kv_completion_ideal_p50_s": nearest_rank(groups["ideal_s"], 50),
        "kv_completion_ideal_p99_s": nearest_rank(groups["ideal_s"], 99),
        "kv_completion_measured_p50_s": nearest_rank(groups["measured_s"], 50),
        "kv_completion_measured_p99_s": nearest_rank(groups["measured_s"], 99),
        "ttft_ideal_p99_s": nearest_rank(ttft_ideal, 99), "ttft_measured_p99_s": nearest_rank(ttft_meas, 99),
        "note": (None if eta is not None else
                 "no request meets the TTFT SLO even on the ideal fabric: the SLO is out of reach for this "
                 "workload's compute, so the network is not what limits it (η_KV left out)"),
    }


def step_comm(frame: pd.DataFrame, kinds: tuple[str, ...]) -> pd.DataFrame | None:
    """Per decode step: Σ over the step's groups of group completion (ideal and measured), in s."""
    sub = frame[frame["kind"].isin(kinds)]
    if sub.empty:
        return None
    groups = group_completions(sub, ["step", "group"])
    per_step = groups.groupby(level="step")[["ideal_s", "measured_s", "recovered"]].sum()
    per_step["groups"] = groups.groupby(level="step").size()
    return per_step


def eta_tpot(per_step: pd.DataFrame, compute_s: float, layer_scale: float, overlap: float,
             tpot_slo_s: float) -> dict:
    """η = mean TPOT_ideal ÷ mean TPOT_measured, TPOT = compute + scale × comm × (1 − overlap)."""
    k = layer_scale * (1.0 - overlap)
    tpot_ideal = compute_s + k * per_step["ideal_s"]
    tpot_meas = compute_s + k * per_step["measured_s"]
    eta = float(tpot_ideal.mean() / tpot_meas.mean()) if tpot_meas.mean() > 0 else 1.0
    return {
        "eta": min(eta, 1.0), "steps": int(len(per_step)), "groups": int(per_step["groups"].sum()),
        "recovered_messages": int(per_step["recovered"].sum()),
        "compute_s": compute_s, "layer_scale": layer_scale, "overlap_fraction": overlap,
        "comm_ideal_mean_s": float(per_step["ideal_s"].mean()), "comm_measured_mean_s": float(per_step["measured_s"].mean()),
        "comm_measured_p99_s": nearest_rank(per_step["measured_s"], 99),
        "tpot_ideal_mean_s": float(tpot_ideal.mean()), "tpot_measured_mean_s": float(tpot_meas.mean()),
        "tpot_ideal_p99_s": nearest_rank(tpot_ideal, 99), "tpot_measured_p99_s": nearest_rank(tpot_meas, 99),
        "tpot_slo_s": tpot_slo_s, "tpot_slo_met_measured": bool(nearest_rank(tpot_meas, 99) <= tpot_slo_s),
    }


def _model_or_none(name):
    if not name:
        return None
    try:
        from fabric.catalog import model
        return model(str(name))
    except FabricError:
        return None


def derating(run_dir: Path, costs: CostFile | None = None, led: Ledger | None = None,
             run: dict | None = None, spec=None) -> dict:
    """η per pattern and combined for one run directory (docs/economics.md §2)."""
    from fabric.rundir import read_run_json
    run_dir = Path(run_dir)
    costs = costs or CostFile()
    led = led or Ledger()
    cf = f"cost file {costs.source}"
    run = run if run is not None else read_run_json(run_dir)
    spec = spec or rundir.fabric_spec(run, f"{run_dir}/run.json")
    workload = _workload_from_run(run, run_dir)
    frame = message_times(run_dir, costs, led, run, spec.host_link_rate_bps)
    warnings: list[str] = []

    model_name = _first(workload, "model", "model_name")
    mdl = _model_or_none(model_name)
    if model_name:
        led.use("workload.model", str(model_name), "", "run.json workload.model"
                + ("" if mdl else " (not in the catalog: layer counts and SLOs fall back to defaults)"))
    slo_default = SLO_BY_MODEL.get(mdl.name if mdl else str(model_name), IETF_SLO)
    wslo = workload.get("slo") if isinstance(workload.get("slo"), dict) else {}

    def slo(name: str, file_value, keys: tuple[str, ...], default: float) -> float:
        stated = _first(wslo, *keys)
        if file_value is not None:
            return led.use(name, file_value, "s", cf)
        if stated is not None:
            return led.use(name, float(stated), "s", f"run.json workload.slo.{keys[0]}")
        return led.use(name, default, "s", slo_default[2])

    ttft_slo = slo("slo.ttft_p99_s", costs.ttft_slo_s, ("ttft_p99_s", "ttft_s"), slo_default[0])
    tpot_slo = slo("slo.tpot_p99_s", costs.tpot_slo_s, ("tpot_p99_s", "tpot_s"), slo_default[1])
    overlap = led.pick("serving.overlap_fraction", (costs.overlap_fraction, cf),
                       (_first(workload, "overlap_fraction"), "run.json workload.overlap_fraction"))

    # Layer scaling: the profile may emulate a subset of layers per step.
    def layer_scale(kind_label: str, full_default: int | None) -> float:
        emulated = _first(workload, f"{kind_label}_layers_emulated", "layers_emulated")
        full = _first(workload, f"{kind_label}_layers", "layers", default=full_default)
        if emulated and full:
            scale = float(full) / float(emulated)
            led.use(f"{kind_label}.layer_scale", scale, "", f"run.json workload: {full} layers, {emulated} emulated")
            return scale
        led.use(f"{kind_label}.layer_scale", 1.0, "",
                "run.json workload states no emulated layer subset: all layers assumed emulated")
        return 1.0

    moe_steps = step_comm(frame, A2A_KINDS)
    tp_steps = step_comm(frame, TP_KINDS)
    scale_moe = layer_scale("moe", mdl.moe_layers if mdl and mdl.moe_layers else (mdl.layers if mdl else None)) \
        if moe_steps is not None else 1.0
    scale_tp = layer_scale("tp", mdl.layers if mdl else None) if tp_steps is not None else 1.0

    # Decode compute per step: stated, or calibrated so that the ideal step is DeepSeek's 1/21 s.
    ideal_comm = (0.0 if moe_steps is None else scale_moe * (1 - overlap) * moe_steps["ideal_s"].mean()) + \
                 (0.0 if tp_steps is None else scale_tp * (1 - overlap) * tp_steps["ideal_s"].mean())
    stated = costs.decode_step_compute_s if costs.decode_step_compute_s is not None else \
        _first(workload, "decode_step_compute_s", "decode_compute_s")
    if stated is not None:
        decode_compute = led.use("serving.decode_step_compute_s", float(stated), "s",
                                 cf if costs.decode_step_compute_s is not None else "run.json workload.decode_step_compute_s")
    else:
        target = DEFAULTS["serving.decode_step_s"]
        decode_compute = led.use("serving.decode_step_compute_s", max(target.value - ideal_comm, 0.0), "s",
                                 f"{target.source} (ideal network time per step {ideal_comm * 1e3:.3f} ms)")
    patterns: dict[str, dict | None] = {"kv": None, "moe": None, "tp": None}
    if moe_steps is not None:
        patterns["moe"] = eta_tpot(moe_steps, decode_compute, scale_moe, overlap, tpot_slo)
    if tp_steps is not None:
        patterns["tp"] = eta_tpot(tp_steps, decode_compute, scale_tp, overlap, tpot_slo)
    first_decode = decode_compute + ideal_comm

    # Prefill compute per request: stated, or the catalog's compute-bound rate on the KV's prompt.
    kv_rows = frame[frame["kind"].isin(KV_KINDS)]
    if not kv_rows.empty:
        stated_p = costs.prefill_compute_s if costs.prefill_compute_s is not None else \
            _first(workload, "prefill_compute_s")
        if stated_p is not None:
            prefill = led.use("serving.prefill_compute_s", float(stated_p), "s",
                              cf if costs.prefill_compute_s is not None else "run.json workload.prefill_compute_s")
        else:
            acc_name = _first(workload, "accelerator") or _pool_accelerator(spec, "prefill")
            try:
                acc = _catalog_accelerator(acc_name)
            except FabricError:
                acc = None
            if mdl is not None and acc is not None:
                key = np.where(kv_rows["request_id"] >= 0, "r" + kv_rows["request_id"].astype(str),
                               "g" + kv_rows["group"].astype(str))
                prompt_tokens = kv_rows.groupby(key)["bytes"].sum() / mdl.kv_bytes_per_token
                rate = acc.prefill_tokens_per_s(mdl)
                prefill = prompt_tokens / rate
                led.use("serving.prefill_compute_s", float(prefill.mean()), "s (mean)",
                        f"prompt tokens = KV bytes / {mdl.kv_bytes_per_token} B per token ({mdl.name}); "
                        f"÷ {rate:,.0f} tokens/s ({acc.name} catalog prefill rate: bf16_tflops × mfu / 2·active params)")
            else:
                prefill = led.use("serving.prefill_compute_s", 0.0, "s",
                                  "unknown (no catalog model in run.json workload.model and none stated): TTFT "
                                  "counts the KV transfer and the first decode step only")
                warnings.append("prefill compute unknown: TTFT counts only the KV transfer and first decode step")
        patterns["kv"] = eta_kv(frame, ttft_slo, prefill, first_decode)
        if patterns["kv"] and patterns["kv"]["note"]:
            warnings.append(patterns["kv"]["note"])

    etas = {k: (v["eta"] if v and v["eta"] is not None else None) for k, v in patterns.items()}
    eta_prefill = etas["kv"] if etas["kv"] is not None else 1.0
    eta_decode = (etas["moe"] if etas["moe"] is not None else 1.0) * (etas["tp"] if etas["tp"] is not None else 1.0)
    total_rate = led.pick("serving.total_tokens_per_s_per_accelerator", (costs.total_tokens_per_s, cf))
    output_rate = led.pick("serving.output_tokens_per_s_per_accelerator", (costs.output_tokens_per_s, cf))
    w_out = output_rate / total_rate
    combined = (1.0 - w_out) * eta_prefill + w_out * eta_decode
    measured = {k: v for k, v in etas.items() if v is not None}
    # The pattern that "sets" η is the one costing the most served tokens: its pool's token share
    # times its own shortfall (1 − η).
    share_of = {"kv": 1.0 - w_out, "moe": w_out, "tp": w_out}
    loss = {k: share_of[k] * (1.0 - v) for k, v in measured.items()}
    set_by = max(loss, key=lambda k: (loss[k], k)) if loss and max(loss.values()) > 0 else None
    if not measured:
        warnings.append("the run has no kv, a2a or allreduce messages: η = 1 by default")
    return {
        "eta": {**etas, "prefill_pool": eta_prefill, "decode_pool": eta_decode, "combined": combined,
                "set_by": set_by, "token_loss": loss},
        "token_shares": {"prefill_input": 1.0 - w_out, "decode_output": w_out},
        "patterns": patterns,
        "messages": int(len(frame)), "recovered_messages": int(frame["recovered"].sum()),
        "warnings": warnings,
    }


def _pool_accelerator(spec, role: str) -> str:
    groups = [g for g in spec.host_groups if g.role == role] or list(spec.host_groups)
    return groups[0].accelerator


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


__all__ = ["DEFAULTS", "SLO_BY_MODEL", "IETF_SLO", "CostFile", "Ledger", "load_costs", "cost_inputs",
           "capital_recovery_factor", "hourly_capex_usd", "power_usd_per_hour", "cpmt_usd_per_mtok",
           "break_even_ratio", "max_network_premium", "message_times",
           "group_completions", "eta_kv", "eta_tpot", "step_comm", "derating", "cpmt_for_run",
           "compare_break_even", "accelerator_hourly_usd", "network_hourly_usd", "nearest_rank"]
