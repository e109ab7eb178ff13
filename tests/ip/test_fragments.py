"""IPv4 reassembly and fragmentation: orders, duplicates, every hostile-fragment drop, memory caps,
timeouts with the ICMP quote, and a round trip through fragment_ranges."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.ip.fragments import FRAGMENT_OVERHEAD, MAX_PAYLOAD, Reassembler, fragment_ranges

SRC, DST, UDP, TCP = 0x0A4D0001, 0x0A4D0002, 17, 6
HEADER = bytes(range(20))


def pieces_of(payload: bytes, size: int) -> list[tuple[int, bytes, bool]]:
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off : off + size]
        out.append((off, chunk, off + len(chunk) < len(payload)))
    return out


def feed(r: Reassembler, frags: list[tuple[int, bytes, bool]], ident: int = 1, now: float = 0.0) -> list:
    return [r.add(SRC, DST, UDP, ident, off, more, data, now, header=HEADER) for off, data, more in frags]


def test_in_order() -> None:
    payload = os.urandom(4000)
    r = Reassembler()
    results = feed(r, pieces_of(payload, 1480))
    assert results[:-1] == [None, None]
    assert results[-1] == payload
    assert len(r) == 0 and r.memory == 0 and not r.drops


def test_reverse_order_and_memory_accounting() -> None:
    payload = os.urandom(3000)
    (o3, d3, m3), (o2, d2, m2), (o1, d1, m1) = pieces_of(payload, 1000)[::-1]
    r = Reassembler()
    assert r.add(SRC, DST, UDP, 9, o3, m3, d3, 0.0) is None
    assert len(r) == 1
    assert r.memory == 1000 + FRAGMENT_OVERHEAD
    assert r.add(SRC, DST, UDP, 9, o2, m2, d2, 0.1) is None
    assert r.memory == 2 * (1000 + FRAGMENT_OVERHEAD)
    assert r.next_deadline() == 30.0  # from the first fragment's arrival
    assert r.add(SRC, DST, UDP, 9, o1, m1, d1, 0.2) == payload
    assert len(r) == 0 and r.memory == 0 and r.next_deadline() is None


def test_caller_buffer_is_copied() -> None:
    r = Reassembler()
    buf = bytearray(b"A" * 8)
    assert r.add(SRC, DST, UDP, 1, 0, True, memoryview(buf), 0.0) is None
    buf[:] = b"B" * 8
    assert r.add(SRC, DST, UDP, 1, 8, False, buf, 0.0) == b"A" * 8 + b"B" * 8


def test_keys_do_not_mix() -> None:
    r = Reassembler()
    assert r.add(SRC, DST, UDP, 5, 0, True, b"u" * 8, 0.0) is None
    assert r.add(SRC, DST, TCP, 5, 0, True, b"t" * 8, 0.0) is None
    assert r.add(DST, SRC, UDP, 5, 0, True, b"r" * 8, 0.0) is None
    assert len(r) == 3
    assert r.add(SRC, DST, TCP, 5, 8, False, b"T", 0.0) == b"t" * 8 + b"T"
    assert r.add(SRC, DST, UDP, 5, 8, False, b"U", 0.0) == b"u" * 8 + b"U"
    assert len(r) == 1 and not r.drops


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(1, 6000),
    cuts=st.lists(st.integers(1, 750), max_size=40),
    dup=st.lists(st.integers(0, 1000), max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_order_and_sizes(total: int, cuts: list[int], dup: list[int], seed: int) -> None:
    rng = random.Random(seed)
    payload = rng.randbytes(total)
    bounds = sorted({c * 8 for c in cuts if c * 8 < total})
    starts = [0, *bounds]
    ends = [*bounds, total]
    frags = [(s, payload[s:e], e < total) for s, e in zip(starts, ends, strict=True)]
    order = frags[:]
    rng.shuffle(order)
    for d in dup:  # exact duplicates sprinkled anywhere before the end
        order.insert(rng.randrange(len(order)), frags[d % len(frags)])
    r = Reassembler()
    seen = set()
    results = []
    for off, data, more in order:
        results.append(r.add(SRC, DST, UDP, 77, off, more, data, 1.0, header=HEADER))
        seen.add(off)
        if len(seen) == len(frags):
            break
    assert results[-1] == payload
    assert all(x is None for x in results[:-1])
    assert set(r.drops) <= {"frag_duplicate"}
    assert len(r) == 0 and r.memory == 0


def test_exact_duplicate_tolerated() -> None:
    payload = os.urandom(24)
    r = Reassembler()
    assert r.add(SRC, DST, UDP, 1, 0, True, payload[:8], 0.0) is None
    assert r.add(SRC, DST, UDP, 1, 0, True, payload[:8], 0.0) is None
    assert r.add(SRC, DST, UDP, 1, 16, False, payload[16:], 0.0) is None
    assert r.add(SRC, DST, UDP, 1, 16, False, payload[16:], 0.0) is None  # duplicate final
    assert r.drops["frag_duplicate"] == 2
    assert r.memory == 16 + 2 * FRAGMENT_OVERHEAD  # duplicates hold nothing extra
    assert r.add(SRC, DST, UDP, 1, 8, True, payload[8:16], 0.0) == payload


@pytest.mark.parametrize(
    ("offset", "length"),
    [(8, 16), (0, 8), (0, 32), (8, 8)],  # runs past the end, same start shorter, covering, inside
)
def test_overlap_poisons_until_original_timeout(offset: int, length: int) -> None:
    r = Reassembler(timeout=30.0)
    assert r.add(SRC, DST, UDP, 3, 0, True, b"a" * 16, 10.0, header=HEADER) is None
    assert r.add(SRC, DST, UDP, 3, offset, True, b"b" * length, 11.0) is None
    assert r.drops["frag_overlap"] == 1
    assert len(r) == 0 and r.memory == 0
    # Further fragments of that key are dropped, even ones that would complete a fresh datagram.
    assert r.add(SRC, DST, UDP, 3, 0, False, b"fresh", 20.0) is None
    assert r.drops["frag_overlap"] == 2
    assert r.next_deadline() == 40.0  # the original datagram's deadline
    assert r.expire(39.9) == []
    assert r.expire(40.0) == []  # no Time Exceeded for a poisoned datagram, and no frag_timeout
    assert r.drops["frag_timeout"] == 0
    assert r.add(SRC, DST, UDP, 3, 0, False, b"fresh", 40.1) == b"fresh"


def test_overlap_with_following_piece() -> None:
    r = Reassembler()
    assert r.add(SRC, DST, UDP, 4, 16, True, b"x" * 16, 0.0) is None
    assert r.add(SRC, DST, UDP, 4, 8, True, b"y" * 16, 0.0) is None  # [8, 24) runs into [16, 32)
    assert r.drops == {"frag_overlap": 1}


def test_adjacent_pieces_do_not_overlap() -> None:
    r = Reassembler()
    assert r.add(SRC, DST, UDP, 4, 16, True, b"c" * 8, 0.0) is None
    assert r.add(SRC, DST, UDP, 4, 0, True, b"a" * 8, 0.0) is None
    assert r.add(SRC, DST, UDP, 4, 24, False, b"d", 0.0) is None
    assert r.add(SRC, DST, UDP, 4, 8, True, b"b" * 8, 0.0) == b"a" * 8 + b"b" * 8 + b"c" * 8 + b"d"
    assert not r.drops


def test_too_big_drops_the_datagram() -> None:
    r = Reassembler()
    assert r.add(SRC, DST, UDP, 6, 0, True, b"z" * 8, 0.0) is None
    assert r.add(SRC, DST, UDP, 6, 65512, False, b"z" * 8, 0.0) is None  # ends at 65520 > 65515
    assert r.drops == {"frag_too_big": 1}
    assert len(r) == 0 and r.memory == 0
    # The largest legal datagram still reassembles.
    last = MAX_PAYLOAD - 65504
    assert r.add(SRC, DST, UDP, 7, 65504, False, b"e" * last, 0.0) is None
    assert len(r) == 1 and r.drops["frag_too_big"] == 1


def test_bad_length() -> None:
    r = Reassembler()
    assert r.add(SRC, DST, UDP, 8, 0, True, b"x" * 10, 0.0) is None  # non-final, not a multiple of 8
    assert r.add(SRC, DST, UDP, 8, 8, True, b"", 0.0) is None  # empty non-final
    assert r.add(SRC, DST, UDP, 8, 4, False, b"x", 0.0) is None  # offset not in 8-byte units
    assert r.drops == {"frag_bad_length": 3}
    assert len(r) == 0  # a malformed fragment does not open a reassembly
    # ...and does not poison one in progress.
    assert r.add(SRC, DST, UDP, 8, 0, True, b"a" * 8, 0.0) is None
    assert r.add(SRC, DST, UDP, 8, 8, True, b"b" * 9, 0.0) is None
    assert r.add(SRC, DST, UDP, 8, 8, False, b"b", 0.0) == b"a" * 8 + b"b"


def test_after_last() -> None:
    r = Reassembler()
    # data beyond the known end
    assert r.add(SRC, DST, UDP, 10, 16, False, b"end", 0.0) is None
    assert r.add(SRC, DST, UDP, 10, 24, True, b"x" * 8, 0.0) is None
    assert r.drops["frag_after_last"] == 1 and len(r) == 0
    # a second, different final fragment
    assert r.add(SRC, DST, UDP, 11, 16, False, b"end", 0.0) is None
    assert r.add(SRC, DST, UDP, 11, 8, False, b"x" * 8, 0.0) is None
    assert r.drops["frag_after_last"] == 2 and len(r) == 0
    # a final fragment ending before data already held
    assert r.add(SRC, DST, UDP, 12, 32, True, b"x" * 8, 0.0) is None
    assert r.add(SRC, DST, UDP, 12, 8, False, b"y" * 8, 0.0) is None
    assert r.drops["frag_after_last"] == 3 and len(r) == 0 and r.memory == 0


def test_memory_cap_evicts_oldest() -> None:
    per = 1000 + FRAGMENT_OVERHEAD
    r = Reassembler(max_bytes=3 * per)
    for ident in (1, 2, 3):
        assert r.add(SRC, DST, UDP, ident, 0, True, b"q" * 1000, float(ident)) is None
    assert r.memory == 3 * per and len(r) == 3
    assert r.add(SRC, DST, UDP, 4, 0, True, b"q" * 1000, 4.0) is None  # evicts ident 1
    assert r.drops == {"frag_memory_cap": 1}
    assert r.memory == 3 * per and len(r) == 3
    assert r.next_deadline() == 32.0  # ident 2 is now the oldest
    # ident 1 is gone: its second half alone does not complete it
    assert r.add(SRC, DST, UDP, 1, 1000, False, b"w" * 8, 5.0) is None
    # the newest datagrams still complete
    assert r.add(SRC, DST, UDP, 4, 1000, False, b"w", 6.0) == b"q" * 1000 + b"w"


def test_completing_fragment_never_evicts() -> None:
    per = 1000 + FRAGMENT_OVERHEAD
    r = Reassembler(max_bytes=2 * per, max_datagrams=2)
    assert r.add(SRC, DST, UDP, 1, 0, True, b"a" * 1000, 0.0) is None
    assert r.add(SRC, DST, UDP, 2, 0, True, b"b" * 1000, 1.0) is None
    # The cache is full, yet a final piece and a whole datagram go through without evicting.
    assert r.add(SRC, DST, UDP, 2, 1000, False, b"B" * 1000, 2.0) == b"b" * 1000 + b"B" * 1000
    assert r.add(SRC, DST, UDP, 3, 0, False, b"whole", 2.0) == b"whole"
    assert not r.drops and len(r) == 1 and r.memory == per


def test_memory_cap_single_datagram_that_cannot_fit() -> None:
    r = Reassembler(max_bytes=2000)
    assert r.add(SRC, DST, UDP, 1, 0, True, b"q" * 3000, 0.0) is None  # bigger than the cap alone
    assert r.drops == {"frag_memory_cap": 1} and len(r) == 0
    assert r.add(SRC, DST, UDP, 2, 0, True, b"q" * 1000, 0.0) is None
    assert r.add(SRC, DST, UDP, 2, 1000, True, b"q" * 1000, 0.0) is None  # would exceed: it can't complete
    assert r.drops == {"frag_memory_cap": 2} and len(r) == 0 and r.memory == 0


def test_datagram_count_cap_evicts_oldest() -> None:
    r = Reassembler(max_datagrams=2)
    for ident in range(5):
        assert r.add(SRC, DST, UDP, ident, 0, True, b"q" * 8, float(ident)) is None
    assert len(r) == 2 and r.drops == {"frag_memory_cap": 3}
    assert r.add(SRC, DST, UDP, 4, 8, False, b"!", 9.0) == b"q" * 8 + b"!"


def test_flood_of_tiny_fragments_is_bounded() -> None:
    r = Reassembler(max_bytes=64 * 1024)
    for i in range(20_000):
        r.add(SRC, DST, UDP, i % 300, 8 + 16 * (i // 300), True, b"t" * 8, i * 1e-4)
        assert r.memory <= 64 * 1024
    assert r.drops["frag_memory_cap"] > 0
    # a legitimate datagram still gets through
    payload = os.urandom(3000)
    assert feed(r, pieces_of(payload, 1480), ident=9999, now=2.5)[-1] == payload


def test_timeout_quotes_only_when_fragment_zero_came() -> None:
    r = Reassembler(timeout=30.0)
    first = bytes(range(100, 140))
    assert r.add(SRC, DST, UDP, 1, 0, True, first, 1.0, header=HEADER) is None  # fragment zero
    assert r.add(SRC, DST, UDP, 2, 40, False, b"tail", 2.0, header=HEADER) is None  # a later one only
    assert r.add(SRC, DST, UDP, 3, 0, True, b"z" * 8, 5.0, header=HEADER) is None
    assert r.next_deadline() == 31.0
    assert r.expire(30.999) == []
    assert r.expire(32.0) == [HEADER + first[:8]]
    assert r.drops == {"frag_timeout": 2}
    assert len(r) == 1
    assert r.next_deadline() == 35.0
    assert r.expire(100.0) == [HEADER + b"z" * 8]
    assert len(r) == 0 and r.memory == 0 and r.next_deadline() is None


def test_stale_state_is_not_merged_with_a_later_datagram() -> None:
    r = Reassembler(timeout=30.0)
    assert r.add(SRC, DST, UDP, 1, 0, True, b"o" * 8, 0.0, header=HEADER) is None
    # Nobody called expire(); 40 s later the ident is reused.
    assert r.add(SRC, DST, UDP, 1, 8, False, b"new", 40.0) is None
    assert r.drops["frag_timeout"] == 1
    assert r.next_deadline() == 30.0  # the held quote is due
    assert r.expire(40.0) == [HEADER + b"o" * 8]
    assert r.add(SRC, DST, UDP, 1, 0, True, b"n" * 8, 41.0) == b"n" * 8 + b"new"


def test_expire_many_is_linear_and_in_order() -> None:
    r = Reassembler(max_datagrams=50_000)
    for i in range(20_000):
        r.add(SRC, DST, UDP, i, 8, True, b"x" * 8, i * 0.001)
    assert len(r.expire(30.0 + 9.9995)) == 0  # none had fragment zero
    assert r.drops["frag_timeout"] == 10_000
    assert len(r) == 10_000
    assert r.next_deadline() == pytest.approx(30.0 + 10.0)


@pytest.mark.parametrize("mtu", [28, 68, 576, 1280, 1500, 9000])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 1480, 1481, 4000, 65515])
def test_fragment_ranges_round_trip(mtu: int, size: int) -> None:
    payload = random.Random(size * mtu).randbytes(size)
    ranges = fragment_ranges(size, mtu)
    assert ranges[0][0] == 0 and ranges[-1][2] is False
    assert all(more for _, _, more in ranges[:-1])
    expect = 0
    for off, length, more in ranges:
        assert off == expect
        assert length + 20 <= mtu
        if more:
            assert length % 8 == 0 and length > 0
        expect = off + length
    assert expect == size
    r = Reassembler()
    rng = random.Random(mtu + size)
    order = ranges[:]
    rng.shuffle(order)
    result = None
    for off, length, more in order:
        result = r.add(SRC, DST, UDP, 1, off, more, payload[off : off + length], 0.0)
    assert result == payload
    assert not r.drops


def test_fragment_ranges_errors_and_header_length() -> None:
    with pytest.raises(ValueError):
        fragment_ranges(100, 27)  # < 20 + 8
    with pytest.raises(ValueError):
        fragment_ranges(65516, 1500)
    with pytest.raises(ValueError):
        fragment_ranges(100, 1500, header_len=22)
    with pytest.raises(ValueError):
        fragment_ranges(-1, 1500)
    assert fragment_ranges(100, 1500) == [(0, 100, False)]
    ranges = fragment_ranges(3000, 1500, header_len=60)
    assert ranges == [(0, 1440, True), (1440, 1440, True), (2880, 120, False)]
    assert fragment_ranges(65535 - 60, 1500, header_len=60)[-1][2] is False
