"""The simulator's runs against what queueing, hashing and scheduling say they must show.

Expected values are derived from the designs and schedules of :mod:`tests.sim.scenarios`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fabric.analysis.run_metrics import completions, read_frames, write_metrics
from fabric.probe import DEFAULT_PAYLOAD_BYTES, WIRE_OVERHEAD_BYTES
from fabric.rundir import read_run_json
from tests.processes import alive, pids_with
from tests.sim import scenarios as S
from tests.sim.conftest import needs_ns3

pytestmark = needs_ns3


def packets_of(run: dict) -> pd.DataFrame:
    """Packets joined to their message's kind and group, with one-way delay."""
    p = pd.read_parquet(run["dir"] / "packets.parquet")
    m = pd.read_parquet(run["dir"] / "messages.parquet")
    p = p.merge(m[["msg_id", "kind", "group"]], on="msg_id", how="left")
    return p.assign(owd=p["rx_ns"] - p["tx_ns"], received=p["rx_ns"] >= 0)


def wire_bytes(payload: int) -> int:
    packets = -(-payload // DEFAULT_PAYLOAD_BYTES)
    return payload + packets * WIRE_OVERHEAD_BYTES


@pytest.mark.parametrize("n", S.INCAST_SIZES)
def test_incast_loss_and_queueing_follow_the_buffer(sim_runs, n):
    """N senders at line rate into one port of buffer B: the port delivers M + B of the N·M bytes
    sent, and packets that get through waited B / C (the full queue at the port's rate)."""
    p = packets_of(sim_runs["ecmp"])
    g = p[p["group"] == f"incast{n}"]
    assert len(g) == n * -(-S.INCAST_BYTES // DEFAULT_PAYLOAD_BYTES)
    m_wire, b = wire_bytes(S.INCAST_BYTES), S.BUFFER_BYTES
    expected_loss = 1 - (m_wire + b) / (n * m_wire)
    loss = 1 - g["received"].mean()
    assert loss == pytest.approx(expected_loss, rel=0.02)
    idle_ns = 2 * (S.packet_time_ns() + S.LINK_DELAY_NS)  # host -> leaf -> host, one full packet
    queueing = np.median(g.loc[g["received"], "owd"]) - idle_ns
    assert queueing == pytest.approx(b * 8e9 / S.RATE_BPS, rel=0.02)
    print(f"incast {n}:1 loss {loss:.4f} (expected {expected_loss:.4f}), median queueing {queueing / 1e3:.2f} us "
          f"(B/C {b * 8e6 / S.RATE_BPS:.2f} us)")


def test_spray_gives_every_spine_its_share(sim_runs):
    links = pd.read_parquet(sim_runs["spray"]["dir"] / "links.parquet")
    last = links[(links["t_ns"] == links["t_ns"].max()) & (links["kind"] == "fabric") & (links["queue"] == "port")]
    per_spine = pd.concat([last.loc[last["node"].str.startswith("spine")].groupby("node")["tx_bytes"].sum(),
                           last.loc[last["peer"].str.startswith("spine")].groupby("peer")["tx_bytes"].sum()]
                          ).groupby(level=0).sum()
    spines = S.SPRAY["spines"]
    assert len(per_spine) == spines
    share = per_spine / per_spine.sum()
    assert np.allclose(share, 1 / spines, rtol=0.01), share.to_dict()


def _flow_paths(run: dict) -> pd.Series:
    p = packets_of(run)
    f = p[(p["kind"] == "permutation") & p["received"]]
    assert len(f) == S.FLOWS * S.FLOW_BYTES // DEFAULT_PAYLOAD_BYTES  # nothing lost: the test sees every packet
    assert (f["path"] >= 0).all()
    return f.groupby(["src", "dst", "group"])["path"]


def test_ecmp_pins_every_flow_to_one_path(sim_runs):
    paths = _flow_paths(sim_runs["ecmp"])
    assert (paths.nunique() == 1).all()
    used = paths.first().value_counts()
    assert len(used) == S.LEAF_SPINE["spines"]  # 48 flows over 2 spines: both used


def test_ecmp_paths_depend_on_the_seed_only(sim_runs):
    same = _flow_paths(sim_runs["flows_same_seed"]).first()
    base = _flow_paths(sim_runs["ecmp"]).first()
    other = _flow_paths(sim_runs["flows_other_seed"]).first()
    assert same.equals(base)
    moved = (other != base).mean()
    assert 0.2 < moved < 0.8  # another seed reshuffles about half of the flows over 2 spines


def test_scheduled_fabric_absorbs_the_incast_and_isolates_the_victim(sim_runs):
    run = sim_runs["scheduled"]
    links = pd.read_parquet(run["dir"] / "links.parquet")
    last = links[links["t_ns"] == links["t_ns"].max()]
    ports = last[last["queue"] == "port"]
    assert ports.loc[ports["kind"] == "fabric", "drops"].sum() == 0
    assert ports.loc[ports["node"].str.startswith("ncp") & (ports["kind"] == "host"), "drops"].sum() == 0
    assert last.loc[last["kind"] == "voq", "drops"].sum() == 0
    assert links.loc[links["queue"] == "voq:h9", "backlog_bytes"].max() > S.BUFFER_BYTES  # the VOQ held the burst
    p = packets_of(run)
    assert p["received"].all()
    t0 = read_run_json(run["dir"])["t0_ns"]
    v = p[p["kind"] == "victim"]
    start, end = t0 + S.CROSS_INCAST_START_S * 1e9, t0 + S.CROSS_INCAST_START_S * 1e9 + 4 * S.CROSS_INCAST_BYTES * 8e9 / S.RATE_BPS
    idle = v.loc[v["tx_ns"] < start, "owd"]
    during = v.loc[(v["tx_ns"] >= start) & (v["tx_ns"] < end), "owd"]
    assert len(idle) > 50 and len(during) > 50
    assert np.percentile(during, 99) <= 2 * np.percentile(idle, 99)
    print(f"scheduled: victim p99 idle {np.percentile(idle, 99) / 1e3:.2f} us, "
          f"during the incast {np.percentile(during, 99) / 1e3:.2f} us")


def test_scheduler_grants_in_proportion_to_the_weights(sim_runs):
    """Two ingress NCPs weighted 3:1 share one egress port 3:1 while both have data for it."""
    p = packets_of(sim_runs["scheduled"])
    w = p[(p["group"] == "weighted") & p["received"]]
    t0 = read_run_json(sim_runs["scheduled"]["dir"])["t0_ns"] + S.WEIGHTED_START_S * 1e9
    # Both are backlogged until the heavier one is done: 4 MB at 3/4 of 400G.
    window = w[w["rx_ns"] < t0 + 0.9 * S.WEIGHTED_BYTES * 8e9 / (0.75 * S.RATE_BPS)]
    got = window.groupby("src")["bytes"].sum()
    assert got["h10"] / got["h20"] == pytest.approx(S.WEIGHTS["h10"] / S.WEIGHTS["h20"], rel=0.05)


def test_leaf_spine_drops_the_same_incast(sim_runs):
    p = packets_of(sim_runs["ecmp"])
    cross = p[p["group"] == "cross"]
    assert (~cross["received"]).sum() > 0


@pytest.mark.parametrize("name", ["ecmp", "scheduled", "spray"])
def test_no_message_beats_its_bytes_at_line_rate(sim_runs, name):
    m = pd.read_parquet(sim_runs[name]["dir"] / "messages.parquet")
    m = m[m["packets_received"] == m["packets"]]
    wire = m["bytes_emulated"] + m["packets"] * WIRE_OVERHEAD_BYTES
    assert ((m["t_rx_last_ns"] - m["t_tx_first_ns"]) >= wire * 8e9 / S.RATE_BPS).all()


def test_idle_fabric_slowdown_is_one(sim_runs):
    frames = read_frames(sim_runs["ecmp"]["dir"])
    comp, prep = completions(frames)
    idle = prep["messages"]["group"].str.startswith("idle").to_numpy()
    assert idle.sum() == len(S.IDLE_BYTES)
    assert np.allclose(comp["slowdown"].to_numpy()[idle], 1.0, atol=0.02)


@pytest.mark.parametrize("name", ["ecmp", "scheduled", "spray", "flows_same_seed", "flows_other_seed"])
def test_run_directory_is_complete_and_analysable(sim_runs, name):
    out = sim_runs[name]["dir"]
    metrics = write_metrics(out)
    assert metrics["classes"]
    run = json.loads((out / "run.json").read_text())
    assert run["engine"] == "sim" and run["engine_version"].startswith("ns-3.44")
    sim = run["sim"]
    assert sim["every_packet_accounted"]
    # The queues drain within tmax: every unfinished message lost a packet, none was cut off.
    assert sim["messages_cut_off"] == 0 and sim["messages_unfinished"] == sim["messages_with_drops"]
    fid = metrics["fidelity"]["signals"]
    assert fid["sim_accounting"]["level"] == "ok"
    assert fid["cpu_pressure"]["level"] == fid["scheduler_lateness"]["level"] == "n/a (simulator)"
    packets = pd.read_parquet(out / "packets.parquet")
    assert len(packets) == sim["packets_recorded"]
    if name == "spray":  # run with a packet cap below its packets: whole messages of every class kept
        assert sim["packets_sampled"] and sim["packets_recorded"] <= S.SPRAY_PACKET_CAP < sim["packets_total"]
        assert (packets.groupby("msg_id")["seq"].count() == packets.groupby("msg_id")["seq"].max() + 1).all()
        assert run["packet_sample"]["messages_kept"] == packets["msg_id"].nunique()
    else:
        assert sim["packets_total"] == sim["packets_recorded"] and not sim["packets_sampled"]
    assert sim["events"] > 0 and sim["simulated_s"] > 0
    assert not list(out.glob(".work")) and not list(out.parent.glob(f".{name}.partial-*"))
    schedule = sim_runs[name]["schedule"]
    messages = pd.read_parquet(out / "messages.parquet")
    assert len(messages) == len(schedule)
    assert (messages["t_tx_first_ns"] >= messages["t_sched_ns"]).all()
    assert len(pd.read_parquet(out / "noise.parquet")) > 0


def test_ctrl_c_kills_the_simulator_and_leaves_nothing(tmp_path):
    """SIGINT to a running `run()`: the ns-3 child is killed and no run directory is left."""
    design = S.write_design(tmp_path, S.LEAF_SPINE)
    out = tmp_path / "runs" / "interrupted"
    # Run A's messages 50 times larger (1.8M packets): the child simulates for many seconds, so the
    # signal lands while it runs, however fast the machine (a run starts in a fraction of a second).
    # The script restores Ctrl-C's handler as `fabric` does (fabric.cli.main): a test run started in
    # the background by a shell without job control (as CI may be) inherits SIGINT ignored.
    script = (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import sys\n"
        "from fabric.specs import load_fabric_spec\n"
        "from fabric.topology import build_fabric\n"
        "from fabric.sim.runner import SimOptions, run\n"
        "from tests.sim import scenarios as S\n"
        f"spec = load_fabric_spec({str(design)!r})\n"
        "schedule = S.leaf_spine_schedule()\n"
        "schedule['bytes'] *= 50\n"
        f"run(spec, build_fabric(spec), schedule, {str(out)!r}, SimOptions())\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    children: list[int] = []
    while time.time() < deadline and not children:
        time.sleep(0.2)
        children = [pid for pid in pids_with(str(tmp_path / "runs")) if pid != proc.pid]
    assert children, "the simulator process never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b"KeyboardInterrupt" in err
    # Killed processes may linger a moment as zombies until whoever inherits them reaps them: dead all the same.
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.2)
    assert not any(alive(pid) for pid in children)
    assert not (tmp_path / "runs").exists()
