"""What a cluster costs per hour: the cost file, every default with its source, the ledger of
inputs, and the pricing of accelerators and of the network (docs/economics.md §2–3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric.analysis.run_metrics import DEFAULT_RTO_NS
from fabric.economics.formulas import (
    capital_recovery_factor,
    colocation_usd_per_hour,
    hourly_capex_usd,
    power_usd_per_hour,
)
from fabric.errors import CostError, FabricError
from fabric.yamlspec import Section, load_yaml_mapping

PRICE_TIERS = ("hyperscaler", "neocloud", "rental")
PRICING_MODES = ("tier", "bottom_up")
POOL_MODELS = ("rebalanced", "fixed")


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
    "serving.overlap_fraction": Default(0.0, "", "assumption: no communication hidden behind compute (worst case for the network): the share of a decode step's compute time that can hide communication (docs/economics.md §2)"),
    "serving.pool_model": Default("rebalanced", "", "docs/economics.md §2: a disaggregated deployment sizes its prefill and decode pools to the load (DistServe, Splitwise, DeepSeek day 6 move instances between pools), so a slower pool takes accelerators from the other"),
    "serving.prefill_pool_share": Default(0.42, "", "DeepSeek open-infra-index day 6: 608B input and 168B output tokens a day at the reported per-pool throughputs put about 42% of accelerator time on prefill and 58% on decode (docs/economics.md §2); used when the design has no prefill/decode host groups"),
    "accelerator.tier_network_share": Default(0.12, "", "assumption: an all-in $/accelerator-hour (InferenceX) already pays for the cluster's back-end network (NICs, switches, optics), about 10-15% of an AI cluster's capital cost in public TCO breakdowns; 12% is taken out of the tier price and the design's own network is added instead (docs/economics.md §1)"),
    "accelerator.server_share_usd": Default(8000.0, "USD", "assumption: an 8-GPU HGX/DGX-class server costs about 250-300k USD with its GPUs; without the GPUs and the back-end NICs that leaves about 8k USD of CPU, memory, storage, chassis and front-end network per accelerator"),
    "accelerator.system_power_ratio": Default(10200 / 8 / 700, "", "NVIDIA DGX H100 user guide: 10.2 kW maximum system power for 8 x 700 W GPUs, so all-in power (CPUs, memory, fans, NICs included) = 1.82 x board power"),
    "facility.colocation_usd_per_kw_month": Default(150.0, "USD/(kW·month)", "assumption: North American wholesale colocation rents about 130-180 USD per kW of critical load per month (2024 market reports)"),
    "loss_recovery.rto_s": Default(
        DEFAULT_RTO_NS / 1e9, "s", "fabric.analysis.run_metrics.DEFAULT_RTO_NS: a deliberately short, "
        "datacenter-tuned retransmission timeout, the same one metrics.json uses"),
    "idle_path_delay_s": Default(10e-6, "s", "docs/design.md §6 noise floor: idle one-way delay p50 5–7 µs, p99 12–20 µs on the emulation host"),
}

# p99 SLOs by catalog model: MLPerf Inference loadgen (docs/economics.md §3); others get the IETF default.
SLO_BY_MODEL: dict[str, tuple[float, float, str]] = {
    "DeepSeek-V3": (2.0, 0.080, "MLPerf Inference DeepSeek-R1 (same architecture as V3): TTFT 2 s, TPOT 80 ms (docs/economics.md §3)"),
    "DeepSeek-R1": (2.0, 0.080, "MLPerf Inference DeepSeek-R1: TTFT 2 s, TPOT 80 ms (docs/economics.md §3)"),
    "Llama-2-70B": (2.0, 0.200, "MLPerf Inference Llama-2-70B server: TTFT 2 s, TPOT 200 ms (docs/economics.md §3)"),
    "Llama-3-70B": (2.0, 0.200, "MLPerf Inference Llama-2-70B server scenario, applied to the same size class: TTFT 2 s, TPOT 200 ms (docs/economics.md §3)"),
    "Llama-3.1-405B": (6.0, 0.175, "MLPerf Inference Llama-3.1-405B server scenario: TTFT 6 s, TPOT 175 ms (docs/economics.md §3)"),
    "Llama-3.1-8B": (2.0, 0.100, "MLPerf Inference Llama-3.1-8B: TTFT 2 s, TPOT 100 ms (docs/economics.md §3)"),
    "Llama-3-8B": (2.0, 0.100, "MLPerf Inference Llama-3.1-8B, applied to Llama-3-8B: TTFT 2 s, TPOT 100 ms (docs/economics.md §3)"),
}
IETF_SLO = (0.5, 0.050, "IETF draft-calabria-bmwg-ai-fabric-inference-bench default SLO: TTFT p99 < 500 ms, ITL p99 < 50 ms (docs/economics.md §3)")


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
    pool_model: str | None = None
    prefill_pool_share: float | None = None
    request_rate_per_s: float | None = None
    tier_network_share: float | None = None
    server_share_usd: float | None = None
    system_power_ratio: float | None = None
    colocation_usd_per_kw_month: float | None = None
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
        out["tier_network_share"] = opt_number(acc, "tier_network_share", maximum=0.9)
        out["server_share_usd"] = opt_number(acc, "server_share_usd")
        out["system_power_ratio"] = opt_number(acc, "system_power_ratio", minimum=1.0)
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
        out["pool_model"] = srv.choice("pool_model", POOL_MODELS, None) if srv.has("pool_model") else None
        out["prefill_pool_share"] = opt_number(srv, "prefill_pool_share", maximum=1.0)
        out["request_rate_per_s"] = opt_number(srv, "request_rate_per_s", positive=True)
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
        out["colocation_usd_per_kw_month"] = opt_number(fac, "colocation_usd_per_kw_month")
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
    tier = led.pick("accelerator.tier", (costs.tier, cf)) if pricing == "tier" else None
    if (pricing == "tier" and costs.price_per_hour_usd is None and acc is not None
            and tier not in acc.price_per_hour_usd and acc.purchase_price_usd is not None):
        # No public hourly market for this accelerator (Gaudi 3): price it from its purchase price,
        # power and colocation like bottom-up pricing does, and say so, rather than refuse the design.
        led.use(f"accelerator.{name}.pricing", "bottom_up", "",
                f"the catalog has no {tier!r} hourly price for {name}: priced bottom-up (purchase, server share, "
                f"all-in power, colocation) beside the tier-priced accelerators")
        pricing = "bottom_up"
        note = (f"{name} has no {tier!r} hourly price in the catalog: priced bottom-up beside the tier-priced "
                f"accelerators (give accelerator.price_per_hour_usd in a cost file to override)")
    else:
        note = None
    if pricing == "tier":
        # An all-in tier price already pays for a back-end network; take that share out, so that
        # the design's own network (added by the caller) is the only network in the bill.
        share = led.pick("accelerator.tier_network_share", (costs.tier_network_share, cf))
        if costs.price_per_hour_usd is not None:
            price = led.use(f"accelerator.{name}.price_per_hour_usd", costs.price_per_hour_usd, "USD/h", cf)
            return {"name": name, "pricing": "tier", "tier": "cost file", "all_in_usd_per_hour": price,
                    "network_share_removed": share, "usd_per_hour": price * (1.0 - share)}
        if acc is None or tier not in acc.price_per_hour_usd:
            have = ", ".join(sorted(acc.price_per_hour_usd)) if acc else "none"
            raise CostError(costs.source or "catalog", "accelerator.price_per_hour_usd",
                            f"is required: the catalog has no {tier!r} hourly price for {name} (tiers it has: "
                            f"{have or 'none'}); give price_per_hour_usd, another tier, or pricing: bottom_up")
        price = led.use(f"accelerator.{name}.price_per_hour_usd", acc.price_per_hour_usd[tier], "USD/h",
                        f"{tier} tier, {cat}")
        return {"name": name, "pricing": "tier", "tier": tier, "all_in_usd_per_hour": price,
                "network_share_removed": share, "usd_per_hour": price * (1.0 - share)}
    purchase = costs.purchase_price_usd if costs.purchase_price_usd is not None else (acc.purchase_price_usd if acc else None)
    if purchase is None:
        raise CostError(costs.source or "catalog", "accelerator.purchase_price_usd",
                        f"is required for pricing: bottom_up (the catalog has no purchase price for {name})")
    led.use(f"accelerator.{name}.purchase_price_usd", purchase, "USD",
            cf if costs.purchase_price_usd is not None else cat)
    server = led.pick("accelerator.server_share_usd", (costs.server_share_usd, cf))
    power_w = accelerator_power_w(name, costs, led)
    if power_w is None:
        raise CostError(costs.source or "catalog", "accelerator.power_w",
                        f"is required for pricing: bottom_up (the catalog has no board power for {name})")
    life = led.pick("accelerator.life_years", (costs.accelerator_life_years, cf))
    rate = led.pick("accelerator.cost_of_capital", (costs.accelerator_cost_of_capital, cf))
    colo = led.pick("facility.colocation_usd_per_kw_month", (costs.colocation_usd_per_kw_month, cf))
    capex_h = hourly_capex_usd(purchase + server, life, rate)
    power_h = power_usd_per_hour(power_w, pue, usd_per_kwh)
    colo_h = colocation_usd_per_hour(power_w, colo)
    return {"name": name, "pricing": "bottom_up", "purchase_price_usd": purchase, "server_share_usd": server,
            "power_w": power_w, "capex_usd_per_hour": capex_h, "power_usd_per_hour": power_h,
            "colocation_usd_per_hour": colo_h, "usd_per_hour": capex_h + power_h + colo_h,
            **({"note": note} if note else {})}


def frontend_hourly_usd(name: str, costs: CostFile, led: Ledger, pue: float, usd_per_kwh: float) -> dict:
    """$/hour of one front-end CPU server (catalog kind cpu), always bottom-up from the catalog:
    its purchase price and power are the whole server's, so no server share and no system-power
    ratio go on top, and the cost file's accelerator.* overrides (which price the accelerators) do
    not apply. Life, cost of capital and colocation are the accelerators' (servers alike)."""
    cf = f"cost file {costs.source}"
    acc = _catalog_accelerator(name)
    cat = f"catalog accelerators.yaml {name}: {acc.source}"
    if acc.purchase_price_usd is None:
        raise CostError("catalog", f"{name}.purchase_price_usd", "is required to price a front-end server")
    purchase = led.use(f"frontend.{name}.purchase_price_usd", acc.purchase_price_usd, "USD", cat)
    power_w = led.use(f"frontend.{name}.power_w", acc.power_w, "W", cat + " (the whole server)")
    life = led.pick("accelerator.life_years", (costs.accelerator_life_years, cf))
    rate = led.pick("accelerator.cost_of_capital", (costs.accelerator_cost_of_capital, cf))
    colo = led.pick("facility.colocation_usd_per_kw_month", (costs.colocation_usd_per_kw_month, cf))
    capex_h = hourly_capex_usd(purchase, life, rate)
    power_h = power_usd_per_hour(power_w, pue, usd_per_kwh)
    colo_h = colocation_usd_per_hour(power_w, colo)
    return {"name": name, "pricing": "bottom_up", "purchase_price_usd": purchase, "power_w": power_w,
            "capex_usd_per_hour": capex_h, "power_usd_per_hour": power_h, "colocation_usd_per_hour": colo_h,
            "usd_per_hour": capex_h + power_h + colo_h}


def accelerator_power_w(name: str, costs: CostFile, led: Ledger) -> float | None:
    """All-in watts of one accelerator: board power × ``accelerator.system_power_ratio``.

    Board power alone leaves out the server's CPUs, memory, fans and NICs, which draw (and are
    cooled and housed) all the same. The same all-in figure serves bottom-up pricing and the
    energy figures (even when the price is an all-in tier price). None when neither the cost file
    nor the catalog knows the board power.
    """
    cf = f"cost file {costs.source}"
    if costs.accelerator_power_w is not None:
        board_w = led.use(f"accelerator.{name}.power_w", costs.accelerator_power_w, "W", cf)
    else:
        try:
            acc = _catalog_accelerator(name)
        except FabricError:
            return None
        board_w = led.use(f"accelerator.{name}.power_w", acc.power_w, "W",
                          f"catalog accelerators.yaml {name}: {acc.source}")
    return board_w * led.pick("accelerator.system_power_ratio", (costs.system_power_ratio, cf))


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
