"""TCP header and options (RFC 9293 §3.1-3.2, RFC 7323, RFC 2018): round trips against dpkt and
every malformed-option case of Linux's tcp_parse_options."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.ip.checksum import ones_sum, pseudo_header_sum
from aiostack.tcp.segment import (
    ACK,
    CHECKSUM_OFFSET,
    CWR,
    ECE,
    FIN,
    OPT_EOL,
    OPT_MSS,
    OPT_NOP,
    OPT_SACK,
    OPT_SACK_PERMITTED,
    OPT_TIMESTAMP,
    OPT_WSCALE,
    PSH,
    RST,
    SYN,
    TS_OPTION_LEN,
    URG,
    Segment,
    encode_options,
    flags_str,
    parse,
    write_header,
)

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.lists(st.tuples(u32, u32), max_size=6)


def raw(options: bytes, payload: bytes = b"", *, flags: int = ACK, doff: int | None = None, lead: int = 0) -> bytes:
    """A segment with ``options`` copied verbatim (padded with zeros to a word) behind ``lead`` bytes."""
    padded = options + b"\0" * (-len(options) % 4)
    if doff is None:
        doff = (20 + len(padded)) // 4
    head = struct.pack("!HHIIBBHHH", 1234, 80, 1000, 2000, doff << 4, flags, 512, 0, 0)
    return b"\xee" * lead + head + padded + payload


def parsed(data: bytes, off: int = 0) -> Segment:
    seg = parse(data, off, len(data))
    assert isinstance(seg, Segment), seg
    return seg


# --- fixed header -------------------------------------------------------------------------------


def test_constants() -> None:
    assert (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR) == (1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80)
    assert (OPT_EOL, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_PERMITTED, OPT_SACK, OPT_TIMESTAMP) == (0, 1, 2, 3, 4, 5, 8)
    assert CHECKSUM_OFFSET == 16
    assert flags_str(SYN | ACK) == "S." and flags_str(0) == "none" and flags_str(FIN | PSH | ACK) == "FP."


def test_truncated_and_bad_offset() -> None:
    good = raw(b"")
    assert parse(good[:19], 0, 19) == "tcp_truncated"
    assert parse(b"", 0, 0) == "tcp_truncated"
    assert parse(good, 0, 19) == "tcp_truncated"  # `end` bounds the segment, not len(buf)
    for doff in (0, 1, 4):
        data = raw(b"", b"x" * 40, doff=doff)
        assert parse(data, 0, len(data)) == "tcp_bad_offset"
    data = raw(b"", b"", doff=6)  # 24-byte header in a 20-byte segment
    assert parse(data, 0, len(data)) == "tcp_bad_offset"
    data = raw(b"", b"\1\1\1\1" * 10, doff=15)
    assert parse(data, 0, len(data) - 1) == "tcp_bad_offset"
    assert isinstance(parse(data, 0, len(data)), Segment)


def test_fields_offsets_and_zero_copy_payload() -> None:
    buf = bytearray(raw(b"", b"hello world", flags=SYN | FIN | PSH, lead=14) + b"trailer")
    end = len(buf) - len(b"trailer")
    seg = parsed(bytes(buf[:end]), 14)
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.window, seg.urgent) == (1234, 80, 1000, 2000, 512, 0)
    assert seg.header_len == 20 and not seg.bad_options
    assert seg.syn and seg.fin and seg.psh and not seg.ack_flag and not seg.rst and not seg.urg
    assert not seg.ece and not seg.cwr
    assert seg.seg_len == len(b"hello world") + 2
    assert (seg.mss, seg.wscale, seg.sack_permitted, seg.sack_blocks, seg.ts_val, seg.ts_ecr) == (
        None, None, False, (), None, None,
    )  # fmt: skip
    view = parse(buf, 14, end)
    assert isinstance(view, Segment)
    assert isinstance(view.payload, memoryview)
    assert bytes(view.payload) == b"hello world"
    buf[14 + 20] = ord("J")  # the payload is a view of the caller's buffer, not a copy
    assert bytes(view.payload) == b"Jello world"
    mv = memoryview(buf)
    again = parse(mv, 14, end)
    assert isinstance(again, Segment) and again.payload.obj is buf


def test_seg_len() -> None:
    assert Segment(1, 2, 0, 0, ACK, 0).seg_len == 0
    assert Segment(1, 2, 0, 0, SYN, 0).seg_len == 1
    assert Segment(1, 2, 0, 0, SYN | ACK | FIN, 0, payload=b"abc").seg_len == 5
    assert Segment(1, 2, 0, 0, FIN | ACK, 0, payload=b"abc").seg_len == 4
    assert "S." in repr(Segment(1, 2, 0, 0, SYN | ACK, 0, mss=1460, ts_val=1, ts_ecr=0))


# --- dpkt round trips ---------------------------------------------------------------------------


def dpkt_options(data: bytes) -> dict[str, object]:
    """Our option fields computed from dpkt's option list."""
    out: dict[str, object] = {}
    for item in dpkt.tcp.parse_opts(data):
        assert item is not None
        kind, value = item
        if kind == OPT_MSS:
            out["mss"] = struct.unpack("!H", value)[0]
        elif kind == OPT_WSCALE:
            out["wscale"] = value[0]
        elif kind == OPT_SACK_PERMITTED:
            out["sack_permitted"] = True
        elif kind == OPT_TIMESTAMP:
            out["ts"] = struct.unpack("!II", value)
        elif kind == OPT_SACK:
            words = struct.unpack(f"!{len(value) // 4}I", value)
            out["sack"] = tuple(zip(words[::2], words[1::2], strict=True))
    return out


options_st = st.fixed_dictionaries(
    {},
    optional={
        "mss": u16,
        "wscale": st.integers(0, 14),
        "sack_permitted": st.booleans(),
        "timestamps": st.tuples(u32, u32),
        "sack_blocks": blocks,
    },
)


@settings(max_examples=300)
@given(
    options_st,
    st.tuples(u16, u16, u32, u32, st.integers(0, 255), u16, u16),
    st.binary(max_size=64),
)
def test_write_then_dpkt_parses(opts: dict, fields: tuple, payload: bytes) -> None:
    sport, dport, seq, ack, flags, win, urp = fields
    options = encode_options(**opts)
    assert len(options) % 4 == 0 and len(options) <= 40
    buf = bytearray(100 + len(payload))
    hlen = write_header(
        buf, 7, src_port=sport, dst_port=dport, seq=seq, ack=ack, flags=flags, window=win, options=options, urgent=urp
    )
    assert hlen == 20 + len(options)
    buf[7 + hlen : 7 + hlen + len(payload)] = payload
    data = bytes(buf[7 : 7 + hlen + len(payload)])
    pkt = dpkt.tcp.TCP(data)
    assert (pkt.sport, pkt.dport, pkt.seq, pkt.ack, pkt.flags, pkt.win, pkt.urp, pkt.sum) == (
        sport, dport, seq, ack, flags, win, urp, 0,
    )  # fmt: skip
    assert pkt.off * 4 == hlen and bytes(pkt.data) == payload
    theirs = dpkt_options(bytes(pkt.opts))
    assert theirs.get("mss") == opts.get("mss")
    assert theirs.get("wscale") == opts.get("wscale")
    assert theirs.get("sack_permitted", False) == opts.get("sack_permitted", False)
    assert theirs.get("ts") == opts.get("timestamps")
    sack = tuple(opts.get("sack_blocks", ()))
    room = 40 - len(encode_options(**{**opts, "sack_blocks": ()}))
    expect = sack[: max(0, (room - 4) // 8)]
    assert theirs.get("sack", ()) == expect

    seg = parsed(data)
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window, seg.urgent) == fields
    assert seg.header_len == hlen and bytes(seg.payload) == payload and not seg.bad_options
    assert seg.mss == opts.get("mss") and seg.wscale == opts.get("wscale")
    assert seg.sack_permitted == opts.get("sack_permitted", False)
    assert (None if seg.ts_val is None else (seg.ts_val, seg.ts_ecr)) == opts.get("timestamps")
    assert seg.sack_blocks == expect


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just(OPT_MSS), u16.map(lambda v: struct.pack("!H", v))),
            st.tuples(st.just(OPT_WSCALE), st.integers(0, 255).map(lambda v: bytes([v]))),
            st.tuples(st.just(OPT_SACK_PERMITTED), st.just(b"")),
            st.tuples(st.just(OPT_TIMESTAMP), st.binary(min_size=8, max_size=8)),
            st.tuples(
                st.just(OPT_SACK), st.lists(st.binary(min_size=8, max_size=8), min_size=1, max_size=4).map(b"".join)
            ),
            st.tuples(st.integers(6, 254).filter(lambda k: k != OPT_TIMESTAMP), st.binary(max_size=6)),
            st.tuples(st.just(OPT_NOP), st.none()),
        ),
        max_size=8,
    ),
    st.binary(max_size=32),
)
def test_dpkt_built_options_parse(items: list[tuple[int, bytes | None]], payload: bytes) -> None:
    """Well-formed option lists in any order and alignment, built byte by byte, read like dpkt reads them."""
    body = b""
    for kind, value in items:
        piece = bytes([kind]) if value is None else bytes([kind, 2 + len(value)]) + value
        if len(body) + len(piece) > 40:
            break
        body += piece
    opts = body + b"\0" * (-len(body) % 4)
    pkt = dpkt.tcp.TCP(sport=5, dport=6, seq=7, ack=8, flags=SYN, win=9, opts=opts, data=payload)
    pkt.off = 5 + len(opts) // 4
    seg = parsed(bytes(pkt))
    assert not seg.bad_options and bytes(seg.payload) == payload and seg.header_len == 20 + len(opts)
    theirs = dpkt_options(body)
    assert seg.mss == theirs.get("mss")
    wscale = theirs.get("wscale")
    assert seg.wscale == (None if wscale is None else min(int(wscale), 14))  # type: ignore[call-overload]
    assert seg.sack_permitted == theirs.get("sack_permitted", False)
    assert (None if seg.ts_val is None else (seg.ts_val, seg.ts_ecr)) == theirs.get("ts")
    assert seg.sack_blocks == theirs.get("sack", ())


# --- encode_options layouts ---------------------------------------------------------------------


def test_linux_layouts() -> None:
    ts = (0x11223344, 0x55667788)
    tsb = bytes.fromhex("1122334455667788")
    assert encode_options() == b""
    assert encode_options(timestamps=ts) == bytes.fromhex("0101080a") + tsb
    # A Linux SYN: mss 1460, sackOK + TS packed together, nop + wscale 7.
    assert encode_options(mss=1460, sack_permitted=True, timestamps=ts, wscale=7) == (
        bytes.fromhex("020405b4 0402080a") + tsb + bytes.fromhex("01030307")
    )
    assert encode_options(mss=1460, timestamps=ts, wscale=7) == (
        bytes.fromhex("020405b4 0101080a") + tsb + bytes.fromhex("01030307")
    )
    assert encode_options(mss=1460, sack_permitted=True, wscale=0) == bytes.fromhex("020405b4 01010402 01030300")
    assert encode_options(sack_permitted=True) == bytes.fromhex("01010402")
    assert encode_options(mss=536) == bytes.fromhex("02040218")
    assert encode_options(wscale=14) == bytes.fromhex("0103030e")
    assert encode_options(sack_blocks=[(1, 2)]) == bytes.fromhex("0101050a 00000001 00000002")
    assert encode_options(timestamps=ts, sack_blocks=[(1, 2)]) == (
        bytes.fromhex("0101080a") + tsb + bytes.fromhex("0101050a 00000001 00000002")
    )
    # The cache must not confuse layouts that share a key prefix.
    assert encode_options(mss=1460, sack_permitted=True) != encode_options(mss=1460, sack_permitted=True, timestamps=ts)
    assert encode_options(mss=1460, sack_permitted=True) == bytes.fromhex("020405b4 01010402")


def test_sack_blocks_limited_to_option_space() -> None:
    five = [(i, i + 1) for i in range(0, 50, 10)]
    with_ts = parsed(raw(encode_options(timestamps=(1, 2), sack_blocks=five)))
    assert with_ts.sack_blocks == tuple(five[:3]) and with_ts.header_len == 60
    without = parsed(raw(encode_options(sack_blocks=five)))
    assert without.sack_blocks == tuple(five[:4]) and without.header_len == 56
    syn = encode_options(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, 2), sack_blocks=five)
    assert len(syn) <= 40 and parsed(raw(syn)).sack_blocks == tuple(five[:2])


def test_bad_wscale_rejected_on_encode() -> None:
    with pytest.raises(ValueError):
        encode_options(wscale=15)
    with pytest.raises(ValueError):
        encode_options(mss=1460, wscale=-1)


def test_write_header_and_checksum() -> None:
    buf = bytearray(b"\xaa" * 80)
    options = encode_options(timestamps=(5, 6))
    hlen = write_header(buf, 10, src_port=1, dst_port=2, seq=3, ack=4, flags=ACK | PSH, window=5, options=options)
    assert hlen == 32 and buf[:10] == b"\xaa" * 10 and buf[42:] == b"\xaa" * 38
    assert buf[10 + CHECKSUM_OFFSET : 10 + CHECKSUM_OFFSET + 2] == b"\0\0"
    assert write_header(buf, 0, src_port=1, dst_port=2, seq=3, ack=4, flags=ACK, window=5) == 20
    assert buf[12] == 0x50
    with pytest.raises(ValueError):
        write_header(buf, 0, src_port=1, dst_port=2, seq=3, ack=4, flags=ACK, window=5, options=b"\1\1\1")
    with pytest.raises(ValueError):
        write_header(buf, 0, src_port=1, dst_port=2, seq=3, ack=4, flags=ACK, window=5, options=b"\1" * 44)
    with pytest.raises(ValueError):
        write_header(buf, 0, src_port=1, dst_port=2, seq=1 << 32, ack=4, flags=ACK, window=5)

    # The caller fills the checksum from the pseudo-header sum; dpkt agrees on the value.
    src, dst = 0x0A000001, 0x0A000002
    seg = bytearray(40)
    hlen = write_header(
        seg,
        0,
        src_port=40000,
        dst_port=80,
        seq=9,
        ack=10,
        flags=SYN,
        window=64240,
        options=encode_options(mss=1460, sack_permitted=True, timestamps=(1, 0), wscale=7),
    )
    seg = seg[:hlen] + b"data!"
    csum = ~ones_sum(seg, pseudo_header_sum(src, dst, 6, len(seg))) & 0xFFFF
    ip = dpkt.ip.IP(src=src.to_bytes(4, "big"), dst=dst.to_bytes(4, "big"), p=6, data=dpkt.tcp.TCP(bytes(seg)))
    ip.len = 20 + len(seg)
    assert dpkt.tcp.TCP(bytes(ip)[20:]).sum == csum


@pytest.mark.parametrize(
    "field",
    [
        {"src_port": 1 << 16}, {"dst_port": -1}, {"seq": -1}, {"ack": 1 << 32}, {"flags": 256},
        {"window": 1 << 16}, {"urgent": -5}, {"ts_val": 1 << 32}, {"ts_val": 0, "ts_ecr": 1 << 32},
    ],
)  # fmt: skip
def test_write_header_rejects_out_of_range_fields_before_writing(field: dict) -> None:
    buf = bytearray(b"\xaa" * 64)
    fields = {"src_port": 1, "dst_port": 2, "seq": 3, "ack": 4, "flags": ACK, "window": 5, **field}
    with pytest.raises(ValueError):
        write_header(buf, 4, **fields)
    assert buf == b"\xaa" * 64


def test_write_header_never_writes_past_the_buffer() -> None:
    buf = bytearray(b"\xaa" * 40)
    for off, kw in ((21, {}), (-1, {}), (9, {"ts_val": 1}), (0, {"ts_val": 1, "options": b"\1" * 12})):
        with pytest.raises(ValueError):
            write_header(buf, off, 1, 2, 3, 4, ACK, 5, **kw)
    assert buf == b"\xaa" * 40
    assert write_header(buf, 20, 1, 2, 3, 4, ACK, 5) == 20  # exactly fits
    assert write_header(buf, 8, 1, 2, 3, 4, ACK, 5, ts_val=1) == 32


@settings(max_examples=300)
@given(
    st.tuples(u16, u16, u32, u32, st.integers(0, 255), u16, u16), u32, u32, st.lists(st.tuples(u32, u32), max_size=3)
)
def test_timestamps_written_in_place_match_encode_options(fields: tuple, val: int, ecr: int, sacks: list) -> None:
    """``ts_val`` writes the bytes encode_options(timestamps=...) would, SACK blocks after them."""
    sport, dport, seq, ack, flags, win, urp = fields
    ours = bytearray(b"\xaa" * 80)
    hlen = write_header(ours, 3, sport, dport, seq, ack, flags, win, encode_options(sack_blocks=sacks), urp, val, ecr)
    theirs = bytearray(b"\xaa" * 80)
    both = encode_options(timestamps=(val, ecr), sack_blocks=sacks)
    assert write_header(theirs, 3, sport, dport, seq, ack, flags, win, both, urp) == hlen
    assert ours == theirs and hlen == 20 + TS_OPTION_LEN + (12 + 8 * (len(sacks) - 1) if sacks else 0)
    seg = parsed(bytes(ours[3 : 3 + hlen]))
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window, seg.urgent) == fields
    assert (seg.ts_val, seg.ts_ecr, seg.sack_blocks, seg.bad_options) == (val, ecr, tuple(sacks), False)


def test_parse_bounds_views_and_empty_payload() -> None:
    data = raw(bytes([OPT_NOP, OPT_NOP]) + TS, b"payload", lead=5)
    with pytest.raises(ValueError):
        parse(data, 5, len(data) + 1)  # never a read past the buffer
    with pytest.raises(ValueError):
        parse(data, -1, 30)
    # A memoryview that starts inside its buffer: offsets are the view's.
    mv = memoryview(bytearray(b"\0" * 3 + data))[3:]
    seg = parse(mv, 5, len(data))
    assert isinstance(seg, Segment) and (seg.seq, seg.ts_val, bytes(seg.payload)) == (1000, 77, b"payload")
    # The receive path's call: the bytes and a view of them that the payload slices.
    buf = bytearray(data)
    view = memoryview(buf)
    seg = parse(buf, 5, len(buf), view)
    assert isinstance(seg, Segment) and seg.payload.obj is buf and bytes(seg.payload) == b"payload"
    ack_only = parse(buf, 5, 5 + 32, view)
    assert isinstance(ack_only, Segment) and ack_only.payload == b"" and ack_only.seg_len == 0


# --- malformed options --------------------------------------------------------------------------

MSS = bytes([OPT_MSS, 4, 0x05, 0xB4])
TS = bytes([OPT_TIMESTAMP, 10]) + struct.pack("!II", 77, 88)


@pytest.mark.parametrize("bad_len", [0, 1])
def test_length_below_two_stops_parsing(bad_len: int) -> None:
    seg = parsed(raw(MSS + bytes([99, bad_len]) + TS, b"pay"))
    assert seg.mss == 1460 and seg.ts_val is None and seg.bad_options
    assert bytes(seg.payload) == b"pay"
    # A zero length on a known kind too (would loop forever if taken as "advance by length").
    seg = parsed(raw(bytes([OPT_TIMESTAMP, 0]) + MSS))
    assert seg.bad_options and seg.mss is None and seg.ts_val is None


def test_option_running_past_header_end() -> None:
    # MSS, then a TS whose length reaches past the data offset: stop, mark, keep the MSS.
    seg = parsed(raw(MSS + bytes([OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10, 0, 0]), b"\0" * 8))
    assert seg.header_len == 32 and seg.mss == 1460 and seg.ts_val is None and seg.bad_options
    # An unknown kind too long for the header.
    seg = parsed(raw(bytes([200, 30, 1, 2])))
    assert seg.bad_options
    # A kind byte as the very last header byte, no room for its length byte.
    seg = parsed(raw(bytes([OPT_NOP, OPT_NOP, OPT_NOP, OPT_MSS])))
    assert seg.bad_options and seg.mss is None


def test_options_beyond_data_offset_are_payload() -> None:
    opts_like = bytes([OPT_NOP, OPT_NOP]) + TS
    seg = parsed(raw(b"", opts_like))
    assert seg.header_len == 20 and seg.ts_val is None and not seg.bad_options
    assert bytes(seg.payload) == opts_like
    # Header of 24 with an MSS; the TS that follows it is payload.
    seg = parsed(raw(MSS, opts_like))
    assert seg.mss == 1460 and seg.ts_val is None and bytes(seg.payload) == opts_like


def test_eol_ends_list_without_error() -> None:
    seg = parsed(raw(MSS + bytes([OPT_EOL, OPT_WSCALE, 3, 7, OPT_NOP])))
    assert seg.mss == 1460 and seg.wscale is None and not seg.bad_options


def test_unknown_kinds_skipped_by_length() -> None:
    md5 = bytes([19, 18]) + b"\x42" * 16
    seg = parsed(raw(md5 + MSS + bytes([OPT_NOP, OPT_NOP]) + TS))
    assert seg.mss == 1460 and (seg.ts_val, seg.ts_ecr) == (77, 88) and not seg.bad_options
    seg = parsed(raw(bytes([254, 2, OPT_NOP, OPT_NOP]) + MSS))
    assert seg.mss == 1460 and not seg.bad_options


@pytest.mark.parametrize(
    ("option", "field"),
    [
        (bytes([OPT_MSS, 3, 5]), "mss"),
        (bytes([OPT_MSS, 5, 5, 0xB4, 0]), "mss"),
        (bytes([OPT_WSCALE, 2]), "wscale"),
        (bytes([OPT_WSCALE, 4, 7, 0]), "wscale"),
        (bytes([OPT_SACK_PERMITTED, 3, 0]), "sack_permitted"),
        (bytes([OPT_TIMESTAMP, 8]) + b"\1" * 6, "ts_val"),
        (bytes([OPT_TIMESTAMP, 12]) + b"\1" * 10, "ts_val"),
        (bytes([OPT_SACK, 2]), "sack_blocks"),
        (bytes([OPT_SACK, 9]) + b"\1" * 7, "sack_blocks"),
        (bytes([OPT_SACK, 11]) + b"\1" * 9, "sack_blocks"),
        (bytes([OPT_SACK, 14]) + b"\1" * 12, "sack_blocks"),
    ],
)
def test_wrong_fixed_length_ignored(option: bytes, field: str) -> None:
    # A well-formed sentinel option after the bad one shows that parsing went on past it.
    sentinel, sentinel_field, value = (
        (bytes([OPT_NOP, OPT_WSCALE, 3, 5]), "wscale", 5) if field == "mss" else (MSS, "mss", 1460)
    )
    seg = parsed(raw(option + bytes([OPT_NOP] * (-(len(option)) % 4)) + sentinel, b"p"))
    assert getattr(seg, field) in (None, False, ())
    assert getattr(seg, sentinel_field) == value
    assert not seg.bad_options and bytes(seg.payload) == b"p"


@pytest.mark.parametrize(("shift", "expect"), [(0, 0), (7, 7), (14, 14), (15, 14), (255, 14)])
def test_window_scale_clamped(shift: int, expect: int) -> None:
    assert parsed(raw(bytes([OPT_NOP, OPT_WSCALE, 3, shift]))).wscale == expect


def test_mss_and_wscale_parsed_on_any_segment() -> None:
    seg = parsed(raw(MSS + bytes([OPT_NOP, OPT_WSCALE, 3, 2]), flags=ACK))
    assert seg.mss == 1460 and seg.wscale == 2  # the connection decides whether they count


def test_timestamp_fast_path_and_its_fallback() -> None:
    fast = parsed(raw(bytes([OPT_NOP, OPT_NOP]) + TS))
    assert (fast.ts_val, fast.ts_ecr, fast.header_len) == (77, 88, 32)
    # Same 12 bytes, other arrangements, through the general loop.
    for opts in (TS + bytes([OPT_NOP, OPT_NOP]), TS + bytes([OPT_EOL, 0]), bytes([OPT_NOP]) + TS + bytes([OPT_NOP])):
        seg = parsed(raw(opts))
        assert (seg.ts_val, seg.ts_ecr) == (77, 88) and not seg.bad_options
    seg = parsed(raw(MSS + bytes([OPT_NOP, OPT_WSCALE, 3, 5]) + bytes([OPT_SACK_PERMITTED, 2, OPT_NOP, OPT_NOP])))
    assert (seg.mss, seg.wscale, seg.sack_permitted, seg.ts_val) == (1460, 5, True, None)


def test_repeated_option_last_wins() -> None:
    seg = parsed(raw(MSS + bytes([OPT_MSS, 4, 0x02, 0x18])))
    assert seg.mss == 536


# --- fuzz ---------------------------------------------------------------------------------------


@settings(max_examples=1000)
@given(st.binary(max_size=80), st.integers(0, 8), st.integers(0, 8))
def test_random_bytes_never_raise(data: bytes, off: int, cut: int) -> None:
    end = max(off, len(data) - cut)
    for buf in (data, bytearray(data), memoryview(data)):
        seg = parse(buf, off, end)
        if isinstance(seg, str):
            assert seg in ("tcp_truncated", "tcp_bad_offset")
            continue
        assert 20 <= seg.header_len <= end - off and seg.header_len % 4 == 0
        assert len(seg.payload) == end - off - seg.header_len
        assert seg.wscale is None or 0 <= seg.wscale <= 14
        assert all(len(b) == 2 for b in seg.sack_blocks) and len(seg.sack_blocks) <= 4
        assert seg.seg_len >= len(seg.payload)


@settings(max_examples=1000)
@given(st.integers(5, 15), st.binary(min_size=40, max_size=40), st.binary(max_size=20))
def test_random_options_never_raise_and_stay_in_header(doff: int, options: bytes, payload: bytes) -> None:
    hlen = doff * 4
    data = struct.pack("!HHIIBBHHH", 1, 2, 3, 4, doff << 4, SYN, 5, 0, 0) + options[: hlen - 20] + payload
    seg = parsed(data)
    assert seg.header_len == hlen and bytes(seg.payload) == payload
    # Whatever the header said, bytes past it never change the result.
    tampered = parsed(data[:hlen] + bytes(b ^ 0xFF for b in payload))
    for name in ("mss", "wscale", "sack_permitted", "sack_blocks", "ts_val", "ts_ecr", "bad_options"):
        assert getattr(seg, name) == getattr(tampered, name)
