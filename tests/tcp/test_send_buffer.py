"""The send queue's chunks: large bytes by reference, small or mutable writes copied into a tail."""

from __future__ import annotations

from aiostack.tcp.send_buffer import SendBuffer


def _contents(sb: SendBuffer) -> bytes:
    out = bytearray(len(sb))
    assert sb.copy_into(out, 0, 0, len(out)) == len(out)
    return bytes(out)


def test_writes_acks_and_copies_across_chunks() -> None:
    sb = SendBuffer(1 << 20)
    big = bytes(range(256)) * 40  # 10240 bytes: kept by reference
    small = bytearray(b"xyz")
    assert sb.write(b"ab") == 2
    assert sb.write(small) == 3
    small[:] = b"!!!"  # a mutable write was copied: changing it afterwards changes nothing queued
    assert sb.write(big) == len(big)
    assert sb.write(memoryview(b"tail")) == 4
    expected = b"abxyz" + big + b"tail"
    assert len(sb) == len(expected) and _contents(sb) == expected
    assert sb.peek(3, 4) == expected[3:7]
    pkt = bytearray(20)
    assert sb.copy_into(pkt, 2, 4, 10) == 10 and pkt[2:12] == expected[4:14]
    assert sb.copy_into(pkt, 0, len(expected) - 3, 10) == 3  # cut at the queue's end
    assert sb.copy_into(pkt, 0, len(expected), 10) == 0
    for step in (1, 4, 5000, 5000, 240):  # across chunk boundaries, one exactly at a boundary
        sb.ack(step)
        expected = expected[step:]
        assert len(sb) == len(expected) and _contents(sb) == expected
    sb.ack(len(expected) + 10)  # more than is queued: everything
    assert len(sb) == 0 and sb.copy_into(pkt, 0, 0, 5) == 0


def test_small_writes_share_a_bounded_tail_and_capacity_cuts_a_write() -> None:
    sb = SendBuffer(100_000)
    for _ in range(1000):
        sb.write(b"0123456789")
    assert len(sb._chunks) == 2  # the first (by reference) and one tail, not a chunk per write
    assert sb.write(b"z" * 95_000) == 90_000  # only what fits (kept as a view of the bytes)
    assert len(sb) == 100_000 and sb.free_space() == 0
    assert _contents(sb) == b"0123456789" * 1000 + b"z" * 90_000
    sb.clear()
    assert len(sb) == 0 and sb.free_space() == 100_000


def test_a_view_of_bytes_is_kept_even_after_the_caller_releases_its_view() -> None:
    sb = SendBuffer(1 << 20)
    data = bytes(range(256)) * 64
    with memoryview(data) as view:
        assert sb.write(view[100:]) == len(data) - 100
    assert sb.write(bytearray(b"mutable")) == 7
    assert _contents(sb) == data[100:] + b"mutable"
    sb.ack(5000)
    assert _contents(sb) == data[5100:] + b"mutable"
