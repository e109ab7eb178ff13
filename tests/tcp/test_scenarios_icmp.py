"""Scenarios: ICMP errors against TCP connections (RFC 1122 §4.2.3.9, RFC 5927, RFC 5461) — the
quoted sequence number must lie in SND.UNA..SND.MAX (RFC 5927 §4.1) or the message is ignored and
counted; port unreachable on an established connection is a soft error; a forged
fragmentation-needed with MTU 68 or 0 never shrinks segments below the MSS floor; redirects change
nothing. Only what must hold whatever path-MTU discovery does is checked here."""

from __future__ import annotations

import errno

import pytest

from scenario import Scenario, State, icmp_frame, inject_frame

DEST_UNREACH, REDIRECT = 3, 5
NET_UNREACH, PORT_UNREACH, FRAG_NEEDED = 0, 3, 4
MSS = 1448


def in_flight(h: Scenario) -> None:
    """An established connection with three full segments of ours outstanding (SND.UNA 1,
    SND.MAX 4345)."""
    h.passive_open(rtt=0.1)
    h.send(b"f" * 3 * MSS)
    assert len(h.sent()) == 3


@pytest.mark.parametrize("seq", [0, 4345, 100_000, -70_000])
def test_icmp_quoting_a_sequence_outside_the_flight_is_ignored(seq: int) -> None:
    """RFC 5927 §4.1: SND.UNA =< SEG.SEQ < SND.NXT, or the quoted segment is not one in flight —
    a blind attacker's guess: ignored and counted (tcp_icmp_error_bad_seq); nothing changes.
    (Bug fixed here: SEG.SEQ = SND.NXT was accepted, as Linux's between() does; RFC 5927 says
    strictly below.)"""
    h = Scenario()
    in_flight(h)
    conn = h.conn
    inject_frame(h, icmp_frame(h, DEST_UNREACH, PORT_UNREACH, seq))
    assert h.tcp.drops["tcp_icmp_error_bad_seq"] == 1
    assert conn is not None and conn.state == State.ESTABLISHED and not conn.soft_error


def test_port_unreachable_on_established_is_a_soft_error() -> None:
    """RFC 1122 §4.2.3.9 / RFC 5461 §4: port unreachable with a valid quote on an established
    connection is only remembered (soft error); the connection goes on and data still flows."""
    h = Scenario()
    in_flight(h)
    conn = h.conn
    inject_frame(h, icmp_frame(h, DEST_UNREACH, PORT_UNREACH, 1))
    assert conn is not None and conn.state == State.ESTABLISHED
    assert conn.soft_error == errno.EHOSTUNREACH and h.tcp.stats["icmp_errors"] == 1
    h.inject(".", seq=1, ack=4345)
    assert conn.snd_una == h.iss + 4345


def test_port_unreachable_in_syn_sent_refuses() -> None:
    """A hard error (port unreachable) quoting our SYN while in SYN-SENT: connect fails with
    ECONNREFUSED at once (RFC 1122 §4.2.3.9 allows aborting in SYN-SENT)."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    inject_frame(h, icmp_frame(h, DEST_UNREACH, PORT_UNREACH, 0))
    assert conn.state == State.CLOSED and conn.error == errno.ECONNREFUSED


def test_net_unreachable_in_syn_sent_is_soft() -> None:
    """Network unreachable is soft even in SYN-SENT: the SYN is retried; the error is reported
    only if the connection times out."""
    h = Scenario()
    conn = h.connect()
    h.expect("S", seq=0)
    inject_frame(h, icmp_frame(h, DEST_UNREACH, NET_UNREACH, 0))
    assert conn.state == State.SYN_SENT and conn.soft_error == errno.ENETUNREACH
    h.expect_within(1.5, "S", seq=0, after=1.0)


@pytest.mark.parametrize("mtu", [0, 68, 296])
def test_forged_fragmentation_needed_cannot_shrink_segments_to_nothing(mtu: int) -> None:
    """RFC 5927 §7 / RFC 1191: fragmentation-needed with a tiny or zero MTU quoting a segment in
    flight (plausible to RFC 5927's check): whatever path-MTU discovery makes of it, segments
    never get smaller than TcpConfig.min_mss (216) less options — no flood of tiny segments."""
    h = Scenario()
    in_flight(h)
    inject_frame(h, icmp_frame(h, DEST_UNREACH, FRAG_NEEDED, 1, mtu=mtu))
    h.inject(".", seq=1, ack=4345)
    h.send(b"n" * 20_000)
    out = h.sent()
    assert out and all(len(o.payload) >= 216 - 12 for o in out[:-1])
    assert h.conn is not None and h.conn.state == State.ESTABLISHED


def test_redirect_changes_nothing() -> None:
    """ICMP redirects are ignored by TCP (RFC 1122 §3.2.2.2 leaves them to the IP layer, which
    here has static routes): the connection and its segments are unchanged."""
    h = Scenario()
    in_flight(h)
    conn = h.conn
    inject_frame(h, icmp_frame(h, REDIRECT, 1, 1))
    assert conn is not None and conn.state == State.ESTABLISHED and not conn.soft_error
    h.inject(".", seq=1, ack=4345)
    h.send(b"r" * 3000)
    assert [len(o.payload) for o in h.sent()] == [MSS, MSS]  # the 104-byte tail: Nagle


def test_icmp_for_no_connection_is_counted() -> None:
    """An ICMP error quoting a 4-tuple we have no connection for: counted, nothing else."""
    h = Scenario()
    h.listen()
    inject_frame(h, icmp_frame(h, DEST_UNREACH, PORT_UNREACH, 0))
    assert h.tcp.stats["icmp_error_no_connection"] == 1
    h.expect_nothing()


def test_icmp_quoting_too_little_is_ignored() -> None:
    """RFC 792 promises 8 bytes of the quoted header; a message quoting only 4 (ports, no
    sequence number) cannot be validated: ignored, the connection untouched."""
    h = Scenario()
    in_flight(h)
    conn = h.conn
    inject_frame(h, icmp_frame(h, DEST_UNREACH, PORT_UNREACH, 1, quote_len=4))
    assert conn is not None and conn.state == State.ESTABLISHED and not conn.soft_error
    assert h.tcp.stats["icmp_errors"] == 0


def test_soft_error_does_not_stop_retransmission() -> None:
    """After a soft error the connection keeps retransmitting on its RTO (the path may recover):
    the lost data is resent."""
    h = Scenario()
    h.passive_open(options={"mss": 1460, "ts": (0, 0)}, rtt=0.1)
    h.send(b"x" * 100)
    h.expect("P.", seq=1)
    inject_frame(h, icmp_frame(h, DEST_UNREACH, NET_UNREACH, 1))
    h.expect_within(1, "P.", seq=1, payload_len=100, after=0.3)
