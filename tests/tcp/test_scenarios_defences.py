"""Scenarios: defences and defects of issue #13 — a receiver that reneges on SACKed data
(RFC 2018 §8, RFC 6675 §5.1), TIME-WAIT reuse decided on the new SYN (RFC 6191 §2), and the
per-reactor memory bounds (tcp/memory.py)."""

from __future__ import annotations

import pytest

from scenario import SYN_OPTIONS, Scenario, State

MSS = 1448


def S(i: int) -> int:
    """Relative sequence number of the first byte of our i-th full segment (0-based)."""
    return 1 + i * MSS


def _in_order_peer(h: Scenario, rcv_nxt: int, total: int, limit: float) -> float:
    """A peer that keeps nothing out of order (it has reneged): it ACKs every segment with its
    cumulative point, SACKing nothing. Returns the scenario time when ``total`` bytes are ACKed
    (or fails after ``limit`` virtual seconds); ``rcv_nxt`` is what it holds so far."""
    while rcv_nxt < 1 + total:
        assert h.t < limit, f"t={h.t:.3f}: stalled at {rcv_nxt - 1} of {total} bytes"
        out = h.sent()
        if not out:
            assert h._run(h.now + limit, stop_on_tx=True), f"t={h.t:.3f}: nothing sent, {rcv_nxt - 1} of {total}"
            continue
        for seg in out:
            if seg.seq == rcv_nxt and seg.payload:
                rcv_nxt += len(seg.payload)
            h.advance(0.01)
            h.inject(".", seq=1, ack=rcv_nxt, options={"ts": (h.peer_ts(), h.last_tsval)})
    return h.t


def test_reneging_receiver_does_not_stall_the_sender() -> None:
    """RFC 2018 §8, RFC 6675 §5.1: a receiver SACKs segments 1–9 (segment 0 lost), then drops
    them (reneges: its cumulative ACK after segment 0's retransmission stops at segment 1, inside
    the SACKed range). The retransmission timeout must expunge the SACK marks (scoreboard and
    RACK's records alike) and go back to SND.UNA, so the download finishes within a few RTOs —
    not after the exponential backoff of marks that never come (the ~11 s stall of issue #13)."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"x" * 10 * MSS)
    assert len(h.sent()) == 10
    h.at(0.2)
    for k in range(2, 11):
        h.inject(".", seq=1, ack=1, options={"ts": (h.peer_ts(), h.last_tsval), "sack": [(S(1), S(k))]})
    retx = h.sent()
    assert retx and retx[0].seq == S(0)
    h.advance(0.05)
    # The renege: segment 0 arrived, the out-of-order queue was dropped.
    h.inject(".", seq=1, ack=S(1), options={"ts": (h.peer_ts(), h.last_tsval)})
    assert conn.scoreboard.reneged and conn.scoreboard.stats["sack_reneging"] == 1
    assert h.tcp.counters()["connection_stats"]["sack_reneging"] == 1
    done = _in_order_peer(h, S(1), 10 * MSS, limit=30.0)
    assert conn.stats["rto_expired"] >= 1
    assert done < 3.0, f"download finished only at t={done:.3f}"
    assert conn.snd_una == conn.snd_max and conn.state == State.ESTABLISHED


# == TIME-WAIT reuse (RFC 6191 §2) =================================================================
def _time_wait(h: Scenario, *, ts: bool) -> None:
    """An old incarnation, with or without timestamps, closed by us into TIME-WAIT."""
    opts = dict(SYN_OPTIONS) if ts else {k: v for k, v in SYN_OPTIONS.items() if k != "ts"}
    h.passive_open(options=opts)
    h.inject("P.", seq=1, ack=1, payload=b"hello")
    assert h.recv() == b"hello"
    h.close()
    h.sent()
    h.inject("F.", seq=6, ack=2, at=0.1)
    h.expect(".", seq=2, ack=7)
    assert h.state == State.TIME_WAIT


def _new_syn(h: Scenario, *, seq: int, ts: int | None, at: float) -> None:
    opts = {k: v for k, v in SYN_OPTIONS.items() if k != "ts"}
    if ts is not None:
        opts["ts"] = (ts, 0)
    h.iss += 100_000
    h.inject("S", seq=seq, options=opts, at=at)


@pytest.mark.parametrize("seq_newer", [True, False])
def test_time_wait_old_ts_new_syn_ts_decides_on_timestamp(seq_newer: bool) -> None:
    """Both incarnations use timestamps: a newer TSval reopens, whatever the sequence number
    (RFC 6191 §2, first case)."""
    h = Scenario()
    _time_wait(h, ts=True)
    h.ts_auto = False
    seq = 1_000_000 if seq_newer else (-1_000_000) & 0xFFFFFFFF
    _new_syn(h, seq=seq, ts=h.peer_ts() + 1000, at=1.0)
    h.expect("S.", seq=0, ack=(seq + 1) & 0xFFFFFFFF)
    assert h.tcp.stats["time_wait_reused"] == 1


def test_time_wait_old_ts_new_syn_older_ts_is_an_old_duplicate() -> None:
    """Both use timestamps, the SYN's TSval is older than TS.Recent: an old duplicate, TIME-WAIT
    re-acknowledges and stays (RFC 6191 §2, "otherwise")."""
    h = Scenario()
    _time_wait(h, ts=True)
    h.ts_auto = False
    _new_syn(h, seq=1_000_000, ts=4000, at=1.0)
    h.iss -= 100_000
    h.expect(".", seq=2, ack=7)
    assert h.state == State.TIME_WAIT and h.tcp.stats["time_wait_reused"] == 0


def test_time_wait_old_ts_new_syn_without_ts_decides_on_sequence() -> None:
    """The issue #13 defect: the old incarnation had timestamps, the new SYN has none (another
    client behind the same NAT) and a higher sequence number. RFC 6191 §2 decides on the
    sequence number: a new connection, not an ACK for the old one (which the peer would RST and
    TIME-WAIT would ignore, stalling the connect for 2·MSL)."""
    h = Scenario()
    _time_wait(h, ts=True)
    h.ts_auto = False
    _new_syn(h, seq=50_000, ts=None, at=1.0)
    h.expect("S.", seq=0, ack=50_001)
    assert h.tcp.stats["time_wait_reused"] == 1
    h.inject(".", seq=50_001, ack=1, ts=False)
    assert h.accept().state == State.ESTABLISHED


def test_time_wait_old_ts_new_syn_without_ts_lower_sequence_is_refused() -> None:
    """Old incarnation with timestamps, new SYN without, sequence number below the old RCV.NXT:
    an old duplicate (RFC 6191 §2): TIME-WAIT re-acknowledges."""
    h = Scenario()
    _time_wait(h, ts=True)
    h.ts_auto = False
    _new_syn(h, seq=2, ts=None, at=1.0)
    h.iss -= 100_000
    h.expect(".", seq=2, ack=7)
    assert h.state == State.TIME_WAIT and h.tcp.stats["time_wait_reused"] == 0


@pytest.mark.parametrize("new_ts", [True, False])
def test_time_wait_old_without_ts_decides_on_sequence(new_ts: bool) -> None:
    """The old incarnation had no timestamps: whether or not the new SYN carries them, the
    sequence number decides (RFC 6191 §2, second case): higher reopens, lower is re-ACKed."""
    h = Scenario()
    _time_wait(h, ts=False)
    _new_syn(h, seq=3, ts=h.peer_ts() if new_ts else None, at=1.0)  # below RCV.NXT = 7
    h.iss -= 100_000
    h.expect(".", seq=2, ack=7)
    assert h.state == State.TIME_WAIT and h.tcp.stats["time_wait_reused"] == 0
    _new_syn(h, seq=60_000, ts=h.peer_ts() if new_ts else None, at=2.0)
    h.expect("S.", seq=0, ack=60_001)
    assert h.tcp.stats["time_wait_reused"] == 1


# == resets a zero-window peer accepts ============================================================
def test_abort_toward_a_zero_window_sends_the_rst_at_the_window_edge() -> None:
    """An application aborts a connection whose peer shut its window while a probe byte was out
    (SND.NXT = SND.UNA + 1). A RST at SND.NXT lies beyond the peer's window, which Linux drops
    silently (RFC 5961 §3.2), leaving its end open forever; like Linux's tcp_acceptable_seq the
    RST goes at the window's right edge, SND.UNA + SND.WND — here exactly the peer's RCV.NXT.
    (Found by tests/attacks/test_tcp_slowloris.py: 1,000 aborted zero-window peers stayed open.)"""
    h = Scenario()
    h.passive_open(rtt=0.1, win=0)
    h.send(b"p" * 5000)
    h.expect_within(1, ".", seq=1, payload=b"p", after=0.3)  # the window probe
    h.abort()
    h.expect("R.", seq=1)


# == malicious SACK blocks (CVE-2019-11477/11478/11479 shapes) ====================================
def test_malicious_sack_blocks_are_refused_and_change_nothing() -> None:
    """Bogus SACK blocks on every ACK — below SND.UNA, beyond SND.NXT, inverted, far out of range,
    three at a time beside the TS option (RFC 2018 §3: blocks describe data the sender sent; the
    live test sends four, without timestamps) — are refused and counted
    (``tcp_sack_invalid``); they mark nothing lost, trigger no retransmission, and the
    cumulative ACKs they ride on still advance the transfer."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.1)
    h.send(b"s" * 10 * MSS)
    assert len(h.sent()) == 10
    for k in range(1, 11):
        una = S(k)
        bad = [(una - 5000, una - 1000), (S(10) + 1, S(10) + 5000), (una + 3000, una + 100)]
        if k % 2:
            bad[1] = (S(1000), S(2000))
        h.inject(".", seq=1, ack=una, options={"ts": (h.peer_ts(), h.last_tsval), "sack": bad}, at=0.2 + k * 0.001)
        assert not conn.scoreboard.has_sacks
        for seg in h.sent():
            assert seg.seq >= S(10), f"a retransmission: {seg}"  # only new data, no repair
    assert conn.snd_una == (conn.iss + S(10)) & 0xFFFFFFFF
    assert conn.stats.get("retransmitted_segments", 0) == 0
    assert conn.scoreboard.drops["tcp_sack_invalid"] >= 10
    assert h.tcp.counters()["connection_drops"]["tcp_sack_invalid"] >= 10
