"""Tensor-parallel ring all-reduce across hosts, per layer, at decode or prefill sizes.

When tensor parallelism spans nodes, every transformer layer does two all-reduces (after
attention and after the MLP) of ``tokens × hidden × 2`` bytes (BF16 activations): ``tokens`` is the
decode batch (latency-bound, hundreds per token) or the prefill chunk (bandwidth-bound).
docs/economics.md §2.

A ring all-reduce over N ranks is 2(N−1) steps; in each, every rank sends ``size / N`` bytes to
its ring successor. The schedule is open loop, so step j of a collective starts at its ideal time
``j × (chunk × 8 / NIC rate + hop_latency)`` after the collective: a late step in the emulation
shows up as a late group completion, which is what the analysis measures. Every collective is
one ``group``; ``step`` is the decode (or prefill-chunk) step index.

Steps follow the decode step time (``decode``) or the chunk's prefill time (``prefill``) from the
catalog unless ``step_interval`` is given; ``layers_emulated`` keeps an evenly spaced subset of
layers, and the notes say so.
"""

from __future__ import annotations

import math

import numpy as np

from fabric.workloads.hosts import HostContext
from fabric.workloads.moe import emulated_layers
from fabric.workloads.profile import MAX_MESSAGES, AllReduce
from fabric.workloads.rows import Rows

ALLREDUCES_PER_LAYER = 2   # attention output and MLP output (Megatron-style TP)


def allreduce_step_interval_s(p: AllReduce, acc, tp: int) -> float:
    """Time between steps: the profile's, else the catalog's decode step or prefill-chunk time."""
    if p.step_interval_s is not None:
        return p.step_interval_s
    if p.phase == "decode":
        return acc.decode_step_s(p.model, p.tokens, p.context_tokens, shards=tp)
    return p.tokens / (tp * acc.prefill_tokens_per_s(p.model))


def allreduce(p: AllReduce, ctx: HostContext, rng: np.random.Generator, rows: Rows) -> list[str]:
    """Append ring all-reduce messages of every emulated layer of every step, for each TP group."""
    model = p.model
    ranks = ctx.select_as(p.name, "ranks", p.ranks, minimum=2)
    tp = p.tp or len(ranks)
    if tp > len(ranks):
        raise ctx.fail(f"{p.key}.tp", f"got {tp}; only {len(ranks)} ranks selected ({p.ranks.describe()})")
    groups = [ranks[i * tp:(i + 1) * tp] for i in range(len(ranks) // tp)]
    acc = ctx.accelerator(p.ranks, ranks)
    step_s = allreduce_step_interval_s(p, acc, tp)
    ctx.compute[p.name] = {f"{p.phase}_step_compute_s": step_s, "accelerator": acc.name, "tp": tp,
                           "source": "profile step_interval" if p.step_interval_s is not None else
                           f"catalog: {acc.name} {p.phase} step of {model.name} over TP {tp}"}
    layer_s = step_s / model.layers
    layers = emulated_layers(model.layers, p.layers_emulated)
    n_steps = int(np.floor((p.stop_s - p.start_s) / step_s + 1e-9))
    if n_steps < 1:
        raise ctx.fail(f"{p.key}.step_interval", f"one {p.phase} step takes {step_s * 1e3:.1f} ms, longer than "
                                                 f"the pattern's window; lengthen it, lower tokens or set step_interval")
    ring_steps = 2 * (tp - 1)
    upper = n_steps * len(layers) * ALLREDUCES_PER_LAYER * ring_steps * tp * len(groups)
    if upper > MAX_MESSAGES:
        raise ctx.fail(f"{p.key}.layers_emulated",
                       f"{upper:,} messages, above the {MAX_MESSAGES:,} a small emulator replays; lower "
                       f"layers_emulated, the window or tp")
    size_bytes = p.tokens * model.hidden * 2
    chunk = math.ceil(size_bytes / tp)

    # Index grid: step k, layer l, which all-reduce a, ring step j, rank r (per group).
    k, li, a, j, r = np.meshgrid(np.arange(n_steps), np.arange(len(layers)), np.arange(ALLREDUCES_PER_LAYER),
                                 np.arange(ring_steps), np.arange(tp), indexing="ij")
    k, li, a, j, r = (x.ravel() for x in (k, li, a, j, r))
    layer_no = layers[li]
    for gi, members in enumerate(groups):
        # The slowest NIC of the ring sets the ideal pace of its steps.
        nic = min(ctx.nic_bps(h) for h in members)
        hop_s = chunk * 8 / nic + p.hop_latency_s
        t0 = p.start_s + k * step_s + layer_no * layer_s + a * (layer_s / ALLREDUCES_PER_LAYER)
        host = np.asarray(members, dtype=object)
        group = np.char.add(np.char.add(np.char.add(f"{p.name}/g{gi}/s", k.astype(str)),
                                        np.char.add("/l", layer_no.astype(str))),
                            np.where(a == 0, "/attn", "/mlp"))
        rows.add(t0 + j * hop_s, host[r], host[(r + 1) % tp], chunk, "allreduce", group.astype(object), -1, k)

    notes = [f"{p.name}: {len(groups)} TP{tp} ring(s) on {acc.name}, {p.phase} all-reduce of "
             f"{p.tokens} tokens x {model.hidden} x 2 B = {size_bytes / 1e6:.2f} MB, {ring_steps} ring steps of "
             f"{chunk / 1e3:.0f} KB, step {step_s * 1e3:.1f} ms, {n_steps} steps"]
    if len(ranks) % tp:
        notes.append(f"{p.name}: {len(ranks) % tp} selected hosts left out (groups of {tp})")
    if p.layers_emulated < model.layers:
        notes.append(f"{p.name}: emulating {p.layers_emulated} of {model.layers} layers per step "
                     f"({ALLREDUCES_PER_LAYER} all-reduces each); per-step bytes are "
                     f"{p.layers_emulated}/{model.layers} of the real model's")
    return notes
