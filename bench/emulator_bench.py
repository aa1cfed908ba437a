"""Benchmark of the emulator's packet budget: delivered packets/s and the share of offered traffic
lost to the emulator itself, at a few offered loads.

A 2-leaf, 4-spine sprayed fabric whose fabric links run at twice the host rate, so no link is
oversubscribed: 8 hosts on each leaf send at 90% of line rate to a host on the other leaf (16
senders).
Buffers are deep (2 GB real, i.e. tens of packets at every k used here) so that spraying's packet
bursts do not drop in the queues: what is lost is lost by the emulator.
The scale factor k sets the offered packet rate. "lost" is sent but not delivered; the part of it
counted by the shaped queues' drop counters is burst loss in the (minimum four-packet) port buffers,
the rest was lost by the emulator itself (CPU: backlog queues, sockets); the sender shortfall shows how far senders fell below line rate
(the other way an overloaded emulator fails: it cannot offer the load at all). OWD p99 at low loads
is mostly per-packet serialization at the scaled-down rates (k× coarser than the real fabric).

Usage::

    sudo .venv/bin/python bench/emulator_bench.py            # 12.5k .. 100k packets/s offered
    sudo .venv/bin/python bench/emulator_bench.py 20000 60000
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from fabric.analysis.fidelity import fidelity_signals, fidelity_verdict
from fabric.emu.plan import wire_packet_bytes
from fabric.emu.runner import RunOptions, run
from fabric.probe import DEFAULT_PAYLOAD_BYTES
from fabric.specs import parse_fabric_spec
from fabric.topology import build_fabric

HOST_RATE_BPS = 400e9
SENDERS = 16
DURATION_S = 2.0
LOAD = 0.9
DEFAULT_LOADS_PPS = (12_500, 25_000, 50_000, 75_000, 100_000)


def bench_spec():
    return parse_fabric_spec({"kind": "leaf-spine", "name": "bench", "leaves": 2, "spines": 4, "hosts_per_leaf": 8,
                              "host_link_rate": "400G", "fabric_link_rate": "800G", "buffer_per_port": "2GB",
                              "load_balancing": {"mode": "spray"}}, "<bench>")


def one_load(offered_pps: float, workdir: Path) -> dict:
    spec = bench_spec()
    g = build_fabric(spec)
    wire_bits = wire_packet_bytes(DEFAULT_PAYLOAD_BYTES) * 8
    # Each sender offers LOAD of its NIC in 32-packet chunks: receivers' ports run at 90%, so the
    # bench measures the emulator, not a queue at utilisation 1.
    k = SENDERS * LOAD * HOST_RATE_BPS / (wire_bits * offered_pps)
    chunk_bytes = 32 * DEFAULT_PAYLOAD_BYTES * k
    period_s = chunk_bytes * 8 / (LOAD * HOST_RATE_BPS)
    chunks = int(DURATION_S / period_s)
    rows = [dict(msg_id=i * chunks + c, t_start_s=c * period_s, src=f"h{i}", dst=f"h{(i + 8) % 16}",
                 bytes=int(chunk_bytes), kind="background") for i in range(SENDERS) for c in range(chunks)]
    out = workdir / f"load-{int(offered_pps)}"
    started = time.time()
    run(spec, g, pd.DataFrame(rows), out, RunOptions(scale=k, dilation=1.0, budget_pps=10**9))
    packets = pd.read_parquet(out / "packets.parquet", columns=["copies", "rx_ns", "tx_ns"])
    got = packets[packets.copies > 0]
    span_s = (got.rx_ns.max() - got.rx_ns.min()) / 1e9
    signals = fidelity_signals(out)
    links = pd.read_parquet(out / "links.parquet")
    queue_drops = int(links[links.t_ns == links.t_ns.max()].drops.sum())
    return {
        "offered_pps": offered_pps, "k": round(k, 1),
        "delivered_pps": round(len(got) / span_s) if span_s > 0 else 0,
        "emulator_loss": 1 - len(got) / len(packets),
        "queue_drop_share": queue_drops / len(packets),
        "sender_shortfall": signals["sender_rate_shortfall"],
        "owd_p99_us": float((got.rx_ns - got.tx_ns).quantile(0.99) / 1e3),
        "verdict": fidelity_verdict(signals)["verdict"],
        "wall_s": round(time.time() - started, 1),
    }


def main(argv: list[str]) -> list[dict]:
    loads = [float(a) for a in argv] or list(DEFAULT_LOADS_PPS)
    results = []
    print(f"emulator budget: {SENDERS} senders at {LOAD:.0%} of line rate for {DURATION_S:g} s, 4 KB payloads, "
          f"sprayed, no link oversubscribed")
    print(f"{'offered pkt/s':>14}{'k':>9}{'delivered pkt/s':>17}{'lost':>8}{'of it in queues':>17}"
          f"{'sender shortfall':>18}{'OWD p99 us':>12}  fidelity")
    with tempfile.TemporaryDirectory(prefix="fabric-bench-") as tmp:
        for load in loads:
            r = one_load(load, Path(tmp))
            results.append(r)
            short = "n/a" if r["sender_shortfall"] is None else f"{r['sender_shortfall']:.1%}"
            print(f"{r['offered_pps']:>14,.0f}{r['k']:>9,.0f}{r['delivered_pps']:>17,}{r['emulator_loss']:>8.2%}"
                  f"{r['queue_drop_share']:>17.2%}{short:>18}{r['owd_p99_us']:>12,.0f}  {r['verdict']}", flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
