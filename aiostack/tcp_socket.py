"""TCP sockets of the coroutine socket API (``ff_socket(AF_INET, SOCK_STREAM)`` and friends).

Local-state calls (``bind``, ``listen``, ``shutdown``, ``close``, options) are plain methods as in
the ``socket`` module; calls that wait (``connect``, ``accept``, ``send``, ``recv`` …) are
coroutines. Errors are ``OSError`` with the errno a kernel gives (ECONNREFUSED, ECONNRESET,
ETIMEDOUT, EPIPE, EADDRINUSE, ENOTCONN, EISCONN, EINVAL …).
"""

from __future__ import annotations

import dataclasses
import errno
import socket as _socket
import struct
from typing import TYPE_CHECKING

from .addresses import Address, format_address, parse_address
from .tcp.connection import CLOSED, SYN_RECEIVED, SYN_SENT, TIME_WAIT, Connection
from .tcp.layer import Listener
from .tcp.readiness import POLLHUP, READABLE, WRITABLE

if TYPE_CHECKING:
    from .reactor import Reactor
    from .stack import Stack
    from .tcp.config import TcpConfig

_LINGER = struct.Struct("ii")


_NO_LINGER = (0, 0)


class TcpSocket:
    """A TCP socket on an aiostack :class:`~aiostack.stack.Stack`.

    ``__slots__``, and accepted sockets share one snapshot of their listening socket's options
    until an option is set on them: a server holding a million connections holds a million of
    these.
    """

    __slots__ = (
        "__weakref__",
        "_accept_config",
        "_bound",
        "_closed",
        "_config",
        "_config_shared",
        "_conn",
        "_keepalive",
        "_linger",
        "_listener",
        "_reactor",
        "_reuseaddr",
        "_reuseport",
        "_stack",
    )

    family = _socket.AF_INET
    type = _socket.SOCK_STREAM
    proto = _socket.IPPROTO_TCP

    def __init__(self, stack: Stack, conn: Connection | None = None, *, _config: TcpConfig | None = None) -> None:
        if stack.tcp is None:
            raise OSError(errno.EPROTONOSUPPORT, "this stack has no TCP layer")
        self._stack = stack
        # The stack's reactor, held typed (a C field in the compiled build): the data calls kick the
        # reactor and read its clock, and reach the TCP layer (``_reactor.tcp``), without looking
        # up ``stack.reactor`` by name. One field for both: a million idle sockets feel every one.
        self._reactor: Reactor = stack.reactor
        self._conn = conn
        self._listener: Listener | None = None
        self._bound: tuple[int, int] | None = None
        self._closed = False
        # The socket's options. ``_config`` (accept's snapshot of the listening socket's options)
        # is shared with other accepted sockets and copied before the first change (_own_config).
        self._config_shared = _config is not None
        self._config = _config if _config is not None else dataclasses.replace(self._reactor.tcp.config)
        self._accept_config: TcpConfig | None = None
        """A listening socket's snapshot of its options for the sockets it accepts (made by the
        first accept, dropped when an option changes)."""
        self._linger: tuple[int, int] = _NO_LINGER
        self._keepalive = False
        self._reuseaddr = False
        self._reuseport = False
        if conn is not None:
            conn.user = self

    # -- helpers ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor: socket is closed")

    def _now(self) -> float:
        return self._reactor.clock()  # the stack's clock (Stack gives its reactor the same one)

    async def _wait(self, obj: object) -> None:
        reactor = self._reactor
        if not reactor.running:
            raise OSError(errno.ENETDOWN, "the stack is not running")
        await reactor.wait_ready(obj)

    def _connected(self) -> Connection:
        self._check_open()
        if self._conn is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self._conn

    def _own_config(self) -> TcpConfig:
        """The options, about to be changed: a private copy if shared, and no longer the snapshot
        given to sockets accepted from now on."""
        if self._config_shared:
            self._config = dataclasses.replace(self._config)
            self._config_shared = False
        self._accept_config = None
        return self._config

    def _accepted(self, conn: Connection) -> TcpSocket:
        """The socket for a connection taken from the accept queue: the options as they are now
        (one snapshot shared by every socket accepted until they change)."""
        snapshot = self._accept_config
        if snapshot is None:
            snapshot = self._accept_config = dataclasses.replace(self._config)
        sock = TcpSocket(self._stack, conn, _config=snapshot)
        conn.keepalive = conn.keepalive or self._keepalive
        return sock

    def _take_accepted(self) -> TcpSocket | None:
        """The socket of the next connection in the accept queue, or None when it is empty —
        without formatting the peer's address, which a :class:`~aiostack.protocols.Server` never
        reads (it takes the whole burst this way when the reactor reports the listener ready)."""
        self._check_open()
        lst = self._listener
        if lst is None:
            raise OSError(errno.EINVAL, "socket is not listening")
        conn = lst.accept()
        return None if conn is None else self._accepted(conn)

    async def _wait_acceptable(self) -> None:
        self._check_open()
        await self._wait(self._listener)

    # -- local state ------------------------------------------------------------------------
    def bind(self, address: Address) -> None:
        self._check_open()
        if self._bound is not None or self._conn is not None or self._listener is not None:
            raise OSError(errno.EINVAL, "socket is already bound")
        addr, port = parse_address(address, allow_any=True)
        if addr and not any(i.addr == addr for i in self._stack.ip.interfaces):
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        if port and not self._reuseaddr and self._reactor.tcp.port_in_use(port):
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self._bound = (addr, port)

    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self._conn is not None:
            raise OSError(errno.EINVAL, "socket is connected")
        if self._listener is not None:
            self._listener.backlog = max(1, backlog)
            return
        addr, port = self._bound if self._bound is not None else (0, 0)
        if port == 0:
            raise OSError(errno.EINVAL, "bind() a port before listen() (ephemeral listening ports are not supported)")
        self._listener = self._reactor.tcp.listen(addr, port, max(1, backlog), config=self._config)
        self._listener.user = self

    def getsockname(self) -> Address:
        self._check_open()
        if self._conn is not None:
            return format_address(self._conn.local_addr, self._conn.local_port)
        if self._listener is not None:
            return format_address(self._listener.addr, self._listener.port)
        if self._bound is not None:
            return format_address(*self._bound)
        return ("0.0.0.0", 0)

    def getpeername(self) -> Address:
        conn = self._connected()
        if conn.state in (SYN_SENT, CLOSED) and not conn.rcvbuf:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return format_address(conn.remote_addr, conn.remote_port)

    # -- connection setup -------------------------------------------------------------------
    async def connect(self, address: Address) -> None:
        """Active open; returns once established. ECONNREFUSED on a reset, ETIMEDOUT when the SYN
        retries run out, EISCONN when already connected."""
        self._check_open()
        if self._conn is not None:
            raise OSError(errno.EISCONN, "Transport endpoint is already connected")
        if self._listener is not None:
            raise OSError(errno.EINVAL, "socket is listening")
        raddr, rport = parse_address(address, allow_any=False)
        laddr, lport = self._bound if self._bound is not None else (0, 0)
        conn = self._reactor.tcp.connect(raddr, rport, self._now(), laddr=laddr, lport=lport, config=self._config)
        conn.user = self
        conn.keepalive = self._keepalive
        self._conn = conn
        self._reactor.kick()
        while conn.state in (SYN_SENT, SYN_RECEIVED):
            await self._wait(conn)
        if conn.state == CLOSED or conn.error:
            err = conn.error or errno.ECONNREFUSED
            conn.error = 0
            raise OSError(err, errno.errorcode.get(err, "error"))

    async def accept(self) -> tuple[TcpSocket, Address]:
        while True:
            sock = self._take_accepted()
            if sock is not None:
                return sock, sock.getpeername()
            await self._wait_acceptable()

    def accept_nowait(self) -> tuple[TcpSocket, Address]:
        """Non-blocking accept: BlockingIOError when no connection is waiting."""
        sock = self._take_accepted()
        if sock is None:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return sock, sock.getpeername()

    # -- data -------------------------------------------------------------------------------
    async def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue at least one byte of ``data`` (waiting for buffer space); returns how many."""
        conn = self._connected()
        if not data:
            return 0
        while True:
            conn.raise_error()
            n = conn.send(data, self._now())
            if n:
                self._reactor.kick()
                return n
            await self._wait(conn)

    async def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = await self.send(view)
            view = view[n:]

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """Non-blocking send: BlockingIOError when the send buffer is full."""
        conn = self._connected()
        if conn.error:
            conn.raise_error()
        n = conn.send(data, self._now())
        if n:
            self._reactor.kick()
            return n
        if not data:
            return 0
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    async def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; b"" at end of stream."""
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        conn = self._connected()
        while True:
            try:
                data = conn.recv(bufsize, self._now())
            except BlockingIOError:
                if conn.state == CLOSED and not conn.error:
                    return b""
                await self._wait(conn)
                continue
            self._reactor.kick()
            return data

    def recv_nowait(self, bufsize: int) -> bytes:
        conn = self._connected()
        data = conn.recv(bufsize, self._now())
        self._reactor.kick()
        return data

    async def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        n = nbytes or len(view)
        data = await self.recv(n)
        view[: len(data)] = data
        return len(data)

    # -- closing ----------------------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        conn = self._connected()
        if how not in (_socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR):
            raise OSError(errno.EINVAL, "Invalid argument")
        if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
            conn.read_closed = True
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            conn.shutdown_write(self._now())
        self._reactor.tcp.notify(conn)  # readiness changed locally (IN/RDHUP/OUT/HUP): wake waiters
        self._reactor.kick()

    def close(self) -> None:
        """Release the socket; an established connection closes in the background (FIN, or RST
        when unread data remains or SO_LINGER with a zero timeout is set)."""
        if self._closed:
            return
        self._closed = True
        now = self._now()
        if self._listener is not None:
            self._reactor.tcp.close_listener(self._listener, now)
            self._reactor.forget(self._listener)
        conn = self._conn
        if conn is not None:
            if self._linger == (1, 0):
                conn.orphaned = True
                conn.abort(now)
            elif conn.state != CLOSED:
                conn.close(now)
            self._reactor.forget(conn)
            if conn.user is self:
                conn.user = None  # the connection may live on (FIN-WAIT, TIME-WAIT): not this socket
        self._reactor.kick()

    async def wait_closed(self) -> None:
        """Wait until the connection has left every state but CLOSED and TIME-WAIT."""
        conn = self._conn
        while conn is not None and conn.state not in (CLOSED, TIME_WAIT):
            await self._wait(conn)

    # -- options ----------------------------------------------------------------------------
    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        self._check_open()
        cfg = self._own_config()
        conn = self._conn
        if isinstance(value, bytes):
            if level == _socket.SOL_SOCKET and option == _socket.SO_LINGER:
                onoff, seconds = _LINGER.unpack(value)
                self._linger = (1 if onoff else 0, seconds)
                return
            raise OSError(errno.EINVAL, "Invalid argument")
        v = int(value)
        if level == _socket.SOL_SOCKET:
            if option == _socket.SO_REUSEADDR:
                self._reuseaddr = bool(v)
            elif option == _socket.SO_REUSEPORT:
                self._reuseport = bool(v)
            elif option in (_socket.SO_RCVBUF, _socket.SO_SNDBUF):
                if v < 2048:
                    raise OSError(errno.EINVAL, "buffer size too small")
                if option == _socket.SO_RCVBUF:
                    if conn is not None and conn.state != CLOSED and conn.rcvbuf is not None:
                        raise OSError(errno.EISCONN, "SO_RCVBUF must be set before connect or listen")
                    cfg.rcvbuf = v
                else:
                    cfg.sndbuf = v
                    if conn is not None:
                        conn.sndbuf.capacity = v
            elif option == _socket.SO_KEEPALIVE:
                self._keepalive = bool(v)
                if conn is not None:
                    conn.keepalive = bool(v)
                    conn._arm_keepalive(self._now())
            else:
                raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        elif level == _socket.IPPROTO_TCP:
            if option == _socket.TCP_NODELAY:
                cfg.nodelay = bool(v)
                if conn is not None:
                    conn.nodelay = bool(v)
                    conn.output(self._now())
                    self._reactor.kick()
            elif option == _socket.TCP_KEEPIDLE:
                self._positive(v)
                cfg.keepalive_idle = float(v)
            elif option == _socket.TCP_KEEPINTVL:
                self._positive(v)
                cfg.keepalive_interval = float(v)
            elif option == _socket.TCP_KEEPCNT:
                self._positive(v)
                cfg.keepalive_count = v
            elif option == _socket.TCP_MAXSEG:
                if not 88 <= v <= 65495:
                    raise OSError(errno.EINVAL, "Invalid argument")
                if conn is not None:
                    conn.local_mss = min(conn.local_mss, v)
            else:
                raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        else:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    @staticmethod
    def _positive(v: int) -> None:
        if v < 1:
            raise OSError(errno.EINVAL, "Invalid argument")

    def getsockopt(self, level: int, option: int, buflen: int = 0) -> int | bytes:
        self._check_open()
        cfg = self._config
        conn = self._conn
        if level == _socket.SOL_SOCKET:
            if option == _socket.SO_ERROR:
                if conn is None:
                    return 0
                err, conn.error = conn.error, 0
                return err
            if option == _socket.SO_RCVBUF:
                return cfg.rcvbuf
            if option == _socket.SO_SNDBUF:
                return conn.sndbuf.capacity if conn is not None else cfg.sndbuf
            if option == _socket.SO_KEEPALIVE:
                return int(self._keepalive)
            if option == _socket.SO_REUSEADDR:
                return int(self._reuseaddr)
            if option == _socket.SO_REUSEPORT:
                return int(self._reuseport)
            if option == _socket.SO_LINGER:
                return _LINGER.pack(*self._linger)
            if option == _socket.SO_TYPE:
                return _socket.SOCK_STREAM
        elif level == _socket.IPPROTO_TCP:
            if option == _socket.TCP_NODELAY:
                return int(conn.nodelay if conn is not None else cfg.nodelay)
            if option == _socket.TCP_KEEPIDLE:
                return int(cfg.keepalive_idle)
            if option == _socket.TCP_KEEPINTVL:
                return int(cfg.keepalive_interval)
            if option == _socket.TCP_KEEPCNT:
                return cfg.keepalive_count
            if option == _socket.TCP_MAXSEG:
                return conn.snd_mss if conn is not None else 536
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    # -- introspection ----------------------------------------------------------------------
    def poll(self) -> int:
        """This socket's readiness, a ``poll()`` event mask (:mod:`aiostack.tcp.readiness`): the
        connection's own (:meth:`Connection.poll`); a listening socket is readable while a
        connection waits to be accepted; a socket never connected is writable and hung up (what
        Linux reports for its CLOSE state). 0 once closed."""
        if self._closed:
            return 0
        if self._listener is not None:
            return READABLE if self._listener.accept_queue else 0
        if self._conn is None:
            return WRITABLE | POLLHUP
        return self._conn.poll()

    @property
    def connection(self) -> Connection | None:
        return self._conn

    @property
    def listener(self) -> Listener | None:
        return self._listener

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stack(self) -> Stack:
        return self._stack

    async def __aenter__(self) -> TcpSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return "<aiostack TcpSocket closed>"
        if self._listener is not None:
            return f"<aiostack TcpSocket listening {self.getsockname()}>"
        if self._conn is not None:
            return f"<aiostack TcpSocket {self._conn.state.name} {self.getsockname()}>"
        return "<aiostack TcpSocket unconnected>"
