"""A minimal rtnetlink client for the two things the run does many times a second.

* dumping qdisc / class statistics (bytes, packets, drops, backlog) of one namespace;
* changing a TBF qdisc's rate (the credit scheduler's grants).

pyroute2 parses every attribute of every message into Python objects: ~1.5 ms per namespace
dump here, 36 ms of CPU per sample of a 24-namespace fabric — a CPU the emulated packets need.
This module packs and unpacks only the fields it uses (~0.1 ms per dump). The socket must be
created inside the namespace it reads (see :func:`fabric.emu.netns.enter_netns_of`).
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_ROUTE = 0
RTM_NEWQDISC, RTM_GETQDISC = 36, 38
RTM_NEWTCLASS, RTM_GETTCLASS = 40, 42
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCA_KIND, TCA_OPTIONS, TCA_STATS = 1, 2, 3
TCA_TBF_PARMS, TCA_TBF_RATE64, TCA_TBF_BURST = 1, 4, 6
TC_H_ROOT = 0xFFFFFFFF

NLMSGHDR = struct.Struct("=IHHII")
TCMSG = struct.Struct("=BxxxiIII")
RTATTR = struct.Struct("=HH")
# struct tc_stats: bytes, packets, drops, overlimits, bps, pps, qlen, backlog
TC_STATS = struct.Struct("=QIIIIIII")
# struct tc_ratespec: cell_log, linklayer, overhead, cell_align, mpu, rate
TC_RATESPEC = struct.Struct("=BBHhHI")
# struct tc_tbf_qopt: rate, peakrate (tc_ratespec each), limit, buffer, mtu
TC_TBF_OPT_TAIL = struct.Struct("=III")


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, offset: int, end: int) -> dict[int, tuple[int, int]]:
    """Map attribute type -> (payload offset, payload length) for a run of rtattrs."""
    out = {}
    while offset + 4 <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        out[kind & 0x7FFF] = (offset + 4, length - 4)
        offset += _align(length)
    return out


def _attr(kind: int, payload: bytes) -> bytes:
    head = RTATTR.pack(4 + len(payload), kind)
    return head + payload + b"\0" * (_align(len(payload)) - len(payload))


class TcNetlink:
    """rtnetlink socket bound to the namespace the calling thread is in when it is created."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _request(self, msg_type: int, flags: int, body: bytes) -> int:
        self.seq += 1
        self.sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, flags, self.seq, 0) + body)
        return self.seq

    def _dump(self, msg_type: int, ifindex: int = 0):
        seq = self._request(msg_type, NLM_F_REQUEST | NLM_F_DUMP, TCMSG.pack(0, ifindex, 0, 0, 0))
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                length, kind, _flags, mseq, _pid = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size:
                    return
                if mseq == seq:
                    if kind == NLMSG_DONE:
                        return
                    if kind == NLMSG_ERROR:
                        err = struct.unpack_from("=i", data, offset + NLMSGHDR.size)[0]
                        if err:
                            raise OSError(-err, os.strerror(-err))
                        return
                    yield data, offset + NLMSGHDR.size, offset + length
                offset += _align(length)

    def stats(self, msg_type: int = RTM_GETQDISC, ifindex: int = 0) -> list[tuple[int, int, int, bytes, tuple]]:
        """Dump qdiscs (or classes with RTM_GETTCLASS): (ifindex, handle, parent, kind, tc_stats tuple)."""
        out = []
        for data, body, end in self._dump(msg_type, ifindex):
            _family, index, handle, parent, _info = TCMSG.unpack_from(data, body)
            attrs = _attrs(data, body + TCMSG.size, end)
            kind = b""
            if TCA_KIND in attrs:
                off, n = attrs[TCA_KIND]
                kind = bytes(data[off:off + n]).rstrip(b"\0")
            stats = (0, 0, 0, 0, 0, 0, 0, 0)
            if TCA_STATS in attrs:
                off, n = attrs[TCA_STATS]
                if n >= TC_STATS.size:
                    stats = TC_STATS.unpack_from(data, off)
            out.append((index, handle, parent, kind, stats))
        return out

    def class_backlogs(self, ifindex: int, handles: frozenset[int]) -> dict[int, int]:
        """Backlog in bytes of the classes ``handles`` of one device: the credit scheduler's one
        read per NCP per tick, so the other classes (half of them: each VOQ's TBF shows a class too)
        are skipped before their attributes are parsed."""
        out = {}
        for data, body, end in self._dump(RTM_GETTCLASS, ifindex):
            handle = TCMSG.unpack_from(data, body)[2]
            if handle not in handles:
                continue
            attrs = _attrs(data, body + TCMSG.size, end)
            if TCA_STATS in attrs and attrs[TCA_STATS][1] >= TC_STATS.size:
                out[handle] = TC_STATS.unpack_from(data, attrs[TCA_STATS][0])[7]
        return out

    def set_tbf_rate(self, ifindex: int, handle: int, parent: int, rate_bps: int, burst_bytes: int,
                     limit_bytes: int) -> None:
        """Change a TBF qdisc's rate, as ``tc qdisc change ... tbf rate R burst B limit L`` does.

        The kernel refills the bucket on every change (tbf_change sets tokens = buffer).
        """
        rate_Bps = max(1, int(rate_bps // 8))
        buffer_ticks = int(burst_bytes * 1e9 / rate_Bps / 64)
        rate = TC_RATESPEC.pack(0, 1, 0, -1, 0, min(rate_Bps, 0xFFFFFFFF))
        peak = TC_RATESPEC.pack(0, 0, 0, 0, 0, 0)
        opt = rate + peak + TC_TBF_OPT_TAIL.pack(limit_bytes, min(buffer_ticks, 0xFFFFFFFF), 0)
        options = _attr(TCA_TBF_PARMS, opt) + _attr(TCA_TBF_BURST, struct.pack("=I", burst_bytes))
        if rate_Bps >= 0xFFFFFFFF:
            options += _attr(TCA_TBF_RATE64, struct.pack("=Q", rate_Bps))
        body = TCMSG.pack(0, ifindex, handle, parent, 0) + _attr(TCA_KIND, b"tbf\0") + _attr(TCA_OPTIONS, options)
        self._ack(RTM_NEWQDISC, body, f"TBF change on ifindex {ifindex}")

    def _ack(self, msg_type: int, body: bytes, what: str) -> None:
        seq = self._request(msg_type, NLM_F_REQUEST | NLM_F_ACK, body)
        while True:
            data = self.sock.recv(65536)
            _length, kind, _flags, mseq, _pid = NLMSGHDR.unpack_from(data, 0)
            if mseq != seq:
                continue
            if kind == NLMSG_ERROR:
                err = struct.unpack_from("=i", data, NLMSGHDR.size)[0]
                if err:
                    raise OSError(-err, f"{what}: {os.strerror(-err)}")
            return
