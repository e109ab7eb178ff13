"""ReceiveBuffer: in-order and out-of-order reassembly across sequence wraparound, first-copy-wins
overlaps, window accounting, caps, FIN (in order and out of order), RFC 2018 SACK block order, and a
hypothesis model of all of it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.tcp.receive_buffer import ReceiveBuffer

MASK = 0xFFFFFFFF
NEAR_WRAP = 2**32 - 1000


def s(seq: int) -> int:
    return seq & MASK


def pattern(start: int, n: int, version: int = 0) -> bytes:
    """Bytes that depend on their stream position and a version (to tell copies apart)."""
    return bytes((p * 131 + version * 71 + 5) & 0xFF for p in range(start, start + n))


# -- in order --------------------------------------------------------------------------------------


@pytest.mark.parametrize("isn", [0, 12345, NEAR_WRAP, MASK])
def test_in_order_reads_across_wrap(isn: int) -> None:
    rb = ReceiveBuffer(isn, 10_000)
    payload = pattern(0, 3000)
    seq = isn
    for off in range(0, 3000, 700):
        chunk = payload[off : off + 700]
        assert rb.add(seq, chunk) == len(chunk)
        seq = s(seq + len(chunk))
    assert rb.rcv_nxt == s(isn + 3000)
    assert rb.readable == 3000 and rb.window == 7000 and not rb.has_ooo
    assert rb.peek(10) == payload[:10]
    assert rb.read(1000) == payload[:1000]
    dest = bytearray(1500)
    assert rb.read_into(dest) == 1500 and bytes(dest) == payload[1000:2500]
    assert rb.read() == payload[2500:]
    assert rb.read() == b"" and rb.window == 10_000
    assert not rb.drops


def test_read_into_memoryview_and_short_buffer() -> None:
    rb = ReceiveBuffer(7, 100)
    rb.add(7, b"hello world")
    big = bytearray(64)
    assert rb.read_into(memoryview(big)[10:20]) == 10
    assert big[10:20] == b"hello worl"
    assert rb.read_into(big) == 1 and big[:1] == b"d"
    assert rb.read_into(big) == 0


def test_caller_buffer_is_copied() -> None:
    rb = ReceiveBuffer(0, 1000)
    buf = bytearray(b"A" * 10)
    rb.add(0, memoryview(buf))  # in order (fast path)
    rb.add(20, buf)  # out of order
    buf[:] = b"B" * 10
    rb.add(10, buf)
    assert rb.read() == b"A" * 10 + b"B" * 10 + b"A" * 10


def test_in_order_segment_trimmed_to_capacity() -> None:
    rb = ReceiveBuffer(100, 50)
    assert rb.add(100, b"x" * 80) == 50
    assert rb.window == 0 and rb.readable == 50
    assert rb.drops["tcp_rcv_beyond_window"] == 1
    assert rb.add(150, b"y") == 0  # zero window
    rb.read(20)
    assert rb.window == 20
    assert rb.add(150, b"z" * 30) == 20


def test_duplicate_and_partial_duplicate() -> None:
    rb = ReceiveBuffer(NEAR_WRAP, 1000)
    rb.add(NEAR_WRAP, pattern(0, 100))
    assert rb.add(NEAR_WRAP, pattern(0, 100, 1)) == 0
    assert rb.drops["tcp_rcv_duplicate"] == 1
    assert rb.add(s(NEAR_WRAP + 50), pattern(50, 100, 1)) == 50  # the old half is trimmed
    assert rb.read() == pattern(0, 100) + pattern(100, 50, 1)
    assert rb.add(NEAR_WRAP, b"") == 0


def test_capacity_validated() -> None:
    with pytest.raises(ValueError):
        ReceiveBuffer(0, 0)
    with pytest.raises(ValueError):
        ReceiveBuffer(0, 2**30 + 1)
    with pytest.raises(ValueError):
        ReceiveBuffer(0, 10, max_ooo_segments=-1)


# -- out of order ------------------------------------------------------------------------------------


def test_ooo_then_fill_pulls_islands() -> None:
    isn = MASK - 150  # the islands straddle the wrap
    rb = ReceiveBuffer(isn, 10_000)
    payload = pattern(0, 1000)
    assert rb.add(s(isn + 200), payload[200:300]) == 0
    assert rb.add(s(isn + 400), payload[400:500]) == 0
    assert rb.has_ooo and rb.ooo_bytes == 200 and rb.ooo_segments == 2
    assert rb.window == 10_000 - 200  # out-of-order bytes count against the window
    assert rb.rcv_nxt == isn and rb.readable == 0
    assert rb.add(s(isn + 100), payload[100:200]) == 0  # joins the first island on its left
    assert rb.ooo_segments == 2 and rb.ooo_bytes == 300
    assert rb.add(isn, payload[:100]) == 300  # fills the hole, pulls [100, 300)
    assert rb.rcv_nxt == s(isn + 300) and rb.ooo_segments == 1
    assert rb.add(s(isn + 300), payload[300:400]) == 200
    assert not rb.has_ooo and rb.ooo_bytes == 0
    assert rb.read() == payload[:500]
    assert rb.add(s(isn + 500), payload[500:]) == 500  # the fast path again
    assert rb.read() == payload[500:]


def test_segment_bridging_islands() -> None:
    rb = ReceiveBuffer(0, 10_000)
    for start in (100, 300, 500):
        rb.add(start, pattern(start, 100))
    assert rb.ooo_segments == 3
    assert rb.add(150, pattern(150, 400)) == 0  # [150, 550) spans all three
    assert rb.ooo_segments == 1 and rb.ooo_bytes == 500
    assert rb.sack_blocks(4) == [(100, 600)]
    assert rb.add(0, pattern(0, 100)) == 600
    assert rb.read() == pattern(0, 600)


def test_first_copy_wins() -> None:
    rb = ReceiveBuffer(1000, 10_000)
    rb.add(1100, pattern(100, 100, version=1))  # island [100, 200)
    rb.add(1300, pattern(300, 100, version=1))  # island [300, 400)
    # A second copy covering both islands and the gap: only the gap is taken from it.
    assert rb.add(1050, pattern(50, 400, version=2)) == 0
    # The in-order copy fills [0, 50) and takes nothing where an island already has data.
    assert rb.add(1000, pattern(0, 450, version=3)) == 450
    expected = (
        pattern(0, 50, 3)
        + pattern(50, 50, 2)
        + pattern(100, 100, 1)
        + pattern(200, 100, 2)
        + pattern(300, 100, 1)
        + pattern(400, 50, 2)
    )
    assert rb.read() == expected


def test_duplicate_ooo_segment() -> None:
    rb = ReceiveBuffer(0, 1000)
    rb.add(100, b"a" * 50)
    assert rb.add(110, b"b" * 20) == 0
    assert rb.drops["tcp_rcv_duplicate"] == 1 and rb.ooo_bytes == 50


def test_acceptance_edge_does_not_shrink_with_ooo_data() -> None:
    # The sender saw a 4000-byte window: everything inside it is accepted even though held
    # out-of-order data lowers the advertised window.
    rb = ReceiveBuffer(0, 4000)
    rb.add(1000, bytes(1000))
    assert rb.window == 3000
    assert rb.add(3000, bytes(1000)) == 0
    assert rb.ooo_bytes == 2000 and rb.window == 2000 and not rb.drops
    assert rb.add(3500, bytes(1000)) == 0  # [4000, 4500) is beyond the buffer
    assert rb.drops["tcp_rcv_beyond_window"] == 1 and rb.ooo_bytes == 2000
    assert rb.add(0, bytes(1000)) == 2000
    assert rb.add(2000, bytes(1000)) == 2000 and rb.window == 0


def test_reverse_order_arrival() -> None:
    isn = MASK - 5000
    rb = ReceiveBuffer(isn, 1 << 20)
    payload = pattern(0, 100 * 100)
    for k in reversed(range(1, 100)):
        assert rb.add(s(isn + 100 * k), payload[100 * k : 100 * k + 100]) == 0
    assert rb.ooo_segments == 1
    assert rb.add(isn, payload[:100]) == len(payload)
    assert rb.read() == payload


def test_segment_cap() -> None:
    rb = ReceiveBuffer(0, 10_000, max_ooo_segments=2)
    rb.add(100, b"a" * 10)
    rb.add(200, b"b" * 10)
    assert rb.add(300, b"c" * 10) == 0
    assert rb.drops["tcp_ooo_queue_full"] == 1 and rb.ooo_segments == 2
    rb.add(210, b"b" * 10)  # extending an island needs no new slot
    assert rb.ooo_bytes == 30 and rb.drops["tcp_ooo_queue_full"] == 1
    assert rb.add(0, b"z" * 100) == 110  # in-order data is never capped


def test_byte_cap() -> None:
    rb = ReceiveBuffer(0, 10_000, max_ooo_bytes=100)
    rb.add(100, b"a" * 60)
    assert rb.add(300, b"b" * 60) == 0
    assert rb.drops["tcp_ooo_queue_full"] == 1 and rb.ooo_bytes == 60
    assert rb.add(160, b"c" * 40) == 0  # fills exactly to the cap
    assert rb.ooo_bytes == 100
    assert rb.add(200, b"d") == 0
    assert rb.drops["tcp_ooo_queue_full"] == 2


def test_zero_caps_refuse_all_ooo_data() -> None:
    rb = ReceiveBuffer(0, 10_000, max_ooo_segments=0)
    assert rb.add(10, b"x") == 0 and not rb.has_ooo
    assert rb.add(0, b"y" * 10) == 10


# -- FIN ------------------------------------------------------------------------------------------


def test_fin_in_order() -> None:
    rb = ReceiveBuffer(MASK, 100)
    assert rb.add(MASK, b"bye") == 3
    assert rb.fin(s(MASK + 3)) == 1
    assert rb.fin_received and rb.rcv_nxt == s(MASK + 4)
    assert rb.read() == b"bye"
    assert rb.fin(s(MASK + 3)) == 0  # a retransmitted FIN
    assert not rb.drops
    assert rb.add(s(MASK + 3), b"late") == 0  # after the FIN
    assert rb.drops["tcp_rcv_after_fin"] == 1
    assert rb.add(s(MASK + 4), b"x") == 0
    assert rb.drops["tcp_rcv_after_fin"] == 2


def test_fin_out_of_order() -> None:
    rb = ReceiveBuffer(NEAR_WRAP, 10_000)
    assert rb.add(s(NEAR_WRAP + 1000), bytes(500)) == 0
    assert rb.fin(s(NEAR_WRAP + 1500)) == 0 and not rb.fin_received
    assert rb.add(NEAR_WRAP, bytes(600)) == 600
    assert not rb.fin_received
    assert rb.add(s(NEAR_WRAP + 600), bytes(400)) == 400 + 500 + 1  # data, island and the FIN
    assert rb.fin_received and rb.rcv_nxt == s(NEAR_WRAP + 1501)
    assert rb.readable == 1500


def test_fin_bare_out_of_order() -> None:
    rb = ReceiveBuffer(0, 100)
    assert rb.fin(10) == 0
    assert rb.add(0, bytes(10)) == 11 and rb.fin_received


def test_data_beyond_fin_trimmed() -> None:
    rb = ReceiveBuffer(0, 10_000)
    rb.add(300, bytes(300))  # [300, 600)
    rb.add(800, bytes(100))  # [800, 900)
    assert rb.fin(500) == 0
    assert rb.drops["tcp_rcv_after_fin"] == 1
    assert rb.ooo_bytes == 200 and rb.sack_blocks(4) == [(300, 500)]
    assert rb.add(0, bytes(600)) == 500 + 1  # the segment is cut at the FIN too
    assert rb.drops["tcp_rcv_after_fin"] == 2
    assert rb.fin_received and rb.readable == 500


def test_fin_conflicts_and_beyond_window() -> None:
    rb = ReceiveBuffer(0, 100)
    rb.add(0, bytes(50))
    assert rb.fin(20) == 0  # the stream cannot end before data already received
    assert rb.fin(151) == 0  # beyond the buffer
    assert rb.drops["tcp_fin_conflict"] == 1 and rb.drops["tcp_fin_beyond_window"] == 1
    assert rb.fin(70) == 0
    assert rb.fin(80) == 0  # a different FIN
    assert rb.drops["tcp_fin_conflict"] == 2
    assert rb.add(50, bytes(20)) == 21 and rb.fin_received
    assert rb.fin(90) == 0 and rb.drops["tcp_fin_conflict"] == 3


def test_fin_at_window_edge() -> None:
    rb = ReceiveBuffer(0, 100)
    assert rb.add(0, bytes(100)) == 100 and rb.window == 0
    assert rb.fin(100) == 1 and rb.fin_received  # a FIN needs no buffer space


# -- SACK blocks --------------------------------------------------------------------------------


def test_sack_block_order_rfc2018() -> None:
    """RFC 2018 §4: the block holding the latest segment first, then the most recently reported."""
    base = MASK - 2500  # blocks straddle the wrap
    rb = ReceiveBuffer(base, 100_000)

    def blocks(n: int = 4) -> list[tuple[int, int]]:
        return [(s(a - base), s(b - base)) for a, b in rb.sack_blocks(n)]

    seg = 500
    rb.add(s(base + 1 * seg), bytes(seg))  # [500, 1000)
    assert blocks() == [(500, 1000)]
    rb.add(s(base + 3 * seg), bytes(seg))  # [1500, 2000)
    assert blocks() == [(1500, 2000), (500, 1000)]
    rb.add(s(base + 5 * seg), bytes(seg))  # [2500, 3000)
    assert blocks() == [(2500, 3000), (1500, 2000), (500, 1000)]
    rb.add(s(base + 7 * seg), bytes(seg))  # [3500, 4000)
    assert blocks() == [(3500, 4000), (2500, 3000), (1500, 2000), (500, 1000)]
    assert blocks(3) == [(3500, 4000), (2500, 3000), (1500, 2000)]
    rb.add(s(base + 2 * seg), bytes(seg))  # joins the two lowest: [500, 2000)
    assert blocks() == [(500, 2000), (3500, 4000), (2500, 3000)]
    rb.add(s(base + 5 * seg), bytes(seg))  # a duplicate still names its island first
    assert blocks() == [(2500, 3000), (500, 2000), (3500, 4000)]
    rb.add(base, bytes(seg))  # in order: the cumulative ACK covers it, no block for it
    assert blocks() == [(2500, 3000), (3500, 4000)]
    assert blocks(0) == []


# -- the model ------------------------------------------------------------------------------------


class Model:
    """A byte-at-a-time reference: a dict of held out-of-order positions, first copy wins."""

    def __init__(self, capacity: int, max_segs: int, max_bytes: int) -> None:
        self.capacity = capacity
        self.max_segs = max_segs
        self.max_bytes = max_bytes
        self.nxt = 0  # sequence offset of RCV.NXT (the FIN included once consumed)
        self.readable = bytearray()
        self.ooo: dict[int, int] = {}
        self.fin_off: int | None = None
        self.fin_received = False
        self.queue_full = 0

    def islands(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for p in sorted(self.ooo):
            if out and out[-1][1] == p:
                out[-1] = (out[-1][0], p + 1)
            else:
                out.append((p, p + 1))
        return out

    def add(self, start: int, data: bytes) -> int:
        end = start + len(data)
        before = self.nxt
        if not data or end <= self.nxt or self.fin_received:
            return 0
        lo = max(start, self.nxt)
        limit = self.nxt + self.capacity - len(self.readable)
        if self.fin_off is not None:
            limit = min(limit, self.fin_off)
        hi = min(end, limit)
        if lo >= hi:
            return 0
        new = [p for p in range(lo, hi) if p not in self.ooo]
        if lo > self.nxt:
            touching = any(p in self.ooo for p in range(lo - 1, hi + 1))
            if (not touching and len(self.islands()) >= self.max_segs) or len(self.ooo) + len(new) > self.max_bytes:
                self.queue_full += 1
                return 0
        for p in new:
            self.ooo[p] = data[p - start]
        while self.nxt in self.ooo:
            self.readable.append(self.ooo.pop(self.nxt))
            self.nxt += 1
        if self.fin_off == self.nxt:
            self.fin_received = True
            self.fin_off = None
            self.nxt += 1
        return self.nxt - before

    def fin(self, off: int) -> int:
        if self.fin_received or self.fin_off is not None or off < self.nxt:
            return 0
        if off > self.nxt + self.capacity - len(self.readable):
            return 0
        self.fin_off = off
        for p in [p for p in self.ooo if p >= off]:
            del self.ooo[p]
        if off == self.nxt:
            self.fin_received = True
            self.fin_off = None
            self.nxt += 1
            return 1
        return 0

    def window(self) -> int:
        return max(0, self.capacity - len(self.readable) - len(self.ooo))


ADD = st.tuples(
    st.just("add"),
    st.one_of(st.integers(-30, 330), st.integers(0, 150)),
    st.one_of(st.integers(0, 80), st.integers(1, 20)),
    st.integers(0, 3),
)
OPS = st.one_of(
    *[ADD] * 8,
    st.tuples(st.just("read"), st.integers(-1, 120)),
    st.tuples(st.just("fin"), st.integers(-5, 150)),
)


@settings(max_examples=300, deadline=None)
@given(
    isn=st.one_of(st.integers(0, MASK), st.integers(MASK - 400, MASK)),
    capacity=st.integers(1, 300),
    max_segs=st.one_of(st.just(64), st.integers(0, 4)),
    max_bytes=st.one_of(st.none(), st.integers(0, 300)),
    ops=st.lists(OPS, min_size=20, max_size=80),
)
def test_model(isn: int, capacity: int, max_segs: int, max_bytes: int | None, ops: list[tuple]) -> None:
    rb = ReceiveBuffer(isn, capacity, max_ooo_segments=max_segs, max_ooo_bytes=max_bytes)
    model = Model(capacity, max_segs, capacity if max_bytes is None else max_bytes)
    for op in ops:
        if op[0] == "add":
            _, rel, length, version = op
            start = model.nxt + rel
            data = pattern(start, length, version)
            full = model.queue_full
            assert rb.add(s(isn + start), data) == model.add(start, data)
            if rel > 0 and length and start in model.ooo and model.queue_full == full:
                # RFC 2018 §4: the first block holds the segment just stored out of order.
                first_lo, first_hi = rb.sack_blocks(1)[0]
                assert (s(isn + start) - first_lo) & MASK < (first_hi - first_lo) & MASK
        elif op[0] == "read":
            n = op[1]
            got = rb.read(n)
            want = bytes(model.readable if n < 0 else model.readable[:n])
            del model.readable[: len(want)]
            assert got == want
        else:
            off = model.nxt + op[1]
            assert rb.fin(s(isn + off)) == model.fin(off)
        assert rb.rcv_nxt == s(isn + model.nxt)
        assert rb.readable == len(model.readable)
        assert rb.fin_received == model.fin_received
        assert rb.ooo_bytes == len(model.ooo)
        assert rb.window == model.window()
        islands = model.islands()
        assert rb.ooo_segments == len(islands) and rb.has_ooo == bool(islands)
        assert sorted(rb.sack_blocks(100), key=lambda b: (b[0] - isn) & MASK) == [
            (s(isn + a), s(isn + b)) for a, b in islands
        ]
        assert rb.drops["tcp_ooo_queue_full"] == model.queue_full
    assert rb.peek() == bytes(model.readable)


# -- the readable chunks ---------------------------------------------------------------------------


def test_a_lone_segment_is_handed_to_the_reader_without_another_copy() -> None:
    rb = ReceiveBuffer(1000, 65536)
    payload = pattern(0, 300)
    assert rb.add(1000, memoryview(payload)) == 300  # copied out of the caller's (reused) buffer
    out = rb.read(65536)
    assert out == payload
    # bytes are immutable: holding them is holding a copy, and the reader gets that very object
    assert rb.add(1300, payload) == 300
    assert rb.read() is payload


def test_reads_cut_and_join_chunks_in_order() -> None:
    rb = ReceiveBuffer(0, 65536)
    data = pattern(0, 1000)
    for off in range(0, 1000, 100):  # ten chunks
        rb.add(off, data[off : off + 100])
    assert rb.ready_bytes() == 1000
    assert rb.peek(250) == data[:250]
    assert rb.read(150) == data[:150]  # one chunk and half of the next
    assert rb.read(50) == data[150:200]  # the rest of the cut chunk
    buf = bytearray(333)
    assert rb.read_into(buf) == 333
    assert buf == data[200:533]
    assert rb.peek() == data[533:]
    assert rb.ready_bytes() == 467
    assert rb.free_window() == 65536 - 467
    assert rb.read() == data[533:]
    assert rb.ready_bytes() == 0
    assert rb.read() == b""


def test_a_filled_hole_hands_over_the_out_of_order_islands() -> None:
    rb = ReceiveBuffer(0, 65536)
    data = pattern(0, 600)
    rb.add(200, data[200:400])
    rb.add(450, data[450:600])
    assert rb.add(0, data[:200]) == 400  # the first island joins
    assert rb.read(300) == data[:300]
    assert rb.add(400, data[400:450]) == 200  # the second
    assert rb.read() == data[300:]


def test_read_size_hands_large_chunks_over_alone_and_joins_small_ones() -> None:
    rb = ReceiveBuffer(1000, 1 << 20)
    assert rb.read_size(256 * 1024) == 256 * 1024  # nothing or one chunk: no join to avoid
    seq = 1000
    for size in (100, 200, 20_000, 30_000, 50):
        rb.add(seq, b"x" * size)
        seq += size
    assert rb.read_size(1 << 20) == 300  # the small chunks before the first large one
    assert rb.read_size(250) == 250
    assert len(rb.read(rb.read_size(1 << 20))) == 300
    assert rb.read_size(1 << 20) == 20_000  # a large chunk alone
    assert rb.read_size(5000) == 5000
    data = rb.read(rb.read_size(1 << 20))
    assert type(data) is bytes and len(data) == 20_000
    assert rb.read_size(1 << 20) == 30_000
    rb.read(30_000)
    assert rb.read_size(1 << 20) == 1 << 20 and rb.ready_bytes() == 50
