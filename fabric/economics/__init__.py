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
    facility kW    = (accelerators × board W × all-in ratio + network W) × PUE / 1000
    tokens/kWh     = tokens/s ideal × η × 3600 / facility kW       (docs/economics.md, Energy)

Cost-file layout: see ``costs.example.yaml`` at the repository root, and :func:`load_costs`.

Package layout: :mod:`.formulas` (pure arithmetic), :mod:`.costs` (cost file, defaults with
sources, ledger, pricing), :mod:`.derating` (η from a run directory), :mod:`.cpmt` (CPMT of a run,
break-even).
"""

from fabric.economics.costs import (  # noqa: F401
    DEFAULTS,
    IETF_SLO,
    POOL_MODELS,
    PRICE_TIERS,
    PRICING_MODES,
    SLO_BY_MODEL,
    CostFile,
    Default,
    Ledger,
    accelerator_hourly_usd,
    accelerator_power_w,
    cost_inputs,
    load_costs,
    network_hourly_usd,
)
from fabric.economics.cpmt import compare_break_even, cpmt_for_run, energy_figures, mix_break_even  # noqa: F401
from fabric.economics.derating import (  # noqa: F401
    A2A_KINDS,
    KV_KINDS,
    TP_KINDS,
    combined_eta,
    derating,
    eta_decode,
    eta_kv,
    eta_tpot,
    exposed_s,
    group_completions,
    message_times,
    nearest_rank,
    prefill_pool_share,
    step_comm,
)
from fabric.economics.formulas import (  # noqa: F401
    HOURS_PER_YEAR,
    break_even_ratio,
    capital_recovery_factor,
    colocation_usd_per_hour,
    cpmt_usd_per_mtok,
    hourly_capex_usd,
    max_network_premium,
    power_usd_per_hour,
)
from fabric.economics.sensitivity import cpmt_sensitivity  # noqa: F401
