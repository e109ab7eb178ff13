"""Scenarios: TIME-WAIT (RFC 9293 §3.4.2, §3.10.7.4) and RFC 1337's TIME-WAIT assassination
hazards: RSTs never cut 2·MSL short (hazard H1/H2), old duplicates are acknowledged, not taken,
and only a retransmitted FIN restarts the timer."""

from __future__ import annotations

import pytest

from scenario import SYN_OPTIONS, Scenario, State, to_state


@pytest.mark.parametrize(
    ("flags", "seq", "ack"),
    [("R", 2, None), ("R.", 2, 2), ("R", 1000, None), ("R.", -5, 2), ("R.", 2, 1)],
    ids=["exact", "exact+ack", "in-window", "before-window", "old-ack"],
)
def test_rst_never_assassinates_time_wait(flags: str, seq: int, ack: int | None) -> None:
    """RFC 1337 §3 fix (F1): ignore RST segments in TIME-WAIT — exact, in window, out of window,
    with or without ACK. Nothing is sent, the drop is counted, and TIME-WAIT runs its full 2·MSL
    (60 s from its start at t=0)."""
    h = Scenario()
    to_state(h, State.TIME_WAIT)
    conn = h.conn
    h.inject(flags, seq=seq, ack=ack, at=10.0)
    h.expect_nothing()
    assert conn is not None and conn.state == State.TIME_WAIT
    assert conn.drops["tcp_time_wait_rst_ignored"] == 1
    h.advance(49.999)
    assert conn.state == State.TIME_WAIT
    h.advance(0.001)
    assert conn.state == State.CLOSED


def test_rst_with_old_timestamp_in_time_wait_is_ignored() -> None:
    """RSTs are exempt from PAWS (RFC 7323 §5.2), so an old-TS RST reaches TIME-WAIT — and is
    ignored there all the same."""
    h = Scenario()
    to_state(h, State.TIME_WAIT)
    h.inject("R", seq=2, ts=(1, 0), at=1.0)
    h.expect_nothing()
    assert h.state == State.TIME_WAIT


def test_old_duplicate_data_in_time_wait_is_acked() -> None:
    """RFC 1337 hazard H2's first half: an old duplicate data segment arrives in TIME-WAIT. It is
    acknowledged with <SEQ=SND.NXT><ACK=RCV.NXT> (what the peer expects) and never delivered;
    the peer's RST in reply (a real peer has no connection) is then ignored (F1)."""
    h = Scenario()
    conn = to_state(h, State.TIME_WAIT) and h.conn
    h.inject("P.", seq=1, ack=2, payload=b"old", at=5.0)
    h.expect(".", seq=2, ack=2)
    h.inject("R", seq=2, at=5.01)
    h.expect_nothing()
    assert conn is not None and conn.state == State.TIME_WAIT


def test_new_data_in_time_wait_is_acked_not_taken() -> None:
    """Data beyond the peer's FIN in TIME-WAIT cannot be real: ACK RCV.NXT and drop."""
    h = Scenario()
    to_state(h, State.TIME_WAIT)
    h.inject("P.", seq=2, ack=2, payload=b"impossible", at=1.0)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT


def test_pure_ack_in_time_wait_is_silently_ignored() -> None:
    """A bare ACK (e.g. a duplicate of the peer's ACK of our FIN) in TIME-WAIT needs no answer:
    answering ACKs with ACKs could ping-pong forever."""
    h = Scenario()
    to_state(h, State.TIME_WAIT)
    for t in (1.0, 2.0, 3.0):
        h.inject(".", seq=2, ack=2, at=t)
    h.expect_nothing()
    assert h.state == State.TIME_WAIT


def test_traffic_other_than_fin_does_not_restart_2msl() -> None:
    """Only a retransmitted FIN restarts the 2·MSL timer (§3.10.7.4): ACKs and data in TIME-WAIT
    leave the deadline where it was (so a stream of junk cannot pin the state forever)."""
    h = Scenario(msl=10.0)
    to_state(h, State.TIME_WAIT)
    for t in (5.0, 10.0, 15.0):
        h.inject("P.", seq=2, ack=2, payload=b"junk", at=t)
        h.expect(".", seq=2, ack=2)
    h.advance(4.999)
    assert h.state == State.TIME_WAIT
    h.advance(0.001)
    assert h.state == State.CLOSED


def test_time_wait_after_closing_lasts_2msl_from_the_last_ack() -> None:
    """Simultaneous close: CLOSING → TIME-WAIT when our FIN is acknowledged; 2·MSL from then."""
    h = Scenario(msl=2.0)
    to_state(h, State.CLOSING)
    h.inject(".", seq=2, ack=2, at=1.0)
    assert h.state == State.TIME_WAIT
    h.advance(3.999)
    assert h.state == State.TIME_WAIT
    h.advance(0.001)
    assert h.state == State.CLOSED


def test_time_wait_on_the_active_opener() -> None:
    """The side that connected and closed first holds TIME-WAIT (RFC 9293 §3.6): same rules —
    retransmitted FIN re-ACKed, RST ignored."""
    h = Scenario(msl=1.0)
    h.active_open()
    h.close()
    h.expect("F.", seq=1, ack=1)
    h.inject("F.", seq=1, ack=2, at=0.1)
    h.expect(".", seq=2, ack=2)
    assert h.state == State.TIME_WAIT
    h.inject("R", seq=2, at=0.5)
    h.inject("F.", seq=1, ack=2, at=0.6)
    h.expect(".", seq=2, ack=2)
    h.advance(1.999)
    assert h.state == State.TIME_WAIT
    h.advance(0.001)
    assert h.state == State.CLOSED


def test_time_wait_frees_the_tuple_after_2msl() -> None:
    """After TIME-WAIT ends, the 4-tuple is free: a SYN from the same peer port reaches the
    listener and is answered with a SYN-ACK."""
    h = Scenario(msl=1.0)
    to_state(h, State.TIME_WAIT)
    h.advance(2.0)
    assert not h.tcp.connections
    h.inject("S", seq=0, options={**SYN_OPTIONS, "ts": (h.peer_ts(), 0)})
    h.expect("S.", seq=0, ack=1)


def test_time_wait_answers_old_syn_with_an_ack() -> None:
    """A SYN that is not a new incarnation (older timestamp) gets the TIME-WAIT ACK
    <SEQ=SND.NXT><ACK=RCV.NXT> (RFC 9293 §3.10.7.4), which a live peer answers with a RST —
    ignored (RFC 1337)."""
    h = Scenario()
    to_state(h, State.TIME_WAIT)
    h.inject("S", seq=0, options={**SYN_OPTIONS, "ts": (1000, 0)}, at=3.0)
    h.expect(".", seq=2, ack=2)
    h.inject("R", seq=2, at=3.01)
    h.expect_nothing()
    assert h.state == State.TIME_WAIT


def test_msl_configures_time_wait() -> None:
    """TcpConfig.msl: TIME-WAIT = 2·MSL (RFC 9293 §3.4.2); MSL 0.25 s gives 0.5 s."""
    h = Scenario(msl=0.25)
    to_state(h, State.TIME_WAIT)
    h.advance(0.499)
    assert h.state == State.TIME_WAIT
    h.advance(0.001)
    assert h.state == State.CLOSED
    h.expect_nothing()


def test_fin_with_old_timestamp_in_time_wait_is_paws_rejected() -> None:
    """PAWS runs before the TIME-WAIT rules: a FIN with an older TSval than TS.Recent is an old
    duplicate — ACKed (R1) but not allowed to restart 2·MSL."""
    h = Scenario(msl=5.0)
    conn = to_state(h, State.TIME_WAIT) and h.conn
    h.inject("F.", seq=1, ack=2, ts=(4000, 0), at=8.0)
    h.expect(".", seq=2, ack=2)
    assert conn is not None and conn.drops["tcp_paws_rejected"] == 1
    h.advance(2.0)
    assert conn.state == State.CLOSED  # 10 s from t=0, not from the old FIN
