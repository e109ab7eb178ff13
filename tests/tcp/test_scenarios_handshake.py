"""Scenarios: the three-way handshake (RFC 9293 §3.5), option negotiation (RFC 9293 §3.7.1,
RFC 7323, RFC 2018), SYN and SYN-ACK retransmission (RFC 6298 §5, RFC 9293 §3.8.1), simultaneous
open, and resets and bad ACKs during the handshake (RFC 9293 §3.10.7.3)."""

from __future__ import annotations

import errno
import itertools

import pytest

from scenario import SYN_OPTIONS, Scenario, State

# Option kinds, to check layouts: Linux's tcp_options_write order.
MSS, NOP, WS, SACKOK, TS = 2, 1, 3, 4, 8


def test_passive_open_with_linux_options() -> None:
    """RFC 9293 §3.5 Figure 6: SYN, SYN-ACK, ACK; every option the peer offers is answered."""
    h = Scenario()
    lst = h.listen()
    h.inject("S", seq=0, win=65535, options=SYN_OPTIONS)
    synack = h.expect(
        "S.",
        seq=0,
        ack=1,
        win=65535,  # RFC 7323 §2.2: the window of a SYN segment is never scaled
        options={"mss": 1460, "sack_perm": True, "ts": (h.our_ts(), 5000), "wscale": 5},
        kinds=[MSS, SACKOK, TS, NOP, WS],  # RFC 7323 Appendix A layout, as Linux
    )
    assert synack.sport == 8080 and synack.dport == 50000
    assert lst.accept() is None  # SYN-RECEIVED: not acceptable yet
    h.inject(".", seq=1, ack=1, ts=(5001, synack.ts[0]))
    conn = h.accept()
    assert conn.state == State.ESTABLISHED
    assert (conn.snd_mss, conn.snd_wscale, conn.rcv_wscale) == (1448, 7, 5)
    assert conn.sack_ok and conn.ts_ok
    h.expect_nothing()  # nothing owed: the ACK carried no data


@pytest.mark.parametrize(
    ("mss", "ws", "sack", "ts"), list(itertools.product([False, True], repeat=4)), ids=lambda v: "+" if v else "-"
)
def test_passive_open_option_combinations(mss: bool, ws: bool, sack: bool, ts: bool) -> None:
    """Each option of the SYN on or off: the SYN-ACK offers WS, SACK-permitted and TS only if the
    peer did (RFC 7323 §1.3, §2.2, §3.2; RFC 2018 §2), always our MSS (RFC 9293 §3.7.1), and
    the connection then behaves accordingly."""
    offered: dict[str, object] = {}
    if mss:
        offered["mss"] = 1000
    if sack:
        offered["sack_perm"] = True
    if ts:
        offered["ts"] = (5000, 0)
    if ws:
        offered["wscale"] = 2
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, win=20000, options=offered)
    expected: dict[str, object] = {"mss": 1460}
    if ws:
        expected["wscale"] = 5
    if sack:
        expected["sack_perm"] = True
    if ts:
        expected["ts"] = (h.our_ts(), 5000)
    h.expect("S.", seq=0, ack=1, win=65535, options=expected)
    h.ts_auto = ts
    h.inject(".", seq=1, ack=1, win=5000)
    conn = h.accept()
    # RFC 9293 §3.7.1: no MSS option means 536; the TS option costs 12 bytes of each segment.
    assert conn.snd_mss == (1000 if mss else 536) - (12 if ts else 0)
    # RFC 7323 §2.3: the peer's window is shifted by its scale only if both sides sent WS.
    assert conn.snd_wnd == (5000 << 2 if ws else 5000)
    assert conn.sack_ok == sack and conn.ts_ok == ts
    h.send(b"x" * 3000)
    first = h.expect(".", seq=1, ack=1, payload_len=conn.snd_mss)
    assert ("ts" in first.options) == ts
    # Our window: 1 MiB >> 5 when we scale, else the largest unscaled field.
    assert first.win == (32768 if ws else 65535)


@pytest.mark.parametrize(
    ("mss", "ws", "sack", "ts"), list(itertools.product([False, True], repeat=4)), ids=lambda v: "+" if v else "-"
)
def test_active_open_option_combinations(mss: bool, ws: bool, sack: bool, ts: bool) -> None:
    """Our SYN offers everything; the SYN-ACK grants a subset, and only that subset is used."""
    h = Scenario()
    conn = h.connect()
    syn = h.expect(
        "S",
        seq=0,
        ack=0,
        win=65535,
        options={"mss": 1460, "sack_perm": True, "ts": (h.our_ts(), 0), "wscale": 5},
        kinds=[MSS, SACKOK, TS, NOP, WS],
    )
    granted: dict[str, object] = {}
    if mss:
        granted["mss"] = 1200
    if sack:
        granted["sack_perm"] = True
    if ts:
        granted["ts"] = (5000, syn.ts[0])
    if ws:
        granted["wscale"] = 3
    h.inject("S.", seq=0, ack=1, win=30000, options=granted)
    ack = h.expect(".", seq=1, ack=1, win=32768 if ws else 65535)
    assert ack.options == ({"ts": (h.our_ts(), 5000)} if ts else {})
    assert conn.state == State.ESTABLISHED
    assert conn.snd_mss == (1200 if mss else 536) - (12 if ts else 0)
    assert conn.snd_wnd == 30000  # the SYN-ACK's window is not scaled (RFC 7323 §2.2)
    assert (conn.sack_ok, conn.ts_ok, conn.wscale_ok) == (sack, ts, ws)
    assert conn.rcv_wscale == (5 if ws else 0)


def test_active_open_with_data_on_first_ack() -> None:
    """Data queued in SYN-SENT goes out right after the handshake's ACK (RFC 9293 §3.10.2)."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    assert conn.send(b"early", h.now) == 5
    h.expect_nothing()  # nothing may be sent before the SYN is acknowledged
    h.inject("S.", seq=0, ack=1, options={"mss": 1460})
    h.expect(".", seq=1, ack=1, payload_len=0)
    h.expect("P.", seq=1, ack=1, payload=b"early")


def test_syn_retransmissions_back_off_then_etimedout() -> None:
    """RFC 6298 §5.5 and RFC 9293 §3.8.1: an unanswered SYN is resent after 1, 2, 4, 8, 16, 32 s
    (initial RTO 1 s, doubling); after tcp_syn_retries (6) connect fails with ETIMEDOUT."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    for delay in (1, 2, 4, 8, 16, 32):
        h.expect_within(delay + 1, "S", seq=0, after=delay)
    h.expect_silence(63.9)
    h.advance(0.1)
    assert conn.state == State.CLOSED and conn.error == errno.ETIMEDOUT
    assert h.t == pytest.approx(127.0)
    h.expect_nothing()  # no RST: the peer never answered (SYN-SENT has nothing to reset)
    assert not h.tcp.connections


def test_synack_retransmissions_back_off_then_give_up() -> None:
    """A half-open passive connection resends its SYN-ACK after 1, 2, 4, 8, 16 s and is dropped
    after tcp_synack_retries (5) with a reset; the listener stays."""
    h = Scenario()
    lst = h.listen()
    h.inject("S", seq=0, options=SYN_OPTIONS)
    h.expect("S.", seq=0, ack=1)
    for delay in (1, 2, 4, 8, 16):
        h.expect_within(delay + 1, "S.", seq=0, ack=1, after=delay)
    h.expect_within(33, "R.", seq=1, ack=1, after=32)
    assert not h.tcp.connections and not lst.syn_queue
    h.inject("S", seq=100, options=SYN_OPTIONS)  # the port still listens
    h.expect("S.", seq=0, ack=101)


def test_retransmitted_syn_gets_synack_again() -> None:
    """Our SYN-ACK was lost and the peer resends its SYN: answer with the same SYN-ACK at once
    (same ISS: RFC 9293 §3.10.7.4, a duplicate SYN in SYN-RECEIVED)."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject("S", seq=0, options={"mss": 1460}, at=0.5)
    h.expect("S.", seq=0, ack=1, options={"mss": 1460})
    h.inject(".", seq=1, ack=1)
    assert h.accept().state == State.ESTABLISHED


def test_simultaneous_open() -> None:
    """RFC 9293 §3.5 Figure 8: both ends send SYNs that cross. SYN-SENT answers the peer's SYN
    with SYN-ACK (same ISS) and moves to SYN-RECEIVED; the peer's SYN-ACK then completes the
    handshake at once (line 6), with no extra ACK."""
    h = Scenario()
    conn = h.connect()
    syn = h.expect("S", seq=0)
    h.inject("S", seq=0, win=60000, options={"mss": 1460, "ts": (5000, 0), "wscale": 7}, at=0.01)
    h.expect("S.", seq=0, ack=1, options={"mss": 1460, "ts": (h.our_ts(), 5000), "wscale": 5})
    assert conn.state == State.SYN_RECEIVED
    # The peer answers our SYN with its SYN-ACK (line 6): SEQ = its ISN, ACK = our ISS + 1.
    h.inject("S.", seq=0, ack=1, win=60000, options={"mss": 1460, "ts": (5020, syn.ts[0]), "wscale": 7}, at=0.02)
    assert conn.state == State.ESTABLISHED
    assert conn.snd_wnd == 60000  # a SYN's window is not scaled (RFC 7323 §2.2)
    h.expect_nothing()
    h.ts_auto = True
    h.send(b"hello")
    h.expect("P.", seq=1, ack=1, payload=b"hello")
    h.inject(".", seq=1, ack=6, payload=b"world")
    assert h.recv() == b"world"


def test_handshake_rtt_sample_sets_rto() -> None:
    """RFC 6298 §2.2: the SYN-ACK's round trip (here 250 ms, measured from the echoed timestamp,
    RFC 7323 §4) is the first sample: RTO = SRTT + 4·RTTVAR = 0.25 + 4·0.125 = 0.75 s.

    (Since RACK-TLP: the one segment first draws a tail loss probe after RFC 8985 §7.2's
    PTO = 2·SRTT + WCDelAckT = 0.7 s, which comes before the RTO; the RTO then runs from the
    probe.)"""
    h = Scenario()
    conn = h.passive_open(rtt=0.25)
    assert conn.rtt.srtt == pytest.approx(0.25)
    assert conn.rtt.rto == pytest.approx(0.75)
    h.send(b"x" * 100)
    h.expect("P.", seq=1, payload_len=100)
    h.expect_within(1.0, "P.", seq=1, payload_len=100, after=0.7)
    h.expect_within(1.0, "P.", seq=1, payload_len=100, after=0.75)


def test_synack_with_bad_ack_in_syn_sent_gets_reset() -> None:
    """RFC 9293 §3.10.7.3: in SYN-SENT, an ACK outside ISS < SEG.ACK =< SND.NXT gets
    <SEQ=SEG.ACK><CTL=RST> and is dropped; the real SYN-ACK still completes the handshake."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.inject("S.", seq=0, ack=1000, options={"mss": 1460})
    h.expect("R", seq=1000, ack=0, win=0)
    assert conn.state == State.SYN_SENT
    h.inject("S.", seq=0, ack=0, options={"mss": 1460})  # SEG.ACK = ISS: not acceptable either
    h.expect("R", seq=0)
    h.inject("S.", seq=0, ack=1, options={"mss": 1460})
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED


def test_rst_in_syn_sent_with_acceptable_ack_refuses() -> None:
    """RFC 9293 §3.10.7.3: a RST whose ACK acknowledges our SYN means "connection refused"."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.inject("R.", seq=0, ack=1)
    assert conn.state == State.CLOSED
    with pytest.raises(ConnectionRefusedError):
        conn.raise_error()
    h.expect_nothing()
    assert not h.tcp.connections


@pytest.mark.parametrize(("flags", "ack"), [("R.", 5), ("R.", 0), ("R", None)])
def test_rst_in_syn_sent_with_bad_or_no_ack_is_ignored(flags: str, ack: int | None) -> None:
    """RFC 9293 §3.10.7.3: a RST with an unacceptable ACK, or without ACK (RFC 5961 §3.2's
    reading for SYN-SENT: it cannot be verified), is dropped; the SYN is retried as usual."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.inject(flags, seq=0, ack=ack)
    assert conn.state == State.SYN_SENT
    h.expect_nothing()  # never a reset in reply to a reset
    h.expect_within(1.5, "S", seq=0, after=1.0)


def test_bad_ack_for_synack_gets_reset() -> None:
    """RFC 9293 §3.10.7.4 fifth (SYN-RECEIVED): an ACK not acknowledging our SYN gets
    <SEQ=SEG.ACK><CTL=RST>; the half-open connection stays and the right ACK completes it."""
    h = Scenario()
    lst = h.listen()
    h.inject("S", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=77)
    h.expect("R", seq=77)
    assert lst.accept() is None
    h.inject(".", seq=1, ack=1)
    assert h.accept().state == State.ESTABLISHED


def test_syn_window_is_unscaled_later_windows_scaled() -> None:
    """RFC 7323 §2.2-§2.3: the window in a SYN is never scaled; from the handshake's ACK on, the
    peer's windows are shifted by its scale (7 here)."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, win=1000, options={"mss": 1460, "wscale": 7})
    h.expect("S.", seq=0, ack=1)
    conn = h.tcp.connections[next(iter(h.tcp.connections))]
    assert conn.snd_wnd == 1000
    h.inject(".", seq=1, ack=1, win=1000)
    assert conn.snd_wnd == 128000


def test_rst_in_syn_received_returns_to_listen() -> None:
    """RFC 9293 §3.10.7.4 second: a RST in SYN-RECEIVED of a passive open drops the half-open
    connection and the listener carries on (nothing for accept, no error anywhere)."""
    h = Scenario()
    lst = h.listen()
    h.inject("S", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject("R", seq=1)
    assert not h.tcp.connections and not lst.syn_queue and lst.accept() is None
    h.expect_silence(5)  # no more SYN-ACK retransmissions
    h.inject("S", seq=500, options={"mss": 1460})
    h.expect("S.", seq=0, ack=501)


def test_handshake_ack_carrying_data() -> None:
    """The third segment of the handshake may carry data (RFC 9293 §3.10.7.4): it is delivered
    and acknowledged by the delayed-ACK timer."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject("P.", seq=1, ack=1, payload=b"GET / HTTP/1.0\r\n\r\n")
    conn = h.accept()
    assert conn.readable
    h.expect_within(0.5, ".", seq=1, ack=19, after=0.04)
    assert h.recv(100) == b"GET / HTTP/1.0\r\n\r\n"


def test_passive_open_without_any_option() -> None:
    """A SYN with no options at all (RFC 9293 §3.7.1: MSS 536 assumed): we still announce our MSS
    and send data in 536-byte segments with no options."""
    h = Scenario()
    conn = h.passive_open(options={})
    h.send(b"y" * 1000)
    h.expect(".", seq=1, payload_len=536, options={})
    h.expect_nothing()  # Nagle: the 464-byte rest waits for the ACK (RFC 9293 §3.7.4)
    h.inject(".", seq=1, ack=537)
    h.expect("P.", seq=537, payload_len=464, options={})
    assert conn.snd_mss == 536


def test_syn_to_listener_with_ack_flag_gets_reset() -> None:
    """RFC 9293 §3.10.7.2: in LISTEN, any ACK is bad (no cookie was sent): <SEQ=SEG.ACK><CTL=RST>;
    a bare RST is ignored; a segment without SYN is dropped."""
    h = Scenario()
    h.listen()
    h.inject("S.", seq=0, ack=42, options={"mss": 1460})
    h.expect("R", seq=42)
    h.inject("R", seq=0)
    h.inject("P", seq=1, payload=b"data")
    h.expect_nothing()
    assert not h.tcp.connections


def test_connect_timestamps_echo() -> None:
    """RFC 7323 §3.2-§4.3: our segments echo the peer's latest TSval (TS.Recent), and our TSval
    is our clock; the peer's ACK of our SYN-ACK echoes ours."""
    h = Scenario()
    h.active_open(rtt=0.03)
    h.send(b"a")
    h.expect("P.", payload=b"a", ts=(h.our_ts(), 5030))
    h.inject(".", seq=1, ack=2, ts=(5100, h.last_tsval), at=0.1)
    h.send(b"b")
    h.expect("P.", payload=b"b", ts=(h.our_ts(), 5100))


def test_syn_lost_twice_initial_window_is_one_segment() -> None:
    """RFC 5681 §3.1 as relaxed by RFC 6928 §2: after more than one SYN retransmission the
    initial window is one segment (a single retransmission keeps IW10, see below)."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.expect_within(2, "S", seq=0, after=1)
    h.expect_within(3, "S", seq=0, after=2)
    h.inject("S.", seq=0, ack=1, options={"mss": 1460}, at=3.1)
    h.expect(".", seq=1, ack=1)
    h.send(b"x" * 5 * 1460)
    h.expect(".", seq=1, payload_len=1460)
    h.expect_nothing()
    assert conn.cc.cwnd == 1460


def test_syn_lost_once_keeps_initial_window() -> None:
    """RFC 6928 §2: one spurious-looking SYN retransmission does not cost the initial window."""
    h = Scenario()
    h.connect()
    h.expect("S", seq=0)
    h.expect_within(2, "S", seq=0, after=1)
    h.inject("S.", seq=0, ack=1, options={"mss": 1460}, at=1.1)
    h.expect(".", seq=1, ack=1)
    h.send(b"x" * 12 * 1460)
    assert len(h.sent()) == 10


def test_syn_retransmitted_without_timestamps_data_rto_is_3s() -> None:
    """RFC 6298 §5.7: when the SYN timed out and no RTT sample exists (no timestamps, and Karn's
    rule excludes the retransmitted handshake), the RTO is 3 s once data transmission begins."""
    h = Scenario(timestamps=False)
    conn = h.connect()
    h.expect("S", seq=0)
    h.expect_within(2, "S", seq=0, after=1)
    h.inject("S.", seq=0, ack=1, options={"mss": 1460}, at=1.5)
    h.expect(".", seq=1, ack=1)
    assert conn.rtt.srtt is None
    h.send(b"data")
    h.expect("P.", seq=1, payload=b"data")
    h.expect_within(5, "P.", seq=1, payload=b"data", after=3.0)
