"""Scenarios: keep-alives (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): probes after the idle time,
their interval and count, ETIMEDOUT, and an answered probe putting the connection back to idle."""

from __future__ import annotations

import pytest

from scenario import Scenario, State


def keepalive_on(h: Scenario) -> None:
    assert h.conn is not None
    h.conn.keepalive = True
    h.conn._arm_keepalive(h.now)  # what TcpSocket.setsockopt(SO_KEEPALIVE, 1) does


def test_keepalive_probes_then_etimedout() -> None:
    """After keepalive_idle (7200 s, RFC 1122: at least two hours) a probe <SEQ=SND.NXT-1> with no
    data; then one every keepalive_interval (75 s); after keepalive_count (9) unanswered probes
    the connection is dropped with a reset and ETIMEDOUT."""
    h = Scenario()
    conn = h.passive_open()
    keepalive_on(h)
    h.expect_within(7300, ".", seq=0, ack=1, payload_len=0, after=7200)
    for _ in range(8):
        h.expect_within(100, ".", seq=0, ack=1, payload_len=0, after=75)
    h.expect_within(100, "R.", seq=1, ack=1, after=75)
    assert conn.state == State.CLOSED
    assert h.t == pytest.approx(7200 + 9 * 75)
    with pytest.raises(TimeoutError):
        conn.raise_error()


def test_answered_keepalive_resets_the_idle_clock() -> None:
    """The peer answers the probe: the connection is idle again and the next probe comes
    keepalive_idle after that answer."""
    h = Scenario()
    h.passive_open()
    keepalive_on(h)
    h.expect_within(7300, ".", seq=0, after=7200)
    h.inject(".", seq=1, ack=1, at=h.t + 0.05)
    h.expect_within(7300, ".", seq=0, after=7200)
    assert h.state == State.ESTABLISHED


def test_keepalive_settings() -> None:
    """keepalive_idle / interval / count from TcpConfig (TCP_KEEPIDLE, TCP_KEEPINTVL,
    TCP_KEEPCNT)."""
    h = Scenario(keepalive_idle=10.0, keepalive_interval=2.0, keepalive_count=2)
    conn = h.passive_open()
    keepalive_on(h)
    h.expect_within(20, ".", seq=0, after=10)
    h.expect_within(20, ".", seq=0, after=2)
    h.expect_within(20, "R.", after=2)
    assert conn.state == State.CLOSED


def test_traffic_postpones_keepalive() -> None:
    """Segments from the peer keep the connection from being idle: no probe while they come."""
    h = Scenario(keepalive_idle=10.0)
    h.passive_open()
    keepalive_on(h)
    for t in (5, 10, 15):
        h.inject("P.", seq=1 + (t // 5 - 1), ack=1, payload=b"k", at=t)
        h.expect_within(0.1, ".", after=0.04)
    h.expect_within(20, ".", seq=0, payload_len=0, after=10 - 0.04)
