"""metrics.json from hand-made run directories (fabric.analysis.run_metrics, fabric analyze)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fabric import rundir
from fabric.analysis.run_metrics import analyze_run, write_metrics
from fabric.errors import RunDirError
from fabric.specs import parse_fabric_spec
from tests.rundirs import SMALL_DESIGN, write_run

T = 1_700_000_000_000_000_000
MS = 1_000_000
RATE = 8_000_000  # emulated host link rate: 1000 B per ms


def _pk(msg_id, seq, src, dst, tx, rx, copies=1, nbytes=1000):
    return {"msg_id": msg_id, "seq": seq, "src": src, "dst": dst, "bytes": nbytes, "tx_ns": tx, "rx_ns": rx,
            "copies": copies, "path": 0}


def _links(hosts, rows_per_link=2, dt=MS):
    rows = []
    for h, leaf in hosts:
        for i in range(rows_per_link):
            rows.append({"t_ns": T + i * dt, "link_id": f"up-{h}", "node": h, "peer": leaf, "kind": "host",
                         "queue": "port", "rate_bps": RATE, "tx_bytes": i * 500, "tx_packets": i,
                         "drops": 0, "backlog_bytes": 0, "backlog_packets": 0})
    for s, nbytes in (("spine0", 3000), ("spine1", 1000)):
        for i in range(rows_per_link):
            rows.append({"t_ns": T + i * dt, "link_id": f"f-{s}", "node": "leaf0", "peer": s, "kind": "fabric",
                         "queue": "port", "rate_bps": RATE, "tx_bytes": i * nbytes, "tx_packets": i,
                         "drops": 0, "backlog_bytes": 0, "backlog_packets": 0})
    return pd.DataFrame(rows)


@pytest.fixture
def run_dir(tmp_path):
    """Two KV messages of one request (one with packet 2 lost), one probe delivered twice."""
    pk = []
    for s in range(4):  # m1 h0 -> h2, packet 2 lost; others arrive after 100 µs
        pk.append(_pk(1, s, "h0", "h2", T + s * MS, -1 if s == 2 else T + s * MS + 100_000, 0 if s == 2 else 1))
    for s in range(4):  # m2 h1 -> h3, all arrive after 200 µs
        pk.append(_pk(2, s, "h1", "h3", T + s * MS, T + s * MS + 200_000))
    # m3: one probe packet recorded twice (a recorder that writes one row per received copy):
    # the first copy (earlier rx) decides its delay, the second is a duplicate.
    pk.append(_pk(3, 0, "h0", "h1", T, T + 30_000, nbytes=64))
    pk.append(_pk(3, 0, "h0", "h1", T, T + 90_000, nbytes=64))
    messages = pd.DataFrame([
        {"msg_id": 1, "src": "h0", "dst": "h2", "kind": "kv", "group": "r1", "request_id": 1, "step": 0,
         "bytes": 4_000_000, "bytes_emulated": 4000, "packets": 4, "packets_received": 3, "t_sched_ns": T,
         "t_tx_first_ns": T, "t_tx_last_ns": T + 3 * MS, "t_rx_last_ns": T + 3 * MS + 100_000},
        {"msg_id": 2, "src": "h1", "dst": "h3", "kind": "kv", "group": "r1", "request_id": 1, "step": 0,
         "bytes": 4_000_000, "bytes_emulated": 4000, "packets": 4, "packets_received": 4, "t_sched_ns": T,
         "t_tx_first_ns": T, "t_tx_last_ns": T + 3 * MS, "t_rx_last_ns": T + 3 * MS + 200_000},
        {"msg_id": 3, "src": "h0", "dst": "h1", "kind": "probe", "group": "", "request_id": -1, "step": -1,
         "bytes": 64_000, "bytes_emulated": 64, "packets": 1, "packets_received": 1, "t_sched_ns": T,
         "t_tx_first_ns": T, "t_tx_last_ns": T, "t_rx_last_ns": T + 30_000},
    ])
    # noise probe: idle delays 40, 50, 60 µs -> idle path delay (median) 50 µs
    noise = pd.DataFrame([_pk(100 + i, 0, "h0", "h2", T - MS * (i + 1), T - MS * (i + 1) + v, nbytes=64)
                          for i, v in enumerate((40_000, 50_000, 60_000))])
    cpu = pd.DataFrame({"t_ns": [T, T + 10 * MS], "some_avg10": [0.5, 1.0], "some_total_us": [0, 100],
                        "full_total_us": [0, 0]})
    return write_run(tmp_path / "run", {"packets": pd.DataFrame(pk), "messages": messages, "noise": noise,
                                        "links": _links([("h0", "leaf0"), ("h1", "leaf0")]), "cpu": cpu},
                     scale_k=1000.0, t0_ns=T, payload_bytes=1000, loss_recovery={"rto_ns": 4 * MS})


def test_metrics_json_is_byte_identical_on_reanalysis(run_dir):
    write_metrics(run_dir)
    first = (run_dir / "metrics.json").read_bytes()
    write_metrics(run_dir)
    assert (run_dir / "metrics.json").read_bytes() == first
    # strict JSON: no Infinity/NaN tokens; infinity is the string "inf"
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    json.loads(first, parse_constant=refuse)


def test_required_keys(run_dir):
    m = analyze_run(run_dir)
    for key in ("scale", "classes", "groups", "fairness", "links", "spine_imbalance", "noise_floor",
                "loss_recovery", "fidelity"):
        assert key in m, key
    kv = m["classes"]["kv"]
    for key in ("owd_us", "loss_ratio", "mct_ms", "slowdown", "pdv_us", "ipdv_us", "rfc3550_j_us", "reorder",
                "loss_episodes", "goodput_bps"):
        assert key in kv, key
    assert m["scale"]["k"] == 1000
    assert "owd_us" in m["noise_floor"]


def test_kv_class_figures(run_dir):
    kv = analyze_run(run_dir)["classes"]["kv"]
    assert kv["loss_ratio"] == 1 / 8
    assert kv["loss"]["lost"] == 1 and kv["loss"]["tmax_ns"] == 1_000_000_000
    # 1 of 8 lost: loss-aware p99 (rank 8) falls on the lost packet; received-only does not
    assert kv["owd_us"]["p99"] == "inf"
    assert kv["owd_us"]["rx_p99"] == 200.0
    # 3 packets at 100 µs, 4 at 200 µs, 1 lost: rank 4 of 8 is the first 200 µs one
    assert kv["owd_us"]["p50"] == 200.0 and kv["owd_us"]["min"] == 100.0
    assert kv["owd_us"]["p90"] == "inf"   # rank 8 of 8
    assert kv["loss_episodes"]["n_episodes"] == 1 and kv["loss_episodes"]["max_length"] == 1
    # IPDV: flow h0->h2 has pairs (0,1) defined, (1,2) and (2,3) undefined; flow h1->h3 three zeros
    assert kv["ipdv_us"]["n_pairs"] == 4 and kv["ipdv_us"]["n_undefined"] == 2
    # delivered 7000 emulated bytes x k = 7 MB real between first tx (T) and last rx (T + 3.2 ms)
    assert kv["goodput_bps"] == pytest.approx(7_000_000 * 8 / 0.0032)


def test_mct_recovery_model_and_group_completion(run_dir):
    m = analyze_run(run_dir)
    # m1: packet 2 sent at T + 2 ms, RTO 4 ms, resend packets 2..3 (2 x (1000 + 42 B of headers) at
    # 1000 B/ms) = 2.084 ms, idle path 50 µs -> done at T + 8.134 ms. m2 completes at T + 3.2 ms.
    kv = m["classes"]["kv"]
    assert kv["mct_ms"]["max"] == pytest.approx(8.134)
    assert kv["mct_ms"]["min"] == pytest.approx(3.2)
    assert kv["messages"]["recovered"] == 1
    # ideal: h0's NIC carries m1 (4 packets of 1000 B + 42 B of headers) and m3 (64 + 42 B), which
    # start together, at 8 Mbit/s: 4.274 ms, + 50 µs idle path = 4.324 ms
    assert kv["slowdown"]["max"] == pytest.approx(8.134 / 4.324)
    assert m["groups"]["kv"]["completion_ms"]["max"] == pytest.approx(8.134)
    assert m["groups"]["kv"]["recovered"] == 1
    assert m["loss_recovery"]["rto_ns"] == 4 * MS
    assert m["loss_recovery"]["idle_path_delay_ns"] == 50_000


def test_duplicate_rows_count_once(run_dir):
    m = analyze_run(run_dir)
    probe = m["classes"]["probe"]
    assert probe["loss"]["sent"] == 1 and probe["loss"]["duplicates"] == 1
    assert probe["owd_us"]["p50"] == 30.0  # the first copy, not the later 90 µs one
    assert m["run"]["duplicate_records"] == 1


def test_fairness_spine_imbalance_and_links(run_dir):
    m = analyze_run(run_dir)
    # kv destinations: h2 got 3000 B, h3 4000 B -> (3 + 4)^2 / (2 (9 + 16)) = 0.98
    assert m["fairness"]["kv"]["jain"] == pytest.approx(0.98)
    assert m["spine_imbalance"]["max_over_mean"] == pytest.approx(1.5)  # 3000 vs 1000
    link = m["links"]["up-h0:h0->leaf0"]
    assert link["tx_bytes"] == 500 * 1000  # real bytes
    assert link["utilization"]["mean"] == pytest.approx(500 * 8 / (RATE * 1e-3))


def test_tmax_turns_late_packets_into_losses(run_dir):
    run = json.loads((run_dir / "run.json").read_text())
    run["tmax_ns"] = 150_000  # the 200 µs packets of m2 are now lost
    rundir.write_json(run_dir / "run.json", run)
    kv = analyze_run(run_dir)["classes"]["kv"]
    assert kv["loss"]["lost"] == 5
    assert kv["owd_us"]["p50"] == "inf"


def test_missing_packets_is_a_run_dir_error(tmp_path):
    write_run(tmp_path, {})
    with pytest.raises(RunDirError, match="packets.parquet"):
        analyze_run(tmp_path)


def test_metrics_json_small_for_16_host_run(tmp_path):
    rng = np.random.default_rng(0)
    hosts = [(f"h{i}", f"leaf{i // 4}") for i in range(16)]
    links = [_links(hosts, rows_per_link=600, dt=100 * MS)]
    kinds = ["kv", "a2a_dispatch", "a2a_combine", "allreduce", "background", "probe"]
    n_msg = 3000
    src = rng.integers(0, 16, n_msg)
    dst = (src + rng.integers(1, 16, n_msg)) % 16
    msgs = pd.DataFrame({"msg_id": np.arange(n_msg), "src": [f"h{i}" for i in src], "dst": [f"h{i}" for i in dst],
                         "kind": [kinds[i % 6] for i in range(n_msg)], "group": [f"g{i // 4}" for i in range(n_msg)],
                         "request_id": -1, "step": -1, "bytes": 4_000_000, "bytes_emulated": 4000, "packets": 4,
                         "packets_received": 4, "t_sched_ns": T + np.arange(n_msg) * MS, "t_tx_first_ns": -1,
                         "t_tx_last_ns": -1, "t_rx_last_ns": -1})
    pm = np.repeat(np.arange(n_msg), 4)
    tx = T + pm * MS + np.tile(np.arange(4), n_msg) * MS // 4
    pk = pd.DataFrame({"msg_id": pm, "seq": np.tile(np.arange(4), n_msg), "src": "x", "dst": "y", "bytes": 1000,
                       "tx_ns": tx, "rx_ns": tx + rng.integers(10_000, 90_000, pm.size), "copies": 1, "path": 0})
    design = SMALL_DESIGN | {"leaves": 4, "spines": 4, "hosts_per_leaf": 4}
    write_run(tmp_path, {"packets": pk, "messages": msgs, "links": pd.concat(links)},
              spec=parse_fabric_spec(design, "test"), scale_k=100.0)
    write_metrics(tmp_path)
    assert (tmp_path / "metrics.json").stat().st_size < 1_000_000


def test_cli_analyze_prints_table_and_json(run_dir):
    import typer

    from fabric.commands.analyze import analyze
    app = typer.Typer()
    app.command()(analyze)
    res = CliRunner().invoke(app, [str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "kv" in res.output and "fidelity:" in res.output and "inf" in res.output
    res = CliRunner().invoke(app, [str(run_dir), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["classes"]["kv"]["loss_ratio"] == 0.125
