"""Scoreboard: SACK recording against a byte-set model across sequence wraparound (merging, SND.UNA
advancing, D-SACK, invalid blocks, reneging), RFC 6675 IsLost/SetPipe/NextSeg against octet-by-octet
brute force, and scripted loss patterns (single loss, multiple losses, rule 3, a lost retransmission,
the rescue retransmission, RTO reset)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.tcp.sack import DUPTHRESH, Scoreboard

MASK = 0xFFFFFFFF
NEAR_WRAP = 2**32 - 450  # ten 100-byte segments straddle the wrap


def s(seq: int) -> int:
    return seq & MASK


class Flight:
    """A sender's view in offsets from its ISN, turned into wrapped sequence numbers on the way."""

    def __init__(self, isn: int, sent: int, mss: int = 100) -> None:
        self.isn = isn
        self.una = 0
        self.nxt = sent
        self.mss = mss
        self.sb = Scoreboard()

    def seq(self, off: int) -> int:
        return s(self.isn + off)

    def off(self, seq: int) -> int:
        return (seq - self.isn) & MASK

    def ack(self, una: int, *blocks: tuple[int, int]) -> int:
        self.una = max(self.una, una)
        return self.sb.update(self.seq(self.una), [(self.seq(a), self.seq(b)) for a, b in blocks], self.seq(self.nxt))

    def pipe(self, high_rxt: int) -> int:
        return self.sb.pipe(self.seq(self.una), self.seq(self.nxt), self.seq(high_rxt), self.mss)

    def next_seg(self, high_rxt: int, new_data: bool = False) -> tuple[int, int] | None:
        got = self.sb.next_seg(self.seq(self.una), self.seq(self.nxt), self.seq(high_rxt), self.mss, new_data=new_data)
        return None if got is None else (self.off(got[0]), got[1])

    def lost(self, off: int) -> bool:
        return self.sb.is_lost(self.seq(off), self.mss)


# -- scripted -------------------------------------------------------------------------------------


@pytest.mark.parametrize("isn", [0, NEAR_WRAP])
def test_single_loss(isn: int) -> None:
    """Segment 0 of 10 is lost; SACKs for 1, 2, 3 arrive (RFC 6675 §5: the third triggers)."""
    f = Flight(isn, 1000)
    assert f.sb.update(f.seq(0), [], f.seq(1000)) == 0 and not f.sb.has_sacks
    assert f.pipe(0) == 1000  # no SACK information: everything is in flight
    assert f.ack(0, (100, 200)) == 100
    assert not f.lost(0) and f.next_seg(0, new_data=True) is None
    assert f.pipe(0) == 900
    assert f.ack(0, (100, 300)) == 100
    assert not f.lost(0)  # 200 bytes SACKed above: not more than (DupThresh - 1) * SMSS
    assert f.ack(0, (100, 400)) == 100
    assert f.lost(0) and not f.lost(400)
    assert f.sb.high_sacked == f.seq(400) and f.sb.sacked_bytes == 300
    assert f.pipe(0) == 600  # [0, 100) is lost, [400, 1000) still in flight
    assert f.next_seg(0, new_data=True) == (0, 100)  # rule 1 beats new data
    assert f.pipe(100) == 700  # the retransmission is in flight too
    assert f.next_seg(100) is None  # nothing below the highest SACK is left
    # The retransmission arrives: everything up to 1000 is ACKed and the board empties.
    assert f.ack(1000) == 0 and not f.sb.has_sacks and f.sb.sacked_bytes == 0
    assert f.pipe(1000) == 0


@pytest.mark.parametrize("isn", [0, NEAR_WRAP])
def test_multiple_losses(isn: int) -> None:
    """Segments 0, 3 and 6 of 10 are lost; the rest are SACKed."""
    f = Flight(isn, 1000)
    f.ack(0, (100, 300))
    f.ack(0, (400, 600), (100, 300))
    assert f.ack(0, (700, 1000), (400, 600), (100, 300)) == 300
    assert f.sb.ranges() == [(f.seq(100), f.seq(300)), (f.seq(400), f.seq(600)), (f.seq(700), f.seq(1000))]
    assert f.lost(0)  # three discontiguous SACKed ranges above
    assert f.lost(300)  # 500 SACKed bytes above
    assert f.lost(600)  # 300 SACKed bytes above
    assert f.pipe(0) == 0  # every hole is lost, nothing else is in flight
    rxt = 0
    sent = []
    while (seg := f.next_seg(rxt)) is not None:
        sent.append(seg)
        rxt = seg[0] + seg[1]
    assert sent == [(0, 100), (300, 100), (600, 100)]
    assert f.pipe(rxt) == 300  # the three retransmissions
    # The first retransmission arrives: SND.UNA jumps to the next hole.
    f.ack(300, (400, 600), (700, 1000))
    assert f.sb.sacked_bytes == 500 and f.pipe(rxt) == 200


def test_rule_3_when_no_new_data() -> None:
    f = Flight(NEAR_WRAP, 1000)
    f.ack(0, (100, 300))  # only two segments SACKed: 0 is not lost yet
    assert not f.lost(0)
    assert f.next_seg(0, new_data=True) is None  # rule 2: send new data instead
    assert f.next_seg(0, new_data=False) == (0, 100)  # rule 3
    assert f.next_seg(100, new_data=False) is None


def test_segment_stops_at_sacked_range_and_mss() -> None:
    f = Flight(0, 1000, mss=100)
    f.ack(0, (50, 60), (500, 1000))
    assert f.next_seg(0) == (0, 50)  # up to the SACKed range
    assert f.next_seg(50) == (60, 100)  # up to SMSS
    assert f.next_seg(160) == (160, 100)
    assert f.next_seg(470) == (470, 30)
    assert f.next_seg(500) is None


def test_lost_retransmission_is_not_detected() -> None:
    """RFC 6675 retransmits each hole once per recovery: a lost retransmission waits for the RTO."""
    f = Flight(0, 2000)
    f.ack(0, (100, 400))
    assert f.next_seg(0) == (0, 100)
    rxt = 100
    # The retransmission of [0, 100) is lost; later segments keep being SACKed.
    f.ack(0, (100, 2000))
    assert f.lost(0)
    assert f.next_seg(rxt) is None  # not retransmitted again
    # After the RTO the connection resets HighRxt to SND.UNA (RFC 6675 §5.1).
    f.sb.reset(keep_sacks=True)
    assert f.sb.has_sacks
    assert f.next_seg(0) == (0, 100)
    f.sb.reset()
    assert not f.sb.has_sacks and f.next_seg(0) is None and f.pipe(0) == 2000


def test_rescue_seg() -> None:
    f = Flight(NEAR_WRAP, 1000)
    assert f.sb.rescue_seg(f.seq(0), f.seq(1000), 100) == (f.seq(900), 100)  # no SACKs: the tail
    f.ack(0, (100, 200))
    assert f.sb.rescue_seg(f.seq(0), f.seq(1000), 100) == (f.seq(900), 100)
    f.ack(0, (850, 1000))
    assert f.sb.rescue_seg(f.seq(0), f.seq(1000), 100) == (f.seq(750), 100)
    f.ack(0, (250, 830))
    assert f.sb.rescue_seg(f.seq(0), f.seq(1000), 100) == (f.seq(830), 20)
    f.ack(0, (0, 1000))
    assert f.sb.rescue_seg(f.seq(0), f.seq(1000), 100) is None
    assert f.sb.rescue_seg(f.seq(0), f.seq(0), 100) is None


def test_dsack_and_invalid_blocks() -> None:
    f = Flight(NEAR_WRAP, 1000)
    f.ack(300, (500, 600))
    # RFC 2883 §4: a first block below the cumulative ACK reports a duplicate.
    assert f.ack(300, (100, 200), (500, 600)) == 0
    # A first block inside the second block is a duplicate of SACKed data.
    assert f.ack(300, (520, 540), (500, 700)) == 100
    assert f.sb.stats["dsack"] == 2 and f.sb.sacked_bytes == 200
    # Blocks past SND.NXT, empty or inverted are refused.
    assert f.ack(300, (900, 1100)) == 0
    assert f.ack(300, (800, 800)) == 0
    assert f.ack(300, (800, 750)) == 0
    assert f.sb.drops["tcp_sack_invalid"] == 3
    # A later block reaching below SND.UNA (a reordered ACK) is clipped or, if nothing is left, stale.
    assert f.ack(300, (800, 900), (100, 200)) == 100
    assert f.sb.stats["sack_stale"] == 1
    assert f.sb.sacked_bytes == 300 and not f.sb.reneged


def test_reneging() -> None:
    f = Flight(0, 1000)
    f.ack(0, (100, 300), (500, 600))
    f.sb.reset(keep_sacks=True)  # no reneging seen: the information survives the RTO
    assert f.sb.sacked_bytes == 300
    f.ack(200)  # SND.UNA inside a SACKed range: the receiver dropped [200, 300)
    assert f.sb.reneged and f.sb.stats["sack_reneging"] == 1
    assert f.sb.sacked_bytes == 200 and f.sb.is_sacked(f.seq(200)) and not f.sb.is_sacked(f.seq(199))
    f.sb.reset(keep_sacks=True)  # reneged: expunged anyway (RFC 2018 §8)
    assert not f.sb.has_sacks and not f.sb.reneged


def test_stale_snd_una_ignored() -> None:
    sb = Scoreboard()
    sb.update(1000, [(1200, 1300)], 2000)
    sb.update(1100, [], 2000)
    sb.update(1050, [(1000, 1300)], 2000)  # an older SND.UNA does not move it back
    assert sb.ranges() == [(1200, 1300)] and sb.stats["dsack"] == 1


def test_long_lived_board_rebases() -> None:
    """A scoreboard that never empties while 8 GiB go by stays exact (offsets are re-anchored)."""
    sb = Scoreboard()
    step = 1 << 27
    una = MASK - 5000
    sb.update(una, [(s(una + step), s(una + step + 100))], s(una + step + 1000))
    for _ in range(64):
        # SND.UNA moves into the top range (a renege, which keeps [una, una + 50) on the board)
        # and a new range is SACKed a step further: the board is never empty.
        una = s(una + step + 50)
        nxt = s(una + step + 1000)
        assert sb.update(una, [(s(una + step), s(una + step + 100))], nxt) == 100
        assert sb.ranges() == [(una, s(una + 50)), (s(una + step), s(una + step + 100))]
        assert sb.sacked_bytes == 150 and sb.reneged
        assert sb.is_sacked(una) and sb.is_sacked(s(una + 49)) and not sb.is_sacked(s(una + 50))
        assert sb.high_sacked == s(una + step + 100)
        assert sb.pipe(una, nxt, una, 100) == step + 1000 - 150
        assert sb.next_seg(una, nxt, una, 100) == (s(una + 50), 100)  # rule 3


def test_iterator_blocks_and_empty_fast_path() -> None:
    sb = Scoreboard()
    assert sb.update(10, iter([(20, 30), (40, 50)]), 100) == 20
    assert sb.high_sacked == 50
    assert sb.update(60, (), 100) == 0 and not sb.has_sacks and sb.high_sacked is None
    assert sb.next_seg(60, 100, 60, 10) is None and sb.pipe(60, 100, 70, 10) == 50
    assert not sb.is_lost(60, 10) and not sb.is_sacked(60) and sb.ranges() == []


def test_dupthresh_one() -> None:
    f = Flight(0, 1000)
    f.ack(0, (500, 501))
    assert f.sb.is_lost(f.seq(0), 100, dupthresh=1)
    assert not f.sb.is_lost(f.seq(0), 100, dupthresh=DUPTHRESH)


# -- the model ------------------------------------------------------------------------------------


def runs(held: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in sorted(held):
        if out and out[-1][1] == p:
            out[-1] = (out[-1][0], p + 1)
        else:
            out.append((p, p + 1))
    return out


def brute_lost(held: set[int], lo: int, hi: int, mss: int, dupthresh: int) -> dict[int, bool]:
    """RFC 6675 IsLost() for every octet in [lo, hi), straight from the definition."""
    ranges = runs(held)
    out = {}
    for p in range(lo, hi):
        above_bytes = sum(1 for q in held if q > p)
        above_ranges = sum(1 for a, b in ranges if b - 1 > p)
        out[p] = above_ranges >= dupthresh or above_bytes > (dupthresh - 1) * mss
    return out


class Model:
    def __init__(self) -> None:
        self.una = 0
        self.nxt = 0
        self.held: set[int] = set()
        self.reneged = False
        self.dsack = self.invalid = self.stale = self.reneging = 0

    def update(self, una: int, blocks: list[tuple[int, int]]) -> int:
        if una > self.una:
            self.una = una
            self.held = {p for p in self.held if p >= una}
            if not self.held:
                self.reneged = False
        newly = 0
        for i, (left, right) in enumerate(blocks):
            if right <= left or right > self.nxt:
                self.invalid += 1
                continue
            if i == 0 and (left < self.una or (len(blocks) > 1 and blocks[1][0] <= left and right <= blocks[1][1])):
                self.dsack += 1
                continue
            left = max(left, self.una)
            if right <= left:
                self.stale += 1
                continue
            new = set(range(left, right)) - self.held
            newly += len(new)
            self.held |= new
        if self.una in self.held and not self.reneged:
            self.reneged = True
            self.reneging += 1
        return newly


BLOCK = st.tuples(st.integers(-40, 330), st.integers(-5, 90))
OPS = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 80)),
    st.tuples(st.just("ack"), st.one_of(st.just(0), st.integers(0, 120)), st.lists(BLOCK, max_size=4)),
    st.tuples(st.just("ack"), st.just(0), st.lists(BLOCK, min_size=1, max_size=4)),
    st.tuples(st.just("reset"), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(
    isn=st.one_of(st.integers(0, MASK), st.integers(MASK - 300, MASK)),
    mss=st.integers(1, 40),
    dupthresh=st.integers(1, 4),
    ops=st.lists(OPS, min_size=10, max_size=40),
    rxt_rels=st.lists(st.integers(-10, 320), min_size=1, max_size=3),
)
def test_model(isn: int, mss: int, dupthresh: int, ops: list[tuple], rxt_rels: list[int]) -> None:
    sb = Scoreboard()
    m = Model()
    m.nxt = 200

    def seq(off: int) -> int:
        return s(isn + off)

    for op in ops:
        if op[0] == "send":
            m.nxt = min(m.nxt + op[1], m.una + 320)
            continue
        if op[0] == "reset":
            sb.reset(keep_sacks=op[1])
            if not op[1] or m.reneged:
                m.held = set()
                m.reneged = False
        else:
            _, k, raw = op
            una = min(m.una + k, m.nxt)
            blocks = [(una + a, una + a + length) for a, length in raw]
            got = sb.update(seq(una), [(seq(a), seq(b)) for a, b in blocks], seq(m.nxt))
            assert got == m.update(una, blocks)
        una, nxt, held = m.una, m.nxt, m.held
        assert sb.sacked_bytes == len(held) and sb.has_sacks == bool(held)
        assert sb.ranges() == [(seq(a), seq(b)) for a, b in runs(held)]
        assert sb.high_sacked == (seq(max(held) + 1) if held else None)
        assert sb.reneged == m.reneged
        assert (sb.stats["dsack"], sb.stats["sack_stale"], sb.stats["sack_reneging"]) == (m.dsack, m.stale, m.reneging)
        assert sb.drops["tcp_sack_invalid"] == m.invalid
        for p in range(una - 3, nxt + 3):
            assert sb.is_sacked(seq(p)) == (p in held)
        lost = brute_lost(held, una, nxt, mss, dupthresh)
        for p in range(una, nxt):
            assert sb.is_lost(seq(p), mss, dupthresh) == lost[p], p
        top = max(held) + 1 if held else una
        for rel in rxt_rels:
            rxt = min(max(una + rel, una), nxt)
            # SetPipe, octet by octet (RFC 6675 §4).
            want = sum((not lost[p]) + (p < rxt) for p in range(una, nxt) if p not in held)
            assert sb.pipe(seq(una), seq(nxt), seq(una + rel), mss, dupthresh) == want
            # NextSeg rules 1 and 3, from the definitions.
            cands = [p for p in range(max(una, rxt), top) if p not in held]
            rule1 = next((p for p in cands if lost[p]), None)
            rule3 = cands[0] if cands else None
            for new_data in (False, True):
                pick = rule1 if rule1 is not None else (None if new_data else rule3)
                want_seg = None
                if pick is not None:
                    end = pick
                    while end < nxt and end not in held and end - pick < mss:
                        end += 1
                    want_seg = (seq(pick), end - pick)
                got_seg = sb.next_seg(seq(una), seq(nxt), seq(rxt), mss, dupthresh, new_data=new_data)
                assert got_seg == want_seg
        # Rule 4's segment: up to SMSS ending at the highest unSACKed octet.
        unsacked = [p for p in range(una, nxt) if p not in held]
        want_rescue = None
        if unsacked:
            hi = unsacked[-1] + 1
            lo = hi - 1
            while lo - 1 >= una and lo - 1 not in held and hi - (lo - 1) <= mss:
                lo -= 1
            want_rescue = (seq(lo), hi - lo)
        assert sb.rescue_seg(seq(una), seq(nxt), mss) == want_rescue
