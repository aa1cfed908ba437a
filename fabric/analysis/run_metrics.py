"""metrics.json: one run directory's records turned into every docs/metrics.md figure, per traffic class.

This module owns the assembly: reading the run directory (packets, messages, links, noise, cpu,
scheduler, run.json), putting packets in the orders the definitions need (sending order and
arrival order per flow, one sort each), calling :mod:`fabric.analysis.metrics` per class, and
writing a small, deterministic ``metrics.json`` (per-message detail stays in the parquet files).

Conventions of metrics.json
---------------------------
* Units are in the key names (``owd_us``, ``mct_ms``, ``goodput_bps``). Byte counts and rates are
  real-world: emulated values × ``scale.k``; times need no rescaling.
* A *flow* is one (kind, src, dst) triple; it is the stream of RFC 3393 / RFC 4737 / RFC 3357, in
  sending order (``tx_ns``; ties keep message and sequence order) or arrival order (``rx_ns``).
* **Infinity is the string ``"inf"``** (a loss-aware percentile that falls on a lost packet, or a
  loss-aware max/mean when anything was lost). Undefined values (no samples) are ``null``. JSON has
  no infinity, and ``float(value)`` turns ``"inf"`` back into ``math.inf`` in any reader.
* Keys are sorted and no timestamps are added, so re-analysing a run gives byte-identical output.

Layout (see :func:`analyze_run`)::

    scale{k, meaning, payload_bytes}  run{tmax_ns, packet_records, ...}
    classes.<kind>{owd_us, loss_ratio, loss, loss_episodes, pdv_us, ipdv_us, rfc3550_j_us,
                   rfc3550_j_max_us, reorder, goodput_bps, mct_ms, slowdown, messages}
    groups.<kind>{completion_ms, slowdown, groups, recovered}   fairness.<kind>{jain, ...}
    links.<link_id:node->peer[/queue]>{...}   spine_imbalance{max_over_mean, shares, up, down}
    noise_floor{owd_us}   loss_recovery{model, rto_ns, ...}   fidelity{verdict, ...}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fabric import rundir
from fabric.analysis import completion as C
from fabric.analysis import metrics as M
from fabric.analysis.fidelity import fidelity_signals, fidelity_verdict
from fabric.errors import RunDirError
from fabric.jsonio import plain
from fabric.probe import WIRE_OVERHEAD_BYTES

# A deliberately short, datacenter-tuned retransmission timeout for the loss-recovery model;
# a run overrides it with run.json["loss_recovery"]["rto_ns"] and metrics.json reports it.
DEFAULT_RTO_NS = 4_000_000

PACKET_READ_COLUMNS = ["msg_id", "seq", "bytes", "tx_ns", "rx_ns", "copies", "ser_ns"]
_PACKET_DTYPES = {c: rundir.PACKET_COLUMNS[c] for c in PACKET_READ_COLUMNS}

SCALE_MEANING = ("Emulated link rates, message sizes and buffers are the real ones divided by k. "
                 "Byte counts and rates in this file are real-world (emulated x k); times need no "
                 "rescaling. Packets are not scaled, so per-packet serialization is k times coarser "
                 "than in the real fabric.")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def read_packets(run_dir: Path, name: str = "packets", required: bool = True) -> pd.DataFrame:
    """Read only the packet columns analysis needs, with compact dtypes.

    ``rundir.read_table`` reads every column; src/dst strings per packet would cost ~1 GB at 10M
    packets and are redundant with messages.parquet, so they are skipped here.
    """
    path = Path(run_dir) / f"{name}.parquet"
    if not path.exists():
        if required:
            raise RunDirError(f"{run_dir}: {name}.parquet is missing; is this a fabric run directory?")
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _PACKET_DTYPES.items()})
    # self_destruct frees each Arrow column as it is converted: peak memory ~1x the table, not 2x.
    present = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[c for c in PACKET_READ_COLUMNS if c in present])
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    if "ser_ns" not in frame:
        frame["ser_ns"] = 0  # written before serialization was recorded: nothing was added
    return frame.astype(_PACKET_DTYPES)


def read_frames(run_dir: Path, packets_required: bool = True) -> dict:
    """All inputs of one run directory: ``run`` (run.json) and the tables analysis uses."""
    run_dir = Path(run_dir)
    return {
        "run": rundir.read_run_json(run_dir),
        "packets": read_packets(run_dir, "packets", required=packets_required),
        "noise": read_packets(run_dir, "noise", required=False),
        "messages": rundir.read_table(run_dir, "messages"),
        "links": rundir.read_table(run_dir, "links", required=False),
        "cpu": rundir.read_table(run_dir, "cpu", required=False),
        "scheduler": rundir.read_table(run_dir, "scheduler", required=False),
    }


# --------------------------------------------------------------------------------------------
# Packet preparation
# --------------------------------------------------------------------------------------------

def _collapse_duplicate_rows(p: pd.DataFrame, key: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Rows sharing (message, seq) are copies of one packet: keep the first copy's receive time."""
    p = p.assign(_key=key, _rx=np.where(p["rx_ns"].to_numpy() >= 0, p["rx_ns"].to_numpy(), np.iinfo(np.int64).max))
    g = p.groupby("_key", sort=True)
    agg = g.agg(msg_pos=("msg_pos", "first"), seq=("seq", "first"), bytes=("bytes", "first"),
                tx_ns=("tx_ns", "min"), rx_ns=("_rx", "min"), copies=("copies", "sum"),
                rows=("copies", "size"))
    extra = int((agg["rows"] - 1).sum())
    agg["rx_ns"] = np.where(agg["rx_ns"] == np.iinfo(np.int64).max, -1, agg["rx_ns"])
    # A row-per-copy recorder writes copies=1 on each row; the summed count then says how many
    # copies arrived.
    agg = agg.drop(columns="rows").reset_index(drop=True)
    return agg, agg.index.to_numpy(), extra


def _flow_sort_key(flow: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Order by (flow, t) with one int64 argsort when the time span fits beside the flow code."""
    if t.size == 0:
        return np.empty(0, dtype=np.int64)
    t0 = t.min()
    span = int(t.max() - t0) + 1
    fbits = max(1, int(flow.max()).bit_length()) if flow.size else 1
    tbits = max(1, span.bit_length())
    if fbits + tbits <= 62:
        key = (flow.astype(np.int64) << tbits) | (t - t0)
        return np.argsort(key, kind="stable")
    return np.lexsort((t, flow))


def prepare(packets: pd.DataFrame, messages: pd.DataFrame, tmax_ns: int | None) -> dict:
    """Packets joined to messages, first copies only, in sending order per flow.

    Returns a dict of aligned numpy arrays (``send``: sending order; ``arr``: received packets in
    arrival order) plus per-message receipt figures and class boundaries.
    """
    msgs = messages.sort_values("msg_id", kind="stable").reset_index(drop=True)
    n_msg = len(msgs)
    kinds = msgs["kind"].astype(str).to_numpy(dtype=object)
    src = msgs["src"].astype(str).to_numpy(dtype=object)
    dst = msgs["dst"].astype(str).to_numpy(dtype=object)
    # Flow codes sorted by (kind, src, dst): each class is then one contiguous block in any
    # flow-major order, so per-class work is slicing, not masking.
    flows = pd.DataFrame({"kind": kinds, "src": src, "dst": dst})
    uniq = flows.drop_duplicates().sort_values(["kind", "src", "dst"]).reset_index(drop=True)
    uniq["flow"] = np.arange(len(uniq), dtype=np.int64)
    msg_flow = flows.merge(uniq, on=["kind", "src", "dst"], how="left")["flow"].to_numpy(np.int64)
    class_names = sorted(set(kinds))
    flow_class = pd.Categorical(uniq["kind"], categories=class_names).codes.astype(np.int64)

    msg_pos = pd.Index(msgs["msg_id"].to_numpy(np.int64)).get_indexer(packets["msg_id"].to_numpy(np.int64))
    known = msg_pos >= 0
    orphans = int(np.count_nonzero(~known))
    p = packets
    if orphans:
        p = p[known]
        msg_pos = msg_pos[known]
    seq = p["seq"].to_numpy(np.int64)
    key = (msg_pos.astype(np.int64) << 32) | (seq & 0xFFFFFFFF)
    dup_rows = 0
    if key.size > 1 and not bool(np.all(key[1:] > key[:-1])):
        order = np.argsort(key, kind="stable")
        ks = key[order]
        if bool(np.any(ks[1:] == ks[:-1])):
            q = p.assign(msg_pos=msg_pos)
            q, _, dup_rows = _collapse_duplicate_rows(q, key)
            p, msg_pos = q, q["msg_pos"].to_numpy(np.int64)
        else:
            p = p.iloc[order]
            msg_pos = msg_pos[order]
    msg_pos = np.asarray(msg_pos, dtype=np.int32)  # compact: arrays below are copied per order
    nbytes = p["bytes"].to_numpy(np.int32)
    tx = p["tx_ns"].to_numpy(np.int64)
    rx = p["rx_ns"].to_numpy(np.int64)
    copies = p["copies"].to_numpy(np.int16)
    ser = p["ser_ns"].to_numpy(np.int64) if "ser_ns" in p else np.zeros(len(p), dtype=np.int64)
    del p, key, seq
    owd = rx - tx
    received = rx >= 0
    if tmax_ns is not None:
        received &= owd <= int(tmax_ns)

    # Per-message receipt, while rows are in (message, seq) order.
    n_rows = np.bincount(msg_pos, minlength=n_msg)
    n_rx = np.bincount(msg_pos[received], minlength=n_msg)
    last_rx = np.full(n_msg, -1, dtype=np.int64)
    first_lost_tx = np.full(n_msg, -1, dtype=np.int64)
    resend = np.zeros(n_msg, dtype=np.int64)
    last_ser = np.zeros(n_msg, dtype=np.int64)
    last_bytes = np.zeros(n_msg, dtype=np.int64)
    if msg_pos.size:
        starts = np.flatnonzero(np.r_[True, msg_pos[1:] != msg_pos[:-1]])
        last_rx[msg_pos[starts]] = np.maximum.reduceat(np.where(received, rx, -1), starts)
        ends = np.r_[starts[1:], msg_pos.size] - 1
        last_ser[msg_pos[ends]] = ser[ends]
        last_bytes[msg_pos[ends]] = nbytes[ends]
        lost_rows = np.flatnonzero(~received)
        if lost_rows.size:
            m_l, first = np.unique(msg_pos[lost_rows], return_index=True)
            rows = lost_rows[first]
            cum = np.cumsum(nbytes, dtype=np.int64)
            end_of = np.empty(n_msg, dtype=np.int64)
            end_of[msg_pos[starts]] = ends
            first_lost_tx[m_l] = tx[rows]
            resend[m_l] = cum[end_of[m_l]] - cum[rows] + nbytes[rows]
    receipt = pd.DataFrame({"n_rows": n_rows, "n_received": n_rx, "last_rx_ns": last_rx,
                            "first_lost_tx_ns": first_lost_tx, "resend_bytes": resend,
                            "last_ser_ns": last_ser, "last_bytes": last_bytes})
    del ser

    # Sending order per flow; each array is reordered then its unsorted original dropped, which
    # keeps the peak near one extra copy of the packet table.
    flow = msg_flow.astype(np.int32)[msg_pos] if msg_pos.size else np.empty(0, dtype=np.int32)
    order = _flow_sort_key(flow, tx)
    send = {"flow": flow[order]}
    del flow
    for name, a in (("owd", owd), ("received", received), ("tx", tx), ("rx", rx), ("bytes", nbytes),
                    ("copies", copies), ("msg_pos", msg_pos)):
        send[name] = a[order]
    del owd, received, tx, rx, nbytes, copies, msg_pos, order
    send["cls"] = flow_class.astype(np.int16)[send["flow"]]
    # Sequence number within the flow = sending rank (RFC 4737 needs one per stream).
    fs = send["flow"]
    if fs.size:
        fstart = np.flatnonzero(np.r_[True, fs[1:] != fs[:-1]])
        rank = np.arange(fs.size) - np.repeat(fstart, np.diff(np.r_[fstart, fs.size]))
    else:
        rank = np.empty(0, dtype=np.int64)
    r_idx = np.flatnonzero(send["received"])
    a_order = r_idx[_flow_sort_key(send["flow"][r_idx], send["rx"][r_idx])]
    arr = {"flow": send["flow"][a_order], "owd": send["owd"][a_order], "seq": rank[a_order]}
    arr["cls"] = flow_class[arr["flow"]] if a_order.size else np.empty(0, dtype=np.int64)
    return {"messages": msgs, "receipt": receipt, "send": send, "arr": arr, "class_names": class_names,
            "orphans": orphans, "duplicate_rows": dup_rows, "records": int(len(packets))}


def _slice(cls_arr: np.ndarray, c: int) -> slice:
    return slice(int(np.searchsorted(cls_arr, c, "left")), int(np.searchsorted(cls_arr, c, "right")))


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------

def _class_packet_metrics(prep: dict, c: int, scale_k: float, tmax_ns) -> tuple[dict, dict]:
    s, a = prep["send"], prep["arr"]
    sl, al = _slice(s["cls"], c), _slice(a["cls"], c)
    rxm = s["received"][sl]
    owd = s["owd"][sl]
    flow = s["flow"][sl]
    d = owd[rxm]
    n_sent = int(rxm.size)
    n_rx = int(d.size)
    tx = s["tx"][sl]
    rx = s["rx"][sl][rxm]
    span_s = ((int(rx.max()) - int(tx.min())) / 1e9) if n_rx else None
    out: dict = {}
    out["owd_us"] = M.delay_stats(d, n_sent - n_rx, unit_ns=1e3)
    out["pdv_us"] = M.pdv_stats(d, unit_ns=1e3)
    iv, undef = M.ipdv(owd, rxm, flow)
    out["ipdv_us"] = M.ipdv_stats(iv, undef, unit_ns=1e3)
    dups = M.duplicate_count(s["copies"][sl][rxm])
    out["loss"] = M.loss_stats(n_sent, n_rx, tmax_ns, dups)
    out["loss_ratio"] = out["loss"]["ratio"]
    out["loss_episodes"] = M.loss_episodes(~rxm, flow, duration_s=span_s)
    out["reorder"] = M.reordering(a["seq"][al], a["flow"][al])
    j = M.rfc3550_jitter(a["owd"][al], a["flow"][al])
    out["rfc3550_j_us"] = float(j.mean()) / 1e3 if j.size else M.NAN
    out["rfc3550_j_max_us"] = float(j.max()) / 1e3 if j.size else M.NAN
    delivered = int(s["bytes"][sl][rxm].sum())
    out["goodput_bps"] = M.goodput_bps(delivered, span_s, scale_k)
    out["delivered_bytes"] = delivered * scale_k

    # Fairness: per-destination goodput over the class's common window; destinations that were
    # sent to but got nothing count as zero.
    msgs = prep["messages"]
    dst_all = msgs["dst"].astype(str).to_numpy(dtype=object)
    in_class = msgs["kind"].astype(str).to_numpy(dtype=object) == prep["class_names"][c]
    dests = sorted(set(dst_all[in_class]))
    per_dst = pd.Series(s["bytes"][sl][rxm].astype(np.float64)).groupby(
        dst_all[s["msg_pos"][sl][rxm]]).sum().reindex(dests, fill_value=0.0)
    g = np.array([M.goodput_bps(v, span_s, scale_k) for v in per_dst.to_numpy()]) if span_s else np.zeros(len(dests))
    fair = {"jain": M.jain_index(g), "destinations": len(dests),
            "min_goodput_bps": float(g.min()) if g.size else M.NAN,
            "max_goodput_bps": float(g.max()) if g.size else M.NAN}
    return out, fair


def run_idle_path_delay_ns(run: dict, noise: pd.DataFrame) -> float:
    """The engine's idle path delay: run.json's ``idle_path_delay_ns`` when the engine states it,
    else the noise probe's median one-way delay."""
    if run.get("idle_path_delay_ns") is not None:
        return float(run["idle_path_delay_ns"])
    return M.idle_path_delay_ns(noise)


def completions(frames: dict, prep: dict | None = None, fallback_rate_bps: float = M.NAN,
                rto_ns: float | None = None, idle_ns: float | None = None) -> tuple[pd.DataFrame, dict]:
    """The run's per-message completion table (:mod:`fabric.analysis.completion`), aligned with
    ``prep["messages"]`` (sorted by msg_id), and ``prep``. Every reader of completion times —
    metrics.json, the report, fidelity and economics — goes through here. ``rto_ns`` and
    ``idle_ns`` override the run's own (a cost file's what-if)."""
    run = frames["run"]
    if prep is None:
        prep = prepare(frames["packets"], frames["messages"], run.get("tmax_ns"))
    msgs = prep["messages"]
    links = frames["links"]
    rec = dict(run.get("loss_recovery") or {})
    if not np.isfinite(fallback_rate_bps):
        # Hosts the links table has no counters for send at the NIC rate the design built (÷ k).
        rates = list(rundir.host_rates_bps(run).values())
        fallback_rate_bps = float(np.median(rates)) / float(run.get("scale_k", 1) or 1) if rates else M.NAN
    rto_ns = int(rec.get("rto_ns", DEFAULT_RTO_NS)) if rto_ns is None else rto_ns
    idle_ns = run_idle_path_delay_ns(run, frames["noise"]) if idle_ns is None else idle_ns
    send_rate = M.sender_line_rate_bps(links, msgs["src"].astype(str).to_numpy(dtype=object), fallback_rate_bps)
    recv_rate = M.receiver_line_rate_bps(links, msgs["dst"].astype(str).to_numpy(dtype=object), fallback_rate_bps)
    receipt = prep["receipt"].copy()
    # Messages without any packet record (a run written without them) complete from their
    # messages.parquet summary: packets received and the last arrival.
    bare = receipt["n_rows"].to_numpy() == 0
    if bare.any():
        receipt.loc[bare, "n_rows"] = msgs.loc[bare, "packets"].to_numpy()
        receipt.loc[bare, "n_received"] = msgs.loc[bare, "packets_received"].to_numpy()
        receipt.loc[bare, "last_rx_ns"] = msgs.loc[bare, "t_rx_last_ns"].to_numpy()
    # The last packet's serialization after the first hop: what store-and-forward adds to the
    # ideal (the first hop is part of the sender's line-rate time).
    with np.errstate(divide="ignore", invalid="ignore"):
        first_hop = (receipt["last_bytes"].to_numpy(np.float64) + WIRE_OVERHEAD_BYTES) * 8e9 / send_rate
    forward = np.where(receipt["last_ser_ns"].to_numpy() > 0,
                       np.maximum(receipt["last_ser_ns"].to_numpy(np.float64) - np.nan_to_num(first_hop), 0.0), 0.0)
    comp = C.message_completion(msgs, receipt.assign(forward_ns=forward), send_rate, recv_rate, idle_ns, rto_ns,
                                run.get("payload_bytes"))
    return comp, prep


def analyze_frames(frames: dict) -> dict:
    """metrics.json as a dict from already-read frames (see :func:`read_frames`)."""
    run = frames["run"]
    scale_k = float(run.get("scale_k", 1) or 1)
    tmax_ns = run.get("tmax_ns")
    links, noise = frames["links"], frames["noise"]
    rec = dict(run.get("loss_recovery") or {})
    rto_ns = int(rec.get("rto_ns", DEFAULT_RTO_NS))
    idle_ns = run_idle_path_delay_ns(run, noise)

    comp, prep = completions(frames)
    msgs = prep["messages"]

    classes: dict = {}
    fairness: dict = {}
    kinds = msgs["kind"].astype(str).to_numpy(dtype=object)
    for c, name in enumerate(prep["class_names"]):
        cm, fair = _class_packet_metrics(prep, c, scale_k, tmax_ns)
        sel = kinds == name
        mct = comp["mct_ns"].to_numpy()[sel]
        cm["mct_ms"] = M.value_stats(mct[~np.isnan(mct)], unit=1e6)
        sd = comp["slowdown"].to_numpy()[sel]
        cm["slowdown"] = M.value_stats(sd[~np.isnan(sd)])
        cm["messages"] = {"count": int(sel.sum()), "recovered": int(comp["recovered"].to_numpy()[sel].sum()),
                          "bytes": int(msgs["bytes"].to_numpy(np.int64)[sel].sum())}
        classes[name] = cm
        fairness[name] = fair

    ideal = comp["ideal_ns"].to_numpy()
    ideal_done = np.where(np.isfinite(ideal), msgs["t_sched_ns"].to_numpy(np.int64) + np.rint(np.nan_to_num(ideal)).astype(np.int64), -1)
    gc = C.group_completion(msgs["group"].to_numpy(dtype=object), kinds, msgs["t_sched_ns"].to_numpy(),
                            comp["done_ns"].to_numpy(), comp["recovered"].to_numpy(), ideal_done)
    groups = {}
    for kind, g in gc.groupby("kind", sort=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            slowdown = (g["completion_ns"] / g["ideal_ns"]).to_numpy(np.float64)
        groups[str(kind)] = {"completion_ms": M.value_stats(g["completion_ns"].dropna().to_numpy(), unit=1e6),
                             "slowdown": M.value_stats(slowdown[np.isfinite(slowdown)]),
                             "groups": int(len(g)), "recovered": int(g["recovered"].sum()),
                             "members_max": int(g["members"].max())}

    noise_stats = M.delay_stats((noise["rx_ns"] - noise["tx_ns"]).to_numpy(np.int64)[noise["rx_ns"].to_numpy() >= 0],
                                int((noise["rx_ns"] < 0).sum()), unit_ns=1e3) if len(noise) else {"n": 0}

    signals = fidelity_signals(frames | {"completion": (comp, msgs)})
    result = {
        "scale": {"k": scale_k, "dilation": float(run.get("dilation", 1.0) or 1.0), "meaning": SCALE_MEANING,
                  "payload_bytes": run.get("payload_bytes")},
        "run": {"tmax_ns": tmax_ns, "packet_records": prep["records"],
                "packets_without_message": prep["orphans"], "duplicate_records": prep["duplicate_rows"],
                "messages": int(len(msgs))},
        "classes": classes,
        "groups": groups,
        "fairness": fairness,
        "links": M.link_summary(links, scale_k),
        "spine_imbalance": M.spine_imbalance(links, rundir.core_switches(run), scale_k),
        "noise_floor": {"owd_us": noise_stats},
        "loss_recovery": {
            "model": "go-back-N from the first lost packet after one retransmission timeout; "
                     "the resends take turns on the NICs they cross with the run's other resends; resent packets "
                     "assumed delivered",
            "rto_ns": rto_ns, "idle_path_delay_ns": idle_ns,
            "rto_source": "run.json loss_recovery.rto_ns" if "rto_ns" in rec else "default",
            "recovered_messages": int(comp["recovered"].sum()),
        },
        "fidelity": fidelity_verdict(signals),
    }
    return plain(result)


def analyze_run(run_dir: Path) -> dict:
    """Read a run directory and return its metrics.json dict (every docs/metrics.md figure per class,
    groups, fairness, links, spine imbalance, noise floor, loss-recovery parameters, fidelity).

    Parameters
    ----------
    run_dir : Path
        A directory written by ``fabric run`` (see :mod:`fabric.rundir`).

    Returns
    -------
    dict
        JSON-ready (``inf`` as ``"inf"``, undefined as ``None``); see the module docstring.
    """
    return analyze_frames(read_frames(Path(run_dir)))


def write_metrics(run_dir: Path) -> dict:
    """Recompute and write ``run_dir/metrics.json`` (byte-identical on re-runs); return the dict."""
    data = analyze_run(run_dir)
    rundir.write_json(Path(run_dir) / "metrics.json", data)
    return data
