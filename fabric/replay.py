"""What a run puts on the fabric, the same for both engines (:mod:`fabric.emu`, :mod:`fabric.sim`).

A Schedule's messages become packets at scale ``k`` (bytes ÷ k, at least one probe header, cut into
payload-sized packets), each packet costs :data:`~fabric.probe.WIRE_OVERHEAD_BYTES` on the wire, an
egress buffer is the real one ÷ k but never below :data:`MIN_BUFFER_PACKETS` packets, and an
idle-fabric noise probe runs in the :data:`LEAD_S` before schedule time 0. Both engines replay a
schedule through these definitions, so a cross-check compares the fabrics, not two readings of
the schedule.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from fabric.probe import HEADER_BYTES, WIRE_OVERHEAD_BYTES
from fabric.topology import hosts

NOISE_PROBE_PAYLOAD_BYTES = 64
NOISE_PROBE_SPAN_S = 0.4
NOISE_PROBES_PER_PAIR = 20
LEAD_S = 0.6           # noise probes run in the LEAD_S before schedule time 0
MIN_BUFFER_PACKETS = 4


def wire_packet_bytes(payload_bytes: int) -> int:
    return payload_bytes + WIRE_OVERHEAD_BYTES


def shaped_buffer_bytes(buffer_bytes: float, k: float, payload_bytes: int) -> int:
    """Emulated buffer: real bytes ÷ k, but never below four full packets.

    Packets are not scaled, so a real shallow buffer divided by k can be smaller than one packet;
    four packets is the least that still absorbs back-to-back arrivals from two ports.
    """
    return int(max(MIN_BUFFER_PACKETS * wire_packet_bytes(payload_bytes), round(buffer_bytes / k)))


def emulated_sizes(schedule: pd.DataFrame, k: float, payload_bytes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per message: emulated bytes (≥ one header), packet count, payload of the last packet."""
    emulated = np.maximum(np.round(schedule["bytes"].to_numpy() / k), HEADER_BYTES).astype(np.int64)
    packets = np.ceil(emulated / payload_bytes).astype(np.int64)
    last = emulated - (packets - 1) * payload_bytes
    last = np.maximum(last, HEADER_BYTES)
    return emulated, packets, last


def noise_probe_schedule(g: nx.MultiGraph, lead_s: float) -> pd.DataFrame:
    """Low-rate single-packet probes between host pairs on different edge switches, before t=0."""
    names = hosts(g)
    per_edge = g.graph["spec"].hosts_per_edge
    pairs = [(names[i], names[(i + per_edge) % len(names)]) for i in range(len(names))
             if g.nodes[names[i]]["edge"] != g.nodes[names[(i + per_edge) % len(names)]]["edge"]]
    rows = []
    n = len(pairs) * NOISE_PROBES_PER_PAIR
    for j in range(n):
        src, dst = pairs[j % len(pairs)]
        rows.append((j, -lead_s + NOISE_PROBE_SPAN_S * j / max(n, 1), src, dst))
    return pd.DataFrame(rows, columns=["msg_id", "t_start_s", "src", "dst"])
