"""The AF_XDP ring walks (drivers/xdp_rings.py) on rings laid out as the kernel maps them — u32
producer/consumer words, then the descriptors — in plain memory: no socket, no root. Indexes
start just below 2**32 so every walk crosses the u32 wrap."""

from __future__ import annotations

from aiostack.drivers.base import QueueCounters
from aiostack.drivers.buffers import PacketPool
from aiostack.drivers.xdp_rings import U32, pending, reclaim, rx_copy, tx_copy

FRAME = 2048
SHIFT = 11
DESC_AT = 64  # bytes before the descriptors (producer, consumer, flags words)
PROD, CONS = 0, 1


class Ring:
    def __init__(self, entries: int, desc_size: int, start: int = U32 - 2) -> None:
        self.mem = bytearray(DESC_AT + entries * desc_size)
        self.w = memoryview(self.mem).cast("I")
        self.q = memoryview(self.mem)[DESC_AT:].cast("Q")
        self.mask = entries - 1
        self.w[PROD] = self.w[CONS] = start


def test_rx_copy_moves_frames_into_packets_and_chunks_back_to_fill() -> None:
    umem = memoryview(bytearray(FRAME * 8))
    rx, fill = Ring(8, 16), Ring(8, 8)
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    for i, data in enumerate(frames):
        addr = i * FRAME + 256  # copy mode: the frame starts XDP_PACKET_HEADROOM into its chunk
        umem[addr : addr + len(data)] = data
        slot = ((rx.w[PROD] + i) & U32 & rx.mask) << 1
        rx.q[slot], rx.q[slot + 1] = addr, len(data)
    rx.w[PROD] = (rx.w[PROD] + len(frames)) & U32
    pool = PacketPool(count=3)
    c = QueueCounters()
    out: list = []
    nbytes = rx_copy(rx.w, PROD, CONS, rx.q, rx.mask, fill.w, PROD, fill.q, fill.mask, umem, pool, 0, 64, c, out)
    # the pool held 3: three frames delivered, the rest wait in the ring
    assert [p.tobytes() for p in out] == frames[:3] and nbytes == sum(map(len, frames[:3]))
    assert c.drops == {"pool_exhausted": 1}
    assert pending(rx.w, PROD, CONS) == 2 and pending(fill.w, PROD, CONS) == 3
    assert [fill.q[(fill.w[CONS] + i) & U32 & fill.mask] for i in range(3)] == [256, FRAME + 256, 2 * FRAME + 256]
    for p in out:
        p.free()
    out.clear()
    rx_copy(rx.w, PROD, CONS, rx.q, rx.mask, fill.w, PROD, fill.q, fill.mask, umem, pool, 1, 1, c, out)
    assert [p.tobytes() for p in out] == frames[3:4] and out[0].queue == 1  # max_count honoured
    assert pending(rx.w, PROD, CONS) == 1


def test_rx_copy_drops_a_frame_larger_than_a_buffer_and_recycles_it() -> None:
    umem = memoryview(bytearray(FRAME * 2))
    rx, fill = Ring(4, 16), Ring(4, 8)
    slot = (rx.w[PROD] & rx.mask) << 1
    rx.q[slot], rx.q[slot + 1] = 256, 1700
    rx.w[PROD] = (rx.w[PROD] + 1) & U32
    pool = PacketPool(count=2, size=1024, headroom=64)
    c = QueueCounters()
    out: list = []
    assert rx_copy(rx.w, PROD, CONS, rx.q, rx.mask, fill.w, PROD, fill.q, fill.mask, umem, pool, 0, 8, c, out) == 0
    assert out == [] and c.drops == {"frame_too_big": 1}
    assert pending(rx.w, PROD, CONS) == 0 and pending(fill.w, PROD, CONS) == 1


def test_tx_copy_and_reclaim() -> None:
    umem = memoryview(bytearray(FRAME * 8))
    tx, comp = Ring(4, 16), Ring(8, 8)
    tx_frames = list(range(4 * FRAME, 8 * FRAME, FRAME))
    free = list(reversed(tx_frames))
    owned = bytearray(8)
    for a in tx_frames:
        owned[a >> SHIFT] = 1
    pool = PacketPool(count=8)
    c = QueueCounters()
    pkts = [pool.packet_from(bytes([i]) * (100 + i)) for i in range(6)]
    pkts.append(pool.packet_from(b"x" * 1900))  # larger than a chunk's frame room (1792)
    posted = tx_copy(tx.w, PROD, CONS, tx.q, tx.mask, umem, free, owned, SHIFT, FRAME - 256, pkts[:5], c)
    # four chunks and four slots: the fifth is a counted drop; every packet went back to the pool
    assert posted == 4 and c.drops == {"tx_ring_full": 1} and pool.available == 8 - 2
    assert (c.tx_packets, c.tx_bytes) == (4, 100 + 101 + 102 + 103)
    assert pending(tx.w, PROD, CONS) == 4 and free == []
    for i in range(4):
        slot = ((tx.w[CONS] + i) & U32 & tx.mask) << 1
        addr, length = tx.q[slot], tx.q[slot + 1]
        assert bytes(umem[addr : addr + length]) == bytes([i]) * (100 + i)
        assert not owned[addr >> SHIFT]
    # the kernel took them all and completed two, one of them twice (a restarted reactor's view)
    tx.w[CONS] = tx.w[PROD]
    done = [tx.q[((tx.w[CONS] - 4 + i) & U32 & tx.mask) << 1] for i in range(4)]
    for i, addr in enumerate([done[0], done[1], done[1]]):
        comp.q[(comp.w[PROD] + i) & U32 & comp.mask] = addr
    comp.w[PROD] = (comp.w[PROD] + 3) & U32
    assert reclaim(comp.w, PROD, CONS, comp.q, comp.mask, free, owned, SHIFT) == 2
    assert sorted(free) == sorted(done[:2]) and pending(comp.w, PROD, CONS) == 0
    posted = tx_copy(tx.w, PROD, CONS, tx.q, tx.mask, umem, free, owned, SHIFT, FRAME - 256, pkts[5:], c)
    assert posted == 1 and c.drops == {"tx_ring_full": 1, "frame_too_big": 1}
    assert pool.available == 8
