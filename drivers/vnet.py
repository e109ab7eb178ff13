"""virtio_net_hdr: the per-frame offload header of TAP (``IFF_VNET_HDR``), virtio-net and AF_PACKET
(``PACKET_VNET_HDR``).

Layout (``include/uapi/linux/virtio_net.h``; little-endian on x86 — the TAP default on a
little-endian host, see ``TUNSETVNETLE`` in Documentation/networking/tuntap.rst)::

    u8  flags        NEEDS_CSUM=1, DATA_VALID=2
    u8  gso_type     NONE=0, TCPV4=1, UDP=3, TCPV6=4, UDP_L4=5, | ECN=0x80
    u16 hdr_len      length of the headers (Ethernet + IP + L4) of a GSO frame
    u16 gso_size     payload bytes per segment
    u16 csum_start   where the L4 checksum starts, counted from the start of the Ethernet frame
    u16 csum_offset  where the checksum is stored, counted from csum_start
    u16 num_buffers  only in the 12-byte form (``TUNSETVNETHDRSZ`` 12, "mergeable rx buffers")

The header size is a parameter everywhere here (10 or 12): the kernel reads/writes the 10 fields
and skips the rest of ``vnet_hdr_sz``.

Semantics the stack relies on (measured; linux/virtio_net.h):

- transmit with ``NEEDS_CSUM``: the L4 checksum field holds the folded pseudo-header sum, *not*
  inverted; the device sums ``frame[csum_start:]`` on top and stores the inverted result at
  ``csum_start + csum_offset``;
- receive with ``NEEDS_CSUM`` (a partial checksum the kernel never completed) or ``DATA_VALID``:
  the stack must not verify the checksum (it would fail for NEEDS_CSUM).

This module knows the header and nothing of IP: it never looks inside the frame except to finish a
partial checksum in software (:func:`complete_csum`), which is the same IP-agnostic operation the
kernel's ``skb_checksum_help`` performs.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

if TYPE_CHECKING:
    from .buffers import Packet

# flags
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_F_DATA_VALID = 2
VIRTIO_NET_HDR_F_RSC_INFO = 4

# gso_type
VIRTIO_NET_HDR_GSO_NONE = 0
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_UDP = 3
VIRTIO_NET_HDR_GSO_TCPV6 = 4
VIRTIO_NET_HDR_GSO_UDP_L4 = 5
VIRTIO_NET_HDR_GSO_ECN = 0x80

HDR_SIZE = 10
"""The basic header (``struct virtio_net_hdr``)."""
HDR_SIZE_MRG = 12
"""With ``num_buffers`` (``struct virtio_net_hdr_mrg_rxbuf``)."""

_HDR_SIZE = HDR_SIZE
_NO_VERIFY = VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID

HDR = struct.Struct("<BBHHHH")
"""flags, gso_type, hdr_len, gso_size, csum_start, csum_offset."""
HDR_MRG = struct.Struct("<BBHHHHH")
"""The same plus num_buffers."""

_pack10 = HDR.pack_into
_pack12 = HDR_MRG.pack_into
_unpack = HDR.unpack_from

VnetFields = tuple[int, int, int, int, int, int]


def check_size(size: int) -> int:
    """Validate a header size (10 or 12) and return it."""
    if size not in (HDR_SIZE, HDR_SIZE_MRG):
        raise ValueError(f"virtio_net_hdr size must be {HDR_SIZE} or {HDR_SIZE_MRG}, not {size}")
    return size


def pack_into(buf: bytearray | memoryview, offset: int, pkt: Packet, size: int = HDR_SIZE) -> None:
    """Write the header for ``pkt``'s offload fields at ``buf[offset:offset+size]``.

    ``pkt.csum_start >= 0`` sets NEEDS_CSUM with ``csum_start``/``csum_offset`` as they are (both
    are already relative to the Ethernet frame, which is what the header wants). ``gso_type``,
    ``gso_size`` and ``hdr_len`` are copied; with GSO_NONE they are written as zero so stale values
    cannot reach the kernel (it rejects a non-zero gso_size without a gso_type on some paths).
    """
    cs = pkt.csum_start
    if cs >= 0:
        flags = VIRTIO_NET_HDR_F_NEEDS_CSUM
        co = pkt.csum_offset
    else:
        flags = 0
        cs = co = 0
    gt = pkt.gso_type
    if gt:
        hl = pkt.hdr_len
        gs = pkt.gso_size
    else:
        hl = gs = 0
    if _COMPILED and type(buf) is bytearray and offset >= 0 and offset + size <= len(buf):
        # The same little-endian fields as byte stores into the buffer (vnet.pxd), no struct call.
        _store(buf, offset, flags, gt, hl, gs, cs, co, size)  # noqa: F821 - C inline, vnet.pxd
    elif size == _HDR_SIZE:
        _pack10(buf, offset, flags, gt, hl, gs, cs, co)
    else:
        _pack12(buf, offset, flags, gt, hl, gs, cs, co, 0)


def parse_into(pkt: Packet, offset: int) -> None:
    """Copy the offload fields of the header at ``pkt.buf[offset:offset+10]`` (a received frame's,
    which the caller has checked is there) into ``pkt``: ``csum_valid`` when NEEDS_CSUM or
    DATA_VALID is set (nothing to verify), and ``gso_type``/``gso_size``/``hdr_len`` of a
    coalesced frame."""
    buf = pkt.buf
    if buf[offset] & _NO_VERIFY:
        pkt.csum_valid = True
    gso_type = buf[offset + 1]
    if gso_type:
        pkt.gso_type = gso_type
        pkt.hdr_len = buf[offset + 2] | buf[offset + 3] << 8
        pkt.gso_size = buf[offset + 4] | buf[offset + 5] << 8


def pack_fields(
    buf: bytearray | memoryview,
    offset: int,
    flags: int = 0,
    gso_type: int = 0,
    hdr_len: int = 0,
    gso_size: int = 0,
    csum_start: int = 0,
    csum_offset: int = 0,
    size: int = HDR_SIZE,
) -> None:
    """Write a header from explicit fields (tests, tools); ``num_buffers`` is written as 0."""
    if size == HDR_SIZE:
        _pack10(buf, offset, flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)
    else:
        _pack12(buf, offset, flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def parse(buf: bytes | bytearray | memoryview, offset: int = 0) -> VnetFields:
    """``(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)`` of the header at
    ``offset`` (the first 10 bytes; ``num_buffers`` of the 12-byte form is ignored)."""
    return _unpack(buf, offset)  # type: ignore[return-value]


def needs_no_verify(flags: int) -> bool:
    """Whether a received frame's L4 checksum must be skipped (NEEDS_CSUM or DATA_VALID)."""
    return bool(flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))


def complete_csum(
    buf: bytearray | memoryview, start: int, end: int, csum_start: int, csum_offset: int
) -> None:
    """Finish a partial checksum in software, as a device would for NEEDS_CSUM.

    ``buf[start:end]`` is the frame; the one's-complement sum of ``frame[csum_start:]`` (whose
    checksum field holds the folded pseudo-header sum) is folded, inverted and stored big-endian
    at ``csum_start + csum_offset``. This is the fallback for a device without checksum offload
    (the kernel's ``skb_checksum_help``); it knows nothing of IP.

    The sum is taken over the bytes as one big integer modulo 0xFFFF (one's-complement addition of
    16-bit words is addition modulo 2**16 - 1), which is a single C-level pass in CPython.
    """
    lo = start + csum_start
    data = bytes(buf[lo:end])
    if len(data) & 1:
        data += b"\x00"
    s = int.from_bytes(data, "big") % 0xFFFF
    # s is in [0, 0xFFFE] (an all-ones sum shows up as 0), so csum is never 0: a zero checksum comes
    # out as 0xFFFF, which RFC 768 requires for UDP and TCP/ICMP receivers accept (RFC 1624).
    csum = (~s) & 0xFFFF
    pos = lo + csum_offset
    buf[pos] = csum >> 8
    buf[pos + 1] = csum & 0xFF
