"""asyncio datagram transports on aiostack: what ``loop.create_datagram_endpoint`` returns when
aiostack serves the call (:mod:`aiostack.loop`).

As asyncio's ``_SelectorDatagramTransport``: ``protocol.connection_made(transport)`` soon after
creation, ``datagram_received(data, addr)`` for every datagram, ``error_received(exc)`` for an
error the network reports (an ICMP port unreachable on a connected endpoint gives
``ConnectionRefusedError``; a next hop that never answers ARP ``OSError(EHOSTUNREACH)``), and
``connection_lost(None)`` after ``close()``. ``sendto`` never blocks: a datagram goes to the
driver at once, or waits in the ARP queue for its next hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Mapping
from typing import Any

from .addresses import Address
from .udp_socket import UdpSocket

__all__ = ["DatagramTransport"]

MAX_DATAGRAM = 65535


class DatagramTransport(asyncio.DatagramTransport):
    """An asyncio datagram transport over a bound aiostack :class:`~aiostack.udp_socket.UdpSocket`."""

    def __init__(
        self,
        sock: UdpSocket,
        protocol: asyncio.DatagramProtocol,
        *,
        waiter: asyncio.Future[None] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(dict(extra or {}))
        if sock.endpoint is None:
            raise OSError(errno.EINVAL, "the socket must be bound")
        self._loop = asyncio.get_running_loop()
        self._sock: UdpSocket | None = sock
        self._ep = sock.endpoint
        self._protocol: asyncio.DatagramProtocol | None = protocol
        self._closing = False
        self._loop.call_soon(self._start, waiter)

    def _start(self, waiter: asyncio.Future[None] | None) -> None:
        if self._protocol is None or self._sock is None:
            if waiter is not None and not waiter.done():
                waiter.set_exception(OSError(errno.EBADF, "transport closed before it was made"))
            return
        try:
            self._protocol.connection_made(self)
        except BaseException as exc:
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            self.abort()
            raise
        self._sock.stack.reactor.watch(self._ep, self)
        self.on_ready()  # what arrived before connection_made
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_ready(self) -> None:
        """The reactor's :class:`~aiostack.reactor.Watcher` hook: hand every queued datagram (and
        a pending error) to the protocol."""
        sock, protocol = self._sock, self._protocol
        while sock is not None and protocol is not None and not self._closing:
            try:
                data, addr = sock.recvfrom_nowait(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError as exc:  # a pending ICMP error, taken: report it and read on
                protocol.error_received(exc)
                continue
            protocol.datagram_received(data, addr)

    # -- sending ------------------------------------------------------------------------------
    def sendto(self, data: bytes | bytearray | memoryview, addr: Address | None = None) -> None:  # type: ignore[override]
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        sock = self._sock
        if sock is None or self._closing:
            return  # asyncio ignores (and after a while warns about) sends on a closed transport
        if addr is not None and self._ep.connected:
            peer = sock.getpeername()
            if tuple(addr[:2]) != peer:
                raise ValueError(f"Invalid address: must be None or {peer}")
            addr = None
        try:
            waiter = sock.sendto_nowait(data, addr)
        except OSError as exc:
            if self._protocol is not None:
                self._protocol.error_received(exc)
            return
        if waiter is not None:
            waiter.add_done_callback(self._arp_done)

    def _arp_done(self, fut: asyncio.Future[bool]) -> None:
        if not fut.cancelled() and not fut.result() and self._protocol is not None and not self._closing:
            err = OSError(errno.EHOSTUNREACH, "No route to host: the next hop did not answer ARP")
            self._protocol.error_received(err)

    def get_write_buffer_size(self) -> int:
        return 0  # nothing is held here: a datagram goes to the driver or to ARP's queue

    # -- closing ------------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self.close()

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        sock, self._sock = self._sock, None
        protocol, self._protocol = self._protocol, None
        if sock is not None:
            sock.stack.reactor.unwatch(self._ep)
            sock.close()
        if protocol is not None:
            with contextlib.suppress(Exception):
                protocol.connection_lost(exc)  # type: ignore[arg-type]

    # -- protocol and extras --------------------------------------------------------------------
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[return-value]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self._extra:
            return self._extra[name]
        sock = self._sock
        if sock is None:
            return default
        if name == "socket":
            return sock
        if name == "sockname":
            return sock.getsockname()
        if name == "peername":
            return sock.getpeername() if self._ep.connected else None
        return default
