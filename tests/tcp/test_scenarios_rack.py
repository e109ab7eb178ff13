"""Scenarios: RACK-TLP loss detection (RFC 8985) on the virtual clock — a lost retransmission
found by RACK without a timeout (§6), reordering within the reordering window left alone and
beyond it caught by RACK's timer (§6.2), tail losses repaired by a loss probe at 2·SRTT (§7),
the RTO as the last resort (§6.3) — and two connection fixes: only acceptable segments count as
signs of life (keep-alive), and the persist timer gives up like Linux's."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from aiostack.tcp.rack import PTO_MIN, WCDELACKT, Rack, pto
from scenario import SYN_OPTIONS, Scenario, State

MSS = 1448


def S(i: int) -> int:
    """Relative sequence number of the first byte of our i-th full segment (0-based)."""
    return 1 + i * MSS


def sack(h: Scenario, ack: int, *blocks: tuple[int, int], at: float | None = None) -> None:
    """The peer's ACK of everything below ``ack`` with SACK ``blocks`` (segment numbers
    ``(first, past_last)``), echoing our last TSval."""
    h.inject(
        ".",
        seq=1,
        ack=ack,
        at=at,
        options={"ts": (h.peer_ts(), h.last_tsval), "sack": [(S(a), S(b)) for a, b in blocks]},
    )


def warm_up(h: Scenario) -> None:
    """One segment sent and ACKed 100 ms later: RACK's min_RTT (§6.2 step 1) comes from its own
    transmit records (the handshake is not one)."""
    h.send(b"w" * MSS)
    h.expect("P.", seq=1, payload_len=MSS)
    h.inject(".", seq=1, ack=1 + MSS, at=h.t + 0.1)
    assert h.conn is not None and h.conn.rack.min_rtt == pytest.approx(0.1)


def test_lost_retransmission_detected_by_rack_without_rto() -> None:
    """RFC 8985 §6 (and its motivation §3.4): segment 0 is lost, and so is its fast
    retransmission. RFC 6675 alone never retransmits a hole twice (HighRxt has passed it), so
    only the RTO would recover it. RACK compares transmission times: once new data sent *after*
    the retransmission is SACKed, and RACK.rtt has passed since the retransmission, it is lost —
    retransmitted again 0.1 s after the first, long before the RTO (0.3 s)."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"x" * 30 * MSS)
    assert [o.seq for o in h.sent()] == [S(i) for i in range(10)]  # segment 0 is lost
    h.at(0.2)
    sack(h, 1, (1, 2))
    sack(h, 1, (1, 3))
    h.expect_nothing()
    sack(h, 1, (1, 4))  # DupThresh segments SACKed, no reordering seen: reo_wnd = 0
    h.expect(".", seq=S(0), payload_len=MSS)  # fast retransmit (lost again)
    assert conn.in_recovery and conn.cc.cwnd == 5 * MSS
    for top in range(5, 11):  # segments 4-9 arrive: the pipe drains, new data goes out
        sack(h, 1, (1, top))
    assert [o.seq for o in h.sent()] == [S(10), S(11), S(12), S(13)]
    # 0.1 s later the first new segment, sent just after the retransmission, is SACKed.
    sack(h, 1, (1, 11), at=0.3)
    out = h.expect(".", seq=S(0), payload_len=MSS)
    assert out.time == pytest.approx(0.3)
    assert conn.stats["rto_expired"] == 0
    assert conn.rack.stats["lost_retransmissions"] == 1
    # It arrives this time: the cumulative ACK jumps to what the receiver holds.
    h.inject(".", seq=1, ack=S(11), at=0.4)
    assert conn.snd_una == (h.iss + S(11)) & 0xFFFFFFFF
    assert conn.stats["rto_expired"] == 0


def test_tail_loss_probe_at_two_srtt() -> None:
    """RFC 8985 §7: the last two segments of a flight are lost, so no SACK will ever reveal
    them. Instead of waiting for the RTO (0.25 s), the sender probes after PTO = 2·SRTT = 0.2 s
    with its last segment (no new data to send); the probe's SACK lets RACK mark the other lost
    (sent before the probe, more than RACK.rtt ago) and fast recovery repairs it."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"t" * 10 * MSS)
    assert len(h.sent()) == 10
    h.inject(".", seq=1, ack=S(8), at=0.2)  # 8 and 9 lost
    assert conn.rtt.srtt == pytest.approx(0.1) and conn.rtt.rto == pytest.approx(0.25)
    probe = h.expect_within(1, "P.", seq=S(9), payload_len=MSS, after=0.2)
    assert conn.stats["tlp_probes"] == 1 and conn.tlp_end is not None
    sack(h, S(8), (9, 10), at=probe.time + 0.1)
    h.expect(".", seq=S(8), payload_len=MSS)
    assert conn.in_recovery
    h.inject(".", seq=1, ack=S(10), at=h.t + 0.1)
    assert not conn.in_recovery and conn.snd_una == conn.snd_max
    assert conn.stats["rto_expired"] == 0
    h.expect_silence(5)


def test_tail_loss_probe_resends_the_fin_with_the_last_segment() -> None:
    """The lost tail is the last data segment and our FIN: the probe is the FIN again (the last
    segment sent, RFC 8985 §7.3); its SACK shows RACK the data segment before it lost, and the
    close completes without an RTO."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"f" * 3 * MSS)
    h.shutdown()
    assert [o.flags for o in h.sent()] == [".", ".", "P.", "F."]
    h.inject(".", seq=1, ack=S(2), at=0.2)  # the last segment and the FIN are lost
    h.expect_within(1, "F.", seq=S(3), payload_len=0, after=0.2)
    h.inject(
        ".", seq=1, ack=S(2), at=h.t + 0.1, options={"ts": (h.peer_ts(), h.last_tsval), "sack": [(S(3), S(3) + 1)]}
    )
    h.expect("P.", seq=S(2), payload_len=MSS)
    h.inject(".", seq=1, ack=S(3) + 1, at=h.t + 0.1)
    assert conn.state == State.FIN_WAIT_2 and conn.stats["rto_expired"] == 0


def test_tlp_probe_is_new_data_when_there_is_some() -> None:
    """RFC 8985 §7.3: with unsent data and room in the peer's window, the probe is the next new
    segment (cwnd notwithstanding) rather than a retransmission; the episode ends when its ACK
    comes, and a single probe is outstanding at a time (the RTO follows, not a second probe)."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"n" * 20 * MSS)
    assert len(h.sent()) == 10  # cwnd-limited: 10 more are queued
    h.expect_within(1, ".", seq=S(10), payload_len=MSS, after=0.2)
    assert not conn.tlp_is_retrans and conn.stats["tlp_retransmits"] == 0
    # No answer at all: the RTO, from the probe, is next — no second probe.
    h.expect_within(1, ".", seq=S(0), payload_len=MSS, after=conn.rtt.rto)
    assert conn.stats["tlp_probes"] == 1 and conn.stats["rto_expired"] == 1


def test_reordering_within_the_reordering_window_is_not_loss() -> None:
    """RFC 8985 §6.2: a SACK above a hole starts RACK's reordering timer (reo_wnd = min_RTT/4 =
    25 ms while fewer than DupThresh segments are SACKed); the late segment arrives 10 ms later,
    so nothing is retransmitted. RACK notes the reordering (§6.2 step 3) and from then on keeps
    the reordering window even with DupThresh segments SACKed."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    warm_up(h)
    t0 = h.t
    h.send(b"r" * 10 * MSS)
    assert len(h.sent()) == 10
    sack(h, S(1), (2, 3), at=t0 + 0.1)  # segment 1 is late
    assert conn.rack.reo_wnd(False, conn.rtt.srtt) == pytest.approx(0.025)
    assert conn._reo_deadline == pytest.approx(h.now + 0.025)
    h.advance(0.01)
    h.inject(".", seq=1, ack=S(3), at=t0 + 0.11)  # here it is
    h.expect_nothing()
    assert conn.rack.reordering_seen and not conn.in_recovery
    assert conn.stats["retransmitted_segments"] == 0
    # Reordering seen: three SACKed segments above a hole no longer mean loss at once …
    sack(h, S(3), (4, 7), at=t0 + 0.12)
    h.expect_nothing()
    assert not conn.in_recovery
    h.inject(".", seq=1, ack=S(10), at=t0 + 0.13)
    h.expect_nothing()
    assert conn.stats["retransmitted_segments"] == 0 and conn.stats["rto_expired"] == 0


def test_reordering_timer_declares_loss_after_the_window() -> None:
    """RFC 8985 §6.2 step 5 / §6.3: the segment above the hole is SACKed and nothing else
    comes: RACK's timer fires reo_wnd (25 ms) after the SACK, marks the hole lost and fast
    recovery retransmits it — without three duplicate ACKs, and long before the RTO."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    warm_up(h)
    t0 = h.t
    h.send(b"q" * 4 * MSS)  # a short flight: only one segment above the hole
    assert len(h.sent()) == 4
    sack(h, S(1), (2, 3), at=t0 + 0.1)
    h.expect_nothing()
    h.expect_within(1, ".", seq=S(1), payload_len=MSS, after=0.025)
    assert conn.in_recovery and conn.stats["rack_reo_timeouts"] == 1
    assert conn.stats["dupacks"] == 1 and conn.stats["rto_expired"] == 0


def test_rto_still_fires_when_everything_is_lost() -> None:
    """RFC 8985 §6.3 / RFC 6298: nothing at all comes back. The probe goes at 2·SRTT, then the
    RTO (from the probe) is the last resort: cwnd collapses to one segment, RACK marks the
    flight lost and the first segment is resent; the timer backs off after that."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"z" * 10 * MSS)
    assert len(h.sent()) == 10
    h.expect_within(1, "P.", seq=S(9), after=0.2)  # the tail loss probe
    rto = conn.rtt.rto
    h.expect_within(1, ".", seq=S(0), payload_len=MSS, after=rto)
    h.expect_nothing()
    assert conn.stats["rto_expired"] == 1 and conn.cc.cwnd == MSS and conn.rto_recovery
    assert all(r.lost for _, _, r in conn.rack.records())
    h.expect_within(2, ".", seq=S(0), payload_len=MSS, after=2 * rto)  # backed off, no probe
    assert conn.stats["rto_expired"] == 2 and conn.stats["tlp_probes"] == 1
    # The answer at last: slow start resumes with the segments marked lost, in order.
    h.inject(".", seq=1, ack=S(1), at=h.t + 0.1)
    assert [o.seq for o in h.sent()] == [S(1), S(2)]


def test_pto_formula() -> None:
    """RFC 8985 §7.2 TLP_calc_PTO as :func:`~aiostack.tcp.rack.pto` computes it (the connection
    inlines the same): 2·SRTT; + WCDelAckT with one segment in flight; the floor; 1 s without an
    SRTT; never past the RTO."""
    assert pto(0.1, 2 * MSS, MSS, 1.0) == pytest.approx(0.2)
    assert pto(0.1, MSS, MSS, 1.0) == pytest.approx(0.2 + WCDELACKT)
    assert pto(0.0003, 10 * MSS, MSS, 0.2) == PTO_MIN
    assert pto(None, 10 * MSS, MSS, 3.0) == 1.0
    assert pto(0.25, MSS, MSS, 0.6) == 0.6


def test_data_segments_carrying_sack_blocks_fit_the_mss() -> None:
    """RFC 6691 / Linux's tcp_current_mss: while we hold out-of-order data, our segments carry
    SACK blocks (4 + 8 bytes per block beyond the timestamps), and the payload shrinks by as much
    — a full SMSS of data on top would make the frame larger than the MTU (which the memory
    link, a NIC or a TAP drop), and in a two-way transfer with loss every data segment would."""
    h = Scenario()
    conn = h.passive_open(rtt=0.1)
    h.inject("P.", seq=1001, ack=1, payload=b"o" * 100)  # out of order: a hole at 1
    h.expect(".", seq=1, ack=1, sack=[(1001, 1101)])
    h.send(b"d" * 4 * MSS)
    out = h.sent()
    assert [len(o.payload) for o in out] == [MSS - 12] * 4  # the last 48 bytes wait (Nagle)
    assert all(o.sack == [(1001, 1101)] and len(o.tcp.opts) == 12 + 12 for o in out)
    assert 14 + 20 + 20 + 24 + MSS - 12 == 1514  # the largest Ethernet frame for a 1500 MTU
    h.inject("P.", seq=1, ack=1 + 4 * (MSS - 12), payload=b"i" * 1000)  # the hole is filled
    assert conn._cur_mss() == MSS
    ack = h.expect("P.", ack=1101, payload_len=48)
    assert not ack.sack


def test_without_sack_no_records_and_no_probe() -> None:
    """RACK-TLP needs SACK (RFC 8985 §4): without it the connection keeps no transmit records and
    sends no probes — NewReno and the RTO (0.3 s) work as before."""
    h = Scenario(congestion="newreno")
    options = {k: v for k, v in SYN_OPTIONS.items() if k != "sack_perm"}
    conn = h.passive_open(rtt=0.1, options=options)
    assert not conn.sack_ok
    h.send(b"s" * 10 * MSS)
    assert len(h.sent()) == 10
    assert len(conn.rack) == 0
    h.expect_within(1, ".", seq=S(0), payload_len=MSS, after=0.3)
    assert conn.stats["tlp_probes"] == 0


def test_rejected_segments_do_not_postpone_keepalive() -> None:
    """Segments that fail PAWS (RFC 7323 §5) or the sequence test (RFC 9293 §3.10.7.4) are
    answered with an ACK but are no sign of a live peer — a blind attacker's guesses must not
    keep a dead connection alive: the keep-alive probes still come on time."""
    h = Scenario(keepalive_idle=10.0, keepalive_interval=2.0, keepalive_count=2)
    conn = h.passive_open()
    conn.keepalive = True
    conn._arm_keepalive(h.now)
    h.inject(".", seq=1 + 10_000_000, ack=1, at=5)  # far outside the window
    h.expect(".", seq=1, ack=1)
    h.inject(".", seq=1, ack=1, ts=(1, h.last_tsval), at=6)  # an old timestamp: PAWS
    h.expect(".", seq=1, ack=1)
    assert conn.drops["tcp_out_of_window"] == 1 and conn.drops["tcp_paws_rejected"] == 1
    h.expect_within(10, ".", seq=0, payload_len=0, after=4)  # the probe at t = 10
    h.inject(".", seq=1 + 10_000_000, ack=1, at=h.t + 1)  # still not an answer
    h.expect(".", seq=1, ack=1)
    h.expect_within(10, ".", seq=0, payload_len=0, after=1)  # the second probe at t = 12
    h.expect_within(10, "R.", after=2)
    assert conn.state == State.CLOSED
    with pytest.raises(TimeoutError):
        conn.raise_error()


def test_accepted_segment_resets_keepalive_probes() -> None:
    """An acceptable segment is an answer: the probe count starts over."""
    h = Scenario(keepalive_idle=10.0, keepalive_interval=2.0, keepalive_count=2)
    conn = h.passive_open()
    conn.keepalive = True
    conn._arm_keepalive(h.now)
    h.expect_within(20, ".", seq=0, after=10)
    h.inject(".", seq=1, ack=1, at=h.t + 0.5)
    assert conn.keepalive_probes == 0
    h.expect_within(20, ".", seq=0, after=10)
    assert conn.state == State.ESTABLISHED


def test_persist_gives_up_after_unanswered_probes() -> None:
    """A zero window and a peer that never answers its probes: after TcpConfig.data_retries
    unanswered zero-window probes the connection fails with ETIMEDOUT and a reset, as Linux's
    tcp_probe_timer does after tcp_retries2 (RFC 1122 §4.2.2.17 only forbids giving up while the
    peer keeps answering)."""
    h = Scenario(data_retries=3)
    conn = h.passive_open(rtt=0.1, win=0)
    h.send(b"p" * 1000)
    h.expect_nothing()
    for delay in (0.3, 0.6, 1.2):
        h.expect_within(5, ".", seq=1, payload_len=1, after=delay)
    h.expect_within(5, "R.", after=2.4)
    assert conn.state == State.CLOSED and conn.stats["persist_timeouts"] == 1
    with pytest.raises(TimeoutError):
        conn.raise_error()


def test_answered_probes_never_give_up() -> None:
    """Each ACK (window still zero) is an answer: the probe count restarts and the connection
    waits as long as the peer keeps answering."""
    h = Scenario(data_retries=3, max_persist=1.0)
    conn = h.passive_open(rtt=0.1, win=0)
    h.send(b"p" * 1000)
    for delay in (0.3, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0):
        h.expect_within(5, ".", seq=1, payload_len=1, after=delay)
        h.inject(".", seq=1, ack=1, win=0, ts=(h.peer_ts(), 0))
    assert conn.state == State.ESTABLISHED and conn.persist_probes == 0


def test_rack_bookkeeping_stays_consistent() -> None:
    """The incremental counts of :class:`~aiostack.tcp.rack.Rack` (pipe, SACKed records, the
    lost queue) against a recount, through a seeded random mix of new data, retransmissions
    (some not on record boundaries), SACK blocks (some splitting records), cumulative ACKs (some
    inside a record), loss detection and timeouts — across the 2**32 sequence wrap."""
    mask = 0xFFFFFFFF
    rng = random.Random(7)
    rack = Rack()
    base = 0xFFFF0000  # wraps after 64 KiB
    una = nxt = base
    now = 0.0

    def off(seq: int) -> int:
        return (seq - base) & mask

    for _ in range(3000):
        now += rng.random() * 0.001
        op = rng.random()
        outstanding = off(nxt) - off(una)
        if op < 0.35 or outstanding == 0:
            size = rng.choice((1448, 1448, 1448, 500, 1))
            rack.on_transmit(nxt, (nxt + size) & mask, now)
            nxt = (nxt + size) & mask
        elif op < 0.45:
            start = (una + rng.randrange(outstanding)) & mask
            size = rng.randrange(1, 3000)
            end = (start + size) & mask if size < off(nxt) - off(start) else nxt
            rack.on_transmit(start, end, now)
        elif op < 0.75:
            lo = rng.randrange(outstanding)
            hi = rng.randrange(lo + 1, outstanding + 1)
            rack.on_ack(una, [((una + lo) & mask, (una + hi) & mask)], now, snd_max=nxt)
        elif op < 0.9:
            una = (una + rng.randrange(outstanding + 1)) & mask
            rack.on_ack(una, [], now, snd_max=nxt, dsack=rng.random() < 0.1)
        elif op < 0.98:
            rack.detect_loss(now, rng.random() < 0.5, 0.01)
            lost = rack.next_lost()
            if lost is not None and rng.random() < 0.5:
                rack.on_transmit(*lost, now)
        else:
            rack.on_rto(now, 0.0, keep_sacks=rng.random() < 0.5)
        records = rack.records()
        if records:
            assert records[0][0] == una
            assert records[-1][1] == nxt
            for (_, e1, _), (s2, _, _) in pairwise(records):
                assert e1 == s2  # contiguous, in order
        pipe = sum(
            ((e - s) & mask) * ((0 if r.lost else 1) + (1 if r.rtx else 0)) for s, e, r in records if not r.delivered
        )
        assert rack.pipe == pipe
        assert rack.segs_sacked == sum(1 for _, _, r in records if r.sacked)
        pending = [s for s, _, r in records if r.lost and not r.rtx and not r.delivered]
        lost = rack.next_lost()
        assert (lost[0] if lost else None) == (pending[0] if pending else None)
    assert rack.stats["splits"] and rack.stats["lost"] and rack.stats["lost_retransmissions"]
    assert ((nxt - base) & mask) > 1 << 16  # the sequence space wrapped
