"""Ethernet II framing (IEEE 802.3 with an EtherType, RFC 894 for IPv4 over Ethernet)."""

from __future__ import annotations

import struct

HEADER_LEN = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
MIN_FRAME = 60
"""Shortest frame on the wire without the FCS; shorter payloads are padded (IEEE 802.3 §3.2.8)."""

HEADER = struct.Struct("!6s6sH")


def write_header(buf: bytearray, offset: int, dst: bytes, src: bytes, ethertype: int) -> None:
    HEADER.pack_into(buf, offset, dst, src, ethertype)


def is_multicast(mac: bytes | bytearray | memoryview) -> bool:
    """The I/G bit: set for group (multicast and broadcast) addresses."""
    return bool(mac[0] & 1)
