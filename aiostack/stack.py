"""``Stack``: one reactor's user-space network stack, as an application holds it.

It owns the packet pool, the attached drivers, the sans-I/O network layer and the reactor, and
exposes what an operator asks about: interfaces, the ARP table, routes and counters.

    async with Stack() as stack:
        stack.attach(driver, "10.77.0.2/24")
        sock = stack.socket(AF_INET, SOCK_DGRAM)
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket as _socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from .build import build_name
from .drivers.base import Driver
from .drivers.buffers import DEFAULT_BUFFER_SIZE, DEFAULT_HEADROOM, DEFAULT_POOL_BUFFERS, DEFAULT_POOL_MAX, PacketPool
from .drivers.mac import mac_to_str
from .gctune import tune_collector
from .ip import ipv4
from .ip.checksum import warm_up as warm_up_checksum
from .ip.stack import Interface, IPStack
from .malloc import MemoryReturn, tune_allocator
from .reactor import Port, Reactor
from .tcp.config import TcpConfig
from .tcp.layer import TcpLayer
from .tcp_socket import TcpSocket
from .udp_socket import UdpSocket

if TYPE_CHECKING:
    from .config import Options


_running: dict[asyncio.AbstractEventLoop, list[Stack]] = {}


def current_stack() -> Stack:
    """The stack running on this thread's event loop, for the module-level API
    (``aiostack.open_connection(host, port)`` …), as asyncio finds its running loop. With more
    than one stack on the loop, pass ``stack=`` explicitly."""
    stacks = _running.get(asyncio.get_running_loop(), [])
    if len(stacks) == 1:
        return stacks[0]
    if not stacks:
        raise RuntimeError("no aiostack Stack is running on this event loop (start one, or use aiostack.serve())")
    raise RuntimeError(f"{len(stacks)} aiostack stacks run on this event loop: pass stack= to choose one")


def pool_for_mtu(mtu: int, count: int = DEFAULT_POOL_BUFFERS, max_count: int = DEFAULT_POOL_MAX) -> PacketPool:
    """A packet pool whose buffers hold a frame of ``mtu`` (plus Ethernet, a VLAN tag and slack),
    so jumbo MTUs work; never smaller than the default buffer. ``count`` buffers are made now;
    when all are in flight at once the pool grows (512 at a time) up to ``max_count``
    (``--pool-max``), counted in the stack's ``pool`` counters (``grows``, ``made``)."""
    size = max(DEFAULT_BUFFER_SIZE, DEFAULT_HEADROOM + mtu + 64)
    return PacketPool(count=max(count, max_count), size=size, initial=count)


class Stack:
    """A user-space TCP/IP stack instance (one per reactor/core)."""

    def __init__(
        self,
        *,
        pool: PacketPool | None = None,
        batch: int = 64,
        busy_poll: float = 200e-6,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        tcp: bool = True,
        tcp_config: TcpConfig | None = None,
        secret: bytes | None = None,
        **ip_options: Any,
    ) -> None:
        self.pool = pool if pool is not None else PacketPool()
        self.clock = clock
        self.ip = IPStack(self.pool, clock(), seed=seed, **ip_options)
        self.tcp: TcpLayer | None = TcpLayer(self.ip, config=tcp_config, secret=secret) if tcp else None
        self.reactor = Reactor(self.ip, [], batch=batch, busy_poll=busy_poll, clock=clock)
        self.reactor.tcp = self.tcp
        if self.tcp is not None:
            self.tcp.defer_acks = True  # the reactor sends owed ACKs once per receive burst
        self.drivers: list[Driver] = []
        self._exports: dict[str, Callable[[], Mapping[str, object]]] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.memory_return: MemoryReturn | None = None
        self._ping_ident = self.ip.rng.randrange(0x10000)
        self._ping_seq = 0

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_options(cls, options: Options, driver: Driver | None = None) -> Stack:
        """A stack configured by the standard options; ``driver`` overrides ``--driver``."""
        from .devices import open_driver, with_filter
        from .drivers.pcap import PcapWrapper

        pool = pool_for_mtu(options.mtu, max_count=options.pool_max)
        stack = cls(pool=pool, batch=options.batch, busy_poll=options.busy_poll_us / 1e6)
        if driver is None:
            driver = open_driver(options, stack.pool, queues=options.queues or 1)
        driver = with_filter(driver, options)
        if options.pcap:
            driver = PcapWrapper(driver, str(options.pcap))
        stack.attach(driver, options.addr, name=options.iface)
        if options.gateway:
            stack.set_gateway(str(options.gateway))
        return stack

    def attach(
        self,
        driver: Driver,
        addr: str | ipaddress.IPv4Interface,
        *,
        name: str | None = None,
        queues: list[int] | None = None,
    ) -> Interface:
        """Attach ``driver`` as a new interface with address ``addr`` (CIDR)."""
        iface = self.ip.add_interface(
            name or driver.name, driver.mac, addr, mtu=driver.mtu, offloads=driver.offloads,
            large_pool=driver.large_pool,
        )
        port = Port(iface, driver, queues if queues is not None else list(range(driver.num_queues)))
        self.reactor.ports.append(port)
        self.drivers.append(driver)
        if self.reactor.running:
            raise RuntimeError("attach interfaces before starting the stack")
        return iface

    def set_gateway(self, gateway: str, iface: int = 0) -> None:
        self.ip.set_gateway(gateway, iface)

    # -- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.reactor.ports:
            raise RuntimeError("no interface attached")
        # Pure build: load (and if need be compile) the numba checksum loop now, not on the first
        # long frame: that costs 0.35-0.6 s once per process, which would stall the first
        # conversation. Not when every device checksums for us (TAP, AF_PACKET with offloads):
        # then only the odd long ICMP message needs it, and loading numba costs ~120 MB of RSS.
        # (The compiled build's checksum is C at every length: warm_up() does nothing there.)
        if any(not (d.offloads.rx_csum and d.offloads.tx_csum) for d in self.drivers):
            warm_up_checksum()
        tune_allocator()
        tune_collector()
        self.reactor.start()
        self._loop = asyncio.get_running_loop()
        self.memory_return = MemoryReturn(self.buffer_bytes, high_water=self._buffer_high_water,
                                          pools=self._pools()).start(self._loop)
        _running.setdefault(self._loop, []).append(self)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.tcp is not None:
            self.tcp.close()
        if self.reactor.running:
            self.reactor.stop()
        if self.memory_return is not None:
            self.memory_return.stop()
        stacks = _running.get(self._loop) if self._loop is not None else None
        if stacks is not None and self in stacks:
            stacks.remove(self)
            if not stacks:
                del _running[self._loop]  # type: ignore[arg-type]
        self.ip.close()
        for driver in self.drivers:
            driver.close()

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- sockets ----------------------------------------------------------------------------
    @overload
    def socket(self, family: int, type: Literal[1], proto: int = 0) -> TcpSocket: ...
    @overload
    def socket(self, family: int = ..., type: Literal[2] = ..., proto: int = 0) -> UdpSocket: ...
    def socket(
        self, family: int = _socket.AF_INET, type: int = _socket.SOCK_DGRAM, proto: int = 0
    ) -> UdpSocket | TcpSocket:
        """A socket on this stack (``ff_socket``): SOCK_DGRAM (UDP) or SOCK_STREAM (TCP)."""
        if family != _socket.AF_INET:
            raise OSError(errno.EAFNOSUPPORT, "only AF_INET is supported")
        if type == _socket.SOCK_DGRAM and proto in (0, _socket.IPPROTO_UDP):
            return UdpSocket(self)
        if type == _socket.SOCK_STREAM and proto in (0, _socket.IPPROTO_TCP):
            return TcpSocket(self)
        raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported")

    async def ping(self, host: str, *, payload: bytes = b"aiostack ping", timeout: float = 1.0) -> float:
        """Send one ICMP echo request to ``host`` and wait for the reply; returns the round-trip
        time in seconds. ``TimeoutError`` when no reply comes in ``timeout`` seconds, ``OSError``
        when there is no route or the next hop does not answer ARP."""
        dst = ipv4.aton(host)
        reactor = self.reactor
        if not reactor.running:
            raise OSError(errno.ENETDOWN, "the stack is not running")
        self._ping_seq = (self._ping_seq + 1) & 0xFFFF
        queue, queues = self.ip.steering
        # one reactor of several: an identifier that names this queue, so the reactor that gets
        # the reply (ICMP is steered by addresses) hands it over here (IPStack.steer_to)
        ident = self._ping_ident - self._ping_ident % queues + queue
        ident, seq = ident if ident <= 0xFFFF else ident - queues, self._ping_seq
        reply = reactor.wait_echo(dst, ident, seq)
        start = self.clock()
        try:
            async with asyncio.timeout(timeout):
                hop = self.ip.icmp.send_echo_request(dst, ident, seq, payload, start)
                reactor.kick()
                if hop and not await reactor.wait_resolution(hop):
                    raise OSError(errno.EHOSTUNREACH, f"No route to host: {ipv4.ntoa(hop)} did not answer ARP")
                data = await reply
        finally:
            reactor.forget_echo(dst, ident, seq)
        if data != payload:
            raise OSError(errno.EIO, "echo reply payload differs from the request")
        return self.clock() - start

    # -- introspection ----------------------------------------------------------------------
    @property
    def interfaces(self) -> list[Interface]:
        return self.ip.interfaces

    def arp_table(self) -> list[dict[str, object]]:
        now = self.clock()
        rows = []
        for iface in self.ip.interfaces:
            for ip, mac, state, left in iface.arp.table(now):
                rows.append(
                    {
                        "iface": iface.name,
                        "ip": ipv4.ntoa(ip),
                        "mac": mac_to_str(mac),
                        "state": state,
                        "expires_in": round(left, 1) if left != float("inf") else None,
                    }
                )
        return rows

    def routes(self) -> list[dict[str, object]]:
        return [
            {
                "destination": f"{ipv4.ntoa(r.network)}/{r.prefix_len}",
                "gateway": ipv4.ntoa(r.gateway) if r.gateway else None,
                "iface": self.ip.interfaces[r.iface].name,
            }
            for r in self.ip.routes.routes
        ]

    def export(self, name: str, read: Callable[[], Mapping[str, object]]) -> None:
        """Show the application's own counters — ``read()``, called when asked — under
        ``counters()["app"][name]``: ``aiostack stat`` lists them with the stack's, and sums them
        over the reactors of a multi-core instance (Seastar's metrics registration, in small)."""
        self._exports[name] = read

    def _pools(self) -> list[PacketPool]:
        """The packet pools this stack's memory sits in: its own, and each device's receive and
        large (segmentation-offload) pools where they are not the stack's."""
        pools = [self.pool]
        for d in self.drivers:
            for pool in (d.pool, d.large_pool):
                if isinstance(pool, PacketPool) and all(pool is not p for p in pools):
                    pools.append(pool)
        return pools

    def buffer_bytes(self) -> int:
        """Bytes held in buffers: pooled packets that exist and TCP's send, receive and
        out-of-order data (what :class:`~aiostack.malloc.MemoryReturn` watches)."""
        held = sum(p.made * p.size for p in self._pools())
        if self.tcp is not None:
            mem = self.tcp.memory
            held += mem.snd_used + mem.rcv_used
        return held

    def _buffer_high_water(self) -> int:
        """:meth:`buffer_bytes` at its highest since the last call (pools only grow between trims;
        TCP's bytes keep their own high-water mark)."""
        held = sum(p.made * p.size for p in self._pools())
        if self.tcp is not None:
            held += self.tcp.memory.take_peak()
        return held

    def counters(self) -> dict[str, object]:
        """Everything counted: the network layer's stats and drops by reason, each driver's
        queues, the packet pool, the reactor, and what the application exported (:meth:`export`)."""
        app = {"app": {name: dict(read()) for name, read in self._exports.items()}} if self._exports else {}
        return {
            **app,
            **self.ip.counters(),
            "tcp": self.tcp.counters() if self.tcp is not None else {},
            "drivers": {d.name: d.stats() for d in self.drivers},
            "pool": {
                "buffers": self.pool.count,
                "available": self.pool.available,
                "alloc_failures": self.pool.failures,
                "made": self.pool.made,
                "grows": self.pool.grows,
            },
            "malloc": self.memory_return.counters() if self.memory_return is not None else {},
            "reactor": {
                "build": build_name(),
                "iterations": self.reactor.iterations,
                "sleeps": self.reactor.sleeps,
                "internal_errors": self.reactor.internal_errors,
            },
        }
