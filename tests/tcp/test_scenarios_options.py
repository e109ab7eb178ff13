"""Scenarios: option edge cases on the wire — unknown options (RFC 9293 §3.2: MUST be ignored),
malformed lengths, options past the data offset, window scale above 14 (RFC 7323 §2.3), an MSS
below the floor (TcpConfig.min_mss), options that count only on a SYN (RFC 9293 §3.7.1,
RFC 7323 §2.2)."""

from __future__ import annotations

from scenario import SYN_OPTIONS, Scenario, State, build_options

MSS = 1448


def test_unknown_options_are_ignored() -> None:
    """RFC 9293 §3.2: options we do not implement (kind 99, and kind 30 = MPTCP) are skipped
    by their length; the known ones around them still count."""
    h = Scenario()
    h.listen()
    opts = [("mss", 1400), ("raw", b"\x63\x06abcd"), "sack_perm", ("raw", b"\x1e\x04\x00\x00"), ("wscale", 6)]
    h.inject("S", seq=0, options=opts)
    h.expect("S.", ack=1, options={"mss": 1460, "sack_perm": True, "wscale": 5})
    h.inject(".", seq=1, ack=1, win=10)
    conn = h.accept()
    assert (conn.peer_mss, conn.snd_wscale, conn.sack_ok) == (1400, 6, True)
    assert conn.snd_wnd == 10 << 6


def test_zero_length_option_stops_parsing() -> None:
    """An option with length 0 (or 1) cannot be skipped: parsing stops there, as in Linux's
    tcp_parse_options; what came before counts, what follows is ignored, the SYN is accepted."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options=[("mss", 1200), ("raw", b"\x63\x00"), "sack_perm", "nop", ("wscale", 7)])
    h.expect("S.", ack=1, options={"mss": 1460})  # no SACK-permitted, no window scale
    h.inject(".", seq=1, ack=1)
    conn = h.accept()
    assert conn.peer_mss == 1200 and not conn.sack_ok and not conn.wscale_ok


def test_option_running_past_the_header_is_ignored() -> None:
    """A timestamp option whose length runs past the data offset is malformed: ignored (with
    everything after it), and the segment still accepted."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options=[("mss", 1460), "nop", "nop", ("raw", b"\x08\x0a\x00\x00")])
    h.expect("S.", ack=1, options={"mss": 1460})
    h.inject(".", seq=1, ack=1)
    assert not h.accept().ts_ok


def test_options_beyond_data_offset_are_payload() -> None:
    """Bytes after the data offset are data, even if they look like options (RFC 9293 §3.1)."""
    h = Scenario()
    conn = h.passive_open()
    opts = build_options({"ts": (h.peer_ts(), h.last_tsval)})
    h.inject("P.", seq=1, ack=1, options=opts, payload=b"tail", doff=5)
    assert h.recv() == opts + b"tail"
    assert conn.rcvbuf is not None and conn.rcvbuf.rcv_nxt == h.peer_isn + 1 + len(opts) + 4


def test_syn_with_options_beyond_data_offset() -> None:
    """A SYN whose data offset excludes its options offers none: the SYN-ACK has only our MSS;
    the bytes past the offset are SYN data, which is not acknowledged (we keep none)."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options=SYN_OPTIONS, doff=5)
    h.expect("S.", ack=1, options={"mss": 1460})
    h.inject(".", seq=1, ack=1)
    conn = h.accept()
    assert conn.snd_mss == 536 and not (conn.wscale_ok or conn.sack_ok or conn.ts_ok)


def test_window_scale_above_14_is_clamped() -> None:
    """RFC 7323 §2.3: a shift count above 14 is used as 14 (and may be logged)."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 1460, "wscale": 15}, win=1)
    assert conn.snd_wscale == 14 and conn.snd_wnd == 1 << 14


def test_mss_below_floor_is_raised_to_min_mss() -> None:
    """A tiny MSS would make us send floods of tiny segments: it is raised to TcpConfig.min_mss
    (216, FreeBSD's net.inet.tcp.minmss; Linux's tcp_min_snd_mss); the TS option is then taken
    out of that, leaving 204 bytes per segment."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 64, "ts": (0, 0)})
    assert conn.peer_mss == 216 and conn.snd_mss == 204
    assert conn.stats["tcp_mss_clamped_to_floor"] == 1
    h.send(b"m" * 500)
    h.expect(".", seq=1, payload_len=204)
    h.expect(".", seq=205, payload_len=204)
    h.expect_nothing()  # Nagle holds the 92-byte tail


def test_mss_floor_is_configurable() -> None:
    """TcpConfig.min_mss = 536: a 300-byte MSS is used as 536."""
    h = Scenario(min_mss=536)
    conn = h.passive_open(options={"mss": 300})
    assert conn.snd_mss == 536
    h.send(b"m" * 600)
    h.expect(".", seq=1, payload_len=536)


def test_mss_and_wscale_on_non_syn_segments_are_ignored() -> None:
    """RFC 9293 §3.7.1 (MSS only in SYNs) and RFC 7323 §2.2 (WS only in SYNs): the same options
    on an established connection's segments change nothing."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, win=100, options={"mss": 100, "wscale": 0, "ts": (h.peer_ts(), h.last_tsval)})
    assert conn.snd_mss == MSS and conn.snd_wscale == 7 and conn.snd_wnd == 100 << 7


def test_eol_ends_the_option_list() -> None:
    """Kind 0 (EOL) ends the list: options after it are not read."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options=[("mss", 1000), "eol", "nop", ("wscale", 7)])
    h.expect("S.", ack=1, options={"mss": 1460})
    h.inject(".", seq=1, ack=1)
    conn = h.accept()
    assert conn.peer_mss == 1000 and not conn.wscale_ok


def test_sack_option_with_bad_length_is_ignored() -> None:
    """A SACK option whose length is not 2 + 8n is skipped; the segment (an ACK) still counts."""
    h = Scenario()
    conn = h.passive_open()
    h.send(b"x" * 100)
    h.expect("P.", seq=1)
    h.inject(".", seq=1, ack=101, options=[("ts", h.peer_ts(), h.last_tsval), ("raw", b"\x05\x07\x00\x00\x00\x00\x00")])
    assert conn.snd_una == h.iss + 101 and conn.state == State.ESTABLISHED
