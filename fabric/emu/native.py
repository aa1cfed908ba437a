"""The compiled agents (``sender.c``, ``receiver.c``): build them, write their plan files, read what they recorded.

Python replaying packets one by one fell behind schedule at 20-30k packets/s, and a Python receiver
spent 10-20 us of CPU per packet that the senders and the kernel's forwarding then lacked; both
agents are small C programs so that no interpreter work sits in the per-packet path. This module:

* builds them with the system C compiler into fabric's cache directory (:mod:`fabric.cache`), under
  names keyed by the sha256 of their source so a changed source rebuilds; ``python -m
  fabric.emu.native`` builds both and prints their paths (``make setup`` runs that);
* writes the plan files they read and turns their output into the ``tx{i}.npz`` and ``rx.npz`` the
  runner reads.

Sender plan file layout (little-endian; the same table heads ``sender.c``)::

    char[8]          "FABPLAN2"
    int64            n_msgs, n_hosts, n_subset, queue_packets, slack_packets, udp_dst_port, probe_magic
    int64[n_msgs]    src, dst, t_start_ns, packets, payload, last_payload   (one array after another)
    int64[n_hosts]   host_pid          a process in the host's network namespace
    int64[n_hosts]   host_ipv4         IPv4 address as an integer
    float64[n_hosts] host_rate_bps     emulated NIC rate
    int64[n_subset]  subset            host indices this sender process sends for

Sender output file (raw little-endian, no header; P = total packets, H = n_hosts)::

    int64[P] tx_ns, int64[P] tx_user_ns, int64[H] refused

Receiver plan file layout (little-endian; the same table heads ``receiver.c``)::

    char[8]          "FABRECV1"
    int64            n_msgs, n_hosts, udp_dst_port, probe_magic
    int64[n_msgs]    packets           packets per message (wire id order)
    int64[n_hosts]   host_pid          a process in each receiving (destination) host's namespace

Receiver output file (raw little-endian, no header; P = total packets)::

    int64[P] rx_ns, int16[P] copies, int16[P] path, int64 unknown

The receiver is started as ``fabric-receiver PLAN OUT STOP_FD READY_FD``: it writes one byte to
READY_FD once all its sockets are bound and stops (after a last drain) when STOP_FD becomes readable
or on SIGTERM.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import sys
from pathlib import Path

import numpy as np

from fabric.cache import cache_dir, compile_into_cache
from fabric.emu.agents import MessagePlan
from fabric.errors import EnvironmentNotReady
from fabric.probe import HEADER_BYTES, MAGIC, PROBE_UDP_PORT, WIRE_OVERHEAD_BYTES

SOURCES = {"sender": Path(__file__).with_name("sender.c"), "receiver": Path(__file__).with_name("receiver.c")}
COMMON_HEADER = Path(__file__).with_name("agent_common.h")  # included by both: part of each build's key
SOURCE = SOURCES["sender"]
PLAN_MAGIC = b"FABPLAN2"
PLAN_HEADER = np.dtype([("magic", "S8"), ("n_msgs", "<i8"), ("n_hosts", "<i8"), ("n_subset", "<i8"),
                        ("queue_packets", "<i8"), ("slack_packets", "<i8"), ("udp_dst_port", "<i8"),
                        ("probe_magic", "<i8")])
RECEIVER_PLAN_MAGIC = b"FABRECV1"
RECEIVER_PLAN_HEADER = np.dtype([("magic", "S8"), ("n_msgs", "<i8"), ("n_hosts", "<i8"), ("udp_dst_port", "<i8"),
                                 ("probe_magic", "<i8")])
MESSAGE_FIELDS = ("src", "dst", "t_start_ns", "packets", "payload", "last_payload")
# The wire format the agents build packets with and pace by, from fabric/probe.py (its one declaration).
WIRE_DEFINES = [f"-DPROBE_HEADER_BYTES={HEADER_BYTES}", f"-DWIRE_OVERHEAD_BYTES={WIRE_OVERHEAD_BYTES}"]
COMPILE_FLAGS = ["-O2", "-Wall", *WIRE_DEFINES]


def binary_path(program: str = "sender") -> Path:
    """Where ``program`` ("sender" or "receiver") built from its current source lives (it may not exist yet)."""
    digest = hashlib.sha256(SOURCES[program].read_bytes() + COMMON_HEADER.read_bytes()
                            + " ".join(COMPILE_FLAGS).encode()).hexdigest()[:16]
    return cache_dir() / f"fabric-{program}-{digest}"


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def build(program: str) -> Path:
    """Return ``program``'s binary ("sender" or "receiver"), compiling it first if this source has not been built yet."""
    target = binary_path(program)
    if target.exists():
        return target
    cc = compiler()
    if cc is None:
        raise EnvironmentNotReady(f"no C compiler (cc) to build the packet {program}; run 'sudo make setup'")
    return compile_into_cache(target, [cc, *COMPILE_FLAGS, str(SOURCES[program])], f"the packet {program}")


def sender_binary() -> Path:
    """Return the sender binary, compiling it first if this source has not been built yet."""
    return build("sender")


def receiver_binary() -> Path:
    """Return the receiver binary, compiling it first if this source has not been built yet."""
    return build("receiver")


def write_plan(path: Path | str, plan: MessagePlan, host_subset: list[int], queue_packets: int,
               slack_packets: int | None = None) -> None:
    """Write the plan file one sender process replays (layout in the module docstring).

    A host NIC holds up to ``slack_packets`` (default ``queue_packets``) queued, and no more than
    ``queue_packets`` when its next message starts (sender.c)."""
    slack_packets = queue_packets if slack_packets is None else slack_packets
    n_msgs, n_hosts = len(plan.src), len(plan.host_pids)
    header = np.zeros(1, dtype=PLAN_HEADER)
    header[0] = (PLAN_MAGIC, n_msgs, n_hosts, len(host_subset), queue_packets, slack_packets, PROBE_UDP_PORT, MAGIC)
    ipv4 = [int(ipaddress.IPv4Address(a.split("/")[0])) for a in plan.host_addrs]
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for name in MESSAGE_FIELDS:
            f.write(np.ascontiguousarray(getattr(plan, name), dtype="<i8").tobytes())
        f.write(np.asarray(plan.host_pids, dtype="<i8").tobytes())
        f.write(np.asarray(ipv4, dtype="<i8").tobytes())
        f.write(np.asarray(plan.host_rate_bps, dtype="<f8").tobytes())
        f.write(np.asarray(host_subset, dtype="<i8").tobytes())


def read_plan(path: Path | str) -> tuple[MessagePlan, list[int], int, int]:
    """The inverse of :func:`write_plan`: ``(plan, host_subset, queue_packets, slack_packets)`` (for
    tests and debugging)."""
    data = Path(path).read_bytes()
    header = np.frombuffer(data, dtype=PLAN_HEADER, count=1)[0]
    if header["magic"] != PLAN_MAGIC:
        raise ValueError(f"{path}: not a sender plan file")
    n_msgs, n_hosts, n_subset = int(header["n_msgs"]), int(header["n_hosts"]), int(header["n_subset"])
    at = PLAN_HEADER.itemsize

    def take(n: int, dtype: str) -> np.ndarray:
        nonlocal at
        out = np.frombuffer(data, dtype=dtype, count=n, offset=at).copy()
        at += 8 * n
        return out

    fields = {name: take(n_msgs, "<i8") for name in MESSAGE_FIELDS}
    pids = take(n_hosts, "<i8").tolist()
    addrs = [str(ipaddress.IPv4Address(int(a))) for a in take(n_hosts, "<i8")]
    rates = take(n_hosts, "<f8").tolist()
    subset = take(n_subset, "<i8").tolist()
    plan = MessagePlan(**fields, host_pids=pids, host_addrs=addrs, host_rate_bps=rates)
    return plan, subset, int(header["queue_packets"]), int(header["slack_packets"])


def read_tx(path: Path | str, total_packets: int, n_hosts: int) -> dict[str, np.ndarray]:
    """What one sender recorded: ``tx_ns``, ``tx_user_ns`` (per packet, -1: none) and ``refused`` (per host)."""
    data = np.fromfile(path, dtype="<i8")
    if len(data) != 2 * total_packets + n_hosts:
        raise ValueError(f"{path}: {len(data)} values, expected {2 * total_packets + n_hosts}")
    return {"tx_ns": data[:total_packets], "tx_user_ns": data[total_packets:2 * total_packets],
            "refused": data[2 * total_packets:]}


def tx_to_npz(raw_path: Path | str, npz_path: Path | str, total_packets: int, n_hosts: int) -> None:
    """Turn the sender's output into the ``tx{i}.npz`` the runner reads."""
    np.savez(npz_path, **read_tx(raw_path, total_packets, n_hosts))


def receiver_hosts(plan: MessagePlan) -> list[int]:
    """The hosts the receiver listens on: every destination, in index order."""
    return sorted(set(np.asarray(plan.dst).tolist()))


def write_receiver_plan(path: Path | str, plan: MessagePlan) -> None:
    """Write the receiver's plan file (layout in the module docstring); start times are not needed."""
    listen = receiver_hosts(plan)
    header = np.zeros(1, dtype=RECEIVER_PLAN_HEADER)
    header[0] = (RECEIVER_PLAN_MAGIC, len(plan.packets), len(listen), PROBE_UDP_PORT, MAGIC)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.ascontiguousarray(plan.packets, dtype="<i8").tobytes())
        f.write(np.asarray([plan.host_pids[h] for h in listen], dtype="<i8").tobytes())


def read_receiver_plan(path: Path | str) -> tuple[np.ndarray, list[int]]:
    """The inverse of :func:`write_receiver_plan`: ``(packets, host_pids)`` (for tests and debugging)."""
    data = Path(path).read_bytes()
    header = np.frombuffer(data, dtype=RECEIVER_PLAN_HEADER, count=1)[0]
    if header["magic"] != RECEIVER_PLAN_MAGIC:
        raise ValueError(f"{path}: not a receiver plan file")
    n_msgs, n_hosts = int(header["n_msgs"]), int(header["n_hosts"])
    at = RECEIVER_PLAN_HEADER.itemsize
    packets = np.frombuffer(data, dtype="<i8", count=n_msgs, offset=at).copy()
    pids = np.frombuffer(data, dtype="<i8", count=n_hosts, offset=at + 8 * n_msgs).tolist()
    return packets, pids


def read_rx(path: Path | str, total_packets: int) -> dict[str, np.ndarray]:
    """What the receiver recorded: ``rx_ns`` (-1: never), ``copies``, ``path`` (per packet) and ``unknown``."""
    data = Path(path).read_bytes()
    p = total_packets
    if len(data) != 12 * p + 8:
        raise ValueError(f"{path}: {len(data)} bytes, expected {12 * p + 8} for {p} packets")
    return {"rx_ns": np.frombuffer(data, dtype="<i8", count=p).astype(np.int64),
            "copies": np.frombuffer(data, dtype="<i2", count=p, offset=8 * p).astype(np.int16),
            "path": np.frombuffer(data, dtype="<i2", count=p, offset=10 * p).astype(np.int16),
            "unknown": np.int64(np.frombuffer(data, dtype="<i8", count=1, offset=12 * p)[0])}


def rx_to_npz(raw_path: Path | str, npz_path: Path | str, total_packets: int) -> None:
    """Turn the receiver's output into the ``rx.npz`` the runner reads."""
    np.savez(npz_path, **read_rx(raw_path, total_packets))


if __name__ == "__main__":
    try:
        print(sender_binary())
        print(receiver_binary())
    except EnvironmentNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
