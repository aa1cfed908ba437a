"""Choosing the scale factor ``k`` and the time dilation ``D`` from the machine's packet budget.

Software forwarding on a small VM carries some tens of thousands of full-size packets per second
in total (measured per machine and boot: :mod:`fabric.emu.calibrate`); a 400G fabric is therefore
emulated with rates, message sizes and buffers divided by ``k`` (docs/design.md §5). Times are
unchanged by construction (size/rate is invariant), so results come out in real time.

``k`` is chosen from the workload's *peak* offered bit rate: each host sends its messages back to
back at its NIC rate (the contention-free timeline) and the largest sum of simultaneous sending
rates must fit the budget.

Scaling bytes cannot shrink a message below one packet, so a workload that starts many small
messages at once (an all-to-all among 16 ranks starts 240) asks for more packets in an instant
than the machine can push, whatever ``k``. For those, the run is *dilated* in time (as DieCast and
SliceTime do): every rate is further divided by ``D`` and every schedule time multiplied by ``D``,
so the emulated fabric runs D× slower and the machine has D× more time per packet. D is chosen so
the largest burst fits the budget within a millisecond of virtual time; the run
directory is written in undilated (virtual) time, so every figure reads as if the fabric ran at
full speed, and the emulator's own overheads shrink by D relative to it. A run takes D× longer.

Dilation also buys resolution: at the same packets per second, a smaller ``k`` and a larger ``D``
keep more packets in every message. A message of one packet measures packet granularity, not the
fabric, so the choice trades k for D until the median message that sets η keeps a few packets,
within a wall-time bound (:func:`resolution_k`); the `resolution` fidelity signal reports what
could not be reached. A run that cannot fit at any sane ``k`` and ``D`` is refused.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fabric.errors import BudgetError
from fabric.probe import DEFAULT_PAYLOAD_BYTES
from fabric.schedule import ETA_KINDS

# Runs plan with the budget measured on the machine (fabric.emu.calibrate: machines of one kind
# differ by 2x). This figure is only a provisional fallback where no measurement can exist yet:
# planning before root is checked (`fabric compare` validates every design up front, then re-plans
# with the calibrated budget) and callers of choose_scale that give no budget (unit tests).
DEFAULT_BUDGET_PPS = 30_000
# HTB stays accurate down to about 1 Mbit/s; below it, scaling has gone too far.
MIN_EMULATED_RATE_BPS = 1_000_000
# One sending CPU pushes ~25k packets/s through the fabric (the forwarding runs in the send call),
# i.e. ~800 Mbit/s at 4 KB: a single link faster than that cannot be kept busy.
MAX_EMULATED_RATE_BPS = 500_000_000


# A burst must be pushed through the fabric within this much virtual time: about a collective
# step of a 16-rank all-to-all (hundreds of µs to a ms), so the CPU does not serialize its packets.
BURST_WINDOW_S = 0.001
MAX_DILATION = 200.0
# Resolution: the messages that set η (KV transfers, all-to-alls, all-reduces, incasts) should keep
# several packets each, or their completion measures packet granularity instead of the fabric. The
# scale choice trades k for time dilation (same packets/s, smaller k, longer run) until the median
# such message has RESOLUTION_PACKETS packets, as long as the run's wall time stays within
# WALL_BUDGET_S (schedule span × D); what it could not reach shows in the `resolution` signal.
RESOLUTION_PACKETS = 4
WALL_BUDGET_S = 30.0


# A scheduled design's credit scheduler shares the CPUs with the senders and the forwarding, and the
# calibration bench has none: measured on the 2-vCPU VM, a tick costs it 1.2-1.4 ms of CPU for 64
# VOQs (scheduler.parquet's tick_cpu_ns, mixed-inference), about 20 µs per VOQ.
SCHEDULER_CPU_S_PER_VOQ_TICK = 20e-6


def design_budget_pps(spec, budget_pps: int, cpus: int | None = None) -> int:
    """The packet budget a design's runs plan with: the machine's, less the share of its CPUs a
    scheduled design's credit scheduler takes (0.87 of it for the shipped one on 2 vCPUs)."""
    if spec.kind != "scheduled":
        return int(budget_pps)
    voqs = spec.edges * spec.edges * spec.hosts_per_edge   # one per (ingress NCP, egress host port)
    share = voqs * SCHEDULER_CPU_S_PER_VOQ_TICK / (spec.scheduler.tick_ns / 1e9) / (cpus or os.cpu_count() or 1)
    return max(1, int(budget_pps * (1 - min(share, 0.5))))


@dataclass(frozen=True)
class ScaleChoice:
    k: float
    dilation: float
    peak_offered_bps: float
    mean_offered_bps: float
    peak_pps_emulated: float
    peak_burst_packets: int
    budget_pps: int
    reason: str
    # Median packets per message of the classes that set η, at the chosen k (None: no such class).
    resolution_packets: float | None = None

    @property
    def rate_divisor(self) -> float:
        """What real link rates are divided by on the wire: k × D."""
        return self.k * self.dilation

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


def peak_burst_packets(schedule: pd.DataFrame, k: float, payload_bytes: int, nic_rate_bps: dict[str, float],
                       window_s: float = BURST_WINDOW_S) -> int:
    """Most packets the hosts offer together within one window of message starts, at scale ``k``.

    A host offers each message's first packet at once (its NIC takes the messages round-robin) and
    the rest at its NIC rate; so per host and window: min(all packets, max(messages, what the NIC
    sends in the window)). Bulk bytes are already within the budget through ``k``; what this adds is
    the cost of many small messages starting together (an all-to-all), which no ``k`` reduces.
    """
    if schedule.empty:
        return 0
    packets = np.maximum(1, np.ceil(schedule["bytes"].to_numpy() / k / payload_bytes))
    frame = pd.DataFrame({"src": schedule["src"].to_numpy(), "packets": packets,
                          "window": np.floor(schedule["t_start_s"].to_numpy() / window_s).astype(np.int64)})
    per = frame.groupby(["window", "src"]).agg(packets=("packets", "sum"), messages=("packets", "size"))
    nic_packets = per.index.get_level_values("src").map(
        lambda h: nic_rate_bps[h] / k * window_s / (payload_bytes * 8)).to_numpy()
    offered = np.minimum(per["packets"].to_numpy(), np.maximum(per["messages"].to_numpy(), nic_packets))
    return int(np.ceil(pd.Series(offered, index=per.index).groupby(level="window").sum().max()))


def choose_dilation(burst_packets: int, budget_pps: int) -> float:
    """Smallest nice D so a window's burst of packets fits the (dilated) budget of that window."""
    need = burst_packets / (budget_pps * BURST_WINDOW_S)
    return nice_ceiling(need) if need > 1 else 1.0


def choose_scale(schedule: pd.DataFrame, nic_rate_bps: dict[str, float], link_rates_bps: list[float],
                 budget_pps: int = DEFAULT_BUDGET_PPS, payload_bytes: int = DEFAULT_PAYLOAD_BYTES,
                 k: float | None = None, dilation: float | None = None) -> ScaleChoice:
    """Pick ``k`` and ``D`` (or check given ones) so the offered packets fit the budget.

    The rate division ``k × D`` comes from the peak offered bit rate against the budget. Unless
    ``k`` or ``D`` is given, part of it is done by dilation so the η-setting messages keep several
    packets (:func:`resolution_k`); ``D`` then grows further if the largest burst of packets that
    start together at that ``k`` does not fit the budget.
    """
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
    traded = 1.0
    if k is None and dilation is None:
        resolved_k = resolution_k(schedule, need, payload_bytes)
        if resolved_k < chosen:
            traded = math.ceil(need / resolved_k * 10) / 10
            chosen = resolved_k
            reason += (f"; k lowered to {chosen:g} and time dilated {traded:g}x (same packets/s) so the messages "
                       f"that set eta keep up to {RESOLUTION_PACKETS} packets within ~{WALL_BUDGET_S:g} s of wall time")
    burst = peak_burst_packets(schedule, chosen, payload_bytes, nic_rate_bps)
    if dilation is None:
        dilation = max(traded, choose_dilation(burst, budget_pps))
        if dilation > MAX_DILATION:
            raise BudgetError(
                f"offered load cannot be emulated here: {burst} packets start within {BURST_WINDOW_S * 1e3:g} ms "
                f"at k = {chosen:g}, which needs a time dilation of {dilation:g} (at most {MAX_DILATION:g}) at "
                f"{budget_pps} packets/s; use fewer ranks or smaller bursts")
    elif not 1 <= dilation <= MAX_DILATION:
        raise BudgetError(f"--dilation {dilation:g} is outside 1..{MAX_DILATION:g}")
    dilation = float(dilation)
    if chosen * dilation < k_min_rate * (1 - 1e-9):
        raise BudgetError(f"--scale {chosen:g} x dilation {dilation:g} would emulate links above "
                          f"{MAX_EMULATED_RATE_BPS / 1e9:g} Gbit/s; k x D must be at least {k_min_rate:.4g}")
    if chosen * dilation > k_max:
        raise BudgetError(f"k {chosen:g} x dilation {dilation:g} would shape the slowest link below "
                          f"{MIN_EMULATED_RATE_BPS / 1e6:g} Mbit/s; lower the load or the burst")
    if dilation > traded:
        reason += f"; time dilation {dilation:g} because {burst} packets start within {BURST_WINDOW_S * 1e3:g} ms"
    return ScaleChoice(k=chosen, dilation=dilation, peak_offered_bps=peak, mean_offered_bps=mean,
                       peak_pps_emulated=peak / chosen / dilation / bits_per_packet, peak_burst_packets=burst,
                       budget_pps=budget_pps, reason=reason,
                       resolution_packets=eta_resolution_packets(schedule, chosen, payload_bytes))


def eta_resolution_packets(schedule: pd.DataFrame, k: float, payload_bytes: int) -> float | None:
    """Median packets per message, at scale ``k``, of the message kinds that set η."""
    sizes = schedule.loc[schedule["kind"].isin(ETA_KINDS), "bytes"].to_numpy(np.float64)
    if sizes.size == 0:
        return None
    return float(np.median(np.maximum(1.0, np.ceil(sizes / k / payload_bytes))))


def resolution_k(schedule: pd.DataFrame, need: float, payload_bytes: int) -> float:
    """The smallest nice k that keeps the median η-setting message at :data:`RESOLUTION_PACKETS`
    packets, when the rest of the rate division ``need / k`` is done by time dilation within
    :data:`WALL_BUDGET_S` of schedule × D and :data:`MAX_DILATION` (``nice_ceiling(need)``: no trade)."""
    plain = nice_ceiling(need)
    sizes = schedule.loc[schedule["kind"].isin(ETA_KINDS), "bytes"].to_numpy(np.float64)
    if sizes.size == 0:
        return plain
    span_s = max(float(schedule["t_start_s"].max() - schedule["t_start_s"].min()), 1e-3)
    most_dilation = max(1.0, min(MAX_DILATION, WALL_BUDGET_S / span_s))
    wanted = float(np.median(sizes)) / (RESOLUTION_PACKETS * payload_bytes)
    return min(plain, nice_ceiling(max(wanted, need / most_dilation, 1.0)))
