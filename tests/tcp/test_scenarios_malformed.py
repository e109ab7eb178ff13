"""Scenarios: malformed TCP headers and options from a hostile peer — option lengths 0, 1 and
overrunning, wrong lengths for known kinds, repeated options, window scale above 14 (RFC 7323
§2.3), MSS 0 and 1..48 (raised to TcpConfig.min_mss), data offsets below 5 or beyond the segment
(RFC 9293 §3.1), truncated headers. Every one is a counted drop or is accepted with what could be
read — never a crash and never a stall."""

from __future__ import annotations

import struct

import pytest

from aiostack.tcp.connection import Connection
from scenario import Scenario, State, inject_frame, tcp_frame

MSS = 1448


def syn_and_accept(h: Scenario, syn_options: list[object] | bytes, synack: dict[str, object]) -> Connection:
    """listen; a SYN with ``syn_options``; our SYN-ACK with exactly the ``synack`` options;
    complete the handshake; return the connection."""
    h.listen()
    h.inject("S", seq=0, options=syn_options)
    h.expect("S.", seq=0, ack=1, options=synack)
    h.inject(".", seq=1, ack=1, ts=False)
    return h.accept()


@pytest.mark.parametrize("length", [0, 1])
def test_option_length_below_two_stops_parsing_and_is_counted(length: int) -> None:
    """Kind 99 with length 0 or 1 cannot be skipped: parsing stops (Linux's tcp_parse_options);
    the MSS before it counts, the WS after it does not; the SYN is accepted and the malformed
    options are counted (tcp_bad_options)."""
    h = Scenario()
    conn = syn_and_accept(h, [("mss", 1200), ("raw", bytes([99, length])), "nop", ("wscale", 7)], {"mss": 1460})
    assert conn.peer_mss == 1200 and not conn.wscale_ok
    assert h.tcp.stats["tcp_bad_options"] == 1


@pytest.mark.parametrize("length", [5, 6, 40, 255])
def test_option_length_overrunning_the_header_stops_parsing(length: int) -> None:
    """An unknown option whose length runs past the data offset: parsing stops there, the rest
    is ignored, the SYN accepted, the event counted."""
    h = Scenario()
    opts = [("mss", 1300), "nop", "nop", "sack_perm", ("raw", bytes([77, length]))]
    conn = syn_and_accept(h, opts, {"mss": 1460, "sack_perm": True})
    assert conn.peer_mss == 1300 and conn.sack_ok
    assert h.tcp.stats["tcp_bad_options"] == 1


def test_kind_byte_without_room_for_its_length() -> None:
    """The last byte of the option space is a kind (TS) with no length byte: malformed, counted;
    what came before (MSS) counts."""
    h = Scenario()
    conn = syn_and_accept(h, [("mss", 1100), "nop", "nop", "nop", ("raw", b"\x08")], {"mss": 1460})
    assert conn.peer_mss == 1100 and not conn.ts_ok
    assert h.tcp.stats["tcp_bad_options"] == 1


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"\x02\x03\x05", "mss"),
        (b"\x02\x06\x05\xb4\x00\x00", "mss"),
        (b"\x03\x04\x07\x00", "wscale"),
        (b"\x03\x02", "wscale"),
        (b"\x04\x03\x00", "sack_perm"),
        (b"\x08\x08\x00\x00\x00\x01\x00\x00", "ts"),
        (b"\x08\x0c\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", "ts"),
    ],
    ids=["mss-len3", "mss-len6", "ws-len4", "ws-len2", "sackok-len3", "ts-len8", "ts-len12"],
)
def test_known_option_with_wrong_length_is_ignored(raw: bytes, what: str) -> None:
    """A known kind with the wrong length is skipped by its length and otherwise ignored: the
    option is not offered back, MSS falls back to 536 (RFC 9293 §3.7.1) when it was the MSS."""
    h = Scenario()
    conn = syn_and_accept(h, [("raw", raw)], {"mss": 1460})
    assert not (conn.wscale_ok or conn.sack_ok or conn.ts_ok)
    if what == "mss":
        assert conn.peer_mss == 536


def test_repeated_mss_last_one_wins() -> None:
    """Two MSS options: the later overwrites the earlier (as Linux); no crash, no double count."""
    h = Scenario()
    conn = syn_and_accept(h, [("mss", 1000), ("mss", 1200)], {"mss": 1460})
    assert conn.peer_mss == 1200


def test_repeated_wscale_last_one_wins() -> None:
    """Two window scale options (3 then 9): 9 is used."""
    h = Scenario()
    conn = syn_and_accept(h, ["nop", ("wscale", 3), "nop", ("wscale", 9)], {"mss": 1460, "wscale": 5})
    assert conn.snd_wscale == 9


def test_repeated_timestamps_last_one_wins() -> None:
    """Two TS options in a SYN: the second TSval becomes TS.Recent and is echoed."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options=["nop", "nop", ("ts", 111, 0), "nop", "nop", ("ts", 222, 0)])
    synack = h.expect("S.", seq=0, ack=1)
    assert synack.ts is not None and synack.ts[1] == 222


@pytest.mark.parametrize("shift", [14, 15, 100, 255])
def test_window_scale_above_14_is_used_as_14(shift: int) -> None:
    """RFC 7323 §2.3: "If a Window Scale option is received with a shift.cnt value larger than
    14, the TCP SHOULD log the error but MUST use 14 instead" — for every value up to 255."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 1460, "wscale": shift}, win=3)
    assert conn.snd_wscale == 14 and conn.snd_wnd == 3 << 14


@pytest.mark.parametrize("mss", [0, 1, 8, 48, 215])
def test_tiny_mss_is_raised_to_the_floor(mss: int) -> None:
    """MSS 0 and 1..48 (CVE-2019-11479's tiny-MSS resource attack) and anything below
    TcpConfig.min_mss (216) are raised to it: segments of 216 bytes, never of 0, 1 or 8."""
    h = Scenario()
    conn = h.passive_open(options={"mss": mss})
    assert conn.snd_mss == 216 and conn.stats["tcp_mss_clamped_to_floor"] == 1
    h.send(b"m" * 1000)
    h.expect(".", seq=1, payload_len=216)
    h.expect(".", seq=217, payload_len=216)


def test_mss_at_the_floor_is_not_counted() -> None:
    """MSS 216 exactly: used as is and not counted as clamped."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 216})
    assert conn.snd_mss == 216 and conn.stats["tcp_mss_clamped_to_floor"] == 0


def test_huge_mss_is_bounded_by_our_mtu() -> None:
    """MSS 65535 from the peer: segments are still cut to what our interface's MTU carries
    (1500 − 40 = 1460 bytes without options)."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 65535})
    assert conn.snd_mss == 1460
    h.send(b"M" * 3000)
    h.expect(".", seq=1, payload_len=1460)


@pytest.mark.parametrize("doff", [0, 1, 4])
def test_data_offset_below_five_is_dropped(doff: int) -> None:
    """RFC 9293 §3.1: the data offset counts the 20-byte header; below 5 words the header is
    unusable: dropped before any state (tcp_bad_offset), nothing sent, the connection unharmed."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"payload-bytes", doff=doff)
    h.expect_nothing()
    assert h.tcp.drops["tcp_bad_offset"] == 1 and conn.state == State.ESTABLISHED
    h.inject("P.", seq=1, ack=1, payload=b"real")
    assert h.recv() == b"real"


@pytest.mark.parametrize("doff", [6, 15])
def test_data_offset_beyond_the_segment_is_dropped(doff: int) -> None:
    """A data offset pointing past the end of the segment (a bare 20-byte header claiming 24 or
    60 bytes): dropped and counted (tcp_bad_offset), to a listener as to a connection."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, doff=doff)
    h.expect_nothing()
    assert not h.tcp.connections and h.tcp.drops["tcp_bad_offset"] == 1


def test_data_offset_beyond_the_segment_to_a_closed_port_gets_no_reset() -> None:
    """An unparsable header is never answered — not even with a RST (its ports are not to be
    trusted enough to build one from)."""
    h = Scenario()
    h.inject("S", seq=0, doff=15)
    h.expect_nothing()
    assert h.tcp.drops["tcp_bad_offset"] == 1


def test_truncated_header_is_dropped() -> None:
    """A TCP header of 19 bytes (the IP total length says so): tcp_truncated, nothing sent."""
    h = Scenario()
    h.listen()
    full = h.frame("S", seq=0)[34:]
    inject_frame(h, tcp_frame(h, full[:19]))
    h.expect_nothing()
    assert h.tcp.drops["tcp_truncated"] == 1 and not h.tcp.connections


def test_forty_bytes_of_nops_then_nothing() -> None:
    """The largest option space (40 bytes) filled with NOPs is well-formed and offers nothing:
    MSS 536 and no options in use."""
    h = Scenario()
    conn = syn_and_accept(h, bytes([1]) * 40, {"mss": 1460})
    assert conn.peer_mss == 536 and h.tcp.stats["tcp_bad_options"] == 0


def test_garbage_after_eol_is_ignored() -> None:
    """Bytes after EOL (kind 0) are padding whatever they hold: not parsed, not counted."""
    h = Scenario()
    conn = syn_and_accept(h, [("mss", 1400), "eol", ("raw", b"\x03\x03\x0e\xff\xff\x00\x00")], {"mss": 1460})
    assert conn.peer_mss == 1400 and not conn.wscale_ok and h.tcp.stats["tcp_bad_options"] == 0


def test_malformed_timestamp_on_an_established_segment() -> None:
    """An established segment with a TS option of length 11 in 10 bytes of option space: parsing
    stops there, the segment
    carries no usable TS — it is accepted (RFC 7323 §3.2's SHOULD-drop is relaxed, see the PAWS
    scenarios), its data delivered, and the event counted."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, options=["nop", "nop", ("raw", b"\x08\x0b" + bytes(8))], payload=b"data")
    assert h.recv() == b"data" and h.tcp.stats["tcp_bad_options"] == 1


def test_sack_option_with_zero_blocks_is_ignored() -> None:
    """A SACK option of length 2 (no blocks): ignored; the ACK still moves SND.UNA."""
    h = Scenario()
    conn = h.passive_open()
    h.send(b"s" * 100)
    h.expect(seq=1, payload_len=100)
    h.inject(".", seq=1, ack=101, options=[("ts", h.peer_ts(), h.last_tsval), "nop", "nop", ("raw", b"\x05\x02")])
    assert conn.snd_una == h.iss + 101


def test_every_option_kind_once_with_random_lengths_never_crashes() -> None:
    """A SYN for each option kind 0..255 with a length byte of kind*7 % 41: the listener answers
    each well-formed SYN (a SYN-ACK from the SYN queue) and counts each malformed one; the stack
    is consistent afterwards (one entry per SYN-ACK sent)."""
    h = Scenario(backlog=512)
    h.listen()
    for kind in range(256):
        body = bytes([kind, (kind * 7) % 41]) + bytes(range(6))
        h.inject("S", seq=0, options=body[:8], sport=10_000 + kind)
    sent = h.sent()
    assert all(out.flags == "S." for out in sent)
    assert len(sent) == len(h.tcp.connections)
    assert len(sent) + h.tcp.drops["tcp_bad_offset"] == 256


def test_option_space_with_a_data_offset_in_the_middle_of_an_option() -> None:
    """doff cuts the MSS option in half (24-byte header, MSS option starting at byte 22): the
    visible half is malformed (counted), the other half is payload — of a SYN, so not taken."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options=["nop", "nop", ("mss", 1000)], doff=6)
    h.expect("S.", seq=0, ack=1, options={"mss": 1460})
    assert h.tcp.stats["tcp_bad_options"] == 1


def test_header_fields_at_their_extremes() -> None:
    """A data segment with every header field at an extreme (window 0xFFFF, urgent pointer
    0xFFFF without URG, all reserved bits set): the reserved bits are ignored (RFC 9293 §3.1)
    and the data is delivered."""
    h = Scenario()
    h.passive_open()
    frame = bytearray(h.frame("P.", seq=1, ack=1, win=0xFFFF, urp=0xFFFF, payload=b"edge"))
    tcp = bytes(frame[34:])
    tcp = tcp[:12] + bytes([tcp[12] | 0x0F]) + tcp[13:]  # the reserved bits beside the offset
    inject_frame(h, tcp_frame(h, tcp))
    assert h.recv() == b"edge"
    assert struct.unpack("!H", tcp[18:20])[0] == 0xFFFF
