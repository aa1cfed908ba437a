"""Fidelity signals and verdicts (fabric.analysis.fidelity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fabric.analysis import fidelity as F
from tests.rundirs import run_json

CLEAN = {
    "noise_floor_p99_us": 15.0,
    "cpu_some_avg10_max_pct": 3.0,
    "cpu_some_stall_fraction": 0.01,
    "sender_late_p95_us": 40.0,
    "sender_late_p95_rel": 0.02,
    "link_rate_error": 0.01,
    "host_side_loss_ratio": 0.0,
    "scheduler_late_p99_rel": 0.05,
}


def test_clean_run_is_trusted():
    v = F.fidelity_verdict(CLEAN)
    assert v["verdict"] == "trusted"
    assert v["failing"] == [] and v["warning"] == [] and v["reasons"] == []


def test_one_warning_is_degraded_and_named():
    v = F.fidelity_verdict({**CLEAN, "cpu_some_avg10_max_pct": 60.0})  # warn 50, fail 90
    assert v["verdict"] == "degraded"
    assert v["warning"] == ["cpu_pressure"] and v["failing"] == []
    assert "cpu_some_avg10_max_pct" in v["reasons"][0]


def test_any_failure_is_untrusted():
    v = F.fidelity_verdict({**CLEAN, "noise_floor_p99_us": 1500.0})  # warn 200, fail 1000
    assert v["verdict"] == "untrusted"
    assert v["failing"] == ["noise_floor"]


def test_two_warnings_are_untrusted():
    v = F.fidelity_verdict({**CLEAN, "link_rate_error": 0.08, "host_side_loss_ratio": 1e-5})
    assert v["verdict"] == "untrusted"
    assert v["warning"] == ["host_side_loss", "link_accuracy"] and v["failing"] == []


def test_thresholds_are_strict_greater_than():
    warn = F.THRESHOLDS["link_rate_error"][0]
    assert F.fidelity_verdict({**CLEAN, "link_rate_error": warn})["verdict"] == "trusted"
    assert F.fidelity_verdict({**CLEAN, "link_rate_error": warn * 1.01})["verdict"] == "degraded"


def test_sender_lateness_needs_both_measures_to_trip():
    # 6 ms late is huge in absolute terms but only 1% of a long message: not a problem
    assert F.fidelity_verdict({**CLEAN, "sender_late_p95_us": 6000.0, "sender_late_p95_rel": 0.01})["verdict"] == "trusted"
    # both past fail (5 ms, 2.0)
    v = F.fidelity_verdict({**CLEAN, "sender_late_p95_us": 6000.0, "sender_late_p95_rel": 2.5})
    assert v["failing"] == ["sender_lateness"]
    # abs past fail, rel past warn (0.5) only -> warning
    v = F.fidelity_verdict({**CLEAN, "sender_late_p95_us": 6000.0, "sender_late_p95_rel": 0.8})
    assert v["warning"] == ["sender_lateness"] and v["verdict"] == "degraded"


def test_unmeasured_signals_do_not_count():
    v = F.fidelity_verdict({"noise_floor_p99_us": 10.0})
    assert v["verdict"] == "trusted"
    assert v["signals"]["scheduler_lateness"]["level"] == "n/a"


# ---- signals from frames ------------------------------------------------------------------------

T = 1_700_000_000_000_000_000


def _link(node, peer, kind, rate, tx_per_s, backlog, n=5):
    t = T + np.arange(n) * 1_000_000_000
    return pd.DataFrame({"t_ns": t, "link_id": f"{node}-{peer}", "node": node, "peer": peer, "kind": kind,
                         "queue": "port", "rate_bps": rate, "tx_bytes": np.arange(n) * tx_per_s,
                         "tx_packets": np.arange(n), "drops": 0, "backlog_bytes": backlog * 1000,
                         "backlog_packets": backlog})


def _frames(**over):
    f = {
        # hosts without a recorded NIC rate: only links.parquet says how fast each one sends
        "run": run_json(scale_k=10.0, nodes={f"h{i}": {"role": "host", "tier": "host"} for i in range(4)}).to_dict(),
        "messages": pd.DataFrame({"msg_id": [1, 2], "src": ["h0", "h2"], "dst": ["h1", "h1"],
                                  "bytes_emulated": [1_000_000, 1_000_000], "packets": [250, 250],
                                  "t_sched_ns": [T, T], "t_tx_first_ns": [T + 10_000, T + 20_000],
                                  "t_tx_last_ns": [T + 1_000_000, T + 1_000_000]}),
        "links": pd.concat([
            _link("h0", "leaf0", "host", 8_000_000, 1_000_000, 10),     # backlogged, at rate
            _link("leaf0", "spine0", "fabric", 8_000_000, 500_000, 10),  # backlogged, half rate
            _link("leaf0", "spine1", "fabric", 8_000_000, 100_000, 0),   # idle: not judged
        ]),
        "cpu": pd.DataFrame({"t_ns": [T, T + 10_000_000_000], "some_avg10": [2.0, 4.0],
                             "some_total_us": [0, 2_000_000], "full_total_us": [0, 0]}),
        "noise": pd.DataFrame({"tx_ns": [T, T, T], "rx_ns": [T + 5000, T + 7000, T + 9000]}),
    }
    f.update(over)
    return f


def test_signals_from_frames():
    s = F.fidelity_signals(_frames())
    assert s["noise_floor_p99_us"] == 9.0
    assert s["cpu_some_avg10_max_pct"] == 4.0
    assert s["cpu_some_stall_fraction"] == pytest.approx(0.2)   # 2 s stalled in 10 s: past warn 0.15
    assert s["sender_late_p95_us"] == 20.0
    # line-rate time = 1 MB + 250 packets x 42 B of headers at 8 Mbit/s (+ 7 µs idle path):
    # relative lateness ~1e-5; h2 has no host-link row, so only h0 (10 us late) is compared
    assert s["sender_late_p95_rel"] == pytest.approx(10_000 / ((1_000_000 + 250 * 42) * 1e3 + 7000))
    assert s["link_rate_error"] == pytest.approx(0.5)
    assert s["detail"]["link_accuracy"]["worst_link"] == "leaf0-spine0:leaf0->spine0"
    assert s["detail"]["link_accuracy"]["busy_links"] == 2
    assert s["host_side_loss_ratio"] == 0.0
    assert s["scheduler_late_p99_rel"] is None
    v = F.fidelity_verdict(s)
    assert v["verdict"] == "untrusted"
    assert "link_accuracy" in v["failing"] and "cpu_pressure" in v["warning"]


def test_host_side_drops_and_scheduler_from_run_json():
    run = {"scale_k": 10, "host_side_drops": {"h0": 3, "h1": 2},
           "scheduler": {"tick_ns": 2_000_000, "tick_late_p99_ns": 80_000}}
    s = F.fidelity_signals(_frames(run=run))
    assert s["host_side_loss_ratio"] == pytest.approx(5 / 500)
    assert s["scheduler_late_p99_rel"] == pytest.approx(0.04)


def test_scheduler_lateness_from_ticks():
    ticks = pd.DataFrame({"t_ns": T + np.arange(100) * 2_000_000, "tick_interval_ns": [2_000_000] * 95 + [8_000_000] * 5,
                          "ncp": "ncp0", "dst": "h0", "backlog_bytes": 0, "granted_bps": 0})
    s = F.fidelity_signals(_frames(run={"scale_k": 10, "scheduler": {"tick_ns": 2_000_000}}, scheduler=ticks))
    # p99 interval (rank 99 of 100) is 8 ms: 6 ms late on a 2 ms tick (fail above 2.0)
    assert s["scheduler_late_p99_rel"] == pytest.approx(3.0)
    assert F.fidelity_verdict(s)["signals"]["scheduler_lateness"]["level"] == "fail"


def test_lateness_ignores_messages_queued_behind_the_same_host():
    # h0's second message is scheduled while its first is still being sent: it starts 900 us
    # "late" because the NIC is busy, which is the workload, not the emulator falling behind.
    msgs = pd.DataFrame({"msg_id": [1, 2, 3], "src": ["h0", "h0", "h2"], "dst": ["h1", "h3", "h1"],
                         "bytes_emulated": [1_000_000] * 3, "packets": [250] * 3,
                         "t_sched_ns": [T, T + 100_000, T], "t_tx_first_ns": [T + 10_000, T + 1_000_000, T + 30_000],
                         "t_tx_last_ns": [T + 1_000_000, T + 2_000_000, T + 1_000_000]})
    s = F.fidelity_signals(_frames(messages=msgs))
    assert s["sender_late_p95_us"] == 30.0


def test_sender_that_cannot_keep_its_nic_busy_is_flagged():
    # h0 sends 1 MB (+ headers) in 100 ms on a 100 Mbit/s NIC: 81% of line rate while it had data
    # (shortfall 0.19 > warn 0.10). h2's 5 ms message is too short to be judged.
    msgs = pd.DataFrame({"msg_id": [1, 2], "src": ["h0", "h2"], "dst": ["h1", "h1"],
                         "bytes_emulated": [1_000_000, 50_000], "packets": [250, 13],
                         "t_sched_ns": [T, T], "t_tx_first_ns": [T, T], "t_tx_last_ns": [T + 100_000_000, T + 5_000_000]})
    links = pd.concat([_link("h0", "leaf0", "host", 8_000_000, 100_000, 0)])
    links["rate_bps"] = 100_000_000
    s = F.fidelity_signals(_frames(messages=msgs, links=links))
    wire_bits = (1_000_000 + 250 * 42) * 8
    assert s["sender_rate_shortfall"] == pytest.approx(1 - wire_bits / 0.1 / 100e6)
    assert s["detail"]["sender_throughput"]["worst_host"] == "h0"
    assert F.fidelity_verdict(s)["signals"]["sender_throughput"]["level"] == "warn"


# ---- the simulator's signal ------------------------------------------------------------------------

def _sim_run(sent=1000, received=990, dropped=10, queued=0, on_wire=0, held=0, dropped_records=None, **sim):
    acc = {"sent": sent, "received": received, "dropped": dropped, "queued": queued, "on_wire": on_wire,
           "held": held, "dropped_records": dropped if dropped_records is None else dropped_records, "duplicates": 0}
    in_network = queued + on_wire + held
    detail = {"accounting": acc, "drops_by_queue": {"host nic": 0, "edge->host port": dropped},
              "every_packet_accounted": sent == received + dropped + in_network and acc["dropped_records"] == dropped,
              "messages_unfinished": 1, "events": 12_345} | sim
    return run_json(engine="sim", host_side_drops=0, sim=detail).to_dict()


def _sim_frames(run):
    # A simulator run: no cpu or scheduler table; messages as the simulator records them.
    f = _frames(run=run)
    del f["cpu"]
    return f


def test_simulator_run_with_every_packet_accounted_is_trusted_and_emulator_signals_say_so():
    s = F.fidelity_signals(_sim_frames(_sim_run(messages_cut_off=0)))
    assert s["sim_unaccounted_packets"] == 0 and s["sim_cut_off_share"] == 0
    for m in ("cpu_some_avg10_max_pct", "cpu_some_stall_fraction", "sender_late_p95_us", "sender_late_p95_rel",
              "sender_rate_shortfall", "scheduler_late_p99_rel"):
        assert s[m] == "n/a (simulator)", m
    v = F.fidelity_verdict(s)
    assert v["signals"]["sim_accounting"]["level"] == "ok"
    for sig in ("cpu_pressure", "sender_lateness", "sender_throughput", "scheduler_lateness"):
        assert v["signals"][sig]["level"] == "n/a (simulator)", sig
    # The signals of both engines are still judged: the frames' half-rate busy link fails the run.
    assert v["signals"]["link_accuracy"]["level"] == "fail" and v["failing"] == ["link_accuracy"]
    at_rate = _link("h0", "leaf0", "host", 8_000_000, 1_000_000, 10)
    clean = F.fidelity_signals(_sim_frames(_sim_run(messages_cut_off=0)) | {"links": at_rate})
    assert F.fidelity_verdict(clean)["verdict"] == "trusted"


def test_simulator_run_with_a_packet_unaccounted_is_untrusted():
    # 1000 sent, 989 received, 10 dropped, nothing left in the network: one packet vanished
    s = F.fidelity_signals(_sim_frames(_sim_run(received=989, messages_cut_off=0)))
    assert s["sim_unaccounted_packets"] == 1
    v = F.fidelity_verdict(s)
    assert v["verdict"] == "untrusted" and "sim_accounting" in v["failing"]
    assert any(r.startswith("sim_accounting: sim_unaccounted_packets = 1 > fail threshold 0") for r in v["reasons"])


def test_simulator_records_disagreeing_with_its_counters_are_untrusted():
    # The counters balance, but the per-packet records saw 9 drops where the queues counted 10.
    s = F.fidelity_signals(_sim_frames(_sim_run(dropped_records=9, messages_cut_off=0)))
    assert s["sim_unaccounted_packets"] == 1
    assert "sim_accounting" in F.fidelity_verdict(s)["failing"]
    # Older runs record only the flag: it alone fails the run.
    run = _sim_run(messages_cut_off=0)
    run["sim"]["every_packet_accounted"] = False
    assert F.fidelity_signals(_sim_frames(run))["sim_unaccounted_packets"] == 1


def test_simulator_messages_cut_off_beyond_those_lost_are_degraded():
    # 1 of the 2 messages still had packets in the network at the end (not lost: cut off by tmax)
    run = _sim_run(received=985, queued=3, on_wire=2, messages_cut_off=1)
    s = F.fidelity_signals(_sim_frames(run) | {"links": _link("h0", "leaf0", "host", 8_000_000, 1_000_000, 10)})
    assert s["sim_unaccounted_packets"] == 0
    assert s["sim_cut_off_share"] == pytest.approx(0.5)
    v = F.fidelity_verdict(s)
    assert v["verdict"] == "degraded" and v["warning"] == ["sim_accounting"] and v["failing"] == []
    assert v["reasons"] == ["sim_accounting: sim_cut_off_share = 0.5 > warn threshold 0"]
    # Messages that only lost packets are not cut off: the analysis recovers their loss.
    lost_only = F.fidelity_signals(_sim_frames(_sim_run(messages_cut_off=0, messages_unfinished=2)))
    assert lost_only["sim_cut_off_share"] == 0


def test_simulator_cut_off_from_the_accounting_of_older_runs():
    # Without messages_cut_off: nothing left in the network means every unfinished message lost a packet ...
    assert F.fidelity_signals(_sim_frames(_sim_run()))["sim_cut_off_share"] == 0
    # ... and with packets left, at most one message per packet (and no more than were unfinished).
    s = F.fidelity_signals(_sim_frames(_sim_run(received=985, queued=5)))
    assert s["sim_cut_off_share"] == pytest.approx(0.5)
    assert "upper bound" in s["detail"]["sim_accounting"]["cut_off_source"]


def test_emulator_run_says_the_simulator_signal_does_not_apply():
    s = F.fidelity_signals(_frames())
    assert s["sim_unaccounted_packets"] == s["sim_cut_off_share"] == "n/a (emulator)"
    v = F.fidelity_verdict(s)
    assert v["signals"]["sim_accounting"]["level"] == "n/a (emulator)"
    assert v["signals"]["cpu_pressure"]["level"] == "warn"   # the emulator's own signals are judged
