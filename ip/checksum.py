# cython: boundscheck=False, wraparound=False
"""The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum (RFC 768, RFC 9293 §3.1).

The sum itself is one loop, :func:`words_sum` (RFC 1071 §4.1: 16-bit big-endian words added, the
carries folded back in). How it runs depends on the build (measured with
``benchmarks/checksum.py``):

- compiled build: a C loop over the data's buffer (``_buffer_sum`` in ``checksum.pxd``), eight
  bytes at a time, serves every length: the bytes are summed as native-order 32-bit words into a
  64-bit accumulator, folded, and byte-swapped on a little-endian machine (RFC 1071 §2(B): the sum
  is byte-order independent but for that swap, and §2(C): wider words fold to the same sum). The
  buffer is taken with ``PyObject_GetBuffer``, not a typed memoryview, which made an object and
  checked a format string per call: ~620 instructions of the ~870 a 20-byte header cost (issue #10);
- pure build, short data (headers, small datagrams): the one's-complement sum of 16-bit words
  equals the big-endian integer value of the data modulo 0xFFFF (2**16 ≡ 1 mod 0xFFFF), so one
  ``int.from_bytes`` and one ``%`` do the sum in C, where a numba call costs ~700 ns before it
  sums anything;
- pure build, from ``NUMBA_THRESHOLD`` bytes on: the same loop compiled by numba, because big-int
  division grows faster than the length.

numba is imported and the loop compiled (and cached on disk) by :func:`warm_up`, which
:meth:`aiostack.stack.Stack.start` calls when a device does not checksum in hardware (the memory
link, AF_PACKET or AF_XDP without offloads): there every segment is summed in software and the
loop pays for itself. Until then — a TAP whose kernel side checksums for us, which only sums the
odd fragmented datagram or long ICMP message in software — the big-int form serves every size:
loading numba costs ~157 MB of RSS and 2-4 s on this machine (pure build, measured issue #13),
while the big-int form costs ~8 ns a byte where numba costs ~2 (4000 bytes: ~20 µs instead of
~6). ``AIOSTACK_NUMBA=0`` keeps numba out of the process altogether.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

_from_bytes = int.from_bytes

NUMBA_THRESHOLD = 512
"""Bytes from which the numba loop is faster than the big-int form (pure build; crossover ~400)."""

_long_sum: Callable[[Any, int], int] | None = None
_long_sum_ready = False


def words_sum(data: Any, initial: int) -> int:
    """RFC 1071 §4.1: the big-endian 16-bit words of ``data`` (an odd last byte padded with a
    zero) added to ``initial`` with end-around carry, folded to 16 bits."""
    n = len(data)
    high = 0  # the words' first bytes and their second bytes, summed apart: two independent adds
    low = 0  # per word that the compiler can vectorise, and no shift inside the loop
    for i in range(0, n - 1, 2):
        high += data[i]
        low += data[i + 1]
    if n & 1:
        high += data[n - 1]
    total = initial + (high << 8) + low
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _load_long_sum() -> Callable[[Any, int], int] | None:
    global _long_sum, _long_sum_ready
    _long_sum_ready = True
    if _COMPILED:
        return None  # the C loop already is the fast form
    if os.environ.get("AIOSTACK_NUMBA", "1") == "0":
        return None
    try:
        import numba
        import numpy as np
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None

    kernel = numba.njit(cache=True, nogil=True)(words_sum)
    frombuffer = np.frombuffer
    uint8 = np.uint8

    def long_sum(data: Any, initial: int) -> int:
        return int(kernel(frombuffer(data, dtype=uint8), initial))

    _long_sum = long_sum
    return long_sum


def warm_up() -> None:
    """Load the long-input loop (pure build): import numba and load or compile the loop, so that
    :func:`ones_sum` uses it from ``NUMBA_THRESHOLD`` bytes on. Without this call the big-int
    form serves every length (see the module docstring for why and what each costs)."""
    if not _long_sum_ready:
        _load_long_sum()
    if _long_sum is not None:
        _long_sum(bytes(NUMBA_THRESHOLD), 0)


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The folded 16-bit one's-complement sum of ``data`` plus ``initial`` (not inverted).

    An odd trailing byte is padded with a zero, per RFC 1071. The result is in 0..0xFFFF, with
    0xFFFF (never 0) standing for a non-zero sum that folds to "negative zero".
    """
    if _COMPILED:
        return _buffer_sum(data, 0, -1, initial)  # noqa: F821 (a C inline function of checksum.pxd)
    if len(data) >= NUMBA_THRESHOLD:
        fast = _long_sum  # loaded by warm_up() only: never on a first long input by itself
        if fast is not None:
            return fast(data, initial)
    return ones_sum_bigint(data, initial)


def ones_sum_at(data: bytes | bytearray | memoryview, start: int, end: int, initial: int = 0) -> int:
    """:func:`ones_sum` of ``data[start:end]`` without making the slice (a receive path sums a
    header or segment where it lies in the frame). ValueError unless 0 <= start <= end <= len."""
    if _COMPILED:
        return _buffer_sum(data, start, end, initial)  # noqa: F821 (a C inline function of checksum.pxd)
    if not 0 <= start <= end <= len(data):
        raise ValueError(f"range {start}:{end} outside {len(data)} bytes")
    return ones_sum(memoryview(data)[start:end], initial)


def ones_sum_bigint(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The big-int form alone, whatever the length (for comparison and tests)."""
    value = _from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    total = (value % 0xFFFF + initial) % 0xFFFF
    if total == 0 and (value or initial):
        return 0xFFFF
    return total


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The value to store in a checksum field: the inverted one's-complement sum."""
    return ~ones_sum(data, initial) & 0xFFFF


def pseudo_header_sum(src: int, dst: int, proto: int, length: int) -> int:
    """The one's-complement sum of the IPv4 pseudo-header (addresses as 32-bit integers)."""
    total = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + length
    total = (total & 0xFFFF) + (total >> 16)
    return (total & 0xFFFF) + (total >> 16)


def verify(data: bytes | bytearray | memoryview, initial: int = 0) -> bool:
    """True when ``data`` (checksum field included) sums to 0xFFFF, i.e. the checksum is right."""
    return ones_sum(data, initial) == 0xFFFF
