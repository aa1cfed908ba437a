"""docs/metrics.md figures against hand-computed cases (fabric.analysis.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fabric.analysis import completion as C
from fabric.analysis import metrics as M

# ---- percentiles and one-way delay -------------------------------------------------------------

def test_nearest_rank_is_exact_at_integer_boundaries():
    # float arithmetic gives ceil(0.99 * 1000) == 990 only by luck; these must be exact
    assert M.nearest_rank(1000, 99_000) == 990
    assert M.nearest_rank(1001, 99_000) == 991
    assert M.nearest_rank(10, 50_000) == 5
    assert M.nearest_rank(3, 99_900) == 3
    assert M.nearest_rank(1, 50_000) == 1


def test_percentiles_nearest_rank_not_interpolated():
    v = np.array([40, 10, 30, 20])
    p = M.percentiles(v, [("p50", 50_000), ("p90", 90_000)])
    # ranks ceil(2.0)=2 -> 20 and ceil(3.6)=4 -> 40; linear interpolation would give 25 and 37
    assert p == {"p50": 20.0, "p90": 40.0}


def _delays_us(n_rx):
    return np.arange(1, n_rx + 1, dtype=np.int64) * 1000  # 1 µs .. n_rx µs, in ns


def test_loss_aware_p99_is_finite_at_exactly_one_percent_loss():
    s = M.delay_stats(_delays_us(990), n_lost=10)
    # N = 1000, rank 990 is the largest received sample: 990 µs
    assert s["p99"] == 990.0
    assert s["rx_p99"] == 981.0  # rank ceil(0.99 * 990) = 981
    assert s["n"] == 1000 and s["n_lost"] == 10
    # p99.9: rank 999 > 990 received -> lands on a lost packet
    assert s["p99_9"] == math.inf
    assert s["max"] == math.inf and s["mean"] == math.inf
    assert s["rx_max"] == 990.0
    assert s["rx_mean"] == pytest.approx(495.5)


def test_loss_aware_p99_becomes_inf_once_loss_exceeds_one_percent():
    s = M.delay_stats(_delays_us(989), n_lost=11)
    assert s["p99"] == math.inf
    assert s["rx_p99"] == 980.0  # ceil(0.99 * 989) = 980
    assert s["p90"] == 900.0     # rank 900 of 1000 is still a received packet


def test_beyond_counts_include_lost_packets_and_p99_99_needs_100k():
    s = M.delay_stats(_delays_us(990), n_lost=10)
    # above p90 = 900 µs: 90 received (901..990) + 10 lost
    assert s["beyond_p90"] == 100
    assert s["rx_beyond_p90"] == 990 - 891  # rx_p90 = ceil(0.9*990)=891
    assert s["beyond_p99"] == 10              # only the lost ones are above 990 µs
    assert "p99_99" not in s and "rx_p99_99" not in s
    big = M.delay_stats(np.arange(100_000, dtype=np.int64) * 1000)
    assert big["p99_99"] == 99_989.0           # rank 99,990 -> value index 99,989
    assert big["beyond_p99_99"] == 10


def test_delay_stats_all_lost():
    s = M.delay_stats(np.empty(0, dtype=np.int64), n_lost=5)
    assert s["p50"] == math.inf and s["min"] == math.inf
    assert "rx_p50" not in s


# ---- delay variation ---------------------------------------------------------------------------

def test_pdv_relative_to_minimum():
    d = np.array([100, 100, 100, 100, 100, 100, 100, 100, 100, 600]) * 1000
    p = M.pdv_stats(d)
    assert p["p50_minus_min"] == 0.0
    assert p["p99_minus_min"] == 500.0  # rank 10 of 10 -> 600 µs − 100 µs


def test_ipdv_with_a_lost_packet_in_the_middle():
    # delays (ns) in sending order; packet 2 lost: pairs (1,2) and (2,3) are undefined
    delay = np.array([100, 110, -1, 130, 125])
    received = np.array([True, True, False, True, True])
    values, undefined = M.ipdv(delay, received, np.zeros(5, dtype=int))
    assert values.tolist() == [10, -5]
    assert undefined == 2


def test_ipdv_does_not_pair_across_streams():
    delay = np.array([100, 200, 1000, 1010])
    values, undefined = M.ipdv(delay, np.ones(4, dtype=bool), np.array([0, 0, 1, 1]))
    assert values.tolist() == [100, 10]
    assert undefined == 0


def test_rfc3550_jitter_matches_hand_computed_recursion():
    # Transit times 0, 10, 0, 10 ns -> |D| = 10, 10, 10 (RFC 3550 A.8, J0 = 0):
    #   J1 = 0      + (10 − 0)      / 16 = 0.625
    #   J2 = 0.625  + (10 − 0.625)  / 16 = 1.2109375
    #   J3 = 1.2109375 + (10 − 1.2109375) / 16 = 1.76025390625
    j = M.rfc3550_jitter(np.array([0, 10, 0, 10]), np.zeros(4, dtype=int))
    assert j.tolist() == [pytest.approx(1.76025390625, abs=1e-12)]


def test_rfc3550_jitter_per_stream_and_long_sequence():
    # second stream: transits 5, 5 -> D = 0 -> J = 0; a stream boundary must not create a D
    j = M.rfc3550_jitter(np.array([0, 10, 0, 10, 5, 5]), np.array([0, 0, 0, 0, 1, 1]))
    assert j[0] == pytest.approx(1.76025390625)
    assert j[1] == 0.0
    # closed form vs the literal recursion on a long random sequence
    rng = np.random.default_rng(3)
    t = rng.integers(0, 1000, 5000)
    ref = 0.0
    for a, b in zip(t[:-1], t[1:]):
        ref += (abs(int(b) - int(a)) - ref) / 16
    assert M.rfc3550_jitter(t, np.zeros(t.size, dtype=int))[0] == pytest.approx(ref, rel=1e-9)


# ---- loss, episodes, reordering, duplicates ---------------------------------------------------

def test_loss_ratio_counts():
    s = M.loss_stats(200, 197, tmax_ns=2_000_000_000, n_duplicates=4)
    assert s == {"sent": 200, "received": 197, "lost": 3, "ratio": 0.015, "tmax_ns": 2_000_000_000,
                 "duplicates": 4}


def test_loss_episodes_of_known_lengths():
    lost = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0, 1], dtype=bool)
    e = M.loss_episodes(lost, np.zeros(10, dtype=int), duration_s=2.0)
    assert e["n_episodes"] == 3
    assert e["mean_length"] == 2.0    # lengths 2, 3, 1
    assert e["max_length"] == 3
    assert e["frequency_per_packet"] == 0.3
    assert e["frequency_hz"] == 1.5


def test_loss_episode_split_at_stream_boundary():
    e = M.loss_episodes(np.array([0, 1, 1, 0], dtype=bool), np.array([0, 0, 1, 1]))
    assert e["n_episodes"] == 2 and e["max_length"] == 1


def test_no_loss_no_episodes():
    e = M.loss_episodes(np.zeros(5, dtype=bool), np.zeros(5, dtype=int))
    assert e["n_episodes"] == 0 and e["max_length"] == 0


def test_reordering_ratio_and_extent():
    # arrivals 0 1 2 5 3 4 6 7: NextExp after 5 is 6, so 3 and 4 are reordered (RFC 4737 §3).
    # extent(3) = 4 − 3 = 1, extent(4) = 5 − 3 = 2 (first later-numbered arrival is 5 at index 3)
    r = M.reordering(np.array([0, 1, 2, 5, 3, 4, 6, 7]), np.zeros(8, dtype=int))
    assert r["n_reordered"] == 2
    assert r["ratio"] == 0.25
    assert r["max_extent"] == 2
    assert r["n_reordered_ge3"] == 0


def test_reordering_by_three_triggers_fast_retransmit_count():
    # 0 arrives after 3, 4, 5 -> 3-reordered, extent 3; 1 and 2 are reordered (extents 4, 5)
    # but each is preceded by a smaller number, so not 3-reordered (RFC 4737 §5)
    r = M.reordering(np.array([3, 4, 5, 0, 1, 2]), np.zeros(6, dtype=int))
    assert r["n_reordered"] == 3
    assert r["ratio"] == 0.5
    assert r["max_extent"] == 5
    assert r["n_reordered_ge3"] == 1


def test_reordering_is_per_stream():
    r = M.reordering(np.array([5, 6, 0, 1]), np.array([0, 0, 1, 1]))
    assert r["n_reordered"] == 0


def test_duplicates_counted_once():
    assert M.duplicate_count(np.array([1, 2, 0, 3, 1])) == 3


# ---- messages, groups, fairness ----------------------------------------------------------------

def test_mct_under_go_back_n_recovery_model():
    # 10 packets x 1000 B at 8 Mbit/s: 1 ms each. Packet 3 (sent at T+3 ms) lost.
    # RTO 4 ms, idle path 50 µs: the 7 packets from it on are resent with their headers (1042 B on
    # the wire, 1.042 ms each): done = T + 3 + 4 + 7 x 1.042 + 0.05 ms = T + 14.344 ms.
    T = 1_000_000_000
    msgs = pd.DataFrame({"src": ["h0", "h1"], "dst": ["h2", "h3"], "t_sched_ns": [T, T], "t_tx_first_ns": [T, T],
                         "bytes_emulated": [10_000, 10_000], "packets": [10, 10]})
    receipt = pd.DataFrame({"n_rows": [10, 10], "n_received": [9, 10],
                            "last_rx_ns": [T + 10_050_000, T + 10_500_000],
                            "first_lost_tx_ns": [T + 3_000_000, -1], "resend_bytes": [7_000, 0]})
    rate = np.array([8e6, 8e6])
    c = C.message_completion(msgs, receipt, rate, rate, idle_path_delay_ns=50_000, rto_ns=4_000_000)
    assert c["recovered"].tolist() == [True, False]
    assert c["mct_ns"].iloc[0] == pytest.approx(14_344_000)
    assert c["mct_ns"].iloc[1] == pytest.approx(10_500_000)   # complete: last arrival − sched
    # ideal: wire bytes (10 x (1000 + 42 B of headers)) at 8 Mbit/s + idle path delay
    assert c["ideal_ns"].iloc[0] == pytest.approx(10_470_000)
    assert c["line_rate_ns"].iloc[0] == pytest.approx(10_420_000)
    assert c["slowdown"].iloc[0] == pytest.approx(14.344 / 10.47)
    assert c["slowdown"].iloc[1] == pytest.approx(10.5 / 10.47)


def test_resends_into_one_port_take_turns_on_it():
    # An incast that lost everything: 4 senders x 10 packets x 1000 B into one receiver, all at
    # 8 Mbit/s (1.042 ms a packet with headers), every packet lost at T. After the RTO the 40
    # resent packets all cross the receiver's NIC: the last is done 4 + 40 x 1.042 ms + idle after
    # T, not 4 + 10 x 1.042 (each sender's resend alone at line rate) nor the loss-free ideal.
    T = 1_000_000_000
    n = 4
    msgs = pd.DataFrame({"src": [f"h{i}" for i in range(n)], "dst": ["r"] * n, "t_sched_ns": [T] * n,
                         "t_tx_first_ns": [T] * n, "bytes_emulated": [10_000] * n, "packets": [10] * n})
    receipt = pd.DataFrame({"n_rows": [10] * n, "n_received": [0] * n, "last_rx_ns": [-1] * n,
                            "first_lost_tx_ns": [T] * n, "resend_bytes": [10_000] * n})
    rate = np.full(n, 8e6)
    c = C.message_completion(msgs, receipt, rate, rate, idle_path_delay_ns=50_000, rto_ns=4_000_000)
    assert c["recovered"].all()
    assert c["mct_ns"].max() == pytest.approx(4_000_000 + 40 * 1_042_000 + 50_000)
    assert c["ideal_ns"].max() == pytest.approx(40 * 1_042_000 + 50_000)
    # Round-robin on the receiver: every resend finishes within its last round of turns.
    assert c["mct_ns"].min() >= 4_000_000 + 37 * 1_042_000


def test_processor_sharing_finish_times():
    # Two 1 ms jobs at t=0 share the server: both done at 2 ms; a third at 5 ms runs alone.
    f = C.processor_sharing_finish(np.array([0, 0, 5e6]), np.array([1e6, 1e6, 1e6]))
    assert f.tolist() == pytest.approx([2e6, 2e6, 6e6])
    # A short job arriving during a long one: PS gives it half the rate.
    f = C.processor_sharing_finish(np.array([0, 1e6]), np.array([4e6, 1e6]))
    assert f.tolist() == pytest.approx([5e6, 3e6])


def test_ideal_all_to_all_burst_shares_the_nic():
    # 3 hosts, each sends 1 ms of wire bits to each other host at t=0: every NIC carries 2 ms,
    # so every message's ideal completion is 2 ms (plus forward and idle delay).
    src = np.array(["a", "a", "b", "b", "c", "c"], dtype=object)
    dst = np.array(["b", "c", "a", "c", "a", "b"], dtype=object)
    # 958 B of payload + 42 B of headers = 1000 B on the wire = 1 ms at 8 Mbit/s (one packet each).
    ideal = C.ideal_completion_ns(np.zeros(6, dtype=np.int64), src, dst, np.full(6, 958), np.ones(6), 4096,
                                  np.full(6, 8e6), np.full(6, 8e6), np.full(6, 10.0), idle_path_delay_ns=5.0)
    # One packet per message: each NIC carries two, one after the other (1 and 2 ms), sending and
    # receiving alike; every message is done within 2 ms, half of them at 1 ms.
    assert max(ideal) == pytest.approx(2e6 + 15)
    assert sorted(ideal)[:2] == pytest.approx([1e6 + 15] * 2)


def test_round_robin_interleaves_packets_of_concurrent_messages():
    # Two messages of 4 packets (1 ms each) at t=0: packets alternate; a one-packet message arriving
    # at 2.5 ms takes its turn in the third round (done at 5 ms), so the two finish at 8 and 9 ms.
    f = C.round_robin_finish(np.array([0.0, 0.0, 2.5e6]), np.array([4, 4, 1]), np.full(3, 1e6), np.full(3, 1e6))
    assert sorted(f[:2].tolist()) == pytest.approx([8e6, 9e6])
    assert f[2] == pytest.approx(5e6)


def test_incast_ideal_is_set_by_the_receiver_nic():
    src = np.array(["a", "b", "c", "d"], dtype=object)
    dst = np.array(["r"] * 4, dtype=object)
    ideal = C.ideal_completion_ns(np.zeros(4, dtype=np.int64), src, dst, np.full(4, 958 * 10), np.full(4, 10), 958,
                                  np.full(4, 8e6), np.full(4, 8e6), np.zeros(4), idle_path_delay_ns=0.0)
    # 4 senders x 10 packets of 1 ms into one receiver NIC, taken in turn: done at 37..40 ms.
    assert sorted(ideal) == pytest.approx([37e6, 38e6, 39e6, 40e6])


def test_group_completion_is_max_over_members():
    g = C.group_completion(np.array(["a", "a", "b", ""], dtype=object),
                           np.array(["kv", "kv", "allreduce", "kv"], dtype=object),
                           np.array([100, 150, 0, 0]), np.array([400, 900, 50, 10_000]),
                           np.array([False, True, False, False]))
    assert g.loc["a", "completion_ns"] == 800  # last member done at 900, first scheduled at 100
    assert bool(g.loc["a", "recovered"]) and not bool(g.loc["b", "recovered"])
    assert len(g) == 2  # the ungrouped message is not a group
    # a member whose completion is unknown (-1) leaves the group's completion undefined
    u = C.group_completion(np.array(["c", "c"], dtype=object), np.array(["kv", "kv"], dtype=object),
                           np.array([0, 0]), np.array([10, -1]), np.array([False, True]))
    assert math.isnan(u.loc["c", "completion_ns"])


def test_jain_index():
    assert M.jain_index([5, 5, 5, 5]) == 1.0
    assert M.jain_index([1, 0, 0, 0]) == 0.25
    assert M.jain_index([1, 2, 3]) == pytest.approx(36 / 42)
    assert math.isnan(M.jain_index([]))


def test_goodput_is_real_units():
    # 1,250 emulated bytes in 1 ms = 10 Mbit/s emulated; k = 1000 -> 10 Gbit/s real
    assert M.goodput_bps(1250, 0.001, scale_k=1000) == pytest.approx(10e9)


# ---- links -------------------------------------------------------------------------------------

def _link_rows(link_id, node, peer, kind, tx_bytes, t=(0, 1_000_000_000), rate=10_000_000, backlog=(0, 0),
               drops=(0, 0)):
    return pd.DataFrame({"t_ns": list(t), "link_id": link_id, "node": node, "peer": peer, "kind": kind,
                         "queue": "port", "rate_bps": rate, "tx_bytes": list(tx_bytes),
                         "tx_packets": [b // 1000 for b in tx_bytes], "drops": list(drops),
                         "backlog_bytes": [b * 1000 for b in backlog], "backlog_packets": list(backlog)})


def test_link_utilization_drops_backlog_from_cumulative_counters():
    f = _link_rows("l0", "leaf0", "spine0", "fabric", (1_000, 1_251_000), backlog=(3, 5), drops=(7, 9))
    s = M.link_summary(f, scale_k=100)["l0:leaf0->spine0"]
    assert s["utilization"]["mean"] == pytest.approx(1.0)   # 1.25 MB in 1 s on 10 Mbit/s
    assert s["drops"] == 2                                  # delta, not the cumulative 9
    assert s["tx_bytes"] == 1_250_000 * 100                 # real bytes
    assert s["rate_bps"] == 10_000_000 * 100
    assert s["backlog_packets"] == {"max": 5, "mean": 4.0}


def test_spine_imbalance_max_over_mean():
    f = pd.concat([
        _link_rows("l0", "leaf0", "spine0", "fabric", (0, 300)),
        _link_rows("l1", "leaf0", "spine1", "fabric", (0, 100)),
        _link_rows("l2", "spine0", "leaf1", "fabric", (0, 100)),
        _link_rows("l3", "spine1", "leaf1", "fabric", (0, 100)),
        _link_rows("l4", "h0", "leaf0", "host", (0, 10_000)),   # host links do not count
    ])
    s = M.spine_imbalance(f, {"spine0": 0, "spine1": 1}, scale_k=10)
    # spine0 carried 400, spine1 200: mean 300 -> 400 / 300
    assert s["max_over_mean"] == pytest.approx(4 / 3)
    assert s["shares"] == {"spine0": pytest.approx(2 / 3), "spine1": pytest.approx(1 / 3)}
    assert s["up"]["max_over_mean"] == pytest.approx(1.5)    # 300 vs 100
    assert s["down"]["max_over_mean"] == pytest.approx(1.0)
    assert s["tx_bytes"]["spine0"] == 4000


def test_spine_imbalance_counts_idle_cores_and_orders_ncfs_numerically():
    f = pd.concat([_link_rows(f"l{i}", "ncp0", f"ncf{i}", "fabric", (0, 100 if i == 10 else 0))
                   for i in (2, 10)])
    s = M.spine_imbalance(f, {"ncf2": 2, "ncf10": 10})
    assert list(s["shares"]) == ["ncf2", "ncf10"]
    assert s["max_over_mean"] == pytest.approx(2.0)   # one of two cores carries everything
