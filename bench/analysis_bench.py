"""Benchmark of ``fabric analyze``: packets analysed per second and peak memory of analyze_run.

Builds synthetic run directories (16 hosts, 4 leaves, 4 spines, a mix of classes, ~0.1% loss in
bursts, some reordering and duplicates) of 1M and 10M packets in a temporary directory, then runs
:func:`fabric.analysis.run_metrics.analyze_run` in a fresh subprocess per size so that the peak
resident set size (``ru_maxrss``) is the analysis's own, not the generator's.

Usage::

    .venv/bin/python bench/analysis_bench.py            # 1M and 10M
    .venv/bin/python bench/analysis_bench.py 2000000    # chosen sizes
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fabric import rundir

HOSTS = 16
LEAVES = 4
SPINES = 4
PKTS_PER_MSG = 64
PAYLOAD = 4096
RATE_BPS = 100_000_000  # emulated host and fabric link rate
KINDS = np.array(["kv", "a2a_dispatch", "allreduce", "background", "probe"], dtype=object)


def make_run_dir(path: Path, n_packets: int, seed: int = 1) -> None:
    """Write a synthetic, contract-conforming run directory of ``n_packets`` packets."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    t0 = 1_700_000_000_000_000_000
    n_msg = -(-n_packets // PKTS_PER_MSG)
    msg_id = np.arange(n_msg, dtype=np.int64)
    src = rng.integers(0, HOSTS, n_msg)
    dst = (src + rng.integers(1, HOSTS, n_msg)) % HOSTS
    kind = KINDS[rng.integers(0, KINDS.size, n_msg)]
    t_sched = t0 + np.sort(rng.integers(0, 60_000_000_000, n_msg))
    npk = np.full(n_msg, PKTS_PER_MSG, dtype=np.int64)
    npk[-1] = n_packets - PKTS_PER_MSG * (n_msg - 1)

    # Packets, in (message, seq) order as the emulator writes them.
    pm = np.repeat(msg_id, npk)
    starts = np.r_[0, np.cumsum(npk)[:-1]]
    seq = (np.arange(n_packets) - np.repeat(starts, npk)).astype(np.int32)
    ser_ns = PAYLOAD * 8 * 1_000_000_000 // RATE_BPS
    late = rng.exponential(20_000, n_msg).astype(np.int64)
    tx = t_sched[pm] + late[pm] + seq.astype(np.int64) * ser_ns
    owd = (20_000 + rng.gamma(2.0, 30_000, n_packets)).astype(np.int64)
    rx = tx + owd
    lost = np.zeros(n_packets, dtype=bool)
    burst_starts = rng.integers(0, n_packets - 8, n_packets // 4000)
    for k in range(4):  # bursts of up to 4 consecutive packets
        lost[np.minimum(burst_starts + k, n_packets - 1)] |= rng.random(burst_starts.size) < 0.7 ** k
    rx[lost] = -1
    copies = np.where(lost, 0, 1).astype(np.int16)
    copies[rng.integers(0, n_packets, n_packets // 10000)] = 2
    copies[lost] = 0
    names = np.array([f"h{i}" for i in range(HOSTS)])
    path_idx = rng.integers(0, SPINES, n_packets).astype(np.int16)
    table = pa.table({
        "msg_id": pa.array(pm, pa.int64()), "seq": pa.array(seq, pa.int32()),
        "src": pa.DictionaryArray.from_arrays(pa.array(src[pm].astype(np.int32)), pa.array(names)).cast(pa.string()),
        "dst": pa.DictionaryArray.from_arrays(pa.array(dst[pm].astype(np.int32)), pa.array(names)).cast(pa.string()),
        "bytes": pa.array(np.full(n_packets, PAYLOAD, np.int32)),
        "tx_ns": pa.array(tx), "rx_ns": pa.array(rx), "copies": pa.array(copies),
        "path": pa.array(path_idx),
    })
    pq.write_table(table, path / "packets.parquet", compression="zstd")
    del table

    n_rx = np.bincount(pm[~lost], minlength=n_msg)
    rx_m = np.where(lost, -1, rx)
    last_rx = np.maximum.reduceat(rx_m, starts)
    messages = pd.DataFrame({
        "msg_id": msg_id, "src": names[src], "dst": names[dst], "kind": kind,
        "group": np.array([f"g{i // 8}" for i in range(n_msg)], dtype=object), "request_id": msg_id // 8,
        "step": np.zeros(n_msg, np.int64), "bytes": npk * PAYLOAD * 1000, "bytes_emulated": npk * PAYLOAD,
        "packets": npk, "packets_received": n_rx, "t_sched_ns": t_sched,
        "t_tx_first_ns": tx[starts], "t_tx_last_ns": tx[starts + npk - 1], "t_rx_last_ns": last_rx,
    })
    rundir.write_table(path, "messages", messages)

    noise_n = 2000
    ntx = t0 - 1_000_000_000 + np.arange(noise_n, dtype=np.int64) * 100_000
    noise = pd.DataFrame({"msg_id": np.arange(noise_n) + 10**9, "seq": 0, "src": "h0", "dst": "h1",
                          "bytes": 64, "tx_ns": ntx, "rx_ns": ntx + 6_000 + rng.integers(0, 10_000, noise_n),
                          "copies": 1, "path": -1})
    rundir.write_table(path, "noise", noise)

    samples = np.arange(0, 60_000_000_001, 100_000_000, dtype=np.int64) + t0
    rows = []
    ends = [(f"h{h}", f"leaf{h // (HOSTS // LEAVES)}", "host") for h in range(HOSTS)]
    ends += [(f"leaf{lf}", f"spine{s}", "fabric") for lf in range(LEAVES) for s in range(SPINES)]
    for i, (a, b, k) in enumerate(ends):
        for node, peer in ((a, b), (b, a)):
            frac = rng.uniform(0.2, 0.9)
            tx_b = np.cumsum(np.r_[0, rng.poisson(frac * RATE_BPS / 8 / 10, samples.size - 1)])
            rows.append(pd.DataFrame({
                "t_ns": samples, "link_id": f"l{i}", "node": node, "peer": peer, "kind": k, "queue": "port",
                "rate_bps": RATE_BPS, "tx_bytes": tx_b, "tx_packets": tx_b // PAYLOAD,
                "drops": np.cumsum(rng.poisson(0.01, samples.size)),
                "backlog_bytes": rng.integers(0, 20, samples.size) * PAYLOAD,
                "backlog_packets": rng.integers(0, 20, samples.size)}))
    rundir.write_table(path, "links", pd.concat(rows, ignore_index=True))
    cpu_t = np.arange(0, 60_000_000_001, 1_000_000_000, dtype=np.int64) + t0
    rundir.write_table(path, "cpu", pd.DataFrame({"t_ns": cpu_t, "some_avg10": rng.uniform(0, 5, cpu_t.size),
                                                  "some_total_us": np.cumsum(rng.integers(0, 20_000, cpu_t.size)),
                                                  "full_total_us": 0}))
    rundir.write_json(path / "run.json", {"scale_k": 1000, "t0_ns": int(t0), "tmax_ns": 1_000_000_000,
                                          "payload_bytes": PAYLOAD, "seed": seed})


def _measure(run_dir: str) -> None:
    """Subprocess body: analyse once, print JSON with wall time and peak RSS."""
    from fabric.analysis.run_metrics import write_metrics
    t = time.perf_counter()
    write_metrics(Path(run_dir))
    wall = time.perf_counter() - t
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = (Path(run_dir) / "metrics.json").stat().st_size
    print(json.dumps({"wall_s": wall, "peak_rss_mib": peak_kib / 1024, "metrics_json_bytes": size}))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--measure"]:
        _measure(argv[1])
        return
    sizes = [int(a) for a in argv] or [1_000_000, 10_000_000]
    with tempfile.TemporaryDirectory(prefix="fabric-bench-") as tmp:
        for n in sizes:
            d = Path(tmp) / f"run{n}"
            t = time.perf_counter()
            make_run_dir(d, n)
            gen = time.perf_counter() - t
            res = subprocess.run([sys.executable, __file__, "--measure", str(d)], check=True,
                                 capture_output=True, text=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{n:>11,} packets: analyze_run {r['wall_s']:6.2f} s = {n / r['wall_s']:>12,.0f} packets/s, "
                  f"peak RSS {r['peak_rss_mib']:7.0f} MiB, metrics.json {r['metrics_json_bytes']:,} B "
                  f"(generation {gen:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
