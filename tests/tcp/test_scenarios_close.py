"""Scenarios: closing — every path through RFC 9293 §3.6 (Figure 5's FIN-WAIT-1/2, CLOSING,
TIME-WAIT, CLOSE-WAIT, LAST-ACK), TIME-WAIT's 2·MSL (§3.4.2) and its re-ACK of a retransmitted
FIN, half-close, orphaned FIN-WAIT-2, resets on close (§3.10.4-§3.10.5, RFC 2525 §2.17) and
TIME-WAIT reuse by a new SYN (RFC 6191)."""

from __future__ import annotations

import pytest

from scenario import SYN_OPTIONS, Scenario, State

MSS = 1448


def test_active_close_fin_wait_1_fin_wait_2_time_wait() -> None:
    """RFC 9293 §3.6 case 1: CLOSE sends FIN (FIN-WAIT-1); its ACK → FIN-WAIT-2; the peer's FIN is
    acknowledged → TIME-WAIT, which lasts exactly 2·MSL (60 s with MSL = 30 s) then CLOSED."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1, ack=1)
    assert h.state == State.FIN_WAIT_1
    h.inject(".", seq=1, ack=2, at=0.1)
    assert h.state == State.FIN_WAIT_2
    h.expect_nothing()
    h.inject("F.", seq=1, ack=2, at=0.2)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
    h.expect_silence(59.99)
    assert h.state == State.TIME_WAIT
    h.advance(0.01)
    assert h.state == State.CLOSED and not h.tcp.connections
    h.expect_nothing()


def test_time_wait_reacks_retransmitted_fin_and_restarts_2msl() -> None:
    """RFC 9293 §3.10.7.4 (TIME-WAIT): a retransmitted FIN (our last ACK was lost) is acknowledged
    again and the 2·MSL timeout restarts."""
    h = Scenario(msl=10.0)
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject("F.", seq=1, ack=2, at=0.1)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
    h.inject("F.", seq=1, ack=2, at=15.0)
    h.expect(".", seq=2, ack=2)
    h.advance(19.9)
    assert h.state == State.TIME_WAIT  # 20 s from the retransmitted FIN, not from the first
    h.advance(0.1)
    assert h.state == State.CLOSED


def test_fin_ack_in_fin_wait_1_goes_straight_to_time_wait() -> None:
    """A FIN that also acknowledges our FIN moves FIN-WAIT-1 directly to TIME-WAIT (§3.10.7.4
    eighth, FIN-WAIT-1: "if our FIN has been ACKed ... enter TIME-WAIT")."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1, ack=1)
    h.inject("F.", seq=1, ack=2)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT


def test_simultaneous_close_through_closing() -> None:
    """RFC 9293 §3.6 Figure 13: both FINs cross. FIN-WAIT-1 gets the peer's FIN (not ACKing ours):
    ACK it and go to CLOSING; the ACK of our FIN then leads to TIME-WAIT."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1, ack=1)
    h.inject("F.", seq=1, ack=1, at=0.05)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.CLOSING
    h.inject(".", seq=2, ack=2, at=0.1)
    assert h.state == State.TIME_WAIT
    h.expect_nothing()


def test_passive_close_close_wait_then_last_ack() -> None:
    """RFC 9293 §3.6 case 2: the peer's FIN → CLOSE-WAIT (we may still send); our CLOSE sends FIN
    (LAST-ACK); its ACK → CLOSED, with no TIME-WAIT on this side."""
    h = Scenario()
    h.passive_open()
    h.inject("F.", seq=1, ack=1)
    h.expect(".", seq=1, ack=2)
    assert h.state == State.CLOSE_WAIT
    assert h.recv() == b""
    h.send(b"last words")
    h.expect("P.", seq=1, ack=2, payload=b"last words")
    h.close()
    h.expect("F.", seq=11, ack=2)
    assert h.state == State.LAST_ACK
    h.inject(".", seq=2, ack=12)
    assert h.state == State.CLOSED and not h.tcp.connections


def test_fin_retransmitted_in_last_ack() -> None:
    """The FIN is retransmitted like data (RFC 9293 §3.10.4, RFC 6298 §5): after RTO, 2·RTO."""
    h = Scenario()
    h.passive_open(rtt=0.1)
    h.inject("F.", seq=1, ack=1)
    h.expect(".", ack=2)
    h.close()
    h.expect("F.", seq=1, ack=2)
    h.expect_within(1, "F.", seq=1, ack=2, after=0.3)
    h.expect_within(1, "F.", seq=1, ack=2, after=0.6)
    h.inject(".", seq=2, ack=2)
    assert h.state == State.CLOSED


def test_fin_retransmitted_in_fin_wait_1() -> None:
    """Our FIN is lost: FIN-WAIT-1 resends it after the RTO, with the same sequence number."""
    h = Scenario()
    h.passive_open(rtt=0.1)
    h.close()
    h.expect("F.", seq=1)
    h.expect_within(1, "F.", seq=1, after=0.3)
    assert h.state == State.FIN_WAIT_1


def test_close_sends_queued_data_then_fin_on_the_last_segment() -> None:
    """CLOSE with data queued: the data goes first and the FIN rides on the last segment
    (§3.10.4: "queue this until all preceding SENDs have been segmentized")."""
    h = Scenario()
    h.passive_open()
    h.send(b"a" * 2000)
    h.expect(".", seq=1, payload_len=MSS)
    h.close()
    h.expect("FP.", seq=1 + MSS, payload_len=2000 - MSS)  # Nagle gives way to the FIN
    assert h.state == State.FIN_WAIT_1


def test_close_with_unread_data_sends_rst() -> None:
    """RFC 9293 §3.10.4 allows, RFC 2525 §2.17 asks for, a reset when the application closes with
    received data it never read: the peer learns the data was lost."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"unread")
    h.close()
    h.expect("R.", seq=1, ack=7)
    assert conn.state == State.CLOSED and not h.tcp.connections


def test_data_after_close_is_answered_with_rst() -> None:
    """After close() (the application can read no more), arriving data cannot be delivered:
    RFC 9293 §3.10.7.4 lets us reset, as Linux does (RFC 2525 §2.17)."""
    h = Scenario()
    conn = h.passive_open()
    h.close()
    h.expect("F.", seq=1, ack=1)
    h.inject("P.", seq=1, ack=2, payload=b"too late")
    h.expect("R.", seq=2, ack=1)  # the late data is not acknowledged
    assert conn.state == State.CLOSED


def test_half_close_keeps_receiving() -> None:
    """shutdown(SHUT_WR): our FIN goes out, and we keep receiving (FIN-WAIT-2 has no timeout for
    a connection the application still holds); the peer's FIN ends it in TIME-WAIT."""
    h = Scenario()
    conn = h.passive_open()
    h.shutdown()
    h.expect("F.", seq=1, ack=1)
    h.inject(".", seq=1, ack=2)
    assert h.state == State.FIN_WAIT_2
    h.advance(120)
    assert h.state == State.FIN_WAIT_2  # only an orphaned FIN-WAIT-2 times out
    h.inject("P.", seq=1, ack=2, payload=b"response")
    h.expect_within(0.1, ".", seq=2, ack=9, after=0.04)
    assert h.recv() == b"response"
    with pytest.raises(BrokenPipeError):
        h.send(b"more")
    h.inject("F.", seq=9, ack=2)
    h.expect(".", seq=2, ack=10)
    assert conn.state == State.TIME_WAIT
    assert h.recv() == b""


def test_orphaned_fin_wait_2_times_out() -> None:
    """close() then the peer ACKs our FIN but never sends its own: the orphaned FIN-WAIT-2 is
    given up after TcpConfig.fin_wait2_timeout (60 s, Linux's tcp_fin_timeout), silently."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject(".", seq=1, ack=2, at=0.1)
    assert h.state == State.FIN_WAIT_2
    h.expect_silence(59.99)
    assert h.state == State.FIN_WAIT_2
    h.advance(0.01)
    assert h.state == State.CLOSED and not h.tcp.connections
    h.expect_nothing()


def test_orphaned_fin_wait_2_timer_survives_a_window_update() -> None:
    """The FIN-WAIT-2 timeout shares the idle timer with the persist timer: a window update that
    ends a zero-window episode must not cancel it."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject(".", seq=1, ack=2, win=0, at=1.0)
    h.inject(".", seq=1, ack=2, win=100, at=2.0)  # the peer's application read
    h.advance(59.0)
    assert h.state == State.CLOSED


def test_abort_sends_rst() -> None:
    """ABORT (§3.10.5): <SEQ=SND.NXT><CTL=RST>, then CLOSED; queued data is discarded."""
    h = Scenario()
    conn = h.passive_open()
    h.send(b"x" * 5 * MSS)
    h.sent()
    h.abort()
    h.expect("R.", seq=1 + 5 * MSS, ack=1)
    assert conn.state == State.CLOSED
    h.expect_silence(5)  # no retransmissions after an abort


def test_close_in_syn_sent_sends_nothing() -> None:
    """CLOSE in SYN-SENT (§3.10.4): delete the TCB, nothing sent; a late SYN-ACK then finds no
    connection and is reset (§3.10.7.1)."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.close()
    assert conn.state == State.CLOSED
    h.expect_nothing()
    h.inject("S.", seq=0, ack=1, options={"mss": 1460}, at=0.1)
    h.expect("R", seq=1)


def test_time_wait_new_syn_with_higher_sequence_reuses_the_port() -> None:
    """RFC 9293 §3.10.7.4 note / RFC 6191: a SYN for a 4-tuple in TIME-WAIT whose timestamp is
    newer starts a new connection through the listener; an old one only gets an ACK."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject("F.", seq=1, ack=2, at=0.1)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
    # An old duplicate SYN (older timestamp): TIME-WAIT just re-acknowledges.
    h.inject("S", seq=0, options={**SYN_OPTIONS, "ts": (4000, 0)}, at=1.0)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
    # A new incarnation: later timestamp, later ISN.
    h.iss += 100_000
    h.inject("S", seq=10_000, options={**SYN_OPTIONS, "ts": (h.peer_ts(), 0)}, at=2.0)
    h.expect("S.", seq=0, ack=10_001)
    h.inject(".", seq=10_001, ack=1)
    new = h.accept()
    assert new.state == State.ESTABLISHED and new is not h.listener
