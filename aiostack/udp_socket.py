"""UDP sockets of the coroutine socket API (the ``ff_socket`` family as coroutines).

Calls that only change local state (``bind``, ``connect``, ``close``, options) are plain methods,
as in the ``socket`` module; calls that may wait (``sendto`` while ARP resolves, ``recvfrom``)
are coroutines. Errors are ``OSError`` with the errno the kernel would give.
"""

from __future__ import annotations

import asyncio
import errno
import socket as _socket
from typing import TYPE_CHECKING

from .addresses import Address, parse_address
from .ip import ipv4
from .ip.udp import UdpEndpoint
from .tcp.readiness import POLLERR, READABLE, WRITABLE

if TYPE_CHECKING:
    from .stack import Stack

class UdpSocket:
    """A UDP socket on an aiostack :class:`~aiostack.stack.Stack`."""

    family = _socket.AF_INET
    type = _socket.SOCK_DGRAM
    proto = _socket.IPPROTO_UDP

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._ep: UdpEndpoint | None = None
        self._closed = False
        self._rcvbuf: int | None = None
        self._broadcast = False
        self._ttl = ipv4.DEFAULT_TTL

    # -- helpers ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor: socket is closed")

    def _endpoint(self, toward: tuple[int, int] | None = None) -> UdpEndpoint:
        """The bound endpoint, binding to an ephemeral port first if needed (as the kernel does;
        ``toward``, the destination that makes it bind, lets a stack that is one reactor of
        several pick a port whose replies come back to it)."""
        self._check_open()
        if self._ep is None:
            self._bind(0, 0, toward)
        assert self._ep is not None
        return self._ep

    def _raise_pending(self, ep: UdpEndpoint) -> None:
        err = ep.take_error()
        if err:
            raise OSError(err, errno.errorcode.get(err, "error"))

    # -- local state ------------------------------------------------------------------------
    def bind(self, address: Address) -> None:
        self._check_open()
        if self._ep is not None:
            raise OSError(errno.EINVAL, "socket is already bound")
        addr, port = parse_address(address, allow_any=True)
        self._bind(addr, port, None)

    def _bind(self, addr: int, port: int, toward: tuple[int, int] | None) -> None:
        ep = self._stack.ip.udp.bind(addr, port, toward=toward)
        if self._rcvbuf is not None:
            ep.rcvbuf = self._rcvbuf
        ep.broadcast = self._broadcast
        ep.ttl = self._ttl
        self._ep = ep

    def connect(self, address: Address) -> None:
        """Fix the peer: ``send``/``recv`` use it, datagrams from others are not delivered, and
        ICMP errors about it are reported (RFC 1122 §4.1.3.3)."""
        self._check_open()
        addr, port = parse_address(address, allow_any=False)
        if port == 0:
            raise OSError(errno.EINVAL, "port 0 is not a valid peer")
        ep = self._endpoint(toward=(addr, port))
        ep.remote_addr = addr
        ep.remote_port = port

    def getsockname(self) -> Address:
        self._check_open()
        if self._ep is None:
            return ("0.0.0.0", 0)
        return (ipv4.ntoa(self._ep.local_addr), self._ep.local_port)

    def getpeername(self) -> Address:
        self._check_open()
        if self._ep is None or not self._ep.connected:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return (ipv4.ntoa(self._ep.remote_addr), self._ep.remote_port)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self._check_open()
        if level == _socket.SOL_SOCKET and option == _socket.SO_RCVBUF:
            if value < 256:
                raise OSError(errno.EINVAL, "SO_RCVBUF too small")
            self._rcvbuf = int(value)
            if self._ep is not None:
                self._ep.rcvbuf = self._rcvbuf
        elif level == _socket.SOL_SOCKET and option == _socket.SO_BROADCAST:
            self._broadcast = bool(value)
            if self._ep is not None:
                self._ep.broadcast = self._broadcast
        elif level == _socket.IPPROTO_IP and option == _socket.IP_TTL:
            if not 1 <= value <= 255:
                raise OSError(errno.EINVAL, "IP_TTL must be 1-255")
            self._ttl = int(value)
            if self._ep is not None:
                self._ep.ttl = self._ttl
        else:
            raise OSError(errno.ENOPROTOOPT, f"option {level}/{option} is not supported")

    def getsockopt(self, level: int, option: int) -> int:
        self._check_open()
        if level == _socket.SOL_SOCKET and option == _socket.SO_ERROR:
            return self._ep.take_error() if self._ep is not None else 0
        if level == _socket.SOL_SOCKET and option == _socket.SO_RCVBUF:
            return self._ep.rcvbuf if self._ep is not None else (self._rcvbuf or 212992)
        if level == _socket.SOL_SOCKET and option == _socket.SO_BROADCAST:
            return int(self._broadcast)
        if level == _socket.SOL_SOCKET and option == _socket.SO_TYPE:
            return _socket.SOCK_DGRAM
        if level == _socket.IPPROTO_IP and option == _socket.IP_TTL:
            return self._ttl
        raise OSError(errno.ENOPROTOOPT, f"option {level}/{option} is not supported")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ep is not None:
            self._stack.ip.udp.close(self._ep)
            self._stack.reactor.forget(self._ep)

    # -- data -------------------------------------------------------------------------------
    async def sendto(self, data: bytes | bytearray | memoryview, address: Address) -> int:
        """Send one datagram. Waits only while the next hop's ARP resolves; if it never answers,
        raises ``OSError(EHOSTUNREACH)`` once ARP gives up (the datagram is dropped and counted)."""
        self._check_open()
        dst, port = parse_address(address, allow_any=False)
        ep = self._endpoint(toward=(dst, port))
        self._raise_pending(ep)
        return await self._send(ep, data, dst, port)

    async def send(self, data: bytes | bytearray | memoryview) -> int:
        ep = self._endpoint()
        if not ep.connected:
            raise OSError(errno.EDESTADDRREQ, "Destination address required")
        self._raise_pending(ep)
        return await self._send(ep, data, ep.remote_addr, ep.remote_port)

    async def _send(self, ep: UdpEndpoint, data: bytes | bytearray | memoryview, dst: int, port: int) -> int:
        stack = self._stack
        reactor = stack.reactor
        if not reactor.running:
            raise OSError(errno.ENETDOWN, "the stack is not running")
        hop = stack.ip.udp.sendto(ep, data, dst, port, stack.clock())
        if hop:
            waiter = reactor.wait_resolution(hop)
            reactor.kick()
            if not await waiter:
                raise OSError(
                    errno.EHOSTUNREACH,
                    f"No route to host: {ipv4.ntoa(hop)} did not answer ARP; datagram dropped",
                )
        else:
            reactor.kick()
        return len(data)

    def sendto_nowait(
        self, data: bytes | bytearray | memoryview, address: Address | None = None
    ) -> asyncio.Future[bool] | None:
        """Send one datagram without waiting (to the connected peer when ``address`` is None):
        None when it went to the driver, or — while the next hop's ARP resolves, the datagram
        queued behind it — a future that becomes False if ARP gives up (the datagram is then
        dropped and counted). What a datagram transport's ``sendto`` uses."""
        if address is None:
            ep = self._endpoint()
            if not ep.connected:
                raise OSError(errno.EDESTADDRREQ, "Destination address required")
            dst, port = ep.remote_addr, ep.remote_port
        else:
            dst, port = parse_address(address, allow_any=False)
            ep = self._endpoint(toward=(dst, port))
        self._raise_pending(ep)
        stack = self._stack
        reactor = stack.reactor
        if not reactor.running:
            raise OSError(errno.ENETDOWN, "the stack is not running")
        hop = stack.ip.udp.sendto(ep, data, dst, port, stack.clock())
        waiter = reactor.wait_resolution(hop) if hop else None
        reactor.kick()
        return waiter

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """Receive one datagram; like the kernel, a datagram longer than ``bufsize`` is cut and
        the rest discarded."""
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        ep = self._endpoint()
        reactor = self._stack.reactor
        while True:
            self._check_open()
            if ep.rx:
                data, (src, sport) = ep.rx.popleft()
                ep.rx_bytes -= len(data)
                return data[:bufsize], (ipv4.ntoa(src), sport)
            self._raise_pending(ep)
            if not reactor.running:
                raise OSError(errno.ENETDOWN, "the stack is not running")
            await reactor.wait_ready(ep)

    async def recv(self, bufsize: int) -> bytes:
        data, _ = await self.recvfrom(bufsize)
        return data

    def recvfrom_nowait(self, bufsize: int) -> tuple[bytes, Address]:
        """Non-blocking receive (``ff_recvfrom`` on a non-blocking socket): BlockingIOError when
        nothing is queued."""
        ep = self._endpoint()
        if not ep.rx:
            self._raise_pending(ep)
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        data, (src, sport) = ep.rx.popleft()
        ep.rx_bytes -= len(data)
        return data[:bufsize], (ipv4.ntoa(src), sport)

    def poll(self) -> int:
        """Readiness as a ``poll()`` event mask (:mod:`aiostack.tcp.readiness`'s bits): always
        writable (a datagram goes out or waits for ARP), readable while datagrams are queued,
        POLLERR while an ICMP error is pending. 0 once closed."""
        if self._closed:
            return 0
        ep = self._ep
        if ep is None:
            return WRITABLE
        return WRITABLE | (READABLE if ep.rx else 0) | (POLLERR if ep.error else 0)

    @property
    def endpoint(self) -> UdpEndpoint | None:
        return self._ep

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stack(self) -> Stack:
        return self._stack

    # -- context manager --------------------------------------------------------------------
    async def __aenter__(self) -> UdpSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __enter__(self) -> UdpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else (f"bound {self.getsockname()}" if self._ep else "unbound")
        return f"<aiostack UdpSocket {state}>"
