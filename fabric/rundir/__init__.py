"""The run-directory contract every engine writes and every reader reads (docs/design.md §3).

* :mod:`fabric.rundir.tables` — the parquet tables, their columns and types;
* :mod:`fabric.rundir.runjson` — run.json: the typed, versioned :class:`RunJson`;
* :mod:`fabric.rundir.recorder` — the one writer: staged, then renamed into place.
"""

from fabric.jsonio import write_json
from fabric.rundir.recorder import check_out_dir, record, staged_run_dir
from fabric.rundir.runjson import FORMAT, RunJson, core_switches, fabric_spec, host_rates_bps, node_facts, read_run_json
from fabric.rundir.tables import (
    CPU_COLUMNS,
    FILES,
    LINK_COLUMNS,
    MESSAGE_COLUMNS,
    OPTIONAL_DEFAULTS,
    PACKET_COLUMNS,
    SCHEDULER_COLUMNS,
    read_table,
    write_table,
)

__all__ = ["CPU_COLUMNS", "FILES", "FORMAT", "LINK_COLUMNS", "MESSAGE_COLUMNS", "OPTIONAL_DEFAULTS",
           "PACKET_COLUMNS", "SCHEDULER_COLUMNS", "RunJson", "check_out_dir", "core_switches", "fabric_spec", "host_rates_bps",
           "node_facts", "read_run_json", "read_table", "record", "staged_run_dir", "write_json", "write_table"]
