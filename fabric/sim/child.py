"""The simulation process: ``python -m fabric.sim.child WORK_DIR``.

ns-3 lives only here: importing it costs ~7 s and ~626 MB, and the C++ types compiled into the
process with ``cppyy.cppdef`` can be defined once per process, so every run gets a fresh child
(:func:`fabric.sim.runner.run` starts it in its own process group and kills it on failure or
Ctrl-C). The child reads ``plan.npz`` and ``settings.json`` from WORK_DIR, builds the network in
C++ (``fabric/sim/engine.h``, ``ddc.h``), runs it in slices of simulated time, and writes
``records.npz`` and ``result.json`` back. Progress goes to stdout, one JSON object per line:
``{"stage": ..., "fraction": ...}``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

HEADERS = ("engine.h", "ddc.h")
NS3_MODULES = ("core", "network", "point-to-point")
NS3_LIBRARY = "libns3.44-{module}.so"
PROGRESS_SLICES = 100


def report(stage: str, fraction: float) -> None:
    print(json.dumps({"stage": stage, "fraction": round(float(fraction), 4)}), flush=True)


def load_ns3():
    """The ns-3 modules the model uses, loaded from the ns3 wheel; returns the ``ns3`` namespace.

    ``from ns import ns`` loads and parses every module of the wheel (~18 s on the development
    machine); the model needs three (~2 s).
    """
    import cppyy
    import libcppyy
    import ns3 as wheel

    prefix = Path(list(wheel.__path__)[0])
    libcppyy.AddSmartPtrType("Ptr")  # as the wheel's loader does: Ptr<T> behaves as a smart pointer
    for variant in ("lib", "lib64"):
        if (prefix / variant).is_dir():
            cppyy.add_library_path(str(prefix / variant))
    cppyy.add_include_path(str(prefix / "include"))
    for module in NS3_MODULES:
        cppyy.load_library(NS3_LIBRARY.format(module=module))
        cppyy.include(f"ns3/{module}-module.h")
    return cppyy.gbl.ns3


def cpp_source() -> str:
    here = Path(__file__).resolve().parent
    return "\n".join((here / name).read_text() for name in HEADERS)


def build(fs, a: dict, s: dict) -> None:
    """Nodes, links, routes, senders (and a scheduled fabric's NCPs), in that order."""
    n_nodes = len(a["roles"])
    fs.BuildNodes(n_nodes, a["roles"], a["role_index"], s["n_edges"], s["n_records"], s["mode"], s["hash_seed"],
                  s["header_bytes"], s["tmax_ps"])
    fs.BuildLinks(len(a["link_a"]), a["link_a"], a["link_b"], a["link_rate_bps"], a["link_delay_ps"],
                  a["queue_a_bytes"], a["queue_b_bytes"], a["site_a"], a["site_b"])
    fs.BuildRoutes(n_nodes, a["route_off"], a["route_len"], a["route_ports"], len(a["host_edge"]), a["host_edge"],
                   a["host_edge_port"])
    flows = np.zeros(len(a["msg_src"]), dtype=np.uint32)
    fs.FlowHashes(len(flows), s["hash_seed"], s["hash_mask"], a["src_ip"], a["dst_ip"], s["udp_proto"],
                  a["msg_sport"], s["udp_dst_port"], flows)
    fs.BuildSenders(n_nodes, len(flows), a["msg_src"], a["msg_dst"], a["msg_start_ps"], a["msg_first_rec"],
                    a["msg_packets"], a["msg_payload"], a["msg_last_payload"], flows)
    if "scheduled" in s:
        d = s["scheduled"]
        fs.InstallScheduled(s["n_hosts"], s["n_records"], d["credit_bytes"], d["voq_limit_bytes"], d["fc_packets"],
                            d["ctrl_remote_ps"], d["ctrl_local_ps"], d["reorder_timeout_ps"],
                            a["grant_ps_per_byte"], a["ncp_weight"], len(a["watch_ncp"]), a["watch_ncp"],
                            a["watch_dst"])
    fs.StartSampling(s["sample_start_ps"], s["sample_interval_ps"])


def simulate(ns, fs, s: dict) -> None:
    """Run to the end in slices of simulated time, reporting the share of packets sent.

    The link sampler reschedules itself until the end, so the event queue never runs dry; a model
    that never finishes is caught by the plan's bound on simulated time."""
    total = max(1, s["n_records"])
    report("simulate", 0.0)
    # The noise probe before the load is a few events: one slice; then slices of the load's span.
    ns.Simulator.Stop(ns.PicoSeconds(s["sample_start_ps"]))
    ns.Simulator.Run()
    step_ps = max(s["sample_interval_ps"], (s["last_start_ps"] - s["sample_start_ps"]) // PROGRESS_SLICES, 1)
    while not fs.g_finished:
        ns.Simulator.Stop(ns.PicoSeconds(step_ps))
        ns.Simulator.Run()
        if fs.NowPs() > s["max_end_ps"]:
            raise RuntimeError(f"the simulation passed its bound of {s['max_end_ps'] / 1e12:.3f} s simulated "
                               f"without finishing (sent {int(fs.g_sent)} of {total} packets)")
        report("simulate", min(1.0, int(fs.g_sent) / total))
    fs.SampleNow()  # the state at the end


def collect(fs, s: dict, work: Path) -> dict:
    n = s["n_records"]
    rec = {"tx_ps": np.empty(n, np.int64), "rx_ps": np.empty(n, np.int64), "path": np.empty(n, np.int16),
           "dropped": np.empty(n, np.uint8), "drop_site": np.empty(n, np.uint8)}
    fs.CopyRecords(rec["tx_ps"], rec["rx_ps"], rec["path"], rec["dropped"], rec["drop_site"])
    m = int(fs.SampleRows())
    names = ("t_ps", "port", "tx_bytes", "tx_packets", "drops", "backlog_bytes", "backlog_packets")
    types = (np.int64, np.uint32, np.uint64, np.uint64, np.uint64, np.uint64, np.uint64)
    samples = {f"link_{k}": np.empty(m, t) for k, t in zip(names, types)}
    fs.CopySamples(*[samples[f"link_{k}"] for k in names])
    out = rec | samples
    result = {"accounting": dict(zip(("sent", "received", "dropped", "queued", "on_wire", "held", "dropped_records",
                                      "duplicates"), [int(x) for x in fs.Accounting()]))}
    if "scheduled" in s:
        v = int(fs.VoqSampleRows())
        voq = {f"voq_{k}": np.empty(v, t) for k, t in zip(names, types)}
        fs.CopyVoqSamples(*[voq[f"voq_{k}"] for k in names])
        out |= voq
        result["scheduled"] = dict(zip(("grants", "granted_bytes", "fc_pauses", "out_of_order", "reorder_timeouts",
                                        "reorder_held_max", "voq_max_bytes"), [int(x) for x in fs.ScheduledStats()]))
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
    work = Path(argv[0])
    settings = json.loads((work / "settings.json").read_text())
    arrays = dict(np.load(work / "plan.npz"))
    started = time.time()
    report("import", 0.0)
    ns = load_ns3()
    import cppyy

    ns.Time.SetResolution(ns.Time.PS)  # 400G serializes a 4 KB packet in 82.76 ns: ns would round it
    import_s = time.time() - started
    t = time.time()
    cppyy.cppdef(cpp_source())
    fs = cppyy.gbl.fabricsim
    compile_s = time.time() - t
    report("build", 0.0)
    t = time.time()
    build(fs, arrays, settings)
    build_s = time.time() - t
    report("build", 1.0)
    t = time.time()
    events_before = int(ns.Simulator.GetEventCount())
    simulate(ns, fs, settings)
    run_s = time.time() - t
    events = int(ns.Simulator.GetEventCount()) - events_before
    end_ps = int(fs.NowPs())
    t = time.time()
    result = collect(fs, settings, work)
    result |= {"events": events, "simulated_end_ps": end_ps, "import_s": round(import_s, 3),
               "compile_s": round(compile_s, 3), "build_s": round(build_s, 3), "run_s": round(run_s, 3),
               "collect_s": round(time.time() - t, 3), "last_send_ps": int(fs.g_lastSendPs),
               "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    tmp = work / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, work / "result.json")
    report("collect", 0.25)
    sys.stdout.flush()
    # Tearing down ns-3 and cppyy objects takes time and can crash at interpreter exit; the
    # results are on disk.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
