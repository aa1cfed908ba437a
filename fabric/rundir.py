"""The run directory: what one emulation run leaves behind, self-describing (docs/design.md §3).

``fabric analyze``, ``fabric cpmt`` and ``fabric report`` need nothing but this directory.
Times are absolute CLOCK_REALTIME nanoseconds (all namespaces share one kernel clock);
``run.json["t0_ns"]`` is the instant that schedule time 0 was mapped to. Byte counts in
``packets``/``links`` are *emulated* (scaled by 1/k); multiply by ``run.json["scale_k"]`` for
real-world bytes. Times need no rescaling: rates and sizes are divided by the same ``k``.

With a time dilation ``D = run.json["dilation"] > 1`` the fabric ran D times slower (rates ÷ k·D,
schedule × D); packets, noise, messages and links are written in *virtual* (undilated) time —
wall time since t0 divided by D — so every reader sees an undilated run. ``links.rate_bps`` is the
shaper's rate in that virtual time (real ÷ k), consistent with ``tx_bytes``. cpu and scheduler
samples stay in wall time: they describe the machine.

run.json keys read downstream: ``scale_k``, ``dilation``, ``scale`` (how k and D were chosen),
``seed``, ``hash_seed``, ``t0_ns``, ``tmax_ns`` (loss threshold, virtual), ``payload_bytes``,
``topology`` (path, sha256, spec, facts), ``workload`` (name, model, patterns with
``layers_emulated``, path), ``host_side_drops``, ``sender_refused``, ``scheduler`` (tick_ns,
tick interval p50/p99, tick_late_p99_ns; scheduled fabrics only), ``links_shaped``, ``commands``
(every sysctl/ip/tc/nft command per namespace), ``tools``, ``wall_time_s``.

Files
-----
run.json            specs, seed, scale_k, t0_ns, tmax_ns, payload_bytes, kernel and tool versions,
                    every command applied (``commands``), wall time, fidelity inputs
schedule.parquet    the Schedule replayed (real units, see :mod:`fabric.schedule`)
packets.parquet     one row per packet sent, :data:`PACKET_COLUMNS`
noise.parquet       the idle-fabric probe before the load, same columns as packets
messages.parquet    one row per message, :data:`MESSAGE_COLUMNS`
links.parquet       link counters sampled over time, :data:`LINK_COLUMNS`
cpu.parquet         /proc/pressure/cpu samples, :data:`CPU_COLUMNS`
scheduler.parquet   credit-scheduler ticks (scheduled fabrics only), :data:`SCHEDULER_COLUMNS`
metrics.json        analysis output (recomputable with ``fabric analyze``)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fabric.errors import RunDirError

# rx_ns == -1: never received within tmax. copies: how many copies arrived (0 lost, >1 duplicates);
# rx_ns is the first copy's arrival: its kernel timestamp plus ser_ns, the packet's serialization at
# every hop it crossed (the emulator's links hand packets over without clocking them out; 0 for
# the noise probe and for run directories written before this was recorded). path: index of the
# spine/NCF the packet crossed (-1: unknown or same-edge traffic).
PACKET_COLUMNS = {
    "msg_id": "int64", "seq": "int32", "src": "object", "dst": "object", "bytes": "int32",
    "tx_ns": "int64", "rx_ns": "int64", "copies": "int16", "path": "int16", "ser_ns": "int64",
}

# t_sched_ns: when the schedule said to start; t_tx_first/last_ns: actual send of first/last
# packet; t_rx_last_ns: kernel timestamp of the last packet received (-1 if none);
# bytes: real-world size; bytes_emulated: what was sent (≈ bytes / k, at least one packet).
MESSAGE_COLUMNS = {
    "msg_id": "int64", "src": "object", "dst": "object", "kind": "object", "group": "object",
    "request_id": "int64", "step": "int64", "bytes": "int64", "bytes_emulated": "int64",
    "packets": "int32", "packets_received": "int32", "t_sched_ns": "int64",
    "t_tx_first_ns": "int64", "t_tx_last_ns": "int64", "t_rx_last_ns": "int64",
}

# One row per link direction per sample. Counters are cumulative since the link was built.
# node: the transmitting end; peer: the receiving end; queue: 'port' for a link's egress queue,
# 'voq:<dst host>' for a scheduled fabric's virtual output queue (on the NCP's IFB device).
LINK_COLUMNS = {
    "t_ns": "int64", "link_id": "object", "node": "object", "peer": "object", "kind": "object",
    "queue": "object", "rate_bps": "int64", "tx_bytes": "int64", "tx_packets": "int64",
    "drops": "int64", "backlog_bytes": "int64", "backlog_packets": "int64",
}

CPU_COLUMNS = {"t_ns": "int64", "some_avg10": "float64", "some_total_us": "int64", "full_total_us": "int64"}

SCHEDULER_COLUMNS = {"t_ns": "int64", "tick_interval_ns": "int64", "ncp": "object", "dst": "object",
                     "backlog_bytes": "int64", "granted_bps": "int64"}

# Columns added after the first format: what a writer that does not know them means.
OPTIONAL_DEFAULTS = {"packets": {"ser_ns": 0}, "noise": {"ser_ns": 0}}

FILES = {"packets": PACKET_COLUMNS, "noise": PACKET_COLUMNS, "messages": MESSAGE_COLUMNS,
         "links": LINK_COLUMNS, "cpu": CPU_COLUMNS, "scheduler": SCHEDULER_COLUMNS}


def write_table(run_dir: Path, name: str, frame: pd.DataFrame) -> None:
    """Write ``name.parquet`` with the contract's columns and types."""
    columns = FILES[name]
    frame = frame.reindex(columns=list(columns))
    for column, default in OPTIONAL_DEFAULTS.get(name, {}).items():
        frame[column] = frame[column].fillna(default)
    frame = frame.astype(columns)
    frame.to_parquet(Path(run_dir) / f"{name}.parquet", index=False, compression="zstd")


def read_table(run_dir: Path, name: str, required: bool = True) -> pd.DataFrame:
    path = Path(run_dir) / f"{name}.parquet"
    if not path.exists():
        if required:
            raise RunDirError(f"{run_dir}: {name}.parquet is missing; is this a fabric run directory?")
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in FILES[name].items()})
    return pd.read_parquet(path)


def read_run_json(run_dir: Path) -> dict:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise RunDirError(f"{run_dir}: run.json is missing; is this a fabric run directory?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def write_json(path: Path, data: dict) -> None:
    """Deterministic JSON (sorted keys, fixed indent) so re-analysis is byte-identical."""
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")
