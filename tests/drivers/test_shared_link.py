"""The memory driver between processes (drivers/shared_link.py): software RSS by the steering hash,
doorbells, counted drops, and a queue taken over by a forked process — and by its successor."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator

import dpkt
import pytest

from aiostack.drivers.buffers import PacketPool
from aiostack.drivers.shared_link import SharedMemoryLink, SharedMemoryPort
from aiostack.drivers.spsc import SpscRing
from aiostack.drivers.steering import frame_hash

A_MAC, B_MAC = b"\x02\x00\x00\x00\x00\x0a", b"\x02\x00\x00\x00\x00\x0b"


@pytest.fixture
def link() -> Iterator[SharedMemoryLink]:
    with SharedMemoryLink.create((2, 1), macs=(A_MAC, B_MAC), ring_bytes=1 << 16) as lk:
        yield lk


def tcp_frame(sport: int, dport: int = 80, payload: bytes = b"") -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, data=payload)
    ip = dpkt.ip.IP(src=bytes([10, 0, 0, 2]), dst=bytes([10, 0, 0, 1]), p=6, data=tcp)
    return bytes(dpkt.ethernet.Ethernet(src=B_MAC, dst=A_MAC, type=0x0800, data=ip))


ARP = b"\xff" * 6 + B_MAC + b"\x08\x06" + bytes(28)


def send(port: SharedMemoryPort, frames: list[bytes], queue: int = 0) -> int:
    return port.tx_burst(queue, [port.pool.packet_from(f) for f in frames])


def drain(port: SharedMemoryPort, queue: int) -> list[bytes]:
    out = []
    while pkts := port.rx_burst(queue, 64):
        for p in pkts:
            out.append(p.tobytes())
            p.free()
    return out


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_frames_land_on_the_queue_the_steering_hash_names(link: SharedMemoryLink) -> None:
    a, b = link.end(0), link.end(1)
    assert (a.num_queues, b.num_queues, a.mac, b.mac) == (2, 1, A_MAC, B_MAC)
    frames = [tcp_frame(port) for port in range(40000, 40100)] + [ARP]
    assert send(b, frames) == len(frames)
    got = {q: drain(a, q) for q in (0, 1)}
    assert sorted(got[0] + got[1]) == sorted(frames)  # nothing lost, nothing changed
    for q in (0, 1):
        assert got[q] and all(frame_hash(f) % 2 == q for f in got[q])
    assert ARP in got[0]
    assert a.counters(0).rx_packets + a.counters(1).rx_packets == len(frames)
    # the other way: every queue of end 0 reaches end 1's only queue
    assert send(a, [tcp_frame(1, payload=b"q0")], 0) == 1 and send(a, [tcp_frame(2, payload=b"q1")], 1) == 1
    assert len(drain(b, 0)) == 2


def test_doorbell_rings_only_for_a_sleeping_queue(link: SharedMemoryLink) -> None:
    a, b = link.end(0), link.end(1)
    fd = a.fileno(0)
    assert a.rx_burst(0, 8) == [] and not readable(fd)  # empty: armed, asleep
    arp_sent = send(b, [ARP])
    assert arp_sent == 1 and readable(fd)  # the bell woke the idle queue
    assert drain(a, 0) == [ARP]
    assert not readable(fd)  # drained and re-armed: the bell is cleared
    assert not readable(a.fileno(1))  # queue 1 never had anything


def test_drops_are_counted_not_raised(link: SharedMemoryLink) -> None:
    a, b = link.end(0), link.end(1)
    big = tcp_frame(40000, payload=b"x" * 1600)
    assert send(b, [big]) == 0 and b.counters(0).drops["frame_too_big"] == 1
    sent = send(b, [ARP] * 2000)  # a 64 KB ring holds fewer
    assert 0 < sent < 2000 and b.counters(0).drops["ring_full"] == 2000 - sent
    small = link.end(0, pool=PacketPool(count=4))
    held = small.rx_burst(0, 64)  # kept: the pool is empty while the rest arrives
    for _ in range(sent // 64 + 1):
        assert small.rx_burst(0, 64) == []
    assert len(held) == 4 and small.counters(0).drops["pool_exhausted"] == sent - 4
    for p in held:
        p.free()
    assert a.rx_burst(0, 64) == []  # the ring was drained by the first reader, drops included


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="queues"):
        SharedMemoryLink.create((0, 1))
    with pytest.raises(ValueError, match="mtu"):
        SharedMemoryLink.create(mtu=40)
    with pytest.raises(ValueError, match="cannot hold"):
        SharedMemoryLink.create(ring_bytes=1024)
    with SharedMemoryLink.create() as lk:
        with pytest.raises(ValueError, match="ends 0 and 1"):
            lk.end(2)
        with pytest.raises(ValueError, match="not one of"):
            lk.end(0).take_queue(1)
    assert not any(n.startswith(lk.name) for n in os.listdir("/dev/shm"))  # the creator removed them


def _child(link: SharedMemoryLink, queue: int, reply: bytes) -> int:
    """In a forked process: serve ``queue`` of end 0 — read what is there, answer once."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        port = link.end(0).take_queue(queue)
        port.close_others()
        got = drain(port, 0)
        port.tx_burst(0, [port.pool.packet_from(reply + str(len(got)).encode())])
        code = 0
    finally:
        os._exit(code)


def test_a_forked_process_takes_one_queue_and_its_successor_resumes(link: SharedMemoryLink) -> None:
    b = link.end(1)
    q1 = [f for f in (tcp_frame(p) for p in range(41000, 41040)) if frame_hash(f) % 2 == 1]
    assert send(b, q1[:3]) == 3
    pid = _child(link, 1, b"first:")
    assert os.waitpid(pid, 0)[1] == 0
    assert send(b, q1[3:5]) == 2
    pid = _child(link, 1, b"second:")  # a restart: forked from the same (stale) parent objects
    assert os.waitpid(pid, 0)[1] == 0
    # each saw only its own frames (no replay), and the second's reply did not overwrite the first's
    assert drain(b, 0) == [b"first:3", b"second:2"]


def test_shared_doorbell_ring_is_not_closed_by_its_rings() -> None:
    fd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        r = SpscRing.create(f"aiostack-test-{os.getpid()}-bell", 4096, doorbell=fd)
        assert r.doorbell_fd == fd
        r.unlink()
        r.close()
        os.fstat(fd)  # still open: the caller owns it
    finally:
        os.close(fd)
