"""Schedule rows as pattern generators build them, and the random distributions they share.

Generators append columns (not per-row dicts) so a few hundred thousand messages stay cheap.
Every random draw comes from the ``numpy.random.Generator`` handed to the generator; nothing
here keeps state between calls, so the same seed gives the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fabric.workloads.profile import Arrivals, LengthDist, Trace

ROW_COLUMNS = ("t_start_s", "src", "dst", "bytes", "kind", "group", "request_id", "step")


class Rows:
    """Column-wise accumulator of schedule rows (no msg_id: assigned once all patterns ran)."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(self, t_start_s, src, dst, nbytes, kind: str, group, request_id=-1, step=-1) -> None:
        t = np.atleast_1d(np.asarray(t_start_s, dtype=np.float64))
        n = len(t)
        if n == 0:
            return
        part = pd.DataFrame({
            "t_start_s": t,
            "src": _broadcast(src, n),
            "dst": _broadcast(dst, n),
            "bytes": _broadcast(nbytes, n).astype(np.int64),
            "kind": kind,
            "group": _broadcast(group, n),
            "request_id": _broadcast(request_id, n).astype(np.int64),
            "step": _broadcast(step, n).astype(np.int64),
        })
        self._parts.append(part)

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame({c: pd.Series(dtype=object if c in ("src", "dst", "kind", "group") else
                                              (np.float64 if c == "t_start_s" else np.int64)) for c in ROW_COLUMNS})
        return pd.concat(self._parts, ignore_index=True)


def _broadcast(value, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return np.full(n, value, dtype=object if isinstance(value, str) else None)
    if len(arr) != n:
        raise ValueError(f"column of length {len(arr)} for {n} rows")
    return arr


def sample_lengths(dist: LengthDist, n: int, rng: np.random.Generator, trace: Trace | None = None,
                   column: str = "prompt_tokens") -> np.ndarray:
    """Draw ``n`` token counts.

    * ``lognormal``: median × exp(sigma × N(0,1)), clipped to [min, max] — the heavy right tail
      of prompt lengths seen in production traces;
    * ``zipf``: a bounded power law p(x) ∝ x^-exponent on [min, max] (continuous inverse CDF,
      rounded), for tails heavier than lognormal;
    * ``fixed``: always ``tokens``; ``trace``: the trace column replayed in order, cycled.
    """
    if dist.dist == "fixed":
        return np.full(n, dist.tokens, dtype=np.int64)
    if dist.dist == "trace":
        values = np.asarray(getattr(trace, column), dtype=np.int64)
        return np.resize(values, n)
    if dist.dist == "lognormal":
        x = dist.median * np.exp(dist.sigma * rng.standard_normal(n))
    else:
        a, lo, hi = dist.exponent, float(dist.minimum), float(dist.maximum)
        u = rng.random(n)
        if abs(a - 1.0) < 1e-9:
            x = lo * (hi / lo) ** u
        else:
            e = 1.0 - a
            x = (lo ** e + u * (hi ** e - lo ** e)) ** (1.0 / e)
    return np.clip(np.rint(x), dist.minimum, dist.maximum).astype(np.int64)


def arrival_times(arrivals: Arrivals, start_s: float, stop_s: float, rng: np.random.Generator,
                  trace: Trace | None = None) -> np.ndarray:
    """Request arrival times in [start_s, stop_s).

    Poisson: exponential gaps at ``rate_per_s``. Bursty: bursts arrive as a Poisson process at
    ``rate_per_s / burst_size``, each bringing ``burst_size`` requests spread uniformly over
    ``burst_spread`` — the same mean rate, far more simultaneous prefills. Trace: the trace's
    ``arrival_s`` column offset by ``start_s``.
    """
    span = stop_s - start_s
    if arrivals.process == "trace":
        t = start_s + np.asarray(trace.arrival_s, dtype=np.float64)
        return t[t < stop_s]
    if arrivals.process == "poisson":
        rate = arrivals.rate_per_s
        # Draw comfortably more gaps than needed in one call, so the stream is the same for any span.
        n = int(rate * span + 10 * np.sqrt(rate * span) + 10)
        t = start_s + np.cumsum(rng.exponential(1.0 / rate, n))
        return t[t < stop_s]
    burst_rate = arrivals.rate_per_s / arrivals.burst_size
    n = int(burst_rate * span + 10 * np.sqrt(burst_rate * span) + 10)
    bursts = start_s + np.cumsum(rng.exponential(1.0 / burst_rate, n))
    bursts = bursts[bursts < stop_s]
    offsets = rng.random((len(bursts), arrivals.burst_size)) * arrivals.burst_spread_s
    t = np.sort((bursts[:, None] + offsets).ravel())
    return t[t < stop_s]


def power_law_popularity(experts: int, exponent: float) -> np.ndarray:
    """Share of routed tokens per expert, p_i ∝ i^-exponent for popularity rank i = 1..experts.

    Exponent 0 is uniform routing; ≈1.0 fits DeepSeek-V3 and ≈1.2 Qwen3 (docs/economics.md §2).

    Examples
    --------
    >>> p = power_law_popularity(4, 1.0)
    >>> [round(float(x), 3) for x in p]
    [0.48, 0.24, 0.16, 0.12]
    """
    weights = np.arange(1, experts + 1, dtype=np.float64) ** -float(exponent)
    return weights / weights.sum()


def rank_shares(popularity: np.ndarray, ranks: int, expert_to_rank: np.ndarray) -> np.ndarray:
    """Expected share of routed tokens each EP rank receives, given which rank holds each expert."""
    return np.bincount(expert_to_rank, weights=popularity, minlength=ranks)


def place_experts(experts: int, ranks: int, placement: str, rng: np.random.Generator) -> np.ndarray:
    """Rank holding each expert (indexed by popularity rank), ``experts / ranks`` experts per rank.

    ``contiguous`` puts the most popular experts together on rank 0 (the worst case);
    ``random`` shuffles popularity over ranks, as when popularity is unknown at placement time.
    """
    # Contiguous blocks as even as the counts allow (256 experts on 16 ranks: 16 each).
    slots = np.arange(experts) * ranks // experts
    if placement == "random":
        slots = rng.permutation(slots)
    return slots
