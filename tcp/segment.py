"""TCP header wire format (RFC 9293 §3.1) and the options of RFC 9293 §3.2, RFC 7323, RFC 2018.

Reading: :func:`parse` validates the fixed header and the data offset and decodes the options
into a :class:`Segment`, whose ``payload`` is a zero-copy view into the caller's buffer. It does
not verify the checksum: the caller does that with the pseudo-header sum (RFC 9293 §3.1), and
skips it for frames the device marked checksum-valid (offloads first: docs/architecture.md).

Writing: :func:`encode_options` lays options out the way Linux's ``tcp_options_write`` does
(every option 4-byte aligned with NOPs, so the header stays word-aligned and middleboxes see the
layouts they expect), and :func:`write_header` writes the header in place at an offset of a
pooled buffer with the checksum field zero, for the caller to fill in (or for the device to, with
checksum offload) at :data:`CHECKSUM_OFFSET`; given ``ts_val`` it writes NOP, NOP, TS itself
first (the established connection's only option), then any ``encode_options`` bytes (SACK).

Option parsing never raises, whatever the bytes. It follows Linux's ``tcp_parse_options``:

- EOL (kind 0) ends the list; NOP (kind 1) is one byte of padding;
- any other kind has a length byte; a length < 2, or an option running past the end of the
  header (data offset), stops parsing and the rest is ignored; the segment is still accepted
  and ``bad_options`` is set for the counters;
- known options with the wrong length (MSS ≠ 4, WS ≠ 3, SACK-permitted ≠ 2, timestamps ≠ 10,
  SACK not 2+8n with n ≥ 1) are skipped by their length and otherwise ignored;
- unknown kinds are skipped by their length (RFC 9293 §3.2: "a TCP implementation MUST be able
  to receive a TCP Option in any segment" and MUST ignore options it does not implement);
- a window scale above 14 is used as 14 (RFC 7323 §2.3);
- a repeated option overwrites the earlier one;
- MSS and window scale are decoded on every segment; only the connection knows whether it is in
  a state where they count (SYN only, RFC 9293 §3.7.1, RFC 7323 §2.2).

Bytes are only ever read below ``off + header_len``: options beyond the data offset are payload.

The header is read and written byte by byte through a pointer into the packet's buffer (typed
``unsigned char*`` in segment.pxd): in the compiled build those are C loads and stores — no
``struct``, no boxed ints, no ``bytes`` object for the timestamp option, which
:func:`write_header` writes in place (``ts_val``) — while the pure build runs the same code on the
``bytearray`` itself. Measured with callgrind (``benchmarks/instructions.py``, compiled build):
``parse`` of an established segment (NOP, NOP, TS and 64 bytes of payload) ~1,300 instructions,
half of them the payload's memoryview slice (it was ~5,200 with ``struct``); ``write_header`` with
the timestamp option ~160 (it was ~4,000 with ``struct``, the options slice assignment and the
option's ``bytes``). The pure build pays ~0.7 µs more per call for the byte-by-byte spelling.
"""

from __future__ import annotations

import struct

__all__ = [
    "ACK",
    "CHECKSUM_OFFSET",
    "CWR",
    "ECE",
    "FIN",
    "HEADER",
    "HEADER_LEN",
    "MAX_HEADER_LEN",
    "MAX_OPTIONS_LEN",
    "MAX_WSCALE",
    "OPT_EOL",
    "OPT_MSS",
    "OPT_NOP",
    "OPT_SACK",
    "OPT_SACK_PERMITTED",
    "OPT_TIMESTAMP",
    "OPT_WSCALE",
    "PSH",
    "RST",
    "SYN",
    "TS_OPTION_LEN",
    "URG",
    "Segment",
    "encode_options",
    "flags_str",
    "parse",
    "write_header",
]

# Control bits, byte 13 of the header (RFC 9293 §3.1; ECE and CWR from RFC 3168 §6.1).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

# Option kinds (RFC 9293 §3.2, RFC 7323 §2.2 and §3.2, RFC 2018 §2 and §3).
OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8

HEADER_LEN = 20
MAX_HEADER_LEN = 60
MAX_OPTIONS_LEN = 40
MAX_WSCALE = 14
"""RFC 7323 §2.3: a shift count above 14 is treated as 14."""

CHECKSUM_OFFSET = 16
"""Offset of the checksum field from the start of the TCP header."""
TS_OPTION_LEN = 12
"""NOP, NOP and the 10-byte timestamp option (RFC 7323 Appendix A): what :func:`write_header`
adds to the header when given a ``ts_val``."""

HEADER = struct.Struct("!HHIIBBHHH")
"""src port, dst port, seq, ack, data offset << 4, flags, window, checksum, urgent pointer."""

_U32X3 = struct.Struct("!III")

# The constants the per-segment code below compares and adds, under private names that
# segment.pxd types as C constants (a module-level cdef name is invisible to importers, so the
# public names above stay Python ints).
_HLEN = HEADER_LEN
_MAX_HLEN = MAX_HEADER_LEN
_TS_LEN = TS_OPTION_LEN
_NOP = OPT_NOP
_TS_KIND = OPT_TIMESTAMP

_TS_WORD = 0x0101080A
"""NOP, NOP, kind 8, length 10: the aligned timestamp option (RFC 7323 Appendix A)."""
_SACKPERM_TS_WORD = 0x0402080A
"""SACK-permitted followed by the timestamp kind and length: Linux's SYN packing of the two."""
_SACKPERM_ALONE = b"\x01\x01\x04\x02"
_SACK_WORD = 0x01010500
"""NOP, NOP, kind 5; the low byte is the length, 2 + 8 × blocks."""

_FLAG_NAMES = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"), (ECE, "E"), (CWR, "W"))


class Segment:
    """A parsed TCP segment (RFC 9293 §3.1). ``window`` is the raw field, not yet scaled.

    ``flags`` holds the 8 control bits of byte 13 (:data:`FIN` … :data:`CWR`); the reserved
    bits of byte 12 (where AccECN puts its AE bit) are ignored on receive and sent as zero.

    ``payload`` is a view into the buffer given to :func:`parse` (``b""`` when the segment has
    none; or whatever the constructor was given): it is valid while that buffer is, and must be
    copied by anyone keeping it longer.
    Option fields are ``None`` / ``False`` / ``()`` when the option was absent.
    """

    __slots__ = (
        "ack",
        "bad_options",
        "dst_port",
        "flags",
        "header_len",
        "mss",
        "payload",
        "sack_blocks",
        "sack_permitted",
        "seq",
        "src_port",
        "ts_ecr",
        "ts_val",
        "urgent",
        "window",
        "wscale",
    )

    def __init__(
        self,
        src_port: int,
        dst_port: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        urgent: int = 0,
        header_len: int = HEADER_LEN,
        payload: memoryview | bytes = b"",
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        sack_blocks: tuple[tuple[int, int], ...] = (),
        ts_val: int | None = None,
        ts_ecr: int | None = None,
        bad_options: bool = False,
    ) -> None:
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.urgent = urgent
        self.header_len = header_len
        self.payload = payload
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks
        self.ts_val = ts_val
        self.ts_ecr = ts_ecr
        self.bad_options = bad_options

    @property
    def seg_len(self) -> int:
        """SEG.LEN of RFC 9293 §3.4: payload octets, plus one for SYN and one for FIN."""
        flags = self.flags
        return len(self.payload) + (flags & SYN) // SYN + (flags & FIN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    @property
    def syn(self) -> bool:
        return bool(self.flags & SYN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & RST)

    @property
    def psh(self) -> bool:
        return bool(self.flags & PSH)

    @property
    def ack_flag(self) -> bool:
        """The ACK control bit (the acknowledgment number ``ack`` is significant)."""
        return bool(self.flags & ACK)

    @property
    def urg(self) -> bool:
        return bool(self.flags & URG)

    @property
    def ece(self) -> bool:
        return bool(self.flags & ECE)

    @property
    def cwr(self) -> bool:
        return bool(self.flags & CWR)

    @property
    def has_timestamps(self) -> bool:
        return self.ts_val is not None

    def __repr__(self) -> str:
        opts = []
        if self.mss is not None:
            opts.append(f"mss={self.mss}")
        if self.wscale is not None:
            opts.append(f"wscale={self.wscale}")
        if self.sack_permitted:
            opts.append("sackOK")
        if self.ts_val is not None:
            opts.append(f"TS val {self.ts_val} ecr {self.ts_ecr}")
        if self.sack_blocks:
            opts.append("sack " + " ".join(f"{left}:{right}" for left, right in self.sack_blocks))
        if self.bad_options:
            opts.append("bad_options")
        return (
            f"<Segment {self.src_port}>{self.dst_port} [{flags_str(self.flags)}] seq {self.seq} ack {self.ack}"
            f" win {self.window} len {len(self.payload)}{' [' + ', '.join(opts) + ']' if opts else ''}>"
        )


def flags_str(flags: int) -> str:
    """tcpdump-style flag letters (``S.`` for SYN+ACK); ``none`` when no flag is set."""
    return "".join(name for bit, name in _FLAG_NAMES if flags & bit) or "none"


def parse(buf: bytes | bytearray | memoryview, off: int, end: int, view: memoryview | None = None) -> Segment | str:
    """Read the segment at ``buf[off:end]``; a drop reason string when the header is unusable.

    Drop reasons: ``tcp_truncated`` (fewer than 20 bytes), ``tcp_bad_offset`` (data offset below
    5 words or beyond ``end``). Malformed options never drop the segment (see the module notes).
    The checksum is not verified here. ValueError when ``off:end`` is not within ``buf``.

    The header is read byte by byte from a ``bytes`` or ``bytearray`` (in the compiled build,
    C loads through a pointer: no ``struct``, no boxed ints); any other buffer is read from a copy
    of its bytes. The payload is a slice of ``view``, a memoryview of the whole of ``buf`` (the
    receive path hands the frame's bytearray and the view it already has), or of one made here;
    an empty payload is ``b""``.
    """
    if end - off < _HLEN:
        return "tcp_truncated"
    if type(buf) is not bytearray and type(buf) is not bytes:
        view = memoryview(buf)
        buf = view.tobytes()
    if off < 0 or end > len(buf):
        raise ValueError(f"segment {off}:{end} outside {len(buf)} bytes")
    p = buf
    hlen = (p[off + 12] >> 4) << 2
    if hlen < _HLEN or hlen > end - off:
        return "tcp_bad_offset"
    seg = Segment.__new__(Segment)
    seg.src_port = p[off] << 8 | p[off + 1]
    seg.dst_port = p[off + 2] << 8 | p[off + 3]
    w = p[off + 4]  # widened first: in C, a byte shifted by 24 would overflow an int
    seg.seq = w << 24 | p[off + 5] << 16 | p[off + 6] << 8 | p[off + 7]
    w = p[off + 8]
    seg.ack = w << 24 | p[off + 9] << 16 | p[off + 10] << 8 | p[off + 11]
    seg.flags = p[off + 13]
    seg.window = p[off + 14] << 8 | p[off + 15]
    seg.urgent = p[off + 18] << 8 | p[off + 19]
    seg.header_len = hlen
    start = off + hlen
    if start < end:
        if view is None:
            view = memoryview(buf)
        seg.payload = view[start:end]
    else:
        seg.payload = b""
    seg.mss = None
    seg.wscale = None
    seg.sack_permitted = False
    seg.sack_blocks = ()
    seg.ts_val = None
    seg.ts_ecr = None
    seg.bad_options = False
    if hlen != _HLEN:
        i = off + _HLEN
        if hlen == _HLEN + _TS_LEN and p[i] == _NOP and p[i + 1] == _NOP and p[i + 2] == _TS_KIND and p[i + 3] == 10:
            # Header prediction for options: NOP, NOP, TS is what Linux (and most stacks) send
            # on every established segment once timestamps are on (RFC 7323 Appendix A).
            w = p[i + 4]
            seg.ts_val = w << 24 | p[i + 5] << 16 | p[i + 6] << 8 | p[i + 7]
            w = p[i + 8]
            seg.ts_ecr = w << 24 | p[i + 9] << 16 | p[i + 10] << 8 | p[i + 11]
            return seg
        _parse_options(seg, p, i, start)
    return seg


_QUOTED = struct.Struct("!HHI")


def parse_quoted(buf: bytes | bytearray | memoryview, off: int, end: int) -> tuple[int, int, int] | None:
    """(source port, destination port, sequence number) of the TCP header an ICMP error quotes
    at ``buf[off:end]`` — the first 8 bytes, all that RFC 792 promises — or None when shorter."""
    if end - off < _QUOTED.size:
        return None
    return _QUOTED.unpack_from(buf, off)  # type: ignore[return-value]


def _u32(p: bytes | bytearray, i: int) -> int:
    """The big-endian 32-bit word at ``p[i:i + 4]`` (the caller checked the bounds)."""
    w = p[i]
    return w << 24 | p[i + 1] << 16 | p[i + 2] << 8 | p[i + 3]


def _parse_options(seg: Segment, p: bytes | bytearray, i: int, end: int) -> None:
    """Decode the options in ``p[i:end]`` into ``seg`` (the general loop; see the module notes)."""
    while i < end:
        kind = p[i]
        if kind == _NOP:
            i += 1
            continue
        if kind == OPT_EOL:
            return
        if i + 1 >= end:
            seg.bad_options = True  # a kind byte with no room for its length
            return
        olen = p[i + 1]
        if olen < 2 or i + olen > end:
            seg.bad_options = True
            return
        if kind == _TS_KIND:
            if olen == 10:
                seg.ts_val = _u32(p, i + 2)
                seg.ts_ecr = _u32(p, i + 6)
        elif kind == OPT_MSS:
            if olen == 4:
                seg.mss = p[i + 2] << 8 | p[i + 3]
        elif kind == OPT_WSCALE:
            if olen == 3:
                shift = p[i + 2]
                seg.wscale = shift if shift <= MAX_WSCALE else MAX_WSCALE
        elif kind == OPT_SACK_PERMITTED:
            if olen == 2:
                seg.sack_permitted = True
        elif kind == OPT_SACK and olen >= 10 and (olen - 2) & 7 == 0:
            blocks = []
            j = i + 2
            while j < i + olen:
                blocks.append((_u32(p, j), _u32(p, j + 4)))
                j += 8
            seg.sack_blocks = tuple(blocks)
        i += olen


_ts_only = _U32X3.pack

_SACK_STRUCTS = [struct.Struct("!I" + "II" * n) for n in range(5)]
_TS_SACK_STRUCTS = [struct.Struct("!IIII" + "II" * n) for n in range(4)]
_syn_cache: dict[tuple[int | None, int | None, bool, bool], tuple[bytes, int, bytes]] = {}
_SYN_CACHE_MAX = 256


def encode_options(
    *,
    mss: int | None = None,
    wscale: int | None = None,
    sack_permitted: bool = False,
    timestamps: tuple[int, int] | None = None,
    sack_blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
) -> bytes:
    """The options bytes, 4-byte aligned, in Linux's ``tcp_options_write`` order.

    MSS (RFC 9293 §3.7.1); SACK-permitted and timestamps (RFC 2018 §2, RFC 7323 §3.2) packed as
    (SACK_PERM, TS) when both, else (NOP, NOP, TS) or (NOP, NOP, SACK_PERM); (NOP, WS)
    (RFC 7323 §2.2); then SACK blocks (RFC 2018 §3) as (NOP, NOP, SACK), as many of the first
    blocks as fit in the 40 bytes of option space left — 3 with timestamps, 4 without (RFC 2018
    §3 leaves the choice of blocks to the caller: the most recent first).

    ``timestamps`` is ``(ts_val, ts_ecr)``. ``wscale`` must be 0..14 (ValueError otherwise).
    """
    if mss is None and wscale is None and not sack_permitted:
        # The per-segment cases on an established connection.
        if not sack_blocks:
            if timestamps is None:
                return b""
            return _ts_only(_TS_WORD, timestamps[0], timestamps[1])
        n = len(sack_blocks)
        if timestamps is None:
            if n > 4:
                n = 4
            return _SACK_STRUCTS[n].pack(_SACK_WORD | (2 + 8 * n), *_flatten(sack_blocks, n))
        if n > 3:
            n = 3
        return _TS_SACK_STRUCTS[n].pack(
            _TS_WORD, timestamps[0], timestamps[1], _SACK_WORD | (2 + 8 * n), *_flatten(sack_blocks, n)
        )

    has_ts = timestamps is not None
    key = (mss, wscale, sack_permitted, has_ts)
    parts = _syn_cache.get(key)
    if parts is None:
        parts = _syn_parts(mss, wscale, sack_permitted, has_ts)
        if len(_syn_cache) >= _SYN_CACHE_MAX:
            _syn_cache.clear()
        _syn_cache[key] = parts
    head, ts_word, tail = parts
    out = head + _ts_only(ts_word, timestamps[0], timestamps[1]) + tail if timestamps is not None else head + tail
    if sack_blocks:
        n = min(len(sack_blocks), (MAX_OPTIONS_LEN - len(out) - 4) >> 3)
        if n > 0:
            out += _SACK_STRUCTS[n].pack(_SACK_WORD | (2 + 8 * n), *_flatten(sack_blocks, n))
    return out


def _syn_parts(mss: int | None, wscale: int | None, sack_permitted: bool, has_ts: bool) -> tuple[bytes, int, bytes]:
    """(bytes before the TS option, the TS option's first word, bytes after it)."""
    head = b"" if mss is None else struct.pack("!BBH", OPT_MSS, 4, mss)
    ts_word = 0
    if has_ts:
        ts_word = _SACKPERM_TS_WORD if sack_permitted else _TS_WORD
    elif sack_permitted:
        head += _SACKPERM_ALONE
    tail = b""
    if wscale is not None:
        if not 0 <= wscale <= MAX_WSCALE:
            raise ValueError(f"window scale {wscale} outside 0..{MAX_WSCALE} (RFC 7323 §2.3)")
        tail = bytes((OPT_NOP, OPT_WSCALE, 3, wscale))
    return head, ts_word, tail


def _flatten(blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]], n: int) -> list[int]:
    out: list[int] = []
    for left, right in blocks[:n]:
        out.append(left)
        out.append(right)
    return out


def write_header(
    buf: bytearray,
    off: int,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes = b"",
    urgent: int = 0,
    ts_val: int = -1,
    ts_ecr: int = 0,
) -> int:
    """Write the header and its options at ``buf[off:]`` with a zero checksum; return its length.

    ``ts_val`` ≥ 0: the options start with NOP, NOP, TS ``ts_val`` ``ts_ecr`` (RFC 7323 §3.2, in
    the layout of its Appendix A), written straight into the buffer — what every segment of an
    established connection with timestamps carries. ``options`` follow: bytes from
    :func:`encode_options` (a multiple of 4 bytes, at most 40 with the timestamps: ValueError
    otherwise). ``window`` is the raw 16-bit field, already scaled down by the caller. A field
    out of range, or a header that would not fit in ``buf``, raises ValueError before anything
    is written. In the compiled build the bytes are C stores through a pointer (no ``struct``).
    """
    olen = len(options)
    hlen = _HLEN + olen
    if ts_val >= 0:
        hlen += _TS_LEN
    if olen & 3 or hlen > _MAX_HLEN:
        raise ValueError(f"TCP options must be a multiple of 4 bytes, at most 40 (got {hlen - _HLEN})")
    if (src_port | dst_port | window | urgent) >> 16 or (seq | ack) >> 32 or flags >> 8:
        raise ValueError(
            f"TCP header field out of range: ports {src_port}, {dst_port}, seq {seq}, ack {ack},"
            f" flags {flags}, window {window}, urgent {urgent}"
        )
    if ts_val >= 0 and (ts_val | ts_ecr) >> 32:
        raise ValueError(f"timestamps out of range: {ts_val}, {ts_ecr}")
    if off < 0 or off + hlen > len(buf):
        raise ValueError(f"a {hlen}-byte TCP header at {off} does not fit in {len(buf)} bytes")
    p = buf
    p[off] = src_port >> 8
    p[off + 1] = src_port & 0xFF
    p[off + 2] = dst_port >> 8
    p[off + 3] = dst_port & 0xFF
    p[off + 4] = seq >> 24
    p[off + 5] = (seq >> 16) & 0xFF
    p[off + 6] = (seq >> 8) & 0xFF
    p[off + 7] = seq & 0xFF
    p[off + 8] = ack >> 24
    p[off + 9] = (ack >> 16) & 0xFF
    p[off + 10] = (ack >> 8) & 0xFF
    p[off + 11] = ack & 0xFF
    p[off + 12] = hlen << 2  # data offset, in words, in the high nibble
    p[off + 13] = flags
    p[off + 14] = window >> 8
    p[off + 15] = window & 0xFF
    p[off + 16] = 0  # checksum: the caller's (or the device's)
    p[off + 17] = 0
    p[off + 18] = urgent >> 8
    p[off + 19] = urgent & 0xFF
    i = off + _HLEN
    if ts_val >= 0:
        p[i] = _NOP
        p[i + 1] = _NOP
        p[i + 2] = _TS_KIND
        p[i + 3] = 10
        p[i + 4] = ts_val >> 24
        p[i + 5] = (ts_val >> 16) & 0xFF
        p[i + 6] = (ts_val >> 8) & 0xFF
        p[i + 7] = ts_val & 0xFF
        p[i + 8] = ts_ecr >> 24
        p[i + 9] = (ts_ecr >> 16) & 0xFF
        p[i + 10] = (ts_ecr >> 8) & 0xFF
        p[i + 11] = ts_ecr & 0xFF
        i += _TS_LEN
    if olen:
        buf[i : i + olen] = options
    return hlen
