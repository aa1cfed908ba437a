"""The run directory's tables: their files, columns and types (docs/design.md §3).

Times are nanoseconds on the engine's clock (the emulator: CLOCK_REALTIME, which all namespaces
share; the simulator: simulated time); ``run.json["t0_ns"]`` is the instant schedule time 0 maps
to. Byte counts in ``packets``/``links`` are as carried (divided by ``run.json["scale_k"]``;
multiply by it for real-world bytes); times need no rescaling, since rates and sizes are divided
by the same k. With a time dilation ``D > 1`` (emulator only) packets, noise, messages and links
are in virtual (undilated) time; cpu and scheduler samples stay in wall time: they describe the
machine. ``links.rate_bps`` is the link's rate in that virtual time (real ÷ k).

Files
-----
run.json            :class:`fabric.rundir.runjson.RunJson` plus the engine's own facts
schedule.parquet    the Schedule replayed (real units, see :mod:`fabric.schedule`)
packets.parquet     one row per packet sent, :data:`PACKET_COLUMNS`
noise.parquet       the idle-fabric probe before the load, same columns as packets
messages.parquet    one row per message, :data:`MESSAGE_COLUMNS`
links.parquet       link counters sampled over time, :data:`LINK_COLUMNS`
cpu.parquet         /proc/pressure/cpu samples (emulator), :data:`CPU_COLUMNS`
scheduler.parquet   credit-scheduler ticks (scheduled fabrics, emulator), :data:`SCHEDULER_COLUMNS`
requests.parquet    what a request did before the network (workloads with requests), :data:`REQUEST_COLUMNS`
metrics.json        analysis output (recomputable with ``fabric analyze``)
"""

from __future__ import annotations

import os
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
                     "backlog_bytes": "int64", "granted_bps": "int64", "tick_cpu_ns": "int64"}

# One row per request that sent its KV cache, in real seconds of the schedule: it arrived, waited
# for a free prefill instance, was prefilled (its KV messages start at prefill_done_s). Queueing
# before prefill belongs to TTFT, but no message carries it. Written from the schedule the
# generator built, so it is the same for every engine.
REQUEST_COLUMNS = {
    "request_id": "int64", "arrival_s": "float64", "prefill_start_s": "float64", "prefill_done_s": "float64",
    "prompt_tokens": "int64", "output_tokens": "int64",
    # the front end (fabric.workloads.frontend; NaN and "" without one, absent in older runs)
    "tokenize_start_s": "float64", "tokenize_done_s": "float64", "tokens_ready_s": "float64",
    "first_token_s": "float64", "detokenize_s": "float64", "first_token_group": "string",
}

# Columns added after the first format: what a writer that does not know them means.
OPTIONAL_DEFAULTS = {"packets": {"ser_ns": 0}, "noise": {"ser_ns": 0}}

FILES = {"packets": PACKET_COLUMNS, "noise": PACKET_COLUMNS, "messages": MESSAGE_COLUMNS,
         "links": LINK_COLUMNS, "cpu": CPU_COLUMNS, "scheduler": SCHEDULER_COLUMNS, "requests": REQUEST_COLUMNS}


def write_table(run_dir: Path, name: str, frame: pd.DataFrame) -> None:
    """Write ``name.parquet`` with the contract's columns and types."""
    columns = FILES[name]
    frame = frame.reindex(columns=list(columns))
    for column, default in OPTIONAL_DEFAULTS.get(name, {}).items():
        frame[column] = frame[column].fillna(default)
    frame = frame.astype(columns)
    path = Path(run_dir) / f"{name}.parquet"
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False, compression="zstd")
    os.replace(tmp, path)  # never half a table under its name


def read_table(run_dir: Path, name: str, required: bool = True) -> pd.DataFrame:
    path = Path(run_dir) / f"{name}.parquet"
    if not path.exists():
        if required:
            raise RunDirError(f"{run_dir}: {name}.parquet is missing; is this a fabric run directory?")
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in FILES[name].items()})
    return pd.read_parquet(path)
