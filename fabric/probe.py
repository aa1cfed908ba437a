"""The probe packet format: one header, declared once, used on the wire, in captures and in tests.

Every emulated message is carried as UDP datagrams to :data:`PROBE_UDP_PORT` whose payload starts
with this header (network byte order), padded to the payload size (4096 bytes by default):

=========  ======  ======================================================
field      bytes   meaning
=========  ======  ======================================================
magic      4       :data:`MAGIC`, tells our packets from anything else
msg_id     8       message id within the run
seq        4       packet sequence number within the message, from 0
count      4       packets in the message
tx_ns      8       sender's CLOCK_REALTIME just before ``send()``
=========  ======  ======================================================

:class:`FabricProbe` is the scapy layer (bound to the UDP port, so ``Ether(raw)`` dissects captures);
:data:`HEADER` is the ``struct`` fast path the traffic agents use. A test pins that both agree.
"""

from __future__ import annotations

import struct

PROBE_UDP_PORT = 47000
MAGIC = 0xFAB1C0DE
HEADER = struct.Struct("!IQIIQ")
HEADER_BYTES = HEADER.size  # 28
UDP_IP_OVERHEAD_BYTES = 28  # IPv4 (20) + UDP (8), no options
ETHERNET_HEADER_BYTES = 14
# What a shaped link counts beyond our payload (HTB charges the frame from the Ethernet header on).
WIRE_OVERHEAD_BYTES = UDP_IP_OVERHEAD_BYTES + ETHERNET_HEADER_BYTES
DEFAULT_PAYLOAD_BYTES = 4096


def pack_header(buffer, msg_id: int, seq: int, count: int, tx_ns: int, offset: int = 0) -> None:
    """Write the header into ``buffer`` at ``offset`` (fast path, no allocation)."""
    HEADER.pack_into(buffer, offset, MAGIC, msg_id, seq, count, tx_ns)


def unpack_header(data, offset: int = 0) -> tuple[int, int, int, int] | None:
    """Return ``(msg_id, seq, count, tx_ns)``, or None if the bytes are not one of our packets."""
    if len(data) - offset < HEADER_BYTES:
        return None
    magic, msg_id, seq, count, tx_ns = HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        return None
    return msg_id, seq, count, tx_ns


def scapy_layer():
    """Return the scapy layer class, importing scapy lazily (it takes ~1 s to import)."""
    global _LAYER
    if _LAYER is None:
        from scapy.fields import IntField, LongField, XIntField
        from scapy.layers.inet import UDP
        from scapy.packet import Packet, bind_layers

        class FabricProbe(Packet):
            """fabric probe header (see module docstring)."""

            name = "FabricProbe"
            fields_desc = [
                XIntField("magic", MAGIC),
                LongField("msg_id", 0),
                IntField("seq", 0),
                IntField("count", 1),
                LongField("tx_ns", 0),
            ]

        bind_layers(UDP, FabricProbe, dport=PROBE_UDP_PORT)
        _LAYER = FabricProbe
    return _LAYER


_LAYER = None
