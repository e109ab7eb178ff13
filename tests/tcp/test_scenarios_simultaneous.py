"""Scenarios: simultaneous open (RFC 9293 §3.5 Figure 8, §3.10.7.3 fourth) and simultaneous close
(§3.6 Figure 13): crossing SYNs and FINs, with and without options, with losses, resets, data and
bad acknowledgments along the way."""

from __future__ import annotations

import errno

import pytest

from scenario import Scenario, State

MSS = 1448


def cross_syns(h: Scenario, *, options: dict[str, object] | None = None, win: int = 60000) -> int:
    """connect(); our SYN; the peer's own SYN crosses it; our SYN-ACK (SYN-RECEIVED). Returns our
    SYN's TSval (0 without timestamps)."""
    h.connect()
    syn = h.expect("S", seq=0)
    opts = {"mss": 1460, "ts": (5000, 0), "wscale": 7} if options is None else options
    h.inject("S", seq=0, win=win, options=opts, at=0.01)
    h.expect("S.", seq=0, ack=1)
    assert h.state == State.SYN_RECEIVED
    return syn.ts[0] if syn.ts else 0


def test_simultaneous_open_completed_by_a_plain_ack() -> None:
    """The peer may complete with a plain ACK of our SYN-ACK (its SYN-ACK lost or never sent):
    SYN-RECEIVED → ESTABLISHED (§3.10.7.4 fifth), window scaled from then on."""
    h = Scenario()
    ts = cross_syns(h)
    h.inject(".", seq=1, ack=1, win=100, ts=(5010, ts), at=0.02)
    assert h.state == State.ESTABLISHED
    assert h.conn is not None and h.conn.snd_wnd == 100 << 7
    h.expect_nothing()


def test_simultaneous_open_without_options() -> None:
    """Crossing SYNs without any option: MSS 536 (RFC 9293 §3.7.1), no TS, no scaling."""
    h = Scenario()
    h.connect()
    h.expect("S", seq=0)
    h.inject("S", seq=0, options={}, at=0.01)
    h.expect("S.", seq=0, ack=1, options={"mss": 1460})
    h.inject("S.", seq=0, ack=1, options={}, at=0.02)
    assert h.state == State.ESTABLISHED
    h.send(b"s" * 600)
    h.expect(".", seq=1, ack=1, payload_len=536, options={})


def test_simultaneous_open_synack_is_retransmitted() -> None:
    """In SYN-RECEIVED (from SYN-SENT) the unacknowledged SYN-ACK is resent at the RTO (1 s,
    RFC 6298 §2.1) and then at 2 s (backoff)."""
    h = Scenario()
    cross_syns(h)
    h.expect_within(1.5, "S.", seq=0, ack=1, after=1.0)
    h.expect_within(2.5, "S.", seq=0, ack=1, after=2.0)


def test_simultaneous_open_rst_refuses() -> None:
    """§3.10.7.4 second: an exact RST in SYN-RECEIVED of an active open → CLOSED with
    ECONNREFUSED ("connection refused" to the user)."""
    h = Scenario()
    cross_syns(h)
    h.inject("R", seq=1, at=0.02)
    assert h.state == State.CLOSED
    assert h.conn is not None and h.conn.error == errno.ECONNREFUSED
    h.expect_nothing()


def test_simultaneous_open_synack_with_bad_ack_is_old_duplicate() -> None:
    """A SYN-ACK in SYN-RECEIVED whose ACK is not our SYN (SEG.ACK ≠ SND.NXT): it is not the
    Figure 8 line 6 segment, and its SEQ (the peer's ISN, before RCV.NXT) fails the sequence test
    of §3.10.7.4 first — so it gets an ACK <SEQ=SND.NXT><ACK=RCV.NXT>, is counted and dropped;
    the right SYN-ACK then completes."""
    h = Scenario()
    ts = cross_syns(h)
    h.inject("S.", seq=0, ack=7, options={"mss": 1460, "ts": (5010, ts), "wscale": 7}, at=0.02)
    h.expect(".", seq=1, ack=1)
    assert h.state == State.SYN_RECEIVED
    assert h.conn is not None and h.conn.drops["tcp_out_of_window"] == 1
    h.inject("S.", seq=0, ack=1, options={"mss": 1460, "ts": (5020, ts), "wscale": 7}, at=0.03)
    assert h.state == State.ESTABLISHED


def test_simultaneous_open_then_data_from_the_peer() -> None:
    """After crossing SYNs, the peer's first data segment (ACKing our SYN) both completes the
    handshake and delivers its data."""
    h = Scenario()
    ts = cross_syns(h)
    h.inject("P.", seq=1, ack=1, payload=b"first", ts=(5010, ts), at=0.02)
    assert h.state == State.ESTABLISHED and h.recv() == b"first"
    h.ts_auto = True
    h.expect_within(0.1, ".", seq=1, ack=6, after=0.04)


def test_simultaneous_open_duplicate_peer_syn_resends_synack() -> None:
    """The peer's SYN again in SYN-RECEIVED (our SYN-ACK was lost): the same SYN-ACK at once."""
    h = Scenario()
    cross_syns(h)
    h.inject("S", seq=0, win=60000, options={"mss": 1460, "ts": (5100, 0), "wscale": 7}, at=0.1)
    h.expect("S.", seq=0, ack=1)
    assert h.state == State.SYN_RECEIVED


def test_simultaneous_open_window_scale_both_ways() -> None:
    """Window scaling negotiated by crossing SYNs: our windows are scaled by 5, the peer's by 7."""
    h = Scenario()
    ts = cross_syns(h, win=1000)
    h.inject("S.", seq=0, ack=1, win=1000, options={"mss": 1460, "ts": (5010, ts), "wscale": 7}, at=0.02)
    conn = h.conn
    assert conn is not None and conn.snd_wnd == 1000
    h.ts_auto = True
    h.inject(".", seq=1, ack=1, win=10)
    assert conn.snd_wnd == 10 << 7 and conn.rcv_wscale == 5
    h.send(b"w")
    assert h.expect("P.", seq=1).win == (1 << 20) >> 5


def test_simultaneous_close_with_data_both_ways() -> None:
    """Both ends send their last data with FIN at the same moment: each FIN+data segment acks
    only what came before; → CLOSING, and the peer's final ACK → TIME-WAIT."""
    h = Scenario()
    h.passive_open()
    h.send(b"ours")
    h.expect("P.", seq=1, ack=1, payload=b"ours")
    h.shutdown()  # close() would answer the peer's data with a RST: nobody would read it
    h.expect("F.", seq=5, ack=1)
    h.inject("FP.", seq=1, ack=1, payload=b"theirs", at=0.01)
    h.expect(".", seq=6, ack=8)
    assert h.state == State.CLOSING and h.recv() == b"theirs"
    h.inject(".", seq=8, ack=6, at=0.02)
    assert h.state == State.TIME_WAIT


def test_simultaneous_close_our_fin_lost() -> None:
    """In CLOSING our FIN is still unacknowledged: it is retransmitted at the RTO until the peer
    acknowledges it."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1, ack=1)
    h.inject("F.", seq=1, ack=1, at=0.01)
    h.expect(".", seq=2, ack=2)
    out = h.expect_within(3.0, "F.", seq=1, ack=2)
    assert out.elapsed > 0
    h.inject(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT


def test_simultaneous_close_on_the_active_opener() -> None:
    """The same crossing FINs on a connection we opened."""
    h = Scenario()
    h.active_open()
    h.close()
    h.expect("F.", seq=1, ack=1)
    h.inject("F.", seq=1, ack=1, at=0.01)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.CLOSING
    h.inject(".", seq=2, ack=2, at=0.02)
    assert h.state == State.TIME_WAIT


def test_closing_partial_ack_keeps_closing() -> None:
    """CLOSING with data outstanding: an ACK covering the data but not our FIN leaves CLOSING."""
    h = Scenario()
    h.passive_open()
    h.send(b"0123456789")
    h.expect("P.", seq=1, payload=b"0123456789")
    h.close()
    h.expect("F.", seq=11)
    h.inject("F.", seq=1, ack=1, at=0.01)
    h.expect(".", seq=12, ack=2)
    h.inject(".", seq=2, ack=11, at=0.02)
    assert h.state == State.CLOSING
    h.inject(".", seq=2, ack=12, at=0.03)
    assert h.state == State.TIME_WAIT


def test_both_sides_in_time_wait_ignore_rst() -> None:
    """After a simultaneous close both ends hold TIME-WAIT; ours ignores a RST (RFC 1337)."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject("F.", seq=1, ack=1, at=0.01)
    h.expect(".", seq=2, ack=2)
    h.inject(".", seq=2, ack=2, at=0.02)
    h.inject("R", seq=2, at=0.03)
    assert h.state == State.TIME_WAIT


@pytest.mark.parametrize("peer_first", [True, False])
def test_half_closes_crossing(peer_first: bool) -> None:
    """shutdown(SHUT_WR) on both sides in either order: the stream each way ends cleanly, data
    sent before each FIN is delivered, and the connection passes through TIME-WAIT on ours
    (peer_first: CLOSE-WAIT → LAST-ACK instead)."""
    h = Scenario()
    h.passive_open()
    if peer_first:
        h.inject("FP.", seq=1, ack=1, payload=b"req")
        h.expect(".", seq=1, ack=5)
        h.send(b"resp")
        h.expect("P.", seq=1, ack=5, payload=b"resp")
        h.shutdown()
        h.expect("F.", seq=5, ack=5)
        assert h.state == State.LAST_ACK
        h.inject(".", seq=5, ack=6)
        assert h.state == State.CLOSED
    else:
        h.send(b"resp")
        h.expect("P.", seq=1, ack=1, payload=b"resp")
        h.shutdown()
        h.expect("F.", seq=5, ack=1)
        h.inject("FP.", seq=1, ack=6, payload=b"req")
        h.expect(".", seq=6, ack=5)
        assert h.state == State.TIME_WAIT
    assert h.recv() == b"req" and h.recv() == b""
