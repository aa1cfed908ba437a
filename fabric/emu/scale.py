"""Choosing the scale factor ``k`` from the machine's packet budget (DESIGN.md §4).

Software forwarding on a small VM carries about 50k full-size packets per second in total; a
400G fabric is therefore emulated with rates, message sizes and buffers divided by ``k``.
Times are unchanged by construction (size/rate is invariant), so results come out in real time.

``k`` is chosen from the workload's *peak* offered packet rate: each host sends its messages back
to back at its NIC rate (the contention-free timeline), the bytes are binned into windows, and
the busiest window must fit the budget. A run that cannot fit at any sane ``k`` is refused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fabric.errors import BudgetError
from fabric.probe import DEFAULT_PAYLOAD_BYTES

DEFAULT_BUDGET_PPS = 50_000
# HTB stays accurate down to about 1 Mbit/s; below it, scaling has gone too far.
MIN_EMULATED_RATE_BPS = 1_000_000
# One sending CPU pushes ~25k packets/s through the fabric (the forwarding runs in the send call),
# i.e. ~800 Mbit/s at 4 KB: a single link faster than that cannot be kept busy.
MAX_EMULATED_RATE_BPS = 500_000_000


@dataclass(frozen=True)
class ScaleChoice:
    k: float
    peak_offered_bps: float
    mean_offered_bps: float
    peak_pps_emulated: float
    budget_pps: int
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def nice_ceiling(x: float) -> float:
    """Smallest of 1, 2, 2.5, 5 × 10^n that is >= x (so k reads well in reports)."""
    if x <= 1:
        return 1.0
    exp = math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10**exp >= x * (1 - 1e-12):
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


def offered_load_profile(schedule: pd.DataFrame, nic_rate_bps: dict[str, float]) -> tuple[float, float]:
    """Return (peak, mean) offered load in bit/s, real units, of the contention-free timeline.

    Each host sends its messages back to back at its NIC rate; the peak is the largest sum of
    the rates of hosts sending at the same instant. Short bursts count fully: on 2 vCPUs the
    sending CPU forwards each packet through the whole fabric in the send call itself, so a burst
    over budget makes senders late even when it lasts a millisecond.
    """
    if schedule.empty:
        return 0.0, 0.0
    span_end = 0.0
    edges_t, edges_rate = [], []
    for src, rows in schedule.groupby("src", sort=True):
        rate = float(nic_rate_bps[src])
        starts = rows["t_start_s"].to_numpy()
        durations = rows["bytes"].to_numpy() * 8.0 / rate
        busy_until = -np.inf
        for t, d in zip(starts, durations):  # per message of one host: a few thousand at most
            begin = max(t, busy_until)
            if begin > busy_until:
                edges_t += [begin]
                edges_rate += [rate]
                if np.isfinite(busy_until):
                    edges_t += [busy_until]
                    edges_rate += [-rate]
            busy_until = begin + d
        edges_t += [busy_until]
        edges_rate += [-rate]
        span_end = max(span_end, busy_until)
    times = np.asarray(edges_t)
    deltas = np.asarray(edges_rate)
    # At equal times apply decreases first, so back-to-back busy periods do not double count.
    order = np.lexsort((deltas, times))
    peak = float(np.cumsum(deltas[order]).max(initial=0.0))
    t0 = float(schedule["t_start_s"].min())
    mean = float(schedule["bytes"].sum()) * 8 / max(span_end - t0, 1e-3)
    return peak, mean


def choose_scale(schedule: pd.DataFrame, nic_rate_bps: dict[str, float], link_rates_bps: list[float],
                 budget_pps: int = DEFAULT_BUDGET_PPS, payload_bytes: int = DEFAULT_PAYLOAD_BYTES,
                 k: float | None = None) -> ScaleChoice:
    """Pick ``k`` (or check a given one) so the peak offered packet rate fits the budget."""
    peak, mean = offered_load_profile(schedule, nic_rate_bps)
    bits_per_packet = payload_bytes * 8
    k_min_budget = peak / (budget_pps * bits_per_packet) if peak else 1.0
    k_min_rate = max(link_rates_bps) / MAX_EMULATED_RATE_BPS
    k_max = min(link_rates_bps) / MIN_EMULATED_RATE_BPS
    if k is None:
        need = max(1.0, k_min_budget, k_min_rate)
        chosen = nice_ceiling(need)
        reason = (f"peak offered load {peak / 1e9:.4g} Gbit/s must fit {budget_pps} packets/s of "
                  f"{payload_bytes} B" if k_min_budget >= k_min_rate else
                  f"fastest link {max(link_rates_bps) / 1e9:g} Gbit/s must stay under "
                  f"{MAX_EMULATED_RATE_BPS / 1e9:g} Gbit/s emulated")
        if chosen > k_max:
            raise BudgetError(
                f"offered load cannot be emulated here: a peak of {peak / 1e9:.4g} Gbit/s needs k >= "
                f"{need:.4g} to fit {budget_pps} packets/s, but k above {k_max:.4g} would shape the slowest "
                f"link below {MIN_EMULATED_RATE_BPS / 1e6:g} Mbit/s; shorten bursts or lower the load")
    else:
        chosen = float(k)
        reason = "given with --scale"
        if chosen < 1 or chosen > k_max:
            raise BudgetError(f"--scale {k:g} is outside 1..{k_max:.4g} (slowest link must stay above "
                              f"{MIN_EMULATED_RATE_BPS / 1e6:g} Mbit/s emulated)")
        if chosen < k_min_rate:
            raise BudgetError(f"--scale {k:g} would emulate links above {MAX_EMULATED_RATE_BPS / 1e9:g} Gbit/s; "
                              f"use at least {k_min_rate:.4g}")
    return ScaleChoice(k=chosen, peak_offered_bps=peak, mean_offered_bps=mean,
                       peak_pps_emulated=peak / chosen / bits_per_packet, budget_pps=budget_pps, reason=reason)
