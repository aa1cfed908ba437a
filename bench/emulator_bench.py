"""Benchmark of the emulator's packet budget, against the kernel's own forwarding limit.

Three measurements on one fabric design (:func:`fabric.emu.calibrate.bench_spec`: 2 leaves,
4 spines, fabric links at twice the host rate so no link is oversubscribed, deep buffers; 8 hosts
on each leaf send at 90% of line rate to a host on the other leaf, 16 senders):

1. the calibrated budget, measured afresh (:func:`fabric.emu.calibrate.calibrate`, the same
   procedure a first ``fabric run`` uses) and cached for this boot;
2. the kernel's own forwarding limit on the same fabric, with a reference sender that is not
   ours: iperf3 UDP (4068-byte datagrams, i.e. 4096-byte IP packets) from all 16 senders at full
   line rate — far above what the machine forwards — into one iperf3 server per receiver, all
   inside the fabric's namespaces. The limit is the packets/s the servers report received. The
   budget ÷ this limit says how much of the machine the emulator can use while staying faithful;
3. the offered-load table: delivered packets/s, loss, sender shortfall and fidelity verdict at a
   few offered loads (:func:`fabric.emu.calibrate.one_load`).

"lost" is sent but not delivered; the part of it counted by the shaped queues' drop counters is
burst loss in the (minimum four-packet) port buffers, the rest ("own loss") the emulator's
(backlog queues, sockets). The sender shortfall shows how far senders fell below line rate (the
other way an overloaded emulator fails: it cannot offer the load at all). OWD p99 at low loads is
mostly per-packet serialization at the scaled-down rates (k× coarser than the real fabric).

Usage (root; run it alone: `flock /tmp/fabric-emu.lock` where others emulate on the machine)::

    sudo .venv/bin/python bench/emulator_bench.py            # 12.5k .. 100k packets/s offered
    sudo .venv/bin/python bench/emulator_bench.py 20000 60000
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fabric.emu.calibrate import LOAD, SENDERS, bench_spec, calibrate, one_load

DURATION_S = 2.0
DEFAULT_LOADS_PPS = (12_500, 25_000, 50_000, 75_000, 100_000)

# iperf3 reference: host links at 400G / k = 400 Mbit/s, ~12k packets/s per sender, ~195k in all:
# well above what 2 vCPUs forward, so what arrives is the machine's limit, not the offered load.
IPERF3_K = 1000.0
IPERF3_DATAGRAM_BYTES = 4068      # + 8 UDP + 20 IP = 4096-byte packets
IPERF3_DURATION_S = 2
IPERF3_PORT = 5201
IPERF3_IDLE_TIMEOUT_S = 20


def _in_ns(pid: int, argv: list[str]) -> list[str]:
    return ["mnexec", "-a", str(pid), *argv]


def _wait_listening(fab, node: str, port: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if f":{port} " in fab.run_in(node, ["ss", "-ltnH"]):
            return
        time.sleep(0.05)
    raise RuntimeError(f"iperf3 server on {node}:{port} did not start listening")


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop whatever still runs, then reap it all: nothing outlives the bench."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def iperf3_limit() -> dict:
    """Packets/s the fabric delivers to iperf3 servers when 16 iperf3 UDP clients offer far too much.

    Everything started here is stopped on return, error and KeyboardInterrupt (``main`` turns
    SIGTERM into one).
    """
    from fabric.emu.network import EmulatedFabric
    from fabric.emu.plan import build_plan
    from fabric.topology import build_fabric

    g = build_fabric(bench_spec())
    plans, _ = build_plan(g, IPERF3_K, seed=1)
    host_rate_bps = g.nodes["h0"]["nic_rate_bps"] / IPERF3_K
    pairs = [(f"h{i}", f"h{(i + SENDERS // 2) % SENDERS}") for i in range(SENDERS)]
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="fabric-bench-iperf3-") as tmp, EmulatedFabric(g, plans, Path(tmp)) as fab:
        try:
            fab.build()
            servers = {}
            for _, dst in pairs:
                # --idle-timeout: a server orphaned by a SIGKILLed bench exits by itself.
                servers[dst] = subprocess.Popen(_in_ns(fab.pids[dst], ["iperf3", "-s", "-1", "-J", "-p", str(IPERF3_PORT),
                                                                       "--idle-timeout", str(IPERF3_IDLE_TIMEOUT_S)]),
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                procs.append(servers[dst])
            for _, dst in pairs:
                _wait_listening(fab, dst, IPERF3_PORT)
            clients = []
            for src, dst in pairs:
                argv = ["iperf3", "-c", g.nodes[dst]["address"], "-p", str(IPERF3_PORT), "-u",
                        "-l", str(IPERF3_DATAGRAM_BYTES), "-b", f"{int(host_rate_bps)}", "-t", str(IPERF3_DURATION_S),
                        "-J"]
                clients.append(subprocess.Popen(_in_ns(fab.pids[src], argv), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))
                procs.append(clients[-1])
            sent_pps = 0.0
            for c in clients:
                out, err = c.communicate(timeout=IPERF3_DURATION_S + 30)
                if c.returncode != 0:
                    raise RuntimeError(f"iperf3 client failed: {(out or err)[-300:]}")
                s = json.loads(out)["end"]["sum"]
                sent_pps += s["packets"] / s["seconds"]
            received_pps = 0.0
            lost = packets = 0
            for dst, s in servers.items():
                out, err = s.communicate(timeout=30)
                if s.returncode != 0:
                    raise RuntimeError(f"iperf3 server on {dst} failed: {err[-300:]}")
                total = json.loads(out)["end"]["sum"]
                # The server's "packets" are the highest sequence number seen: received = that - lost.
                received_pps += (total["packets"] - total["lost_packets"]) / total["seconds"]
                lost += total["lost_packets"]
                packets += total["packets"]
        finally:
            _stop(procs)
    return {"offered_pps": round(SENDERS * host_rate_bps / (IPERF3_DATAGRAM_BYTES * 8)), "sent_pps": round(sent_pps),
            "delivered_pps": round(received_pps), "lost_share": lost / max(packets, 1)}


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through every finally: fabrics and iperf3s are torn down


def main(argv: list[str]) -> dict:
    loads = [float(a) for a in argv] or list(DEFAULT_LOADS_PPS)
    signal.signal(signal.SIGTERM, _on_sigterm)

    print(f"emulator budget: {SENDERS} senders at {LOAD:.0%} of line rate, 4 KB payloads, sprayed, "
          "no link oversubscribed")
    cal = calibrate(progress=lambda message, fraction: print(message, flush=True))
    print(f"calibrated budget: {cal.budget_pps:,} packets/s ({cal.safety_margin:g} x {cal.sustained_pps:,} held; "
          f"calibration took {cal.wall_s:g} s)", flush=True)

    ref = iperf3_limit()
    print(f"kernel forwarding limit (iperf3 UDP, {SENDERS} clients offering ~{ref['offered_pps']:,} "
          f"packets/s, sent {ref['sent_pps']:,}): {ref['delivered_pps']:,} packets/s delivered "
          f"({ref['lost_share']:.1%} lost)", flush=True)
    ratio = cal.budget_pps / ref["delivered_pps"] if ref["delivered_pps"] else float("nan")
    print(f"budget / kernel limit: {ratio:.2f} (highest load held / kernel limit: "
          f"{cal.sustained_pps / max(ref['delivered_pps'], 1):.2f})", flush=True)

    print()
    print(f"offered loads, {DURATION_S:g} s each:")
    print(f"{'offered pkt/s':>14}{'k':>9}{'delivered pkt/s':>17}{'lost':>8}{'of it in queues':>17}"
          f"{'sender shortfall':>18}{'OWD p99 us':>12}  fidelity")
    results = []
    with tempfile.TemporaryDirectory(prefix="fabric-bench-") as tmp:
        for load in loads:
            r = one_load(load, Path(tmp), duration_s=DURATION_S)
            results.append(r)
            short = "n/a" if r["sender_shortfall"] is None else f"{r['sender_shortfall']:.1%}"
            owd = "n/a" if r["owd_p99_us"] is None else f"{r['owd_p99_us']:,.0f}"
            print(f"{r['offered_pps']:>14,.0f}{r['k']:>9,.0f}{r['delivered_pps']:>17,}{r['lost']:>8.2%}"
                  f"{r['queue_drop_share']:>17.2%}{short:>18}{owd:>12}  {r['verdict']}", flush=True)
    return {"calibration": cal.to_dict(), "iperf3": ref, "ratio": ratio, "loads": results}


if __name__ == "__main__":
    main(sys.argv[1:])
