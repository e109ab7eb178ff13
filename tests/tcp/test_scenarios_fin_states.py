"""Scenarios: a FIN arriving in every state (RFC 9293 §3.10.7.2-§3.10.7.4 eighth, Figure 5), and
the FIN's interplay with data, the window, the ACK field and retransmission."""

from __future__ import annotations

import pytest

from scenario import SYN_OPTIONS, Scenario, State, to_state

MSS = 1448


def test_fin_to_listener_is_dropped() -> None:
    """§3.10.7.2: in LISTEN, a segment with neither SYN, ACK nor RST (a bare FIN) is dropped and
    counted; nothing is created and nothing is sent."""
    h = Scenario()
    h.listen()
    h.inject("F", seq=1)
    h.expect_nothing()
    assert not h.tcp.connections and h.tcp.drops["tcp_listen_no_syn"] == 1


def test_fin_ack_to_listener_gets_reset() -> None:
    """§3.10.7.2: in LISTEN, any ACK is bad: <SEQ=SEG.ACK><CTL=RST>, whatever else it carries."""
    h = Scenario()
    h.listen()
    h.inject("F.", seq=1, ack=777)
    h.expect("R", seq=777, win=0)
    assert not h.tcp.connections


def test_fin_in_syn_sent_without_syn_is_dropped() -> None:
    """§3.10.7.3 fifth: in SYN-SENT, a segment with neither SYN nor RST (a FIN with a good ACK)
    is dropped; the SYN is still retried at its RTO."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.inject("F.", seq=1, ack=1)
    h.expect_nothing()
    assert conn.state == State.SYN_SENT and conn.drops["tcp_syn_sent_no_syn"] == 1
    h.expect_within(1.5, "S", seq=0, after=1.0)


def test_fin_in_syn_sent_with_bad_ack_gets_reset() -> None:
    """§3.10.7.3 first: a bad ACK in SYN-SENT is answered <SEQ=SEG.ACK><CTL=RST>."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.inject("F.", seq=1, ack=50)
    h.expect("R", seq=50)
    assert conn.state == State.SYN_SENT


def test_fin_completing_the_handshake_in_syn_received() -> None:
    """§3.10.7.4: a FIN+ACK acknowledging our SYN-ACK first completes the handshake (fifth) and
    then closes the peer's side (eighth): the connection is accepted in CLOSE-WAIT, the FIN is
    acknowledged at once."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject("F.", seq=1, ack=1)
    h.expect(".", seq=1, ack=2)
    conn = h.accept()
    assert conn.state == State.CLOSE_WAIT
    assert h.recv() == b""  # end of stream


def test_fin_with_data_completing_the_handshake() -> None:
    """A request and its FIN on the handshake's third segment (a T/TCP-like client): data
    delivered, FIN acknowledged with it."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject("FP.", seq=1, ack=1, payload=b"GET /")
    h.expect(".", seq=1, ack=7)
    conn = h.accept()
    assert conn.state == State.CLOSE_WAIT and h.recv() == b"GET /"


def test_fin_without_ack_in_syn_received_is_dropped() -> None:
    """§3.10.7.4 fifth: a segment without ACK is dropped in every synchronized state, SYN-RECEIVED
    included (a FIN cannot complete a handshake it does not acknowledge)."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject("F", seq=1)
    h.expect_nothing()
    assert h.state == State.SYN_RECEIVED and h.conn is not None and h.conn.drops["tcp_no_ack"] == 1


def test_fin_in_established_moves_to_close_wait() -> None:
    """§3.10.7.4 eighth: ESTABLISHED → CLOSE-WAIT; a FIN is acknowledged at once (not delayed),
    and the application reads end-of-stream after the data."""
    h = Scenario()
    to_state(h, State.ESTABLISHED)
    h.inject("P.", seq=1, ack=1, payload=b"last words")
    h.inject("F.", seq=11, ack=1)
    h.expect(".", seq=1, ack=12)
    assert h.state == State.CLOSE_WAIT
    assert h.recv() == b"last words" and h.recv() == b""


def test_fin_with_data_in_established() -> None:
    """Data and FIN in one segment: RCV.NXT passes both (len + 1)."""
    h = Scenario()
    to_state(h, State.ESTABLISHED)
    h.inject("FP.", seq=1, ack=1, payload=b"x" * 100)
    h.expect(".", seq=1, ack=102)
    assert h.recv() == b"x" * 100 and h.state == State.CLOSE_WAIT


def test_fin_without_ack_flag_in_established_is_dropped() -> None:
    """§3.10.7.4 fifth: "if the ACK bit is off, drop the segment" — a FIN without ACK (a blind
    injector's cheapest close) changes nothing."""
    h = Scenario()
    conn = to_state(h, State.ESTABLISHED) and h.conn
    h.inject("F", seq=1)
    h.expect_nothing()
    assert conn is not None and conn.state == State.ESTABLISHED and conn.drops["tcp_no_ack"] == 1


def test_fin_out_of_window_is_acked_not_processed() -> None:
    """§3.10.7.4 first: a FIN beyond the window is not acceptable: ACK <SEQ=SND.NXT><ACK=RCV.NXT>
    and drop it; the connection stays ESTABLISHED."""
    h = Scenario(rcvbuf=8192)
    to_state(h, State.ESTABLISHED)
    h.inject("F.", seq=100_000, ack=1)
    h.expect(".", seq=1, ack=1)
    assert h.state == State.ESTABLISHED
    assert h.conn is not None and h.conn.drops["tcp_out_of_window"] == 1


def test_old_duplicate_fin_is_acked_not_processed_again() -> None:
    """A FIN below RCV.NXT (a retransmission of one already taken) in CLOSE-WAIT: ACK it again
    with the same numbers; nothing changes."""
    h = Scenario()
    to_state(h, State.CLOSE_WAIT)
    h.inject("F.", seq=1, ack=1, at=0.3)
    h.expect(".", seq=1, ack=2)
    assert h.state == State.CLOSE_WAIT


def test_fin_with_unacceptable_ack_is_dropped_with_an_ack() -> None:
    """§3.10.7.4 fifth: a FIN whose ACK acknowledges data never sent is dropped (the FIN is not
    taken) and answered with an ACK."""
    h = Scenario()
    to_state(h, State.ESTABLISHED)
    h.inject("F.", seq=1, ack=5000)
    h.expect(".", seq=1, ack=1)
    assert h.state == State.ESTABLISHED


def test_fin_in_fin_wait_1_not_acking_ours_goes_to_closing() -> None:
    """§3.10.7.4 eighth, FIN-WAIT-1: our FIN not yet acknowledged → CLOSING, and its ACK then
    → TIME-WAIT."""
    h = Scenario()
    to_state(h, State.FIN_WAIT_1)
    h.inject("F.", seq=1, ack=1)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.CLOSING
    h.inject(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
    h.expect_nothing()


def test_fin_with_data_in_fin_wait_1() -> None:
    """FIN-WAIT-1 still receives (RFC 9293 §3.6: the peer's direction is open): data and FIN in
    one segment acknowledging ours → TIME-WAIT after the data is delivered."""
    h = Scenario()
    h.passive_open()
    h.shutdown()
    h.expect("F.", seq=1, ack=1)
    h.inject("FP.", seq=1, ack=2, payload=b"reply")
    h.expect(".", seq=2, ack=7)
    assert h.state == State.TIME_WAIT and h.recv() == b"reply"


def test_fin_in_fin_wait_2_enters_time_wait() -> None:
    """§3.10.7.4 eighth, FIN-WAIT-2: enter TIME-WAIT, start the 2·MSL timer (60 s), ACK at once."""
    h = Scenario()
    to_state(h, State.FIN_WAIT_2)
    h.inject("F.", seq=1, ack=2, at=1.0)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
    h.advance(59.999)
    assert h.state == State.TIME_WAIT
    h.advance(0.001)
    assert h.state == State.CLOSED


def test_fin_with_data_in_fin_wait_2_after_a_gap_waits_for_the_gap() -> None:
    """An out-of-order FIN in FIN-WAIT-2: the gap is acknowledged at once with a SACK block; the
    state changes only when the hole is filled (§3.10.7.4 eighth: the FIN is processed once
    RCV.NXT reaches it)."""
    h = Scenario()
    to_state(h, State.FIN_WAIT_2)
    h.inject("FP.", seq=6, ack=2, payload=b"world")
    h.expect(".", seq=2, ack=1, sack=[(6, 11)])  # the SACK block covers the data, not the FIN
    assert h.state == State.FIN_WAIT_2
    h.inject("P.", seq=1, ack=2, payload=b"hello")
    h.expect(".", seq=2, ack=12)
    assert h.state == State.TIME_WAIT and h.recv() == b"helloworld"


def test_fin_retransmitted_in_close_wait_is_reacked() -> None:
    """CLOSE-WAIT: the peer's FIN again (our ACK was lost) — ACK it again, stay in CLOSE-WAIT."""
    h = Scenario()
    to_state(h, State.CLOSE_WAIT)
    h.inject("F.", seq=1, ack=1, at=0.2)
    h.expect(".", seq=1, ack=2)
    h.inject("F.", seq=1, ack=1, at=0.6)
    h.expect(".", seq=1, ack=2)
    assert h.state == State.CLOSE_WAIT


def test_fin_retransmitted_in_closing_is_reacked() -> None:
    """CLOSING: a retransmitted FIN (our ACK of it lost) gets ACKed again; state unchanged."""
    h = Scenario()
    to_state(h, State.CLOSING)
    h.inject("F.", seq=1, ack=1, at=0.1)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.CLOSING


def test_fin_retransmitted_in_last_ack_is_reacked() -> None:
    """LAST-ACK: the peer resends its FIN (our ACK was lost): ACK again (the ACK still carries
    our FIN's sequence space: SEQ = SND.NXT = 2), stay in LAST-ACK until our FIN is acked."""
    h = Scenario()
    to_state(h, State.LAST_ACK)
    h.inject("F.", seq=1, ack=1, at=0.1)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.LAST_ACK
    h.inject(".", seq=2, ack=2, at=0.2)
    assert h.state == State.CLOSED and not h.tcp.connections


def test_old_fin_acking_our_fin_in_last_ack_is_an_old_duplicate() -> None:
    """LAST-ACK: a retransmitted FIN (SEG.SEQ = 1, below RCV.NXT = 2) that also acknowledges our
    FIN fails the sequence test of §3.10.7.4 first — "send an ACK and drop the segment", its ACK
    field unread — so LAST-ACK stays until an acceptable ACK comes. (Linux's tcp_sequence accepts
    a segment ending at RCV.NXT and would close here; we follow the RFC.)"""
    h = Scenario()
    to_state(h, State.LAST_ACK)
    h.inject("F.", seq=1, ack=2, at=0.1)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.LAST_ACK
    h.inject(".", seq=2, ack=2, at=0.1)
    assert h.state == State.CLOSED
    h.expect_nothing()


def test_fin_retransmitted_in_time_wait_restarts_2msl() -> None:
    """TIME-WAIT: a retransmitted FIN is ACKed and the 2·MSL timer restarts (MSL 5 s here)."""
    h = Scenario(msl=5.0)
    to_state(h, State.TIME_WAIT)
    h.inject("F.", seq=1, ack=2, at=8.0)
    h.expect(".", seq=2, ack=2)
    h.advance(9.99)
    assert h.state == State.TIME_WAIT
    h.advance(0.01)
    assert h.state == State.CLOSED


def test_fin_with_new_data_in_close_wait_is_not_delivered() -> None:
    """After the peer's FIN, RCV.NXT is past its end of stream: a segment claiming to carry data
    after the FIN is old or forged — acknowledged (it is below/at RCV.NXT), never delivered."""
    h = Scenario()
    conn = to_state(h, State.CLOSE_WAIT) and h.conn
    h.inject("FP.", seq=2, ack=1, payload=b"ghost")
    out = h.sent()
    assert all(o.ack == 2 for o in out)
    assert h.recv() == b""
    assert conn is not None and conn.state == State.CLOSE_WAIT


def test_fin_at_zero_receive_window_waits_for_the_window() -> None:
    """A FIN at RCV.NXT when our window is 0: RFC 9293 §3.10.7.4's acceptability test refuses any
    segment with SEG.LEN > 0 (a FIN counts one) at a zero window — ACK <ACK=RCV.NXT, WIN=0> and
    drop, counted. The peer's retransmission is taken once the application has read. (Linux's
    tcp_sequence accepts the FIN at once; we follow the RFC.)"""
    h = Scenario(rcvbuf=2 * MSS)
    conn = to_state(h, State.ESTABLISHED) and h.conn
    h.inject(".", seq=1, ack=1, payload=b"a" * MSS)
    h.inject(".", seq=1 + MSS, ack=1, payload=b"b" * MSS)
    h.expect(".", ack=1 + 2 * MSS, win=0)
    h.inject("F.", seq=1 + 2 * MSS, ack=1, at=0.2)
    h.expect(".", seq=1, ack=1 + 2 * MSS, win=0)
    assert conn is not None and conn.state == State.ESTABLISHED and conn.drops["tcp_out_of_window"] == 1
    assert h.recv() == b"a" * MSS + b"b" * MSS
    h.sent()  # the window update
    h.inject("F.", seq=1 + 2 * MSS, ack=1, at=0.5)
    h.expect(".", seq=1, ack=2 + 2 * MSS)
    assert conn.state == State.CLOSE_WAIT


@pytest.mark.parametrize("payload_len", [0, 1, MSS])
def test_fin_then_close_sends_our_fin_from_close_wait(payload_len: int) -> None:
    """CLOSE-WAIT → LAST-ACK: after the peer's FIN, close() sends what is queued and our FIN on
    its last segment (RFC 9293 §3.10.4 CLOSE-WAIT), and the final ACK closes."""
    h = Scenario()
    to_state(h, State.CLOSE_WAIT)
    if payload_len:
        h.send(b"z" * payload_len)
        h.expect(seq=1, ack=2, payload_len=payload_len)
    h.close()
    h.expect("F.", seq=1 + payload_len, ack=2)
    assert h.state == State.LAST_ACK
    h.inject(".", seq=2, ack=2 + payload_len)
    assert h.state == State.CLOSED


def test_syn_fin_in_established_gets_challenge_ack() -> None:
    """A SYN+FIN on an established connection is a SYN first (RFC 5961 §4: challenge ACK);
    the FIN is never taken."""
    h = Scenario()
    to_state(h, State.ESTABLISHED)
    h.inject("SF", seq=1, options={"mss": 1460})
    h.expect(".", seq=1, ack=1)
    assert h.state == State.ESTABLISHED


def test_fin_on_simultaneous_open_synack_is_not_lost() -> None:
    """SYN-SENT receives the SYN-ACK and a FIN with it: established, then CLOSE-WAIT; the ACK
    covers the FIN."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    options = dict(SYN_OPTIONS)
    h.inject("S.", seq=0, ack=1, options=options)
    h.expect(".", seq=1, ack=1)
    h.ts_auto = True
    h.inject("F.", seq=1, ack=1)
    h.expect(".", seq=1, ack=2)
    assert conn.state == State.CLOSE_WAIT
