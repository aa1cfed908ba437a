"""Fidelity: did the engine keep its invariants during a run? (docs/metrics.md "Fidelity").

This module owns the fidelity *signals* measured from a run directory and the *verdict* drawn
from them. A verdict is ``trusted`` when no signal is past its warning threshold, ``degraded``
when exactly one signal is past its warning threshold (and none past its fail threshold), and
``untrusted`` when any signal is past its fail threshold or two or more are past their warning
thresholds. A measure that could not be taken (no scheduler, no busy link, no probe) is ``n/a``
and counts as neither.

Thresholds (a measure trips when its value is strictly greater than the threshold):

=====================  ==========================  ========  ========  ===========================================
signal                 measure                     warn      fail      what it is
=====================  ==========================  ========  ========  ===========================================
noise_floor            noise_floor_p99_us          200       1000      idle-fabric OWD p99 (probe before the load), µs
cpu_pressure           cpu_some_avg10_max_pct      50        90        max of /proc/pressure/cpu "some avg10", %
cpu_pressure           cpu_some_stall_fraction     0.15      0.50      Δ"some total" / wall time of the samples
sender_lateness        sender_late_p95_us          1000      5000      p95 of t_tx_first − t_sched over messages, µs
sender_lateness        sender_late_p95_rel         0.50      2.0       p95 of that lateness ÷ the message's ideal MCT
sender_throughput      sender_rate_shortfall       0.10      0.25      worst host: 1 − wire rate while it had data ÷ NIC rate
link_accuracy          link_rate_error             0.05      0.15      max over busy links of |achieved/configured − 1|
host_side_loss         host_side_loss_ratio        0         0.001     packets dropped before the first link ÷ sent
scheduler_lateness     scheduler_late_p99_rel      0.50      2.0       p99 of (tick interval − configured tick) ÷ tick
sim_accounting         sim_unaccounted_packets     0         0         packets neither received, dropped nor in flight
sim_accounting         sim_cut_off_share           0         1         messages cut off at the end ÷ messages
=====================  ==========================  ========  ========  ===========================================

Engines. ``cpu_pressure``, ``sender_lateness``, ``sender_throughput`` and ``scheduler_lateness``
judge the emulator's own machinery (host CPUs, software senders, the tick scheduler), which a
simulated run does not have: on a simulator run (``run.json["engine"] == "sim"``) their measures
are ``"n/a (simulator)"`` (:func:`not_this_engine`), and the signal's level says so, rather than
``None`` (a measure that could not be taken). ``sim_accounting`` is the simulator's own signal,
from ``run.json["sim"]`` (:mod:`fabric.sim.runner`), and is ``"n/a (emulator)"`` on an emulator
run. The other signals (noise floor, link accuracy, host-side loss, causality, resolution) hold
for both engines: they check the model's physics as much as the emulator's. ``sim_accounting``:

* ``sim_unaccounted_packets`` — |sent − (received + dropped + in the network at the end)| by the
  simulated devices' counters, plus any disagreement between those counters and the per-packet
  records. Any packet unaccounted for means the model lost track of traffic: the run fails.
* ``sim_cut_off_share`` — messages with packets neither received nor dropped when the simulation
  ended (still queued or on a wire at ``tmax`` after the last send) ÷ messages. A message that
  lost a packet is not cut off: the analysis recovers its loss (``loss_recovery``). Cut-off
  messages have no completion time, so any makes the run degraded (``tmax`` too short for the
  queues to drain); a share cannot exceed 1, so this measure never fails the run on its own.

Calibrated on the 2-vCPU machine this project is developed on: idle-fabric noise p99 is
20–90 µs depending on scale and design (small probe packets still cross three shaped hops),
PSI "some" stall reaches 5–7% of wall time in normal runs (five busy processes on two CPUs),
and sender lateness p99 is 0.1–1 ms; an overloaded run (beyond the packet budget) exceeds these by
an order of magnitude.

A signal's level is the worst of its measures, except ``sender_lateness``, which trips only when
*both* its measures do: lateness matters when it is large against the message's own duration and
also above the tens-of-µs software noise floor (a 30 µs late start of a 10 µs message is noise).
A *busy* link is one whose backlog was non-zero in more than half of its samples; its achieved
rate is measured over the intervals that were backlogged at both ends (HTB then sends at its
configured rate). VOQ classes are excluded: the credit scheduler changes their rates every tick.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fabric import rundir
from fabric.analysis import completion as C
from fabric.analysis import metrics as M
from fabric.probe import WIRE_OVERHEAD_BYTES
from fabric.schedule import ETA_KINDS

# measure -> (warn, fail, unit/description)
THRESHOLDS = {
    "noise_floor_p99_us": (200.0, 1000.0, "us"),
    "cpu_some_avg10_max_pct": (50.0, 90.0, "percent"),
    "cpu_some_stall_fraction": (0.15, 0.50, "fraction of wall time"),
    "sender_late_p95_us": (1000.0, 5000.0, "us"),
    "sender_late_p95_rel": (0.50, 2.0, "fraction of ideal MCT"),
    "sender_rate_shortfall": (0.10, 0.25, "fraction of NIC rate"),
    "link_rate_error": (0.05, 0.15, "fraction of configured rate"),
    "host_side_loss_ratio": (0.0, 0.001, "fraction of packets sent"),
    "scheduler_late_p99_rel": (0.50, 2.0, "fraction of configured tick"),
    "causality_violation_share": (0.0, 0.01, "fraction of complete messages faster than line rate"),
    "single_packet_share": (0.50, 0.95, "worst eta-setting class: fraction of messages of one packet"),
    "sim_unaccounted_packets": (0.0, 0.0, "packets (simulator)"),
    "sim_cut_off_share": (0.0, 1.0, "fraction of messages (simulator; a share cannot exceed 1)"),
}

# signal -> (measures, how the measures' levels combine)
SIGNALS = {
    "noise_floor": (("noise_floor_p99_us",), "worst"),
    "cpu_pressure": (("cpu_some_avg10_max_pct", "cpu_some_stall_fraction"), "worst"),
    "sender_lateness": (("sender_late_p95_us", "sender_late_p95_rel"), "all"),
    "sender_throughput": (("sender_rate_shortfall",), "worst"),
    "link_accuracy": (("link_rate_error",), "worst"),
    "host_side_loss": (("host_side_loss_ratio",), "worst"),
    "scheduler_lateness": (("scheduler_late_p99_rel",), "worst"),
    "causality": (("causality_violation_share",), "worst"),
    "resolution": (("single_packet_share",), "worst"),
    "sim_accounting": (("sim_unaccounted_packets", "sim_cut_off_share"), "worst"),
}

# Signals that judge one engine's machinery only; on the other engine their measures are
# "n/a (<engine>)" (see the module docstring).
ENGINE_ONLY = {
    "emu": ("cpu_pressure", "sender_lateness", "sender_throughput", "scheduler_lateness"),
    "sim": ("sim_accounting",),
}
ENGINE_NAMES = {"emu": "emulator", "sim": "simulator"}

BUSY_SAMPLE_FRACTION = 0.5  # "backlog > 0 for most samples"
MIN_BUSY_INTERVALS = 2

_RANK = {"n/a": -1, "ok": 0, "warn": 1, "fail": 2}


def not_this_engine(engine: str) -> str:
    """The value of a measure that does not apply to runs of ``engine``: ``"n/a (simulator)"``."""
    return f"n/a ({ENGINE_NAMES.get(engine, engine)})"


# --------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------

def _p99(values: np.ndarray) -> float:
    return _quantile(values, 99)


def _quantile(values: np.ndarray, pct: int) -> float | None:
    """Nearest-rank percentile (docs/metrics.md), None for no values."""
    return M.percentiles(values, [("p", pct * 1000)])["p"] if np.asarray(values).size else None


def noise_floor_signal(noise: pd.DataFrame) -> float | None:
    """Idle OWD p99 over received probe packets, µs (None without a probe)."""
    if noise is None or noise.empty:
        return None
    rx = noise["rx_ns"].to_numpy(np.int64)
    d = (rx - noise["tx_ns"].to_numpy(np.int64))[rx >= 0]
    return _p99(d) / 1e3 if d.size else None


def cpu_signals(cpu: pd.DataFrame) -> dict:
    """Max "some avg10" (%) and the fraction of wall time some task was stalled on CPU."""
    out = {"cpu_some_avg10_max_pct": None, "cpu_some_stall_fraction": None}
    if cpu is None or cpu.empty:
        return out
    c = cpu.sort_values("t_ns", kind="stable")
    out["cpu_some_avg10_max_pct"] = float(c["some_avg10"].max())
    dt_us = (int(c["t_ns"].iloc[-1]) - int(c["t_ns"].iloc[0])) / 1e3
    if len(c) >= 2 and dt_us > 0:
        out["cpu_some_stall_fraction"] = max(0.0, (int(c["some_total_us"].iloc[-1]) - int(c["some_total_us"].iloc[0])) / dt_us)
    return out


MIN_SENDING_SPAN_NS = 10_000_000  # judge a host's sending rate over busy periods of 10 ms or more


def sender_throughput_signal(messages: pd.DataFrame, links: pd.DataFrame, fallback_rate_bps: float = M.NAN) -> dict:
    """How far the busiest-lagging host's sender fell below its NIC rate while it had data to send.

    While any of a host's messages is being sent its NIC should be busy: the agents keep its queue
    non-empty. The union of the host's [first packet, last packet] send intervals is that busy
    time; wire bytes over it ÷ the configured NIC rate is what the sender achieved. A sender that
    cannot keep up (the machine is past its packet budget) shows here even when no link ever
    builds a queue.
    """
    out = {"sender_rate_shortfall": None, "detail": {}}
    if messages is None or messages.empty or "t_tx_last_ns" not in messages:
        return out
    m = messages[(messages["t_tx_first_ns"] >= 0) & (messages["t_tx_last_ns"] >= 0)]
    if m.empty:
        return out
    m = m.sort_values(["src", "t_tx_first_ns"])
    start = m["t_tx_first_ns"].to_numpy(np.int64)
    end = m["t_tx_last_ns"].to_numpy(np.int64)
    src = m["src"].astype(str).to_numpy(dtype=object)
    wire = (m["bytes_emulated"].to_numpy(np.float64) + m["packets"].to_numpy(np.float64) * WIRE_OVERHEAD_BYTES)
    # Union of intervals per host: a new busy period starts where a start exceeds the running end.
    run_end = pd.Series(end).groupby(src).cummax().to_numpy()
    prev_end = pd.Series(run_end).groupby(src).shift(1).to_numpy()
    new_period = np.isnan(prev_end) | (start > prev_end)
    period_id = np.cumsum(new_period)
    periods = pd.DataFrame({"src": src, "period": period_id, "start": start, "end": end, "wire": wire})
    agg = periods.groupby(["src", "period"]).agg(start=("start", "min"), end=("end", "max"), wire=("wire", "sum"))
    # Only long busy periods are judged: in a short one the few packets the sender queues ahead
    # at once (and one late wake-up) dominate the ratio.
    agg = agg[(agg["end"] - agg["start"]) >= MIN_SENDING_SPAN_NS]
    if agg.empty:
        return out
    span = (agg["end"] - agg["start"]).groupby(level=0).sum()
    wire_by_host = agg["wire"].groupby(level=0).sum()
    rate = pd.Series(M.sender_line_rate_bps(links, np.array(span.index, dtype=object), fallback_rate_bps),
                     index=span.index)
    ok = (span >= MIN_SENDING_SPAN_NS) & np.isfinite(rate) & (rate > 0)
    if not ok.any():
        return out
    achieved = wire_by_host[ok] * 8 / (span[ok] / 1e9)
    shortfall = (1 - achieved / rate[ok]).clip(lower=0)
    worst = shortfall.idxmax()
    out["sender_rate_shortfall"] = float(shortfall.max())
    out["detail"] = {"worst_host": str(worst), "achieved_bps": float(achieved[worst]),
                     "configured_bps": float(rate[worst]), "hosts_judged": int(ok.sum())}
    return out


def sender_lateness_signals(messages: pd.DataFrame, links: pd.DataFrame, noise: pd.DataFrame,
                            fallback_rate_bps: float = M.NAN) -> dict:
    """p99 of actual − scheduled first send, absolute (µs) and relative to the ideal MCT.

    Only messages whose host NIC was idle at their scheduled start are counted: a message queued
    behind the same host's earlier messages starts late because the NIC is busy — that is the
    workload, not the emulator falling behind.
    """
    out = {"sender_late_p95_us": None, "sender_late_p95_rel": None}
    if messages is None or messages.empty:
        return out
    sent = messages[messages["t_tx_first_ns"] >= 0].sort_values(["src", "t_sched_ns", "msg_id"])
    busy_until = sent.groupby("src", sort=False)["t_tx_last_ns"].cummax().groupby(sent["src"], sort=False).shift(1)
    sent = sent[busy_until.isna() | (busy_until < sent["t_sched_ns"])]
    if sent.empty:
        return out
    late = (sent["t_tx_first_ns"] - sent["t_sched_ns"]).to_numpy(np.int64)
    # p95, not p99: a run judges the emulator keeping up, and with a few hundred messages the p99
    # is one scheduling hiccup; the hiccup itself shows in the affected messages' completion times.
    out["sender_late_p95_us"] = _quantile(late, 95) / 1e3
    rate = M.sender_line_rate_bps(links, sent["src"].astype(str).to_numpy(dtype=object), fallback_rate_bps)
    bits = C.wire_bits(sent["bytes_emulated"].to_numpy(), sent["packets"].to_numpy())
    ideal = C.line_rate_bound_ns(bits, rate, np.zeros(len(sent))) + M.idle_path_delay_ns(noise)
    ok = np.isfinite(ideal) & (ideal > 0)
    if ok.any():
        out["sender_late_p95_rel"] = _quantile(late[ok] / ideal[ok], 95)
    return out


def causality_signal(run: dict, messages: pd.DataFrame, completion: pd.DataFrame | None) -> tuple[float | None, dict]:
    """Share of complete messages whose MCT beats their line-rate bound (physics says none can).

    The bound is the message's wire bytes at the sender's line rate plus the store-and-forward of
    its last packet (:func:`fabric.analysis.completion.line_rate_bound_ns`), less what the host
    NIC's token bucket lets one packet leave early (``links_shaped[].burst_bytes``).
    """
    detail = {"messages_judged": 0, "violations": 0, "by_kind": {}}
    if completion is None or completion.empty or "kind" not in messages:
        return None, detail
    ok = ~completion["recovered"].to_numpy() & np.isfinite(completion["mct_ns"].to_numpy())
    ok &= np.isfinite(completion["line_rate_ns"].to_numpy())
    if not ok.any():
        return None, detail
    dilation = float(run.get("dilation", 1.0) or 1.0)
    slack_ns = {s["node"]: s.get("burst_bytes", 0) * 8e9 / s["rate_bps"] / dilation
                for s in run.get("links_shaped", []) if s.get("kind") == "host" and s.get("rate_bps")}
    slack = messages["src"].astype(str).map(slack_ns).fillna(0.0).to_numpy(np.float64)
    early = ok & (completion["mct_ns"].to_numpy() < completion["line_rate_ns"].to_numpy() - slack)
    kinds = messages["kind"].astype(str).to_numpy(dtype=object)
    detail = {"messages_judged": int(ok.sum()), "violations": int(early.sum()),
              "by_kind": {k: int(early[kinds == k].sum()) for k in sorted(set(kinds[early]))}}
    return float(early.sum() / ok.sum()), detail


def resolution_signal(messages: pd.DataFrame) -> tuple[float | None, dict]:
    """Per class, the share of messages carried as a single packet; the measure is the worst
    η-setting class. A one-packet message's completion measures packet granularity at k× the
    real serialization, not the fabric."""
    detail: dict = {}
    if messages is None or messages.empty or "kind" not in messages or "packets" not in messages:
        return None, detail
    one = messages["packets"].to_numpy() <= 1
    kinds = messages["kind"].astype(str)
    share = pd.Series(one).groupby(kinds.to_numpy()).mean()
    detail = {str(k): float(v) for k, v in share.items()}
    eta = [v for k, v in detail.items() if k in ETA_KINDS]
    return (max(eta) if eta else None), detail


def link_accuracy_signal(links: pd.DataFrame) -> tuple[float | None, dict]:
    """Worst |achieved / configured − 1| over busy port queues (host and fabric links)."""
    detail = {"busy_links": 0, "worst_link": None}
    if links is None or links.empty:
        return None, detail
    f = links[links["kind"].isin(["fabric", "host"]) & (links["queue"].fillna("port") == "port")]
    if f.empty:
        return None, detail
    busy_frac = (f["backlog_packets"] > 0).groupby([f[c] for c in M.LINK_KEY], sort=True).mean()
    busy = busy_frac[busy_frac > BUSY_SAMPLE_FRACTION]
    if busy.empty:
        return None, detail
    iv = M.link_intervals(f)
    iv = iv[(iv["backlog_start_packets"] > 0) & (iv["backlog_end_packets"] > 0) & (iv["dt_ns"] > 0)]
    worst, worst_key, n = None, None, 0
    for key, g in iv.groupby(M.LINK_KEY, sort=True):
        if key not in busy.index or len(g) < MIN_BUSY_INTERVALS:
            continue
        dt = g["dt_ns"].to_numpy(np.float64)
        achieved = g["tx_bytes"].sum() * 8e9 / dt.sum()
        configured = float((g["rate_bps"].to_numpy(np.float64) * dt).sum() / dt.sum())
        if configured <= 0:
            continue
        n += 1
        err = abs(achieved / configured - 1.0)
        if worst is None or err > worst:
            worst, worst_key = err, M.link_key(*key)
    detail.update(busy_links=n, worst_link=worst_key)
    return worst, detail


def host_side_loss_signal(run: dict, links: pd.DataFrame, packets_sent: int) -> tuple[float | None, dict]:
    """Packets dropped before the first link ÷ packets sent.

    From ``run.json['host_side_drops']`` (a count, or a mapping of counts) when the emulator
    recorded it, else from drops on host uplinks (``kind == 'host'`` queues transmitted by a host).
    """
    raw = run.get("host_side_drops")
    if raw is not None:
        drops = sum(int(v) for v in raw.values()) if isinstance(raw, dict) else int(raw)
        source = "run.json host_side_drops"
    elif links is not None and not links.empty:
        host_names = {n for n, d in (run.get("nodes") or {}).items() if d.get("role") == "host"}
        up = links[(links["kind"] == "host") & links["node"].astype(str).isin(host_names)]
        if up.empty:
            return None, {"host_side_drops": None, "source": None}
        iv = M.link_intervals(up)
        drops = int(iv["drops"].sum())
        source = "links.parquet host uplink drops"
    else:
        return None, {"host_side_drops": None, "source": None}
    ratio = drops / packets_sent if packets_sent > 0 else (0.0 if drops == 0 else float("inf"))
    return ratio, {"host_side_drops": drops, "source": source}


def scheduler_lateness_signal(run: dict, scheduler: pd.DataFrame) -> tuple[float | None, dict]:
    """p99 of tick lateness relative to the configured tick (scheduled fabrics only)."""
    cfg = run.get("scheduler") or {}
    tick = cfg.get("tick_ns")
    if cfg.get("tick_late_p99_ns") is not None and tick:
        late = float(cfg["tick_late_p99_ns"])
        return late / float(tick), {"tick_ns": int(tick), "tick_late_p99_us": late / 1e3, "source": "run.json"}
    if scheduler is None or scheduler.empty:
        return None, {}
    ticks = scheduler.drop_duplicates("t_ns").sort_values("t_ns")
    intervals = ticks["tick_interval_ns"].to_numpy(np.int64)
    intervals = intervals[intervals > 0]
    if intervals.size == 0:
        intervals = np.diff(ticks["t_ns"].to_numpy(np.int64))
    if intervals.size == 0:
        return None, {}
    source = "scheduler.parquet vs run.json scheduler.tick_ns"
    if not tick:
        # Without the configured tick only the spread around the typical interval is visible.
        tick = M.percentiles(intervals, [("p50", 50_000)])["p50"]
        source = "scheduler.parquet vs its median interval"
    late = _p99(intervals - float(tick))
    return max(0.0, late) / float(tick), {"tick_ns": int(tick), "tick_late_p99_us": late / 1e3, "source": source}


def sim_accounting_signals(run: dict, messages: pd.DataFrame) -> tuple[dict, dict]:
    """The simulator's packet accounting (``run.json["sim"]``): packets unaccounted for, and the
    share of messages cut off at the end of the simulation (see the module docstring)."""
    out = {"sim_unaccounted_packets": None, "sim_cut_off_share": None}
    sim = run.get("sim") or {}
    acc = sim.get("accounting") or {}
    if not acc:
        return out, {}
    in_network = sum(int(acc.get(k, 0)) for k in ("queued", "on_wire", "held"))
    by_counters = abs(int(acc["sent"]) - int(acc["received"]) - int(acc["dropped"]) - in_network)
    by_records = abs(int(acc["dropped"]) - int(acc.get("dropped_records", acc["dropped"])))
    unaccounted = by_counters + by_records
    if not sim.get("every_packet_accounted", True) and unaccounted == 0:
        unaccounted = 1  # the per-packet records disagree with the counters by an amount not recorded
    out["sim_unaccounted_packets"] = float(unaccounted)
    detail = {"sent": int(acc["sent"]), "received": int(acc["received"]), "dropped": int(acc["dropped"]),
              "in_network": in_network, "every_packet_accounted": bool(sim.get("every_packet_accounted", True)),
              "drops_by_queue": sim.get("drops_by_queue") or {},
              "messages_unfinished": sim.get("messages_unfinished")}
    n_messages = len(messages) if messages is not None and len(messages) else None
    if sim.get("messages_cut_off") is not None:
        cut_off, source = int(sim["messages_cut_off"]), "run.json sim.messages_cut_off"
    elif in_network == 0:
        # Every packet sent was received or dropped: each unfinished message lost a packet.
        cut_off, source = 0, "run.json sim.accounting (nothing left in the network)"
    else:
        # Written before runs recorded it: at most one message per packet left in the network.
        cut_off = min(int(sim.get("messages_unfinished") or 0), in_network)
        source = "run.json sim.accounting (upper bound: packets left in the network)"
    detail |= {"messages_cut_off": cut_off, "messages": n_messages, "cut_off_source": source}
    if n_messages:
        out["sim_cut_off_share"] = cut_off / n_messages
    return out, detail


def fidelity_signals(source) -> dict:
    """Measure every fidelity signal of a run.

    Parameters
    ----------
    source : Path or str or dict
        A run directory, or a dict of frames as returned by
        :func:`fabric.analysis.run_metrics.read_frames` (``run``, ``messages``, ``links``, ``cpu``,
        ``noise``, ``scheduler``; ``packets`` optional).

    Returns
    -------
    dict
        One value per measure of :data:`THRESHOLDS` (``None`` when it could not be taken) and a
        ``detail`` dict (which link was worst, where host-side drops came from, ...).
    """
    if isinstance(source, (str, Path)):
        d = Path(source)
        f = {"run": rundir.read_run_json(d), "messages": rundir.read_table(d, "messages"),
             "links": rundir.read_table(d, "links", required=False),
             "cpu": rundir.read_table(d, "cpu", required=False),
             "noise": rundir.read_table(d, "noise", required=False),
             "scheduler": rundir.read_table(d, "scheduler", required=False)}
    else:
        f = source
    run = f.get("run") or {}
    empty = {name: pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})
             for name, cols in rundir.FILES.items()}
    messages = f.get("messages", empty["messages"])
    links = f.get("links", empty["links"])
    noise = f.get("noise", empty["noise"])
    scale_k = float(run.get("scale_k", 1) or 1)
    # Host rates as built, for a run whose links table is empty (each host's own rate is in links).
    rates = list(rundir.host_rates_bps(run).values()) if run else []
    fallback = float(np.median(rates)) / scale_k if rates else M.NAN
    if f.get("packets") is not None:
        sent = int(len(f["packets"]))
    else:
        sent = int(messages["packets"].sum()) if len(messages) else 0

    out: dict = {"noise_floor_p99_us": noise_floor_signal(noise)}
    out.update(cpu_signals(f.get("cpu", empty["cpu"])))
    out.update(sender_lateness_signals(messages, links, noise, fallback))
    throughput = sender_throughput_signal(messages, links, fallback)
    out["sender_rate_shortfall"] = throughput["sender_rate_shortfall"]
    out["link_rate_error"], link_detail = link_accuracy_signal(links)
    out["host_side_loss_ratio"], host_detail = host_side_loss_signal(run, links, sent)
    out["scheduler_late_p99_rel"], sched_detail = scheduler_lateness_signal(run, f.get("scheduler", empty["scheduler"]))
    completion = f.get("completion")
    if completion is None and f.get("packets") is not None:
        from fabric.analysis.run_metrics import completions  # run_metrics imports this module
        comp, prep = completions(f)
        completion = (comp, prep["messages"])
    if completion is not None:
        out["causality_violation_share"], causality_detail = causality_signal(run, completion[1], completion[0])
    else:
        out["causality_violation_share"], causality_detail = None, {}
    out["single_packet_share"], resolution_detail = resolution_signal(messages)
    sim_values, sim_detail = sim_accounting_signals(run, messages)
    out.update(sim_values)
    out["detail"] = {"link_accuracy": link_detail, "host_side_loss": host_detail,
                     "scheduler_lateness": sched_detail, "sender_throughput": throughput["detail"],
                     "causality": causality_detail, "resolution": resolution_detail, "sim_accounting": sim_detail}
    engine = run.get("engine")
    for other, signals in ENGINE_ONLY.items():
        if engine is not None and engine != other:
            for sig in signals:
                for m in SIGNALS[sig][0]:
                    out[m] = not_this_engine(engine)
    return out


# --------------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------------

def measure_level(name: str, value) -> str:
    """'n/a', 'ok', 'warn' or 'fail' for one measure against :data:`THRESHOLDS` (a text value, such
    as ``"n/a (simulator)"``, is 'n/a')."""
    if value is None or isinstance(value, str) or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    warn, fail, _ = THRESHOLDS[name]
    v = float(value)
    return "fail" if v > fail else "warn" if v > warn else "ok"


def fidelity_verdict(signals: dict) -> dict:
    """Grade fidelity signals into ``trusted`` / ``degraded`` / ``untrusted``.

    Parameters
    ----------
    signals : dict
        Measure name -> value (``None``: not measured), as from :func:`fidelity_signals`; missing
        measures count as not measured. An optional ``detail`` entry is passed through.

    Returns
    -------
    dict
        ``verdict``; ``failing`` (signals past their fail threshold) and ``warning`` (past their
        warning threshold only), both sorted; ``reasons`` (one line per tripped measure);
        ``signals`` (per signal: level and measure values; the level of a signal that does not
        apply to the run's engine is its measures' text, ``"n/a (simulator)"``); ``thresholds``;
        ``detail``.
    """
    per_signal: dict = {}
    reasons: list[str] = []
    for sig, (measures, combine) in SIGNALS.items():
        levels = {m: measure_level(m, signals.get(m)) for m in measures}
        known = [lv for lv in levels.values() if lv != "n/a"]
        values = [signals.get(m) for m in measures]
        if not known:
            # "n/a (simulator)" when the signal does not apply to the run's engine, else "n/a".
            level = values[0] if all(isinstance(v, str) and v == values[0] for v in values) else "n/a"
        elif combine == "all":
            # Both must trip; with one measure missing, the other decides alone.
            level = min(known, key=_RANK.__getitem__)
        else:
            level = max(known, key=_RANK.__getitem__)
        per_signal[sig] = {"level": level, "measures": {m: signals.get(m) for m in measures}}
        if level in ("warn", "fail"):
            for m, lv in levels.items():
                if lv in ("warn", "fail"):
                    lv = min(lv, level, key=_RANK.__getitem__)
                    th = THRESHOLDS[m][0 if lv == "warn" else 1]
                    reasons.append(f"{sig}: {m} = {float(signals[m]):.4g} > {lv} threshold {th:g}")
    failing = sorted(s for s, v in per_signal.items() if v["level"] == "fail")
    warning = sorted(s for s, v in per_signal.items() if v["level"] == "warn")
    if failing or len(warning) >= 2:
        verdict = "untrusted"
    elif warning:
        verdict = "degraded"
    else:
        verdict = "trusted"
    return {"verdict": verdict, "failing": failing, "warning": warning, "reasons": reasons,
            "signals": per_signal,
            "thresholds": {m: {"warn": w, "fail": f, "unit": u} for m, (w, f, u) in THRESHOLDS.items()},
            "detail": signals.get("detail", {})}
