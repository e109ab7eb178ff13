"""Scenarios: resets at their edges (RFC 9293 §3.10.7.4 second, RFC 5961 §3.2) — the window's
last byte, a zero window, RSTs carrying data, bogus ACK fields, other flags, out-of-order data
pending, unread data, orphaned connections."""

from __future__ import annotations

import errno

import pytest

from scenario import Scenario, State

MSS = 1448


def test_rst_at_the_last_byte_of_the_window_gets_challenge_ack() -> None:
    """Window 8192 (no scaling): an RST at RCV.NXT + 8191 is in the window → challenge ACK; at
    RCV.NXT + 8192 it is outside → silently dropped."""
    h = Scenario(rcvbuf=8192, window_scaling=False)
    conn = h.passive_open(options={"mss": 1460})
    h.inject("R", seq=1 + 8191)
    h.expect(".", seq=1, ack=1)
    h.inject("R", seq=1 + 8192)
    h.expect_nothing()
    assert conn.state == State.ESTABLISHED and conn.drops["tcp_rst_out_of_window"] == 1


def test_rst_at_zero_window() -> None:
    """With our window shut, only SEG.SEQ = RCV.NXT is acceptable (RFC 9293 §3.10.7.4): an RST one
    above is dropped; the exact one resets."""
    h = Scenario(rcvbuf=MSS)
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, payload=b"f" * MSS)
    h.expect_within(0.1, ".", ack=1 + MSS, win=0)
    h.inject("R", seq=2 + MSS)
    h.expect_nothing()
    assert conn.state == State.ESTABLISHED
    h.inject("R", seq=1 + MSS)
    assert conn.state == State.CLOSED


def test_rst_carrying_data_resets_and_delivers_nothing() -> None:
    """RFC 9293 §3.10.7.4: an acceptable RST resets; its payload (RFC 1122 §4.2.2.12 lets it
    carry diagnostic text) is never delivered as stream data."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("R", seq=1, payload=b"diagnostic text")
    assert conn.state == State.CLOSED
    with pytest.raises(ConnectionResetError):
        h.recv()


def test_exact_rst_with_bogus_ack_field_still_resets() -> None:
    """The RST check comes before the ACK check (RFC 9293 §3.10.7.4 second before fifth): an
    exact RST+ACK whose ACK field is nonsense still resets."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("R.", seq=1, ack=999_999)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNRESET


@pytest.mark.parametrize("flags", ["RS", "RF.", "RP."])
def test_exact_rst_with_other_flags_resets(flags: str) -> None:
    """RST wins over SYN and FIN in the same segment (second step before fourth and eighth):
    an exact RST+SYN, RST+FIN or RST+PSH resets and sends nothing."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(flags, seq=1, ack=1 if "." in flags else None)
    h.expect_nothing()
    assert conn.state == State.CLOSED


def test_rst_behind_a_hole_gets_challenge_ack() -> None:
    """Out-of-order data is queued above a hole; an RST at the hole's far side is not at RCV.NXT
    (the hole's start): challenge ACK, queued data kept."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=101, ack=1, payload=b"b" * 100)
    h.expect(".", ack=1, sack=[(101, 201)])
    h.inject("R", seq=201)
    h.expect(".", ack=1, sack=[(101, 201)])
    assert conn.state == State.ESTABLISHED
    h.inject("P.", seq=1, ack=1, payload=b"a" * 100)
    assert h.recv() == b"a" * 100 + b"b" * 100


def test_exact_rst_with_out_of_order_data_queued() -> None:
    """An exact RST while out-of-order data waits: reset; nothing of the queue is delivered."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=101, ack=1, payload=b"b" * 100)
    h.sent()
    h.inject("R", seq=1)
    assert conn.state == State.CLOSED
    with pytest.raises(ConnectionResetError):
        h.recv()


def test_rst_with_unread_data_delivers_it_then_reports_reset() -> None:
    """Data received (and acknowledged) but unread when an exact RST comes: the application still
    reads it, then gets ECONNRESET — as Linux does (tcp_reset purges only the write queue).
    RFC 9293 §3.10.7.4 says the segment queues "should be flushed"; we keep the bytes we already
    acknowledged rather than lose them silently (a deliberate departure, a SHOULD)."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"unread")
    h.inject("R", seq=7)
    assert conn.state == State.CLOSED
    assert h.recv() == b"unread"
    with pytest.raises(ConnectionResetError):
        h.recv()


def test_rst_on_an_orphaned_connection_frees_it() -> None:
    """close() then the peer's exact RST in FIN-WAIT-1: the connection leaves the table at once
    (no error to report: nobody holds the socket)."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject("R", seq=1)
    assert h.state == State.CLOSED and not h.tcp.connections


def test_rst_with_old_sequence_in_close_wait_is_ignored() -> None:
    """CLOSE-WAIT: RCV.NXT is past the peer's FIN; an RST at the FIN's own number (one below) is
    out of window — dropped; the exact one resets."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("F.", seq=1, ack=1)
    h.expect(".", ack=2)
    h.inject("R", seq=1)
    h.expect_nothing()
    assert conn.state == State.CLOSE_WAIT
    h.inject("R", seq=2)
    assert conn.state == State.CLOSED


def test_rst_storm_of_exact_guesses_needs_the_exact_number() -> None:
    """A blind attacker walking RSTs through the window in 64 KB steps hits the window (challenge
    ACKs, rate-limited to 10) but never RCV.NXT itself: the connection survives 1,000 of them."""
    h = Scenario()
    conn = h.passive_open()
    for i in range(1, 1001):
        h.inject("R", seq=1 + i * 65536)
    assert len(h.sent()) <= 10
    assert conn.state == State.ESTABLISHED


def test_rst_to_time_wait_then_new_syn_is_not_confused() -> None:
    """A RST in TIME-WAIT (ignored, RFC 1337) followed by the peer's FIN retransmission: the FIN
    is still re-acknowledged — the RST changed nothing."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject("F.", seq=1, ack=2)
    h.expect(".", seq=2, ack=2)
    h.inject("R", seq=2, at=1.0)
    h.inject("F.", seq=1, ack=2, at=2.0)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
