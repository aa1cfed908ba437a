"""The simulation process: ``python -m fabric.sim.child WORK_DIR MODEL_LIBRARY``.

ns-3 lives only here: the model (``fabric/sim/engine.h``, ``ddc.h`` behind the C ABI of
``capi.cpp``) is a shared library built once by :mod:`fabric.sim.native` and loaded with ctypes,
and its state (ns-3's simulator, the model's globals) is the process's own, so every run gets a
fresh child (:func:`fabric.sim.runner.run` builds the library, starts the child in its own process
group and kills it on failure or Ctrl-C). The child reads ``plan.npz`` and ``settings.json`` from
WORK_DIR, builds the network in C++, runs it in slices of simulated time, and writes
``records.npz`` and ``result.json`` back. Progress goes to stdout, one JSON object per line:
``{"stage": ..., "fraction": ...}``. ``python -m fabric.sim.native`` prints MODEL_LIBRARY.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from fabric.sim.native import Model

PROGRESS_SLICES = 100
ACCOUNTING = ("sent", "received", "dropped", "queued", "on_wire", "held", "dropped_records", "duplicates")
SCHEDULED_STATS = ("grants", "granted_bytes", "fc_pauses", "out_of_order", "reorder_timeouts", "reorder_held_max",
                   "voq_max_bytes")
SAMPLE_COLUMNS = ("t_ps", "port", "tx_bytes", "tx_packets", "drops", "backlog_bytes", "backlog_packets")
SAMPLE_TYPES = (np.int64, np.uint32, np.uint64, np.uint64, np.uint64, np.uint64, np.uint64)


def report(stage: str, fraction: float) -> None:
    print(json.dumps({"stage": stage, "fraction": round(float(fraction), 4)}), flush=True)


def build(model: Model, a: dict, s: dict) -> None:
    """Nodes, links, routes, senders (and a scheduled fabric's NCPs), in that order."""
    n_nodes = len(a["roles"])
    model.BuildNodes(n_nodes, a["roles"], a["role_index"], s["n_edges"], s["n_records"], s["mode"], s["hash_seed"],
                     s["header_bytes"], s["tmax_ps"])
    model.BuildLinks(len(a["link_a"]), a["link_a"], a["link_b"], a["link_rate_bps"], a["link_delay_ps"],
                     a["queue_a_bytes"], a["queue_b_bytes"], a["site_a"], a["site_b"])
    model.BuildRoutes(n_nodes, a["route_off"], a["route_len"], a["route_ports"], len(a["host_edge"]), a["host_edge"],
                      a["host_edge_port"])
    flows = np.zeros(len(a["msg_src"]), dtype=np.uint32)
    model.FlowHashes(len(flows), s["hash_seed"], s["hash_mask"], a["src_ip"], a["dst_ip"], s["udp_proto"],
                     a["msg_sport"], s["udp_dst_port"], flows)
    model.BuildSenders(n_nodes, len(flows), a["msg_src"], a["msg_dst"], a["msg_start_ps"], a["msg_first_rec"],
                       a["msg_packets"], a["msg_payload"], a["msg_last_payload"], flows)
    if "scheduled" in s:
        d = s["scheduled"]
        model.InstallScheduled(s["n_hosts"], s["n_records"], d["credit_bytes"], d["voq_limit_bytes"], d["fc_packets"],
                               d["ctrl_remote_ps"], d["ctrl_local_ps"], d["reorder_timeout_ps"],
                               a["grant_ps_per_byte"], a["ncp_weight"], len(a["watch_ncp"]), a["watch_ncp"],
                               a["watch_dst"])
    model.StartSampling(s["sample_start_ps"], s["sample_interval_ps"])


def simulate(model: Model, s: dict) -> None:
    """Run to the end in slices of simulated time, reporting the share of packets sent.

    The link sampler reschedules itself until the end, so the event queue never runs dry; a model
    that never finishes is caught by the plan's bound on simulated time."""
    total = max(1, s["n_records"])
    report("simulate", 0.0)
    # The noise probe before the load is a few events: one slice; then slices of the load's span.
    model.RunForPs(s["sample_start_ps"])
    step_ps = max(s["sample_interval_ps"], (s["last_start_ps"] - s["sample_start_ps"]) // PROGRESS_SLICES, 1)
    while not model.Finished():
        model.RunForPs(step_ps)
        if model.NowPs() > s["max_end_ps"]:
            raise RuntimeError(f"the simulation passed its bound of {s['max_end_ps'] / 1e12:.3f} s simulated "
                               f"without finishing (sent {model.SentPackets()} of {total} packets)")
        report("simulate", min(1.0, model.SentPackets() / total))
    model.SampleNow()  # the state at the end


def samples(copy, rows: int, prefix: str) -> dict[str, np.ndarray]:
    """Sampled counters (link ports or VOQs): ``rows`` of each column, copied out by ``copy``."""
    columns = {f"{prefix}_{name}": np.empty(rows, dtype) for name, dtype in zip(SAMPLE_COLUMNS, SAMPLE_TYPES)}
    copy(*columns.values())
    return columns


def collect(model: Model, s: dict, work: Path) -> dict:
    n = s["n_records"]
    out = {"tx_ps": np.empty(n, np.int64), "rx_ps": np.empty(n, np.int64), "path": np.empty(n, np.int16),
           "dropped": np.empty(n, np.uint8), "drop_site": np.empty(n, np.uint8)}
    model.CopyRecords(out["tx_ps"], out["rx_ps"], out["path"], out["dropped"], out["drop_site"])
    out |= samples(model.CopySamples, model.SampleRows(), "link")
    result = {"accounting": model.figures("Accounting", ACCOUNTING)}
    if "scheduled" in s:
        out |= samples(model.CopyVoqSamples, model.VoqSampleRows(), "voq")
        result["scheduled"] = model.figures("ScheduledStats", SCHEDULED_STATS)
    np.savez(work / "records.npz", **out)
    return result


def die_with_parent() -> None:
    """Ask the kernel to kill this process if the runner dies without killing it (Linux)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    die_with_parent()
    work, library = Path(argv[0]), Path(argv[1])
    settings = json.loads((work / "settings.json").read_text())
    arrays = dict(np.load(work / "plan.npz"))
    started = time.time()
    report("import", 0.0)
    model = Model(library)
    model.SetTimeResolutionPs()
    import_s = time.time() - started
    report("build", 0.0)
    t = time.time()
    build(model, arrays, settings)
    build_s = time.time() - t
    report("build", 1.0)
    t = time.time()
    events_before = model.EventCount()
    simulate(model, settings)
    run_s = time.time() - t
    events = model.EventCount() - events_before
    end_ps = model.NowPs()
    t = time.time()
    result = collect(model, settings, work)
    result |= {"events": events, "simulated_end_ps": end_ps, "import_s": round(import_s, 3),
               "build_s": round(build_s, 3), "run_s": round(run_s, 3), "collect_s": round(time.time() - t, 3),
               "last_send_ps": model.LastSendPs(),
               "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    tmp = work / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, work / "result.json")
    report("collect", 0.25)
    sys.stdout.flush()
    # Tearing down ns-3's objects takes time and is not needed: the results are on disk.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
