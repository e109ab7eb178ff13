"""Scenarios: RFC 5961 (blind in-window attacks) — the three defences in every synchronized state
where they apply: RST with an inexact in-window sequence number (§3.2), SYN in a synchronized state
(§4.2), data with an unacceptable ACK (§5.2) — and the challenge ACK rate limit (§7), which all
three share."""

from __future__ import annotations

import errno

import pytest

from scenario import Scenario, State, snd_nxt_in, to_state

LIVE_STATES = [State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK]


@pytest.mark.parametrize("state", LIVE_STATES, ids=lambda s: s.name)
def test_syn_in_window_in_every_state_gets_challenge_ack(state: State) -> None:
    """§4.2: a SYN in any synchronized state — whatever its sequence number — is answered with a
    challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT> and dropped; the connection carries on (RFC 9293
    §3.10.7.4 fourth, as updated by RFC 5961, no longer resets)."""
    h = Scenario()
    rcv_nxt = to_state(h, state)
    h.inject("S", seq=rcv_nxt + 10, options={"mss": 1460}, at=0.05)
    h.expect(".", seq=snd_nxt_in(state), ack=rcv_nxt)
    h.expect_nothing()
    assert h.state == state
    assert h.conn is not None and h.conn.stats["challenge_acks"] == 1


@pytest.mark.parametrize("state", LIVE_STATES, ids=lambda s: s.name)
def test_data_with_too_old_ack_in_every_state_is_dropped(state: State) -> None:
    """§5.2: SEG.ACK below SND.UNA − MAX.SND.WND: discard the segment (its data is never
    delivered) and send a challenge ACK."""
    h = Scenario()
    rcv_nxt = to_state(h, state)
    h.inject("P.", seq=rcv_nxt, ack=-(70_000 << 7) - 10, payload=b"forged", at=0.05)
    h.expect(".", seq=snd_nxt_in(state), ack=rcv_nxt)
    assert h.state == state
    assert h.conn is not None and h.conn.drops["tcp_ack_too_old"] == 1


def test_syn_far_outside_the_window_gets_challenge_ack() -> None:
    """§4.2 applies whether the SYN is in window or not (the original RFC 793 rule reset only for
    in-window SYNs, which is what a blind attacker aims at)."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("S", seq=2**31, options={"mss": 1460})
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED


def test_synack_in_established_gets_challenge_ack() -> None:
    """A SYN-ACK on an established connection is a SYN too (§4): challenge ACK, no state change,
    its ACK field unused."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("S.", seq=0, ack=1, options={"mss": 1460})
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED


def test_syn_with_data_in_established_delivers_nothing() -> None:
    """A SYN carrying data on an established connection: challenge ACK; the data is not taken."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("S", seq=1, options={"mss": 1460}, payload=b"injected")
    h.expect(".", seq=1, ack=1)
    with pytest.raises(BlockingIOError):
        h.recv()
    assert conn.state == State.ESTABLISHED


def test_syn_with_rst_in_established_is_a_reset_check_first() -> None:
    """SYN+RST: RFC 9293 §3.10.7.4 checks RST (second) before SYN (fourth); an inexact in-window
    sequence number therefore gets one challenge ACK (§3.2), never a reset."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("SR", seq=50)
    h.expect(".", seq=1, ack=1)
    h.expect_nothing()
    assert conn.state == State.ESTABLISHED and conn.stats["challenge_acks"] == 1


def test_challenge_ack_dance_then_exact_rst() -> None:
    """§3.2's exchange with a real peer that did restart: its in-window RST draws a challenge ACK;
    the peer, having no connection, answers that ACK with an exact RST (<SEQ=SEG.ACK>), which
    resets."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"abc")
    h.expect_within(0.1, ".", ack=4)
    h.inject("R", seq=200, at=0.5)
    challenge = h.expect(".", seq=1, ack=4)
    h.inject("R", seq=challenge.ack, at=0.51)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNRESET


def test_challenge_ack_carries_a_fresh_timestamp() -> None:
    """The challenge ACK is an ordinary ACK: TSval is our clock now, TSecr the peer's TS.Recent
    (RFC 7323 §3.2: the RST itself does not update TS.Recent)."""
    h = Scenario()
    h.passive_open()
    h.inject("R", seq=99, ts=(9999, 0), at=2.0)
    h.expect(".", seq=1, ack=1, ts=(h.our_ts(), 5000))


def test_challenge_ack_with_data_in_flight() -> None:
    """With 3 bytes unacknowledged, the challenge ACK's SEQ is SND.NXT (4), not SND.UNA."""
    h = Scenario()
    h.passive_open()
    h.send(b"abc")
    h.expect("P.", seq=1, payload=b"abc")
    h.inject("R", seq=500)
    h.expect(".", seq=4, ack=1, payload_len=0)


def test_ack_exactly_at_the_old_edge_is_acceptable() -> None:
    """§5.2's bounds: SND.UNA − MAX.SND.WND ≤ SEG.ACK ≤ SND.NXT. An ACK exactly at the lower edge
    is acceptable (its data is delivered); one below it is not."""
    h = Scenario()
    h.passive_open(options={"mss": 1460, "ts": (0, 0)}, win=40_000)  # MAX.SND.WND 40000
    h.inject("P.", seq=1, ack=1 - 40_001, payload=b"no")
    h.expect(".", seq=1, ack=1)
    h.inject("P.", seq=1, ack=1 - 40_000, payload=b"yes")
    assert h.recv() == b"yes"


def test_ack_for_unsent_data_is_dropped_with_an_ack() -> None:
    """§5.2 upper bound (RFC 9293 §3.10.7.4 fifth): SEG.ACK > SND.NXT — drop the segment and ACK."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=2, payload=b"future ack")
    h.expect(".", seq=1, ack=1)
    with pytest.raises(BlockingIOError):
        h.recv()
    assert conn.drops["tcp_ack_for_unsent"] == 1


def test_rate_limit_is_shared_by_rst_syn_and_old_ack() -> None:
    """§7: one budget (10 per second here) covers all three kinds of challenge: 4 RSTs, 4 SYNs and
    4 old ACKs in one instant get 10 challenge ACKs; 2 are counted as rate limited."""
    h = Scenario()
    conn = h.passive_open()
    h.at(1.0)
    for i in range(4):
        h.inject("R", seq=100 + i)
        h.inject("S", seq=100 + i, options={"mss": 1460})
        h.inject("P.", seq=1, ack=-10_000_000, payload=b"x")
    assert len(h.sent()) == 10
    assert conn.stats["challenge_acks"] == 10 and conn.stats["challenge_acks_rate_limited"] == 2


def test_rate_limit_refills_at_the_configured_rate() -> None:
    """TcpConfig.challenge_ack_per_second = 2: after the bucket is empty, one token accrues every
    0.5 s, not before."""
    h = Scenario(challenge_ack_per_second=2.0)
    conn = h.passive_open()
    h.at(5.0)
    for i in range(5):
        h.inject("R", seq=100 + i)
    assert len(h.sent()) == 2
    h.at(5.4)
    h.inject("R", seq=300)
    h.expect_nothing()
    h.at(5.5)
    h.inject("R", seq=301)
    h.expect(".", seq=1, ack=1)
    assert conn.stats["challenge_acks_rate_limited"] == 4


def test_rate_limit_zero_sends_no_challenge_acks() -> None:
    """challenge_ack_per_second = 0 disables challenge ACKs (still no reset: the RST is dropped)."""
    h = Scenario(challenge_ack_per_second=0.0)
    conn = h.passive_open()
    h.inject("R", seq=100, at=1.0)
    h.inject("S", seq=100, options={"mss": 1460})
    h.expect_nothing()
    assert conn.state == State.ESTABLISHED and conn.stats["challenge_acks_rate_limited"] == 2


def test_rate_limit_is_per_connection() -> None:
    """The budget is per connection: exhausting one connection's does not silence another's."""
    h = Scenario()
    h.passive_open()
    first = h.conn
    h.at(1.0)
    for i in range(12):
        h.inject("R", seq=100 + i)
    assert len(h.sent()) == 10
    h.inject("S", seq=0, options={"mss": 1460}, sport=50001)
    h.expect("S.", seq=0, ack=1, dport=50001)
    h.inject(".", seq=1, ack=1, sport=50001, ts=False)
    h.inject("R", seq=100, sport=50001)
    h.expect(".", seq=1, ack=1, dport=50001)
    assert first is not None and first.state == State.ESTABLISHED


def test_in_window_rst_never_resets_even_in_a_burst() -> None:
    """A blind attacker spraying RSTs across the window (every 1000 bytes of a 64 KB window) never
    hits RCV.NXT exactly and never resets the connection; data still flows afterwards."""
    h = Scenario(challenge_ack_per_second=1000.0)
    conn = h.passive_open()
    for off in range(1000, 64_000, 1000):
        h.inject("R", seq=1 + off)
    assert len(h.sent()) == 63
    assert conn.state == State.ESTABLISHED
    h.inject("P.", seq=1, ack=1, payload=b"alive")
    assert h.recv() == b"alive"


def test_data_with_acceptable_old_ack_is_delivered() -> None:
    """An ACK below SND.UNA but within MAX.SND.WND is a reordered old ACK, not an attack: its data
    is delivered and no challenge is sent."""
    h = Scenario()
    conn = h.passive_open()
    h.send(b"q" * 1000)
    h.expect(seq=1, payload_len=1000)
    h.inject(".", seq=1, ack=1001)
    h.inject("P.", seq=1, ack=1, payload=b"late")
    assert h.recv() == b"late"
    assert conn.stats["challenge_acks"] == 0
