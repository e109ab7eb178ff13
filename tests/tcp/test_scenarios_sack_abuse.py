"""Scenarios: SACK abuse by a hostile receiver (RFC 2018, RFC 2883, RFC 6675; the 2019 SACK CVEs
CVE-2019-11477/11478/11479) — blocks out of range, inverted or empty, below SND.UNA, straddling
it, four blocks on every ACK, 1-byte SACK fragmentation, SACK on a connection that never agreed
to it, and reneging. Invalid blocks are counted drops (``tcp_sack_invalid`` in the scoreboard);
nothing a receiver sends makes us send more than cwnd/SMSS segments per ACK."""

from __future__ import annotations

import random

from aiostack.tcp.connection import Connection
from scenario import Scenario, State

MSS = 1460  # no timestamps here: four SACK blocks fit in the option space


def ten_in_flight(h: Scenario, **open_kw: object) -> Connection:
    """A connection without timestamps, SACK agreed, ten full segments in flight."""
    conn = h.passive_open(options={"mss": 1460, "sack_perm": True, "wscale": 7}, **open_kw)
    h.send(b"d" * 10 * MSS)
    assert len(h.sent()) == 10
    return conn


def test_block_beyond_snd_nxt_is_refused() -> None:
    """A block above anything sent (SACKing the future) is invalid: counted, ignored, no
    retransmission, nothing on the scoreboard."""
    h = Scenario()
    conn = ten_in_flight(h)
    h.inject(".", seq=1, ack=1, options={"sack": [(1 + 20 * MSS, 1 + 30 * MSS)]})
    h.expect_nothing()
    assert conn.scoreboard.drops["tcp_sack_invalid"] == 1 and not conn.scoreboard.has_sacks


def test_block_ending_past_snd_nxt_is_refused() -> None:
    """A block that starts inside the flight but ends beyond SND.NXT is invalid as a whole."""
    h = Scenario()
    conn = ten_in_flight(h)
    h.inject(".", seq=1, ack=1, options={"sack": [(1 + 5 * MSS, 1 + 11 * MSS)]})
    assert conn.scoreboard.drops["tcp_sack_invalid"] == 1 and not conn.scoreboard.has_sacks


def test_inverted_and_empty_blocks_are_refused() -> None:
    """Left edge above the right edge, or equal to it: invalid (two counted drops)."""
    h = Scenario()
    conn = ten_in_flight(h)
    h.inject(".", seq=1, ack=1, options={"sack": [(1 + 5 * MSS, 1 + 3 * MSS), (1 + 4 * MSS, 1 + 4 * MSS)]})
    h.expect_nothing()
    assert conn.scoreboard.drops["tcp_sack_invalid"] == 2 and not conn.scoreboard.has_sacks


def test_block_below_snd_una_is_dsack_not_loss() -> None:
    """A first block wholly below the cumulative ACK is a D-SACK (RFC 2883 §4): counted as such;
    it marks nothing and starts no recovery."""
    h = Scenario()
    conn = ten_in_flight(h)
    h.inject(".", seq=1, ack=1 + 2 * MSS)
    h.inject(".", seq=1, ack=1 + 2 * MSS, options={"sack": [(1, 1 + MSS)]})
    assert conn.scoreboard.stats["dsack"] == 1 and not conn.scoreboard.has_sacks
    assert not conn.in_recovery


def test_stale_block_below_snd_una_in_second_place_is_ignored() -> None:
    """A later block below SND.UNA (a reordered old ACK's) is stale: ignored and counted."""
    h = Scenario()
    conn = ten_in_flight(h)
    h.inject(".", seq=1, ack=1 + 2 * MSS)
    h.inject(".", seq=1, ack=1 + 2 * MSS, options={"sack": [(1 + 4 * MSS, 1 + 5 * MSS), (1, 1 + MSS)]})
    assert conn.scoreboard.stats["sack_stale"] == 1
    assert conn.scoreboard.ranges() == [(h.iss + 1 + 4 * MSS, h.iss + 1 + 5 * MSS)]


def test_first_block_straddling_snd_una_is_a_dsack() -> None:
    """RFC 2883 §4: a first block whose left edge is below the cumulative ACK is a D-SACK (as in
    Linux's tcp_check_dsack), even if it reaches above it: counted, nothing marked."""
    h = Scenario()
    conn = ten_in_flight(h)
    h.inject(".", seq=1, ack=1 + MSS, options={"sack": [(1 + MSS - 100, 1 + 3 * MSS)]})
    assert conn.scoreboard.stats["dsack"] == 1 and conn.scoreboard.sacked_bytes == 0


def test_later_block_straddling_snd_una_is_clipped_and_means_reneging() -> None:
    """A later block reaching below SND.UNA is clipped to it. What is left starts at SND.UNA: the
    receiver claims to hold the byte at its own cumulative ACK point, which a correct receiver
    would have acknowledged — RFC 2018 §8 reneging, counted; SND.UNA is where it was and the
    data stays queued for retransmission."""
    h = Scenario()
    conn = ten_in_flight(h)
    h.inject(".", seq=1, ack=1 + MSS, options={"sack": [(1 + 3 * MSS, 1 + 4 * MSS), (1 + MSS - 100, 1 + 3 * MSS)]})
    assert conn.scoreboard.ranges() == [(h.iss + 1 + MSS, h.iss + 1 + 4 * MSS)]
    assert conn.scoreboard.stats["sack_reneging"] == 1
    assert conn.snd_una == h.iss + 1 + MSS


def test_sack_without_sack_permitted_is_ignored() -> None:
    """RFC 2018 §2: SACK blocks on a connection that did not negotiate SACK are not used."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 1460, "wscale": 7})
    h.send(b"d" * 5 * MSS)
    h.sent()
    h.inject(".", seq=1, ack=1, options={"sack": [(1 + MSS, 1 + 4 * MSS)]})
    h.expect_nothing()
    assert not conn.sack_ok and conn._scoreboard is None


def test_four_random_blocks_on_every_ack_stay_bounded() -> None:
    """Four blocks (valid, invalid, overlapping, inverted — seeded random) on each of 400
    duplicate ACKs: every ACK gets at most cwnd/SMSS segments in reply, the scoreboard stays
    sorted and disjoint, and the final cumulative ACK empties it."""
    h = Scenario()
    conn = ten_in_flight(h)
    rng = random.Random(11)
    for _ in range(400):
        blocks = []
        for _ in range(4):
            a = rng.randrange(-3 * MSS, 14 * MSS)
            blocks.append((1 + a, 1 + a + rng.randrange(-MSS, 3 * MSS)))
        h.inject(".", seq=1, ack=1, options={"sack": blocks})
        assert len(h.sent()) <= max(1, conn.cc.cwnd // conn.snd_mss) + 1
        ranges = conn.scoreboard.ranges()
        assert all(a < b for a, b in ranges) and all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))
    h.inject(".", seq=1, ack=1 + 10 * MSS)
    assert not conn.scoreboard.has_sacks and conn.snd_una == h.iss + 1 + 10 * MSS
    assert conn.state == State.ESTABLISHED


def test_one_byte_sack_fragmentation_does_not_amplify() -> None:
    """CVE-2019-11478's shape: the receiver SACKs every other byte, four 1-byte blocks per ACK,
    leaving 1-byte holes. Counted in bytes, the pipe would let ~150 one-byte retransmissions out
    per ACK once the holes pile up (measured before the fix: 276,280 segments for these ACKs, up to
    256 per ACK, 26 s of CPU); like Linux's packet-counted pipe we send at most cwnd/SMSS segments
    per ACK (4,012 in all, 1.1 s on the pure build)."""
    h = Scenario(nodelay=True)
    conn = ten_in_flight(h)
    total = 0
    acks = 0
    for k in range(0, 10 * MSS - 8, 8):  # 1,824 ACKs walking through the whole flight
        blocks = [(1 + k + 2 * i, 2 + k + 2 * i) for i in range(4)]
        h.inject(".", seq=1, ack=1, options={"sack": blocks})
        out = h.sent()
        assert len(out) <= max(1, conn.cc.cwnd // conn.snd_mss), f"ACK {acks}: {len(out)} segments"
        total += len(out)
        acks += 1
    assert total <= 3 * acks and conn.stats["sack_rxt_segment_budget"] > 0
    assert h.tcp.stats["sack_rxt_segment_budget"] == conn.stats["sack_rxt_segment_budget"]
    h.inject(".", seq=1, ack=1 + 10 * MSS)
    assert conn.snd_una == h.iss + 1 + 10 * MSS and not conn.scoreboard.has_sacks


def test_sack_of_everything_above_a_hole_retransmits_only_the_hole() -> None:
    """The receiver SACKs segments 2..10, one RTT (0.1 s) after they left, and never ACKs segment
    1: recovery resends segment 1 once (RFC 6675 / RACK), never the SACKed data; when that
    retransmission goes unanswered too, the RTO resends it."""
    h = Scenario()
    conn = ten_in_flight(h, rtt=0.1)
    for i in range(2, 5):
        h.inject(".", seq=1, ack=1, options={"sack": [(1 + MSS, 1 + i * MSS)]}, at=0.2)
    h.inject(".", seq=1, ack=1, options={"sack": [(1 + MSS, 1 + 10 * MSS)]}, at=0.2)
    out = h.sent()
    assert [o.seq for o in out] == [1] and len(out[0].payload) == MSS
    assert conn.in_recovery
    again = h.expect_within(5, seq=1, payload_len=MSS)
    assert again.elapsed > 0
    h.expect_nothing()


def test_reneging_receiver_is_detected() -> None:
    """RFC 2018 §8: SACKed data may be discarded by the receiver (reneging). A later ACK whose
    cumulative point lands inside a SACKed range without covering it shows it: counted, and the
    sender keeps the data to retransmit (nothing is freed until cumulatively acknowledged)."""
    h = Scenario()
    conn = ten_in_flight(h, rtt=0.1)
    h.inject(".", seq=1, ack=1, options={"sack": [(1 + 2 * MSS, 1 + 4 * MSS)]})
    h.sent()
    h.inject(".", seq=1, ack=1 + 3 * MSS)
    assert conn.scoreboard.stats["sack_reneging"] == 1 and conn.scoreboard.reneged
    assert conn.snd_una == h.iss + 1 + 3 * MSS
