"""Message and group completion: the one model every figure of completion time comes from.

metrics.json (MCT, slowdown, group completion), the fidelity signals and the economics (η) all
read the per-message table built here, so they cannot drift apart.

Measured completion
    MCT = arrival of the message's last packet − scheduled start. Arrival times in a run directory
    include each packet's serialization at every hop it crossed (``packets.ser_ns``, see
    :mod:`fabric.rundir`), so a message can never beat its bytes at line rate. A message with a
    lost packet is completed by the loss-recovery model (:func:`resend_completion_ns`: go-back-N
    after a timeout, the run's resends taking turns on the NICs they cross) and flagged
    ``recovered``.

Ideal completion (the contention-free timeline, in the engine's own units)
    Each message enters the timeline when the engine actually began sending it (never before
    its scheduled start; the engine's lateness is judged by the sender-lateness fidelity signal).
    Each NIC takes the packets of the messages it has in flight in turn — the senders interleave a
    host's concurrent messages packet by packet, as a NIC with a queue pair per message does — so
    a message is done on an ideal fabric when both its sender's and its receiver's NIC have
    carried all of its wire bytes (:func:`round_robin_finish`, fair queueing over the fluid
    processor-sharing schedule), plus the
    store-and-forward of its last packet over the hops after the first, plus the idle path delay
    (the engine's own per-packet latency, measured by the noise probe before the load). Wire bytes
    count every packet's headers, as the links do. On an idle fabric measured ≈ ideal, so the
    slowdown is ≈ 1 and η ≈ 1: the engine's own costs are not charged to the fabric.

Line-rate bound (causality)
    No message can complete before its wire bytes at the sender's line rate plus the
    store-and-forward of its last packet; a measured MCT below that breaks physics and is counted
    by the ``causality`` fidelity signal.
"""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd

from fabric.probe import WIRE_OVERHEAD_BYTES


def processor_sharing_finish(start_ns: np.ndarray, work_ns: np.ndarray) -> np.ndarray:
    """Finish time of each job on one server shared equally among the jobs present (fluid PS)."""
    return _processor_sharing(start_ns, work_ns)[0]


def _processor_sharing(start_ns: np.ndarray, work_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fluid PS: (finish time, virtual time at arrival) of each job.

    ``work_ns`` is each job's service time at the full rate. Virtual time advances at 1/n while n
    jobs are present and a job leaves when virtual time reaches its arrival tag plus its work, so
    jobs leave in tag order — O(n log n). Jobs of unknown work get nan.
    """
    start = np.asarray(start_ns, dtype=np.float64)
    work = np.asarray(work_ns, dtype=np.float64)
    finish = np.full(start.size, np.nan)
    arrival_tag = np.full(start.size, np.nan)
    known = np.isfinite(work) & np.isfinite(start)
    order = np.flatnonzero(known)[np.argsort(start[known], kind="stable")]
    n = order.size
    heap: list[tuple[float, int]] = []
    virtual = 0.0
    now = float(start[order[0]]) if n else 0.0
    i = 0
    while i < n or heap:
        next_arrival = float(start[order[i]]) if i < n else np.inf
        if heap:
            tag, j = heap[0]
            leaves_at = now + (tag - virtual) * len(heap)
            if leaves_at <= next_arrival:
                heapq.heappop(heap)
                virtual, now = tag, leaves_at
                finish[j] = now
                continue
            virtual += (next_arrival - now) / len(heap)
        now = next_arrival
        j = int(order[i])
        arrival_tag[j] = virtual
        heapq.heappush(heap, (virtual + max(float(work[j]), 0.0), j))
        i += 1
    return finish, arrival_tag


def round_robin_finish(start_ns: np.ndarray, packets: np.ndarray, full_packet_ns: np.ndarray,
                       last_packet_ns: np.ndarray) -> np.ndarray:
    """Finish time of each message when one NIC takes its messages' packets in turn.

    This is packet round-robin among the messages in flight — what the senders do and what a NIC
    with one queue pair per message does — computed as fair queueing: each packet gets the fluid
    (PS) virtual time at which it would be done, and the NIC sends packets back to back in that
    order, never before their message starts. With many packets per message it converges to
    :func:`processor_sharing_finish`; with one packet per message it is first come, first served.
    """
    start = np.asarray(start_ns, dtype=np.float64)
    n = np.maximum(np.asarray(packets, dtype=np.int64), 1)
    full = np.asarray(full_packet_ns, dtype=np.float64)
    last = np.asarray(last_packet_ns, dtype=np.float64)
    finish = np.full(start.size, np.nan)
    known = np.isfinite(start) & np.isfinite(full) & np.isfinite(last)
    if not known.any():
        return finish
    idx = np.flatnonzero(known)
    n_k = n[idx]
    _, tag0 = _processor_sharing(start[idx], full[idx] * (n_k - 1) + last[idx])
    msg = np.repeat(np.arange(idx.size), n_k)
    first_row = np.cumsum(n_k) - n_k
    seq = np.arange(msg.size) - first_row[msg]
    work = np.where(seq == n_k[msg] - 1, last[idx][msg], full[idx][msg])
    tag = tag0[msg] + (seq * full[idx][msg] + work)        # virtual finish of each packet
    arrival = start[idx][msg]
    order = np.lexsort((seq, arrival, tag))
    w, s = work[order], arrival[order]
    sent = np.cumsum(w)
    # Back to back in tag order, but a packet cannot leave before its message starts.
    depart = sent + np.maximum.accumulate(s - (sent - w))
    done = np.full(idx.size, -np.inf)
    np.maximum.at(done, msg[order], depart)
    finish[idx] = done
    return finish


def _per_nic_finish(start_ns: np.ndarray, packets: np.ndarray, full_ns: np.ndarray, last_ns: np.ndarray,
                    nic: np.ndarray) -> np.ndarray:
    finish = np.full(start_ns.size, np.nan)
    frame = pd.DataFrame({"nic": nic})
    for _, idx in frame.groupby("nic", sort=False).indices.items():
        finish[idx] = round_robin_finish(start_ns[idx], packets[idx], full_ns[idx], last_ns[idx])
    return finish


def wire_bits(bytes_emulated: np.ndarray, packets: np.ndarray) -> np.ndarray:
    """Bits a message puts on each link: its payload plus every packet's headers."""
    return (np.asarray(bytes_emulated, np.float64) + np.asarray(packets, np.float64) * WIRE_OVERHEAD_BYTES) * 8.0


def packet_wire_bits(bytes_emulated: np.ndarray, packets: np.ndarray, payload_bytes: float) -> tuple[np.ndarray, np.ndarray]:
    """Wire bits of a message's full packets and of its last one (the remainder)."""
    b = np.asarray(bytes_emulated, np.float64)
    n = np.maximum(np.asarray(packets, np.float64), 1)
    full = np.minimum(float(payload_bytes), b)
    last = np.maximum(b - (n - 1) * float(payload_bytes), 0.0)
    return (full + WIRE_OVERHEAD_BYTES) * 8.0, (last + WIRE_OVERHEAD_BYTES) * 8.0


def ideal_completion_ns(start_ns: np.ndarray, src: np.ndarray, dst: np.ndarray, bytes_emulated: np.ndarray,
                        packets: np.ndarray, payload_bytes: float, send_rate_bps: np.ndarray,
                        recv_rate_bps: np.ndarray, forward_ns: np.ndarray, idle_path_delay_ns: float) -> np.ndarray:
    """Ideal MCT of each message (ns after its start) on the contention-free timeline.

    Both the sender's and the receiver's NIC take their messages' packets in turn
    (:func:`round_robin_finish`); the message is done when both have carried it, plus the
    store-and-forward of its last packet after the first hop (``forward_ns``) and the idle path
    delay. ``start_ns`` may be absolute: it is re-based before any float arithmetic.
    """
    start = np.asarray(start_ns, dtype=np.int64)
    if start.size == 0:
        return np.empty(0)
    rel = (start - start.min()).astype(np.float64)
    n = np.asarray(packets, dtype=np.int64)
    full_bits, last_bits = packet_wire_bits(bytes_emulated, n, payload_bytes)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_rate = np.where(np.asarray(send_rate_bps, np.float64) > 0, np.asarray(send_rate_bps, np.float64), np.nan)
        r_rate = np.where(np.asarray(recv_rate_bps, np.float64) > 0, np.asarray(recv_rate_bps, np.float64), np.nan)
        sent = _per_nic_finish(rel, n, full_bits * 1e9 / s_rate, last_bits * 1e9 / s_rate, np.asarray(src, dtype=object))
        received = _per_nic_finish(rel, n, full_bits * 1e9 / r_rate, last_bits * 1e9 / r_rate,
                                   np.asarray(dst, dtype=object))
    both = np.fmax(sent, received)  # a NIC of unknown rate does not constrain
    return both - rel + np.asarray(forward_ns, np.float64) + float(idle_path_delay_ns)


def line_rate_bound_ns(bits: np.ndarray, send_rate_bps: np.ndarray, forward_ns: np.ndarray) -> np.ndarray:
    """The fastest a message can complete: its wire bits at the sender's line rate, plus the
    store-and-forward of its last packet (ns)."""
    r = np.asarray(send_rate_bps, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, np.asarray(bits, np.float64) * 1e9 / r, np.nan) + np.asarray(forward_ns, np.float64)


def recovery_completion_ns(first_lost_tx_ns: np.ndarray, resend_bytes: np.ndarray,
                           line_rate_bps: np.ndarray, rto_ns: float,
                           idle_path_delay_ns: float) -> np.ndarray:
    """Completion instant of an incomplete message under go-back-N after a retransmission timeout.

    The timer of the first lost packet expires ``rto_ns`` after it was sent; the sender then
    resends everything from that packet on at its line rate, and the last resent packet needs the
    idle path delay to arrive. Resent packets are assumed delivered (one recovery round): the
    model gives a lower bound on what a real transport would see (docs/metrics.md, MCT).

    Returns nanoseconds on the clock of ``first_lost_tx_ns``; ``nan`` where the rate is unknown.
    Pass times relative to the scheduled start: absolute epoch nanoseconds (~1.7e18) do not fit a
    float64 to better than 256 ns.
    """
    t = np.asarray(first_lost_tx_ns, dtype=np.float64)
    b = np.asarray(resend_bytes, dtype=np.float64)
    r = np.asarray(line_rate_bps, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ser = np.where(r > 0, b * 8e9 / r, np.nan)
    return t + float(rto_ns) + ser + float(idle_path_delay_ns)


def resend_completion_ns(first_lost_ns: np.ndarray, resend_bytes: np.ndarray, payload_bytes: float,
                         rto_ns: float, src: np.ndarray, dst: np.ndarray, send_rate_bps: np.ndarray,
                         recv_rate_bps: np.ndarray, forward_ns: np.ndarray, idle_path_delay_ns: float) -> np.ndarray:
    """When each recovered message completes, in ns after its first lost packet was sent, if the
    resends share the NICs they cross. ``first_lost_ns`` is int64 on one clock for all messages
    (absolute is fine: it is re-based before any float arithmetic).

    Each resend is a message of its own: it starts when the first lost packet's timer expires
    (``first_lost_ns + rto_ns``), carries ``resend_bytes`` (go-back-N: everything from that packet
    on) and takes its turn on its sender's and its receiver's NIC with the *other resends* of the
    run (:func:`ideal_completion_ns`). :func:`recovery_completion_ns` alone resends every message at
    its sender's full line rate at once: when many senders lose packets into one port (an incast,
    a hot expert's dispatch), their resends would all "arrive" in one packet time, which no port
    can carry. The originals still arriving at that port are not counted, so this stays a lower
    bound: one recovery round, every resend delivered.
    """
    timer_ns = np.asarray(first_lost_ns, np.int64) + int(rto_ns)
    if timer_ns.size == 0:
        return np.empty(0)
    resend = np.asarray(resend_bytes, np.float64)
    packets = np.maximum(np.ceil(resend / float(payload_bytes)), 1).astype(np.int64)
    return float(rto_ns) + ideal_completion_ns(timer_ns, src, dst, resend, packets, payload_bytes, send_rate_bps,
                                               recv_rate_bps, forward_ns, idle_path_delay_ns)


def message_completion(messages: pd.DataFrame, receipt: pd.DataFrame, send_rate_bps: np.ndarray,
                       recv_rate_bps: np.ndarray, idle_path_delay_ns: float, rto_ns: float,
                       payload_bytes: float | None = None) -> pd.DataFrame:
    """The per-message completion table (see the module docstring).

    Parameters
    ----------
    messages : DataFrame
        ``msg_id, src, dst, t_sched_ns, t_tx_first_ns, bytes_emulated, packets`` (MESSAGE_COLUMNS).
    receipt : DataFrame
        Aligned with ``messages``: ``n_rows`` (packet records), ``n_received``, ``last_rx_ns`` (−1 if
        none), ``first_lost_tx_ns`` (−1 if no lost record), ``resend_bytes`` (bytes from the first
        lost packet to the message's end) and ``forward_ns`` (store-and-forward of the last packet
        after the first hop; 0 where unknown).
    send_rate_bps, recv_rate_bps : ndarray
        Line rate of the sender's and the receiver's NIC per message (emulated units, like
        ``bytes_emulated``).
    idle_path_delay_ns, rto_ns : float
        The engine's idle per-packet latency and the loss-recovery timeout.
    payload_bytes : float, optional
        Payload of a full packet (run.json ``payload_bytes``); default: each message's bytes
        spread evenly over its packets.

    Returns
    -------
    DataFrame
        ``done_ns`` (absolute int64, −1 when unknown), ``mct_ns``, ``ideal_ns``, ``line_rate_ns``,
        ``slowdown`` (float, ``nan`` when unknown), ``recovered`` (bool).
    """
    sched = messages["t_sched_ns"].to_numpy(np.int64)
    n_pk = np.maximum(messages["packets"].to_numpy(np.int64), receipt["n_rows"].to_numpy(np.int64))
    n_rx = receipt["n_received"].to_numpy(np.int64)
    recovered = n_rx < n_pk
    first_lost = receipt["first_lost_tx_ns"].to_numpy(np.int64)
    resend = receipt["resend_bytes"].to_numpy(np.float64)
    # Lost packets with no record at all: assume the worst case, resend the whole message from
    # its first transmission.
    no_record = recovered & (first_lost < 0)
    first_lost = np.where(no_record, messages["t_tx_first_ns"].to_numpy(np.int64), first_lost)
    first_lost = np.where(first_lost < 0, sched, first_lost)
    resend = np.where(no_record, messages["bytes_emulated"].to_numpy(np.float64), resend)
    send_rate = np.asarray(send_rate_bps, np.float64)
    rx_mct = (receipt["last_rx_ns"].to_numpy(np.int64) - sched).astype(np.float64)
    bits = wire_bits(messages["bytes_emulated"].to_numpy(), messages["packets"].to_numpy())
    forward = receipt["forward_ns"].to_numpy(np.float64) if "forward_ns" in receipt else np.zeros(len(sched))
    n_packets = messages["packets"].to_numpy(np.int64)
    emulated = messages["bytes_emulated"].to_numpy(np.float64)
    if payload_bytes is None:
        payload_bytes = float(np.max(np.ceil(emulated / np.maximum(n_packets, 1)), initial=1.0))
    # The resends share one timeline: absolute times in, re-based to each message's start after.
    rec_mct = np.full(len(sched), np.nan)
    rec_mct[recovered] = (first_lost[recovered] - sched[recovered]) + resend_completion_ns(
        first_lost[recovered], resend[recovered], payload_bytes, rto_ns,
        messages["src"].to_numpy(dtype=object)[recovered], messages["dst"].to_numpy(dtype=object)[recovered],
        send_rate[recovered], np.asarray(recv_rate_bps, np.float64)[recovered], forward[recovered],
        idle_path_delay_ns)
    # The ideal timeline starts each message when the engine actually began sending it (never
    # before its schedule): how late an engine starts is its own fidelity signal (sender
    # lateness), not the fabric's doing.
    tx_first = messages["t_tx_first_ns"].to_numpy(np.int64)
    began = np.where(tx_first > sched, tx_first, sched)
    ideal = (began - sched) + ideal_completion_ns(
        began, messages["src"].to_numpy(dtype=object), messages["dst"].to_numpy(dtype=object), emulated, n_packets,
        payload_bytes, send_rate, recv_rate_bps, forward, idle_path_delay_ns)
    # A message that lost packets cannot complete before its contention-free ideal either.
    mct = np.where(recovered, np.fmax(rec_mct, ideal), rx_mct)
    done = np.where(np.isfinite(mct), sched + np.nan_to_num(np.rint(mct)).astype(np.int64), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slowdown = np.where(ideal > 0, mct / ideal, np.nan)
    return pd.DataFrame({"done_ns": done, "mct_ns": mct, "ideal_ns": ideal,
                         "line_rate_ns": line_rate_bound_ns(bits, send_rate, forward),
                         "slowdown": slowdown, "recovered": recovered}, index=messages.index)


def group_completion(group: np.ndarray, kind: np.ndarray, t_sched_ns: np.ndarray, done_ns: np.ndarray,
                     recovered: np.ndarray, ideal_done_ns: np.ndarray | None = None) -> pd.DataFrame:
    """Group completion: a collective step or a request's KV shards is done when its last member
    is: ``max(done) − min(t_sched)`` over the members (and the same over ideal completions).

    Messages with an empty group are not grouped. A group's kind is its members' most common kind
    (ties: alphabetical first). ``done_ns`` is absolute int64 nanoseconds, −1 when unknown (the
    group's completion is then nan).

    Returns
    -------
    DataFrame indexed by group: ``kind``, ``members``, ``start_ns``, ``completion_ns``,
    ``ideal_ns`` (nan without ``ideal_done_ns``), ``recovered`` (any member).
    """
    # Integer nanoseconds throughout: epoch times do not survive a float64 round trip.
    t = np.asarray(t_sched_ns, dtype=np.int64)
    ideal_done = np.full(t.size, -1, dtype=np.int64) if ideal_done_ns is None else np.asarray(ideal_done_ns, np.int64)
    f = pd.DataFrame({"group": np.asarray(group, dtype=object), "kind": np.asarray(kind, dtype=object),
                      "t": t, "done": np.asarray(done_ns, dtype=np.int64), "ideal": ideal_done,
                      "rec": np.asarray(recovered, dtype=bool)})
    f = f[f["group"].notna() & (f["group"].astype(str) != "")]
    if f.empty:
        return pd.DataFrame({"kind": [], "members": [], "start_ns": [], "completion_ns": [], "ideal_ns": [],
                             "recovered": []})
    g = f.groupby("group", sort=True)
    kinds = (f.groupby(["group", "kind"], sort=True).size().reset_index(name="c")
             .sort_values(["group", "c", "kind"], ascending=[True, False, True], kind="stable")
             .drop_duplicates("group").set_index("group")["kind"])
    start = g["t"].min()
    completion = (g["done"].max() - start).astype(np.float64)
    completion[(f["done"] < 0).groupby(f["group"], sort=True).any()] = np.nan  # a member never done
    ideal = (g["ideal"].max() - start).astype(np.float64)
    ideal[(f["ideal"] < 0).groupby(f["group"], sort=True).any()] = np.nan
    return pd.DataFrame({"kind": kinds, "members": g.size(), "start_ns": start, "completion_ns": completion,
                         "ideal_ns": ideal, "recovered": g["rec"].any()})
