"""Derating: measured completion times of a run directory -> η per traffic pattern
(docs/economics.md §2). Completion times come from :mod:`fabric.analysis.completion`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from fabric import rundir
from fabric.analysis.completion import recovery_completion_ns
from fabric.analysis.metrics import idle_path_delay_ns, percentiles
from fabric.economics.costs import (
    DEFAULTS,
    IETF_SLO,
    SLO_BY_MODEL,
    CostFile,
    Ledger,
    _catalog_accelerator,
)
from fabric.errors import FabricError, RunDirError
from fabric.workloads.patterns import eta_role_of, kinds_of_role

# Message kinds by η role, from the one registry of traffic patterns.
A2A_KINDS = kinds_of_role("moe")
TP_KINDS = kinds_of_role("tp")
KV_KINDS = kinds_of_role("kv")


# --------------------------------------------------------------------------------------------
# Reading a run directory
# --------------------------------------------------------------------------------------------

def workload_from_run(run: dict, run_dir: Path | None = None) -> dict:
    """Workload facts economics uses, flattened from run.json["workload"].

    Read directly: ``model`` (name or mapping with ``name``), ``layers_emulated`` /
    ``moe_layers_emulated`` / ``tp_layers_emulated``, ``layers`` / ``moe_layers`` / ``tp_layers``,
    ``prefill_compute_s``, ``decode_step_compute_s``, ``overlap_fraction``, ``slo``. Else, from a
    ``patterns`` list (``type`` moe_decode / allreduce with ``layers_emulated`` and ``model``), or
    by loading the profile at ``path`` when the file is still there.
    """
    w = run.get("workload") or (run.get("specs") or {}).get("workload") or {}
    w = dict(w) if isinstance(w, dict) else {}
    if isinstance(w.get("model"), dict):
        w["model"] = w["model"].get("name")
    patterns = w.get("patterns") if isinstance(w.get("patterns"), list) else None
    if patterns is None and w.get("path") and not w.get("model"):
        path = Path(w["path"])
        if not path.exists() and run_dir is not None:
            path = Path(run_dir) / w["path"]
        if path.exists():
            try:
                from fabric.workloads.profile import load_workload
                prof = load_workload(path)
            except (FabricError, ImportError):
                prof = None
            if prof is not None:
                w.setdefault("model", prof.model.name if prof.model else None)
                patterns = [{"type": pt.type, "layers_emulated": getattr(pt, "layers_emulated", 0),
                             "model": pt.model.name if pt.model else None} for pt in prof.patterns]
    for pt in patterns or []:
        if not isinstance(pt, dict):
            continue
        role = eta_role_of(pt.get("type"))
        label = role if role in ("moe", "tp") else None  # the decode patterns emulate a subset of layers
        mname = pt["model"].get("name") if isinstance(pt.get("model"), dict) else pt.get("model")
        if label and pt.get("layers_emulated"):
            w.setdefault(f"{label}_layers_emulated", pt["layers_emulated"])
        if mname and not w.get("model"):
            w["model"] = mname
    return w


def _first(mapping: dict, *names, default=None):
    for n in names:
        if isinstance(mapping, dict) and mapping.get(n) is not None:
            return mapping[n]
    return default


def _idle_path_delay_s(run: dict, run_dir: Path, costs: CostFile, led: Ledger) -> float:
    cf = f"cost file {costs.source}"
    if costs.idle_path_delay_s is not None:
        return led.use("idle_path_delay_s", costs.idle_path_delay_s, "s", cf)
    if run.get("idle_path_delay_ns") is not None:
        return led.use("idle_path_delay_s", float(run["idle_path_delay_ns"]) / 1e9, "s", "run.json idle_path_delay_ns")
    path = Path(run_dir) / "noise.parquet"
    if path.exists():
        noise = pd.read_parquet(path, columns=["tx_ns", "rx_ns"])
        received = int((noise["rx_ns"] >= 0).sum())
        if received:
            owd_s = max(float(idle_path_delay_ns(noise)), 0.0) / 1e9
            return led.use("idle_path_delay_s", owd_s, "s",
                           f"noise.parquet: nearest-rank median idle one-way delay over {received} probe packets")
    return led.pick("idle_path_delay_s")


def message_times(run_dir: Path, costs: CostFile | None = None, led: Ledger | None = None,
                  run: dict | None = None, host_rate_bps: float | None = None,
                  cache: dict | None = None) -> pd.DataFrame:
    """One row per scheduled message with ideal and measured completion (seconds from workload start).

    Columns: ``msg_id, kind, group, request_id, step, src, dst, bytes, t_start_s, ideal_done_s,
    measured_done_s, recovered`` (``recovered``: the message lost packets, or never showed up in
    messages.parquet, and its completion comes from the loss-recovery model). ``cache`` (a dict
    the caller keeps) saves re-reading the run when only prices change (sensitivity).
    """
    from fabric.rundir import read_run_json
    from fabric.schedule import read_schedule
    run_dir = Path(run_dir)
    costs = costs or CostFile()
    led = led or Ledger()
    run = run if run is not None else read_run_json(run_dir)
    if host_rate_bps is None:
        host_rate_bps = float(rundir.fabric_spec(run, f"{run_dir}/run.json").host_link_rate_bps)
    rate = led.use("host_link_rate_bps", float(host_rate_bps), "bit/s",
                   "run.json fabric design: host_link_rate (the fastest host's in a mix of NICs); used only where a "
                   "message's own NIC rates are not recorded")
    idle = _idle_path_delay_s(run, run_dir, costs, led)
    lr = run.get("loss_recovery") or {}
    rto = led.pick("loss_recovery.rto_s", (costs.rto_s, f"cost file {costs.source}"),
                   (lr.get("rto_ns") / 1e9 if lr.get("rto_ns") is not None else None, "run.json loss_recovery.rto_ns"))

    key = (str(run_dir), rate, idle, rto)
    if cache is not None and key in cache:
        return cache[key].copy()
    from fabric.analysis.run_metrics import completions, read_frames
    frames = read_frames(run_dir, packets_required=False)
    scale_k = float(run.get("scale_k", 1) or 1)
    # Every completion time comes from the one model of fabric.analysis.completion; a run without
    # link counters (hand-made) falls back to the design's host link rate, emulated (÷ k).
    comp, prep = completions(frames, fallback_rate_bps=rate / scale_k, rto_ns=rto * 1e9, idle_ns=idle * 1e9)
    msgs = prep["messages"]
    comp = comp.assign(msg_id=msgs["msg_id"].to_numpy(), t_sched_ns=msgs["t_sched_ns"].to_numpy())
    sched_path = run_dir / "schedule.parquet"
    t0_ns = run.get("t0_ns")
    if sched_path.exists():
        sched = read_schedule(sched_path)
        unknown = set(msgs["msg_id"]) - set(sched["msg_id"])
        if unknown:
            raise RunDirError(f"{run_dir}: messages.parquet has {len(unknown)} msg_id values that schedule.parquet "
                              f"lacks (e.g. {min(unknown)}); the two files are from different runs")
        frame = sched.merge(comp, on="msg_id", how="left")
    else:
        frame = msgs.drop(columns=["t_sched_ns"]).merge(comp, on="msg_id", how="left")
        if t0_ns is None:
            t0_ns = int(frame["t_sched_ns"].min()) if len(frame) else 0
        frame["t_start_s"] = (frame["t_sched_ns"] - t0_ns) / 1e9
    frame = frame.reset_index(drop=True)
    frame["ideal_done_s"] = frame["t_start_s"] + frame["ideal_ns"] / 1e9
    measured = frame["t_start_s"] + frame["mct_ns"] / 1e9
    missing = frame["mct_ns"].isna()
    if missing.any():
        # A scheduled message with no record was never delivered: the loss-recovery model from its
        # scheduled start, resending all of it (real bytes at the real line rate: same time).
        # Its bottleneck NIC (sender's or receiver's, as built) sets its line rate.
        sub = frame[missing]
        nic = rundir.host_rates_bps(run)
        line_bps = np.minimum(sub["src"].map(nic).fillna(rate).to_numpy(np.float64),
                              sub["dst"].map(nic).fillna(rate).to_numpy(np.float64))
        measured[missing] = sub["t_start_s"] + recovery_completion_ns(
            np.zeros(len(sub)), sub["bytes"].to_numpy(np.float64), line_bps, rto * 1e9, idle * 1e9) / 1e9
        frame.loc[missing, "ideal_done_s"] = sub["t_start_s"] + sub["bytes"] * 8.0 / line_bps + idle
    frame["recovered"] = frame["recovered"].fillna(True).astype(bool) | missing
    frame["measured_done_s"] = measured.astype("float64")
    cols = ["msg_id", "kind", "group", "request_id", "step", "src", "dst", "bytes", "t_start_s",
            "ideal_done_s", "measured_done_s", "recovered"]
    if cache is not None:
        cache[key] = frame[cols].copy()
    return frame[cols]


# --------------------------------------------------------------------------------------------
# Derating
# --------------------------------------------------------------------------------------------

def group_completions(frame: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Per group: start (first member's start), ideal and measured completion time (max − start)."""
    g = frame.groupby(by, sort=True)
    start = g["t_start_s"].min()
    out = pd.DataFrame({
        "start_s": start,
        "ideal_s": g["ideal_done_s"].max() - start,
        "measured_s": g["measured_done_s"].max() - start,
        "messages": g.size(),
        "recovered": g["recovered"].sum(),
    })
    return out


def nearest_rank(values, q: float) -> float:
    """Nearest-rank q-th percentile (docs/metrics.md), by :func:`fabric.analysis.metrics.percentiles`."""
    return percentiles(np.asarray(values, dtype="float64"), [("q", int(round(q * 1000)))])["q"]


def request_keys(kv: pd.DataFrame) -> np.ndarray:
    """A request's key for its KV messages: ``r<request_id>``, else ``g<group>`` (hand-made schedules)."""
    return np.where(kv["request_id"] >= 0, "r" + kv["request_id"].astype(str), "g" + kv["group"].astype(str))


def _per_request(value, index: pd.Index) -> pd.Series:
    """A number, or a Series indexed by request key (requests it lacks: 0), on ``index``."""
    if isinstance(value, pd.Series):
        return value.reindex(index).fillna(0.0)
    return pd.Series(float(value), index=index)


def kv_ttft(frame: pd.DataFrame, prefill_compute_s, first_decode_step_s: float, queue_s=0.0, front=None):
    """Per request: (KV groups, TTFT on the ideal fabric, TTFT measured), or None without KV.

    TTFT = queueing before prefill + prefill compute + KV group completion + first decode step,
    plus, with a front end (``front``, :func:`front_end_ttft`), its CPU time and its two hops;
    ``prefill_compute_s`` and ``queue_s`` are numbers or Series indexed by request key.
    """
    kv = frame[frame["kind"].isin(KV_KINDS)]
    if kv.empty:
        return None
    groups = group_completions(kv.assign(_req=request_keys(kv)), "_req")
    before = _per_request(queue_s, groups.index) + _per_request(prefill_compute_s, groups.index)
    ideal = before + groups["ideal_s"] + first_decode_step_s
    measured = before + groups["measured_s"] + first_decode_step_s
    if front is not None:
        ideal = ideal + _per_request(front["ideal_s"], groups.index)
        measured = measured + _per_request(front["measured_s"], groups.index)
    return groups, ideal, measured


def front_end_ttft(frame: pd.DataFrame, timeline: pd.DataFrame) -> dict | None:
    """What a front end adds to each request's TTFT, or None when the run has none.

    Per request key: the CPU time (wait for a core + tokenize, and the first token's detokenize),
    the token-id hop (its ``tokens`` messages' completion) and the stream hop (completion of the
    ``stream`` message that carried its first token), ideal and measured. ``ideal_s`` and
    ``measured_s`` are their sums. A hop whose message is not in the run (sent before a
    ``--window``, or a first token after the run's end) counts 0 on both fabrics.
    """
    index = timeline.index
    nan = pd.Series(np.nan, index=index)
    tok_done = timeline.get("tokenize_done_s", nan)
    first = timeline.get("first_token_group", pd.Series("", index=index)).fillna("").astype(str)
    if tok_done.isna().all() and (first == "").all():
        return None
    cpu = (tok_done - timeline["arrival_s"]).fillna(0.0) + timeline.get("detokenize_s", nan).fillna(0.0)
    # Each hop per request (NaN: its message is not in the run, e.g. sent before a --window).
    hops = {}
    tokens = frame[frame["kind"] == "tokens"]
    if not tokens.empty:
        g = group_completions(tokens.assign(_req=request_keys(tokens)), "_req")
        hops["tokens"] = (g["ideal_s"].reindex(index), g["measured_s"].reindex(index))
    stream = frame[frame["kind"] == "stream"]
    if not stream.empty:
        g = group_completions(stream, "group")
        hops["stream"] = (first.map(g["ideal_s"]), first.map(g["measured_s"]))
    ideal, measured = cpu.copy(), cpu.copy()
    for hop_ideal, hop_measured in hops.values():
        ideal, measured = ideal + hop_ideal.fillna(0.0), measured + hop_measured.fillna(0.0)
    return {"ideal_s": ideal, "measured_s": measured, "cpu_s": cpu, "hops": hops}


def eta_kv(frame: pd.DataFrame, ttft_slo_s: float, prefill_compute_s, first_decode_step_s: float,
           queue_s=0.0, front=None) -> dict | None:
    """η_KV: share of requests meeting the TTFT SLO, measured ÷ ideal (DistServe goodput).

    ``prefill_compute_s`` and ``queue_s`` are numbers or Series indexed by request key; ``front``
    is :func:`front_end_ttft` (None: no front end).
    """
    found = kv_ttft(frame, prefill_compute_s, first_decode_step_s, queue_s, front)
    if found is None:
        return None
    groups, ttft_ideal, ttft_meas = found
    kv = frame[frame["kind"].isin(KV_KINDS)]
    queue = _per_request(queue_s, groups.index)
    prefill = _per_request(prefill_compute_s, groups.index)
    att_ideal = float((ttft_ideal <= ttft_slo_s).mean())
    att_meas = float((ttft_meas <= ttft_slo_s).mean())
    eta = None if att_ideal == 0 else att_meas / att_ideal
    return {
        "eta": eta, "requests": int(len(groups)), "messages": int(len(kv)),
        "recovered_messages": int(kv["recovered"].sum()),
        "ttft_slo_s": ttft_slo_s, "attainment_ideal": att_ideal, "attainment_measured": att_meas,
        "prefill_compute_s_mean": float(prefill.mean()), "first_decode_step_s": first_decode_step_s,
        "queue_before_prefill_mean_s": float(queue.mean()),
        "queue_before_prefill_p99_s": nearest_rank(queue, 99),
        "kv_completion_ideal_p50_s": nearest_rank(groups["ideal_s"], 50),
        "kv_completion_ideal_p99_s": nearest_rank(groups["ideal_s"], 99),
        "kv_completion_measured_p50_s": nearest_rank(groups["measured_s"], 50),
        "kv_completion_measured_p99_s": nearest_rank(groups["measured_s"], 99),
        "ttft_ideal_p99_s": nearest_rank(ttft_ideal, 99), "ttft_measured_p99_s": nearest_rank(ttft_meas, 99),
        "frontend": _front_end_figures(front, groups, queue, prefill, first_decode_step_s, ttft_meas),
        "note": (None if eta is not None else
                 "no request meets the TTFT SLO even on the ideal fabric: the SLO is out of reach for this "
                 "workload's compute, so the network is not what limits it (η_KV left out)"),
    }


def _front_end_figures(front, groups: pd.DataFrame, queue: pd.Series, prefill: pd.Series,
                       first_decode_step_s: float, ttft_measured: pd.Series) -> dict | None:
    """The front end's part of TTFT: its CPU time, each hop ideal and measured, and each part's
    share of the mean measured TTFT (the parts add up to 1)."""
    if front is None:
        return None
    index = groups.index
    cpu = front["cpu_s"].reindex(index).fillna(0.0)
    hop_measured = {name: h[1].reindex(index).fillna(0.0) for name, h in front["hops"].items()}
    parts = {"front-end CPU (tokenize, detokenize)": cpu, "token ids hop": hop_measured.get("tokens"),
             "queue before prefill": queue, "prefill": prefill, "KV transfer": groups["measured_s"],
             "first decode step": pd.Series(first_decode_step_s, index=index),
             "first token stream hop": hop_measured.get("stream")}
    total = float(ttft_measured.mean())
    out = {"cpu_mean_s": float(cpu.mean()),
           "ttft_share": {name: (float(v.mean()) / total if total > 0 else 0.0)
                          for name, v in parts.items() if v is not None}}
    for name, (ideal, measured) in front["hops"].items():
        seen = measured.reindex(index).notna()
        ideal, measured = ideal.reindex(index)[seen], measured.reindex(index)[seen]
        out[f"{name}_hop_requests"] = int(seen.sum())   # the rest had their hop outside the run
        out[f"{name}_hop_ideal_p50_s"] = nearest_rank(ideal, 50) if len(ideal) else None
        out[f"{name}_hop_measured_p50_s"] = nearest_rank(measured, 50) if len(measured) else None
        out[f"{name}_hop_measured_p99_s"] = nearest_rank(measured, 99) if len(measured) else None
    return out


def step_comm(frame: pd.DataFrame, kinds: tuple[str, ...]) -> pd.DataFrame | None:
    """Per decode step: Σ over the step's groups of group completion (ideal and measured), in s."""
    sub = frame[frame["kind"].isin(kinds)]
    if sub.empty:
        return None
    groups = group_completions(sub, ["step", "group"])
    per_step = groups.groupby(level="step")[["ideal_s", "measured_s", "recovered"]].sum()
    per_step["groups"] = groups.groupby(level="step").size()
    return per_step


def pattern_phase(pattern: dict) -> str:
    """``prefill`` for a collective stepped by prefill chunks, else ``decode`` (run.json pattern facts)."""
    if pattern.get("phase") in ("prefill", "decode"):
        return pattern["phase"]
    facts = pattern.get("compute")
    return "prefill" if isinstance(facts, dict) and "prefill_step_compute_s" in facts else "decode"


def layer_scale(workload: dict, label: str, full_default: int | None, led: Ledger,
                emulated: int | None = None, what: str = "run.json workload") -> float:
    """Full layers ÷ emulated layers: the profile may emulate a subset of layers per step."""
    emulated = emulated or _first(workload, f"{label}_layers_emulated", "layers_emulated")
    full = _first(workload, f"{label}_layers", "layers", default=full_default)
    if emulated and full:
        return led.use(f"{label}.layer_scale", float(full) / float(emulated), "",
                       f"{what}: {full} layers, {emulated} emulated")
    return led.use(f"{label}.layer_scale", 1.0, "", f"{what} states no emulated layer subset: all layers assumed "
                                                   f"emulated")


def role_steps(frame: pd.DataFrame, kinds: tuple[str, ...], run: dict, workload: dict, label: str,
               full_layers: int | None, phase: str, led: Ledger) -> tuple[pd.DataFrame | None, float]:
    """(per-step communication, layer scale) of the collectives of ``kinds`` in ``phase``.

    Each pattern recorded in run.json is taken on its own (its phase, its emulated layers): its
    groups are named ``<pattern>/...``. Messages of no recorded pattern are decode steps scaled by
    the workload's layers. Several patterns of one phase add up step by step, each scaled by its own
    layers (the scale returned is then 1).
    """
    sub = frame[frame["kind"].isin(kinds)]
    if sub.empty:
        return None, 1.0
    recorded = {str(pt["name"]): pt for pt in (run.get("workload") or {}).get("patterns") or []
                if isinstance(pt, dict) and pt.get("name")}
    prefix = sub["group"].astype(str).str.split("/", n=1).str[0]
    owner = prefix.where(prefix.isin(list(recorded)), "")
    parts = []
    for name, rows in sub.groupby(owner, sort=True):
        pt = recorded.get(name, {})
        if pattern_phase(pt) != phase:
            continue
        scale = layer_scale(workload, label, full_layers, led, pt.get("layers_emulated"),
                            f"run.json workload pattern {name!r}" if name else "run.json workload")
        parts.append((step_comm(rows, kinds), scale))
    if not parts:
        return None, 1.0
    if len(parts) == 1:
        return parts[0]
    scaled = [steps.assign(ideal_s=steps["ideal_s"] * sc, measured_s=steps["measured_s"] * sc) for steps, sc in parts]
    combined = pd.concat(scaled).groupby(level="step").sum()
    led.use(f"{label}.layer_scale", 1.0, "", f"{len(parts)} patterns, each scaled by its own layers before adding up")
    return combined, 1.0


def exposed_s(comm_s, window_s: float):
    """Communication a decode step waits for: what the compute window cannot hide."""
    return np.maximum(np.asarray(comm_s, dtype="float64") - window_s, 0.0)


def eta_tpot(per_step: pd.DataFrame, compute_s: float, layer_scale: float, overlap: float,
             tpot_slo_s: float | None) -> dict:
    """One pattern's TPOT alone: compute + exposed(scale × comm), η = mean ideal ÷ mean measured.

    The same for a prefill chunk's time (``tpot_*`` then means the chunk; no TPOT SLO applies, so
    ``tpot_slo_s`` is None). The hidden window is ``overlap × compute``. η is not capped: a value above 1 says the run
    measured faster than the model's ideal (noise), and capping it would bias means over repeats.
    """
    window = overlap * compute_s
    tpot_ideal = compute_s + exposed_s(layer_scale * per_step["ideal_s"], window)
    tpot_meas = compute_s + exposed_s(layer_scale * per_step["measured_s"], window)
    eta = float(tpot_ideal.mean() / tpot_meas.mean()) if tpot_meas.mean() > 0 else 1.0
    return {
        "eta": eta, "steps": int(len(per_step)), "groups": int(per_step["groups"].sum()),
        "recovered_messages": int(per_step["recovered"].sum()),
        "compute_s": compute_s, "layer_scale": layer_scale, "overlap_fraction": overlap,
        "comm_ideal_mean_s": float(per_step["ideal_s"].mean()), "comm_measured_mean_s": float(per_step["measured_s"].mean()),
        "comm_measured_p99_s": nearest_rank(per_step["measured_s"], 99),
        "tpot_ideal_mean_s": float(tpot_ideal.mean()), "tpot_measured_mean_s": float(tpot_meas.mean()),
        "tpot_ideal_p99_s": nearest_rank(tpot_ideal, 99), "tpot_measured_p99_s": nearest_rank(tpot_meas, 99),
        "tpot_slo_s": tpot_slo_s,
        "tpot_slo_met_measured": None if tpot_slo_s is None else bool(nearest_rank(tpot_meas, 99) <= tpot_slo_s),
    }


def eta_decode(compute_s: float, overlap: float, parts: list[tuple[pd.DataFrame, float]]) -> float:
    """The decode pool's η from ONE TPOT per step: compute + exposed(MoE + TP communication).

    ``parts`` is (per-step communication, layer scale) for each decode pattern in the run; their
    mean communication per step adds up (they run one after the other within a layer), and the
    compute is counted once (multiplying the patterns' own η would count it twice).
    """
    if not parts:
        return 1.0
    window = overlap * compute_s
    ideal = compute_s + float(exposed_s(sum(scale * steps["ideal_s"].mean() for steps, scale in parts), window))
    measured = compute_s + float(exposed_s(sum(scale * steps["measured_s"].mean() for steps, scale in parts), window))
    return ideal / measured if measured > 0 else 1.0


def combined_eta(eta_prefill: float, eta_decode: float, prefill_share: float, pool_model: str,
                 capacity_ratio: float = 1.0) -> float:
    """The cluster's η from its pools' (docs/economics.md §2).

    Input and output tokens come in a fixed proportion per request, so the pools serve requests
    together: with pools rebalanced to the load, each pool's accelerator time stretches by 1/η and
    η = 1 / (a/η_p + b/η_d) (a, b: the pools' shares of accelerator time); with fixed pools the
    slower pool caps the whole: η = min(β·η_p, η_d) / min(β, 1), β the prefill pool's ideal capacity
    over the decode pool's in requests/s (1 for pools that fit the load: η = min(η_p, η_d)).
    """
    if pool_model == "fixed":
        return min(capacity_ratio * eta_prefill, eta_decode) / min(capacity_ratio, 1.0)
    if eta_prefill <= 0 or eta_decode <= 0:
        return 0.0
    return 1.0 / (prefill_share / eta_prefill + (1.0 - prefill_share) / eta_decode)


def _model_or_none(name):
    if not name:
        return None
    try:
        from fabric.catalog import model
        return model(str(name))
    except FabricError:
        return None


def derating(run_dir: Path, costs: CostFile | None = None, led: Ledger | None = None,
             run: dict | None = None, spec=None, cache: dict | None = None, price_usd_per_hour=None) -> dict:
    """η per pattern and combined for one run directory (docs/economics.md §2).

    ``price_usd_per_hour(accelerator name)``, when given, weights the stages' η by what their
    accelerators cost in a rebalanced cluster (docs/economics.md §6); without it, by their count.
    """
    from fabric.rundir import read_run_json
    run_dir = Path(run_dir)
    costs = costs or CostFile()
    led = led or Ledger()
    cf = f"cost file {costs.source}"
    run = run if run is not None else read_run_json(run_dir)
    spec = spec or rundir.fabric_spec(run, f"{run_dir}/run.json")
    workload = workload_from_run(run, run_dir)
    frame = message_times(run_dir, costs, led, run, spec.host_link_rate_bps, cache)
    warnings: list[str] = []

    model_name = _first(workload, "model", "model_name")
    mdl = _model_or_none(model_name)
    if model_name:
        led.use("workload.model", str(model_name), "", "run.json workload.model"
                + ("" if mdl else " (not in the catalog: layer counts and SLOs fall back to defaults)"))
    slo_default = SLO_BY_MODEL.get(mdl.name if mdl else str(model_name), IETF_SLO)
    wslo = workload.get("slo") if isinstance(workload.get("slo"), dict) else {}

    def slo(name: str, file_value, keys: tuple[str, ...], default: float) -> float:
        stated = _first(wslo, *keys)
        if file_value is not None:
            return led.use(name, file_value, "s", cf)
        if stated is not None:
            return led.use(name, float(stated), "s", f"run.json workload.slo.{keys[0]}")
        return led.use(name, default, "s", slo_default[2])

    ttft_slo = slo("slo.ttft_p99_s", costs.ttft_slo_s, ("ttft_p99_s", "ttft_s"), slo_default[0])
    tpot_slo = slo("slo.tpot_p99_s", costs.tpot_slo_s, ("tpot_p99_s", "tpot_s"), slo_default[1])
    overlap = led.pick("serving.overlap_fraction", (costs.overlap_fraction, cf),
                       (_first(workload, "overlap_fraction"), "run.json workload.overlap_fraction"))

    # Each collective pattern on its own: decode and prefill all-reduces are different steps, and
    # each pattern emulates its own subset of layers.
    moe_full = mdl.moe_layers if mdl and mdl.moe_layers else (mdl.layers if mdl else None)
    moe_steps, scale_moe = role_steps(frame, A2A_KINDS, run, workload, "moe", moe_full, "decode", led)
    tp_steps, scale_tp = role_steps(frame, TP_KINDS, run, workload, "tp", mdl.layers if mdl else None, "decode", led)
    tp_prefill_steps, scale_tp_prefill = role_steps(frame, TP_KINDS, run, workload, "tp_prefill",
                                                    mdl.layers if mdl else None, "prefill", led)

    # Decode compute per step: stated, or calibrated so that the ideal step is DeepSeek's 1/21 s.
    ideal_comm = (0.0 if moe_steps is None else scale_moe * (1 - overlap) * moe_steps["ideal_s"].mean()) + \
                 (0.0 if tp_steps is None else scale_tp * (1 - overlap) * tp_steps["ideal_s"].mean())
    stated = costs.decode_step_compute_s if costs.decode_step_compute_s is not None else \
        _first(workload, "decode_step_compute_s", "decode_compute_s")
    generated = generator_compute(run, "decode_step_compute_s", ("moe_decode", "allreduce", "disaggregated"))
    if stated is not None:
        decode_compute = led.use("serving.decode_step_compute_s", float(stated), "s",
                                 cf if costs.decode_step_compute_s is not None else "run.json workload.decode_step_compute_s")
    elif generated is not None:
        # The compute time the schedule itself was built with (per model and accelerator).
        decode_compute = led.use("serving.decode_step_compute_s", generated[0], "s",
                                 f"run.json workload pattern {generated[1]!r}: {generated[2]}")
    else:
        target = DEFAULTS["serving.decode_step_s"]
        if moe_steps is not None or tp_steps is not None:
            warnings.append("decode compute per step back-solved from DeepSeek's 1/21 s step: the run records no "
                            "catalog compute for its decode patterns (re-run with this fabric version)")
        decode_compute = led.use("serving.decode_step_compute_s", max(target.value - ideal_comm, 0.0), "s",
                                 f"{target.source} (ideal network time per step {ideal_comm * 1e3:.3f} ms)")
    patterns: dict[str, dict | None] = {"kv": None, "moe": None, "tp": None, "tp_prefill": None}
    if moe_steps is not None:
        patterns["moe"] = eta_tpot(moe_steps, decode_compute, scale_moe, overlap, tpot_slo)
    if tp_steps is not None:
        patterns["tp"] = eta_tpot(tp_steps, decode_compute, scale_tp, overlap, tpot_slo)
    # Prefill all-reduces stretch the prefill chunk (compute + exposed communication): the prefill
    # pool's own η. Their TTFT effect is not modelled (no shipped profile combines them with KV).
    prefill_parts: list[tuple[pd.DataFrame, float]] = []
    chunk_compute = 0.0
    if tp_prefill_steps is not None:
        stated_chunk = generator_compute(run, "prefill_step_compute_s", ("allreduce",))
        if stated_chunk is None:
            warnings.append("prefill all-reduces without the chunk compute the generator used (a run recorded before "
                            "it was kept): the prefill pool's η is left at 1")
        else:
            chunk_compute = led.use("serving.prefill_chunk_compute_s", stated_chunk[0], "s",
                                    f"run.json workload pattern {stated_chunk[1]!r}: {stated_chunk[2]}")
            patterns["tp_prefill"] = eta_tpot(tp_prefill_steps, chunk_compute, scale_tp_prefill, overlap, None)
            prefill_parts = [(tp_prefill_steps, scale_tp_prefill)]
    first_decode = decode_compute + ideal_comm

    # Prefill compute per request: stated, or the catalog's compute-bound rate on the KV's prompt.
    kv_rows = frame[frame["kind"].isin(KV_KINDS)]
    queue = 0.0
    front = None
    if not kv_rows.empty:
        stated_p = costs.prefill_compute_s if costs.prefill_compute_s is not None else \
            _first(workload, "prefill_compute_s")
        instance = generator_compute(run, "prefill_tokens_per_s", ("disaggregated",))
        timeline = request_timeline(run_dir, request_keys(kv_rows))
        if stated_p is not None:
            prefill = led.use("serving.prefill_compute_s", float(stated_p), "s",
                              cf if costs.prefill_compute_s is not None else "run.json workload.prefill_compute_s")
        elif timeline is not None:
            # Each request's prefill exactly as the generator timed it (its instance's catalog rate).
            prefill = timeline["prefill_done_s"] - timeline["prefill_start_s"]
            led.use("serving.prefill_compute_s", float(prefill.mean()), "s (mean)",
                    "requests.parquet: prefill_done_s − prefill_start_s per request, as the workload generator "
                    "timed it" + (f" ({instance[2]})" if instance else ""))
        elif instance is not None and mdl is not None:
            # The prefill instance's rate the generator used (its TP group, not one accelerator).
            prompt_tokens = kv_rows.groupby(request_keys(kv_rows))["bytes"].sum() / mdl.kv_bytes_per_token
            prefill = prompt_tokens / instance[0]
            led.use("serving.prefill_compute_s", float(prefill.mean()), "s (mean)",
                    f"prompt tokens = KV bytes / {mdl.kv_bytes_per_token} B per token ({mdl.name}); ÷ "
                    f"{instance[0]:,.0f} tokens/s per prefill instance (run.json workload pattern {instance[1]!r}: "
                    f"{instance[2]})")
        else:
            acc_name = _first(workload, "accelerator") or _pool_accelerator(spec, "prefill")
            try:
                acc = _catalog_accelerator(acc_name)
            except FabricError:
                acc = None
            if mdl is not None and acc is not None:
                prompt_tokens = kv_rows.groupby(request_keys(kv_rows))["bytes"].sum() / mdl.kv_bytes_per_token
                rate = acc.prefill_tokens_per_s(mdl)
                prefill = prompt_tokens / rate
                led.use("serving.prefill_compute_s", float(prefill.mean()), "s (mean)",
                        f"prompt tokens = KV bytes / {mdl.kv_bytes_per_token} B per token ({mdl.name}); "
                        f"÷ {rate:,.0f} tokens/s ({acc.name} catalog prefill rate: bf16_tflops × mfu / 2·active params)")
            else:
                prefill = led.use("serving.prefill_compute_s", 0.0, "s",
                                  "unknown (no catalog model in run.json workload.model and none stated): TTFT "
                                  "counts the KV transfer and the first decode step only")
                warnings.append("prefill compute unknown: TTFT counts only the KV transfer and first decode step")
        front = front_end_ttft(frame, timeline) if timeline is not None else None
        if timeline is not None:
            # With a front end, the wait starts when the token ids could have arrived (tokenizing
            # and the hop are the front end's own parts of TTFT).
            ready = timeline["arrival_s"]
            if front is not None and "tokens_ready_s" in timeline:
                ready = timeline["tokens_ready_s"].fillna(ready)
            queue = timeline["prefill_start_s"] - ready
            led.use("serving.queue_before_prefill_s", float(queue.mean()), "s (mean)",
                    f"requests.parquet: wait for a free prefill instance (p99 {nearest_rank(queue, 99):.3g} s); "
                    f"the same on the ideal and the measured fabric")
        else:
            led.use("serving.queue_before_prefill_s", 0.0, "s",
                    "no requests.parquet in the run directory (a run recorded before it was kept, or a schedule "
                    "without request arrivals): TTFT leaves out queueing before prefill")
        if front is not None:
            led.use("serving.frontend_cpu_s", float(front["cpu_s"].mean()), "s (mean)",
                    "requests.parquet: wait for a front-end core + tokenize + the first token's detokenize, at the "
                    "catalog's CPU rates (run.json workload pattern compute.frontend); its two hops (token ids, "
                    "first-token stream) are measured messages")
        patterns["kv"] = eta_kv(frame, ttft_slo, prefill, first_decode, queue, front)
        if patterns["kv"] and patterns["kv"]["note"]:
            warnings.append(patterns["kv"]["note"])

    etas = {k: (v["eta"] if v and v["eta"] is not None else None) for k, v in patterns.items()}
    decode_parts = [(steps, scale) for steps, scale in ((moe_steps, scale_moe), (tp_steps, scale_tp))
                    if steps is not None]
    # A request that misses its TTFT serves none of its tokens: η_KV (goodput) scales the whole
    # cluster's tokens. The prefill pool's own throughput η is its chunk-time ratio when its TP
    # spans hosts, else 1 (the KV transfer acts through TTFT); the decode pool's is its TPOT ratio.
    goodput = etas["kv"] if etas["kv"] is not None else 1.0
    eta_prefill = eta_decode(chunk_compute, overlap, prefill_parts)
    eta_dec = eta_decode(decode_compute, overlap, decode_parts)
    pool_model = led.pick("serving.pool_model", (costs.pool_model, cf))
    stages = _stage_model(run, run_dir, costs, led, warnings)
    capacity_ratio = 1.0
    if stages is not None:
        if pool_model == "fixed":
            capacity_ratio = led.use("serving.prefill_capacity_ratio", stages.fixed_capacity_ratio(), "",
                                     "the design's own pools: prefill requests/s ÷ decode requests/s at the stages' "
                                     "catalog rates (docs/economics.md §6)")
            share = stages.hosts("prefill") / (stages.hosts("prefill") + stages.hosts("decode"))
            share_source = f"the design's own pools ({stages.hosts('prefill')} prefill, {stages.hosts('decode')} decode)"
        else:
            share = stages.prefill_share
            share_source = (f"pools sized from the stages: (P/r_p) / (P/r_p + O/r_d) with P = "
                            f"{stages.prompt_tokens_mean:,.0f}, O = {stages.output_tokens_mean:,.0f} tokens per request, "
                            f"r_p = {stages.stage_rate('prefill'):,.0f}, r_d = {stages.stage_rate('decode'):,.0f} "
                            f"tokens/s per accelerator (docs/economics.md §6)")
    else:
        share, share_source = prefill_pool_share(spec)
    prefill_share = led.pick("serving.prefill_pool_share", (costs.prefill_pool_share, cf), (share, share_source))
    # A rebalanced cluster buys 1/η_s more of stage s's accelerators: what that costs weights the
    # stages, so a derated stage of dear accelerators costs more than one of cheap ones.
    eta_weight = prefill_share
    if stages is not None and pool_model == "rebalanced" and price_usd_per_hour is not None:
        price = {s: stages.stage_price_usd_per_hour(s, price_usd_per_hour) for s in ("prefill", "decode")}
        eta_weight = led.use("serving.prefill_cost_share", stages.prefill_cost_share(prefill_share, price_usd_per_hour),
                             "", f"prefill's share of the pools' cost: accelerator share {prefill_share:.4f} at "
                             f"${price['prefill']:.4f}/h, decode at ${price['decode']:.4f}/h per accelerator "
                             f"(docs/economics.md §6)")
    combined = goodput * combined_eta(eta_prefill, eta_dec, eta_weight, pool_model, capacity_ratio)
    measured = {k: v for k, v in etas.items() if v is not None}

    # The pattern that "sets" η is the one costing the most served tokens: how much η would rise
    # if that pattern alone met its ideal.
    def without(kind: str) -> float:
        parts = [(st, sc) for st, sc, k in ((moe_steps, scale_moe, "moe"), (tp_steps, scale_tp, "tp"))
                 if st is not None and k != kind]
        return (1.0 if kind == "kv" else goodput) * combined_eta(
            1.0 if kind == "tp_prefill" else eta_prefill,
            eta_dec if kind in ("kv", "tp_prefill") else eta_decode(decode_compute, overlap, parts),
            eta_weight, pool_model, capacity_ratio)
    loss = {k: without(k) - combined for k in measured}
    set_by = max(loss, key=lambda k: (loss[k], k)) if loss and max(loss.values()) > 1e-12 else None
    if not measured:
        warnings.append("the run has no kv, a2a or allreduce messages: η = 1 by default")
    if stages is not None:
        staged_total, staged_output = (stages.fixed_tokens_per_s_per_accelerator() if pool_model == "fixed" else
                                       (stages.total_tokens_per_s_per_accelerator,
                                        stages.output_tokens_per_s_per_accelerator))
        src = (f"the stages' catalog rates and the offered requests' mean prompt and output tokens (run.json "
               f"workload pattern {stages.pattern!r}), " + ("the design's own pools capped by the slower stage"
                                                     if pool_model == "fixed" else "pools sized to the load")
               + " (docs/economics.md §6)")
        total_rate = led.pick("serving.total_tokens_per_s_per_accelerator", (costs.total_tokens_per_s, cf),
                              (staged_total, src))
        output_rate = led.pick("serving.output_tokens_per_s_per_accelerator", (costs.output_tokens_per_s, cf),
                               (staged_output, src))
    else:
        total_rate = led.pick("serving.total_tokens_per_s_per_accelerator", (costs.total_tokens_per_s, cf))
        if costs.total_tokens_per_s is None and model_name and str(model_name) not in ("DeepSeek-V3", "DeepSeek-R1"):
            warnings.append(f"tokens/s per accelerator is DeepSeek-V3's on H800 (the only published production "
                            f"figure), applied to {model_name}: give serving.total_tokens_per_s_per_accelerator and "
                            f"output_tokens_per_s_per_accelerator in a cost file for this model")
        output_rate = led.pick("serving.output_tokens_per_s_per_accelerator", (costs.output_tokens_per_s, cf))
    w_out = output_rate / total_rate
    ttft = kv_ttft(frame, prefill, first_decode, queue, front) if patterns["kv"] is not None else None
    intervals = bootstrap_eta(ttft, ttft_slo, decode_parts, decode_compute, overlap, eta_weight, pool_model,
                              prefill_parts=prefill_parts, prefill_compute_s=chunk_compute,
                              capacity_ratio=capacity_ratio)
    for kind, steps, scale in (("moe", moe_steps, scale_moe), ("tp", tp_steps, scale_tp)):
        intervals[kind] = bootstrap_tpot(steps, decode_compute, scale, overlap) if steps is not None else None
    intervals["tp_prefill"] = bootstrap_tpot(tp_prefill_steps, chunk_compute, scale_tp_prefill, overlap) \
        if prefill_parts else None
    return {
        "eta_interval": intervals,
        "eta": {**etas, "kv_goodput": goodput, "prefill_pool": eta_prefill, "decode_pool": eta_dec,
                "combined": combined,
                "set_by": set_by, "token_loss": loss},
        "pools": {"model": pool_model, "prefill_share": prefill_share, "decode_share": 1.0 - prefill_share,
                  "prefill_eta_weight": eta_weight},
        "stages": stages,
        "token_shares": {"prefill_input": 1.0 - w_out, "decode_output": w_out},
        "patterns": patterns,
        "messages": int(len(frame)), "recovered_messages": int(frame["recovered"].sum()),
        "warnings": warnings,
    }


BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def _interval(samples: np.ndarray) -> list[float] | None:
    """The central CONFIDENCE interval of bootstrap samples (NaN samples: undefined resamples)."""
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    return [float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))]


def bootstrap_eta(ttft: tuple | None, ttft_slo_s: float, decode_parts: list[tuple[pd.DataFrame, float]],
                  compute_s: float, overlap: float, prefill_share: float, pool_model: str, seed: int = 0,
                  prefill_parts: list[tuple[pd.DataFrame, float]] = (), prefill_compute_s: float = 0.0,
                  capacity_ratio: float = 1.0) -> dict:
    """Confidence intervals of η within one run: requests (η_KV), decode steps (η_decode) and
    prefill chunks (the prefill pool's η, when its TP spans hosts) resampled with replacement,
    :data:`BOOTSTRAP_RESAMPLES` times, through the same formulas.

    They say how much η would move with another sample of the same traffic; they do not cover
    run-to-run variation of the engine (repeats do: see the report).
    """
    rng = np.random.default_rng(seed)
    n = BOOTSTRAP_RESAMPLES
    goodput = np.ones(n)
    if ttft is not None:
        _, ideal, measured = ttft
        ok_ideal = (ideal <= ttft_slo_s).to_numpy(np.float64)
        ok_meas = (measured <= ttft_slo_s).to_numpy(np.float64)
        idx = rng.integers(0, ok_ideal.size, (n, ok_ideal.size))
        att_ideal, att_meas = ok_ideal[idx].mean(axis=1), ok_meas[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            goodput = np.where(att_ideal > 0, att_meas / att_ideal, np.nan)
    def step_eta(parts, compute: float) -> np.ndarray:
        comm_ideal, comm_meas = np.zeros(n), np.zeros(n)
        for steps, scale in parts:
            idx = rng.integers(0, len(steps), (n, len(steps)))
            comm_ideal += scale * steps["ideal_s"].to_numpy(np.float64)[idx].mean(axis=1)
            comm_meas += scale * steps["measured_s"].to_numpy(np.float64)[idx].mean(axis=1)
        window = overlap * compute
        with np.errstate(divide="ignore", invalid="ignore"):
            return (compute + exposed_s(comm_ideal, window)) / (compute + exposed_s(comm_meas, window))

    eta_dec = step_eta(decode_parts, compute_s) if decode_parts else np.ones(n)
    eta_pre = step_eta(prefill_parts, prefill_compute_s) if prefill_parts else np.ones(n)
    pools = np.minimum(capacity_ratio * eta_pre, eta_dec) / min(capacity_ratio, 1.0) if pool_model == "fixed" else \
        1.0 / (prefill_share / eta_pre + (1 - prefill_share) / eta_dec)
    return {"confidence": CONFIDENCE, "resamples": n, "method": "bootstrap over requests and decode steps",
            "kv": _interval(goodput) if ttft is not None else None,
            "decode_pool": _interval(eta_dec) if decode_parts else None,
            "prefill_pool": _interval(eta_pre) if prefill_parts else None,
            "combined": _interval(goodput * pools)}


def bootstrap_tpot(per_step: pd.DataFrame, compute_s: float, layer_scale: float, overlap: float,
                   seed: int = 0) -> list[float] | None:
    """95% interval of one pattern's η (:func:`eta_tpot`) with its decode steps resampled."""
    rng = np.random.default_rng(seed)
    window = overlap * compute_s
    ideal = compute_s + exposed_s(layer_scale * per_step["ideal_s"].to_numpy(np.float64), window)
    measured = compute_s + exposed_s(layer_scale * per_step["measured_s"].to_numpy(np.float64), window)
    idx = rng.integers(0, len(per_step), (BOOTSTRAP_RESAMPLES, len(per_step)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _interval(ideal[idx].mean(axis=1) / measured[idx].mean(axis=1))


def prefill_pool_share(spec) -> tuple[float | None, str]:
    """The prefill pool's share of accelerators, from the design's host groups (None: no split)."""
    prefill = sum(g.count for g in spec.host_groups if g.role == "prefill")
    decode = sum(g.count for g in spec.host_groups if g.role == "decode")
    if prefill and decode:
        return prefill / (prefill + decode), f"design host groups: {prefill} prefill, {decode} decode accelerators"
    return None, ""


def _stage_model(run: dict, run_dir: Path, costs: CostFile, led: Ledger, warnings: list[str]):
    """The run's :class:`~fabric.economics.pools.StageModel` (None: no staged pools recorded, or
    the cost file states the tokens/s per accelerator, which then replace the stages' rates)."""
    from fabric.economics.pools import stage_model
    from fabric.rundir.tables import read_table
    if costs.total_tokens_per_s is not None:
        return None
    has_requests = (Path(run_dir) / "requests.parquet").exists()
    stages = stage_model(run, read_table(run_dir, "requests") if has_requests else None)
    if stages is None:
        return None
    if costs.request_rate_per_s is not None:
        stages = replace(stages, request_rate_per_s=costs.request_rate_per_s)
        led.use("serving.request_rate_per_s", costs.request_rate_per_s, "requests/s", f"cost file {costs.source}")
    else:
        led.use("serving.request_rate_per_s", stages.request_rate_per_s, "requests/s",
                f"run.json workload pattern {stages.pattern!r}: requests the profile offers per second (the rate "
                f"pools are sized for; give serving.request_rate_per_s in a cost file for another)")
    for pool in stages.pools:
        led.use(f"stage.{pool.stage}.{pool.group}.tokens_per_s_per_accelerator", pool.tokens_per_s_per_accelerator,
                "tokens/s", f"run.json workload pattern {stages.pattern!r}: {pool.accelerator} catalog "
                            + ("prefill rate (bf16_tflops × mfu / 2·active params)" if pool.stage == "prefill" else
                               f"decode: batch ÷ (step time × {pool.instance_hosts} hosts per instance)"))
    fit = stages.design_fit()
    if fit["mis_sized"]:
        warnings.append(f"pools mis-sized: {fit['statement']}")
    return stages


def request_timeline(run_dir: Path, keys: np.ndarray) -> pd.DataFrame | None:
    """requests.parquet indexed by request key, for the requests in ``keys``; None if the run has
    none or it lacks one of them (then nothing of it is used: a partial timeline would mix models)."""
    from fabric.rundir.tables import read_table
    if not (Path(run_dir) / "requests.parquet").exists():
        return None
    table = read_table(run_dir, "requests")
    table.index = "r" + table["request_id"].astype(str)
    wanted = pd.Index(pd.unique(keys))
    if not wanted.isin(table.index).all():
        return None
    return table.loc[wanted]


def generator_compute(run: dict, key: str, types: tuple[str, ...]) -> tuple[float, str, str] | None:
    """(value, pattern name, source) of ``key`` in the compute facts the workload generator recorded
    for the first pattern of one of ``types`` that has it (run.json workload.patterns[].compute)."""
    for t in types:
        for pt in (run.get("workload") or {}).get("patterns") or []:
            facts = pt.get("compute") if isinstance(pt, dict) else None
            if pt.get("type") == t and isinstance(facts, dict) and facts.get(key) is not None:
                return float(facts[key]), str(pt.get("name")), str(facts.get("source", ""))
    return None


def _pool_accelerator(spec, role: str) -> str:
    groups = [g for g in spec.host_groups if g.role == role] or list(spec.host_groups)
    return groups[0].accelerator
