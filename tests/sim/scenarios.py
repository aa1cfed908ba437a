"""Designs and schedules of the simulator tests, with the figures the tests derive from them.

Each design is written as YAML (the format of ``topologies/*.yaml``) and loaded like a shipped one.
All runs are at real rates (k = 1), 400G, 500 ns links, 4 KB payloads. Scenarios that share a
design share one run (one ns-3 process each: importing and compiling costs seconds), separated in
time so that none disturbs another.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from fabric.probe import DEFAULT_PAYLOAD_BYTES, WIRE_OVERHEAD_BYTES
from fabric.specs import load_fabric_spec

RATE_BPS = 400e9
BUFFER_BYTES = 1_000_000
LINK_DELAY_NS = 500
PACKET_WIRE_BYTES = DEFAULT_PAYLOAD_BYTES + WIRE_OVERHEAD_BYTES

# Leaf-spine: 2 leaves x 2 spines x 10 hosts (h0..h9 on leaf0, h10..h19 on leaf1).
LEAF_SPINE = {"name": "sim-test-ecmp", "kind": "leaf-spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 10,
              "host_link_rate": "400G", "fabric_link_rate": "400G", "buffer_per_port": "1MB",
              "link_delay": "500ns", "load_balancing": {"mode": "ecmp", "hash_seed": 7}}
# Scheduled: 3 NCPs x 2 NCFs x 10 hosts, one host group per NCP; the credit scheduler weighs NCP1 3:1.
SCHEDULED = {"name": "sim-test-ddc", "kind": "scheduled", "ncps": 3, "ncfs": 2, "hosts_per_ncp": 10,
             "host_link_rate": "400G", "fabric_link_rate": "400G", "fabric_speedup": 1.0, "buffer_per_port": "1MB",
             "voq_depth": "64MB", "link_delay": "500ns",
             "scheduler": {"policy": "weighted", "weights": {"ncp1-hosts": 3, "ncp2-hosts": 1}},
             "host_groups": [{"name": f"ncp{i}-hosts", "count": 10, "accelerator": "H100", "role": "any"}
                             for i in range(3)]}
WEIGHTS = {"h10": 3, "h20": 1}
SPRAY_PACKET_CAP = 1000
SPRAY = {"name": "sim-test-spray", "kind": "leaf-spine", "leaves": 2, "spines": 4, "hosts_per_leaf": 4,
         "host_link_rate": "400G", "fabric_link_rate": "400G", "buffer_per_port": "8MB",
         "load_balancing": {"mode": "spray"}}

# 1. N:1 incast on one leaf (h1..hN -> h0): the receiver's port is the only bottleneck.
INCAST_SIZES = (2, 4, 8)
INCAST_BYTES = 8_000_000
INCAST_START_S = {2: 1e-3, 4: 2e-3, 8: 3e-3}
# 3. ECMP flows leaf0 -> leaf1, first in time (their source ports depend on their order).
FLOWS = 48
FLOW_BYTES = 64 * DEFAULT_PAYLOAD_BYTES
# 4. 4:1 incast across the fabric (h10..h13 -> h9) with a victim (h14 -> h8), one packet every 2 us.
CROSS_INCAST_START_S = 4.2e-3
CROSS_INCAST_BYTES = 2_000_000
VICTIM_FROM_S, VICTIM_TO_S, VICTIM_EVERY_S = 4.0e-3, 4.6e-3, 2e-6
# 4b. Weighted credits: h10 (NCP1, weight 3) and h20 (NCP2, weight 1) -> h1 (NCP0) at once.
WEIGHTED_START_S, WEIGHTED_BYTES = 1e-3, 4_000_000
# 5. Idle messages leaf1 -> leaf0, each alone on the fabric.
IDLE_BYTES = (4096, 65_536, 1_000_000, 8_000_000)
IDLE_START_S = 5e-3


def write_design(tmp: Path, data: dict) -> Path:
    path = Path(tmp) / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_design(tmp: Path, data: dict):
    return load_fabric_spec(write_design(tmp, data))


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["t_start_s", "src", "dst", "bytes", "kind", "group"])
    frame.insert(0, "msg_id", range(len(frame)))
    return frame


def flow_rows(start_s: float = 0.0) -> list[tuple]:
    """ECMP flows, one message each, leaf0 host i % 10 -> leaf1 host 10 + (i * 3) % 10."""
    return [(start_s + i * 10e-6, f"h{i % 10}", f"h{10 + (i * 3) % 10}", FLOW_BYTES, "permutation", f"flow{i}")
            for i in range(FLOWS)]


def incast_rows() -> list[tuple]:
    return [(INCAST_START_S[n], f"h{s}", "h0", INCAST_BYTES, "incast", f"incast{n}")
            for n in INCAST_SIZES for s in range(1, n + 1)]


def cross_incast_victim_rows() -> list[tuple]:
    rows = [(CROSS_INCAST_START_S, f"h{s}", "h9", CROSS_INCAST_BYTES, "incast", "cross") for s in range(10, 14)]
    n = int(round((VICTIM_TO_S - VICTIM_FROM_S) / VICTIM_EVERY_S))
    rows += [(VICTIM_FROM_S + i * VICTIM_EVERY_S, "h14", "h8", DEFAULT_PAYLOAD_BYTES, "victim", "") for i in range(n)]
    return rows


def weighted_rows() -> list[tuple]:
    return [(WEIGHTED_START_S, src, "h1", WEIGHTED_BYTES, "incast", "weighted") for src in WEIGHTS]


def idle_rows() -> list[tuple]:
    return [(IDLE_START_S + i * 1e-3, "h15", "h5", size, "background", f"idle{i}") for i, size in enumerate(IDLE_BYTES)]


def leaf_spine_schedule() -> pd.DataFrame:
    """Run A: ECMP flows, the three incasts, the cross incast with its victim, idle messages."""
    return _frame(flow_rows() + incast_rows() + cross_incast_victim_rows() + idle_rows())


def flows_schedule() -> pd.DataFrame:
    """Runs B and C: the ECMP flows of run A alone (same order: same source ports)."""
    return _frame(flow_rows())


def scheduled_schedule() -> pd.DataFrame:
    """Run E: weighted credits, then the cross incast with its victim, on the scheduled fabric."""
    return _frame(weighted_rows() + cross_incast_victim_rows())


def spray_schedule() -> pd.DataFrame:
    """Run D: leaf0 -> leaf1 messages of assorted sizes and times."""
    rows = [(i * 3e-6, f"h{i % 4}", f"h{4 + (i * 3) % 4}", 20_000 + 37_000 * (i % 7), "permutation", "")
            for i in range(64)]
    return _frame(rows)


def packet_time_ns(wire_bytes: float = PACKET_WIRE_BYTES) -> float:
    return wire_bytes * 8e9 / RATE_BPS
