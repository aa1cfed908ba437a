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
