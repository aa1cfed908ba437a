"""Traffic agents: one sender process and one receiver process for all hosts of a run.

Each agent enters every host namespace once (``setns``) to open that host's socket there; a socket
stays bound to the namespace it was created in, so one process serves all hosts through epoll.

Sender: one raw UDP socket per host (we write the UDP header ourselves, so every message gets its
own source port, as RoCE gives every queue pair its own — that is what ECMP hashes on). Socket
buffers do not pace a sender on this kernel (the packet leaves the socket's accounting before the
host's shaped queue drains), so each sender keeps only a few packets queued in its host's NIC,
tracking the queue with the link's configured rate; the shaped host link does the exact pacing.
Concurrent messages of one host share its NIC packet by packet, round-robin, and hosts take turns
packet by packet too. Each packet gets a user-space stamp just before ``sendto()`` (lateness) and
the kernel's TX timestamp as it leaves the host NIC (the start of its one-way delay).

Receiver: one UDP socket per host with ``SO_TIMESTAMPNS`` (kernel receive time, CLOCK_REALTIME)
and ``IP_RECVTOS`` (the DSCP the core switch wrote = the packet's path).

Both record into preallocated arrays indexed by packet (``offset[msg] + seq``) and write them with
numpy when done; no per-packet Python objects are kept.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from fabric.emu.netns import enter_netns_of
from fabric.probe import HEADER, HEADER_BYTES, MAGIC, PROBE_UDP_PORT

SO_TIMESTAMPNS = 35
SO_TIMESTAMPING = 37
IP_RECVERR = 11
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
WIRE_OVERHEAD_BYTES = 42  # Ethernet 14 + IPv4 20 + UDP 8: what HTB counts beyond our payload
IP_RECVTOS = 13
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
UDP_HEADER = struct.Struct("!HHHH")
SRC_PORT_BASE = 49152
RECEIVE_BUFFER_BYTES = 32 * 1024 * 1024
_FILTERS: list = []
SENDER_NICE = -10   # senders and the credit scheduler wake up first
SAMPLER_NICE = 10   # counters can wait a few ms


@dataclass
class MessagePlan:
    """What the agents replay: one entry per message, arrays aligned by wire id (0..n-1)."""

    src: np.ndarray           # host index
    dst: np.ndarray           # host index
    t_start_ns: np.ndarray    # absolute CLOCK_REALTIME
    packets: np.ndarray       # packets in the message
    payload: np.ndarray       # UDP payload bytes of every full packet (header included)
    last_payload: np.ndarray  # UDP payload bytes of the last packet
    host_pids: list[int]      # namespace owner pid per host index
    host_addrs: list[str]     # IPv4 address per host index
    host_rate_bps: list[float]  # emulated NIC (host link) rate per host index

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.packets)[:-1]]).astype(np.int64)

    @property
    def total_packets(self) -> int:
        return int(self.packets.sum())


def _drop_all_filter(sock: socket.socket) -> None:
    """A raw socket also receives a copy of every incoming UDP packet; discard them in-kernel."""
    insns = (ctypes.c_uint8 * 8)(*struct.pack("HBBI", 0x06, 0, 0, 0))  # BPF_RET|BPF_K 0
    _FILTERS.append(insns)  # the kernel copies it, but keep it alive until setsockopt returns
    prog = struct.pack("HL", 1, ctypes.addressof(insns))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)


def _raise_priority(nice: int) -> None:
    """Senders keep the schedule: run them ahead of the sampler and bookkeeping (root may do so)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:
        pass


def _src_port(wire_id: int) -> int:
    # A per-message source port spread over 16k values (Knuth multiplicative hash).
    return SRC_PORT_BASE + (wire_id * 2654435761 % 2**32) % 16384


def _enable_tx_timestamps(sock: socket.socket) -> None:
    flags = (SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID
             | SOF_TIMESTAMPING_OPT_TSONLY)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, flags)


def _drain_tx_timestamps(sock: socket.socket, attempts, tx_ns: np.ndarray) -> int:
    """Read the socket's error queue: one kernel timestamp per packet that left the host NIC.

    ``attempts[key]`` is the packet index of the key-th send on this socket (-1 for a send the
    host queue refused). Returns how many timestamps were read.
    """
    got = 0
    while True:
        try:
            _data, anc, _flags, _addr = sock.recvmsg(0, 512, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            return got
        stamp, key = -1, -1
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                sec, nsec = struct.unpack_from("qq", value, 0)
                stamp = sec * 1_000_000_000 + nsec
            elif level == socket.IPPROTO_IP and kind == IP_RECVERR:
                key = struct.unpack_from("IBBBBII", value, 0)[6]
        if 0 <= key < len(attempts) and stamp > 0:
            idx = attempts[key]
            if idx >= 0:
                tx_ns[idx] = stamp
                got += 1


def run_sender(plan: MessagePlan, out_path: str, host_subset: list[int], queue_packets: int) -> None:
    """Replay the messages of ``host_subset`` in ``plan``; write per-packet records to ``out_path``.

    Pacing: the shaped host link is the NIC. The sender keeps at most ``queue_packets`` packets
    in that NIC's queue, tracking it with the link's configured rate (the queue drains at exactly
    that rate: it is an HTB class), so concurrent messages of a host can share the NIC packet by
    packet, round-robin. A send the queue refuses anyway (ENOBUFS) is retried and counted.

    Two times per packet: ``tx_user_ns`` (user space, just before ``sendto()``: for lateness
    against the schedule) and ``tx_ns`` (the kernel's software TX timestamp as the packet leaves
    the host NIC: the start of its one-way delay, so the host's own queue is not counted as network).

    Runs are split over a few sender processes (one per CPU) because each ``sendto()`` may also
    forward packets through the emulated fabric in kernel context: one process tops out near
    25k packets/s.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _raise_priority(SENDER_NICE)
    n_hosts = len(plan.host_pids)
    offsets = plan.offsets
    tx_ns = np.full(plan.total_packets, -1, dtype=np.int64)
    tx_user_ns = np.full(plan.total_packets, -1, dtype=np.int64)
    refused = np.zeros(n_hosts, dtype=np.int64)

    socks: dict[int, socket.socket] = {}
    for h in sorted(set(plan.src.tolist()) & set(host_subset)):
        enter_netns_of(plan.host_pids[h])
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 4 * 1024 * 1024)
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 * 1024 * 1024)  # holds the TX timestamps
        _drop_all_filter(s)
        _enable_tx_timestamps(s)
        s.setblocking(False)
        socks[h] = s

    # Per host: its messages in start order, a cursor, and the active round-robin queue.
    order = np.lexsort((np.arange(len(plan.src)), plan.t_start_ns))
    queue_of: dict[int, list[int]] = {h: [] for h in socks}
    for m in order.tolist():
        if int(plan.src[m]) in queue_of:
            queue_of[int(plan.src[m])].append(m)
    cursor = {h: 0 for h in socks}
    active: dict[int, deque] = {h: deque() for h in socks}
    attempts = {h: [] for h in socks}
    next_seq = np.zeros(len(plan.src), dtype=np.int64)
    # Model of each host NIC queue: when it will have sent everything queued so far.
    free_at = {h: 0 for h in socks}
    ns_per_byte = {h: 8e9 / plan.host_rate_bps[h] for h in socks}
    max_payload = int(plan.payload.max(initial=HEADER_BYTES))
    buf = bytearray(8 + max_payload)
    view = memoryview(buf)
    starts = plan.t_start_ns
    packets = plan.packets
    remaining = {h: len(q) for h, q in queue_of.items()}
    dst_addr = [(a, 0) for a in plan.host_addrs]
    slack_ns = {h: int((queue_packets - 1) * (max_payload + WIRE_OVERHEAD_BYTES) * ns_per_byte[h]) for h in socks}

    while any(remaining.values()):
        now = time.time_ns()
        wake = None
        for h, q in queue_of.items():
            c = cursor[h]
            while c < len(q) and starts[q[c]] <= now:
                active[h].append(q[c])
                c += 1
            cursor[h] = c
            if c < len(q) and (wake is None or starts[q[c]] < wake):
                wake = starts[q[c]]
        # One packet per host per pass: when many hosts start together (an all-to-all) every
        # host's first packet leaves before any host's second, as parallel NICs would do it.
        sending = [h for h, act in active.items() if act]
        sent_by = set()
        while sending:
            still = []
            for h in sending:
                act = active[h]
                now = time.time_ns()
                if free_at[h] - now > slack_ns[h]:
                    ready = free_at[h] - slack_ns[h]
                    wake = ready if wake is None or ready < wake else wake
                    continue
                m = act[0]
                seq = int(next_seq[m])
                count = int(packets[m])
                payload = int(plan.last_payload[m] if seq == count - 1 else plan.payload[m])
                UDP_HEADER.pack_into(buf, 0, _src_port(m), PROBE_UDP_PORT, 8 + payload, 0)
                HEADER.pack_into(buf, 8, MAGIC, m, seq, count, now)
                idx = offsets[m] + seq
                try:
                    socks[h].sendto(view[:8 + payload], dst_addr[int(plan.dst[m])])
                except (BlockingIOError, OSError) as exc:
                    if not isinstance(exc, BlockingIOError) and exc.errno != errno.ENOBUFS:
                        raise
                    # The NIC queue was full after all: the model ran ahead of the shaper.
                    refused[h] += 1
                    attempts[h].append(-1)
                    free_at[h] = now + slack_ns[h] + int((payload + WIRE_OVERHEAD_BYTES) * ns_per_byte[h])
                    continue
                attempts[h].append(idx)
                tx_user_ns[idx] = now
                free_at[h] = max(free_at[h], now) + int((payload + WIRE_OVERHEAD_BYTES) * ns_per_byte[h])
                sent_by.add(h)
                act.popleft()
                if seq + 1 < count:
                    next_seq[m] = seq + 1
                    act.append(m)  # round-robin between this host's concurrent messages
                else:
                    remaining[h] -= 1
                if act:
                    still.append(h)
            sending = still
        for h in sent_by:
            _drain_tx_timestamps(socks[h], attempts[h], tx_ns)
        if wake is None:
            continue
        delay_s = (wake - time.time_ns()) / 1e9
        if delay_s > 0.002:
            time.sleep(delay_s - 0.001)   # coarse sleep, then a fine one below
        elif delay_s > 0:
            time.sleep(delay_s)
    # The last packets leave the NIC queues within one queue's drain time; collect their stamps.
    deadline = max(free_at.values(), default=0) + 50_000_000
    while time.time_ns() < deadline:
        time.sleep(0.005)
        for h, s in socks.items():
            _drain_tx_timestamps(s, attempts[h], tx_ns)
        if (tx_ns[tx_user_ns >= 0] >= 0).all():
            break
    np.savez(out_path, tx_ns=tx_ns, tx_user_ns=tx_user_ns, refused=refused)


def run_receiver(plan: MessagePlan, out_path: str, stop_fd: int, ready_fd: int) -> None:
    """Receive on all hosts until ``stop_fd`` becomes readable; write rx records to ``out_path``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    offsets = plan.offsets
    n = plan.total_packets
    rx_ns = np.full(n, -1, dtype=np.int64)
    copies = np.zeros(n, dtype=np.int16)
    path = np.full(n, -1, dtype=np.int16)
    socks = []
    for h in sorted(set(plan.dst.tolist())):
        enter_netns_of(plan.host_pids[h])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        s.bind(("0.0.0.0", PROBE_UDP_PORT))
        s.setblocking(False)
        socks.append(s)
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    ep.register(stop_fd, select.EPOLLIN)
    os.write(ready_fd, b"r")
    unknown = 0
    stopping = False
    n_msgs = len(offsets)
    while True:
        events = ep.poll(0.5)
        for fd, _ in events:
            if fd == stop_fd:
                stopping = True
                continue
            s = by_fd[fd]
            while True:
                try:
                    data, anc, _flags, _addr = s.recvmsg(64, 256)
                except BlockingIOError:
                    break
                if len(data) < HEADER_BYTES:
                    unknown += 1
                    continue
                magic, m, seq, _count, _tx = HEADER.unpack_from(data, 0)
                if magic != MAGIC or m >= n_msgs:
                    unknown += 1
                    continue
                stamp, tos = -1, 0
                for level, kind, value in anc:
                    if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET:
                        sec, nsec = struct.unpack("qq", value[:16])
                        stamp = sec * 1_000_000_000 + nsec
                    elif level == socket.IPPROTO_IP and kind == socket.IP_TOS:
                        tos = value[0]
                idx = offsets[m] + seq
                if copies[idx] == 0:
                    rx_ns[idx] = stamp
                    path[idx] = (tos >> 2) - 1
                copies[idx] += 1
        if stopping:
            break
    np.savez(out_path, rx_ns=rx_ns, copies=copies, path=path, unknown=np.int64(unknown))
