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
low-water mark, calls ``resume_writing()``. Receiving: ``pause_reading()`` stops the transport
taking data out of the TCP receive buffer, so the buffer fills and the advertised window closes —
the peer is flow-controlled by TCP itself; ``resume_reading()`` reads again, which reopens the
window (the connection sends a window update).

**Shape.** A :class:`Transport` is two objects: the ``asyncio.Transport`` the protocol holds (so
``isinstance(transport, asyncio.Transport)`` holds, as aiohttp, uvicorn and asyncio's TLS check)
and its :class:`StreamCore`, which holds the state and does the work — compiled, a ``cdef class``
whose established path calls the socket, the connection and the reactor as C functions. The
reactor watches the core: in the iteration in which the connection reports something it calls
``core.on_ready()``, which reads what is there with ``recv_nowait`` and hands it to the protocol
(so a reply the protocol writes leaves in the same burst). While the write buffer is not empty a
writer task moves it into the TCP send buffer, waiting with :meth:`Reactor.wait_ready`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import logging
import socket as _socket
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .addresses import format_address
from .buffered import feed_buffered, is_buffered
from .reactor import Watcher
from .tcp.connection import CLOSED
from .tcp.readiness import POLLERR, POLLIN, POLLRDHUP
from .tcp_socket import TcpSocket


def current_stack() -> Stack:
    from .stack import current_stack as _current

    return _current()

if TYPE_CHECKING:
    from .reactor import Reactor
    from .stack import Stack
    from .tcp.connection import Connection

__all__ = ["Server", "StreamCore", "Transport", "create_connection", "create_server"]

log = logging.getLogger("aiostack.protocols")

MAX_READ = 256 * 1024
"""Largest chunk handed to ``data_received`` at once (asyncio's ``max_size``)."""
_MAX_READ = MAX_READ  # a C constant in the compiled build (MAX_READ stays importable)
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
_AFTER_DATA = POLLRDHUP | POLLERR
"""What a read that drained the data leaves to report: end of stream (or a closed connection),
an error."""

_EPHEMERAL_FIRST = 32768
_EPHEMERAL_LAST = 60999


class StreamCore(Watcher):
    """The state and the work of one :class:`Transport`: reading into the protocol, writing,
    flow control, closing. The :class:`Transport` the protocol sees is a thin ``asyncio.Transport``
    in front of it (see its docstring for why two objects).

    Compiled, this is a ``cdef class`` (``protocols.pxd``): its fields are C fields, and the
    established path — the reactor's :meth:`on_ready` → ``TcpSocket.recv_nowait`` →
    ``protocol.data_received``, and :meth:`write` → ``TcpSocket.send_nowait`` with the
    high/low-water marks — calls the socket, the connection and the reactor as C functions, as
    uvloop's ``UVStream`` does; only the protocol's own callbacks are Python calls. It is also the
    reactor's :class:`~aiostack.reactor.Watcher` of the connection."""

    __slots__ = (
        "buffer",
        "buffered",
        "closing",
        "conn",
        "conn_lost",
        "eof",
        "high_water",
        "loop",
        "low_water",
        "paused",
        "protocol",
        "protocol_connected",
        "protocol_paused",
        "reactor",
        "reading",
        "server",
        "sock",
        "transport",
        "writer",
    )

    def __init__(
        self, transport: Transport, stack: Stack, sock: TcpSocket, conn: Connection, protocol: asyncio.BaseProtocol,
        server: Server | None,
    ) -> None:
        self.transport: Transport | None = transport
        """The face the protocol holds (dropped once the connection is lost: no cycle kept)."""
        self.loop = asyncio.get_running_loop()
        self.reactor: Reactor = stack.reactor
        self.sock: TcpSocket | None = sock
        self.conn: Connection = conn
        self.protocol: asyncio.BaseProtocol | None = protocol
        self.buffered = is_buffered(protocol)
        self.protocol_connected = False
        # a bytearray while it holds data, or a view of the unsent rest of a bytes write
        self.buffer: bytearray | memoryview | bytes = _EMPTY
        self.closing = False
        self.eof = False
        self.conn_lost = 0
        self.paused = False  # reading paused by pause_reading()
        self.protocol_paused = False  # pause_writing() sent to the protocol
        self.high_water = DEFAULT_HIGH_WATER
        self.low_water = DEFAULT_LOW_WATER
        self.reading = False  # watched by the reactor (between connection_made and EOF/close)
        self.writer: asyncio.Task[None] | None = None
        self.server = server

    # -- start -------------------------------------------------------------------------------
    def start(self, waiter: asyncio.Future[None] | None) -> None:
        if self.conn_lost or self.protocol is None:
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionResetError("connection closed before it was made"))
            return
        self.protocol_connected = True
        try:
            self.protocol.connection_made(self.transport)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.fatal_error(exc, "Fatal error: protocol.connection_made() call failed.")
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            return
        if not self.closing:
            self.reactor.watch(self.conn, self)
            self.reading = True
            self.on_ready()  # data may have arrived before connection_made
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_conn(self) -> None:
        reactor = self.reactor
        if not reactor.running:
            raise OSError(errno.ENETDOWN, "the stack is not running")
        await reactor.wait_ready(self.conn)

    # -- reading ----------------------------------------------------------------------------
    def on_ready(self) -> None:
        """The connection reported something (called by the reactor inside its iteration, so
        a reply the protocol writes leaves in the same burst): hand the protocol what can be
        read — as asyncio's selector transports do from their reader callback. The reactor's
        :class:`~aiostack.reactor.Watcher` hook."""
        if not self.reading or self.paused:
            return
        conn = self.conn
        while self.reading and not self.paused:
            sock = self.sock
            if sock is None:
                return
            mask = conn.poll()
            if not mask & _READ_EVENTS:
                # Nothing to read (a wake for space or a state change): no exception round trip.
                if not self.reactor._running:
                    self.fatal_error(OSError(errno.ENETDOWN, "the stack is not running"),
                                     "Fatal read error on socket transport")
                return
            rb = conn.rcvbuf
            try:
                # As much as there is, up to _MAX_READ, but never a join of large chunks: the
                # protocol copies what it gets into its own buffer (asyncio's StreamReader does),
                # and a second call costs less than copying a coalesced frame once more.
                data = sock.recv_nowait(_MAX_READ if rb is None else rb.read_size(_MAX_READ))
            except BlockingIOError:
                if conn.state != CLOSED:
                    if not self.reactor._running:
                        self.fatal_error(OSError(errno.ENETDOWN, "the stack is not running"),
                                         "Fatal read error on socket transport")
                    return
                data = b""  # closed without a pending error or FIN (the error went to a send)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.fatal_error(exc, "Fatal read error on socket transport")
                return
            protocol = self.protocol
            assert protocol is not None
            if data:
                try:
                    if self.buffered:
                        feed_buffered(protocol, data)  # type: ignore[arg-type]
                    else:
                        protocol.data_received(data)  # type: ignore[attr-defined]
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self.fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
                    return
                if not mask & _AFTER_DATA and (rb is None or not rb.ready_bytes()):
                    # The reads took every byte there was, and no FIN or error waits behind them:
                    # nothing is left to hand over (saves a second poll per wake). Whatever
                    # arrives from now on makes the connection report again, and the reactor
                    # calls this once more.
                    return
                continue
            # End of stream.
            self.stop_reading()
            try:
                keep_open = protocol.eof_received()  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
                return
            if not keep_open:
                self.close()
            return

    def stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.reactor.unwatch(self.conn)

    def pause_reading(self) -> None:
        if self.closing or self.paused:
            return
        self.paused = True
        if self.loop.get_debug():
            log.debug("%r pauses reading", self.transport)

    def resume_reading(self) -> None:
        if self.closing or not self.paused:
            return
        self.paused = False
        if self.reading:
            # What arrived while paused sits in the TCP receive buffer: no new notification
            # may come for it, so look now (soon: not from inside the caller's callback).
            self.loop.call_soon(self.on_ready)
        if self.loop.get_debug():
            log.debug("%r resumes reading", self.transport)

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self.eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self.conn_lost or self.closing:
            if self.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                log.warning("socket.send() raised exception.")
            self.conn_lost += 1
            return
        if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
            data = data.cast("B")
        if not self.buffer:
            sock = self.sock
            assert sock is not None
            try:
                n = sock.send_nowait(data)
            except BlockingIOError:
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.fatal_error(exc, "Fatal write error on socket transport")
                return
            if n == len(data):
                return
            rest = memoryview(data)[n:]
            # A bytes object cannot change: its rest is kept as a view of it (no copy; a bulk
            # writer's chunk is mostly rest) until more is written behind it.
            self.buffer = rest if type(data) is bytes else bytearray(rest)
            self.writer = self.loop.create_task(
                self.write_loop(), name=f"aiostack writer {self.transport.get_extra_info('peername')}"  # type: ignore[union-attr]
            )
        else:
            buf = self.buffer
            if type(buf) is not bytearray:
                self.buffer = buf = bytearray(buf)
            buf.extend(data)
        self.maybe_pause_protocol()

    async def write_loop(self) -> None:
        # Try first, then wait: a reactor iteration may have freed space before this task ran,
        # and its notification would be lost on a waiter registered only afterwards.
        try:
            while self.buffer:
                sock = self.sock
                if self.conn_lost or sock is None:
                    return
                try:
                    with memoryview(self.buffer) as view:
                        n = sock.send_nowait(view)
                except BlockingIOError:
                    n = 0
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self.fatal_error(exc, "Fatal write error on socket transport")
                    return
                if n:
                    buf = self.buffer
                    if type(buf) is bytearray:
                        del buf[:n]
                    else:
                        self.buffer = buf[n:]  # the view of a bytes rest (write)
                    if not self.buffer:
                        self.buffer = _EMPTY
                    self.maybe_resume_protocol()
                    if not self.buffer:
                        break
                try:
                    await self.wait_conn()
                except OSError as exc:
                    self.fatal_error(exc, "Fatal write error on socket transport")
                    return
        finally:
            if self.writer is asyncio.current_task():
                self.writer = None
        if self.conn_lost:
            return
        if self.closing:
            self.conn_lost += 1
            self.call_connection_lost(None)
        elif self.eof and self.sock is not None:
            self.shutdown_write()

    def shutdown_write(self) -> None:
        assert self.sock is not None
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError as exc:
            self.fatal_error(exc, "Fatal error on shutdown(SHUT_WR)")

    def write_eof(self) -> None:
        if self.closing or self.eof:
            return
        self.eof = True
        if not self.buffer and self.sock is not None:
            self.shutdown_write()

    # -- flow control (asyncio.transports._FlowControlMixin) ---------------------------------
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self.high_water = high
        self.low_water = low
        self.maybe_pause_protocol()

    def maybe_pause_protocol(self) -> None:
        size = len(self.buffer)
        if self.protocol_paused or not size:
            return
        if size <= self.high_water and not self.memory_pressure():
            return
        self.protocol_paused = True
        self.call_flow_control("pause_writing")

    def maybe_resume_protocol(self) -> None:
        if not self.protocol_paused:
            return
        size = len(self.buffer)
        if size <= self.low_water and not (size and self.memory_pressure()):
            self.protocol_paused = False
            self.call_flow_control("resume_writing")

    def memory_pressure(self) -> bool:
        """Whether the reactor's TCP send bytes are at their total (tcp/memory.py): then the
        transport pauses the protocol as soon as it holds anything, so thousands of stalled
        writers each keep one write's worth here, not a high-water mark's."""
        sock = self.sock
        mem = getattr(sock._reactor.tcp, "memory", None) if sock is not None else None
        if mem is None or mem.snd_used < mem.sndbuf_total:
            return False
        mem.stats["transport_paused_early"] += 1
        return True

    def call_flow_control(self, name: str) -> None:
        """Call ``protocol.pause_writing``/``resume_writing``; a failure goes to the loop's
        exception handler, as asyncio's own transports report it."""
        try:
            getattr(self.protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.loop.call_exception_handler(
                {
                    "message": f"protocol.{name}() failed",
                    "exception": exc,
                    "transport": self.transport,
                    "protocol": self.protocol,
                }
            )

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.stop_reading()
        if not self.buffer:
            self.conn_lost += 1
            self.loop.call_soon(self.call_connection_lost, None)

    def fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self.loop.get_debug():
                log.debug("%r: %s", self.transport, message, exc_info=True)
        elif not isinstance(exc, asyncio.CancelledError):
            self.loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self.transport, "protocol": self.protocol}
            )
        self.force_close(exc)

    def force_close(self, exc: BaseException | None) -> None:
        if self.conn_lost:
            return
        self.buffer = _EMPTY
        task, self.writer = self.writer, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        if not self.closing:
            self.closing = True
            self.stop_reading()
        self.conn_lost += 1
        self.loop.call_soon(self.call_connection_lost, exc)

    def call_connection_lost(self, exc: BaseException | None) -> None:
        if self.sock is None:
            return
        try:
            if self.protocol_connected and self.protocol is not None:
                self.protocol.connection_lost(exc)
        finally:
            self.stop_reading()
            task, self.writer = self.writer, None
            if task is not None and task is not asyncio.current_task() and not task.done():
                task.cancel()
            self.sock.close()
            self.sock = None
            self.protocol = None
            server, self.server = self.server, None
            transport, self.transport = self.transport, None  # the core and its face: no cycle left
            if server is not None:
                server._detach(transport)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol
        self.buffered = is_buffered(protocol)
        self.protocol_connected = True


class Transport(asyncio.Transport):
    """An asyncio transport over an aiostack :class:`~aiostack.tcp_socket.TcpSocket` that is
    already connected. Created by :func:`create_connection` and by a :class:`Server`.

    Two objects: this one, an ``asyncio.Transport`` (applications and libraries — aiohttp,
    uvicorn, asyncio's TLS — check ``isinstance(transport, asyncio.Transport)``, a Python class
    that a compiled ``cdef class`` cannot extend), and its :class:`StreamCore`, which holds the
    state and does the work; every method here is one call into the core. (uvloop's transports
    are ``cdef class``\\ es and fail that ``isinstance``; this shape keeps it true.)

    Small, as a server may hold a million of them: ``__slots__``; the ``socket``, ``sockname``
    and ``peername`` extras are computed when asked for, not stored; the write buffer exists only
    while it holds something."""

    __slots__ = ("__weakref__", "_core")

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
        # asyncio turns Nagle off on every TCP transport (base_events._set_nodelay); so do we —
        # on the connection itself: an accepted TcpSocket shares its listener's option set, and
        # setsockopt would change the default of every later connection of that listener too.
        conn.nodelay = True
        core = self._core = StreamCore(self, stack, sock, conn, protocol, server)
        if server is not None:
            server._attach(self)
        core.loop.call_soon(core.start, waiter)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        core = getattr(self, "_core", None)
        sock = core.sock if core is not None else None
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            with contextlib.suppress(Exception):  # the loop may be gone already
                sock.close()

    def __repr__(self) -> str:
        core = self._core
        info = [self.__class__.__name__]
        if core.sock is None:
            info.append("closed")
        elif core.closing:
            info.append("closing")
        peer = self.get_extra_info("peername")
        if peer:
            info.append(f"peer={peer[0]}:{peer[1]}")
        info.append(f"state={core.conn.state.name}")
        if core.buffer:
            info.append(f"buffered={len(core.buffer)}")
        return "<{}>".format(" ".join(info))

    # -- reading ----------------------------------------------------------------------------
    def pause_reading(self) -> None:
        self._core.pause_reading()

    def resume_reading(self) -> None:
        self._core.resume_reading()

    def is_reading(self) -> bool:
        core = _core_of(self)
        return not core.paused and not core.closing

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        _core_of(self).write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        _core_of(self).write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._core.write_eof()

    # -- flow control ---------------------------------------------------------------------------
    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the connection's TCP send buffer (see the module
        docstring)."""
        return len(_core_of(self).buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        core = self._core
        return (core.low_water, core.high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._core.set_write_buffer_limits(high, low)

    # -- closing ----------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return _core_of(self).closing

    def close(self) -> None:
        """Close after the buffered data is handed to TCP (which then sends it and a FIN);
        ``connection_lost(None)`` follows."""
        self._core.close()

    def abort(self) -> None:
        """Close at once, dropping the transport's buffer (as asyncio, the socket is then closed
        normally: data already in the TCP send buffer still goes out, unread data means RST)."""
        self._core.force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        """asyncio's private hook, called by its TLS layer (``sslproto``) on a fatal error."""
        self._core.force_close(exc)

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        """The loop (asyncio's transports have it as ``_loop``, and some of asyncio reads it)."""
        return self._core.loop  # type: ignore[no-any-return]

    # -- protocol and extras ------------------------------------------------------------------
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._core.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._core.protocol  # type: ignore[no-any-return]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """As asyncio's: ``socket`` (the :class:`~aiostack.tcp_socket.TcpSocket`), ``sockname``
        and ``peername`` (address tuples, still given after the close, as asyncio's are), plus any
        extras passed in. The socket's are read from the connection when asked for rather than
        kept in a dict per transport."""
        value = self._extra.get(name, _MISSING)
        if value is not _MISSING:
            return value
        conn = self._core.conn
        if name == "peername":
            if conn.rcvbuf is None:
                return None  # never synchronized (as getpeername's ENOTCONN)
            return format_address(conn.remote_addr, conn.remote_port)
        if name == "sockname":
            return format_address(conn.local_addr, conn.local_port)
        if name == "socket":
            return conn.user
        return default


def _core_of(transport: Transport) -> StreamCore:
    """The transport's core, typed: in the compiled build the face's calls into it are C calls
    (``transport._core.write(data)`` would look ``write`` up by name)."""
    return transport._core  # type: ignore[no-any-return]


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
        self._acceptors: list[_Acceptor] = []

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
            self._watch(_Acceptor(self, sock))

    def _watch(self, acceptor: _Acceptor) -> None:
        lsock = acceptor.lsock
        lsock._reactor.watch(lsock._listener, acceptor)
        self._acceptors.append(acceptor)

    def _accept_ready(self, lsock: TcpSocket) -> None:
        """Accept every connection waiting on ``lsock``: called by the reactor, in the iteration
        in which the listener reports one (as uvloop accepts in its listen callback), so a
        connection costs no task wake-up of an accept loop."""
        while self._sockets is not None:
            try:
                # a burst of connections without a coroutine (or a formatted address) each
                sock = lsock._take_accepted()
                if sock is None:
                    return
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.ENETDOWN, errno.EINVAL):
                    return  # closed, or the stack stopped
                self._loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": exc, "socket": lsock}
                )
                # as asyncio's servers do: stop accepting on this socket for a second
                for acceptor in self._acceptors:
                    if acceptor.lsock is lsock:
                        self._acceptors.remove(acceptor)
                        lsock._reactor.unwatch(lsock._listener)
                        self._loop.call_later(1.0, self._resume_accepting, acceptor)
                        break
                return
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

    def _resume_accepting(self, acceptor: _Acceptor) -> None:
        if self._sockets is not None:
            self._watch(acceptor)
            acceptor.on_ready()

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
        for acceptor in self._acceptors:
            acceptor.lsock._reactor.unwatch(acceptor.lsock._listener)
        self._acceptors.clear()
        for sock in sockets:
            sock.close()
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


class _Acceptor(Watcher):
    """The reactor's :class:`~aiostack.reactor.Watcher` of a server's listening socket: takes
    the connections waiting there (:meth:`Server._accept_ready`) in the context the server
    started serving in (as an event loop's reader callback runs in the context it was added
    in)."""

    __slots__ = ("context", "lsock", "server")

    def __init__(self, server: Server, lsock: TcpSocket) -> None:
        self.server = server
        self.lsock = lsock
        self.context = contextvars.copy_context()

    def on_ready(self) -> None:
        self.context.run(self.server._accept_ready, self.lsock)


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
