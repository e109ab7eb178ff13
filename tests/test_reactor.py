"""The reactor's loop mechanics: it rests on the readiness fds when idle (no spinning), wakes for
a frame or a protocol timer, and keeps serving after a processing error."""

from __future__ import annotations

import asyncio

from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from framecraft import PEER_MAC, STACK_MAC, eth, ip4, udp_frame

EXPERIMENTAL = 253
"""An IP protocol number for experimentation (RFC 3692): the failing transport's."""


def make(busy_poll: float) -> tuple[Stack, object]:
    link = MemoryLink()
    peer = link.port(mac=PEER_MAC)
    stack = Stack(busy_poll=busy_poll)
    stack.attach(link.port(mac=STACK_MAC), "10.0.0.2/24")
    return stack, peer


async def test_idle_reactor_sleeps_and_wakes_on_a_frame() -> None:
    stack, peer = make(busy_poll=0.0)
    async with stack:
        sock = stack.socket()
        sock.bind(("0.0.0.0", 7))
        await asyncio.sleep(0.05)
        assert stack.reactor.sleeps >= 1
        assert not stack.reactor._scheduled  # resting on the fd, no iteration queued
        before = stack.reactor.iterations
        await asyncio.sleep(0.05)
        assert stack.reactor.iterations == before  # nothing ran while idle
        peer.tx_burst(0, [peer.pool.packet_from(udp_frame(b"wake", dport=7))])  # type: ignore[attr-defined]
        data, addr = await asyncio.wait_for(sock.recvfrom(100), 2)
        assert (data, addr) == (b"wake", ("10.0.0.1", 5000))


async def test_busy_poll_keeps_iterating_then_rests() -> None:
    stack, peer = make(busy_poll=0.02)
    async with stack:
        sock = stack.socket()
        sock.bind(("0.0.0.0", 7))
        peer.tx_burst(0, [peer.pool.packet_from(udp_frame(b"x", dport=7))])  # type: ignore[attr-defined]
        stack.reactor.kick()
        await asyncio.wait_for(sock.recvfrom(10), 2)
        await asyncio.sleep(0.1)
        assert stack.reactor.iterations > 2  # polled on after the frame ...
        assert stack.reactor.sleeps >= 1  # ... and went to rest once the traffic stopped


async def test_timer_fires_while_idle() -> None:
    """An ARP retry is a protocol timer: the resting reactor must wake for it."""
    stack, _peer = make(busy_poll=0.0)
    stack.ip.interfaces[0].arp.retry_interval = 0.05
    async with stack:
        sock = stack.socket()
        try:
            await asyncio.wait_for(sock.sendto(b"x", ("10.0.0.9", 9)), 5)
        except OSError as exc:
            assert exc.errno == 113  # EHOSTUNREACH after the retries
        else:
            raise AssertionError("expected EHOSTUNREACH")
    arp_requests = stack.ip.stats["arp_tx"] - 1  # minus the gratuitous ARP at start
    assert arp_requests == 3


async def test_processing_error_is_counted_not_fatal() -> None:
    stack, peer = make(busy_poll=0.0)
    async with stack:
        sock = stack.socket()
        sock.bind(("0.0.0.0", 7))

        class Flaky:
            """A transport above IPv4 with a bug: it fails on the first datagram it is given."""

            def input(self, *args: object) -> None:
                raise RuntimeError("simulated bug")

        stack.ip.transports[EXPERIMENTAL] = Flaky()  # type: ignore[assignment]
        frames = [eth(ip4(b"payload", proto=EXPERIMENTAL)), udp_frame(b"second", dport=7)]
        peer.tx_burst(0, [peer.pool.packet_from(f) for f in frames])  # type: ignore[attr-defined]
        stack.reactor.kick()
        data, _ = await asyncio.wait_for(sock.recvfrom(100), 2)
        assert data == b"second"  # the frame after the failing one was served
        assert stack.reactor.internal_errors == 1
        assert stack.ip.drops["internal_error"] == 1
