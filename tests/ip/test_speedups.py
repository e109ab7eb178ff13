"""ip/speedups.py: the plain-Python reference of the C inline helpers the compiled build cimports
(the compiled versions run inside the stack, through every IPStack test)."""

from __future__ import annotations

import pytest

from aiostack.ip.speedups import copy_bytes, put_bytes, same_bytes


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


def test_copy_bytes_copies_a_range_and_refuses_one_past_either_end() -> None:
    src = bytearray(b"0123456789")
    dest = bytearray(6)
    copy_bytes(dest, 1, src, 3, 4)
    assert dest == b"\x003456\x00"
    for dest_off, src_off, n in ((3, 0, 4), (0, 8, 4), (-1, 0, 1), (0, -1, 1), (0, 0, -1)):
        with pytest.raises(ValueError):
            copy_bytes(dest, dest_off, src, src_off, n)
    assert dest == b"\x003456\x00"


def test_the_send_queue_copies_a_segment_straight_into_a_packet() -> None:
    from aiostack.tcp.send_buffer import SendBuffer

    sb = SendBuffer()
    sb.write(b"abcdefgh")
    sb.ack(2)
    pkt = bytearray(10)
    assert sb.copy_into(pkt, 4, 1, 10) == 5  # offset 1 past SND.UNA, cut at the queue's end
    assert pkt == b"\x00\x00\x00\x00defgh\x00"
    assert sb.copy_into(pkt, 0, 6, 4) == 0
