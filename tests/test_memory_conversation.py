"""Two aiostack instances on the in-memory link: ping and UDP echo, cleanly and through the fault
wrapper with 10% loss each way (UDP drops are expected; nothing crashes and the counters add up)."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from aiostack.drivers.fault import FaultProfile, FaultWrapper
from aiostack.drivers.memory import MemoryLink
from aiostack.drivers.pcap import PcapWrapper
from aiostack.stack import Stack

SERVER = "10.9.0.2"
CLIENT = "10.9.0.1"


def payload(i: int) -> bytes:
    size = 1 + (i * 7919) % 8000
    return bytes((i + j) & 0xFF for j in range(size))


async def echo_forever(stack: Stack, port: int) -> None:
    sock = stack.socket()
    # A window of 50 datagrams of up to 8000 bytes is more than the 212 KB default holds, and the
    # reactor drains its queue before the application runs: size the buffer as the client does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    while True:
        data, peer = await sock.recvfrom(65535)
        await sock.sendto(data, peer)


async def converse(client: Stack, count: int, *, window: int, quiet: float) -> tuple[int, int]:
    """Send ``count`` datagrams in windows; returns (echoed intact, corrupted)."""
    sock = client.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # a window of 8 KB echoes
    sock.bind(("0.0.0.0", 4000))
    intact = corrupted = 0
    seen: set[int] = set()
    for base in range(0, count, window):
        expected = {}
        for i in range(base, min(base + window, count)):
            data = i.to_bytes(4, "big") + payload(i)
            expected[i] = data
            await sock.sendto(data, (SERVER, 7))
        while True:
            try:
                data, peer = await asyncio.wait_for(sock.recvfrom(65535), quiet)
            except TimeoutError:
                break
            i = int.from_bytes(data[:4], "big")
            assert peer == (SERVER, 7)
            if i in seen:
                continue  # the fault wrapper may duplicate; count each datagram once
            seen.add(i)
            if expected.get(i) == data:
                intact += 1
            else:
                corrupted += 1
    sock.close()
    return intact, corrupted


def make_pair(fault: bool) -> tuple[Stack, Stack, FaultWrapper | None, object, object]:
    link = MemoryLink()
    client_port = link.port(name="client")
    server_port = link.port(name="server")
    server = Stack(seed=2)
    server.attach(server_port, f"{SERVER}/24")
    client = Stack(seed=1)
    wrapper = None
    if fault:
        wrapper = FaultWrapper(client_port, rx=FaultProfile(loss=0.10), tx=FaultProfile(loss=0.10), seed=7)
        client.attach(wrapper, f"{CLIENT}/24")
    else:
        client.attach(client_port, f"{CLIENT}/24")
    return client, server, wrapper, client_port, server_port


async def test_ping_and_udp_between_two_stacks() -> None:
    client, server, _, _, _ = make_pair(fault=False)
    async with client, server:
        task = asyncio.create_task(echo_forever(server, 7))
        rtt = await client.ping(SERVER)
        assert 0 <= rtt < 1.0
        assert await server.ping(CLIENT) >= 0  # and the other way; ARP is already known both ways
        intact, corrupted = await converse(client, 500, window=50, quiet=0.2)
        task.cancel()
        assert (intact, corrupted) == (500, 0), (client.counters(), server.counters())
        assert client.ip.stats["udp_rx"] == server.ip.stats["udp_rx"] == 500
        assert not client.ip.drops and not server.ip.drops
        with pytest.raises(TimeoutError):
            await client.ping("10.9.0.77", timeout=0.2)  # nobody there; ARP still pending at timeout
        with pytest.raises(OSError) as exc:
            await client.ping("192.0.2.1")
        assert exc.value.errno == errno.ENETUNREACH


async def test_conversation_through_ten_percent_loss() -> None:
    client, server, wrapper, client_port, server_port = make_pair(fault=True)
    assert wrapper is not None
    count = 1000
    async with client, server:
        task = asyncio.create_task(echo_forever(server, 7))
        intact, corrupted = await converse(client, count, window=100, quiet=0.15)
        task.cancel()
    # UDP drops are expected: about 0.9^2 of single-frame datagrams survive, fewer of fragmented ones.
    assert 0.3 * count < intact < count
    assert corrupted == 0
    faults = wrapper.fault_counters
    assert faults["rx_loss"] > 0 and faults["tx_loss"] > 0
    # Counters add up, frame by frame, across both stacks and the link:
    client_tx = client.ip.stats["ipv4_tx"] + client.ip.stats["arp_tx"]
    assert client_port.counters(0).tx_packets == client_tx - faults["tx_loss"]  # type: ignore[attr-defined]
    assert server_port.counters(0).rx_packets == client_port.counters(0).tx_packets  # type: ignore[attr-defined]
    server_tx = server.ip.stats["ipv4_tx"] + server.ip.stats["arp_tx"]
    assert server_port.counters(0).tx_packets == server_tx  # type: ignore[attr-defined]
    assert client_port.counters(0).rx_packets == server_tx  # type: ignore[attr-defined]
    assert client.ip.stats["rx_frames"] == server_tx - faults["rx_loss"]
    # ... datagram by datagram: the server echoes all it receives; the client got what it counted.
    assert server.ip.stats["udp_rx"] == server.ip.stats["udp_tx"]
    assert client.ip.stats["udp_tx"] == count
    assert client.ip.stats["udp_rx"] == intact
    assert server.ip.stats["udp_rx"] < count  # some requests were lost on the way in
    assert "internal_error" not in client.ip.drops and "internal_error" not in server.ip.drops


async def test_pcap_wrapper_on_memory_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dpkt

    link = MemoryLink()
    path = tmp_path / "mem.pcap"
    server = Stack()
    server.attach(PcapWrapper(link.port(), str(path)), f"{SERVER}/24")
    client = Stack()
    client.attach(link.port(), f"{CLIENT}/24")
    async with client, server:
        task = asyncio.create_task(echo_forever(server, 7))
        await client.ping(SERVER)
        assert await converse(client, 3, window=3, quiet=0.1) == (3, 0)
        task.cancel()
    kinds = set()
    with open(path, "rb") as f:
        for _ts, raw in dpkt.pcap.Reader(f):
            e = dpkt.ethernet.Ethernet(raw)
            kinds.add(type(e.data.data).__name__ if isinstance(e.data, dpkt.ip.IP) else type(e.data).__name__)
    assert {"ARP", "ICMP", "UDP"} <= kinds
