"""Probe packets in a packet capture → packet records and per-flow metrics (``fabric pcap``).

This module owns reading captures: our own (``fabric run --capture LINK`` writes
``RUN/captures/<link_id>.pcap``) or any pcap/pcapng holding our probe packets (UDP to
:data:`~fabric.probe.PROBE_UDP_PORT`, header of :mod:`fabric.probe`). It turns them into the
record format of packets.parquet (:data:`fabric.rundir.PACKET_COLUMNS`) and computes per-flow
figures with the docs/metrics.md definitions of :mod:`fabric.analysis.metrics`.

What the numbers mean
---------------------
* ``rx_ns`` is the *capture timestamp*: when the packet passed the capture point (a link end),
  not when a receiver got it. "OWD" from a capture is therefore **sender tx → capture point**;
  on a capture of the receiving host's link it is the network part of the one-way delay.
  ``tx_ns`` is the sender's CLOCK_REALTIME from the probe header; both clocks are the same
  kernel clock in an emulation, not necessarily so for a foreign capture.
* The header's ``tx_ns`` is stamped in user space just before ``send()``, so it also counts the
  time a packet waited in the sender's own NIC queue; packets.parquet's ``tx_ns`` is the kernel
  TX timestamp taken when it left that queue. Capture OWD is therefore the larger by that wait.
* tcpdump's default pcap timestamps have microsecond resolution (reported as
  ``timestamp_resolution_ns``); delays of a few microseconds are then coarse, and a capture next
  to the sender can show OWD slightly below zero.
* **Loss** is "not seen at this capture point": for every message seen, the header's ``count``
  says which sequence numbers should have passed; the missing ones are lost rows (``rx_ns = −1``,
  ``tx_ns = −1`` and ``bytes = −1``: a packet never captured has no known send time or size).
  Messages of which no packet passed are invisible. Only meaningful where every packet of a flow
  must cross the captured link (a host link); on a fabric link under ECMP or spraying, a flow's
  packets legitimately take other links.
* Duplicates (the same packet captured twice) count once: the first capture wins, ``copies``
  says how many were seen. ``path`` is the spine/NCF index from DSCP (``dscp − 1``, −1 if 0).
* ``src``/``dst`` are IPv4 address strings, and ``msg_id`` is the header's *wire* message id,
  unless a run directory is given: then hosts get their names, ``msg_id`` becomes the schedule's
  msg_id (the agents number noise probes 0..P−1 and the load P.. on the wire), and noise-probe
  packets are left out of the records and counted.

Reading is lenient: frames that are not IPv4, not UDP to the probe port, cut by the snap length
inside the probe header, or that carry another header are skipped and counted by reason.
The file is read with scapy's pcap/pcapng reader; frames are decoded by a ``struct`` fast path
for the usual link types, and by scapy dissection with the :class:`FabricProbe` layer for the
others (or for all, ``engine="scapy"``: ~100× slower). A test pins that both agree.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from fabric import rundir
from fabric.analysis import metrics as M
from fabric.errors import RunDirError, SpecError
from fabric.jsonio import plain
from fabric.probe import HEADER_BYTES, MAGIC, PROBE_UDP_PORT, unpack_header

SKIP_REASONS = ("not_ipv4", "not_probe_port", "truncated", "not_probe_header")
FRAME_COLUMNS = ["msg_id", "seq", "count", "src", "dst", "bytes", "tx_ns", "rx_ns", "path"]
ENGINES = ("auto", "scapy")

NOTES = {
    "owd": "OWD here is sender tx (probe header, user space before send(), so it includes the sender's own "
           "NIC queue) -> capture point (capture timestamp), not to the receiver",
    "loss": "lost = expected by the header's packet count but not seen at this capture point; messages "
            "with no packet captured are invisible; meaningful only where all of a flow's packets "
            "cross this link",
    "duplicates": "a packet captured more than once counts once (first capture)",
    "rfc3550_j": "RFC 3550 interarrival jitter (iperf3's smoothed jitter) over transit = capture time - "
                 "header tx, in capture order; compatibility figure only",
}

_VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)
_RAW_IP_LINKTYPES = (12, 14, 101, 228)   # DLT_RAW variants and LINKTYPE_IPV4
_UDP = struct.Struct("!HHHH")


# --------------------------------------------------------------------------------------------
# Frame decoding
# --------------------------------------------------------------------------------------------

def _ip_offset(data: bytes, linktype: int) -> int | None:
    """Offset of the IPv4 header in a frame, None if it carries no IPv4, -1 for an unknown link type."""
    if linktype == 1:  # Ethernet, with up to two VLAN tags
        if len(data) < 14:
            return None
        off, ethertype = 14, int.from_bytes(data[12:14], "big")
        while ethertype in _VLAN_ETHERTYPES and len(data) >= off + 4:
            ethertype = int.from_bytes(data[off + 2:off + 4], "big")
            off += 4
        return off if ethertype == 0x0800 else None
    if linktype in _RAW_IP_LINKTYPES:
        return 0 if data and data[0] >> 4 == 4 else None
    if linktype == 113:  # Linux cooked (tcpdump -i any)
        return 16 if data[14:16] == b"\x08\x00" else None
    if linktype == 276:  # Linux cooked v2
        return 20 if data[0:2] == b"\x08\x00" else None
    return -1


def decode_frame(data: bytes, linktype: int, port: int = PROBE_UDP_PORT):
    """Fast path: ``(None, fields)`` for a probe packet, ``(reason, None)`` for a skipped frame,
    ``("unsupported", None)`` for a link type this decoder does not know.

    ``fields`` = ``(msg_id, seq, count, src, dst, bytes, tx_ns, dscp)``; ``bytes`` is the UDP
    payload size from the UDP header (unaffected by the snap length).
    """
    off = _ip_offset(data, linktype)
    if off == -1:
        return "unsupported", None
    if off is None or len(data) < off + 20 or data[off] >> 4 != 4:
        return "not_ipv4", None
    ihl = (data[off] & 0x0F) * 4
    frag_offset = int.from_bytes(data[off + 6:off + 8], "big") & 0x1FFF
    if data[off + 9] != 17 or frag_offset:
        return "not_probe_port", None
    u = off + ihl
    if len(data) < u + 8:
        return "truncated", None
    _sport, dport, udp_len, _ = _UDP.unpack_from(data, u)
    if dport != port:
        return "not_probe_port", None
    if udp_len - 8 < HEADER_BYTES:
        return "not_probe_header", None
    payload = data[u + 8:u + udp_len]  # udp_len bounds it: Ethernet padding is not payload
    if len(payload) < HEADER_BYTES:
        return "truncated", None
    header = unpack_header(payload)
    if header is None:
        return "not_probe_header", None
    msg_id, seq, count, tx_ns = header
    return None, (msg_id, seq, count, socket.inet_ntoa(data[off + 12:off + 16]),
                  socket.inet_ntoa(data[off + 16:off + 20]), udp_len - 8, tx_ns, data[off + 1] >> 2)


def dissect_frame(data: bytes, linktype: int, port: int = PROBE_UDP_PORT):
    """Same contract as :func:`decode_frame`, by scapy dissection with the FabricProbe layer."""
    from scapy.config import conf
    from scapy.layers.inet import IP, UDP

    from fabric.probe import scapy_layer

    probe_cls = scapy_layer()
    cls = conf.l2types.num2layer.get(linktype, conf.raw_layer)
    try:
        pkt = cls(data)
    except Exception:  # scapy raises anything on garbage; a frame it cannot parse is not ours
        return "not_ipv4", None
    ip = pkt.getlayer(IP)
    if ip is None:
        return "not_ipv4", None
    if ip.proto != 17 or ip.frag:
        return "not_probe_port", None
    udp = ip.payload
    if not isinstance(udp, UDP) or udp.len is None:
        return "truncated", None
    if udp.dport != port:
        return "not_probe_port", None
    if udp.len - 8 < HEADER_BYTES:
        return "not_probe_header", None
    probe = udp.payload
    if not isinstance(probe, probe_cls):
        # Truncated (scapy fell back to Raw), or another UDP binding matched first (e.g. a source
        # port of 53 is DNS to scapy): dissect the payload as our header explicitly.
        raw = bytes(udp.payload)[:udp.len - 8]
        if len(raw) < HEADER_BYTES:
            return "truncated", None
        probe = probe_cls(raw)
    if probe.magic != MAGIC:
        return "not_probe_header", None
    return None, (int(probe.msg_id), int(probe.seq), int(probe.count), ip.src, ip.dst, int(udp.len) - 8,
                  int(probe.tx_ns), int(ip.tos) >> 2)


# --------------------------------------------------------------------------------------------
# Reading a capture
# --------------------------------------------------------------------------------------------

def _open(path: Path):
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapReader

    try:
        return RawPcapReader(str(path))
    except Scapy_Exception as exc:
        raise SpecError(str(path), "", f"not a pcap or pcapng capture ({exc})") from None


def read_capture(path: Path, engine: str = "auto", port: int = PROBE_UDP_PORT) -> tuple[pd.DataFrame, dict]:
    """Every captured probe packet copy, in file order, and what was skipped.

    Parameters
    ----------
    path : Path
        pcap (µs or ns timestamps) or pcapng file.
    engine : {"auto", "scapy"}
        ``auto``: struct fast path for Ethernet / Linux cooked / raw IPv4 frames, scapy dissection
        for other link types; ``scapy``: scapy dissection for every frame.

    Returns
    -------
    frames : DataFrame
        :data:`FRAME_COLUMNS`, one row per captured copy; ``rx_ns`` = capture timestamp (ns);
        ``path`` from DSCP.
    stats : dict
        ``format``, ``linktypes``, ``frames``, ``probe_copies``, ``skipped`` (per reason),
        ``timestamp_resolution_ns``, ``engine``.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    from scapy.utils import RawPcapNgReader

    reader = _open(Path(path))
    is_ng = isinstance(reader, RawPcapNgReader)
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    rows: list = []
    linktypes: set = set()
    resolutions: set = set()
    n_frames = 0
    decode = dissect_frame if engine == "scapy" else decode_frame
    try:
        for data, meta in reader:
            n_frames += 1
            if is_ng:
                linktype, tsresol = meta.linktype, meta.tsresol
                rx_ns = ((meta.tshigh << 32) | meta.tslow) * 1_000_000_000 // tsresol
                resolutions.add(max(1, 1_000_000_000 // tsresol))
            else:
                linktype = reader.linktype
                unit = 1 if reader.nano else 1000
                rx_ns = meta.sec * 1_000_000_000 + meta.usec * unit
                resolutions.add(unit)
            linktypes.add(int(linktype))
            reason, fields = decode(data, linktype, port)
            if reason == "unsupported":
                reason, fields = dissect_frame(data, linktype, port)
            if reason is not None:
                skipped[reason] += 1
                continue
            msg_id, seq, count, src, dst, nbytes, tx_ns, dscp = fields
            rows.append((msg_id, seq, count, src, dst, nbytes, tx_ns, rx_ns, dscp - 1 if dscp else -1))
    finally:
        reader.close()
    frames = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    frames = frames.astype({"msg_id": "int64", "seq": "int64", "count": "int64", "src": "object", "dst": "object",
                            "bytes": "int32", "tx_ns": "int64", "rx_ns": "int64", "path": "int16"})
    stats = {"format": "pcapng" if is_ng else "pcap", "linktypes": sorted(linktypes), "frames": n_frames,
             "probe_copies": len(frames), "skipped": skipped,
             "timestamp_resolution_ns": max(resolutions) if resolutions else None, "engine": engine}
    return frames, stats


def packet_records(frames: pd.DataFrame) -> pd.DataFrame:
    """Captured copies → one row per packet of every message seen, packets.parquet format.

    Copies of one (src, dst, msg_id, seq) collapse to the earliest capture (``copies`` counts
    them); sequence numbers below the header's ``count`` that were never captured become lost
    rows (``rx_ns``, ``tx_ns`` and ``bytes`` −1, ``copies`` 0, ``path`` −1). Rows are ordered by
    (src, dst, msg_id, seq).
    """
    cols = rundir.PACKET_COLUMNS
    if frames.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})
    key = ["src", "dst", "msg_id", "seq"]
    f = frames.sort_values("rx_ns", kind="stable")
    g = f.groupby(key, sort=True)
    got = g.first()
    got["copies"] = g.size()
    got = got.reset_index()
    # Expected packets per message: 0..count-1 (count from the header; the largest seen, and at
    # least one above the largest sequence number seen, in case a header lied).
    msgs = got.groupby(["src", "dst", "msg_id"], sort=True).agg(count=("count", "max"), top=("seq", "max")).reset_index()
    n = np.maximum(msgs["count"].to_numpy(np.int64), msgs["top"].to_numpy(np.int64) + 1)
    rep = np.repeat(np.arange(len(msgs)), n)
    starts = np.r_[0, np.cumsum(n)[:-1]]
    expected = pd.DataFrame({"src": msgs["src"].to_numpy(dtype=object)[rep],
                             "dst": msgs["dst"].to_numpy(dtype=object)[rep],
                             "msg_id": msgs["msg_id"].to_numpy(np.int64)[rep],
                             "seq": np.arange(int(n.sum())) - np.repeat(starts, n)})
    # Join on row positions, not values: a left join would turn the int64 columns of missing
    # rows into float64 and epoch nanoseconds do not survive that.
    pos = expected.merge(got[key].assign(_pos=np.arange(len(got))), on=key, how="left")["_pos"].to_numpy()
    have = ~np.isnan(pos)
    at = pos[have].astype(np.int64)
    out = expected
    for c, missing in (("bytes", -1), ("tx_ns", -1), ("rx_ns", -1), ("copies", 0), ("path", -1)):
        v = np.full(len(out), missing, dtype=np.int64)
        v[have] = got[c].to_numpy(np.int64)[at]
        out[c] = v
    out["ser_ns"] = 0  # a capture sees the wire at one point: nothing is added to its stamps
    return out.reindex(columns=list(cols)).astype(cols).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Run directories: wire ids and addresses → schedule msg_ids and host names
# --------------------------------------------------------------------------------------------

def find_run_dir(capture: Path) -> Path | None:
    """The run directory of ``RUN/captures/<link>.pcap``, or None."""
    p = Path(capture).resolve()
    if p.parent.name == "captures" and (p.parent.parent / "run.json").exists():
        return p.parent.parent
    return None


def run_id_map(run_dir: Path) -> dict:
    """What a run directory says about its wire ids: ``noise_probes`` (P: wire ids 0..P−1 are
    the idle-fabric probes), ``msg_ids`` (schedule msg_id of wire id P+i) and ``hosts``
    (IPv4 address → host name, from run.json's ``nodes``)."""
    run_dir = Path(run_dir)
    run = rundir.read_run_json(run_dir)
    noise = rundir.read_table(run_dir, "noise", required=False)
    messages = rundir.read_table(run_dir, "messages")
    hosts = {d["address"]: node for node, d in run["nodes"].items()
             if d.get("role") == "host" and d.get("address")}
    if not hosts:
        raise RunDirError(f"{run_dir}: run.json records no host addresses (nodes); cannot map addresses to hosts")
    return {"noise_probes": int(noise["msg_id"].nunique()) if len(noise) else 0,
            "msg_ids": messages["msg_id"].to_numpy(np.int64), "hosts": hosts}


def apply_run_map(frames: pd.DataFrame, id_map: dict) -> tuple[pd.DataFrame, dict]:
    """Translate wire ids and addresses of captured copies with :func:`run_id_map`'s answer.

    Returns the load's copies (noise probes dropped) and counts of what was dropped.
    """
    p = id_map["noise_probes"]
    msg_ids = id_map["msg_ids"]
    wire = frames["msg_id"].to_numpy(np.int64)
    noise = wire < p
    unknown = wire >= p + len(msg_ids)
    keep = ~noise & ~unknown
    out = frames[keep].copy()
    out["msg_id"] = msg_ids[wire[keep] - p]
    for c in ("src", "dst"):
        out[c] = out[c].map(lambda a: id_map["hosts"].get(a, a))
    return out.reset_index(drop=True), {"noise_probe_copies": int(noise.sum()),
                                        "unknown_wire_id_copies": int(unknown.sum())}


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------

def _endpoint_key(name: str):
    try:
        return (0, int(ipaddress.ip_address(name)), "")
    except ValueError:
        m = re.match(r"^([a-z]+)(\d+)$", str(name))
        return (1, int(m.group(2)), m.group(1)) if m else (2, 0, str(name))


def flow_metrics(records: pd.DataFrame, tmax_ns: int | None = None) -> dict:
    """Per (src, dst) flow, the docs/metrics.md per-packet figures from packet records.

    ``records`` has :data:`~fabric.rundir.PACKET_COLUMNS` (lost packets ``rx_ns = −1``; their
    ``tx_ns`` may be −1). A packet received later than ``tmax_ns`` after its send counts as lost.
    The stream of IPDV, loss episodes and reordering is the flow in sending order: by ``tx_ns``,
    a lost packet whose send time is unknown placed after the previous packet of its message.

    Returns
    -------
    dict
        ``"src->dst"`` → ``src``, ``dst``, ``messages``, ``packets``, ``captured``, ``owd_us``
        (both flavours), ``pdv_us``, ``ipdv_us``, ``rfc3550_j_us``, ``loss`` / ``loss_ratio``,
        ``loss_episodes``, ``reorder``, ``paths`` (packets per spine/NCF index), ``delivered_bytes``.
        Not JSON-ready (``inf``/``nan`` floats): see :func:`fabric.jsonio.plain`.
    """
    if records.empty:
        return {}
    r = records.sort_values(["src", "dst", "msg_id", "seq"], kind="stable").reset_index(drop=True)
    tx = r["tx_ns"].to_numpy(np.int64)
    rx = r["rx_ns"].to_numpy(np.int64)
    # Sending position of packets with unknown tx: the previous packet of the message (ffill),
    # or the next one for a message's leading losses (bfill).
    msg_code = pd.factorize(pd.MultiIndex.from_arrays([r["src"], r["dst"], r["msg_id"]]))[0]
    t0 = int(tx[tx >= 0].min()) if (tx >= 0).any() else 0
    t_known = pd.Series(np.where(tx >= 0, tx - t0, np.nan))  # relative: exact in float64
    t_fill = t_known.groupby(msg_code).ffill()
    t_fill = t_fill.fillna(t_known.groupby(msg_code).bfill()).fillna(-1).to_numpy(np.int64)
    flow_codes, flow_index = pd.factorize(pd.MultiIndex.from_arrays([r["src"], r["dst"]]), sort=True)
    order = np.lexsort((r["seq"].to_numpy(), r["msg_id"].to_numpy(), t_fill, flow_codes))
    flow = flow_codes[order]
    tx, rx = tx[order], rx[order]
    received = (rx >= 0) & (tx >= 0)
    owd = np.where(received, rx - tx, 0)
    if tmax_ns is not None:
        received &= owd <= int(tmax_ns)
    copies = r["copies"].to_numpy(np.int64)[order]
    nbytes = r["bytes"].to_numpy(np.int64)[order]
    path = r["path"].to_numpy(np.int64)[order]
    msg = r["msg_id"].to_numpy(np.int64)[order]

    out: dict = {}
    bounds = np.flatnonzero(np.r_[True, flow[1:] != flow[:-1], True])
    flows = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        src, dst = flow_index[flow[a]]
        flows.append((src, dst, a, b))
    flows.sort(key=lambda f: (_endpoint_key(f[0]), _endpoint_key(f[1])))
    for src, dst, a, b in flows:
        rxm = received[a:b]
        d = owd[a:b][rxm]
        n_sent, n_rx = int(b - a), int(d.size)
        one = np.zeros(n_sent, dtype=np.int64)
        e: dict = {"src": str(src), "dst": str(dst), "messages": int(np.unique(msg[a:b]).size),
                   "packets": n_sent, "captured": n_rx}
        e["owd_us"] = M.delay_stats(d, n_sent - n_rx, unit_ns=1e3)
        e["pdv_us"] = M.pdv_stats(d, unit_ns=1e3)
        iv, undef = M.ipdv(owd[a:b], rxm, one)
        e["ipdv_us"] = M.ipdv_stats(iv, undef, unit_ns=1e3)
        # Arrival (capture) order; transit relative to the flow's minimum keeps float64 exact
        # even when sender and capture clocks differ by an epoch.
        rank = np.arange(n_sent)
        arr = np.flatnonzero(rxm)
        arr = arr[np.lexsort((arr, rx[a:b][arr]))]
        transit = owd[a:b][arr]
        j = M.rfc3550_jitter(transit - (transit.min() if transit.size else 0), np.zeros(arr.size, dtype=np.int64))
        e["rfc3550_j_us"] = float(j[0]) / 1e3 if j.size else M.NAN
        e["loss"] = M.loss_stats(n_sent, n_rx, tmax_ns, M.duplicate_count(copies[a:b][rxm]))
        e["loss_ratio"] = e["loss"]["ratio"]
        span_s = (int(rx[a:b][rxm].max()) - int(tx[a:b][rxm].min())) / 1e9 if n_rx else None
        e["loss_episodes"] = M.loss_episodes(~rxm, one, duration_s=span_s)
        e["reorder"] = M.reordering(rank[arr], np.zeros(arr.size, dtype=np.int64))
        e["delivered_bytes"] = int(nbytes[a:b][rxm].sum())
        p, c = np.unique(path[a:b][rxm], return_counts=True)
        e["paths"] = {str(int(k)): int(v) for k, v in zip(p, c)}
        out[f"{src}->{dst}"] = e
    return out


def analyze_capture(path: Path, tmax_ns: int | None = None, run_dir: Path | None = None,
                    engine: str = "auto") -> dict:
    """Read a capture and return its JSON-ready analysis: ``capture`` (file facts and skipped
    frames), ``run`` (the run directory used for names, if any), ``notes`` (what the figures
    mean), ``tmax_ns`` and ``flows`` (:func:`flow_metrics`)."""
    frames, stats = read_capture(Path(path), engine=engine)
    run_info = None
    if run_dir is not None:
        frames, dropped = apply_run_map(frames, run_id_map(run_dir))
        run_info = {"dir": str(run_dir), **dropped,
                    "note": "msg_id = schedule msg_id, src/dst = host names; noise probes left out"}
    records = packet_records(frames)
    if len(frames):
        stats["first_rx_ns"] = int(frames["rx_ns"].min())
        stats["last_rx_ns"] = int(frames["rx_ns"].max())
        stats["span_s"] = (stats["last_rx_ns"] - stats["first_rx_ns"]) / 1e9
    result = {"capture": {"file": str(path), **stats}, "run": run_info, "notes": dict(NOTES),
              "tmax_ns": None if tmax_ns is None else int(tmax_ns),
              "addresses": "host names" if run_info else "IPv4 address strings",
              "flows": flow_metrics(records, tmax_ns)}
    return plain(result)


def dumps(result: dict) -> str:
    return json.dumps(result, indent=2, sort_keys=True)
