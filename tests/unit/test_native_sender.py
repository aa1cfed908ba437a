"""The compiled agents' plumbing, without root: plan file round trips, builds, input checks, output formats.

The sender and the receiver (``sender.c``, ``receiver.c``); one receiver test that binds a real socket
runs only as root.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import time

import numpy as np
import pytest

from fabric.emu import native
from fabric.emu.agents import MessagePlan

needs_cc = pytest.mark.skipif(native.compiler() is None, reason="no C compiler (cc) to build the sender")


def _plan() -> MessagePlan:
    return MessagePlan(src=np.array([0, 1, 2]), dst=np.array([2, 0, 1]),
                       t_start_ns=np.array([1_000, 2_000, 3_000], dtype=np.int64),
                       packets=np.array([1, 3, 2]), payload=np.array([64, 4096, 4096]),
                       last_payload=np.array([64, 100, 4096]), host_pids=[11, 12, 13],
                       host_addrs=["10.0.0.1", "10.0.1.3", "192.168.7.9"], host_rate_bps=[1e8, 2.5e7, 4e9])


@pytest.fixture(scope="module")
def sender(tmp_path_factory):
    if native.compiler() is None:
        pytest.skip("no C compiler (cc) to build the sender")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FABRIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return native.sender_binary()


def test_plan_file_round_trip(tmp_path):
    plan = _plan()
    native.write_plan(tmp_path / "plan.bin", plan, [0, 2], queue_packets=4, slack_packets=16)
    back, subset, queue_packets, slack_packets = native.read_plan(tmp_path / "plan.bin")
    assert subset == [0, 2] and queue_packets == 4 and slack_packets == 16
    for name in native.MESSAGE_FIELDS:
        assert np.array_equal(getattr(back, name), getattr(plan, name)), name
    assert back.host_pids == plan.host_pids
    assert back.host_addrs == plan.host_addrs
    assert back.host_rate_bps == plan.host_rate_bps
    # 8-byte magic, 7 header fields, 6 message arrays, 3 host arrays, the subset.
    assert (tmp_path / "plan.bin").stat().st_size == 8 + 8 * (7 + 6 * 3 + 3 * 3 + 2)


@needs_cc
def test_binary_builds_once_per_source_into_the_cache(sender, monkeypatch):
    assert sender.exists() and sender.stat().st_mode & 0o111
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(sender.parent))
    digest = hashlib.sha256(native.SOURCE.read_bytes() + native.COMMON_HEADER.read_bytes()
                            + " ".join(native.COMPILE_FLAGS).encode()).hexdigest()
    assert native.binary_path() == sender and digest[:16] in sender.name  # keyed by the source hash
    mtime = sender.stat().st_mtime_ns
    assert native.sender_binary() == sender and sender.stat().st_mtime_ns == mtime  # cached, not rebuilt
    assert not list(sender.parent.glob("*.tmp"))


def test_no_compiler_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "compiler", lambda: None)
    with pytest.raises(native.EnvironmentNotReady, match="sudo make setup"):
        native.sender_binary()


@pytest.mark.parametrize("content, message", [
    (b"garbage", "not a sender plan file"),
    (b"FABPLAN2" + np.array([3, 2, 1, 4, 16, 47000, 1], dtype="<i8").tobytes(), "expected"),
    (b"FABPLAN2" + np.array([3, 2, 1, 4, 2, 47000, 1], dtype="<i8").tobytes(), "slack_packets=2"),
])
def test_binary_rejects_a_malformed_plan_file(sender, tmp_path, content, message):
    (tmp_path / "plan.bin").write_bytes(content)
    proc = subprocess.run([str(sender), str(tmp_path / "plan.bin"), str(tmp_path / "tx.bin")],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "tx.bin").exists()


def test_binary_rejects_bad_values(sender, tmp_path):
    plan = _plan()
    plan.dst = np.array([2, 0, 7])
    native.write_plan(tmp_path / "plan.bin", plan, [0], queue_packets=4)
    proc = subprocess.run([str(sender), str(tmp_path / "plan.bin"), str(tmp_path / "tx.bin")],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0 and "message 2" in proc.stderr, proc.stderr


def test_empty_subset_writes_an_all_unsent_record(sender, tmp_path):
    """With no hosts to send for, the sender needs no namespace or root: it checks the plan and writes the format."""
    plan = _plan()
    native.write_plan(tmp_path / "plan.bin", plan, [], queue_packets=4)
    proc = subprocess.run([str(sender), str(tmp_path / "plan.bin"), str(tmp_path / "tx.bin")],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    native.tx_to_npz(tmp_path / "tx.bin", tmp_path / "tx0.npz", plan.total_packets, len(plan.host_pids))
    with np.load(tmp_path / "tx0.npz") as tx:
        assert set(tx.files) == {"tx_ns", "tx_user_ns", "refused"}
        assert (tx["tx_ns"] == -1).all() and (tx["tx_user_ns"] == -1).all() and len(tx["tx_ns"]) == 6
        assert tx["refused"].tolist() == [0, 0, 0]


# ---------------------------------------------------------------- the receiver

@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    if native.compiler() is None:
        pytest.skip("no C compiler (cc) to build the receiver")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FABRIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return native.receiver_binary()


def _receiver_plan_bytes(packets, pids, port=native.PROBE_UDP_PORT) -> bytes:
    header = np.zeros(1, dtype=native.RECEIVER_PLAN_HEADER)
    header[0] = (native.RECEIVER_PLAN_MAGIC, len(packets), len(pids), port, native.MAGIC)
    return header.tobytes() + np.asarray(packets, "<i8").tobytes() + np.asarray(pids, "<i8").tobytes()


def _start_receiver(exe, plan_path, out_path):
    """Start the receiver as the runner does; return (process, stop_w) once it said it is ready."""
    stop_r, stop_w = os.pipe()
    ready_r, ready_w = os.pipe()
    proc = subprocess.Popen([str(exe), str(plan_path), str(out_path), str(stop_r), str(ready_w)],
                            pass_fds=(stop_r, ready_w), stderr=subprocess.PIPE, text=True)
    os.close(stop_r)
    os.close(ready_w)
    ready = os.read(ready_r, 1)  # b"" if it exited without saying so
    os.close(ready_r)
    assert ready == b"r", proc.communicate(timeout=10)[1]
    return proc, stop_w


def test_receiver_plan_file_round_trip(tmp_path):
    plan = _plan()
    plan.dst = np.array([2, 0, 2])  # hosts 0 and 2 receive
    native.write_receiver_plan(tmp_path / "rx_plan.bin", plan)
    packets, pids = native.read_receiver_plan(tmp_path / "rx_plan.bin")
    assert packets.tolist() == [1, 3, 2] and pids == [11, 13]
    # 8-byte magic, 4 header fields, packets per message, one pid per receiving host.
    assert (tmp_path / "rx_plan.bin").stat().st_size == 8 + 8 * (4 + 3 + 2)
    assert (tmp_path / "rx_plan.bin").read_bytes() == _receiver_plan_bytes([1, 3, 2], [11, 13])


@needs_cc
def test_both_binaries_build_once_per_source_into_the_cache(sender, receiver, monkeypatch):
    assert receiver.exists() and receiver.stat().st_mode & 0o111
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(receiver.parent))
    digest = hashlib.sha256(native.SOURCES["receiver"].read_bytes() + native.COMMON_HEADER.read_bytes()
                            + " ".join(native.COMPILE_FLAGS).encode()).hexdigest()
    assert native.binary_path("receiver") == receiver and digest[:16] in receiver.name
    assert receiver.name.startswith("fabric-receiver-") and sender.name.startswith("fabric-sender-")
    mtime = receiver.stat().st_mtime_ns
    assert native.receiver_binary() == receiver and receiver.stat().st_mtime_ns == mtime  # cached, not rebuilt
    assert not list(receiver.parent.glob("*.tmp"))


def test_no_compiler_for_the_receiver_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FABRIC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "compiler", lambda: None)
    with pytest.raises(native.EnvironmentNotReady, match="packet receiver.*sudo make setup"):
        native.receiver_binary()


@pytest.mark.parametrize("content, message", [
    (b"garbage", "not a receiver plan file"),
    (b"FABPLAN2" + bytes(56), "not a receiver plan file"),                      # a sender plan
    (b"FABRECV1" + np.array([3, 2, 47000, 1], dtype="<i8").tobytes(), "expected"),  # truncated
    (_receiver_plan_bytes([1, 0, 2], [11]), "message 1: packets=0"),
    (_receiver_plan_bytes([1], [0]), "pid=0 out of range"),
    (_receiver_plan_bytes([1], [11], port=70000), "is not a port"),
])
def test_receiver_rejects_a_malformed_plan_file(receiver, tmp_path, content, message):
    (tmp_path / "rx_plan.bin").write_bytes(content)
    proc = subprocess.run([str(receiver), str(tmp_path / "rx_plan.bin"), str(tmp_path / "rx.bin"), "0", "1"],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("fabric-receiver: ")
    assert not (tmp_path / "rx.bin").exists()


@pytest.mark.parametrize("argv, message", [([], "usage"), (["0", "x"], "READY_FD=x is not a file descriptor"),
                                           (["987", "1"], "STOP_FD=987 is not open")])
def test_receiver_rejects_bad_arguments(receiver, tmp_path, argv, message):
    (tmp_path / "rx_plan.bin").write_bytes(_receiver_plan_bytes([1], []))
    args = [str(tmp_path / "rx_plan.bin"), str(tmp_path / "rx.bin"), *argv] if argv else []
    proc = subprocess.run([str(receiver), *args], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_rx_output_round_trip(tmp_path):
    rx_ns = np.array([5, -1, 7], dtype="<i8")
    copies = np.array([1, 0, 3], dtype="<i2")
    path = np.array([2, -1, 0], dtype="<i2")
    (tmp_path / "rx.bin").write_bytes(rx_ns.tobytes() + copies.tobytes() + path.tobytes()
                                      + np.int64(42).astype("<i8").tobytes())
    native.rx_to_npz(tmp_path / "rx.bin", tmp_path / "rx.npz", 3)
    with np.load(tmp_path / "rx.npz") as rx:
        assert set(rx.files) == {"rx_ns", "copies", "path", "unknown"}
        assert rx["rx_ns"].dtype == np.int64 and rx["copies"].dtype == np.int16 and rx["path"].dtype == np.int16
        assert rx["rx_ns"].tolist() == [5, -1, 7] and rx["copies"].tolist() == [1, 0, 3]
        assert rx["path"].tolist() == [2, -1, 0] and int(rx["unknown"]) == 42
    with pytest.raises(ValueError, match="44 bytes, expected 56"):
        native.read_rx(tmp_path / "rx.bin", 4)


@pytest.mark.parametrize("how", ["stop fd", "SIGTERM"])
def test_receiver_with_no_hosts_stops_and_writes_an_empty_record(receiver, tmp_path, how):
    """With no host to listen on it needs no namespace or root: the handshake, the stop and the format."""
    (tmp_path / "rx_plan.bin").write_bytes(_receiver_plan_bytes([1, 3, 2], []))
    proc, stop_w = _start_receiver(receiver, tmp_path / "rx_plan.bin", tmp_path / "rx.bin")
    if how == "stop fd":
        os.write(stop_w, b"s")
    else:
        proc.terminate()
    assert proc.wait(10) == 0, proc.stderr.read()
    os.close(stop_w)
    rx = native.read_rx(tmp_path / "rx.bin", 6)
    assert (rx["rx_ns"] == -1).all() and (rx["copies"] == 0).all() and (rx["path"] == -1).all()
    assert rx["unknown"] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="setns and SO_RCVBUFFORCE need root")
def test_receiver_records_probes_as_root(receiver, tmp_path):
    """In our own namespace on a free port: first copy's stamp and path, copies, foreign datagrams."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "rx_plan.bin").write_bytes(_receiver_plan_bytes([1, 3, 2], [os.getpid()], port=port))
    proc, stop_w = _start_receiver(receiver, tmp_path / "rx_plan.bin", tmp_path / "rx.bin")
    header = struct.Struct("!IQIIQ")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            def send(data: bytes, tos: int = 0) -> None:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
                s.sendto(data, ("127.0.0.1", port))
            send(header.pack(native.MAGIC, 1, 2, 3, 0) + bytes(4000), tos=3 << 2)   # packet 1 + 2 = 3, path 2
            send(header.pack(native.MAGIC, 1, 2, 3, 0), tos=5 << 2)                 # its copy: path stays 2
            send(header.pack(native.MAGIC, 0, 0, 1, 0), tos=1 << 2)                 # packet 0, path 0
            send(header.pack(native.MAGIC, 2, 1, 2, 0))                             # packet 5, no DSCP: -1
            send(header.pack(0xDEADBEEF, 0, 0, 1, 0))                               # foreign magic
            send(header.pack(native.MAGIC, 3, 0, 1, 0))                             # no such message
            send(header.pack(native.MAGIC, 0, 1, 1, 0))                             # seq beyond the message
            send(b"short")
        time.sleep(0.2)
    finally:
        os.write(stop_w, b"s")
        assert proc.wait(10) == 0, proc.stderr.read()
        os.close(stop_w)
    rx = native.read_rx(tmp_path / "rx.bin", 6)
    assert rx["copies"].tolist() == [1, 0, 0, 2, 0, 1]
    assert rx["path"].tolist() == [0, -1, -1, 2, -1, -1]
    assert ((rx["rx_ns"] > 0) == (rx["copies"] > 0)).all()
    assert abs(int(rx["rx_ns"][3]) - time.time_ns()) < 10e9
    assert rx["unknown"] == 4


def test_the_wire_format_reaches_the_agents_from_probe_py_only():
    from fabric.probe import HEADER_BYTES, WIRE_OVERHEAD_BYTES
    assert f"-DPROBE_HEADER_BYTES={HEADER_BYTES}" in native.COMPILE_FLAGS
    assert f"-DWIRE_OVERHEAD_BYTES={WIRE_OVERHEAD_BYTES}" in native.COMPILE_FLAGS
    for source in (*native.SOURCES.values(), native.COMMON_HEADER):
        text = source.read_text()
        assert "#define PROBE_HEADER_BYTES" not in text and "#define WIRE_OVERHEAD_BYTES" not in text, source
