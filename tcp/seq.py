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
# The functions below spell these two as literals: in the compiled build (seq.pxd types the
# arguments) a literal keeps each comparison one C expression, where a module global would be a
# Python object.

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
    return (a + n) & 0xFFFFFFFF


def seq_sub(a: int, b: int) -> int:
    """The signed distance from ``b`` to ``a``, in ``-2**31 .. 2**31-1`` (``(s32)(a - b)`` in C)."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def seq_lt(a: int, b: int) -> bool:
    """``a < b`` in sequence space (Linux ``before(a, b)``)."""
    return ((a - b) & 0xFFFFFFFF) >= 0x80000000


def seq_le(a: int, b: int) -> bool:
    """``a <= b`` in sequence space."""
    d = (a - b) & 0xFFFFFFFF
    return d == 0 or d >= 0x80000000


def seq_gt(a: int, b: int) -> bool:
    """``a > b`` in sequence space (Linux ``after(a, b)``)."""
    return ((b - a) & 0xFFFFFFFF) >= 0x80000000


def seq_ge(a: int, b: int) -> bool:
    """``a >= b`` in sequence space."""
    d = (b - a) & 0xFFFFFFFF
    return d == 0 or d >= 0x80000000


def seq_in(x: int, start: int, end: int) -> bool:
    """``start <= x < end`` in sequence space: ``x`` lies in the half-open window from ``start``.

    This is the acceptability test of RFC 9293 §3.4 (``RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND``)
    computed as one unsigned compare of offsets from ``start``, so it is exact for any window
    size up to 2**32-1. ``start == end`` is the empty window: nothing is in it.
    """
    return ((x - start) & 0xFFFFFFFF) < ((end - start) & 0xFFFFFFFF)


def seq_max(a: int, b: int) -> int:
    """The later of ``a`` and ``b`` in sequence space."""
    return b if ((a - b) & 0xFFFFFFFF) >= 0x80000000 else a


def seq_min(a: int, b: int) -> int:
    """The earlier of ``a`` and ``b`` in sequence space."""
    return a if ((a - b) & 0xFFFFFFFF) >= 0x80000000 else b
