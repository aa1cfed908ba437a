"""What the traffic agents share: the message plan they replay and their scheduling priorities.

Both agents that touch packets are compiled C, built and fed by :mod:`fabric.emu.native`: in Python,
replaying packets one by one fell behind schedule at 20-30k packets/s, and receiving them cost 10-20 us
of CPU per packet that the senders and the kernel's forwarding then lacked.

* Sender (``sender.c``, two processes per run): paces each host by a model of its NIC queue,
  round-robins between a host's concurrent messages, and records a user-space stamp before each send
  and the kernel's TX timestamp as each packet leaves its host.
* Receiver (``receiver.c``, one process per run): opens each destination host's UDP socket inside
  that host's namespace (``setns``), serves them all through epoll and ``recvmmsg``, and records per
  packet (``offset[msg] + seq``) the kernel receive time (``SO_TIMESTAMPNS``), the path (the DSCP the
  core switch wrote, ``IP_RECVTOS``) and the number of copies.

The sampler (:mod:`fabric.emu.counters`) and the credit scheduler (:mod:`fabric.emu.scheduler`) stay
in Python; the nice values below order them against the senders (``sender.c`` uses ``SENDER_NICE``
too; the receiver runs at the default 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SENDER_NICE = -10   # senders and the credit scheduler wake up first (sender.c uses the same)
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
