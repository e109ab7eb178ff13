"""asyncio Protocol/Transport compatibility: ``loop.create_server``/``loop.create_connection`` on
an aiostack :class:`~aiostack.stack.Stack`.

    server = await create_server(EchoProtocol, "10.0.0.2", 7, stack=stack)
    transport, protocol = await create_connection(ClientProtocol, "10.0.0.2", 7, stack=stack)

:class:`Transport` follows asyncio's selector socket transport (``_SelectorSocketTransport``) call
for call, so a protocol written for asyncio runs unchanged:

- ``protocol.connection_made(transport)`` is called soon after the connection is established
  (from the event loop, as asyncio does), then ``data_received(data)`` once per chunk read;
- at end of stream ``eof_received()``: a true result keeps the write side open (half-close),
  anything else closes the transport;
- ``connection_lost(exc)`` exactly once: ``None`` after an orderly close, the ``OSError``
  otherwise (``ConnectionResetError`` when the peer resets);
- ``write`` never blocks: what the TCP send buffer does not take at once is kept in the
  transport's own buffer and pushed by a writer task as the peer acknowledges data;
- flow control as asyncio's: ``pause_writing()`` when the write buffer grows above the high-water
  mark, ``resume_writing()`` once it drains to the low-water mark (defaults 64 KiB / 16 KiB).

**What the write-buffer size counts.** ``get_write_buffer_size()`` is the number of bytes held in
the transport's own buffer, i.e. written by the application but *not yet accepted into the
connection's TCP send buffer* (SO_SNDBUF, 1 MiB by default) — exactly what asyncio counts on a
kernel socket, where the kernel's socket buffer is not included either. Bytes in the TCP send
buffer (queued or sent but unacknowledged) are not counted.

**How backpressure flows.** Sending: a peer that stops reading closes its receive window, our TCP
send buffer fills, ``send`` accepts nothing more, the transport buffer grows past the high-water
mark and the protocol gets ``pause_writing()`` (``StreamWriter.drain()`` then blocks); as the
peer reads and acknowledges, the writer task moves data into the send buffer and, at the
low-water mark, calls ``resume_writing()``. Receiving: ``pause_reading()`` stops the reader task
taking data out of the TCP receive buffer, so the buffer fills and the advertised window closes —
the peer is flow-controlled by TCP itself; ``resume_reading()`` reads again, which reopens the
window (the connection sends a window update).

Each transport runs a reader task (read what is there with ``recv_nowait``, else wait for the
reactor to report the connection) and, while its buffer is not empty, a writer task; both wait
with :meth:`Reactor.wait_ready`, so they wake at most once per reactor iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket as _socket
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .addresses import format_address
from .buffered import as_data_protocol, unwrap
from .tcp.connection import CLOSED
from .tcp.readiness import POLLERR, POLLIN
from .tcp_socket import TcpSocket


def current_stack() -> Stack:
    from .stack import current_stack as _current

    return _current()

if TYPE_CHECKING:
    from .stack import Stack
    from .tcp.connection import Connection

__all__ = ["Server", "Transport", "create_connection", "create_server"]

log = logging.getLogger("aiostack.protocols")

MAX_READ = 256 * 1024
"""Largest chunk handed to ``data_received`` at once (asyncio's ``max_size``)."""
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5
"""As asyncio: writes after the connection is lost are ignored, with a warning from the 5th on."""
DEFAULT_HIGH_WATER = 64 * 1024
DEFAULT_LOW_WATER = DEFAULT_HIGH_WATER // 4
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The extras of a transport given none: shared (the socket's own extras are computed on demand)."""
_MISSING = object()
_EMPTY = b""

_READ_EVENTS = POLLIN | POLLERR
"""What makes a read worth trying: data, end of stream, a closed connection, an error."""

_EPHEMERAL_FIRST = 32768
_EPHEMERAL_LAST = 60999


class Transport(asyncio.Transport):
    """An asyncio transport over an aiostack :class:`~aiostack.tcp_socket.TcpSocket` that is
    already connected. Created by :func:`create_connection` and by a :class:`Server`.

    Small, as a server may hold a million of them: ``__slots__``; the ``socket``, ``sockname``
    and ``peername`` extras are computed when asked for, not stored; the write buffer exists only
    while it holds something."""

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_closing",
        "_conn",
        "_conn_lost",
        "_eof",
        "_high_water",
        "_loop",
        "_low_water",
        "_paused",
        "_protocol",
        "_protocol_connected",
        "_protocol_paused",
        "_reading",
        "_server",
        "_sock",
        "_stack",
        "_writer",
    )

    max_size = MAX_READ

    def __init__(
        self,
        stack: Stack,
        sock: TcpSocket,
        protocol: asyncio.BaseProtocol,
        *,
        server: Server | None = None,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra if extra is not None else _NO_EXTRA)  # type: ignore[arg-type]
        conn = sock.connection
        if conn is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        self._loop = asyncio.get_running_loop()
        self._stack = stack
        self._sock: TcpSocket | None = sock
        self._conn: Connection = conn
        # asyncio turns Nagle off on every TCP transport (base_events._set_nodelay); so do we —
        # on the connection itself: an accepted TcpSocket shares its listener's option set, and
        # setsockopt would change the default of every later connection of that listener too.
        conn.nodelay = True
        self._protocol: asyncio.BaseProtocol | None = as_data_protocol(protocol)
        self._protocol_connected = False
        self._buffer: bytearray | bytes = _EMPTY  # a bytearray while it holds data
        self._closing = False
        self._eof = False
        self._conn_lost = 0
        self._paused = False  # reading paused by pause_reading()
        self._protocol_paused = False  # pause_writing() sent to the protocol
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_LOW_WATER
        self._reading = False  # watched by the reactor (between connection_made and EOF/close)
        self._writer: asyncio.Task[None] | None = None
        self._server = server
        if server is not None:
            server._attach(self)
        self._loop.call_soon(self._start, waiter)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            with contextlib.suppress(Exception):  # the loop may be gone already
                sock.close()

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        peer = self.get_extra_info("peername")
        if peer:
            info.append(f"peer={peer[0]}:{peer[1]}")
        info.append(f"state={self._conn.state.name}")
        if self._buffer:
            info.append(f"buffered={len(self._buffer)}")
        return "<{}>".format(" ".join(info))

    # -- start -------------------------------------------------------------------------------
    def _start(self, waiter: asyncio.Future[None] | None) -> None:
        if self._conn_lost or self._protocol is None:
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionResetError("connection closed before it was made"))
            return
        self._protocol_connected = True
        try:
            self._protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.connection_made() call failed.")
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            return
        if not self._closing:
            self._stack.reactor.watch(self._conn, self)
            self._reading = True
            self._read_ready()  # data may have arrived before connection_made
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_conn(self) -> None:
        reactor = self._stack.reactor
        if not reactor.running:
            raise OSError(errno.ENETDOWN, "the stack is not running")
        await reactor.wait_ready(self._conn)

    # -- reading ----------------------------------------------------------------------------
    def _read_ready(self) -> None:
        """The connection reported something (called by the reactor inside its iteration, so
        a reply the protocol writes leaves in the same burst): hand the protocol what can be
        read — as asyncio's selector transports do from their reader callback."""
        if not self._reading or self._paused:
            return
        conn = self._conn
        sock = self._sock
        protocol = self._protocol
        while sock is not None and self._reading and not self._paused:
            if not conn.poll() & _READ_EVENTS:
                # Nothing to read (the common case after the data): no exception round trip.
                if not self._stack.reactor.running:
                    self._fatal_error(OSError(errno.ENETDOWN, "the stack is not running"),
                                      "Fatal read error on socket transport")
                return
            try:
                data = sock.recv_nowait(self.max_size)
            except BlockingIOError:
                if conn.state != CLOSED:
                    if not self._stack.reactor.running:
                        self._fatal_error(OSError(errno.ENETDOWN, "the stack is not running"),
                                          "Fatal read error on socket transport")
                    return
                data = b""  # closed without a pending error or FIN (the error went to a send)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on socket transport")
                return
            assert protocol is not None
            if data:
                try:
                    protocol.data_received(data)  # type: ignore[attr-defined]
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
                    return
                sock = self._sock
                continue
            # End of stream.
            self._stop_reading()
            try:
                keep_open = protocol.eof_received()  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
                return
            if not keep_open:
                self.close()
            return

    on_ready = _read_ready
    """The reactor's :class:`~aiostack.reactor.Watcher` hook."""

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._stack.reactor.unwatch(self._conn)

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        if self._loop.get_debug():
            log.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._reading:
            # What arrived while paused sits in the TCP receive buffer: no new notification
            # may come for it, so look now (soon: not from inside the caller's callback).
            self._loop.call_soon(self._read_ready)
        if self._loop.get_debug():
            log.debug("%r resumes reading", self)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                log.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
            data = data.cast("B")
        if not self._buffer:
            sock = self._sock
            assert sock is not None
            try:
                n = sock.send_nowait(data)
            except BlockingIOError:
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            if n == len(data):
                return
            self._buffer = bytearray(memoryview(data)[n:])
            self._writer = self._loop.create_task(
                self._write_loop(), name=f"aiostack writer {self.get_extra_info('peername')}"
            )
        else:
            self._buffer.extend(data)  # type: ignore[union-attr]
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    async def _write_loop(self) -> None:
        # Try first, then wait: a reactor iteration may have freed space before this task ran,
        # and its notification would be lost on a waiter registered only afterwards.
        try:
            while self._buffer:
                sock = self._sock
                if self._conn_lost or sock is None:
                    return
                try:
                    with memoryview(self._buffer) as view:
                        n = sock.send_nowait(view)
                except BlockingIOError:
                    n = 0
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(exc, "Fatal write error on socket transport")
                    return
                if n:
                    del self._buffer[:n]  # type: ignore[union-attr]
                    if not self._buffer:
                        self._buffer = _EMPTY
                    self._maybe_resume_protocol()
                    if not self._buffer:
                        break
                try:
                    await self._wait_conn()
                except OSError as exc:
                    self._fatal_error(exc, "Fatal write error on socket transport")
                    return
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None
        if self._conn_lost:
            return
        if self._closing:
            self._conn_lost += 1
            self._call_connection_lost(None)
        elif self._eof and self._sock is not None:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        assert self._sock is not None
        try:
            self._sock.shutdown(_socket.SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on shutdown(SHUT_WR)")

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer and self._sock is not None:
            self._shutdown_write()

    # -- flow control (asyncio.transports._FlowControlMixin) ---------------------------------
    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the connection's TCP send buffer (see the module
        docstring)."""
        return len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        size = len(self._buffer)
        if self._protocol_paused or not size:
            return
        if size <= self._high_water and not self._memory_pressure():
            return
        self._protocol_paused = True
        self._call_flow_control("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused:
            return
        size = len(self._buffer)
        if size <= self._low_water and not (size and self._memory_pressure()):
            self._protocol_paused = False
            self._call_flow_control("resume_writing")

    def _memory_pressure(self) -> bool:
        """Whether the reactor's TCP send bytes are at their total (tcp/memory.py): then the
        transport pauses the protocol as soon as it holds anything, so thousands of stalled
        writers each keep one write's worth here, not a high-water mark's."""
        sock = self._sock
        mem = getattr(sock._tcp, "memory", None) if sock is not None else None
        if mem is None or mem.snd_used < mem.sndbuf_total:
            return False
        mem.stats["transport_paused_early"] += 1
        return True

    def _call_flow_control(self, name: str) -> None:
        """Call ``protocol.pause_writing``/``resume_writing``; a failure goes to the loop's
        exception handler, as asyncio's own transports report it."""
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{name}() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    # -- closing ----------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close after the buffered data is handed to TCP (which then sends it and a FIN);
        ``connection_lost(None)`` follows."""
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._buffer:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        """Close at once, dropping the transport's buffer (as asyncio, the socket is then closed
        normally: data already in the TCP send buffer still goes out, unread data means RST)."""
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                log.debug("%r: %s", self, message, exc_info=True)
        elif not isinstance(exc, asyncio.CancelledError):
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        self._buffer = _EMPTY
        task, self._writer = self._writer, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._sock is None:
            return
        try:
            if self._protocol_connected and self._protocol is not None:
                self._protocol.connection_lost(exc)
        finally:
            self._stop_reading()
            task, self._writer = self._writer, None
            if task is not None and task is not asyncio.current_task() and not task.done():
                task.cancel()
            self._sock.close()
            self._sock = None
            self._protocol = None
            server, self._server = self._server, None
            if server is not None:
                server._detach(self)

    # -- protocol and extras ------------------------------------------------------------------
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = as_data_protocol(protocol)
        self._protocol_connected = True

    def get_protocol(self) -> asyncio.BaseProtocol:
        return unwrap(self._protocol)  # type: ignore[no-any-return]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """As asyncio's: ``socket`` (the :class:`~aiostack.tcp_socket.TcpSocket`), ``sockname``
        and ``peername`` (address tuples, still given after the close, as asyncio's are), plus any
        extras passed in. The socket's are read from the connection when asked for rather than
        kept in a dict per transport."""
        value = self._extra.get(name, _MISSING)
        if value is not _MISSING:
            return value
        conn = self._conn
        if name == "peername":
            if conn.rcvbuf is None:
                return None  # never synchronized (as getpeername's ENOTCONN)
            return format_address(conn.remote_addr, conn.remote_port)
        if name == "sockname":
            return format_address(conn.local_addr, conn.local_port)
        if name == "socket":
            return conn.user
        return default


# == servers ===================================================================================
def _hosts(host: str | Iterable[str] | None) -> list[str]:
    if host is None or host == "":
        return ["0.0.0.0"]
    if isinstance(host, str):
        return [host]
    hosts = list(host)
    return hosts or ["0.0.0.0"]


def _free_port(stack: Stack) -> int:
    """A port nobody listens on or uses (for ``port=0``: the stack's listen() wants a port)."""
    tcp = stack.tcp
    if tcp is None:
        raise OSError(errno.EPROTONOSUPPORT, "this stack has no TCP layer")
    span = _EPHEMERAL_LAST - _EPHEMERAL_FIRST + 1
    start = stack.ip.rng.randrange(span)
    for i in range(span):
        port = _EPHEMERAL_FIRST + (start + i) % span
        if not tcp.port_in_use(port):
            return port
    raise OSError(errno.EADDRINUSE, "no free TCP port to listen on")


class Server(asyncio.AbstractServer):
    """What :func:`create_server` returns: the same interface as :class:`asyncio.Server`.

    ``sockets`` are the listening :class:`TcpSocket` objects. ``close()`` stops listening
    (connections not yet accepted are reset, as Linux does) but leaves accepted connections
    alone; ``wait_closed()`` then follows the running Python's asyncio: on 3.12+ it waits until
    every connection the server accepted is gone, on 3.11 it returns at once once closed.
    ``close_clients()``/``abort_clients()`` (asyncio 3.13) close those connections.
    """

    def __init__(
        self,
        stack: Stack,
        sockets: list[TcpSocket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._stack = stack
        self._sockets: list[TcpSocket] | None = sockets
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._active_count = 0
        self._clients: set[Transport] = set()
        self._waiters: list[asyncio.Future[None]] | None = []
        self._serving = False
        self._serving_forever_fut: asyncio.Future[None] | None = None
        self._accept_tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    # -- connections ------------------------------------------------------------------------
    def _attach(self, transport: Transport) -> None:
        self._active_count += 1
        self._clients.add(transport)

    def _detach(self, transport: Transport) -> None:
        self._clients.discard(transport)
        self._active_count -= 1
        if self._active_count == 0 and self._sockets is None:
            self._wakeup()

    def _wakeup(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_serving(self) -> None:
        if self._serving or self._sockets is None:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._accept_tasks.append(self._loop.create_task(self._accept_loop(sock), name=f"aiostack accept {sock}"))

    async def _accept_loop(self, lsock: TcpSocket) -> None:
        while self._sockets is not None:
            try:
                sock, _addr = await lsock.accept()
            except OSError as exc:
                if self._sockets is None or exc.errno in (errno.EBADF, errno.ENETDOWN, errno.EINVAL):
                    return  # closed, or the stack stopped
                self._loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": exc, "socket": lsock}
                )
                await asyncio.sleep(1.0)
                continue
            try:
                protocol = self._protocol_factory()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler(
                    {"message": "Error in protocol factory of an aiostack server", "exception": exc, "socket": sock}
                )
                sock.close()
                continue
            Transport(self._stack, sock, protocol, server=self)

    # -- asyncio.Server interface ----------------------------------------------------------------
    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[TcpSocket, ...]:
        if self._sockets is None:
            return ()
        return tuple(self._sockets)

    def close(self) -> None:
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        for sock in sockets:
            sock.close()
        for task in self._accept_tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._accept_tasks.clear()
        self._serving = False
        if self._serving_forever_fut is not None and not self._serving_forever_fut.done():
            self._serving_forever_fut.cancel()
            self._serving_forever_fut = None
        if self._active_count == 0:
            self._wakeup()

    def close_clients(self) -> None:
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        for transport in list(self._clients):
            transport.abort()

    async def start_serving(self) -> None:
        self._start_serving()
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        if self._waiters is None:
            return
        if self._sockets is None and _WAIT_CLOSED_RETURNS_WHEN_CLOSED:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


_WAIT_CLOSED_RETURNS_WHEN_CLOSED = sys.version_info < (3, 12)
"""asyncio 3.11's Server.wait_closed() returns at once after close(); 3.12+ waits for the
server's connections to finish. Follow the interpreter's asyncio, so an application behaves the
same on both stacks."""


async def create_server(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: str | Iterable[str] | None = None,
    port: int | None = None,
    *,
    stack: Stack | None = None,
    backlog: int = 100,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    sock: TcpSocket | None = None,
    start_serving: bool = True,
) -> Server:
    """``loop.create_server`` on ``stack``: listen on ``host`` (None or "" for every address of
    the stack, a dotted quad, or a list of them) and ``port`` (None or 0 picks a free port; read
    it from ``server.sockets[0].getsockname()``), or on the bound ``sock``. Without ``stack``, the
    one running on this loop (:func:`~aiostack.stack.current_stack`)."""
    stack = stack if stack is not None else current_stack()
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        sockets = [sock]
    else:
        port = port or _free_port(stack)
        sockets = []
        try:
            for h in _hosts(host):
                s = stack.socket(_socket.AF_INET, _socket.SOCK_STREAM)
                sockets.append(s)
                if reuse_address:
                    s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                if reuse_port:
                    s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
                s.bind((h, port))
        except BaseException:
            for s in sockets:
                s.close()
            raise
    server = Server(stack, sockets, protocol_factory, backlog)
    if start_serving:
        try:
            server._start_serving()
        except BaseException:
            server.close()
            raise
        await asyncio.sleep(0)
    return server


async def create_connection(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: str | None = None,
    port: int | None = None,
    *,
    stack: Stack | None = None,
    local_addr: tuple[str, int] | None = None,
    sock: TcpSocket | None = None,
) -> tuple[Transport, asyncio.BaseProtocol]:
    """``loop.create_connection`` on ``stack``: connect to ``(host, port)`` (or wrap the
    connected ``sock``) and return ``(transport, protocol)`` once ``connection_made`` has run.
    Connection errors are the socket's (``ConnectionRefusedError``, ``TimeoutError`` …)."""
    loop = asyncio.get_running_loop()
    stack = stack if stack is not None else (sock.stack if sock is not None else current_stack())
    if sock is None:
        if host is None or port is None:
            raise ValueError("host and port was not specified and no sock specified")
        sock = stack.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            if local_addr is not None:
                sock.bind(local_addr)
            await sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
    elif host is not None or port is not None:
        raise ValueError("host/port and sock can not be specified at the same time")
    protocol = protocol_factory()
    waiter: asyncio.Future[None] = loop.create_future()
    transport = Transport(stack, sock, protocol, waiter=waiter)
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    return transport, protocol
