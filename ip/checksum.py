"""The Internet checksum (RFC 1071) and the TCP/UDP pseudo-header sum (RFC 768, RFC 9293 §3.1).

The one's-complement sum of 16-bit words equals the big-endian integer value of the data modulo
0xFFFF (because 2**16 ≡ 1 mod 0xFFFF), so one ``int.from_bytes`` and one ``%`` do the whole sum in
C. Measured on this machine against a numba loop over a uint8 array: the big-int form wins for
every size up to 9000 bytes, because a numba call costs more than the sum itself on short
headers (numbers in benchmarks/checksum.py).
"""

from __future__ import annotations

_from_bytes = int.from_bytes


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The folded 16-bit one's-complement sum of ``data`` plus ``initial`` (not inverted).

    An odd trailing byte is padded with a zero, per RFC 1071. The result is in 0..0xFFFF, with
    0xFFFF (never 0) standing for a non-zero sum that folds to "negative zero".
    """
    n = len(data)
    value = _from_bytes(data, "big")
    if n & 1:
        value <<= 8
    total = value % 0xFFFF + initial
    total = total % 0xFFFF
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
