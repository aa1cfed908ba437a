"""MoE expert-parallel decode: one dispatch and one combine all-to-all per MoE layer per step.

Every decode step, each EP rank holds ``batch_per_rank`` tokens; each token picks ``top_k`` of the
model's routed experts with probability from a power law over expert popularity (exponent ≈ 1.0
for DeepSeek-V3, ≈ 1.2 for Qwen3; 0 = uniform). Experts live ``experts / ranks`` to a rank, so a
rank holding hot experts receives more — the uneven traffic the fabric must absorb. Per MoE layer:

* dispatch, rank s → rank d: tokens of s routed to experts on d × ``dispatch_bytes_per_token``
  (FP8 + scales, DeepEP's format: 7,392 B for hidden 7168);
* combine, d → s: the same token count × ``combine_bytes_per_token`` (BF16: 14,336 B).

Tokens routed to experts on their own rank stay local (no message). Each phase of each layer of
each step is one ``group`` (a barrier over all ranks). Routing counts are drawn per source rank
as a multinomial over experts (top-k drawn with replacement — for k ≪ experts this differs from
sampling k distinct experts by well under 1/experts × k per token).

Steps follow the decode cadence (``step_interval``, or the catalog's decode step time); within a
step, MoE layer ``l`` starts at its layer's share of the step and its combine follows after
``combine_offset`` × one layer time. ``layers_emulated`` < MoE layers keeps an evenly spaced
subset of layers (message budget of a small emulator); the notes say so, and that per-step bytes
are that fraction of the real ones.
"""

from __future__ import annotations

import numpy as np

from fabric.workloads.hosts import HostContext
from fabric.workloads.profile import MAX_MESSAGES, MoEDecode
from fabric.workloads.rows import Rows, place_experts, power_law_popularity


def emulated_layers(total: int, emulated: int) -> np.ndarray:
    """Evenly spaced indices of the layers to emulate, e.g. 4 of 58 → [0, 14, 29, 43].

    Examples
    --------
    >>> emulated_layers(58, 4).tolist()
    [0, 14, 29, 43]
    """
    return np.floor(np.arange(emulated) * total / emulated).astype(np.int64)


def moe_step_interval_s(p: MoEDecode, acc, ranks: int) -> float:
    """Decode step time: the profile's, or the catalog's for the whole EP batch over ``ranks``."""
    if p.step_interval_s is not None:
        return p.step_interval_s
    return acc.decode_step_s(p.model, p.batch_per_rank * ranks, p.context_tokens, shards=ranks)


def moe_decode(p: MoEDecode, ctx: HostContext, rng: np.random.Generator, rows: Rows) -> list[str]:
    """Append dispatch and combine messages of every emulated MoE layer of every step."""
    model = p.model
    ranks = ctx.select_as(p.name, "ranks", p.ranks, minimum=2)
    n_ranks = len(ranks)
    if n_ranks > model.experts:
        raise ctx.fail(p.ranks.key, f"selects {n_ranks} ranks but {model.name} has only {model.experts} routed "
                                    f"experts; select at most {model.experts} hosts")
    acc = ctx.accelerator(p.ranks, ranks)
    step_s = moe_step_interval_s(p, acc, n_ranks)
    ctx.compute[p.name] = {"decode_step_compute_s": step_s, "accelerator": acc.name, "ranks": n_ranks,
                           "source": "profile step_interval" if p.step_interval_s is not None else
                           f"catalog: {acc.name} decode step of {model.name}, batch {p.batch_per_rank} x {n_ranks} "
                           f"ranks (fabric.catalog.Accelerator.decode_step_s)"}
    layer_s = step_s / model.layers
    # MoE layers are the model's last `moe_layers` (DeepSeek-V3: 3 dense layers first).
    first_moe = model.layers - model.moe_layers
    layers = emulated_layers(model.moe_layers, p.layers_emulated)
    n_steps = int(np.floor((p.stop_s - p.start_s) / step_s + 1e-9))
    if n_steps < 1:
        raise ctx.fail(f"{p.key}.step_interval", f"one decode step takes {step_s * 1e3:.1f} ms, longer than the "
                                                 f"pattern's window; lengthen the window or set step_interval")
    upper = n_steps * len(layers) * n_ranks * (n_ranks - 1) * 2
    if upper > MAX_MESSAGES:
        raise ctx.fail(f"{p.key}.layers_emulated",
                       f"{n_steps} steps x {len(layers)} layers x {n_ranks * (n_ranks - 1)} rank pairs x 2 phases "
                       f"= up to {upper:,} messages, above the {MAX_MESSAGES:,} a small emulator replays; "
                       f"lower layers_emulated, the window or the number of ranks")
    popularity = power_law_popularity(model.experts, p.exponent)
    tokens_routed = p.batch_per_rank * model.top_k
    # One placement per emulated layer: each layer has its own hot experts.
    placement = np.stack([place_experts(model.experts, n_ranks, p.expert_placement, rng) for _ in layers])
    onehot = np.zeros((len(layers), model.experts, n_ranks), dtype=np.int64)
    for li in range(len(layers)):
        onehot[li, np.arange(model.experts), placement[li]] = 1
    # counts[step, layer, src, expert] -> per destination rank
    counts = rng.multinomial(tokens_routed, popularity, size=(n_steps, len(layers), n_ranks))
    pair_tokens = np.einsum("klse,led->klsd", counts, onehot)

    k_idx, l_idx, s_idx, d_idx = np.nonzero(pair_tokens)
    remote = s_idx != d_idx
    k_idx, l_idx, s_idx, d_idx = k_idx[remote], l_idx[remote], s_idx[remote], d_idx[remote]
    tokens = pair_tokens[k_idx, l_idx, s_idx, d_idx]
    layer_no = layers[l_idx]
    t_dispatch = p.start_s + k_idx * step_s + (first_moe + layer_no) * layer_s
    t_combine = t_dispatch + p.combine_offset * layer_s
    host = np.asarray(ranks, dtype=object)
    group_base = np.char.add(np.char.add(f"{p.name}/s", k_idx.astype(str)), np.char.add("/l", layer_no.astype(str)))
    rows.add(t_dispatch, host[s_idx], host[d_idx], tokens * p.dispatch_bytes_per_token, "a2a_dispatch",
             np.char.add(group_base, "/dispatch").astype(object), -1, k_idx)
    rows.add(t_combine, host[d_idx], host[s_idx], tokens * p.combine_bytes_per_token, "a2a_combine",
             np.char.add(group_base, "/combine").astype(object), -1, k_idx)

    share = np.bincount(placement.ravel(), weights=np.tile(popularity, len(layers)), minlength=n_ranks)
    share = share / share.sum()
    notes = [f"{p.name}: EP{n_ranks} on {acc.name}, {model.name} ({model.experts} experts, top-{model.top_k}), "
             f"{p.batch_per_rank} tokens/rank/step, step {step_s * 1e3:.1f} ms, {n_steps} steps; popularity "
             f"exponent {p.exponent:g} -> hottest rank gets {share.max() * n_ranks:.2f}x the mean"]
    if p.layers_emulated < model.moe_layers:
        notes.append(f"{p.name}: emulating {p.layers_emulated} of {model.moe_layers} MoE layers per step "
                     f"(layers {', '.join(map(str, layers[:8]))}{'...' if len(layers) > 8 else ''}); per-step "
                     f"a2a bytes are {p.layers_emulated}/{model.moe_layers} of the real model's")
    return notes
