"""Disaggregated prefill → decode: the KV-cache transfer of every request.

Requests arrive (Poisson, bursty or a replayed trace) with prompt lengths from a heavy-tailed
distribution. Each goes to the prefill instance that frees up first (FCFS queue per instance);
prefill takes ``prompt_tokens / (instance hosts × prefill tokens/s per accelerator)``, the rate
coming from the prefill hosts' accelerator (fabric.catalog). When prefill completes, the KV cache
(``model.kv_bytes_per_token × prompt_tokens``) leaves in one shard per NIC of the larger of the two
instances — under tensor parallelism each accelerator holds the KV heads it computed — towards the
decode instance the placement policy picks (MLA models, whose latent is not split by heads, send
one message per request from one accelerator to one). All shards of one request form one
``group``; long prompts and prefills that complete together make the incast at decode hosts.

Stages per host group: a stage (prefill or decode) whose selector takes hosts of several host
groups, with no ``accelerator:`` override, forms its instances per group — an instance never mixes
groups — and each group's instances are sized (``instance_hosts``, else the fewest hosts whose HBM
holds the weights) and timed by that group's own accelerator. Hosts of a group that do not fill an
instance stay idle. With ``accelerator:`` every selected host is timed as that one type, as one
pool. ``ctx.compute`` records each (stage, group) pool under ``pools``.

Front end (optional ``tokenize:`` and ``detokenize:`` selectors on the design's front-end CPU
servers, :mod:`fabric.workloads.frontend`): prefill waits for the request's token ids (``tokens``
messages), and decode streams each step's output back (``stream`` messages); requests.parquet
records each request's front-end timeline, which TTFT counts (docs/economics.md §6).

Simplification, stated in the notes: the KV is sent when prefill completes, not streamed
layer by layer as some serving stacks do (that would spread the same bytes over the prefill).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fabric.catalog import Accelerator
from fabric.workloads.frontend import FrontEndTimeline, front_end
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


@dataclass
class Pool:
    """The hosts of one stage that one accelerator times: one host group, or all of an override's."""

    stage: str                   # "prefill" | "decode"
    group: str                   # host group name ("a+b" when an `accelerator:` override spans groups)
    acc: Accelerator
    hosts: list[str]             # the hosts of this group the selector selected
    size: int                    # hosts per instance
    instances: list[list[str]]


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
    p_pools = _pools(p.prefill, prefill_hosts, model, ctx, notes, "prefill")
    d_pools = _pools(p.decode, decode_hosts, model, ctx, notes, "decode")
    front = front_end(p.tokenize, p.detokenize, p.name, ctx, notes)

    arrivals = arrival_times(p.arrivals, p.start_s, p.stop_s, rng, p.trace)
    n = len(arrivals)
    prompt = sample_lengths(p.prompt_tokens, n, rng, p.trace, "prompt_tokens")
    output = sample_lengths(p.output_tokens, n, rng, p.trace, "output_tokens")

    # Prefill instances in pool order, each with its own rate (instance hosts × its accelerator's).
    prefill_instances = [inst for pool in p_pools for inst in pool.instances]
    pool_rate = [pool.size * pool.acc.prefill_tokens_per_s(model) for pool in p_pools]
    instance_rate = [rate for pool, rate in zip(p_pools, pool_rate) for _ in pool.instances]
    mean_context = float(np.mean(prompt + output / 2)) if n else 1.0
    pool_step = [pool.acc.decode_step_s(model, p.decode_batch, mean_context, shards=pool.size) for pool in d_pools]

    mla = model.attention == "mla"
    if mla:
        # MLA's latent is not split by heads: serving stacks run attention data-parallel, so a
        # request's KV sits on one prefill accelerator and goes to one decode accelerator: decode
        # is placed over single hosts (every selected host of a pool that forms an instance), each
        # timed by its pool's step.
        decode_units = [(pool, step) for pool, step in zip(d_pools, pool_step) if pool.instances]
        decode_instances = [[h] for pool, _ in decode_units for h in pool.hosts]
        instance_step = [step for pool, step in decode_units for _ in pool.hosts]
    else:
        decode_instances = [inst for pool in d_pools for inst in pool.instances]
        instance_step = [step for pool, step in zip(d_pools, pool_step) for _ in pool.instances]

    _record(p, ctx, model, p_pools, instance_rate, d_pools, pool_step, instance_step, mla, prompt, output)
    notes.append(_summary(p, model, p_pools, pool_rate, d_pools, pool_step))

    free_at = np.full(len(prefill_instances), p.start_s)
    if mla:
        notes.append(f"{p.name}: {model.name} uses MLA: one KV message per request (data-parallel attention), "
                     f"decode placement over single hosts")
    decode_busy: list[list[float]] = [[] for _ in decode_instances]
    placement_draws = rng.integers(0, len(decode_instances), size=n)
    dropped = 0
    ids = ctx.request_ids(n)
    sent = np.zeros(n, dtype=bool)
    prefill_start = np.zeros(n)
    prefill_done = np.zeros(n)
    ready = np.asarray(arrivals, dtype=np.float64).copy()   # when prefill could start: arrival, or token ids in
    timeline = FrontEndTimeline(n)
    placed: list[tuple[int, int, float]] = []                # (request, decode instance, KV in) for the stream
    for i in range(n):
        inst = int(np.argmin(free_at))           # first instance to free up (lowest index on ties)
        if front.tokenize:
            ready[i] = front.tokenize_request(i, arrivals[i], int(prompt[i]), prefill_instances[inst], ids[i],
                                              timeline, rows, p.name)
        start = max(ready[i], free_at[inst])
        done = start + prompt[i] / instance_rate[inst]
        free_at[inst] = done
        prefill_start[i], prefill_done[i] = start, done
        if done >= p.stop_s:
            dropped += 1
            continue
        sent[i] = True
        d = _place(p.placement, i, done, decode_busy, placement_draws[i])
        decode_busy[d].append(done + output[i] * instance_step[d])
        source, sink = prefill_instances[inst], decode_instances[d]
        tp_p, tp_d = len(source), len(sink)
        shards = 1 if mla else max(tp_p, tp_d)
        kv_bytes = model.kv_bytes(int(prompt[i]))
        shard_bytes = max(1, math.ceil(kv_bytes / shards))
        if shards == 1:
            src = [source[i % tp_p]]
            dst = [sink[0]]
        else:
            src = [source[s % tp_p] for s in range(shards)]
            dst = [sink[s % tp_d] for s in range(shards)]
        rows.add(np.full(shards, done), src, dst, shard_bytes, "kv", f"{p.name}/r{ids[i]}", ids[i], -1)
        kv_in = done + max(shard_bytes * 8.0 / min(ctx.nic_bps(a), ctx.nic_bps(b)) for a, b in zip(src, dst))
        placed.append((i, d, kv_in))
    if front.detokenize:
        front.stream(placed, decode_instances, instance_step, output, p.stop_s, timeline, rows, p.name)
    ctx.requests.append({"request_id": ids[sent], "arrival_s": np.asarray(arrivals, dtype=np.float64)[sent],
                         "prefill_start_s": prefill_start[sent], "prefill_done_s": prefill_done[sent],
                         "prompt_tokens": np.asarray(prompt)[sent], "output_tokens": np.asarray(output)[sent],
                         **timeline.columns(sent)})
    if front.tokenize or front.detokenize:
        notes.append(front.summary(p.name))
        ctx.compute[p.name]["frontend"] = front.facts()
    if dropped:
        notes.append(f"{p.name}: {dropped} of {n} requests finish prefill after the window and send no KV")
    return notes


def _pools(sel, hosts: list[str], model, ctx: HostContext, notes: list[str], what: str) -> list[Pool]:
    """The stage's pools: one per host group of ``hosts``, or one for all of them under `accelerator:`."""
    by_group: dict[str, list[str]] = {}
    for h in hosts:
        by_group.setdefault(ctx.graph.nodes[h]["group"], []).append(h)
    design_order = list(dict.fromkeys(ctx.graph.nodes[h]["group"] for h in ctx.all_hosts))
    groups = sorted(by_group, key=design_order.index)
    if sel.accelerator or len(groups) == 1:
        # One pool, exactly as before stages were placed per group.
        acc = ctx.accelerator(sel, hosts)
        size = _instance(sel, hosts, model, acc, ctx, notes, what)
        return [Pool(what, "+".join(groups), acc, hosts, size, _split(hosts, size))]
    pools = []
    for group in groups:
        members = by_group[group]
        acc = ctx.accelerator(sel, members)
        size = _size(sel, members, model, acc, notes, f"{what} group {group}", "the group's")
        if size > len(members):
            notes.append(f"{what} group {group}: all {len(members)} hosts left idle (instances of {size} hosts; "
                         f"an instance never mixes host groups)")
        elif len(members) % size:
            notes.append(f"{what} group {group}: {len(members) % size} of {len(members)} hosts left idle "
                         f"(instances of {size})")
        pools.append(Pool(what, group, acc, members, size, _split(members, size)))
    if not any(pool.instances for pool in pools):
        raise ctx.fail(f"{sel.key}.instance_hosts",
                       f"got {sel.instance_hosts}; no selected host group has that many hosts "
                       f"({', '.join(f'{pool.group}: {len(pool.hosts)}' for pool in pools)}), and an instance "
                       f"never mixes host groups")
    return pools


def _split(hosts: list[str], size: int) -> list[list[str]]:
    return [hosts[i * size:(i + 1) * size] for i in range(len(hosts) // size)]


def _size(sel, hosts: list[str], model, acc, notes: list[str], label: str, whose: str) -> int:
    """Hosts per instance: the selector's ``instance_hosts``, else the fewest whose HBM holds the weights."""
    if sel.instance_hosts:
        return sel.instance_hosts
    size, capped = instance_size(model.weight_bytes, acc.hbm_bytes, len(hosts))
    if capped:
        notes.append(f"{label}: {model.name} weights ({model.weight_bytes / 1e9:.0f} GB) do not fit "
                     f"{size} {acc.name}; instance capped at {whose} {size} selected hosts")
    return size


def _instance(sel, hosts, model, acc, ctx: HostContext, notes: list[str], what: str) -> int:
    if sel.instance_hosts and sel.instance_hosts > len(hosts):
        raise ctx.fail(f"{sel.key}.instance_hosts", f"got {sel.instance_hosts}; only {len(hosts)} hosts selected")
    size = _size(sel, hosts, model, acc, notes, what, "the")
    if len(hosts) % size:
        notes.append(f"{what}: {len(hosts) % size} of {len(hosts)} hosts left idle (instances of {size})")
    return size


def _record(p: Disaggregated, ctx: HostContext, model, p_pools: list[Pool], instance_rate: list[float],
            d_pools: list[Pool], pool_step: list[float], instance_step: list[float], mla: bool,
            prompt: np.ndarray, output: np.ndarray) -> None:
    """``ctx.compute[p.name]``: the timing the schedule was built with (run.json; economics reads it),
    and the load the profile offers (every generated request, sent or not: pools are sized for it)."""
    if len(p_pools) == 1:
        prefill_rate = instance_rate[0]            # the first (every) prefill instance's rate
    else:                                          # capacity-weighted mean instance rate
        prefill_rate = sum(r * r for r in instance_rate) / sum(instance_rate)
    steps = set(instance_step)
    step_s = instance_step[0] if len(steps) == 1 else sum(instance_step) / len(instance_step)
    pools = []
    for pool in p_pools:
        pools.append({"stage": "prefill", "group": pool.group, "accelerator": pool.acc.name,
                      "hosts": len(pool.hosts), "instances": len(pool.instances), "instance_hosts": pool.size,
                      "tokens_per_s_per_accelerator": float(pool.acc.prefill_tokens_per_s(model))})
    for pool, step in zip(d_pools, pool_step):
        # MLA decodes over single hosts (each at the pool's step): batch sequences per accelerator.
        used = mla and bool(pool.instances)
        instances, size = (len(pool.hosts), 1) if used else (len(pool.instances), pool.size)
        pools.append({"stage": "decode", "group": pool.group, "accelerator": pool.acc.name,
                      "hosts": len(pool.hosts), "instances": instances, "instance_hosts": size,
                      "tokens_per_s_per_accelerator": float(p.decode_batch / (step * size)),
                      "step_s": float(step), "batch": int(p.decode_batch)})
    ctx.compute[p.name] = {
        "prefill_tokens_per_s": float(prefill_rate), "prefill_tp": p_pools[0].size,
        "decode_step_compute_s": float(step_s),
        "accelerator_prefill": "+".join(pool.acc.name for pool in p_pools),
        "accelerator_decode": "+".join(pool.acc.name for pool in d_pools),
        "source": f"catalog: {_sizes(p_pools)} per prefill instance, {_sizes(d_pools)} per decode instance at "
                  f"batch {p.decode_batch} ({model.name})",
        "pools": pools,
        "requests_offered": int(len(prompt)),
        "offered_requests_per_s": float(len(prompt) / (p.stop_s - p.start_s)) if p.stop_s > p.start_s else 0.0,
        "prompt_tokens_mean": float(np.mean(prompt)) if len(prompt) else 0.0,
        "output_tokens_mean": float(np.mean(output)) if len(output) else 0.0}


def _sizes(pools: list[Pool]) -> str:
    return " or ".join(f"{pool.size} x {pool.acc.name}" for pool in pools)


def _summary(p: Disaggregated, model, p_pools: list[Pool], pool_rate: list[float], d_pools: list[Pool],
             pool_step: list[float]) -> str:
    prefill = ", ".join(f"{len(pool.instances)} x {pool.size} {pool.acc.name} at {rate:,.0f} tokens/s each"
                        for pool, rate in zip(p_pools, pool_rate))
    if len(d_pools) == 1:
        pool = d_pools[0]
        decode = f"{len(pool.instances)} x {pool.size} {pool.acc.name}, step {pool_step[0] * 1e3:.1f} ms"
    else:
        decode = ", ".join(f"{len(pool.instances)} x {pool.size} {pool.acc.name} step {step * 1e3:.1f} ms"
                           for pool, step in zip(d_pools, pool_step))
    return (f"{p.name}: prefill {prefill}; decode {decode} at batch {p.decode_batch}; KV "
            f"{model.kv_bytes_per_token:,} B/token ({model.name}) sent at prefill completion")


def _place(policy: str, i: int, now: float, busy: list[list[float]], draw: int) -> int:
    """Decode instance for request ``i``: round-robin, least active requests at ``now``, or random."""
    if policy == "round-robin":
        return i % len(busy)
    if policy == "random":
        return int(draw)
    for ends in busy:
        ends[:] = [t for t in ends if t > now]
    return min(range(len(busy)), key=lambda k: (len(busy[k]), k))
