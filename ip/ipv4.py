"""IPv4 wire format (RFC 791 §3.1) and the receive-side validation of RFC 1122 §3.2.1.

Behaviour (routing, fragments, demux) lives in :mod:`aiostack.ip.stack`; this module only reads
and writes headers.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from typing import TYPE_CHECKING

from .checksum import ones_sum, ones_sum_at

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

if TYPE_CHECKING:
    from .datagram import Datagram

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

HEADER_LEN = 20
MAX_PACKET = 65535
FLAG_RESERVED = 0x8000
FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF
DEFAULT_TTL = 64
LIMITED_BROADCAST = 0xFFFFFFFF

# Copies the compiled build holds as C constants (ipv4.pxd): a module global is a lookup by name,
# and a comparison with it boxes the other side.
_HEADER_LEN = HEADER_LEN
_OFFSET_MASK = OFFSET_MASK

HEADER = struct.Struct("!BBHHHBBHII")
_HEAD = struct.Struct("!BBHHHBBH")


def parse_into(d: Datagram, buf: bytearray, offset: int, end: int) -> str | None:
    """Validate the header at ``buf[offset:end]`` (the frame's buffer: read and summed where it
    lies, no copy in the compiled build) and read its fields into ``d`` (the stack's
    reused :class:`~aiostack.ip.datagram.Datagram`: no object per datagram); a drop reason string
    when invalid, None when ``d`` holds the header.

    Checks, in the order RFC 1122 §3.2.1 lists them: version 4, IHL ≥ 5 and within the frame,
    total length ≥ IHL and within the frame (trailing Ethernet padding beyond it is ignored),
    header checksum. Options are not interpreted; the payload starts after IHL×4 bytes whatever
    they contain (RFC 1122 §3.2.1.8: unknown options are ignored). The TTL is not a reason to
    drop here: a host "MUST NOT discard a datagram just because it was received with TTL less
    than 2" (RFC 1122 §3.2.1.7); the TTL rule binds the sender, enforced in ``IPStack.send_ip``.
    ``d.offset`` is the fragment offset in bytes (×8 applied).
    """
    avail = end - offset
    if avail < _HEADER_LEN or end > len(buf):
        return "ipv4_truncated"
    if _COMPILED:
        # The bytes one by one: each a C load from the typed bytearray, where struct's unpack is a
        # Python call that boxes ten ints (~1,100 instructions a datagram, issue #10).
        vihl = buf[offset]
        tos = buf[offset + 1]
        total_length = buf[offset + 2] << 8 | buf[offset + 3]
        ident = buf[offset + 4] << 8 | buf[offset + 5]
        frag = buf[offset + 6] << 8 | buf[offset + 7]
        ttl = buf[offset + 8]
        proto = buf[offset + 9]
        src = buf[offset + 12]  # widened to 64 bits before the shift (a C int would go negative)
        src = src << 24 | buf[offset + 13] << 16 | buf[offset + 14] << 8 | buf[offset + 15]
        dst = buf[offset + 16]
        dst = dst << 24 | buf[offset + 17] << 16 | buf[offset + 18] << 8 | buf[offset + 19]
    else:  # one C call beats twenty indexings in the interpreter
        vihl, tos, total_length, ident, frag, ttl, proto, _csum, src, dst = HEADER.unpack_from(buf, offset)
    if vihl >> 4 != 4:
        return "ipv4_bad_version"
    header_len = (vihl & 0x0F) * 4
    if header_len < _HEADER_LEN:
        return "ipv4_bad_ihl"
    if header_len > avail:
        return "ipv4_truncated"
    if total_length < header_len:
        return "ipv4_bad_total_length"
    if total_length > avail:
        return "ipv4_truncated"
    # Compiled: summed where it lies. Pure: a 20-byte copy costs the interpreter less than a view.
    csum = ones_sum_at(buf, offset, offset + header_len) if _COMPILED else ones_sum(buf[offset : offset + header_len])
    if csum != 0xFFFF:
        return "ipv4_bad_checksum"
    d.header_len = header_len
    d.tos = tos
    d.total_length = total_length
    d.ident = ident
    d.flags = frag & 0xE000
    d.offset = (frag & _OFFSET_MASK) << 3
    d.ttl = ttl
    d.proto = proto
    d.src = src
    d.dst = dst
    return None


def write_header(
    buf: bytearray,
    offset: int,
    *,
    total_length: int,
    ident: int,
    proto: int,
    src: int,
    dst: int,
    ttl: int = DEFAULT_TTL,
    tos: int = 0,
    flags: int = 0,
    frag_offset: int = 0,
) -> None:
    """Write a 20-byte header (no options) with its checksum. ``frag_offset`` is in bytes."""
    _HEAD.pack_into(buf, offset, 0x45, tos, total_length, ident, flags | (frag_offset >> 3), ttl, proto, 0)
    struct.pack_into("!II", buf, offset + 12, src, dst)
    csum = ~ones_sum(memoryview(buf)[offset : offset + HEADER_LEN]) & 0xFFFF
    buf[offset + 10] = csum >> 8
    buf[offset + 11] = csum & 0xFF


def is_unicast_source(addr: int) -> bool:
    """RFC 1122 §3.2.1.3: a source must not be 0.x (except 0.0.0.0 for bootstrapping, which we
    do not accept here), broadcast, multicast (224/4), class E (240/4) or loopback (127/8)."""
    first = addr >> 24
    return first != 0 and first != 127 and first < 224


def is_multicast(addr: int) -> bool:
    return (addr >> 28) == 0xE


def aton(text: str) -> int:
    """Dotted-quad text to a 32-bit integer (ValueError on anything else)."""
    # Cached: every connect() and bind() parses its address, and ipaddress's parser costs ~45 µs
    # (a third of a connection's setup, measured); the cache is bounded by _aton_cached's size.
    return _aton_cached(text)


@functools.lru_cache(maxsize=4096)
def _aton_cached(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ntoa(addr: int) -> str:
    return f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}"
