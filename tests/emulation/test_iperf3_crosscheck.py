"""Cross-check against iperf3: our RFC 3550 J and loss, computed from a capture of iperf3's own
UDP packets, agree with what iperf3's receiver reports.

Two iperf3 UDP flows (one with 32-bit, one with 64-bit packet counters) from hosts on both leaves
share h0's 10 Mbit/s port at 12 Mbit/s offered: the port's queue fills, so packets are lost and
the interleaving of the two flows makes each flow's transit time vary. tcpdump on h0's link
(inside h0's namespace, nanosecond timestamps) records the packets; each iperf3 payload starts
with the sender's send time (sec, usec) and a packet counter (32 or 64 bit), as written by
iperf_udp_send() and read by iperf_udp_recv() in iperf3's src/iperf_udp.c.

What is compared, and why it is meaningful: iperf3's jitter is the RFC 3550 filter
J += (|D| − J)/16 over transit = (arrival time − sender's timestamp) in arrival order, the first
packet giving D = 0; ours is the same filter (fabric.analysis.metrics.rfc3550_jitter) over
transit = (capture timestamp − the same sender timestamp), in capture order. The only difference
is the arrival instant: kernel capture time at h0's interface vs iperf3's user-space clock after
recv(). J is compared at each of iperf3's one-second interval reports (iperf3 prints its
filter's state there; the intervals' packet counts tell which packets it had seen), not at the
very end: iperf3 reads the last packets while handling the end of the test, late, which inflates
its final figure (seen here: 0.505 ms vs 0.275 ms, while every interval agreed within 2%).
iperf3's loss counts sequence gaps against the highest counter; ours counts the gaps against
the highest counter captured (iperf3 packets carry no packet total), so tail losses are
invisible to both.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time

import pandas as pd
import pytest

from fabric.analysis import pcap as P
from tests.emulation.conftest import small_spec

pytestmark = pytest.mark.skipif(shutil.which("iperf3") is None or shutil.which("tcpdump") is None,
                                reason="the iperf3 cross-check needs iperf3 and tcpdump")

K = 10_000.0                # 100G / k = 10 Mbit/s links
DURATION_S = 5
# (sender, server port, UDP payload bytes, offered rate, 64-bit counters)
FLOWS = [("h1", 5201, 1200, "6M", False),   # same leaf as h0
         ("h6", 5202, 1000, "6M", True)]    # the other leaf, through a spine


def _mnexec(fab, node, argv):
    return ["mnexec", "-a", str(fab.pids[node]), *argv]


def _wait_listening(fab, node, port, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if f":{port} " in fab.run_in(node, ["ss", "-ltnH"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"iperf3 server on {node}:{port} did not start listening")


def _stop(procs):
    """Stop everything still running, then reap it all (nothing outlives the test)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def iperf3_frames(pcap, ports_64bit: dict) -> pd.DataFrame:
    """iperf3 UDP data packets of a capture as fabric.analysis.pcap frames.

    ``ports_64bit``: server port → whether that flow uses 64-bit counters. One flow per server
    port (msg_id = port); seq = counter − 1 (iperf3 counts from 1); count = the highest counter
    seen; tx_ns = the sender's (sec, usec); rx_ns = the capture timestamp. The client's 4-byte
    UDP "connect" datagram is not data and is skipped by its size.
    """
    from scapy.layers.inet import IP, UDP
    from scapy.utils import PcapReader

    rows = []
    with PcapReader(str(pcap)) as reader:
        for pkt in reader:
            if UDP not in pkt or pkt[UDP].dport not in ports_64bit:
                continue
            port = pkt[UDP].dport
            data = bytes(pkt[UDP].payload)
            wide = ports_64bit[port]
            if len(data) < (16 if wide else 12):
                continue
            sec, usec = struct.unpack_from("!II", data, 0)
            counter = struct.unpack_from("!Q" if wide else "!I", data, 8)[0]
            rx_ns = int(pkt.time * 1_000_000_000)
            rows.append((port, counter - 1, 0, pkt[IP].src, pkt[IP].dst, pkt[UDP].len - 8,
                         sec * 1_000_000_000 + usec * 1_000, rx_ns, -1))
    frames = pd.DataFrame(rows, columns=P.FRAME_COLUMNS)
    frames["count"] = frames.groupby("msg_id")["seq"].transform("max") + 1
    return frames


def test_rfc3550_jitter_and_loss_match_iperf3(tmp_path):
    from fabric.emu.network import EmulatedFabric
    from fabric.emu.plan import build_plan
    from fabric.topology import build_fabric

    g = build_fabric(small_spec())
    plans, _ = build_plan(g, K, seed=1)
    dst_addr = g.nodes["h0"]["address"]
    h0_if = next(d["ifname"]["h0"] for _, _, d in g.edges(data=True) if d["link_id"] == "h0-leaf0")
    pcap = tmp_path / "iperf3.pcap"
    procs: list[subprocess.Popen] = []
    with EmulatedFabric(g, plans, tmp_path) as fab:
        try:
            fab.build()
            servers = {}
            for _, port, _, _, _ in FLOWS:
                servers[port] = subprocess.Popen(_mnexec(fab, "h0", ["iperf3", "-s", "-1", "-J", "-p", str(port)]),
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                procs.append(servers[port])
            for _, port, _, _, _ in FLOWS:
                _wait_listening(fab, "h0", port)
            ports = " or ".join(f"dst port {port}" for _, port, _, _, _ in FLOWS)
            tcpdump = subprocess.Popen(_mnexec(fab, "h0", [
                "tcpdump", "-q", "-n", "-i", h0_if, "-s", "128", "-U", "--immediate-mode", "--time-stamp-precision=nano",
                "-w", str(pcap), f"udp and dst host {dst_addr} and ({ports})"]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(tcpdump)
            time.sleep(1.0)  # tcpdump needs a moment before it captures
            clients = []
            for src, port, length, rate, wide in FLOWS:
                argv = ["iperf3", "-c", dst_addr, "-p", str(port), "-u", "-b", rate, "-l", str(length),
                        "-t", str(DURATION_S), "-J"] + (["--udp-counters-64bit"] if wide else [])
                clients.append(subprocess.Popen(_mnexec(fab, src, argv), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))
                procs.append(clients[-1])
            for c in clients:
                out, err = c.communicate(timeout=DURATION_S + 15)
                assert c.returncode == 0, f"iperf3 client failed: {out[-500:]} {err[-500:]}"
            reports = {}
            for port, s in servers.items():
                out, err = s.communicate(timeout=15)
                assert s.returncode == 0, f"iperf3 server {port} failed: {err[-500:]}"
                reports[port] = json.loads(out)
            time.sleep(0.5)  # let tcpdump write the last packets before it is stopped
        finally:
            _stop(procs)

    frames = iperf3_frames(pcap, {port: wide for _, port, _, _, wide in FLOWS})
    src_addr = {src: g.nodes[src]["address"] for src, *_ in FLOWS}
    measured = []
    lost_total = sent_total = 0
    for src, port, _, _, _ in FLOWS:
        name = f"{src_addr[src]}->{dst_addr}"
        report = reports[port]
        ours = P.flow_metrics(P.packet_records(frames))[name]
        theirs = report["end"]["sum"]
        # J at each of iperf3's interval ends: iperf3 prints its filter's state then, and an
        # interval's "packets" advance its highest counter, so our J over the packets up to the
        # same counter sees the same packets.
        highest, j_pairs = 0, []
        for interval in report["intervals"]:
            s = interval["sum"]
            highest += s["packets"]
            if s["seconds"] < 0.5:
                continue
            upto = P.flow_metrics(P.packet_records(frames[frames.seq < highest]))[name]
            j_pairs.append((upto["rfc3550_j_us"] / 1e3, float(s["jitter_ms"])))
        loss_ours, loss_iperf = ours["loss_ratio"] * 100, float(theirs["lost_percent"])
        measured.append(f"{src}:{port} J ours/iperf3 per interval (ms) "
                        + " ".join(f"{a:.3f}/{b:.3f}" for a, b in j_pairs)
                        + f"; final J ours {ours['rfc3550_j_us'] / 1e3:.3f} vs iperf3 {theirs['jitter_ms']:.3f}"
                        + f"; loss ours {loss_ours:.2f}% ({ours['loss']['lost']}/{ours['loss']['sent']}) vs iperf3 "
                        f"{loss_iperf:.2f}% ({theirs['lost_packets']}/{theirs['packets']})")
        print(measured[-1])
        assert len(j_pairs) >= DURATION_S - 1, measured[-1]
        # iperf3's final J, and its last interval's (which ends at the same moment), are not
        # compared: the server reads the last packets while it handles the end of the test, so
        # their user-space arrival times (and its J) jump in the last ~10 ms; the capture's kernel
        # timestamps do not (seen here: last interval 0.376 ours vs 0.560 iperf3, the others
        # within 2%).
        # iperf3 times arrivals in user space: a scheduling hiccup of its server shows as a jump of
        # its J in one interval that kernel timestamps do not see (seen here: 0.351 ours vs 0.477
        # iperf3 in one interval, the others within 2%). So all intervals but one must agree.
        compared = j_pairs[:-1]
        for j_ours, j_iperf in compared:
            # Non-trivial on purpose: a J of a few µs would be lost in user-space timing noise.
            assert j_iperf > 0.05, measured[-1]
        agreeing = sum(j_ours == pytest.approx(j_iperf, rel=0.10) for j_ours, j_iperf in compared)
        assert agreeing >= len(compared) - 1, measured[-1]
        assert loss_ours == pytest.approx(loss_iperf, rel=0.10, abs=0.5), measured[-1]
        assert ours["loss"]["sent"] == pytest.approx(theirs["packets"], rel=0.02), measured[-1]
        lost_total += theirs["lost_packets"]
        sent_total += theirs["packets"]
    assert lost_total / sent_total > 0.05, f"no loss was provoked: {measured}"
