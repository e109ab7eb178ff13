"""The Internet checksum against a word-by-word reference (RFC 1071), in each of its forms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.ip.checksum import (
    NUMBA_THRESHOLD,
    internet_checksum,
    ones_sum,
    ones_sum_at,
    ones_sum_bigint,
    pseudo_header_sum,
    verify,
    words_sum,
)


def reference(data: bytes, initial: int = 0) -> int:
    if len(data) % 2:
        data += b"\0"
    total = initial
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=2 * NUMBA_THRESHOLD), st.integers(0, 0xFFFF))
def test_every_form_matches_reference(data: bytes, initial: int) -> None:
    expected = reference(data, initial)
    assert ones_sum(data, initial) == expected
    assert ones_sum_bigint(data, initial) == expected
    assert words_sum(data, initial) == expected
    assert words_sum(memoryview(bytearray(b"\x01" + data))[1:], initial) == expected  # at an offset
    assert ones_sum(memoryview(bytearray(data)), initial) == expected
    framed = bytearray(b"\x01\x02\x03" + data + b"\x04")  # summed where it lies, at an odd offset too
    assert ones_sum_at(framed, 3, 3 + len(data), initial) == expected
    assert ones_sum_at(memoryview(framed), 3, 3 + len(data), initial) == expected
    assert ones_sum_at(bytes(framed)[1:], 2, 2 + len(data), initial) == expected


def test_sum_at_rejects_a_range_outside_the_data() -> None:
    for start, end in ((-1, 2), (3, 2), (0, 5)):
        with pytest.raises(ValueError):
            ones_sum_at(b"\x00\x01\x02\x03", start, end)
    assert ones_sum_at(b"\x00\x01\x02\x03", 4, 4) == 0


def test_edge_values() -> None:
    for data in (b"", b"\0\0", b"\xff\xff", b"\xff\xff" * 1000, b"\xff" * 1001, b"\x00" * 4000):
        assert ones_sum(data) == reference(data), data[:4]
        assert ones_sum_bigint(data) == reference(data)
        assert words_sum(data, 0) == reference(data)


def test_checksum_verifies_and_pseudo_header() -> None:
    data = bytearray(b"\x45\x00\x00\x1c" + bytes(16))
    csum = internet_checksum(data)
    data[10:12] = csum.to_bytes(2, "big")
    assert verify(data)
    src, dst = 0x0A000001, 0x0A000002
    words = [0x0A00, 0x0001, 0x0A00, 0x0002, 17, 12]
    assert pseudo_header_sum(src, dst, 17, 12) == reference(b"".join(w.to_bytes(2, "big") for w in words))
