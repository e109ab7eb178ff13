"""Ethernet II framing (IEEE 802.3 with an EtherType, RFC 894 for IPv4 over Ethernet)."""

from __future__ import annotations

import os
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


def mac_to_str(mac: bytes | bytearray | memoryview) -> str:
    return ":".join(f"{b:02x}" for b in bytes(mac))


def parse_mac(text: str) -> bytes:
    """Parse ``aa:bb:cc:dd:ee:ff`` (or with dashes) into 6 bytes; ValueError otherwise."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None
    return mac


def random_mac() -> bytes:
    """A random locally administered unicast address (IEEE 802: U/L bit set, I/G bit clear)."""
    mac = bytearray(os.urandom(6))
    mac[0] = (mac[0] & 0xFC) | 0x02
    return bytes(mac)
