"""TCP sequence number arithmetic modulo 2**32 (RFC 9293 §3.4, serial number arithmetic of RFC 1982).

Sequence numbers are plain ``int`` in ``0..2**32-1``; every function here takes and returns such
ints and costs one or two integer operations (no objects, no branches beyond a compare).

Comparisons follow Linux's ``before()``/``after()``: ``a`` is before ``b`` when the 32-bit
difference ``a - b``, read as a signed 32-bit integer, is negative. RFC 1982 §3.2 leaves the
comparison of two numbers exactly 2**31 apart undefined; here :func:`seq_sub` returns ``-2**31``
for both orders, so such a pair compares as "less than" both ways. TCP never compares numbers that
far apart (windows are at most 2**30, RFC 7323 §2.3), so the choice only has to be deterministic.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = 0xFFFFFFFF
HALF = 0x80000000
_MASK = MASK
_HALF = HALF
# The functions below use these typed copies (seq.pxd makes them C ``long long``s): Cython reads
# an integer literal above 2**31 - 1 as a Python int, so ``x & 0xFFFFFFFF`` on C integers would box
# ``x`` and do the arithmetic in Python objects. ``MASK`` and ``HALF`` stay Python names for
# importers.

__all__ = [
    "HALF",
    "MASK",
    "MOD",
    "seq_add",
    "seq_ge",
    "seq_gt",
    "seq_in",
    "seq_le",
    "seq_lt",
    "seq_max",
    "seq_min",
    "seq_sub",
]


def seq_add(a: int, n: int) -> int:
    """``a + n`` modulo 2**32; ``n`` may be negative."""
    return (a + n) & _MASK


def seq_sub(a: int, b: int) -> int:
    """The signed distance from ``b`` to ``a``, in ``-2**31 .. 2**31-1`` (``(s32)(a - b)`` in C)."""
    return ((a - b + _HALF) & _MASK) - _HALF


def seq_lt(a: int, b: int) -> bool:
    """``a < b`` in sequence space (Linux ``before(a, b)``)."""
    return ((a - b) & _MASK) >= _HALF


def seq_le(a: int, b: int) -> bool:
    """``a <= b`` in sequence space."""
    d = (a - b) & _MASK
    return d == 0 or d >= _HALF


def seq_gt(a: int, b: int) -> bool:
    """``a > b`` in sequence space (Linux ``after(a, b)``)."""
    return ((b - a) & _MASK) >= _HALF


def seq_ge(a: int, b: int) -> bool:
    """``a >= b`` in sequence space."""
    d = (b - a) & _MASK
    return d == 0 or d >= _HALF


def seq_in(x: int, start: int, end: int) -> bool:
    """``start <= x < end`` in sequence space: ``x`` lies in the half-open window from ``start``.

    This is the acceptability test of RFC 9293 §3.4 (``RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND``)
    computed as one unsigned compare of offsets from ``start``, so it is exact for any window
    size up to 2**32-1. ``start == end`` is the empty window: nothing is in it.
    """
    return ((x - start) & _MASK) < ((end - start) & _MASK)


def seq_max(a: int, b: int) -> int:
    """The later of ``a`` and ``b`` in sequence space."""
    return b if ((a - b) & _MASK) >= _HALF else a


def seq_min(a: int, b: int) -> int:
    """The earlier of ``a`` and ``b`` in sequence space."""
    return a if ((a - b) & _MASK) >= _HALF else b
