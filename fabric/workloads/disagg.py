"""Disaggregated prefill → decode: the KV-cache transfer of every request.

Requests arrive (Poisson, bursty or a replayed trace) with prompt lengths from a heavy-tailed
distribution. Each goes to the prefill instance that frees up first (FCFS queue per instance);
prefill takes ``prompt_tokens / (instance hosts × prefill tokens/s per accelerator)``, the rate
coming from the prefill hosts' accelerator (fabric.catalog). When prefill completes, the KV cache
(``model.kv_bytes_per_token × prompt_tokens``) leaves in one shard per NIC of the instance — under
tensor parallelism each accelerator holds the KV heads it computed — towards the decode instance
the placement policy picks (MLA models, whose latent is not split by heads, send one message per
request from one accelerator to one). All shards of one request form one ``group``; long prompts and
prefills that complete together make the incast at decode hosts.

Simplification, stated in the notes: the KV is sent when prefill completes, not streamed
layer by layer as some serving stacks do (that would spread the same bytes over the prefill).
"""

from __future__ import annotations

import math

import numpy as np

from fabric.workloads.hosts import HostContext
from fabric.workloads.profile import Disaggregated
from fabric.workloads.rows import Rows, arrival_times, sample_lengths

# Weights may fill at most this share of an instance's HBM; the rest holds KV cache and activations.
WEIGHT_HBM_SHARE = 0.8


def instance_size(weight_bytes: float, hbm_bytes: float, available: int) -> tuple[int, bool]:
    """Smallest power-of-two number of accelerators whose HBM holds the weights (≤ 80% full).

    Returns ``(size, capped)``; ``capped`` is True when even all ``available`` hosts are too few.

    Examples
    --------
    >>> instance_size(141.2e9, 80e9, 8)   # Llama-3-70B in BF16 on H100
    (4, False)
    """
    size = 1
    while size * hbm_bytes * WEIGHT_HBM_SHARE < weight_bytes and size < available:
        size *= 2
    capped = size * hbm_bytes * WEIGHT_HBM_SHARE < weight_bytes or size > available
    return min(size, available), capped


def disaggregated(p: Disaggregated, ctx: HostContext, rng: np.random.Generator, rows: Rows) -> list[str]:
    """Append the pattern's KV messages to ``rows``; return notes for the summary."""
    model = p.model
    notes: list[str] = []
    prefill_hosts = ctx.select_as(p.name, "prefill", p.prefill)
    decode_hosts = ctx.select_as(p.name, "decode", p.decode)
    overlap = sorted(set(prefill_hosts) & set(decode_hosts), key=ctx.all_hosts.index)
    if overlap:
        raise ctx.fail(p.decode.key, f"selects {', '.join(overlap)}, which also do prefill; KV transfer needs "
                                     f"separate prefill and decode hosts")
    p_acc = ctx.accelerator(p.prefill, prefill_hosts)
    d_acc = ctx.accelerator(p.decode, decode_hosts)
    tp_p = _instance(p.prefill, prefill_hosts, model, p_acc, ctx, notes, "prefill")
    tp_d = _instance(p.decode, decode_hosts, model, d_acc, ctx, notes, "decode")
    prefill_instances = [prefill_hosts[i * tp_p:(i + 1) * tp_p] for i in range(len(prefill_hosts) // tp_p)]
    decode_instances = [decode_hosts[i * tp_d:(i + 1) * tp_d] for i in range(len(decode_hosts) // tp_d)]

    arrivals = arrival_times(p.arrivals, p.start_s, p.stop_s, rng, p.trace)
    n = len(arrivals)
    prompt = sample_lengths(p.prompt_tokens, n, rng, p.trace, "prompt_tokens")
    output = sample_lengths(p.output_tokens, n, rng, p.trace, "output_tokens")

    instance_rate = tp_p * p_acc.prefill_tokens_per_s(model)
    mean_context = float(np.mean(prompt + output / 2)) if n else 1.0
    step_s = d_acc.decode_step_s(model, p.decode_batch, mean_context, shards=tp_d)
    ctx.compute[p.name] = {"prefill_tokens_per_s": instance_rate, "prefill_tp": tp_p, "decode_step_compute_s": step_s,
                           "accelerator_prefill": p_acc.name, "accelerator_decode": d_acc.name,
                           "source": f"catalog: {tp_p} x {p_acc.name} per prefill instance, {tp_d} x {d_acc.name} "
                                     f"per decode instance at batch {p.decode_batch} ({model.name})"}
    notes.append(f"{p.name}: prefill {len(prefill_instances)} x {tp_p} {p_acc.name} at "
                 f"{instance_rate:,.0f} tokens/s each; decode {len(decode_instances)} x {tp_d} {d_acc.name}, "
                 f"step {step_s * 1e3:.1f} ms at batch {p.decode_batch}; KV {model.kv_bytes_per_token:,} B/token "
                 f"({model.name}) sent at prefill completion")

    free_at = np.full(len(prefill_instances), p.start_s)
    if model.attention == "mla":
        # MLA's latent is not split by heads: serving stacks run attention data-parallel, so a
        # request's KV sits on one prefill accelerator and goes to one decode accelerator.
        decode_instances = [[h] for h in decode_hosts]
        shards = 1
        notes.append(f"{p.name}: {model.name} uses MLA: one KV message per request (data-parallel attention), "
                     f"decode placement over single hosts")
    else:
        shards = max(tp_p, tp_d)
    decode_busy: list[list[float]] = [[] for _ in decode_instances]
    placement_draws = rng.integers(0, len(decode_instances), size=n)
    dropped = 0
    ids = ctx.request_ids(n)
    sent = np.zeros(n, dtype=bool)
    prefill_start = np.zeros(n)
    prefill_done = np.zeros(n)
    for i in range(n):
        inst = int(np.argmin(free_at))           # first instance to free up (lowest index on ties)
        start = max(arrivals[i], free_at[inst])
        done = start + prompt[i] / instance_rate
        free_at[inst] = done
        prefill_start[i], prefill_done[i] = start, done
        if done >= p.stop_s:
            dropped += 1
            continue
        sent[i] = True
        d = _place(p.placement, i, done, decode_busy, placement_draws[i])
        decode_busy[d].append(done + output[i] * step_s)
        kv_bytes = model.kv_bytes(int(prompt[i]))
        shard_bytes = max(1, math.ceil(kv_bytes / shards))
        if shards == 1:
            src = [prefill_instances[inst][i % tp_p]]
            dst = [decode_instances[d][0]]
        else:
            src = [prefill_instances[inst][s % tp_p] for s in range(shards)]
            dst = [decode_instances[d][s % tp_d] for s in range(shards)]
        rows.add(np.full(shards, done), src, dst, shard_bytes, "kv", f"{p.name}/r{ids[i]}", ids[i], -1)
    ctx.requests.append({"request_id": ids[sent], "arrival_s": np.asarray(arrivals, dtype=np.float64)[sent],
                         "prefill_start_s": prefill_start[sent], "prefill_done_s": prefill_done[sent],
                         "prompt_tokens": np.asarray(prompt)[sent], "output_tokens": np.asarray(output)[sent]})
    if dropped:
        notes.append(f"{p.name}: {dropped} of {n} requests finish prefill after the window and send no KV")
    return notes


def _instance(sel, hosts, model, acc, ctx: HostContext, notes: list[str], what: str) -> int:
    if sel.instance_hosts:
        if sel.instance_hosts > len(hosts):
            raise ctx.fail(f"{sel.key}.instance_hosts", f"got {sel.instance_hosts}; only {len(hosts)} hosts selected")
        size = sel.instance_hosts
    else:
        size, capped = instance_size(model.weight_bytes, acc.hbm_bytes, len(hosts))
        if capped:
            notes.append(f"{what}: {model.name} weights ({model.weight_bytes / 1e9:.0f} GB) do not fit "
                         f"{size} {acc.name}; instance capped at the {size} selected hosts")
    if len(hosts) % size:
        notes.append(f"{what}: {len(hosts) % size} of {len(hosts)} hosts left idle (instances of {size})")
    return size


def _place(policy: str, i: int, now: float, busy: list[list[float]], draw: int) -> int:
    """Decode instance for request ``i``: round-robin, least active requests at ``now``, or random."""
    if policy == "round-robin":
        return i % len(busy)
    if policy == "random":
        return int(draw)
    for ends in busy:
        ends[:] = [t for t in ends if t > now]
    return min(range(len(busy)), key=lambda k: (len(busy[k]), k))
