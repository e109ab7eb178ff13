"""Scenarios: handshake edge cases (RFC 9293 §3.5, §3.10.7.2-§3.10.7.4; RFC 5961) — SYN with data,
SYN+FIN, SYN+RST, SYN+ACK to a listener, ECN-setup SYNs, duplicate and different SYNs in
SYN-RECEIVED, odd third segments, data on a SYN-ACK, port zero."""

from __future__ import annotations

import pytest

from scenario import SYN_OPTIONS, Scenario, State, to_state


def test_syn_with_data_is_answered_but_data_not_acknowledged() -> None:
    """§3.10.7.2: data on a SYN "should be queued for processing later"; we keep none (no TCP
    Fast Open), so the SYN-ACK acknowledges only the SYN (ACK = ISN + 1) and the peer sends the
    data again after the handshake, where it is taken."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460}, payload=b"early data")
    h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=1)
    conn = h.accept()
    with pytest.raises(BlockingIOError):
        h.recv()
    h.inject("P.", seq=1, ack=1, payload=b"early data")
    assert h.recv() == b"early data" and conn.state == State.ESTABLISHED


def test_syn_fin_to_listener_is_a_syn() -> None:
    """SYN+FIN (a scanner's favourite): RFC 9293 §3.10.7.2 processes the SYN and would queue the
    rest; we answer the SYN and do not take the FIN (the SYN-ACK acknowledges only the SYN, so a
    real peer resends its FIN). Linux and FreeBSD drop SYN+FIN in LISTEN; we follow the RFC — the
    half-open state is bounded by the SYN queue and SYN cookies either way."""
    h = Scenario()
    h.listen()
    h.inject("SF", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=1)
    assert h.accept().state == State.ESTABLISHED


def test_syn_rst_to_listener_is_dropped() -> None:
    """§3.10.7.2 first: an RST in LISTEN is ignored — with SYN set too; counted, nothing kept."""
    h = Scenario()
    h.listen()
    h.inject("SR", seq=0, options={"mss": 1460})
    h.expect_nothing()
    assert not h.tcp.connections and h.tcp.drops["tcp_listen_rst"] == 1


def test_synack_to_listener_gets_reset() -> None:
    """§3.10.7.2 second: an ACK in LISTEN (a SYN-ACK included) gets <SEQ=SEG.ACK><CTL=RST>."""
    h = Scenario()
    h.listen()
    h.inject("S.", seq=0, ack=12345, options=SYN_OPTIONS)
    h.expect("R", seq=12345, win=0)
    assert not h.tcp.connections and h.tcp.drops["tcp_listen_bad_ack"] == 1


def test_ecn_setup_syn_is_answered_without_ecn() -> None:
    """An ECN-setup SYN (ECE+CWR, RFC 3168 §6.1.1): we do not do ECN, so our SYN-ACK carries
    neither ECE nor CWR — the peer then must not send ECT packets (a non-ECN-setup SYN-ACK)."""
    h = Scenario()
    h.listen()
    h.inject("SEW", seq=0, options={"mss": 1460})
    out = h.expect("S.", seq=0, ack=1)
    assert "E" not in out.flags and "W" not in out.flags


def test_syn_from_port_zero_is_dropped() -> None:
    """Port 0 is reserved: a SYN from it is dropped and counted, never answered (an answer would
    go to port 0)."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460}, sport=0)
    h.expect_nothing()
    assert h.tcp.drops["tcp_port_zero"] == 1 and not h.tcp.connections


def test_syn_to_port_zero_is_dropped() -> None:
    """Destination port 0: dropped and counted, no RST."""
    h = Scenario()
    h.inject("S", seq=0, options={"mss": 1460}, dport=0)
    h.expect_nothing()
    assert h.tcp.drops["tcp_port_zero"] == 1


def test_different_syn_in_syn_received_gets_challenge_ack() -> None:
    """A SYN with another sequence number in SYN-RECEIVED (a restarted peer, or a blind guess):
    inside the window it is a SYN in a synchronized state — RFC 5961 §4's challenge ACK, no
    reset; the half-open connection keeps its numbers."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject("S", seq=100, options={"mss": 1460})
    h.expect(".", seq=1, ack=1)
    assert h.state == State.SYN_RECEIVED
    assert h.conn is not None and h.conn.stats["challenge_acks"] == 1


def test_different_syn_outside_the_window_in_syn_received_gets_ack() -> None:
    """A SYN far outside the window in SYN-RECEIVED fails the sequence test first: an ACK
    <SEQ=SND.NXT><ACK=RCV.NXT>, counted as out of window."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject("S", seq=2**31, options={"mss": 1460})
    h.expect(".", seq=1, ack=1)
    assert h.conn is not None and h.conn.drops["tcp_out_of_window"] == 1


def test_retransmitted_syn_with_different_options_keeps_the_first() -> None:
    """The peer's SYN again with other options (MSS 536, no TS): our SYN-ACK is the same as the
    first (the options were settled by the first SYN) and the connection uses the first MSS."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options={"mss": 1200, "wscale": 2})
    first = h.expect("S.", seq=0, ack=1)
    h.inject("S", seq=0, options={"mss": 536}, at=0.5)
    again = h.expect("S.", seq=0, ack=1)
    assert again.options == first.options
    h.inject(".", seq=1, ack=1)
    assert h.accept().peer_mss == 1200


def test_inexact_rst_in_syn_received_gets_challenge_ack() -> None:
    """RFC 5961 §3.2 covers SYN-RECEIVED: an in-window RST not at RCV.NXT → challenge ACK; the
    half-open connection stays (a blind attacker cannot clear the SYN queue)."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject("R", seq=100)
    h.expect(".", seq=1, ack=1)
    assert h.state == State.SYN_RECEIVED


def test_third_segment_with_in_window_sequence_gap_completes() -> None:
    """The handshake's ACK at SEQ = ISN + 1001 (in the window, bytes before it missing): its ACK
    completes the handshake (§3.10.7.4 fifth) and the gap is left for the data to fill."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject(".", seq=1001, ack=1)
    assert h.state == State.ESTABLISHED
    h.inject("P.", seq=1, ack=1, payload=b"first")
    assert h.recv() == b"first"


def test_third_segment_outside_the_window_does_not_complete() -> None:
    """An ACK of our SYN-ACK at a sequence number beyond the window (the SYN-ACK's window is
    unscaled: 65535) is unacceptable: ACK and drop; the handshake stays open."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject(".", seq=100_000, ack=1)
    h.expect(".", seq=1, ack=1)
    assert h.state == State.SYN_RECEIVED


def test_third_segment_without_ack_flag_is_dropped() -> None:
    """A third segment carrying data but no ACK bit: dropped (§3.10.7.4 fifth), nothing sent,
    the data not taken; the real ACK completes."""
    h = Scenario()
    to_state(h, State.SYN_RECEIVED)
    h.inject("P", seq=1, payload=b"noack")
    h.expect_nothing()
    assert h.state == State.SYN_RECEIVED
    h.inject(".", seq=1, ack=1)
    assert h.state == State.ESTABLISHED


def test_synack_carrying_data_in_syn_sent() -> None:
    """Data on a SYN-ACK (no TCP Fast Open): the handshake completes; the data is not taken (our
    ACK acknowledges only the SYN: ACK = ISN + 1), so the peer sends it again — and that is
    delivered. §3.10.7.3 lets us queue it; not queueing costs a retransmission, never data."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.inject("S.", seq=0, ack=1, options={"mss": 1460}, payload=b"banner")
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED
    h.inject("P.", seq=1, ack=1, payload=b"banner")
    assert h.recv() == b"banner"


def test_synack_without_syn_options_after_our_full_syn() -> None:
    """We offered every option; the SYN-ACK has none: no TS, no SACK, no scaling, MSS 536."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    h.inject("S.", seq=0, ack=1, win=5000)
    h.expect(".", seq=1, ack=1, win=65535, options={})
    assert (conn.ts_ok, conn.sack_ok, conn.wscale_ok, conn.snd_mss) == (False, False, False, 536)


def test_second_synack_after_established_gets_an_ack() -> None:
    """The peer's SYN-ACK again after we are ESTABLISHED (our ACK was lost): it is old (SEQ =
    IRS < RCV.NXT) — we re-acknowledge it, with no state change (RFC 9293 §3.10.7.4 first)."""
    h = Scenario()
    conn = h.active_open()
    h.inject("S.", seq=0, ack=1, options={**SYN_OPTIONS, "ts": (h.peer_ts(), h.last_tsval)}, at=0.5)
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED


def test_syn_with_both_mss_and_no_room_for_data() -> None:
    """The peer's MSS option of 216 with TS (12 bytes): 204-byte segments; a 1-byte write still
    goes out (nothing too small to send), with PSH."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 216, "ts": (0, 0), "sack_perm": True})
    assert conn.snd_mss == 204
    h.send(b"!")
    h.expect("P.", seq=1, payload=b"!")


def test_accept_queue_full_then_room_again() -> None:
    """Backlog 1: the second handshake's SYN is dropped while the accept queue is full (counted);
    after accept() the peer's retransmitted SYN is answered."""
    h = Scenario()
    h.listen(backlog=1)
    h.inject("S", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=1)
    h.inject("S", seq=0, options={"mss": 1460}, sport=50001)
    h.expect_nothing()
    assert h.tcp.drops["tcp_accept_queue_full"] == 1
    h.accept()
    h.inject("S", seq=0, options={"mss": 1460}, sport=50001, at=1.0)
    h.expect("S.", seq=0, ack=1, dport=50001)
