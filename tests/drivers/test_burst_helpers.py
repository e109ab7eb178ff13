"""The helpers the drivers' burst paths call per frame (compiled to C loads, stores and memcpy in
the compiled build, struct and slices in the pure one): both builds give the same bytes and
fields, and bad bounds are errors, not reads or writes outside a buffer."""

from __future__ import annotations

import random
import struct

import pytest

from aiostack.drivers import vnet
from aiostack.drivers.base import Driver, QueueCounters
from aiostack.drivers.buffers import PacketPool
from aiostack.drivers.memory import MemoryLink
from aiostack.drivers.rss import default_toeplitz, flow_hash, flow_hash_in


def _udp_frame(sport: int, dport: int, payload: bytes = b"x" * 20) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), 0, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp + payload


def test_copy_from_copies_the_frame_after_the_headroom() -> None:
    pool = PacketPool(count=4, size=256, headroom=32)
    src = pool.packet_from(b"abcdefgh")
    src.trim_front(2)  # the frame starts mid-buffer
    dst = pool.alloc()
    dst.copy_from(src)
    assert dst.tobytes() == b"cdefgh"
    assert dst.start == 32 and dst.end == 38
    assert src.tobytes() == b"cdefgh"  # the source is untouched


def test_copy_from_refuses_what_does_not_fit_or_bad_bounds() -> None:
    big = PacketPool(count=2, size=512, headroom=16)
    small = PacketPool(count=2, size=64, headroom=16)
    src = big.packet_from(b"z" * 100)
    dst = small.alloc()
    with pytest.raises(ValueError):
        dst.copy_from(src)  # 100 bytes after 16 of headroom do not fit 64
    src.end = len(src.buf) + 10  # a packet whose bounds lie outside its own buffer
    with pytest.raises(ValueError):
        big.alloc().copy_from(src)


def test_flow_hash_in_agrees_with_flow_hash_at_any_offset() -> None:
    t = default_toeplitz()
    rng = random.Random(7)
    frames = [_udp_frame(rng.randrange(65536), rng.randrange(65536)) for _ in range(20)]
    frames += [b"\x00" * 60, _udp_frame(1, 2)[:30], b""]  # no flow: -1 / None
    for frame in frames:
        buf = bytearray(b"\xee" * 50 + frame + b"\xee" * 9)
        expected = flow_hash(frame, 0, len(frame), t)
        got = flow_hash_in(buf, 50, 50 + len(frame), t)
        assert got == (-1 if expected is None else expected)
        assert flow_hash(memoryview(buf), 50, len(frame), t) == expected


@pytest.mark.parametrize("size", [vnet.HDR_SIZE, vnet.HDR_SIZE_MRG])
def test_pack_into_a_bytearray_matches_the_struct_layout(size: int) -> None:
    pool = PacketPool(count=2, size=256, headroom=64)
    pkt = pool.packet_from(b"frame")
    pkt.csum_start, pkt.csum_offset = 34, 16
    pkt.gso_type, pkt.gso_size, pkt.hdr_len = vnet.VIRTIO_NET_HDR_GSO_TCPV4, 1448, 66
    fast = bytearray(b"\xaa" * 40)
    vnet.pack_into(fast, 3, pkt, size)  # bytearray: byte stores in the compiled build
    slow = memoryview(bytearray(b"\xaa" * 40))
    vnet.pack_into(slow, 3, pkt, size)  # memoryview: struct in both builds
    assert bytes(fast) == bytes(slow)
    assert vnet.parse(fast, 3) == (vnet.VIRTIO_NET_HDR_F_NEEDS_CSUM, 1, 66, 1448, 34, 16)
    assert fast[3 + size:] == b"\xaa" * (40 - 3 - size)  # nothing written past the header


def test_pack_into_refuses_a_header_past_the_buffer() -> None:
    pkt = PacketPool(count=1, size=128, headroom=32).packet_from(b"x")
    with pytest.raises(struct.error):
        vnet.pack_into(bytearray(8), 0, pkt)  # 10 bytes do not fit 8


def test_parse_into_sets_checksum_and_gso_fields() -> None:
    pool = PacketPool(count=4, size=256, headroom=64)
    plain = pool.packet_from(b"f")
    vnet.pack_fields(plain.buf, 10, flags=vnet.VIRTIO_NET_HDR_F_DATA_VALID)
    vnet.parse_into(plain, 10)
    assert plain.csum_valid and plain.gso_type == 0 and plain.gso_size == 0 and plain.hdr_len == 0
    gro = pool.packet_from(b"f")
    vnet.pack_fields(gro.buf, 0, gso_type=vnet.VIRTIO_NET_HDR_GSO_TCPV4, hdr_len=0x1234, gso_size=0xABCD)
    vnet.parse_into(gro, 0)
    assert not gro.csum_valid
    assert (gro.gso_type, gro.hdr_len, gro.gso_size) == (1, 0x1234, 0xABCD)


def test_driver_base_hooks_and_python_subclasses() -> None:
    class Loopback(Driver):
        """A driver written in Python, as the wrappers and AF_XDP are."""

        def __init__(self) -> None:
            self.pool = PacketPool(count=8, size=256, headroom=32)
            self.mac = b"\x02\x00\x00\x00\x00\x01"
            self.mtu = 1500
            self.held: list = []
            self.c = QueueCounters()

        def rx_burst(self, queue: int, max_count: int) -> list:
            out, self.held = self.held[:max_count], self.held[max_count:]
            return out

        def tx_burst(self, queue: int, packets: list) -> int:
            self.held += packets
            return len(packets)

    d = Loopback()
    assert (d.name, d.num_queues, d.large_pool) == ("driver", 1, None)  # the base's defaults
    assert not d.offloads.tso
    assert d.tx_burst(0, [d.pool.packet_from(b"a"), d.pool.packet_from(b"b")]) == 2
    assert [p.tobytes() for p in d.rx_burst(0, 8)] == [b"a", b"b"]
    with pytest.raises(NotImplementedError):
        Driver().fileno(0)
    with pytest.raises(NotImplementedError):
        Driver().rx_burst(0, 1)


def test_memory_burst_takes_part_of_a_queue_and_keeps_the_rest() -> None:
    a, b = MemoryLink.pair()
    frames = [_udp_frame(1000 + i, 80) for i in range(5)]
    assert a.tx_burst(0, [a.pool.packet_from(f) for f in frames]) == 5
    first = b.rx_burst(0, 2)
    assert [p.tobytes() for p in first] == frames[:2]
    assert b.pending(0) == 3
    rest = b.rx_burst(0, 64)
    assert [p.tobytes() for p in rest] == frames[2:]
    assert b.pending(0) == 0 and b.rx_burst(0, 64) == []
    c = b.counters(0)
    assert c.rx_packets == 5 and c.rx_bytes == sum(map(len, frames))
    for p in first + rest:
        p.free()
    a.close()
    b.close()
