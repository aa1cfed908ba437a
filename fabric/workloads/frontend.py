"""The serving front end of a disaggregated pattern: tokenize, the CPU-side hops, detokenize.

A front end is a CPU server of the design's ``frontend`` role (a catalog entry of kind cpu). The
disaggregated generator (:mod:`fabric.workloads.disagg`) asks it, per request:

* :meth:`FrontEnd.tokenize_request`: which front-end host takes the request (round-robin, as a
  load balancer spreads connections), when one of its cores has tokenized the prompt (FCFS over
  the host's cores, one request per core, at the catalog's rate per core), and the ``tokens``
  messages that carry the token ids to every host of the prefill instance. Prefill may start once
  the ids could have arrived: their bytes at the slower NIC's line rate (the run measures the real
  hop; the economics adds its delay to TTFT).
* :meth:`FrontEnd.stream`: after all requests are placed, each decode instance's output stream.
  Every decode step, an instance sends one ``stream`` message to each detokenize host with
  requests in the step, ``STREAM_BYTES_PER_TOKEN`` per request, from the instance's first host. A
  request joins its instance's steps at the first step boundary after its KV could have arrived and
  leaves after its output tokens. The step that carries its first token is recorded, so TTFT can
  count that message's completion and the first token's detokenization.

:class:`FrontEndTimeline` holds what ``requests.parquet`` records per request (NaN / "" without a
front end).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from fabric.catalog import Accelerator
from fabric.specs import FRONTEND_ROLE
from fabric.topology import hosts_by_role
from fabric.workloads.hosts import HostContext
from fabric.workloads.rows import Rows

# A prompt's token ids as the front end hands them to prefill: int32 per token (vLLM, SGLang).
TOKEN_ID_BYTES = 4
# ASSUMPTION: one request's share of a decode step's output message to the front end: its new token
# id, its request id and per-request framing (a serialized per-request engine output is of this order).
STREAM_BYTES_PER_TOKEN = 64
TIMELINE_FLOAT_COLUMNS = ("tokenize_start_s", "tokenize_done_s", "tokens_ready_s", "first_token_s", "detokenize_s")


class FrontEndTimeline:
    """Per generated request: the front end's times and the stream message of its first token."""

    def __init__(self, n: int) -> None:
        self.floats = {c: np.full(n, np.nan) for c in TIMELINE_FLOAT_COLUMNS}
        self.first_token_group = np.full(n, "", dtype=object)

    def columns(self, keep: np.ndarray) -> dict[str, np.ndarray]:
        return {**{c: v[keep] for c, v in self.floats.items()}, "first_token_group": self.first_token_group[keep]}


@dataclass
class FrontEnd:
    """The front-end hosts a disaggregated pattern selected (either side may be absent)."""

    ctx: HostContext
    tokenize_hosts: list[str] = field(default_factory=list)
    tokenize_acc: Accelerator | None = None
    detokenize_hosts: list[str] = field(default_factory=list)
    detokenize_acc: Accelerator | None = None
    tokenize_host_of: dict[int, str] = field(default_factory=dict)
    _cores_free_at: dict[str, list[float]] = field(default_factory=dict)
    _stream_messages: int = 0

    @property
    def tokenize(self) -> bool:
        return bool(self.tokenize_hosts)

    @property
    def detokenize(self) -> bool:
        return bool(self.detokenize_hosts)

    def tokenize_request(self, i: int, arrival_s: float, prompt_tokens: int, prefill_instance: list[str],
                         request_id: int, timeline: FrontEndTimeline, rows: Rows, pattern: str) -> float:
        """Tokenize request ``i`` and send its ids to ``prefill_instance``; returns when they could be there."""
        host = self.tokenize_hosts[i % len(self.tokenize_hosts)]
        self.tokenize_host_of[i] = host
        cores = self._cores_free_at.setdefault(host, [0.0] * self.tokenize_acc.cores)
        start = max(arrival_s, heapq.heappop(cores))
        done = start + self.tokenize_acc.tokenize_s(prompt_tokens)
        heapq.heappush(cores, done)
        nbytes = prompt_tokens * TOKEN_ID_BYTES
        rows.add(np.full(len(prefill_instance), done), host, prefill_instance, nbytes, "tokens",
                 f"{pattern}/t{request_id}", request_id, -1)
        hop_s = max(nbytes * 8.0 / min(self.ctx.nic_bps(host), self.ctx.nic_bps(h)) for h in prefill_instance)
        timeline.floats["tokenize_start_s"][i] = start
        timeline.floats["tokenize_done_s"][i] = done
        timeline.floats["tokens_ready_s"][i] = done + hop_s
        return done + hop_s

    def detokenize_host(self, i: int) -> str:
        """Where request ``i``'s output streams: the host that tokenized it when it also detokenizes
        (the client's connection lives there), else round-robin."""
        host = self.tokenize_host_of.get(i)
        return host if host in self.detokenize_hosts else self.detokenize_hosts[i % len(self.detokenize_hosts)]

    def stream(self, placed: list[tuple[int, int, float]], decode_instances: list[list[str]],
               instance_step_s: list[float], output_tokens: np.ndarray, stop_s: float,
               timeline: FrontEndTimeline, rows: Rows, pattern: str) -> None:
        """Each decode instance's per-step output messages; ``placed`` is (request, instance, KV in)."""
        by_instance: dict[int, list[tuple[float, int]]] = {}
        for i, d, kv_in in placed:
            by_instance.setdefault(d, []).append((kv_in, i))
        t_out, src_out, dst_out, bytes_out, group_out = [], [], [], [], []
        for d, joined in sorted(by_instance.items()):
            joined.sort()
            step_s, leader = instance_step_s[d], decode_instances[d][0]
            active: dict[int, int] = {}            # request -> output tokens still to stream
            t, j, k = joined[0][0], 0, 0
            while j < len(joined) or active:
                if not active:
                    t = max(t, joined[j][0])       # idle: the next request starts a step at once
                while j < len(joined) and joined[j][0] <= t:
                    active[joined[j][1]] = int(output_tokens[joined[j][1]])
                    j += 1
                end = t + step_s
                if end >= stop_s:
                    break
                per_host: dict[str, list[int]] = {}
                for i in active:
                    per_host.setdefault(self.detokenize_host(i), []).append(i)
                for host, members in per_host.items():
                    group = f"{pattern}/s{d}.{k}.{host}"
                    t_out.append(end)
                    src_out.append(leader)
                    dst_out.append(host)
                    bytes_out.append(len(members) * STREAM_BYTES_PER_TOKEN)
                    group_out.append(group)
                    for i in members:
                        if not timeline.first_token_group[i]:
                            timeline.first_token_group[i] = group
                            timeline.floats["first_token_s"][i] = end
                            timeline.floats["detokenize_s"][i] = self.detokenize_acc.detokenize_s(1)
                for i in list(active):
                    active[i] -= 1
                    if active[i] <= 0:
                        del active[i]
                t, k = end, k + 1
        self._stream_messages = len(t_out)
        if t_out:
            rows.add(np.asarray(t_out), np.asarray(src_out, dtype=object), np.asarray(dst_out, dtype=object),
                     np.asarray(bytes_out), "stream", np.asarray(group_out, dtype=object), -1, -1)

    def facts(self) -> dict:
        """run.json ``compute.frontend``: the CPU servers and the rates the timeline used."""
        out: dict = {"token_id_bytes": TOKEN_ID_BYTES, "stream_bytes_per_token": STREAM_BYTES_PER_TOKEN}
        for stage, hosts, acc in (("tokenize", self.tokenize_hosts, self.tokenize_acc),
                                  ("detokenize", self.detokenize_hosts, self.detokenize_acc)):
            if hosts:
                groups = sorted({self.ctx.graph.nodes[h]["group"] for h in hosts})
                out[stage] = {"group": "+".join(groups), "accelerator": acc.name, "hosts": len(hosts),
                              "cores": acc.cores,
                              "tokens_per_s_per_host": acc.tokenize_tokens_per_s if stage == "tokenize"
                              else acc.detokenize_tokens_per_s}
        return out

    def summary(self, pattern: str) -> str:
        parts = []
        if self.tokenize:
            acc = self.tokenize_acc
            parts.append(f"tokenize on {len(self.tokenize_hosts)} x {acc.name} ({acc.cores} cores, "
                         f"{acc.tokenize_tokens_per_s / acc.cores:,.0f} tokens/s per core), token ids "
                         f"{TOKEN_ID_BYTES} B/token to prefill")
        if self.detokenize:
            parts.append(f"output streamed to {len(self.detokenize_hosts)} x {self.detokenize_acc.name} once per "
                         f"decode step ({STREAM_BYTES_PER_TOKEN} B per request, {self._stream_messages:,} messages)")
        return f"{pattern}: front end: " + "; ".join(parts)


def front_end(tokenize, detokenize, pattern: str, ctx: HostContext, notes: list[str]) -> FrontEnd:
    """The pattern's front end from its ``tokenize:`` and ``detokenize:`` selectors (either may be None).

    A stage selected by the ``frontend`` role on a design without front-end servers is not
    modelled (a note says so): one profile then runs on designs with and without a front end. Any
    other selector that matches nothing is an error, as everywhere.
    """
    front = FrontEnd(ctx)
    roles = set(hosts_by_role(ctx.graph))
    for stage, sel in (("tokenize", tokenize), ("detokenize", detokenize)):
        if sel is None:
            continue
        if sel.roles == (FRONTEND_ROLE,) and FRONTEND_ROLE not in roles:
            notes.append(f"{pattern}: {stage} not modelled: this design has no {FRONTEND_ROLE} (CPU server) hosts")
            continue
        hosts = ctx.select_as(pattern, stage, sel)
        setattr(front, f"{stage}_hosts", hosts)
        setattr(front, f"{stage}_acc", ctx.frontend(sel, hosts))
    return front
