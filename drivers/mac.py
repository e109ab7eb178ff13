"""Ethernet MAC addresses as drivers and the stack take them (IEEE 802 48-bit addresses)."""

from __future__ import annotations

import os


def random_mac() -> bytes:
    """A random locally administered unicast address (IEEE 802: U/L bit set, I/G bit clear), so it
    never collides with a vendor-assigned one."""
    mac = bytearray(os.urandom(6))
    mac[0] = (mac[0] & 0xFC) | 0x02
    return bytes(mac)


def parse_mac(mac: bytes | bytearray | str) -> bytes:
    """6 bytes, or text like ``02:00:00:00:00:01`` (dashes too) → 6 bytes; ValueError otherwise."""
    if isinstance(mac, str):
        parts = mac.replace("-", ":").split(":")
        if len(parts) != 6:
            raise ValueError(f"bad MAC address {mac!r}")
        try:
            out = bytes(int(p, 16) for p in parts)
        except ValueError:
            raise ValueError(f"bad MAC address {mac!r}") from None
    else:
        out = bytes(mac)
    if len(out) != 6:
        raise ValueError(f"a MAC address has 6 bytes, got {len(out)}")
    return out


def parse_unicast_mac(mac: bytes | bytearray | str) -> bytes:
    """Like :func:`parse_mac`, for an address a port will own: it must be unicast."""
    out = parse_mac(mac)
    if out[0] & 1:
        raise ValueError("a port's own MAC must be unicast (bit 0 of the first octet clear)")
    return out


def mac_to_str(mac: bytes | bytearray | memoryview) -> str:
    return ":".join(f"{b:02x}" for b in bytes(mac))
