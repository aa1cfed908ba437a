"""Every measured figure of docs/metrics.md as a pure, vectorized function on numpy/pandas inputs.

This module owns the *definitions*: nearest-rank percentiles, one-way delay (RFC 7679) in its two
flavours, PDV (RFC 5481), IPDV (RFC 3393), RFC 3550 interarrival jitter, loss (RFC 7680) and loss
episodes (RFC 6534 / RFC 3357), reordering (RFC 4737), duplicates, message completion time and
slowdown under a loss-recovery model, group completion, goodput (RFC 8238), Jain's fairness index,
link utilization/drops/backlog and spine (NCF) load imbalance. It reads no files and knows nothing
of run directories: :mod:`fabric.analysis.run_metrics` feeds it arrays and assembles metrics.json.

Conventions
-----------
* Inputs are in nanoseconds and emulated bytes unless a parameter says otherwise; functions that
  summarise take a ``unit_ns`` divisor (``1e3`` for µs, ``1e6`` for ms) so names can carry units.
* "Streams" are contiguous blocks of an array, identified by an integer ``stream`` array that is
  non-decreasing (the caller sorts once; every function here then runs in O(n) or O(n log n)
  without per-packet Python loops).
* Undefined figures are ``float('nan')``; a loss-aware percentile that lands on a lost packet is
  ``float('inf')`` (RFC 7679: a lost packet's delay is undefined/infinite).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Percentile levels as integers per 100,000 so nearest ranks are computed exactly (no float
# rounding at the 1% loss boundary: ceil(0.99 * 1000) must be 990, not 991).
PERCENTILES = (("p50", 50_000), ("p90", 90_000), ("p99", 99_000), ("p99_9", 99_900))
P99_99 = ("p99_99", 99_990)
P99_99_MIN_N = 100_000  # docs/metrics.md: report p99.99 only when it rests on >= 100,000 samples
TAIL_NAMES = ("p90", "p99", "p99_9", "p99_99")
_PER = 100_000

NAN = float("nan")
INF = float("inf")



# --------------------------------------------------------------------------------------------
# Percentiles
# --------------------------------------------------------------------------------------------

def nearest_rank(n: int, level_per_100k: int) -> int:
    """1-based nearest rank ``ceil(P/100 * n)`` computed in integers (RFC 2330 §11.3 style).

    Examples
    --------
    >>> nearest_rank(1000, 99_000)
    990
    >>> nearest_rank(10, 50_000)
    5
    """
    return max(1, -(-level_per_100k * n // _PER))


def _levels(n: int) -> list[tuple[str, int]]:
    return list(PERCENTILES) + ([P99_99] if n >= P99_99_MIN_N else [])


def percentiles(values: np.ndarray, levels: list[tuple[str, int]], n_inf: int = 0) -> dict:
    """Nearest-rank percentiles of ``values`` plus ``n_inf`` samples that are +infinity.

    Parameters
    ----------
    values : ndarray
        Finite samples (any order; not modified).
    levels : list of (name, level per 100,000)
    n_inf : int
        Extra samples counted as infinitely large (lost packets, RFC 7679).

    Returns
    -------
    dict
        name -> value (float; ``inf`` when the rank falls on an infinite sample, ``nan`` when
        there are no samples at all).
    """
    values = np.asarray(values)
    n_fin = values.size
    n = n_fin + n_inf
    if n == 0:
        return {name: NAN for name, _ in levels}
    ranks = {name: nearest_rank(n, q) for name, q in levels}
    kth = sorted({r - 1 for r in ranks.values() if r <= n_fin})
    part = np.partition(values, kth) if kth else values
    return {name: (float(part[r - 1]) if r <= n_fin else INF) for name, r in ranks.items()}


def delay_stats(rx_delay_ns: np.ndarray, n_lost: int = 0, unit_ns: float = 1e3) -> dict:
    """One-way delay summary in both docs/metrics.md flavours (RFC 7679, nearest-rank percentiles).

    Loss-aware keys (``min``, ``p50`` … ``p99_9``, ``p99_99``, ``max``, ``mean``) count each lost
    packet as infinitely late, so ``pXX`` is ``inf`` once loss exceeds 1 − XX/100 and ``max`` and
    ``mean`` are ``inf`` as soon as anything was lost. Received-only keys carry an ``rx_`` prefix.
    ``beyond_pXX`` / ``rx_beyond_pXX`` count the samples strictly above each tail percentile (lost
    packets are above any finite value, nothing is above ``inf``), the "how many samples support
    this percentile" column of sockperf. ``p99_99`` appears only when its flavour's N >= 100,000.

    Parameters
    ----------
    rx_delay_ns : ndarray
        Delays of the received packets (first copies), nanoseconds.
    n_lost : int
        Packets sent but not received within Tmax.
    unit_ns : float
        Divisor for the output unit (1e3: microseconds).

    Returns
    -------
    dict
        ``n``, ``n_rx``, ``n_lost`` and the statistics above, in the output unit.
    """
    d = np.asarray(rx_delay_ns)
    n_rx = int(d.size)
    n = n_rx + int(n_lost)
    out: dict = {"n": n, "n_rx": n_rx, "n_lost": int(n_lost)}
    if n == 0:
        return out
    lvl_all, lvl_rx = _levels(n), _levels(n_rx)
    p_all = percentiles(d, lvl_all, n_inf=int(n_lost))
    p_rx = percentiles(d, lvl_rx)
    mn = float(d.min()) if n_rx else INF
    mx = float(d.max()) if n_rx else NAN
    mean_rx = float(d.mean(dtype=np.float64)) if n_rx else NAN
    out["min"] = mn / unit_ns
    for name, _ in lvl_all:
        out[name] = p_all[name] / unit_ns
    out["max"] = INF if n_lost else mx / unit_ns
    out["mean"] = INF if n_lost else mean_rx / unit_ns
    for name in TAIL_NAMES:
        if name in p_all:
            v = p_all[name]
            out[f"beyond_{name}"] = 0 if v == INF else int(np.count_nonzero(d > v)) + int(n_lost)
    if n_rx:
        out["rx_min"] = mn / unit_ns
        for name, _ in lvl_rx:
            out[f"rx_{name}"] = p_rx[name] / unit_ns
        out["rx_max"] = mx / unit_ns
        out["rx_mean"] = mean_rx / unit_ns
        for name in TAIL_NAMES:
            if name in p_rx:
                out[f"rx_beyond_{name}"] = int(np.count_nonzero(d > p_rx[name]))
    return out


def value_stats(values: np.ndarray, unit: float = 1.0) -> dict:
    """N, min, nearest-rank p50/p90/p99/p99.9 (p99.99 from 100,000 samples), max, mean.

    For figures that have no loss-aware flavour (MCT, slowdown, group completion); ``unit`` is a
    divisor into the output unit.
    """
    v = np.asarray(values, dtype=np.float64)
    out: dict = {"n": int(v.size)}
    if v.size == 0:
        return out
    p = percentiles(v, _levels(v.size))
    out["min"] = float(v.min()) / unit
    for name, val in p.items():
        out[name] = val / unit
    out["max"] = float(v.max()) / unit
    out["mean"] = float(v.mean()) / unit
    return out


# --------------------------------------------------------------------------------------------
# Delay variation
# --------------------------------------------------------------------------------------------

def pdv_stats(rx_delay_ns: np.ndarray, unit_ns: float = 1e3) -> dict:
    """Packet delay variation PDV = D − D_min (RFC 5481 §4.2, "PDV" form of RFC 3393 §4.1).

    Summarised as p50 − min, p99 − min and p99.9 − min over received packets (lost packets have
    no delay to vary, RFC 5481 §4.2 / §8.1).
    """
    d = np.asarray(rx_delay_ns)
    out: dict = {"n": int(d.size)}
    if d.size == 0:
        return out
    p = percentiles(d, [("p50", 50_000), ("p99", 99_000), ("p99_9", 99_900)])
    mn = float(d.min())
    out.update({f"{k}_minus_min": (v - mn) / unit_ns for k, v in p.items()})
    return out


def ipdv(delay_ns: np.ndarray, received: np.ndarray, stream: np.ndarray) -> tuple[np.ndarray, int]:
    """Inter-packet delay variation IPDV(i) = D(i) − D(i−1) (RFC 3393 §2.4, "selection function"
    of consecutive packets, RFC 5481 §4.1).

    Parameters
    ----------
    delay_ns : ndarray
        One-way delay per packet in *sending* order within each stream (value ignored if lost).
    received : ndarray of bool
        Whether each packet was received within Tmax.
    stream : ndarray
        Stream id per packet, non-decreasing (consecutive packets of one stream are adjacent).

    Returns
    -------
    values : ndarray of int64
        IPDV of every consecutive pair whose both packets arrived.
    n_undefined : int
        Consecutive pairs in which at least one packet was lost (undefined, RFC 3393 §3.6).
    """
    d = np.asarray(delay_ns, dtype=np.int64)
    rx = np.asarray(received, dtype=bool)
    st = np.asarray(stream)
    if d.size < 2:
        return np.empty(0, dtype=np.int64), 0
    same = st[1:] == st[:-1]
    both = rx[1:] & rx[:-1]
    return (d[1:] - d[:-1])[same & both], int(np.count_nonzero(same & ~both))


def ipdv_stats(values_ns: np.ndarray, n_undefined: int = 0, unit_ns: float = 1e3) -> dict:
    """Distribution of IPDV (RFC 3393): signed min/p1/p50/p99/p99.9/max/mean and |IPDV| p99, p99.9.

    The signed distribution is roughly symmetric around zero (RFC 5481 §4.1); the magnitude
    percentiles are the one-number tail a network engineer compares across designs.
    """
    v = np.asarray(values_ns, dtype=np.int64)
    out: dict = {"n_pairs": int(v.size), "n_undefined": int(n_undefined)}
    if v.size == 0:
        return out
    p = percentiles(v, [("p1", 1_000), ("p50", 50_000), ("p99", 99_000), ("p99_9", 99_900)])
    a = percentiles(np.abs(v), [("abs_p99", 99_000), ("abs_p99_9", 99_900)])
    out["min"] = float(v.min()) / unit_ns
    out.update({k: val / unit_ns for k, val in p.items()})
    out["max"] = float(v.max()) / unit_ns
    out["mean"] = float(v.mean(dtype=np.float64)) / unit_ns
    out.update({k: val / unit_ns for k, val in a.items()})
    return out


def rfc3550_jitter(transit_ns: np.ndarray, stream: np.ndarray) -> np.ndarray:
    """Final RFC 3550 interarrival jitter J per stream (RFC 3550 §6.4.1 and Appendix A.8).

    ``J(i) = J(i−1) + (|D(i−1, i)| − J(i−1)) / 16`` with ``D`` the difference of consecutive
    transit times in *arrival* order and ``J(0) = 0``: the smoothed figure iperf3 prints. It is a
    compatibility figure only: the 1/16 gain hides tails. The recursion is the linear filter
    ``J_n = Σ_i (1/16)(15/16)^(n−i) |D_i|``, evaluated here in closed form (weights below 1e-300
    vanish, which is exactly what the recursion does to old samples).

    Parameters
    ----------
    transit_ns : ndarray
        Transit time (rx − tx) of received packets, arrival order within each stream.
    stream : ndarray
        Stream id per packet, non-decreasing.

    Returns
    -------
    ndarray of float64
        J (ns) for each distinct stream, in stream order.
    """
    t = np.asarray(transit_ns, dtype=np.float64)
    st = np.asarray(stream)
    if t.size == 0:
        return np.empty(0)
    starts = np.flatnonzero(np.r_[True, st[1:] != st[:-1]])
    ends = np.r_[starts[1:], t.size] - 1
    block = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, t.size]))
    x = np.zeros(t.size)
    x[1:] = np.abs(np.diff(t))
    x[starts] = 0.0  # the first packet of a stream has no predecessor
    age = ends[block] - np.arange(t.size)
    w = np.power(15.0 / 16.0, age.astype(np.float64)) / 16.0
    return np.bincount(block, weights=w * x, minlength=starts.size)


# --------------------------------------------------------------------------------------------
# Loss, loss episodes, reordering, duplicates
# --------------------------------------------------------------------------------------------

def loss_stats(n_sent: int, n_received: int, tmax_ns: int | None, n_duplicates: int = 0) -> dict:
    """Packet loss ratio (RFC 7680 §4, §5: Type-P-One-way-Packet-Loss-Ratio) with its counts.

    A packet is lost if it was not received within ``tmax_ns``; duplicates count once (RFC 7680
    §2.8.2: the first copy decides), and their extra copies are reported separately.
    """
    lost = int(n_sent) - int(n_received)
    return {"sent": int(n_sent), "received": int(n_received), "lost": lost,
            "ratio": (lost / n_sent) if n_sent else NAN,
            "tmax_ns": None if tmax_ns is None else int(tmax_ns),
            "duplicates": int(n_duplicates)}


def loss_episodes(lost: np.ndarray, stream: np.ndarray, duration_s: float | None = None) -> dict:
    """Loss episodes (RFC 6534 §2, loss periods of RFC 3357 §4.1): maximal runs of consecutive
    lost packets in sending order within a stream.

    Parameters
    ----------
    lost : ndarray of bool
        Per packet, in sending order within each stream.
    stream : ndarray
        Stream id per packet, non-decreasing.
    duration_s : float, optional
        Span of the measurement; gives ``frequency_hz`` (episodes per second).

    Returns
    -------
    dict
        ``n_episodes``, ``mean_length`` and ``max_length`` (packets), ``frequency_per_packet``
        (episodes per packet sent, RFC 6534's loss-episode frequency) and ``frequency_hz``.
    """
    lo = np.asarray(lost, dtype=bool)
    st = np.asarray(stream)
    n = lo.size
    out = {"n_episodes": 0, "mean_length": NAN, "max_length": 0, "frequency_per_packet": 0.0 if n else NAN,
           "frequency_hz": (0.0 if duration_s else NAN)}
    if n == 0 or not lo.any():
        return out
    new_stream = np.r_[True, st[1:] != st[:-1]]
    start = lo & (new_stream | np.r_[True, ~lo[:-1]])
    end = lo & (np.r_[new_stream[1:], True] | np.r_[~lo[1:], True])
    lengths = np.flatnonzero(end) - np.flatnonzero(start) + 1
    out.update(n_episodes=int(lengths.size), mean_length=float(lengths.mean()),
               max_length=int(lengths.max()), frequency_per_packet=lengths.size / n,
               frequency_hz=(lengths.size / duration_s) if duration_s else NAN)
    return out


def reordering(seq: np.ndarray, stream: np.ndarray) -> dict:
    """Reordering per RFC 4737: ratio (§4.1), maximum extent (§4.2) and 3-reordering (§5).

    Packet *i* (arrival order) is reordered if ``s[i] < NextExp``, where NextExp is one more than
    the largest sequence number that arrived before it in its stream (§3.3). Its extent is
    ``i − j`` with ``j`` the earliest arrival whose sequence number exceeds ``s[i]`` (§4.2.1); it
    is n-reordered (§5) when the n packets arriving just before it all carry larger sequence
    numbers — with n = 3 that is what triggers a TCP-style fast retransmit.

    Parameters
    ----------
    seq : ndarray of int
        Sequence number (within its stream) of each *received* packet (first copies only),
        in arrival order within each stream.
    stream : ndarray
        Stream id per packet, non-decreasing.

    Returns
    -------
    dict
        ``n_received``, ``n_reordered``, ``ratio`` (reordered / received), ``max_extent``
        (packets) and ``n_reordered_ge3``.
    """
    s = np.asarray(seq, dtype=np.int64)
    st = np.asarray(stream)
    n = s.size
    out = {"n_received": int(n), "n_reordered": 0, "ratio": 0.0 if n else NAN, "max_extent": 0,
           "n_reordered_ge3": 0}
    if n < 2:
        return out
    # Lift every stream above the previous one so one global running max is a per-stream one.
    new_stream = np.r_[True, st[1:] != st[:-1]]
    block = np.cumsum(new_stream) - 1
    span = int(s.max() - s.min()) + 2
    lifted = (s - s.min()) + block.astype(np.int64) * span
    run_max = np.maximum.accumulate(lifted)
    prev_max = np.r_[np.int64(-1), run_max[:-1]]
    reordered = (lifted <= prev_max) & ~new_stream
    idx = np.flatnonzero(reordered)
    if idx.size == 0:
        return out
    first_greater = np.searchsorted(run_max, lifted[idx], side="right")
    extent = idx - first_greater
    ge3 = np.ones(idx.size, dtype=bool)
    for back in (1, 2, 3):
        j = idx - back
        ok = j >= 0
        jj = np.where(ok, j, 0)
        ge3 &= ok & (block[jj] == block[idx]) & (lifted[jj] > lifted[idx])
    out.update(n_reordered=int(idx.size), ratio=idx.size / n, max_extent=int(extent.max()),
               n_reordered_ge3=int(np.count_nonzero(ge3)))
    return out


def duplicate_count(copies: np.ndarray) -> int:
    """Extra copies received beyond the first (RFC 7680 §2.8.2 / RFC 5560: duplicates count once)."""
    c = np.asarray(copies, dtype=np.int64)
    return int(np.clip(c - 1, 0, None).sum())


# --------------------------------------------------------------------------------------------
# Messages and groups
# --------------------------------------------------------------------------------------------

# Completion times live in fabric.analysis.completion (one model for every reader).


# --------------------------------------------------------------------------------------------
# Throughput and fairness
# --------------------------------------------------------------------------------------------

def goodput_bps(delivered_bytes_emulated: float, duration_s: float, scale_k: float = 1.0) -> float:
    """Goodput (RFC 8238 §3 / RFC 2647): bits delivered to the right destination per second,
    first copies only (duplicates and resent data excluded), in real units (× ``scale_k``)."""
    if not duration_s or duration_s <= 0:
        return NAN
    return float(delivered_bytes_emulated) * 8.0 * float(scale_k) / float(duration_s)


def jain_index(x: np.ndarray) -> float:
    """Jain's fairness index ``(Σx)² / (n·Σx²)`` (Jain, Chiu, Hawe 1984): 1 = equal shares,
    1/n = one receiver gets everything. ``nan`` for no samples or all zeros."""
    v = np.asarray(x, dtype=np.float64)
    if v.size == 0:
        return NAN
    sq = float(np.square(v).sum())
    return NAN if sq == 0 else float(v.sum()) ** 2 / (v.size * sq)


# --------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------

LINK_KEY = ["link_id", "node", "peer", "queue"]


def link_key(link_id: str, node: str, peer: str, queue: str) -> str:
    """metrics.json key of one link direction: ``link_id:node->peer``, ``/queue`` unless 'port'."""
    base = f"{link_id}:{node}->{peer}"
    return base if queue in ("port", "", None) else f"{base}/{queue}"


def link_intervals(links: pd.DataFrame) -> pd.DataFrame:
    """Utilization over time from cumulative ``tc -s`` counters (docs/metrics.md "Per link").

    One row per sampling interval of each link direction: ``dt_ns``, ``tx_bytes`` / ``tx_packets``
    / ``drops`` deltas (counter decreases, i.e. resets, clip to 0), ``rate_bps`` at the interval's
    end, ``util`` = delivered bits / (rate · dt), and the backlog at both ends.
    """
    cols = LINK_KEY + ["t_ns", "kind", "rate_bps", "tx_bytes", "tx_packets", "drops",
                       "backlog_bytes", "backlog_packets"]
    f = links[cols].sort_values(LINK_KEY + ["t_ns"], kind="stable").reset_index(drop=True)
    same = np.ones(len(f), dtype=bool)
    for c in LINK_KEY:
        v = f[c].to_numpy()
        same[1:] &= v[1:] == v[:-1]
    same[0] = False
    prev = np.r_[0, np.arange(len(f) - 1)] if len(f) else np.empty(0, dtype=np.int64)
    out = f.loc[same, LINK_KEY + ["kind", "t_ns", "rate_bps"]].copy()
    idx = np.flatnonzero(same)
    pidx = prev[idx]
    out["dt_ns"] = f["t_ns"].to_numpy()[idx] - f["t_ns"].to_numpy()[pidx]
    for c in ("tx_bytes", "tx_packets", "drops"):
        v = f[c].to_numpy(np.int64)
        out[c] = np.clip(v[idx] - v[pidx], 0, None)
    out["backlog_start_packets"] = f["backlog_packets"].to_numpy()[pidx]
    out["backlog_end_packets"] = f["backlog_packets"].to_numpy()[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["util"] = np.where((out["dt_ns"] > 0) & (out["rate_bps"] > 0),
                               out["tx_bytes"] * 8e9 / (out["dt_ns"] * out["rate_bps"]), np.nan)
    return out.reset_index(drop=True)


def link_summary(links: pd.DataFrame, scale_k: float = 1.0) -> dict:
    """Per link direction: utilization (mean over the sampled span; p50/p99/max per interval),
    drops, backlog max/mean (real bytes and packets) and real-unit rates (× ``scale_k``).

    Keys come from :func:`link_key`; entries are ordered by key for deterministic output.
    """
    if links.empty:
        return {}
    f = links.sort_values(LINK_KEY + ["t_ns"], kind="stable")
    iv = link_intervals(links)
    out: dict = {}
    ivg = {k: g for k, g in iv.groupby(LINK_KEY, sort=True)} if len(iv) else {}
    for key, g in f.groupby(LINK_KEY, sort=True):
        first, last = g.iloc[0], g.iloc[-1]
        span_ns = int(last["t_ns"] - first["t_ns"])
        seg = ivg.get(key)
        tx_b = int(seg["tx_bytes"].sum()) if seg is not None else 0
        rate = float(g["rate_bps"].max())
        util = seg["util"].dropna().to_numpy() if seg is not None else np.empty(0)
        u = percentiles(util, [("p50", 50_000), ("p99", 99_000)]) if util.size else {"p50": NAN, "p99": NAN}
        entry = {
            "kind": str(first["kind"]), "node": str(key[1]), "peer": str(key[2]), "queue": str(key[3]),
            "samples": int(len(g)), "span_s": span_ns / 1e9,
            "rate_bps": rate * scale_k,
            "tx_bytes": tx_b * scale_k,
            "tx_packets": int(seg["tx_packets"].sum()) if seg is not None else 0,
            "tx_bps_mean": (tx_b * 8e9 * scale_k / span_ns) if span_ns > 0 else NAN,
            "utilization": {
                "mean": (tx_b * 8e9 / (span_ns * rate)) if span_ns > 0 and rate > 0 else NAN,
                "p50": u["p50"], "p99": u["p99"],
                "max": float(util.max()) if util.size else NAN,
            },
            "drops": int(seg["drops"].sum()) if seg is not None else 0,
            "backlog_bytes": {"max": float(g["backlog_bytes"].max()) * scale_k,
                              "mean": float(g["backlog_bytes"].mean()) * scale_k},
            "backlog_packets": {"max": int(g["backlog_packets"].max()),
                                "mean": float(g["backlog_packets"].mean())},
        }
        out[link_key(*key)] = entry
    return out


def core_of(node: str, peer: str, cores: dict) -> tuple[str | None, str | None]:
    """(core switch name, direction) of a fabric link end: 'up' toward a spine/NCF, 'down' from it."""
    if str(peer) in cores:
        return str(peer), "up"
    if str(node) in cores:
        return str(node), "down"
    return None, None


def _imbalance(per_core: pd.Series) -> dict:
    total = float(per_core.sum())
    mean = total / len(per_core) if len(per_core) else 0.0
    return {"max_over_mean": (float(per_core.max()) / mean) if mean > 0 else NAN,
            "shares": {str(c): (float(v) / total if total > 0 else NAN) for c, v in per_core.items()}}


def spine_imbalance(links: pd.DataFrame, cores: dict[str, int], scale_k: float = 1.0) -> dict:
    """Per-core load share and imbalance = max / mean of per-core tx bytes on fabric links
    (docs/metrics.md "Per link": the figure that shows ECMP hash collisions).

    Uses ``kind == 'fabric'`` port queues; a link's core is its spine/NCF end (``cores``: the
    core switches' names and indices, from the graph); its bytes count toward that core in both directions (leaf→spine 'up',
    spine→leaf 'down'), each direction also summarised alone. Cores that carried nothing count
    (a share of 0 is the point). ``max_over_mean`` is 1.0 for a perfect spread, N for one core
    carrying everything.
    """
    empty = {"max_over_mean": NAN, "cores": 0, "shares": {}, "tx_bytes": {}, "up": {}, "down": {}}
    if links.empty:
        return empty
    f = links[(links["kind"] == "fabric") & (links["queue"].fillna("port") == "port")]
    if f.empty:
        return empty
    iv = link_intervals(f)
    per_link = iv.groupby(["node", "peer"], sort=True)["tx_bytes"].sum()
    ends = f[["node", "peer"]].drop_duplicates()
    rows = []
    for node, peer in ends.itertuples(index=False):
        core, direction = core_of(node, peer, cores)
        if core is not None:
            rows.append((core, direction, float(per_link.get((node, peer), 0))))
    if not rows:
        return empty
    r = pd.DataFrame(rows, columns=["core", "dir", "bytes"])
    used = sorted(r["core"].unique(), key=lambda c: cores[c])
    both = r.groupby("core")["bytes"].sum().reindex(used, fill_value=0.0)
    out = {**_imbalance(both), "cores": len(used),
           "tx_bytes": {c: float(v) * scale_k for c, v in both.items()}}
    for d in ("up", "down"):
        out[d] = _imbalance(r[r["dir"] == d].groupby("core")["bytes"].sum().reindex(used, fill_value=0.0))
    return out


# --------------------------------------------------------------------------------------------
# Run-level inputs shared by analysis and fidelity
# --------------------------------------------------------------------------------------------

def sender_line_rate_bps(links: pd.DataFrame, src: np.ndarray, fallback_bps: float = NAN) -> np.ndarray:
    """Line rate (emulated bit/s, as in links.parquet) of each sender's host uplink.

    A host's uplink is the ``kind == 'host'`` port queue whose transmitting ``node`` is the host.
    Senders without such a row get ``fallback_bps``.
    """
    src = np.asarray(src, dtype=object)
    if links.empty:
        return np.full(src.size, float(fallback_bps))
    up = links[(links["kind"] == "host") & (links["queue"].fillna("port") == "port")]
    rates = up.groupby("node")["rate_bps"].max()
    return pd.Series(src).map(rates).astype("float64").fillna(float(fallback_bps)).to_numpy()


def receiver_line_rate_bps(links: pd.DataFrame, dst: np.ndarray, fallback_bps: float = NAN) -> np.ndarray:
    """Line rate (emulated bit/s) of each receiver's host downlink: the ``kind == 'host'`` port
    queue whose receiving ``peer`` is the host. Receivers without such a row get ``fallback_bps``."""
    dst = np.asarray(dst, dtype=object)
    if links.empty:
        return np.full(dst.size, float(fallback_bps))
    down = links[(links["kind"] == "host") & (links["queue"].fillna("port") == "port")]
    rates = down.groupby("peer")["rate_bps"].max()
    return pd.Series(dst).map(rates).astype("float64").fillna(float(fallback_bps)).to_numpy()


def idle_path_delay_ns(noise: pd.DataFrame) -> float:
    """Idle-fabric one-way delay (nearest-rank median of the noise probe), ns; 0.0 without a probe.

    This is the "idle path delay" of the ideal MCT and of the loss-recovery model.
    """
    if noise.empty:
        return 0.0
    rx = noise["rx_ns"].to_numpy(np.int64)
    tx = noise["tx_ns"].to_numpy(np.int64)
    d = (rx - tx)[rx >= 0]
    return percentiles(d, [("p50", 50_000)])["p50"] if d.size else 0.0
