"""The in-process memory driver: copy-on-wire, software RSS, eventfd readiness, drops, switch."""

from __future__ import annotations

import ipaddress
import os
import select
import struct

import pytest

from aiostack.drivers import Driver, Offloads, PacketPool
from aiostack.drivers.mac import random_mac
from aiostack.drivers.memory import MemoryLink, MemoryPort, MemorySwitch
from aiostack.drivers.rss import default_toeplitz

BROADCAST = b"\xff" * 6


def eth(dst: bytes, src: bytes, ethertype: int = 0x88B5, payload: bytes = b"hello") -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def tcp_frame(dst: bytes, src: bytes, saddr: str, daddr: str, sport: int, dport: int, payload=b"") -> bytes:
    l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 65535, 0, 0) + payload
    ip_hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        0,
        0,
        64,
        6,
        0,
        ipaddress.IPv4Address(saddr).packed,
        ipaddress.IPv4Address(daddr).packed,
    )
    return dst + src + b"\x08\x00" + ip_hdr + l4


def send(port: MemoryPort, *frames: bytes, queue: int = 0) -> int:
    return port.tx_burst(queue, [port.pool.packet_from(f) for f in frames])


def readable(fd: int) -> bool:
    r, _, _ = select.select([fd], [], [], 0)
    return bool(r)


def recv_all(port: MemoryPort, queue: int = 0) -> list[bytes]:
    out = []
    for pkt in port.rx_burst(queue, 10_000):
        out.append(pkt.tobytes())
        pkt.free()
    return out


@pytest.fixture
def pair():
    a, b = MemoryLink.pair()
    yield a, b
    a.close()
    b.close()


def test_port_is_a_driver_without_offloads(pair):
    a, b = pair
    assert isinstance(a, Driver)
    assert a.offloads == Offloads()
    assert a.mtu == 1500
    assert a.num_queues == 1
    assert len(a.mac) == 6 and a.mac != b.mac
    assert a.link is b.link is not None
    assert a.pool is not b.pool


def test_random_mac_is_locally_administered_unicast():
    for _ in range(50):
        mac = random_mac()
        assert len(mac) == 6
        assert mac[0] & 0x02 and not mac[0] & 0x01


def test_frame_is_copied_into_receiver_pool(pair):
    a, b = pair
    frame = eth(b.mac, a.mac, payload=b"x" * 100)
    pkt = a.pool.packet_from(frame)
    a_free, b_free = a.pool.available, b.pool.available
    assert a.tx_burst(0, [pkt]) == 1
    assert a.pool.available == a_free + 1  # the sender's buffer went back at once
    assert not pkt.in_use
    got = b.rx_burst(0, 8)
    assert len(got) == 1
    rx = got[0]
    assert rx.pool is b.pool and rx.in_use
    assert b.pool.available == b_free - 1
    assert rx.tobytes() == frame
    assert rx.start == b.pool.headroom  # received at the headroom, so headers can be prepended
    assert rx.queue == 0 and rx.rss_hash == 0  # not a flow
    # the received copy is independent of the sender's (recycled) buffer
    again = a.pool.alloc()
    again.set_data(b"\x00" * len(frame))
    assert rx.tobytes() == frame
    again.free()
    rx.free()
    assert b.pool.available == b_free


def test_both_directions_and_burst_limits(pair):
    a, b = pair
    frames = [eth(b.mac, a.mac, payload=bytes([i]) * 20) for i in range(10)]
    assert send(a, *frames) == 10
    assert send(b, eth(a.mac, b.mac, payload=b"back")) == 1
    assert b.rx_burst(0, 0) == []
    first = b.rx_burst(0, 4)
    assert [p.tobytes() for p in first] == frames[:4]
    assert [p.tobytes() for p in b.rx_burst(0, 100)] == frames[4:]
    assert b.rx_burst(0, 100) == []
    assert recv_all(a) == [eth(a.mac, b.mac, payload=b"back")]
    for p in first:
        p.free()
    ca, cb = a.counters(0), b.counters(0)
    assert (ca.tx_packets, ca.tx_bytes) == (10, sum(map(len, frames)))
    assert (cb.rx_packets, cb.rx_bytes) == (10, sum(map(len, frames)))
    assert (cb.tx_packets, ca.rx_packets) == (1, 1)
    assert not ca.drops and not cb.drops


def test_rss_steers_flows_to_queues_and_replies_come_back_alike():
    link = MemoryLink()
    a = link.port(num_queues=4, name="a")
    b = link.port(num_queues=4, name="b")
    t = default_toeplitz()
    seen_queues = set()
    for sport in range(40000, 40040):
        frame = tcp_frame(b.mac, a.mac, "10.0.0.1", "10.0.0.2", sport, 80)
        h = t.hash_ipv4(0x0A000001, 0x0A000002, sport, 80)
        q = h % 4
        send(a, frame, queue=sport % 4)  # the sender's queue does not matter
        for other in range(4):
            if other != q:
                assert b.pending(other) == 0
        (pkt,) = b.rx_burst(q, 8)
        assert (pkt.queue, pkt.rss_hash) == (q, h)
        assert pkt.tobytes() == frame
        pkt.free()
        seen_queues.add(q)
        # the reply, hashed by a with the symmetric key, lands on a's queue of the same number
        send(b, tcp_frame(a.mac, b.mac, "10.0.0.2", "10.0.0.1", 80, sport), queue=q)
        (reply,) = a.rx_burst(q, 8)
        assert (reply.queue, reply.rss_hash) == (q, h)
        reply.free()
    assert seen_queues == {0, 1, 2, 3}
    a.close()
    b.close()


def test_ends_with_different_queue_counts():
    link = MemoryLink()
    a = link.port(num_queues=1)
    b = link.port(num_queues=3)
    for sport in range(1000, 1030):
        send(a, tcp_frame(b.mac, a.mac, "10.0.0.1", "10.0.0.2", sport, 7))
    assert sum(b.pending(q) for q in range(3)) == 30
    assert all(b.pending(q) > 0 for q in range(3))
    for q in range(3):
        for pkt in b.rx_burst(q, 100):
            assert pkt.queue == q and pkt.rss_hash % 3 == q
            pkt.free()
    a.close()
    b.close()


def test_non_flow_frames_go_to_queue_zero():
    a, b = MemoryLink.pair(num_queues=4)
    arp = eth(BROADCAST, a.mac, 0x0806, b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20)
    send(a, arp, eth(b.mac, a.mac), queue=2)
    assert [b.pending(q) for q in range(4)] == [2, 0, 0, 0]
    assert recv_all(b, 0)[0] == arp
    a.close()
    b.close()


def test_eventfd_signals_arrival_and_drains(pair):
    a, b = pair
    fd = b.fileno(0)
    assert not readable(fd)
    assert b.rx_burst(0, 8) == []  # an empty poll leaves it quiet
    assert not readable(fd)
    send(a, eth(b.mac, a.mac), eth(b.mac, a.mac))
    assert readable(fd)
    send(a, eth(b.mac, a.mac))
    (p,) = b.rx_burst(0, 1)
    p.free()
    assert readable(fd)  # frames remain
    for p in b.rx_burst(0, 8):
        p.free()
    assert not readable(fd)  # emptied: drained
    send(a, eth(b.mac, a.mac))
    assert readable(fd)  # and signalled again on the next arrival
    recv_all(b)
    assert not readable(fd)


def test_eventfd_per_queue():
    a, b = MemoryLink.pair(num_queues=2)
    assert b.fileno(0) != b.fileno(1)
    frame = None
    for sport in range(2000, 2100):
        f = tcp_frame(b.mac, a.mac, "10.0.0.1", "10.0.0.2", sport, 9)
        t = default_toeplitz()
        if t.hash_ipv4(0x0A000001, 0x0A000002, sport, 9) % 2 == 1:
            frame = f
            break
    assert frame is not None
    send(a, frame)
    assert readable(b.fileno(1)) and not readable(b.fileno(0))
    a.close()
    b.close()


async def test_idle_reactor_wakes_on_frame(pair):
    import asyncio

    a, b = pair
    loop = asyncio.get_running_loop()
    woke = asyncio.Event()
    loop.add_reader(b.fileno(0), woke.set)
    try:
        loop.call_soon(send, a, eth(b.mac, a.mac, payload=b"wake"))
        await asyncio.wait_for(woke.wait(), timeout=5)
    finally:
        loop.remove_reader(b.fileno(0))
    assert recv_all(b) == [eth(b.mac, a.mac, payload=b"wake")]


def test_drop_frame_too_big():
    link = MemoryLink()
    a = link.port(mtu=1500)
    b = link.port(mtu=1000)
    ok = eth(b.mac, a.mac, payload=b"x" * 1000)  # exactly mtu + 14 for b
    big_for_b = eth(b.mac, a.mac, payload=b"x" * 1001)
    big_for_a = eth(b.mac, a.mac, payload=b"x" * 1501)
    assert send(a, ok, big_for_b, big_for_a) == 2
    assert a.counters(0).drops == {"frame_too_big": 1}
    assert a.counters(0).tx_packets == 2
    assert b.counters(0).drops == {"frame_too_big": 1}
    assert recv_all(b) == [ok]
    a.close()
    b.close()


def test_receive_frame_larger_than_pool_buffer_is_dropped():
    link = MemoryLink()
    a = link.port(mtu=9000)
    b = link.port(mtu=9000, pool=PacketPool(count=8, size=1024, headroom=64))
    assert send(a, eth(b.mac, a.mac, payload=b"x" * 2000)) == 1
    assert b.counters(0).drops == {"frame_too_big": 1}
    assert b.pending(0) == 0
    a.close()
    b.close()


def test_drop_rx_queue_full():
    link = MemoryLink()
    a = link.port()
    b = link.port(rx_queue_cap=3)
    assert send(a, *[eth(b.mac, a.mac)] * 5) == 5  # all left the wire
    assert b.pending(0) == 3
    assert b.counters(0).drops == {"rx_queue_full": 2}
    assert b.pool.available == b.pool.count - 3
    a.close()
    b.close()


def test_drop_pool_exhausted():
    link = MemoryLink()
    a = link.port()
    b = link.port(pool=PacketPool(count=2))
    send(a, *[eth(b.mac, a.mac)] * 4)
    assert b.counters(0).drops == {"pool_exhausted": 2}
    assert len(b.rx_burst(0, 10)) == 2


def test_drop_no_link():
    lonely = MemoryPort(name="lonely")
    assert lonely.link is None
    assert send(lonely, eth(BROADCAST, lonely.mac)) == 0
    assert lonely.counters(0).drops == {"no_link": 1}
    assert lonely.counters(0).tx_packets == 0
    assert lonely.pool.available == lonely.pool.count  # freed anyway
    lonely.close()

    a, b = MemoryLink.pair()
    b.close()
    assert send(a, eth(b.mac, a.mac)) == 0
    assert a.counters(0).drops == {"no_link": 1}
    a.close()


def test_close_is_idempotent_and_releases_everything():
    a, b = MemoryLink.pair(num_queues=2)
    fds = [b.fileno(0), b.fileno(1)]
    send(a, *[eth(b.mac, a.mac)] * 3)
    assert b.pool.available == b.pool.count - 3
    b.close()
    b.close()
    assert b.pool.available == b.pool.count  # queued frames freed
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    with pytest.raises(ValueError):
        b.fileno(0)
    assert b.rx_burst(0, 8) == []
    assert a.link is not None and a.link.ends == (a,)
    with a:
        pass
    assert a.closed


def test_link_has_two_ends():
    link = MemoryLink()
    link.port()
    b = link.port()
    with pytest.raises(ValueError):
        link.port()
    with pytest.raises(ValueError):
        MemoryLink().attach(b)  # already plugged in
    with pytest.raises(TypeError):
        MemoryLink.pair(mac=b"\x02" * 6)


def test_attach_existing_port():
    a = MemoryPort(mac=b"\x02\x00\x00\x00\x00\x0a", num_queues=2, mtu=9000)
    b = MemoryPort(mac=b"\x02\x00\x00\x00\x00\x0b")
    link = MemoryLink()
    link.attach(a)
    link.attach(b)
    assert link.ends == (a, b)
    send(b, eth(a.mac, b.mac))
    assert a.pending(0) == 1
    a.close()
    b.close()


def test_port_validation():
    with pytest.raises(ValueError):
        MemoryPort(num_queues=0)
    with pytest.raises(ValueError):
        MemoryPort(mac=b"\x02")
    with pytest.raises(ValueError):
        MemoryPort(mtu=10)


def test_stats_cover_every_queue():
    a, b = MemoryLink.pair(num_queues=2)
    send(a, eth(b.mac, a.mac))
    stats = a.stats()
    assert set(stats) == {"queue0", "queue1"}
    assert stats["queue0"]["tx_packets"] == 1
    a.close()
    b.close()


# -- the switch ------------------------------------------------------------------------------


def test_switch_floods_learns_and_forwards():
    sw = MemorySwitch()
    a, b, c = (sw.port(name=n) for n in "abc")
    # broadcast floods to everyone else
    send(a, eth(BROADCAST, a.mac, 0x0806))
    assert (a.pending(0), b.pending(0), c.pending(0)) == (0, 1, 1)
    assert sw.flooded == 1 and sw.learned == 1
    assert sw.lookup(a.mac) is a
    # b answers a: a is known, so only a gets it; b is learned
    send(b, eth(a.mac, b.mac))
    assert (a.pending(0), b.pending(0), c.pending(0)) == (1, 1, 1)
    assert sw.forwarded == 1 and sw.learned == 2
    # unknown unicast floods
    send(a, eth(b"\x02\x99\x99\x99\x99\x99", a.mac))
    assert (a.pending(0), b.pending(0), c.pending(0)) == (1, 2, 2)
    assert sw.flooded == 2
    # multicast floods too, and is never learned as a source
    send(c, eth(b"\x01\x00\x5e\x00\x00\x01", c.mac))
    assert (a.pending(0), b.pending(0), c.pending(0)) == (2, 3, 2)
    send(c, eth(a.mac, b"\x01\x00\x5e\x00\x00\x01"))
    assert sw.lookup(b"\x01\x00\x5e\x00\x00\x01") is None
    # a known unicast back to its own port is filtered
    send(a, eth(a.mac, a.mac))
    assert sw.filtered == 1
    # re-learning the same MAC on the same port does not count again
    learned = sw.learned
    send(a, eth(b.mac, a.mac))
    assert sw.learned == learned
    assert sw.stats()["macs"] == 3
    assert sw.stats()["learned"] == 3
    for port in (a, b, c):
        port.close()
    assert sw.ports == ()


def test_switch_counts_learned_macs_and_moves():
    sw = MemorySwitch()
    a, b = sw.port(), sw.port()
    send(a, eth(BROADCAST, a.mac))
    send(b, eth(BROADCAST, b.mac))
    assert sw.stats()["macs"] == 2
    # the MAC of a moves to b's port (a host moved): learned again
    send(b, eth(BROADCAST, a.mac))
    assert sw.lookup(a.mac) is b
    assert sw.learned == 3
    b.close()
    assert sw.lookup(a.mac) is None and sw.lookup(b.mac) is None  # forgotten with the port
    a.close()


def test_switch_rss_per_receiving_port():
    sw = MemorySwitch()
    a = sw.port(num_queues=1)
    b = sw.port(num_queues=4)
    c = sw.port(num_queues=2)
    frame = tcp_frame(BROADCAST, a.mac, "10.0.0.1", "10.0.0.2", 1234, 80)
    send(a, frame)
    h = default_toeplitz().hash_ipv4(0x0A000001, 0x0A000002, 1234, 80)
    assert b.pending(h % 4) == 1
    assert c.pending(h % 2) == 1
    (pb,) = b.rx_burst(h % 4, 1)
    assert pb.rss_hash == h and pb.queue == h % 4
    pb.free()
    for p in (a, b, c):
        p.close()


def test_switch_drops_runts():
    sw = MemorySwitch()
    a, b = sw.port(), sw.port()
    assert send(a, b"\x01\x02\x03") == 1
    assert sw.dropped == 1 and b.pending(0) == 0
    a.close()
    b.close()
