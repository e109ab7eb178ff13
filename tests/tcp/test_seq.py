"""Sequence arithmetic modulo 2**32 (RFC 9293 §3.4) against a signed-distance reference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiostack.tcp.seq import (
    HALF,
    MASK,
    seq_add,
    seq_ge,
    seq_gt,
    seq_in,
    seq_le,
    seq_lt,
    seq_max,
    seq_min,
    seq_sub,
)

u32 = st.integers(0, MASK)
# Numbers clustered around the wrap point, where bugs live.
near_wrap = st.one_of(u32, st.integers(MASK - 1000, MASK), st.integers(0, 1000), st.integers(HALF - 1000, HALF + 1000))
# Distances that keep two numbers comparable (strictly less than 2**31 apart).
dist = st.integers(-(HALF - 1), HALF - 1)


def signed32(v: int) -> int:
    v &= MASK
    return v - (1 << 32) if v >= HALF else v


def test_examples_around_wrap() -> None:
    assert seq_add(MASK, 1) == 0
    assert seq_add(0, -1) == MASK
    assert seq_add(5, 1 << 32) == 5
    assert seq_sub(0, MASK) == 1
    assert seq_sub(MASK, 0) == -1
    assert seq_lt(MASK, 0) and seq_gt(0, MASK)
    assert seq_lt(0xFFFFFF00, 0x100) and not seq_lt(0x100, 0xFFFFFF00)
    assert seq_le(7, 7) and seq_ge(7, 7) and not seq_lt(7, 7) and not seq_gt(7, 7)
    assert seq_max(MASK, 3) == 3 and seq_min(MASK, 3) == MASK
    assert seq_in(0, MASK, 5) and seq_in(MASK, MASK, 5) and not seq_in(5, MASK, 5)
    assert not seq_in(1, 1, 1)  # the empty window


def test_antipodal_pair_is_deterministic() -> None:
    # RFC 1982 §3.2 leaves this undefined; we follow Linux's (s32)(a - b) < 0.
    a, b = 10, 10 + HALF
    assert seq_sub(a, b) == -HALF and seq_sub(b, a) == -HALF
    assert seq_lt(a, b) and seq_lt(b, a)
    assert seq_le(a, b) and seq_le(b, a)


@given(near_wrap, st.integers(-(1 << 33), 1 << 33))
def test_add(a: int, n: int) -> None:
    r = seq_add(a, n)
    assert 0 <= r <= MASK
    assert r == (a + n) % (1 << 32)


@given(near_wrap, dist)
def test_sub_inverts_add(a: int, d: int) -> None:
    b = seq_add(a, d)
    assert seq_sub(b, a) == d
    assert seq_sub(a, b) == -d


@given(near_wrap, near_wrap)
def test_sub_range_and_reference(a: int, b: int) -> None:
    d = seq_sub(a, b)
    assert -HALF <= d <= HALF - 1
    assert d == signed32(a - b)
    assert seq_add(b, d) == a


@given(near_wrap, dist)
def test_comparisons_agree_with_distance(a: int, d: int) -> None:
    b = seq_add(a, d)  # b is d after a
    assert seq_lt(a, b) == (d > 0)
    assert seq_le(a, b) == (d >= 0)
    assert seq_gt(a, b) == (d < 0)
    assert seq_ge(a, b) == (d <= 0)
    assert seq_gt(b, a) == seq_lt(a, b)
    assert seq_max(a, b) == (b if d >= 0 else a)
    assert seq_min(a, b) == (a if d >= 0 else b)
    assert seq_max(a, b) == seq_max(b, a) and seq_min(a, b) == seq_min(b, a)


@given(near_wrap, near_wrap)
def test_comparisons_are_consistent(a: int, b: int) -> None:
    assert seq_le(a, b) == (seq_lt(a, b) or a == b)
    assert seq_ge(a, b) == (seq_gt(a, b) or a == b)
    assert seq_gt(a, b) == seq_lt(b, a)
    assert seq_ge(a, b) == seq_le(b, a)
    if seq_sub(a, b) != -HALF:  # away from the antipode: exactly one of <, ==, >
        assert [seq_lt(a, b), a == b, seq_gt(a, b)].count(True) == 1


@given(near_wrap, st.integers(0, MASK), st.integers(-(1 << 32), 1 << 33))
def test_in_window(start: int, size: int, off: int) -> None:
    end = seq_add(start, size)
    x = seq_add(start, off)
    assert seq_in(x, start, end) == (0 <= off % (1 << 32) < size)


@given(near_wrap, st.integers(1, HALF - 1), st.integers(-(HALF - 1), HALF - 1))
def test_in_window_matches_comparisons(start: int, size: int, off: int) -> None:
    end = seq_add(start, size)
    x = seq_add(start, off)
    if seq_sub(x, end) != -HALF:
        assert seq_in(x, start, end) == (seq_le(start, x) and seq_lt(x, end))
