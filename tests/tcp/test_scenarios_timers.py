"""Scenarios: timers at their edges — retransmission timeout and backoff (RFC 6298), giving up on
SYNs, SYN-ACKs, data and FINs (RFC 9293 §3.8.3, Linux's tcp_*retries*), keep-alive (RFC 9293
§3.8.4, RFC 1122 §4.2.3.6) and delayed ACKs (RFC 9293 §3.8.6.3, RFC 5681 §4.2). The peers here
do not offer SACK, so no RACK-TLP probe comes before an RTO."""

from __future__ import annotations

import errno

import pytest

from scenario import Scenario, State

NO_SACK = {"mss": 1460, "ts": (0, 0), "wscale": 7}
MSS = 1448


def keepalive_on(h: Scenario) -> None:
    assert h.conn is not None
    h.conn.keepalive = True
    h.conn._arm_keepalive(h.now)  # what TcpSocket.setsockopt(SO_KEEPALIVE, 1) does


# -- retransmission timeout ---------------------------------------------------------------------
def test_initial_rto_is_configurable() -> None:
    """TcpConfig.initial_rto = 3 s (RFC 1122's old value; RFC 6298 §2.1 says 1 s): the SYN is
    resent after 3 s, then 6 s."""
    h = Scenario(initial_rto=3.0)
    h.connect()
    h.expect("S", seq=0)
    h.expect_within(4, "S", seq=0, after=3.0)
    h.expect_within(7, "S", seq=0, after=6.0)


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_syn_retries_configurable(retries: int) -> None:
    """TcpConfig.syn_retries: that many SYN retransmissions (1, 2, 4 s apart), then ETIMEDOUT at
    the next expiry — no RST (nothing to reset)."""
    h = Scenario(syn_retries=retries)
    conn = h.connect()
    h.expect("S", seq=0)
    delay = 1.0
    for _ in range(retries):
        h.expect_within(delay + 1, "S", seq=0, after=delay)
        delay *= 2
    h.expect_silence(delay - 0.001)
    h.advance(0.001)
    assert conn.state == State.CLOSED and conn.error == errno.ETIMEDOUT
    h.expect_nothing()


def test_synack_retries_configurable() -> None:
    """TcpConfig.synack_retries = 1: one SYN-ACK retransmission after 1 s, then at 3 s the
    half-open connection is dropped with a reset; the listener forgets it."""
    h = Scenario(synack_retries=1)
    lst = h.listen()
    h.inject("S", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.expect_within(2, "S.", seq=0, ack=1, after=1.0)
    h.expect_within(3, "R.", seq=1, after=2.0)
    assert not lst.syn_queue and not h.tcp.connections


def test_fin_retransmissions_exhausted() -> None:
    """An unacknowledged FIN is retransmitted like data and, after data_retries, the connection
    is given up with a reset (FIN-WAIT-1 does not hang forever)."""
    h = Scenario(data_retries=2)
    conn = h.passive_open(options=NO_SACK, rtt=0.1)
    h.close()
    h.expect("F.", seq=1)
    h.expect_within(1, "F.", seq=1, after=0.3)
    h.expect_within(1, "F.", seq=1, after=0.6)
    h.expect_within(2, "R.", seq=2, after=1.2)
    assert conn.state == State.CLOSED and not h.tcp.connections


def test_rto_restarts_on_partial_ack() -> None:
    """RFC 6298 §5.3: an ACK for new data restarts the timer, so the RTO counts from that ACK —
    the rest of the flight is resent 0.3 s after the partial ACK, not after the first send."""
    h = Scenario(nodelay=True)
    h.passive_open(options=NO_SACK, rtt=0.1)
    h.send(b"a" * 100)
    h.send(b"b" * 100)
    h.expect("P.", seq=1)
    h.expect("P.", seq=101)
    h.inject(".", seq=1, ack=101, at=0.3)  # 0.2 s after sending
    h.expect_within(1, "P.", seq=101, after=h.conn.rtt.rto if h.conn else 0)


def test_ack_after_backoff_resets_the_timer_to_the_measured_rto() -> None:
    """After three expiries (RTO backed off to 2.4 s) an ACK with a valid timestamp echo gives a
    fresh sample: new data is then protected by the measured RTO, not the backed-off one."""
    h = Scenario()
    conn = h.passive_open(options=NO_SACK, rtt=0.1)
    h.send(b"x" * 10)
    h.expect("P.", seq=1)
    for delay in (0.3, 0.6, 1.2):
        h.expect_within(2, "P.", seq=1, after=delay)
    h.inject(".", seq=1, ack=11, at=h.t + 0.1)
    assert conn.rtt.backoffs == 0
    h.send(b"y" * 10)
    h.expect("P.", seq=11)
    out = h.expect_within(3, "P.", seq=11)
    assert out.elapsed < 1.0


def test_retransmission_carries_current_ack_and_window() -> None:
    """A retransmitted segment is rebuilt, not replayed: its ACK field is the current RCV.NXT
    (data received since the first send) and its TSval the current clock."""
    h = Scenario()
    h.passive_open(options=NO_SACK, rtt=0.1)
    h.send(b"q" * 10)
    first = h.expect("P.", seq=1, ack=1)
    h.inject("P.", seq=1, ack=1, payload=b"incoming", at=0.15)
    h.expect_within(0.1, ".", ack=9)
    again = h.expect_within(2, "P.", seq=1, payload=b"q" * 10)
    assert again.ack == 9 and again.ts[0] > first.ts[0]


def test_max_rto_caps_syn_backoff() -> None:
    """TcpConfig.max_rto caps the SYN backoff too: 1, 2, 2, 2 s."""
    h = Scenario(max_rto=2.0)
    h.connect()
    h.expect("S", seq=0)
    for delay in (1.0, 2.0, 2.0, 2.0):
        h.expect_within(3, "S", seq=0, after=delay)


# -- keep-alive ----------------------------------------------------------------------------------
def test_keepalive_in_close_wait() -> None:
    """Keep-alive runs in CLOSE-WAIT too (the peer closed its half; ours may idle for long)."""
    h = Scenario(keepalive_idle=10.0, keepalive_interval=1.0, keepalive_count=1)
    conn = h.passive_open()
    h.inject("F.", seq=1, ack=1)
    h.expect(".", ack=2)
    keepalive_on(h)
    h.expect_within(11, ".", seq=0, ack=2, payload_len=0, after=10.0)
    h.expect_within(2, "R.", seq=1, after=1.0)
    assert conn.state == State.CLOSED


def test_keepalive_answered_by_reset() -> None:
    """A rebooted peer answers the probe with a RST at SEQ = the probe's ACK: exact, so the
    connection is reset (ECONNRESET) — the purpose of keep-alive."""
    h = Scenario(keepalive_idle=10.0)
    conn = h.passive_open()
    keepalive_on(h)
    probe = h.expect_within(11, ".", seq=0, after=10.0)
    h.inject("R", seq=probe.ack)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNRESET


def test_keepalive_answered_by_data_resets_probe_count() -> None:
    """Data from the peer answers for it: the probe count starts over; the next probe waits a
    whole idle time from that data."""
    h = Scenario(keepalive_idle=10.0, keepalive_interval=1.0, keepalive_count=2)
    conn = h.passive_open()
    keepalive_on(h)
    h.expect_within(11, ".", seq=0, after=10.0)
    h.expect_within(2, ".", seq=0, after=1.0)
    h.inject("P.", seq=1, ack=1, payload=b"alive", at=h.t + 0.5)
    assert conn.keepalive_probes == 0
    h.expect_within(0.1, ".", ack=6, after=0.04)
    probe = h.expect_within(11, ".", seq=0, ack=6, payload_len=0)
    assert probe.elapsed == pytest.approx(10.0 - 0.04)


def test_no_keepalive_probe_while_data_is_outstanding() -> None:
    """With data unacknowledged, the retransmission timer owns the connection: no keep-alive
    probes in between retransmissions (RFC 9293 §3.8.4 MUST-26: "only ... when no sent data is
    outstanding"). Bug fixed here: a probe went out at keepalive_idle while data was in flight."""
    h = Scenario(keepalive_idle=1.0, keepalive_interval=0.5, data_retries=3)
    h.passive_open(options=NO_SACK, rtt=0.1)
    keepalive_on(h)
    h.send(b"z" * 10)
    h.expect("P.", seq=1)
    for delay in (0.3, 0.6, 1.2):
        h.expect_within(2, "P.", seq=1, payload=b"z" * 10, after=delay)


def test_keepalive_off_never_probes() -> None:
    """Keep-alive is off by default (RFC 1122: "MUST default to off")."""
    h = Scenario(keepalive_idle=1.0)
    h.passive_open()
    h.expect_silence(100)
    assert h.state == State.ESTABLISHED


def test_keepalive_probe_carries_timestamps() -> None:
    """The probe is an ordinary segment: TSval our clock, TSecr the peer's TS.Recent."""
    h = Scenario(keepalive_idle=5.0)
    h.passive_open()
    keepalive_on(h)
    probe = h.expect_within(6, ".", seq=0, after=5.0)
    assert probe.ts == (h.our_ts(), 5000)


# -- delayed ACKs --------------------------------------------------------------------------------
def test_two_small_segments_wait_for_the_timer() -> None:
    """RFC 5681 §4.2 asks for an ACK at least every second *full-sized* segment: two 10-byte
    segments are acknowledged together by the delayed-ACK timer, 40 ms after the first."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"0123456789")
    h.inject("P.", seq=11, ack=1, payload=b"abcdefghij", at=0.01)
    h.expect_nothing()
    h.expect_within(0.1, ".", ack=21, after=0.03)


def test_reply_within_the_delay_carries_the_ack() -> None:
    """The application answers within 40 ms: the reply carries the ACK and the timer sends no
    pure ACK afterwards."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"ping")
    h.advance(0.01)
    assert h.recv() == b"ping"
    h.send(b"pong")
    h.expect("P.", seq=1, ack=5, payload=b"pong")
    h.expect_silence(0.15)  # past the 40 ms delayed-ACK deadline, before the 0.2 s RTO


def test_filling_a_hole_is_acked_at_once() -> None:
    """RFC 5681 §4.2: a segment that fills a gap in the sequence space is acknowledged at once."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=11, ack=1, payload=b"later")
    h.expect(".", ack=1)
    h.inject("P.", seq=1, ack=1, payload=b"0123456789")
    h.expect(".", ack=16)


def test_push_does_not_force_an_immediate_ack() -> None:
    """PSH is for the receiver's application, not an ACK request: a single PSH segment is still
    acknowledged by the delayed-ACK timer (40 ms), as Linux does."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"push")
    h.expect_nothing()
    h.expect_within(0.1, ".", ack=5, after=0.04)


def test_delayed_ack_is_not_restarted_by_more_data() -> None:
    """The delayed-ACK timer runs from the first unacknowledged segment: a second, out-of-window
    duplicate 30 ms later does not push the ACK back."""
    h = Scenario(delack_timeout=0.1)
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"x")
    h.inject("P.", seq=1, ack=1, payload=b"x", at=0.03)  # a duplicate: ACKed at once
    h.expect(".", ack=2)
    h.expect_silence(0.2)


def test_window_update_after_read_is_not_delayed() -> None:
    """After a zero window, the read that opens it sends the window update at once (a delayed
    update would stall the sender for 40 ms or a persist interval)."""
    h = Scenario(rcvbuf=2 * MSS)
    h.passive_open()
    h.inject(".", seq=1, ack=1, payload=b"a" * MSS)
    h.inject(".", seq=1 + MSS, ack=1, payload=b"b" * MSS)
    h.expect(".", ack=1 + 2 * MSS, win=0)
    h.recv()
    h.expect(".", ack=1 + 2 * MSS)
