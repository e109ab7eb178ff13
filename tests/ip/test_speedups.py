"""ip/speedups.py: the plain-Python reference of the C inline helpers the compiled build cimports
(the compiled versions run inside the stack, through every IPStack test)."""

from __future__ import annotations

import pytest

from aiostack.ip.speedups import put_bytes, same_bytes


def test_same_bytes_compares_where_it_lies_and_never_past_the_end() -> None:
    buf = bytearray(b"\x00abcdef")
    assert same_bytes(buf, 1, b"abc")
    assert not same_bytes(buf, 2, b"abc")
    assert same_bytes(buf, 4, b"def")
    assert not same_bytes(buf, 5, b"def")  # would run past the end
    assert not same_bytes(buf, -1, b"\x00")


def test_put_bytes_overwrites_in_place_and_refuses_what_does_not_fit() -> None:
    buf = bytearray(6)
    put_bytes(buf, 2, bytearray(b"xyz"))
    assert buf == b"\x00\x00xyz\x00"
    for off in (-1, 4):
        with pytest.raises(ValueError):
            put_bytes(buf, off, bytearray(b"xyz"))
    assert buf == b"\x00\x00xyz\x00"
