"""Serving pools sized from the stages (docs/economics.md §6).

A disaggregated workload records, per stage (prefill, decode) and host group, the accelerator that
timed it and its ideal rate from the catalog (run.json ``workload.patterns[].compute.pools``; see
:mod:`fabric.workloads.disagg`). With the requests' mean prompt ``P`` and output ``O`` tokens
(requests.parquet), that fixes how many accelerators each stage needs::

    r_s   = Σ_g n_g r_g / Σ_g n_g        tokens/s per accelerator of stage s, at the design's mix
                                         of groups within the stage (n_g hosts of group g at rate r_g)
    T_p   = P,  T_d = O                  tokens per request each stage serves
    need  = R · T_s / (r_s · η_s)        accelerators of stage s for R requests/s; split over its
                                         groups as the design splits it (n_g / Σ n_g)
    a     = (P/r_p) / (P/r_p + O/r_d)    prefill's share of accelerators when pools fit the load
    rate  = (P + O) / (P/r_p + O/r_d)    tokens/s per accelerator of the whole cluster (ideal)

A design whose own pools do not have that split serves at most ``c_s = Σ_g n_g r_g / T_s``
requests/s per stage; the smaller caps it and the other stage idles by ``1 − c_min / c_other``.
That is reported (``mis_sized``), and with ``serving.pool_model: fixed`` it is what is priced.

Everything here is arithmetic on those records; nothing reads a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

STAGES = ("prefill", "decode")
# A stage of the design idling more than this share of its capacity marks the design mis-sized
# for the workload (its pools should be resized, or the other stage given more accelerators).
MIS_SIZED_IDLE_SHARE = 0.2


@dataclass(frozen=True)
class Pool:
    """One host group serving one stage, as the workload generator timed it."""

    stage: str
    group: str
    accelerator: str
    hosts: int                       # hosts of the group serving the stage (in its instances; spare hosts idle)
    instance_hosts: int
    tokens_per_s_per_accelerator: float   # prefill: prompt tokens/s; decode: output tokens/s

    @classmethod
    def from_record(cls, rec: dict) -> Pool:
        size = max(1, int(rec["instance_hosts"]))
        # Hosts left over after the group's instances are formed serve nothing.
        hosts = int(rec["instances"]) * size if "instances" in rec else int(rec["hosts"])
        return cls(stage=str(rec["stage"]), group=str(rec["group"]), accelerator=str(rec["accelerator"]),
                   hosts=hosts, instance_hosts=size,
                   tokens_per_s_per_accelerator=float(rec["tokens_per_s_per_accelerator"]))


@dataclass(frozen=True)
class StageModel:
    """Pools of a disaggregated workload and the requests they serve."""

    pools: tuple[Pool, ...]
    prompt_tokens_mean: float
    output_tokens_mean: float
    request_rate_per_s: float        # the target rate sizing is reported for (the profile's offered rate)
    pattern: str                     # the workload pattern that recorded the pools
    # The front end's CPU servers, all hosts together: {"tokenize": tokens/s, "detokenize": tokens/s}.
    frontend_tokens_per_s: dict = field(default_factory=dict)

    def frontend_busy_share(self) -> float | None:
        """Share of the front end's cores busy at the target rate (tokenizing P, detokenizing O per
        request; None without a front end). Far below 1 means the design built more front end than
        its accelerators need: its servers are priced as built (docs/economics.md §6)."""
        if not self.frontend_tokens_per_s:
            return None
        per_token = {"tokenize": self.prompt_tokens_mean, "detokenize": self.output_tokens_mean}
        return sum(self.request_rate_per_s * per_token[stage] / rate
                   for stage, rate in self.frontend_tokens_per_s.items() if rate > 0)

    def stage_pools(self, stage: str) -> list[Pool]:
        return [p for p in self.pools if p.stage == stage]

    def hosts(self, stage: str) -> int:
        return sum(p.hosts for p in self.stage_pools(stage))

    def stage_price_usd_per_hour(self, stage: str, price_usd_per_hour) -> float:
        """Mean $/h of one of the stage's accelerators, its groups weighted as the design splits it
        (how the costed accelerators are split within a stage)."""
        pools = self.stage_pools(stage)
        return sum(p.hosts * price_usd_per_hour(p.accelerator) for p in pools) / sum(p.hosts for p in pools)

    def prefill_cost_share(self, prefill_share: float, price_usd_per_hour) -> float:
        """Prefill's share of the pools' cost when ``prefill_share`` of the accelerators are prefill's.

        A rebalanced cluster serving the same load with stage s derated by η_s buys 1/η_s more of
        its accelerators, so its cost grows by Σ_s C_s/η_s ÷ Σ_s C_s: the stages' η combine weighted
        by this share, not by their accelerator counts (docs/economics.md §6)."""
        p = prefill_share * self.stage_price_usd_per_hour("prefill", price_usd_per_hour)
        d = (1.0 - prefill_share) * self.stage_price_usd_per_hour("decode", price_usd_per_hour)
        return p / (p + d)

    def stage_rate(self, stage: str) -> float:
        """Tokens/s per accelerator of ``stage`` at the design's mix of groups within it."""
        pools = self.stage_pools(stage)
        return sum(p.hosts * p.tokens_per_s_per_accelerator for p in pools) / sum(p.hosts for p in pools)

    def tokens_per_request(self, stage: str) -> float:
        return self.prompt_tokens_mean if stage == "prefill" else self.output_tokens_mean

    def accelerator_time(self, stage: str) -> float:
        """Accelerator-seconds ``stage`` spends per request (ideal)."""
        return self.tokens_per_request(stage) / self.stage_rate(stage)

    @property
    def prefill_share(self) -> float:
        """Prefill's share of accelerators when both pools are sized to the load."""
        return self.accelerator_time("prefill") / sum(self.accelerator_time(s) for s in STAGES)

    @property
    def total_tokens_per_s_per_accelerator(self) -> float:
        return (self.prompt_tokens_mean + self.output_tokens_mean) / sum(self.accelerator_time(s) for s in STAGES)

    @property
    def output_tokens_per_s_per_accelerator(self) -> float:
        return self.output_tokens_mean / sum(self.accelerator_time(s) for s in STAGES)

    def design_capacity_per_s(self, stage: str) -> float:
        """Requests/s the design's own hosts of ``stage`` serve at their ideal rate."""
        return sum(p.hosts * p.tokens_per_s_per_accelerator for p in self.stage_pools(stage)) / \
            self.tokens_per_request(stage)

    def design_fit(self) -> dict:
        """How the design's own pools fit the workload: capacities, bottleneck, idle share."""
        cap = {s: self.design_capacity_per_s(s) for s in STAGES}
        bottleneck = min(STAGES, key=lambda s: cap[s])
        other = "decode" if bottleneck == "prefill" else "prefill"
        idle = 1.0 - cap[bottleneck] / cap[other] if cap[other] > 0 else 0.0
        mis_sized = idle > MIS_SIZED_IDLE_SHARE
        share_design = self.hosts("prefill") / (self.hosts("prefill") + self.hosts("decode"))
        serves_target = cap[bottleneck] >= self.request_rate_per_s
        statement = (f"the design's own pools serve prefill {cap['prefill']:.3g}, decode {cap['decode']:.3g} "
                     f"requests/s: {other} idles {idle:.0%}" + (" — MIS-SIZED for this workload" if mis_sized else "")
                     + f" (prefill {share_design:.0%} of its accelerators, {self.prefill_share:.0%} fits the load)"
                     + ("" if serves_target else f"; below the target {self.request_rate_per_s:.3g} requests/s"))
        return {"capacity_requests_per_s": cap, "bottleneck": bottleneck, "idle_stage": other,
                "idle_share": idle, "mis_sized": mis_sized,
                "prefill_share_design": share_design, "prefill_share_sized": self.prefill_share,
                "serves_target": serves_target, "target_requests_per_s": self.request_rate_per_s,
                "statement": statement}

    def sized(self, eta: dict[str, float], rate_per_s: float | None = None) -> list[dict]:
        """Accelerators and instances per pool for ``rate_per_s`` requests/s at the stages' η."""
        rate = self.request_rate_per_s if rate_per_s is None else rate_per_s
        out = []
        for stage in STAGES:
            pools = self.stage_pools(stage)
            stage_hosts = sum(p.hosts for p in pools)
            need = rate * self.tokens_per_request(stage) / (self.stage_rate(stage) * max(eta.get(stage, 1.0), 1e-12))
            for p in pools:
                accelerators = need * p.hosts / stage_hosts
                out.append({"stage": stage, "group": p.group, "accelerator": p.accelerator,
                            "accelerators": accelerators, "instance_hosts": p.instance_hosts,
                            "instances": math.ceil(accelerators / p.instance_hosts - 1e-9),
                            "tokens_per_s_per_accelerator": p.tokens_per_s_per_accelerator})
        return out

    def costed_counts(self, accelerators: float, pool_model: str,
                      prefill_share: float | None = None) -> list[tuple[Pool, float]]:
        """``accelerators`` split over the pools: by the sized shares (pools fit the load; or a stated
        ``prefill_share``) or, with fixed pools, as the design splits them."""
        a = self.prefill_share if prefill_share is None else prefill_share
        design_total = self.hosts("prefill") + self.hosts("decode")
        out = []
        for stage in STAGES:
            pools = self.stage_pools(stage)
            stage_hosts = sum(p.hosts for p in pools)
            if pool_model == "fixed":
                share = stage_hosts / design_total
            else:
                share = a if stage == "prefill" else 1.0 - a
            out.extend((p, accelerators * share * p.hosts / stage_hosts) for p in pools)
        return out

    def fixed_capacity_ratio(self) -> float:
        """c_prefill / c_decode of the design's own pools (1 when balanced)."""
        return self.design_capacity_per_s("prefill") / self.design_capacity_per_s("decode")

    def fixed_tokens_per_s_per_accelerator(self) -> tuple[float, float]:
        """(total, output) tokens/s per accelerator of the design's own pools: the bottleneck stage's
        requests/s × tokens per request, over all of the stages' accelerators."""
        served = min(self.design_capacity_per_s(s) for s in STAGES)
        hosts = self.hosts("prefill") + self.hosts("decode")
        return (served * (self.prompt_tokens_mean + self.output_tokens_mean) / hosts,
                served * self.output_tokens_mean / hosts)


def stage_model(run: dict, requests) -> StageModel | None:
    """The stage model of a run: its first disaggregated pattern's pools and offered load (run.json),
    else the requests that reached decode (a requests.parquet frame). None without pools (older
    runs, no KV stage) or without any request."""
    workload = run.get("workload") or {}
    for pattern in workload.get("patterns") or []:
        facts = pattern.get("compute") if isinstance(pattern, dict) else None
        if pattern.get("type") != "disaggregated" or not isinstance(facts, dict) or not facts.get("pools"):
            continue
        pools = tuple(Pool.from_record(r) for r in facts["pools"])
        front = {stage: float(f["tokens_per_s_per_host"]) * int(f["hosts"])
                 for stage, f in (facts.get("frontend") or {}).items() if stage in ("tokenize", "detokenize")}
        if not all(any(p.stage == s and p.hosts > 0 and p.tokens_per_s_per_accelerator > 0 for p in pools)
                   for s in STAGES):
            return None
        if facts.get("requests_offered"):
            # Every request the profile generated: the load is the workload's, whatever the fabric
            # and accelerators did with it (a slow prefill pool sends fewer KV caches in the window).
            return StageModel(pools=pools, prompt_tokens_mean=float(facts["prompt_tokens_mean"]),
                              output_tokens_mean=float(facts["output_tokens_mean"]),
                              request_rate_per_s=float(facts["offered_requests_per_s"]), pattern=str(pattern.get("name")),
                              frontend_tokens_per_s=front)
        if requests is None or len(requests) == 0:
            return None
        duration = float(workload.get("duration_s") or 0.0)
        rate = len(requests) / duration if duration > 0 else 0.0
        return StageModel(pools=pools, prompt_tokens_mean=float(requests["prompt_tokens"].mean()),
                          output_tokens_mean=float(requests["output_tokens"].mean()),
                          request_rate_per_s=rate, pattern=str(pattern.get("name")), frontend_tokens_per_s=front)
    return None
