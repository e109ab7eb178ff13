"""Scenarios: RFC 7323 timestamps and PAWS (§5) at their edges — TSval wraparound at 2**32,
equal and stale timestamps, the 24-day idle rule (§5.5), RSTs with old timestamps (§5.2), which
segment may update TS.Recent (§4.3), and segments without a timestamp (§3.2)."""

from __future__ import annotations

import pytest

from aiostack.tcp.connection import Connection
from scenario import Scenario, State

DAY = 24 * 3600.0


def open_with_tsval(h: Scenario, tsval: int) -> Connection:
    """A passive open where the peer's timestamp clock reads ``tsval`` (TS.Recent = tsval)."""
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460, "ts": (tsval, 0)})
    synack = h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=1, ts=(tsval, synack.ts[0]))
    h.ts_auto = True
    return h.accept()


def test_tsval_wrapping_past_2_32_is_newer() -> None:
    """§5.2: timestamps compare modulo 2**32 (like sequence numbers): a TSval of 5 after
    0xFFFFFFF0 is newer, so the segment is accepted and TS.Recent becomes 5."""
    h = Scenario()
    conn = open_with_tsval(h, 0xFFFFFFF0)
    h.inject("P.", seq=1, ack=1, payload=b"before", ts=(0xFFFFFFF8, h.last_tsval))
    h.expect_within(0.1, ".", ack=7, after=0.04)
    h.inject("P.", seq=7, ack=1, payload=b"after", ts=(5, h.last_tsval))
    assert h.recv() == b"beforeafter"
    assert conn.ts_recent == 5 and conn.drops["tcp_paws_rejected"] == 0
    out = h.expect_within(0.1, ".", ack=12)
    assert out.ts[1] == 5


def test_tsval_just_below_after_wrap_is_old() -> None:
    """After the wrap, a TSval of 0xFFFFFFFF (one tick before TS.Recent = 0) is old: rejected."""
    h = Scenario()
    conn = open_with_tsval(h, 0xFFFFFFFE)
    h.inject("P.", seq=1, ack=1, payload=b"a", ts=(0, h.last_tsval))
    h.expect_within(0.1, ".", ack=2)
    h.inject("P.", seq=2, ack=1, payload=b"b", ts=(0xFFFFFFFF, h.last_tsval))
    h.expect(".", seq=1, ack=2)
    assert conn.drops["tcp_paws_rejected"] == 1 and h.recv() == b"a"


def test_tsval_half_the_space_ahead_is_old() -> None:
    """§5.2: "older" means more than 2**31 behind in modulo arithmetic: TS.Recent + 2**31 + 1
    compares as less than TS.Recent, so the segment is rejected."""
    h = Scenario()
    conn = open_with_tsval(h, 1000)
    h.inject("P.", seq=1, ack=1, payload=b"x", ts=(1000 + 2**31 + 1, h.last_tsval))
    h.expect(".", seq=1, ack=1)
    assert conn.drops["tcp_paws_rejected"] == 1


def test_equal_tsval_is_accepted() -> None:
    """§5.3 R1 rejects only SEG.TSval < TS.Recent: a burst of segments sent in one tick shares a
    TSval and all are accepted."""
    h = Scenario()
    conn = h.passive_open()
    for i in range(4):
        h.inject("P.", seq=1 + i, ack=1, payload=bytes([65 + i]), ts=(5000, h.last_tsval))
    assert h.recv() == b"ABCD" and conn.drops["tcp_paws_rejected"] == 0


def test_pure_ack_with_old_timestamp_is_dropped() -> None:
    """R1 covers pure ACKs too: an old duplicate ACK acknowledging new data must not move
    SND.UNA (it could be from an earlier incarnation of the sequence space)."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, ts=(6000, h.last_tsval), at=0.5)
    h.send(b"d" * 100)
    h.expect(seq=1, payload_len=100)
    h.inject(".", seq=1, ack=101, ts=(5500, h.last_tsval))
    h.expect(".", seq=101, ack=1)
    assert conn.snd_una == h.iss + 1
    h.inject(".", seq=1, ack=101, ts=(6001, h.last_tsval))
    assert conn.snd_una == h.iss + 101


def test_fin_with_old_timestamp_is_rejected() -> None:
    """An old FIN (TSval < TS.Recent) is dropped with an ACK: the connection stays ESTABLISHED."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, ts=(7000, h.last_tsval), at=0.5)
    h.inject("F.", seq=1, ack=1, ts=(6999, h.last_tsval))
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED


def test_exact_rst_with_old_timestamp_resets() -> None:
    """§5.2: "RST segments are exempt" — an RST at RCV.NXT is accepted whatever its TSval (a
    rebooted peer's clock may have gone back)."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, ts=(900_000, h.last_tsval), at=0.5)
    h.inject("R", seq=1, ts=(3, 0))
    assert conn.state == State.CLOSED


def test_inexact_rst_with_old_timestamp_gets_challenge_ack() -> None:
    """The PAWS exemption lets an old-TS RST through to RFC 5961's check: in window but not exact
    → challenge ACK (not a PAWS ACK, not a reset)."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, ts=(900_000, h.last_tsval), at=0.5)
    h.inject("R", seq=50, ts=(3, 0))
    h.expect(".", seq=1, ack=1)
    assert conn.state == State.ESTABLISHED
    assert conn.stats["challenge_acks"] == 1 and conn.drops["tcp_paws_rejected"] == 0


def test_rst_timestamp_does_not_update_ts_recent() -> None:
    """An (unsuccessful) RST must not move TS.Recent: the next real segment with the current
    clock still passes PAWS, and our ACK echoes the real clock."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("R", seq=50, ts=(0x7FFFFFFF, 0), at=0.5)
    h.sent()
    h.inject("P.", seq=1, ack=1, payload=b"ok", ts=(5600, h.last_tsval))
    assert h.recv() == b"ok"
    assert conn.ts_recent == 5600


def test_idle_24_days_invalidates_ts_recent() -> None:
    """§5.5: after more than 24 days idle, TS.Recent is invalid — the peer's clock may have
    wrapped its sign bit — and a segment with an "older" TSval is accepted, becoming TS.Recent."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, ts=(2_000_000_000, h.last_tsval), at=1.0)
    h.advance(24 * DAY + 1)
    h.inject("P.", seq=1, ack=1, payload=b"back", ts=(10, h.last_tsval))
    assert h.recv() == b"back"
    assert conn.ts_recent == 10 and conn.drops["tcp_paws_rejected"] == 0


def test_idle_just_under_24_days_still_rejects() -> None:
    """One second short of the §5.5 limit, PAWS still applies."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, ts=(2_000_000_000, h.last_tsval), at=1.0)
    h.advance(24 * DAY - 1)
    h.inject("P.", seq=1, ack=1, payload=b"old", ts=(10, h.last_tsval))
    h.expect(".", seq=1, ack=1)
    assert conn.drops["tcp_paws_rejected"] == 1


def test_out_of_order_segment_does_not_update_ts_recent() -> None:
    """§4.3: TS.Recent takes SEG.TSval only when SEG.SEQ ≤ Last.ACK.sent — a segment beyond a
    hole (sent later, newer TSval) does not count, so our ACK echoes the older in-order TSval."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"a" * 100, ts=(5100, h.last_tsval), at=0.1)
    h.expect_within(0.1, ".", ack=101)
    h.inject("P.", seq=201, ack=1, payload=b"c" * 100, ts=(5300, h.last_tsval), at=0.3)
    dup = h.expect(".", ack=101, sack=[(201, 301)])
    assert dup.ts[1] == 5100 and conn.ts_recent == 5100
    h.inject("P.", seq=101, ack=1, payload=b"b" * 100, ts=(5200, h.last_tsval), at=0.4)
    fill = h.expect(".", ack=301)
    assert fill.ts[1] == 5200  # the segment that filled the hole, at Last.ACK.sent


def test_segment_without_timestamp_after_negotiation() -> None:
    """§3.2: once TS is negotiated, a non-RST segment without TSopt "SHOULD" be dropped; Linux
    and FreeBSD (net.inet.tcp.tolerate_missing_ts=1) accept it, because middleboxes strip
    options. We accept it too (the SHOULD leaves room) — and PAWS cannot judge it, so it does not
    touch TS.Recent."""
    h = Scenario()
    conn = h.passive_open()
    recent = conn.ts_recent
    h.inject("P.", seq=1, ack=1, payload=b"naked", ts=False)
    assert h.recv() == b"naked" and conn.ts_recent == recent


def test_timestamp_on_a_connection_that_did_not_negotiate_it_is_ignored() -> None:
    """A TS option on a connection without timestamps (the SYN had none) is not PAWS material:
    a "stale" TSval is accepted and our segments carry no TS option."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 1460, "sack_perm": True})
    h.inject("P.", seq=1, ack=1, payload=b"x", ts=(1, 0))
    h.inject("P.", seq=2, ack=1, payload=b"y", ts=(0, 0))
    assert h.recv() == b"xy" and not conn.ts_ok
    out = h.expect_within(0.1, ".", ack=3)
    assert out.ts is None


def test_paws_rejected_duplicates_are_not_dupacks() -> None:
    """Old duplicates rejected by PAWS are not duplicate ACKs: three of them trigger no fast
    retransmit and do not move the window."""
    h = Scenario()
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, ts=(8000, h.last_tsval), at=0.5)
    h.send(b"z" * 3000)
    h.sent()
    for _ in range(3):
        h.inject(".", seq=1, ack=1, win=1, ts=(7000, h.last_tsval))
        h.expect(".", ack=1, payload_len=0)
    h.expect_nothing()
    assert conn.dupacks == 0 and conn.snd_wnd == 65535 << 7


def test_syn_received_rejects_handshake_ack_with_older_timestamp() -> None:
    """PAWS applies from SYN-RECEIVED on (TS.Recent = the SYN's TSval): a third segment with an
    older TSval is an old duplicate — ACKed and dropped — and the real one completes."""
    h = Scenario()
    lst = h.listen()
    h.inject("S", seq=0, options={"mss": 1460, "ts": (50_000, 0)})
    synack = h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=1, ts=(49_000, synack.ts[0]))
    h.expect(".", seq=1, ack=1)
    assert lst.accept() is None
    h.inject(".", seq=1, ack=1, ts=(50_001, synack.ts[0]))
    assert h.accept().state == State.ESTABLISHED


@pytest.mark.parametrize("tsecr", [0, 123, 0xFFFFFFFF])
def test_any_tsecr_is_tolerated(tsecr: int) -> None:
    """TSecr is only an RTT input: a nonsense echo (0, an unsent value, 2**32 − 1) never drops
    the segment; 0 gives no sample (RFC 7323 §4.1: a zero TSecr may be "not valid"), and the
    others would be RTTs of over 60 s — discarded, so SRTT is untouched."""
    h = Scenario()
    conn = h.passive_open(rtt=0.1)
    srtt = conn.rtt.srtt
    h.send(b"r" * 10)
    h.expect(seq=1, payload_len=10)
    h.inject(".", seq=1, ack=11, ts=(5200, tsecr), at=0.2)
    assert conn.snd_una == h.iss + 11
    assert conn.rtt.srtt == pytest.approx(srtt)
