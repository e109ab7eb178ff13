"""TCP header wire format (RFC 9293 §3.1) and the options of RFC 9293 §3.2, RFC 7323, RFC 2018.

Reading: :func:`parse` validates the fixed header and the data offset and decodes the options
into a :class:`Segment`, whose ``payload`` is a zero-copy view into the caller's buffer. It does
not verify the checksum: the caller does that with the pseudo-header sum (RFC 9293 §3.1), and
skips it for frames the device marked checksum-valid (offloads first: docs/architecture.md).

Writing: :func:`encode_options` lays options out the way Linux's ``tcp_options_write`` does
(every option 4-byte aligned with NOPs, so the header stays word-aligned and middleboxes see the
layouts they expect), and :func:`write_header` writes the header in place at an offset of a
pooled buffer with the checksum field zero, for the caller to fill in (or for the device to, with
checksum offload) at :data:`CHECKSUM_OFFSET`.

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

Measured on this machine (Python 3.11, ``timeit`` through a lambda, best of 5 × 200k calls):

- ``parse``, 20-byte header, no options: ~0.55 µs from ``bytes`` (~0.48 µs when handed a
  ``memoryview``, which saves wrapping the buffer); with NOP, NOP, TS (the established-connection
  case, taken by a fast path like Linux's ``tcp_fast_parse_options``): ~0.61 µs (~0.55 µs from a
  memoryview); a SYN with MSS, SACK-permitted, TS and WS through the general loop: ~1.2 µs;
- ``encode_options(timestamps=(v, e))``: ~0.12 µs; a SYN's full set (layout cached): ~0.23 µs;
  TS + 3 SACK blocks: ~0.50 µs;
- ``write_header``: ~0.19 µs without options, ~0.37 µs with 12 bytes of options.
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

HEADER = struct.Struct("!HHIIBBHHH")
"""src port, dst port, seq, ack, data offset << 4, flags, window, checksum, urgent pointer."""

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U32X2 = struct.Struct("!II")
_U32X3 = struct.Struct("!III")

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

    ``payload`` is a view into the buffer given to :func:`parse` (or whatever the constructor was
    given): it is valid while that buffer is, and must be copied by anyone keeping it longer.
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


def parse(buf: bytes | bytearray | memoryview, off: int, end: int) -> Segment | str:
    """Read the segment at ``buf[off:end]``; a drop reason string when the header is unusable.

    Drop reasons: ``tcp_truncated`` (fewer than 20 bytes), ``tcp_bad_offset`` (data offset below
    5 words or beyond ``end``). Malformed options never drop the segment (see the module notes).
    The checksum is not verified here.
    """
    if end - off < HEADER_LEN:
        return "tcp_truncated"
    src_port, dst_port, seq, ack, doff, flags, window, _csum, urgent = HEADER.unpack_from(buf, off)
    hlen = (doff >> 4) << 2
    if hlen < HEADER_LEN or hlen > end - off:
        return "tcp_bad_offset"
    view = buf if type(buf) is memoryview else memoryview(buf)
    seg = Segment(src_port, dst_port, seq, ack, flags, window, urgent, hlen, view[off + hlen : end])
    if hlen != HEADER_LEN:
        if hlen == 32:
            # Header prediction for options: NOP, NOP, TS is what Linux (and most stacks) send
            # on every established segment once timestamps are on (RFC 7323 Appendix A).
            word, ts_val, ts_ecr = _U32X3.unpack_from(buf, off + HEADER_LEN)
            if word == _TS_WORD:
                seg.ts_val = ts_val
                seg.ts_ecr = ts_ecr
                return seg
        _parse_options(seg, buf, off + HEADER_LEN, off + hlen)
    return seg


_QUOTED = struct.Struct("!HHI")


def parse_quoted(buf: bytes | bytearray | memoryview, off: int, end: int) -> tuple[int, int, int] | None:
    """(source port, destination port, sequence number) of the TCP header an ICMP error quotes
    at ``buf[off:end]`` — the first 8 bytes, all that RFC 792 promises — or None when shorter."""
    if end - off < _QUOTED.size:
        return None
    return _QUOTED.unpack_from(buf, off)  # type: ignore[return-value]


def _parse_options(seg: Segment, buf: bytes | bytearray | memoryview, i: int, end: int) -> None:
    """Decode the options in ``buf[i:end]`` into ``seg`` (the general loop; see the module notes)."""
    while i < end:
        kind = buf[i]
        if kind == OPT_NOP:
            i += 1
            continue
        if kind == OPT_EOL:
            return
        if i + 1 >= end:
            seg.bad_options = True  # a kind byte with no room for its length
            return
        olen = buf[i + 1]
        if olen < 2 or i + olen > end:
            seg.bad_options = True
            return
        if kind == OPT_TIMESTAMP:
            if olen == 10:
                seg.ts_val, seg.ts_ecr = _U32X2.unpack_from(buf, i + 2)
        elif kind == OPT_MSS:
            if olen == 4:
                seg.mss = _U16.unpack_from(buf, i + 2)[0]
        elif kind == OPT_WSCALE:
            if olen == 3:
                shift = buf[i + 2]
                seg.wscale = shift if shift <= MAX_WSCALE else MAX_WSCALE
        elif kind == OPT_SACK_PERMITTED:
            if olen == 2:
                seg.sack_permitted = True
        elif kind == OPT_SACK and olen >= 10 and (olen - 2) & 7 == 0:
            words = struct.unpack_from(f"!{(olen - 2) >> 2}I", buf, i + 2)
            seg.sack_blocks = tuple(zip(words[::2], words[1::2], strict=True))
        i += olen


_ts_only = _U32X3.pack


def timestamp_option(ts_val: int, ts_ecr: int) -> bytes:
    """NOP, NOP, TS: what every established segment carries once timestamps are on (the
    common case of :func:`encode_options`, without its keyword handling)."""
    return _ts_only(_TS_WORD, ts_val, ts_ecr)
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
) -> int:
    """Write the header and ``options`` at ``buf[off:]`` with a zero checksum; return its length.

    ``options`` must come from :func:`encode_options` (or otherwise be a multiple of 4 bytes,
    at most 40: ValueError). ``window`` is the raw 16-bit field, already scaled down by the
    caller. Field values out of range raise ``struct.error``.
    """
    olen = len(options)
    if olen & 3 or olen > MAX_OPTIONS_LEN:
        raise ValueError(f"TCP options must be a multiple of 4 bytes, at most 40 (got {olen})")
    hlen = HEADER_LEN + olen
    HEADER.pack_into(buf, off, src_port, dst_port, seq, ack, hlen << 2, flags, window, 0, urgent)
    if olen:
        buf[off + HEADER_LEN : off + hlen] = options
    return hlen
