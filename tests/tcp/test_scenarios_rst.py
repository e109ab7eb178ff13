"""Scenarios: resets and blind-attack defences — RST in every synchronized state (RFC 9293
§3.10.7.4 second), RFC 5961's exact-match rule with challenge ACKs (§3.2), SYN in a synchronized
state (§4), ACK validation (§5.2) and the challenge ACK rate limit (§7), RFC 1337's TIME-WAIT
protection, and PAWS (RFC 7323 §5)."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest

from scenario import Scenario, State


def established(h: Scenario) -> int:
    h.passive_open()
    return 1  # RCV.NXT, relative


def fin_wait_1(h: Scenario) -> int:
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    return 1


def fin_wait_2(h: Scenario) -> int:
    h.passive_open()
    h.shutdown()
    h.expect("F.", seq=1)
    h.inject(".", seq=1, ack=2)
    return 1


def close_wait(h: Scenario) -> int:
    h.passive_open()
    h.inject("F.", seq=1, ack=1)
    h.expect(".", ack=2)
    return 2


def closing(h: Scenario) -> int:
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject("F.", seq=1, ack=1)
    h.expect(".", ack=2)
    return 2


def last_ack(h: Scenario) -> int:
    h.passive_open()
    h.inject("F.", seq=1, ack=1)
    h.expect(".", ack=2)
    h.close()
    h.expect("F.", seq=1, ack=2)
    return 2


STATES: dict[State, tuple[Callable[[Scenario], int], int]] = {
    State.ESTABLISHED: (established, errno.ECONNRESET),
    State.FIN_WAIT_1: (fin_wait_1, errno.ECONNRESET),
    State.FIN_WAIT_2: (fin_wait_2, errno.ECONNRESET),
    State.CLOSE_WAIT: (close_wait, errno.ECONNRESET),
    State.CLOSING: (closing, 0),  # §3.10.7.4: CLOSING/LAST-ACK just enter CLOSED
    State.LAST_ACK: (last_ack, 0),
}


@pytest.mark.parametrize("state", list(STATES), ids=lambda s: s.name)
def test_exact_rst_resets_in_every_state(state: State) -> None:
    """RFC 5961 §3.2: a RST whose SEQ is exactly RCV.NXT resets the connection (ECONNRESET to
    the application where it can still use the socket); nothing is sent in reply."""
    h = Scenario()
    setup, err = STATES[state]
    rcv_nxt = setup(h)
    assert h.state == state
    h.inject("R.", seq=rcv_nxt, ack=1, at=0.05)
    h.expect_nothing()
    assert h.state == State.CLOSED and not h.tcp.connections
    assert h.conn is not None and h.conn.error == err


@pytest.mark.parametrize("state", list(STATES), ids=lambda s: s.name)
def test_in_window_rst_gets_challenge_ack_in_every_state(state: State) -> None:
    """RFC 5961 §3.2: a RST inside the window but not at RCV.NXT is answered with a challenge ACK
    <SEQ=SND.NXT><ACK=RCV.NXT> and otherwise ignored: a real peer answers with an exact RST."""
    h = Scenario()
    rcv_nxt = STATES[state][0](h)
    h.inject("R", seq=rcv_nxt + 5000, at=0.05)
    h.expect(".", ack=rcv_nxt)
    assert h.state == state
    assert h.conn is not None and h.conn.stats["challenge_acks"] == 1


@pytest.mark.parametrize("state", list(STATES), ids=lambda s: s.name)
def test_out_of_window_rst_is_ignored_in_every_state(state: State) -> None:
    """RFC 5961 §3.2 / RFC 9293 §3.10.7.4: a RST outside the window is silently dropped."""
    h = Scenario()
    rcv_nxt = STATES[state][0](h)
    h.inject("R.", seq=rcv_nxt + 5_000_000, ack=1, at=0.05)
    h.inject("R", seq=rcv_nxt - 1, at=0.05)
    h.expect_nothing()
    assert h.state == state


def test_rst_in_time_wait_is_ignored() -> None:
    """RFC 1337 (TIME-WAIT assassination, hazard H1): TIME-WAIT ignores RSTs and runs its 2·MSL."""
    h = Scenario()
    h.passive_open()
    h.close()
    h.expect("F.", seq=1)
    h.inject("F.", seq=1, ack=2)
    h.expect(".", seq=2, ack=2)
    h.inject("R", seq=2, at=1.0)
    h.inject("R.", seq=2, ack=2, at=1.0)
    h.expect_nothing()
    assert h.state == State.TIME_WAIT
    h.advance(59.0)
    assert h.state == State.CLOSED


def test_rst_after_reset_reports_econnreset_once() -> None:
    """After a reset, the first call reports ECONNRESET; later sends fail with EPIPE."""
    h = Scenario()
    h.passive_open()
    h.inject("R", seq=1)
    with pytest.raises(ConnectionResetError):
        h.send(b"x")
    with pytest.raises(BrokenPipeError):
        h.send(b"x")


def test_syn_in_established_gets_challenge_ack() -> None:
    """RFC 5961 §4.2: a SYN in a synchronized state — in window or not — never resets the
    connection; it gets a challenge ACK and the connection carries on."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("S", seq=100, options={"mss": 1460}, at=0.1)  # in window
    h.expect(".", seq=1, ack=1)
    h.inject("S", seq=-1000, options={"mss": 1460}, at=0.2)  # before the window
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED
    h.inject("P.", seq=1, ack=1, payload=b"still here")
    assert h.recv() == b"still here"


def test_challenge_acks_are_rate_limited() -> None:
    """RFC 5961 §7: challenge ACKs are rate-limited (TcpConfig.challenge_ack_per_second = 10,
    a token bucket per connection): a burst of 15 in-window RSTs gets 10 ACKs; half a second
    later 5 more tokens have accrued."""
    h = Scenario()
    conn = h.passive_open()
    h.at(1.0)
    for i in range(15):
        h.inject("R", seq=100 + i)
    assert len(h.sent()) == 10
    h.at(1.5)
    for i in range(8):
        h.inject("R", seq=100 + i)
    assert len(h.sent()) == 5
    assert conn.stats["challenge_acks_rate_limited"] == 8
    assert conn.state == State.ESTABLISHED


def test_ack_too_old_gets_challenge_ack_and_is_dropped() -> None:
    """RFC 5961 §5.2: an ACK below SND.UNA - MAX.SND.WND is not acceptable: the segment (data and
    all) is dropped and an ACK sent."""
    h = Scenario()
    h.passive_open(options={"mss": 1460, "ts": (0, 0)}, win=65535)  # MAX.SND.WND = 65535
    h.inject("P.", seq=1, ack=-70_000, payload=b"blind injection")
    h.expect(".", seq=1, ack=1)
    with pytest.raises(BlockingIOError):
        h.recv()
    h.inject("P.", seq=1, ack=-60_000, payload=b"old but acceptable ACK")
    assert h.recv() == b"old but acceptable ACK"


def test_paws_drops_old_timestamp_with_an_ack() -> None:
    """RFC 7323 §5.3 R1: a segment whose TSval is older than TS.Recent is an old duplicate: drop
    it and send an ACK; RSTs are exempt (§5.2: RSTs are accepted whatever their timestamp)."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"new", ts=(6000, h.last_tsval), at=1.0)
    h.expect_within(0.1, ".", ack=4)
    h.inject("P.", seq=4, ack=1, payload=b"old", ts=(5999, h.last_tsval), at=2.0)
    h.expect(".", seq=1, ack=4)
    assert h.recv() == b"new"
    assert conn.drops["tcp_paws_rejected"] == 1
    h.inject("R", seq=4, ts=(1, 0))
    assert conn.state == State.CLOSED


def test_out_of_window_data_gets_an_ack() -> None:
    """RFC 9293 §3.10.7.4 first: data entirely beyond the window is not acceptable: ACK it
    (<SEQ=SND.NXT><ACK=RCV.NXT>) and drop it."""
    h = Scenario(rcvbuf=8192)
    h.passive_open()
    h.inject("P.", seq=9000, ack=1, payload=b"far ahead")
    h.expect(".", seq=1, ack=1, win=8192)
    with pytest.raises(BlockingIOError):
        h.recv()
