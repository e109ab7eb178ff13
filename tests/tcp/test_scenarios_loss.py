"""Scenarios: loss — the retransmission timer and its backoff (RFC 6298), giving up (RFC 9293
§3.8.3, Linux's tcp_retries2), fast retransmit and NewReno fast recovery (RFC 5681 §3.2,
RFC 6582), SACK-based recovery (RFC 6675), and the persist timer for zero windows (RFC 9293
§3.8.6.1) with the sender's override timeout (§3.8.6.2.1)."""

from __future__ import annotations

import pytest

from scenario import Scenario, State

MSS = 1448


def S(i: int) -> int:
    """Relative sequence number of the first byte of our i-th full segment (0-based)."""
    return 1 + i * MSS


def test_rto_doubles_on_each_expiry() -> None:
    """RFC 6298 §5.5: each expiry doubles the RTO. After a 100 ms handshake, RTO = 0.1 + 4·0.05
    = 0.3 s; the segment is resent after 0.3, 0.6, 1.2, 2.4 s."""
    h = Scenario()
    conn = h.passive_open(rtt=0.1)
    assert conn.rtt.rto == pytest.approx(0.3)
    h.send(b"d" * 100)
    h.expect("P.", seq=1, payload_len=100)
    for delay in (0.3, 0.6, 1.2, 2.4):
        h.expect_within(5, "P.", seq=1, payload_len=100, after=delay)
    # The ACK echoes the last retransmission's TSval: a valid sample (RFC 7323 §4.1), which ends
    # the backoff; nothing more is sent.
    h.inject(".", seq=1, ack=101, at=h.t + 0.1)
    assert conn.rtt.backoffs == 0 and conn.rtt.rto < 0.5
    h.expect_silence(10)


def test_rto_backoff_is_capped_at_max_rto() -> None:
    """RFC 6298 §2.5: a maximum may be placed on the RTO (here TcpConfig.max_rto = 2 s)."""
    h = Scenario(max_rto=2.0)
    h.passive_open(rtt=0.1)
    h.send(b"d" * 10)
    h.expect("P.", seq=1)
    for delay in (0.3, 0.6, 1.2, 2.0, 2.0, 2.0):
        h.expect_within(5, "P.", seq=1, payload_len=10, after=delay)


def test_min_rto_floor() -> None:
    """RFC 6298 §2.4: the RTO has a floor (TcpConfig.min_rto = 0.2 s, Linux's TCP_RTO_MIN): with
    an instantaneous handshake the first retransmission comes after 0.2 s."""
    h = Scenario()
    conn = h.passive_open(rtt=0.0)
    assert conn.rtt.rto == pytest.approx(0.2)
    h.send(b"d")
    h.expect("P.", seq=1)
    h.expect_within(1, "P.", seq=1, after=0.2)


def test_retransmissions_exhausted_etimedout() -> None:
    """RFC 9293 §3.8.3 (R2) / Linux tcp_retries2: after TcpConfig.data_retries retransmissions
    the connection is dropped with ETIMEDOUT and a reset."""
    h = Scenario(data_retries=3)
    conn = h.passive_open(rtt=0.1)
    h.send(b"d" * 100)
    h.expect("P.", seq=1)
    for delay in (0.3, 0.6, 1.2):
        h.expect_within(5, "P.", seq=1, after=delay)
    h.expect_within(5, "R.", seq=101, ack=1, after=2.4)
    assert conn.state == State.CLOSED
    with pytest.raises(TimeoutError):
        conn.raise_error()
    assert not h.tcp.connections


def test_rto_collapses_cwnd_to_one_segment() -> None:
    """RFC 5681 §3.1: after a timeout cwnd is the loss window (1 SMSS); only the first
    unacknowledged segment is resent, and slow start resumes from there (go-back-N).

    (Since RACK-TLP, RFC 8985 §7: the whole flight unanswered first draws a tail loss probe —
    the last segment again — after PTO = 2·SRTT = 0.2 s; the RTO runs from the probe.)"""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"x" * 10 * MSS)
    assert len(h.sent()) == 10
    h.expect_within(1, "P.", seq=S(9), payload_len=MSS, after=0.2)
    h.expect_within(1, ".", seq=S(0), payload_len=MSS, after=0.3)
    h.expect_nothing()
    assert conn.cc.cwnd == MSS
    h.inject(".", seq=1, ack=S(1), at=h.t + 0.1)
    h.expect(".", seq=S(1), payload_len=MSS)
    h.expect(".", seq=S(2), payload_len=MSS)
    h.expect_nothing()


def test_fast_retransmit_after_three_dupacks_newreno() -> None:
    """RFC 5681 §3.2 / RFC 6582 (SACK off): the third duplicate ACK triggers the retransmission of
    the first unacknowledged segment at once, with ssthresh = FlightSize/2 and cwnd inflated by
    3·SMSS; each further duplicate ACK inflates cwnd by one SMSS and lets new data out."""
    h = Scenario(congestion="newreno", sack=False)
    conn = h.passive_open(rtt=0.1)
    h.send(b"x" * 20 * MSS)
    assert len(h.sent()) == 10  # segment 0 is lost
    h.inject(".", seq=1, ack=1, at=0.201)
    h.inject(".", seq=1, ack=1, at=0.202)
    h.expect_nothing()  # two duplicate ACKs are not enough
    h.inject(".", seq=1, ack=1, at=0.203)
    h.expect(".", seq=S(0), payload_len=MSS)
    assert conn.in_recovery and conn.cc.ssthresh == 5 * MSS
    h.expect_nothing()
    for _ in range(3):  # cwnd 5+3+3 = 11 segments > 10 in flight only after the third
        h.inject(".", seq=1, ack=1)
    h.expect(".", seq=S(10), payload_len=MSS)
    h.expect_nothing()
    # The full ACK (everything up to the recovery point) ends recovery: cwnd = ssthresh.
    h.inject(".", seq=1, ack=S(10), at=0.3)
    assert not conn.in_recovery and conn.cc.cwnd == 5 * MSS
    assert [o.seq for o in h.sent()] == [S(11), S(12), S(13), S(14)]  # 5 in flight


def test_newreno_partial_ack_retransmits_next_hole() -> None:
    """RFC 6582 §3.2 step 5: a partial ACK (below the recovery point) means the next segment
    was lost too: it is retransmitted at once, without waiting for three more dupacks."""
    h = Scenario(congestion="newreno", sack=False)
    conn = h.passive_open(rtt=0.1)
    h.send(b"x" * 10 * MSS)
    assert len(h.sent()) == 10  # segments 0 and 4 are lost
    for i in range(3):
        h.inject(".", seq=1, ack=1, at=0.201 + i / 1000)
    h.expect(".", seq=S(0))
    h.inject(".", seq=1, ack=S(4), at=0.3)  # segment 0 arrived; 1-3 were there already
    h.expect(".", seq=S(4), payload_len=MSS)
    assert conn.in_recovery
    h.inject(".", seq=1, ack=S(10), at=0.4)
    assert not conn.in_recovery
    h.expect_silence(5)  # everything acknowledged: no timer left to fire


def test_sack_recovery_retransmits_only_the_holes() -> None:
    """RFC 6675 with RACK (RFC 8985): segments 0 and 4 of ten are lost. Three SACKed segments
    above segment 0 make it lost (RACK's reordering window is zero once DupThresh segments are
    SACKed and no reordering was seen: §6.2 step 4, the DupThresh rule in time) and start
    recovery (cwnd = ssthresh = 5 segments, NewReno). In recovery that window stays zero, so
    segment 4 is lost as soon as segment 5, sent after it, is SACKed; it is retransmitted as soon
    as the pipe (§4 SetPipe, with RACK's lost marks) has room — before any cumulative ACK — and
    new data fills what the pipe leaves of cwnd.

    (Before RACK, segment 4 waited for a third SACKed segment above it, RFC 6675's IsLost.)"""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"x" * 20 * MSS)
    assert len(h.sent()) == 10

    def dupack(*blocks: tuple[int, int]) -> None:
        h.inject(".", seq=1, ack=1, options={"ts": (h.peer_ts(), h.last_tsval), "sack": list(blocks)})

    h.at(0.2)
    dupack((S(1), S(2)))
    dupack((S(1), S(3)))
    h.expect_nothing()
    dupack((S(1), S(4)))
    h.expect(".", seq=S(0), payload_len=MSS)
    h.expect_nothing()  # pipe: segments 4-9 and the retransmission = 7 > cwnd 5
    assert conn.in_recovery and conn.cc.cwnd == 5 * MSS
    dupack((S(5), S(6)), (S(1), S(4)))  # segment 4 is lost; pipe 5 (6-9 and 0's resend)
    h.expect_nothing()
    dupack((S(5), S(7)), (S(1), S(4)))  # pipe 4: room for segment 4
    h.expect(".", seq=S(4), payload_len=MSS)
    h.expect_nothing()
    dupack((S(5), S(8)), (S(1), S(4)))  # pipe 4 again: new data (NextSeg rule 2)
    h.expect(".", seq=S(10), payload_len=MSS)
    h.expect_nothing()
    h.inject(".", seq=1, ack=S(10), at=0.3)
    assert not conn.in_recovery
    assert conn.stats["retransmitted_segments"] == 2


def test_zero_window_probes_back_off() -> None:
    """RFC 9293 §3.8.6.1: with a zero window and data queued, probe after one RTO, then back off
    exponentially (here up to TcpConfig.max_persist = 2 s). Each probe is one byte at SND.UNA,
    the same byte every time while the window stays shut (RFC 1122 §4.2.2.17)."""
    h = Scenario(max_persist=2.0)
    conn = h.passive_open(rtt=0.1, win=0)
    rto = conn.rtt.rto
    assert rto == pytest.approx(0.3)
    h.send(b"y" * 5000)
    h.expect_nothing()
    for delay in (rto, 2 * rto, 4 * rto, 2.0, 2.0):
        h.expect_within(5, ".", seq=1, payload_len=1, payload=b"y", after=delay)
        h.inject(".", seq=1, ack=1, win=0, ts=(h.peer_ts(), 0))  # "still no room"
        h.expect_nothing()  # no retransmission storm: these are not duplicate ACKs
    assert conn.stats["zero_window_probes"] == 5 and conn.dupacks == 0


def test_window_opening_ends_persist_and_resends_the_probe_byte() -> None:
    """When the window opens, sending resumes at SND.UNA: the unacknowledged probe byte (which
    a full receiver drops) goes again, followed by the rest; the probes stop."""
    h = Scenario()
    h.passive_open(rtt=0.1, win=0)
    h.send(b"0123456789" * 300)
    h.expect_within(1, ".", seq=1, payload=b"0", after=0.3)
    h.inject(".", seq=1, ack=1, win=100, at=0.5)  # 100 << 7 = 12800 bytes
    h.expect(".", seq=1, payload_len=MSS, payload=(b"0123456789" * 300)[:MSS])
    h.expect(".", seq=1 + MSS, payload_len=MSS)
    h.expect_nothing()  # the 104-byte tail: Nagle
    h.inject(".", seq=1, ack=1 + 2 * MSS, at=0.6)
    h.expect("P.", seq=1 + 2 * MSS, payload_len=3000 - 2 * MSS)
    h.inject(".", seq=1, ack=3001, at=0.7)
    h.expect_silence(10)


def test_zero_window_probe_accepted_by_peer() -> None:
    """A peer that has room after all takes the probe byte: SND.UNA moves on and the next
    probe carries the next byte."""
    h = Scenario()
    h.passive_open(rtt=0.1, win=0)
    h.send(b"abc")
    h.expect_within(1, ".", seq=1, payload=b"a", after=0.3)
    h.inject(".", seq=1, ack=2, win=0)
    h.expect_within(1, ".", seq=2, payload=b"b", after=0.6)


def test_persist_runs_even_with_keepalive_enabled() -> None:
    """Keep-alive and persist share one timer slot: with SO_KEEPALIVE on, a zero window must
    still be probed after an RTO (not after keepalive_idle), and keep-alive resumes after."""
    h = Scenario()
    conn = h.passive_open(rtt=0.1, win=0)
    conn.keepalive = True
    conn._arm_keepalive(h.now)  # what TcpSocket.setsockopt(SO_KEEPALIVE) does
    h.send(b"data")
    h.expect_within(1, ".", seq=1, payload=b"d", after=0.3)
    h.inject(".", seq=1, ack=1, win=1000, at=0.5)
    h.expect("P.", seq=1, payload=b"data")
    h.inject(".", seq=1, ack=5, at=0.6)
    probe = h.expect_within(8000, ".", seq=4, payload_len=0)  # keep-alive probe: SND.NXT - 1
    assert probe.time == pytest.approx(0.6 + 7200)


def test_small_window_override_timeout() -> None:
    """RFC 9293 §3.8.6.2.1: sender SWS avoidance holds back a segment smaller than both the MSS
    and half the largest window the peer offered — but with nothing in flight no ACK will ever
    come, so after the override timeout (the persist timer) the small segment goes out."""
    h = Scenario()
    h.passive_open(options={"mss": 1460, "ts": (0, 0)}, rtt=0.1)  # no window scaling
    h.inject(".", seq=1, ack=1, win=1000)  # peer's buffer is nearly full: 1000 < 65535/2
    h.send(b"s" * 5000)
    h.expect_nothing()
    h.expect_within(1, ".", seq=1, payload_len=1000, after=0.3)
    h.inject(".", seq=1, ack=1001, win=65535, at=0.5)
    h.expect(".", seq=1001, payload_len=MSS)
    h.expect(".", seq=1001 + MSS, payload_len=MSS)


def test_karn_keeps_the_backed_off_rto_until_a_valid_sample() -> None:
    """Karn's algorithm (RFC 6298 §3 and §5, RFC 1122 §4.2.3.1), timestamps off: the ACK of a
    retransmitted segment gives no RTT sample, so the backed-off RTO (0.6 s) stays for the next
    segment; an ACK of a segment sent once is a sample and collapses the RTO again."""
    h = Scenario(timestamps=False)
    conn = h.passive_open(rtt=0.1)
    h.send(b"a")
    h.expect("P.", seq=1)
    h.expect_within(1, "P.", seq=1, after=0.3)
    h.inject(".", seq=1, ack=2, at=h.t + 0.1)  # ambiguous: the original or the retransmission?
    h.send(b"b")
    h.expect("P.", seq=2)
    h.expect_within(1, "P.", seq=2, after=0.6)  # still backed off
    h.inject(".", seq=1, ack=3, at=h.t + 0.1)
    h.send(b"c")
    h.expect("P.", seq=3)
    h.inject(".", seq=1, ack=4, at=h.t + 0.1)  # "c" was sent once: a valid sample
    assert conn.rtt.backoffs == 0
    rto = conn.rtt.rto
    assert rto < 0.35
    h.send(b"d")
    h.expect("P.", seq=4)
    h.expect_within(1, "P.", seq=4, after=rto)
