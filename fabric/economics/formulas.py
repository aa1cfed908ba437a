"""The pure formulas of docs/economics.md §1: capital recovery, $/hour, CPMT, break-even.

The worked check in docs/economics.md exercises these; nothing here reads a file."""

from __future__ import annotations

import math

HOURS_PER_YEAR = 8760.0

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


def colocation_usd_per_hour(power_w: float, usd_per_kw_month: float) -> float:
    """Colocation rent of ``power_w`` of critical load, per hour (a month is 8760/12 hours)."""
    return power_w / 1000.0 * usd_per_kw_month * 12.0 / HOURS_PER_YEAR


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
