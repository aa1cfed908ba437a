"""``find: max_rate_within_slo`` — SLO-bound goodput: the highest value of a workload rate key at
which a run still meets its latency SLOs, found by bisection.

A run *meets the SLOs* when it finished, its cost model ran, and every SLO its patterns measure
holds: the KV pattern's p99 TTFT within ``ttft_slo_s`` and each decode pattern's (moe, tp) p99
TPOT within ``tpot_slo_s`` (all from :func:`fabric.economics.cpmt_for_run`'s ``patterns``). The
search assumes that holds below some rate and fails above it:

1. ``low`` and ``high`` run first (together). ``low`` missing: no rate in the range meets the SLOs.
   ``high`` meeting: the answer is at least ``high`` (reported as ``high``, marked ``at_high_bound``).
2. Otherwise ``steps`` bisections of [last met, first missed]; the answer is the highest value that met.

:class:`RateSearch` holds one search's state and says which value to run next; the sweep service
runs the probes (each an ordinary point of the sweep, hashed and resumable) and feeds results back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def slo_verdict(cpmt: dict | None) -> tuple[bool | None, str]:
    """(met, why) for one run's cpmt result; met None when the run measures no SLO at all."""
    if not cpmt:
        return False, "no cost model result"
    patterns = cpmt.get("patterns") or {}
    checks = []
    kv = patterns.get("kv")
    if kv:
        checks.append(("TTFT p99", kv.get("ttft_measured_p99_s"), kv.get("ttft_slo_s")))
    for name in ("moe", "tp"):
        d = patterns.get(name)
        if d:
            checks.append((f"{name} TPOT p99", d.get("tpot_measured_p99_s"), d.get("tpot_slo_s")))
    if not checks:
        return None, "the run has no kv, moe or tp pattern: no TTFT or TPOT to hold to an SLO"
    missed = [f"{label} {v:.4g} s > SLO {slo:.4g} s" for label, v, slo in checks
              if v is None or slo is None or not float(v) <= float(slo)]
    if missed:
        return False, "; ".join(missed)
    return True, "; ".join(f"{label} {float(v):.4g} s ≤ {float(slo):.4g} s" for label, v, slo in checks)


@dataclass
class RateSearch:
    """The state of one bisection (see the module docstring)."""

    low: float
    high: float
    steps: int
    results: dict[float, bool] = field(default_factory=dict)   # value -> met
    reasons: dict[float, str] = field(default_factory=dict)
    undefined: str | None = None      # set when a probe measured no SLO: the search stops
    _lo: float | None = None          # highest value that met
    _hi: float | None = None          # lowest value that missed
    _bisections: int = 0

    def next_values(self) -> list[float]:
        """Values to run now (empty: finished or waiting for a result)."""
        if self.done:
            return []
        if not self.results:
            return [self.low, self.high]
        if self.low not in self.results or self.high not in self.results:
            return []
        mid = (self._lo + self._hi) / 2
        return [] if mid in self.results else [mid]

    def record(self, value: float, met: bool | None, reason: str = "") -> None:
        if met is None:
            self.undefined = reason
            return
        self.results[value] = met
        self.reasons[value] = reason
        if value not in (self.low, self.high):
            self._bisections += 1
        if self.low in self.results and self.high in self.results:
            met_values = [v for v, ok in self.results.items() if ok]
            missed = [v for v, ok in self.results.items() if not ok]
            self._lo = max(met_values) if met_values else None
            self._hi = min((v for v in missed if self._lo is None or v > self._lo), default=None)

    @property
    def done(self) -> bool:
        if self.undefined is not None:
            return True
        if self.low not in self.results or self.high not in self.results:
            return False
        if not self.results[self.low] or self.results[self.high]:
            return True
        return self._bisections >= self.steps

    @property
    def found(self) -> float | None:
        """The highest value that met the SLOs (None: none did, or the search is not finished)."""
        if not self.done or self.undefined is not None:
            return None
        return self._lo

    @property
    def at_high_bound(self) -> bool:
        return bool(self.results.get(self.high))

    @property
    def bracket(self) -> tuple[float | None, float | None]:
        """(highest met, lowest missed) so far."""
        return self._lo, self._hi
