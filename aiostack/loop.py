"""aiostack's asyncio event loop: uvloop, with the network calls that name aiostack served by it.

``aiostack.new_event_loop(options)``, ``aiostack.EventLoopPolicy(options)`` and
``aiostack.run(main, options=...)`` are shaped like uvloop's. The loop is a :class:`uvloop.Loop`
(``isinstance(loop, uvloop.Loop)`` holds); on the first call that needs aiostack it builds the
:class:`~aiostack.stack.Stack` the standard options describe (:mod:`aiostack.config`), starts its
reactor on itself and opens its control socket (``aiostack stat``). The stack is closed with the
loop.

**Which stack serves a call** (documented in the README, "Run an existing application"):

- ``create_server`` (so ``asyncio.start_server``): a listen on aiostack's address or on a
  wildcard (``None``, ``""``, ``0.0.0.0``, ``::``) goes to aiostack; any other address (loopback,
  a kernel interface's), ``family=AF_INET6``, or a kernel ``sock=`` stays on the kernel.
- ``create_connection`` (so ``asyncio.open_connection``): a destination aiostack routes — inside
  its subnet, or anything but loopback when it has a gateway — goes through aiostack; a host
  name is resolved by the kernel's resolver (``loop.getaddrinfo``) first and goes to aiostack
  when every IPv4 address it gives is routed there.
- ``create_datagram_endpoint``: a ``local_addr`` that is aiostack's address or a wildcard, or
  a ``remote_addr`` aiostack routes, goes to aiostack; with neither the kernel serves it.
- ``sock_*`` on a socket the loop handed out (a server's ``sockets``, a transport's
  ``get_extra_info("socket")``), ``create_connection(sock=)``/``create_server(sock=)`` with an
  aiostack socket: aiostack. ``sock_connect`` of a new kernel TCP socket to a destination
  aiostack routes connects an aiostack socket instead, which stands in for the kernel one from
  then on (its ``sock_*`` calls, and ``create_connection(sock=)`` which then closes the unused
  kernel socket) — what aiohttp's client does (``aiohappyeyeballs``: a socket, ``sock_connect``,
  ``create_connection(sock=)``). ``start_tls`` and ``sendfile`` on an aiostack transport: aiostack
  (asyncio's TLS layer, :class:`asyncio.sslproto.SSLProtocol`, over the aiostack transport;
  ``sendfile`` by reading the file and writing it, with flow control).
- everything else — Unix sockets, pipes, subprocesses, files, signals, DNS, other transports —
  is uvloop on the kernel, unchanged.

Errors are the ``OSError`` subclasses asyncio's own loop raises (``ConnectionRefusedError``,
``TimeoutError``, ``OSError(EADDRINUSE)`` …, ``ssl.SSLCertVerificationError`` for a
certificate that does not verify).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shlex
import socket as _socket
import ssl as _ssl
import threading
import weakref
from asyncio import sslproto
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import uvloop

from . import protocols
from .config import ConfigError, Options, options_from_mapping, parse_options
from .datagram import DatagramTransport
from .sendfile import send_file, sock_send_file
from .stack import Stack
from .tcp_socket import TcpSocket
from .udp_socket import UdpSocket

__all__ = [
    "EventLoopPolicy",
    "Loop",
    "StackStarter",
    "configure",
    "new_event_loop",
    "run",
]

T = TypeVar("T")

StackStarter = Callable[[Options], Awaitable[tuple[Stack, Callable[[], None]]]]
"""Builds and starts a loop's stack on the running loop: returns the started stack and what
closes it (with its control socket). The default builds it from the options
(:func:`start_from_options`); a reactor of several builds it on its own queue
(:mod:`aiostack.launcher`)."""

ENV_ARGS = "AIOSTACK_ARGS"
"""Standard options for loops made without any — ``uvicorn --loop aiostack:new_event_loop`` (uvicorn
calls a ``module:function`` given to ``--loop`` as its loop factory): a command line, e.g.
``--driver tap --iface aiostack0 --addr 10.77.0.2/24``."""

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})

_configured: tuple[Options, StackStarter | None] | None = None


def configure(options: Options, starter: StackStarter | None = None) -> None:
    """Make ``options`` (and ``starter``) what loops made without options use — what ``aiostack
    run`` does before it runs the program, so every loop the program makes is configured."""
    global _configured
    _configured = (options, starter)


def default_options() -> tuple[Options, StackStarter | None]:
    """What :func:`configure` set, else the options in ``$AIOSTACK_ARGS``, else the defaults."""
    if _configured is not None:
        return _configured
    args = os.environ.get(ENV_ARGS)
    if not args:
        return options_from_mapping({}), None
    try:
        return parse_options(shlex.split(args)), None
    except SystemExit as exc:  # argparse has printed the reason
        raise ConfigError(f"${ENV_ARGS}: bad options {args!r}") from exc


async def start_from_options(options: Options) -> tuple[Stack, Callable[[], None]]:
    """The default :data:`StackStarter`: the device the options name, a stack on it, started,
    with its control socket."""
    from .networks import start_control

    stack = Stack.from_options(options)
    try:
        await stack.start()
        control = await start_control(stack, options)
    except BaseException:
        stack.close()
        raise

    def close() -> None:
        if control is not None:
            control.close()
        stack.close()

    return stack, close


def _is_ours(sock: object) -> bool:
    return isinstance(sock, (TcpSocket, UdpSocket))


def _is_plain_tcp(sock: object) -> bool:
    return (isinstance(sock, _socket.socket) and sock.family == _socket.AF_INET
            and sock.type == _socket.SOCK_STREAM)


def _ssl_context(ssl: Any, server_side: bool, server_hostname: str | None) -> _ssl.SSLContext:
    """``ssl=True`` means a default context, as asyncio's ``_create_transport_context``."""
    if isinstance(ssl, _ssl.SSLContext):
        return ssl
    if server_side:
        raise ValueError("Server side SSL needs a valid SSLContext")
    ctx = _ssl.create_default_context()
    if not server_hostname:
        ctx.check_hostname = False
    return ctx


class Loop(uvloop.Loop):
    """A uvloop loop whose network calls go through aiostack when they name it (see the module
    documentation for the rule). ``options``: the standard options (default: :func:`configure`'s,
    else ``$AIOSTACK_ARGS``, else the built-in defaults)."""

    def __init__(self, options: Options | None = None, *, starter: StackStarter | None = None) -> None:
        super().__init__()
        if options is None:
            options, default_starter = default_options()
            starter = starter or default_starter
        self.aiostack_options = options
        self._aiostack_starter: StackStarter = starter or start_from_options
        self._aiostack: Stack | None = None
        self._aiostack_close: Callable[[], None] | None = None
        self._aiostack_starting: asyncio.Future[Stack] | None = None
        self._aiostack_counts: Counter[str] = Counter()
        self._aiostack_standins: weakref.WeakKeyDictionary[_socket.socket, tuple[TcpSocket, weakref.finalize]] = (
            weakref.WeakKeyDictionary())
        """Kernel sockets whose ``sock_connect`` went through aiostack → the socket that did (and
        the finalizer that closes it if the kernel socket is dropped without being used)."""
        net = options.addr.network
        self._aiostack_net = net
        self._aiostack_addr = str(options.addr.ip)
        self._aiostack_default_route = options.gateway is not None

    # -- the stack ------------------------------------------------------------------------------
    @property
    def aiostack(self) -> Stack | None:
        """The running stack, or None before the first call that needed it."""
        return self._aiostack

    async def aiostack_stack(self) -> Stack:
        """The stack, built and started on this loop at the first call."""
        if self._aiostack is not None:
            return self._aiostack
        if self._aiostack_starting is None:
            self._aiostack_starting = self.create_task(self._start_aiostack())
        fut = self._aiostack_starting
        try:
            return await asyncio.shield(fut)
        finally:
            if fut.done() and (fut.cancelled() or fut.exception() is not None):
                self._aiostack_starting = None  # let a later call try again

    async def _start_aiostack(self) -> Stack:
        stack, close = await self._aiostack_starter(self.aiostack_options)
        self._aiostack, self._aiostack_close = stack, close
        stack.export("loop", lambda: dict(self._aiostack_counts))
        return stack

    def close(self) -> None:
        if not self.is_running() and not self.is_closed():
            close, self._aiostack_close = self._aiostack_close, None
            self._aiostack = None
            if close is not None:
                close()
        super().close()

    def _standin(self, sock: Any) -> Any:
        """``sock``, or the aiostack socket standing in for it (see ``sock_connect``)."""
        if isinstance(sock, _socket.socket):
            entry = self._aiostack_standins.get(sock)
            if entry is not None:
                return entry[0]
        return sock

    def _take_standin(self, sock: Any) -> Any:
        """For ``create_connection(sock=)``: the stand-in, the kernel socket closed (it is owned
        by the transport now, and was never connected)."""
        if isinstance(sock, _socket.socket):
            entry = self._aiostack_standins.pop(sock, None)
            if entry is not None:
                standin, finalizer = entry
                finalizer.detach()  # the transport owns it now
                sock.close()
                return standin
        return sock

    # -- the rule ---------------------------------------------------------------------------------
    def _routes(self, ip: str) -> bool:
        """Whether aiostack routes ``ip`` (a dotted quad): its subnet, or — with a gateway —
        anything but loopback and the unspecified address."""
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            return False
        if addr in self._aiostack_net:
            return True
        return self._aiostack_default_route and not (addr.is_loopback or addr.is_unspecified)

    def _listens_here(self, host: str | Iterable[str] | None) -> bool:
        hosts = [host] if host is None or isinstance(host, str) else list(host)
        if not hosts:
            hosts = [None]
        ours = [h is None or h in _WILDCARDS or h == self._aiostack_addr for h in hosts]
        if all(ours):
            return True
        if any(ours):
            raise ValueError(f"create_server: {hosts} mixes aiostack's addresses with the kernel's; "
                             "make one server per stack")
        return False

    async def _resolve_here(self, host: str, port: Any) -> list[str] | None:
        """The IPv4 addresses to connect to through aiostack, or None for the kernel."""
        try:
            ipaddress.ip_address(host)
            return [host] if self._routes(host) else None
        except ValueError:
            pass
        if host == "localhost" or host.endswith(".localhost"):
            return None
        try:
            infos = await self.getaddrinfo(host, port, family=_socket.AF_INET, type=_socket.SOCK_STREAM)
        except OSError:
            return None  # the kernel's path will say why
        addrs = list(dict.fromkeys(info[4][0] for info in infos))
        if addrs and all(self._routes(a) for a in addrs):
            return addrs
        return None

    # -- TCP ------------------------------------------------------------------------------------
    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Iterable[str] | None = None,
        port: int | None = None,
        *,
        family: int = _socket.AF_UNSPEC,
        flags: int = _socket.AI_PASSIVE,
        sock: Any = None,
        backlog: int = 100,
        ssl: _ssl.SSLContext | None = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        **kwargs: Any,
    ) -> asyncio.AbstractServer:
        """``loop.create_server``: on aiostack for a listen on its address or a wildcard (or an
        aiostack ``sock``), on the kernel otherwise."""
        if sock is not None:
            here = _is_ours(sock)
        else:
            here = family in (_socket.AF_UNSPEC, _socket.AF_INET) and self._listens_here(host)
        if not here:
            return await super().create_server(  # type: ignore[no-any-return]
                protocol_factory, host, port, family=family, flags=flags, sock=sock, backlog=backlog, ssl=ssl,
                reuse_address=reuse_address, reuse_port=reuse_port, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving, **kwargs,
            )
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError(f"ssl argument must be an SSLContext or None, got {ssl!r}")
        if ssl is None and (ssl_handshake_timeout is not None or ssl_shutdown_timeout is not None):
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        stack = await self.aiostack_stack()
        counts = self._aiostack_counts

        if ssl is None:
            def factory() -> asyncio.BaseProtocol:
                counts["accepted"] += 1
                return protocol_factory()
        else:
            def factory() -> asyncio.BaseProtocol:
                counts["accepted"] += 1
                counts["tls_accepted"] += 1
                waiter = self.create_future()
                waiter.add_done_callback(_consume)  # a failed handshake closes that connection only
                return sslproto.SSLProtocol(
                    self, protocol_factory(), ssl, waiter, server_side=True,
                    ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout,
                )

        hosts = None if sock is not None or host in (None, "::") else host
        if isinstance(hosts, list | tuple):
            hosts = [None if h == "::" else h for h in hosts]
            hosts = None if None in hosts else hosts
        server = await protocols.create_server(
            factory, hosts, None if sock is not None else port, stack=stack, backlog=backlog,
            reuse_address=reuse_address, reuse_port=reuse_port, sock=sock, start_serving=start_serving,
        )
        counts["servers"] += 1
        return server

    async def create_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        ssl: _ssl.SSLContext | bool | None = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: Any = None,
        local_addr: tuple[str, int] | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """``loop.create_connection``: through aiostack to a destination it routes (or over an
        aiostack ``sock``), through the kernel otherwise."""
        sock = self._take_standin(sock)
        addrs: list[str] | None = None
        if sock is None and host is not None and family in (0, _socket.AF_INET):
            addrs = await self._resolve_here(host, port)
        if addrs is None and not _is_ours(sock):
            return await super().create_connection(  # type: ignore[no-any-return]
                protocol_factory, host, port, ssl=ssl, family=family, proto=proto, flags=flags, sock=sock,
                local_addr=local_addr, server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout, **kwargs,
            )
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if not ssl and (ssl_handshake_timeout is not None or ssl_shutdown_timeout is not None):
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl and server_hostname is None:
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        stack = await self.aiostack_stack()
        self._aiostack_counts["connected"] += 1
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            targets: list[str | None] = [None]
        else:
            assert addrs is not None
            targets = list(addrs)
        errors: list[OSError] = []
        for ip in targets:
            try:
                if not ssl:
                    return await protocols.create_connection(  # type: ignore[return-value]
                        protocol_factory, ip, None if ip is None else port, stack=stack, local_addr=local_addr,
                        sock=sock,
                    )
                return await self._connect_tls(
                    protocol_factory, ip, port, stack, sock, local_addr,
                    _ssl_context(ssl, False, server_hostname), server_hostname,
                    ssl_handshake_timeout, ssl_shutdown_timeout,
                )
            except OSError as exc:
                if ip is None or len(targets) == 1:
                    raise
                errors.append(exc)
        if len({str(e) for e in errors}) == 1:
            raise errors[0]
        raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")

    async def _connect_tls(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ip: str | None,
        port: int | None,
        stack: Stack,
        sock: Any,
        local_addr: tuple[str, int] | None,
        context: _ssl.SSLContext,
        server_hostname: str | None,
        handshake_timeout: float | None,
        shutdown_timeout: float | None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        app_protocol = protocol_factory()
        waiter = self.create_future()
        ssl_protocol = sslproto.SSLProtocol(
            self, app_protocol, context, waiter, server_side=False, server_hostname=server_hostname,
            ssl_handshake_timeout=handshake_timeout, ssl_shutdown_timeout=shutdown_timeout,
        )
        transport, _ = await protocols.create_connection(
            lambda: ssl_protocol, ip, None if ip is None else port, stack=stack, local_addr=local_addr, sock=sock,
        )
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        self._aiostack_counts["tls_connected"] += 1
        return ssl_protocol._get_app_transport(), app_protocol

    async def start_tls(  # type: ignore[override]
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: _ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """``loop.start_tls`` (so ``StreamWriter.start_tls``): upgrade an existing connection to
        TLS. On an aiostack transport, asyncio's ``SSLProtocol`` is layered on it as asyncio's own
        loop does; other transports go to uvloop."""
        if not isinstance(transport, protocols.Transport):
            return await super().start_tls(  # type: ignore[no-any-return]
                transport, protocol, sslcontext, server_side=server_side, server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        if not isinstance(sslcontext, _ssl.SSLContext):
            raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        waiter = self.create_future()
        ssl_protocol = sslproto.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=False,
        )
        # Pause early so that "ssl_protocol.data_received()" doesn't have a chance to get
        # called before "ssl_protocol.connection_made()" (as asyncio's start_tls does).
        transport.pause_reading()
        transport.set_protocol(ssl_protocol)
        made = self.call_soon(ssl_protocol.connection_made, transport)
        resumed = self.call_soon(transport.resume_reading)
        try:
            await waiter
        except BaseException:
            transport.close()
            made.cancel()
            resumed.cancel()
            raise
        self._aiostack_counts["tls_upgraded"] += 1
        return ssl_protocol._get_app_transport()  # type: ignore[no-any-return]

    async def sendfile(  # type: ignore[override]
        self,
        transport: asyncio.WriteTransport,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """``loop.sendfile``: on an aiostack transport (or TLS over one) the file is read and
        written in blocks, waiting while the transport's buffer is above its high-water mark (what
        asyncio does when ``os.sendfile`` cannot be used); other transports go to uvloop."""
        if not self._owns_transport(transport):
            return await super().sendfile(transport, file, offset, count, fallback=fallback)  # type: ignore[no-any-return]
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be a non-negative integer (got {offset!r})")
        if count is not None and (not isinstance(count, int) or count <= 0):
            raise ValueError(f"count must be a positive integer (got {count!r})")
        if not fallback:
            raise asyncio.SendfileNotAvailableError("sendfile is not available on aiostack transports")
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        return await send_file(self, transport, file, offset, count)

    def _owns_transport(self, transport: object) -> bool:
        if isinstance(transport, protocols.Transport):
            return True
        if isinstance(transport, sslproto._SSLProtocolTransport):
            raw = getattr(transport._ssl_protocol, "_transport", None)
            return isinstance(raw, protocols.Transport)
        return False

    # -- UDP ------------------------------------------------------------------------------------
    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.DatagramProtocol],
        local_addr: tuple[str, int] | None = None,
        remote_addr: tuple[str, int] | None = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: Any = None,
        **kwargs: Any,
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        """``loop.create_datagram_endpoint``: on aiostack when ``local_addr`` is its address or a
        wildcard, or ``remote_addr`` is a destination it routes (or ``sock`` is an aiostack
        socket); on the kernel otherwise."""
        here = _is_ours(sock)
        remote_ip: str | None = None
        if sock is None and family in (0, _socket.AF_INET):
            if remote_addr is not None:
                ips = await self._resolve_here(remote_addr[0], remote_addr[1])
                remote_ip = ips[0] if ips else None
                here = remote_ip is not None and (local_addr is None or self._listens_here(local_addr[0]))
            elif local_addr is not None and not isinstance(local_addr, str):
                here = self._listens_here(local_addr[0])
        if not here:
            return await super().create_datagram_endpoint(  # type: ignore[no-any-return]
                protocol_factory, local_addr, remote_addr, family=family, proto=proto, flags=flags,
                reuse_port=reuse_port, allow_broadcast=allow_broadcast, sock=sock, **kwargs,
            )
        stack = await self.aiostack_stack()
        if sock is None:
            sock = stack.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
            try:
                if allow_broadcast:
                    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_BROADCAST, 1)
                if local_addr is not None:
                    host = local_addr[0]
                    sock.bind(("0.0.0.0" if host in _WILDCARDS else host, local_addr[1]))
                if remote_addr is not None:
                    assert remote_ip is not None
                    sock.connect((remote_ip, remote_addr[1]))
                elif local_addr is None:
                    sock.bind(("0.0.0.0", 0))
            except BaseException:
                sock.close()
                raise
        elif sock.endpoint is None:
            sock.bind(("0.0.0.0", 0))
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = DatagramTransport(sock, protocol, waiter=waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        self._aiostack_counts["datagram_endpoints"] += 1
        return transport, protocol

    # -- sock_* on aiostack sockets -------------------------------------------------------------
    async def sock_recv(self, sock: Any, nbytes: int) -> bytes:  # type: ignore[override]
        sock = self._standin(sock)
        if _is_ours(sock):
            return await sock.recv(nbytes)  # type: ignore[no-any-return]
        return await super().sock_recv(sock, nbytes)  # type: ignore[no-any-return]

    async def sock_recv_into(self, sock: Any, buf: Any) -> int:  # type: ignore[override]
        sock = self._standin(sock)
        if isinstance(sock, TcpSocket):
            return await sock.recv_into(buf)
        if isinstance(sock, UdpSocket):
            view = memoryview(buf).cast("B")
            data = await sock.recv(len(view))
            view[: len(data)] = data
            return len(data)
        return await super().sock_recv_into(sock, buf)  # type: ignore[no-any-return]

    async def sock_recvfrom(self, sock: Any, bufsize: int) -> tuple[bytes, Any]:  # type: ignore[override]
        sock = self._standin(sock)
        if isinstance(sock, UdpSocket):
            return await sock.recvfrom(bufsize)
        if isinstance(sock, TcpSocket):
            return await sock.recv(bufsize), None
        return await super().sock_recvfrom(sock, bufsize)  # type: ignore[no-any-return]

    async def sock_recvfrom_into(self, sock: Any, buf: Any, nbytes: int = 0) -> tuple[int, Any]:  # type: ignore[override]
        sock = self._standin(sock)
        if _is_ours(sock):
            view = memoryview(buf).cast("B")
            data, addr = await self.sock_recvfrom(sock, nbytes or len(view))
            view[: len(data)] = data
            return len(data), addr
        return await super().sock_recvfrom_into(sock, buf, nbytes)  # type: ignore[no-any-return]

    async def sock_sendall(self, sock: Any, data: Any) -> None:  # type: ignore[override]
        sock = self._standin(sock)
        if isinstance(sock, TcpSocket):
            await sock.sendall(data)
        elif isinstance(sock, UdpSocket):
            await sock.send(data)
        else:
            await super().sock_sendall(sock, data)

    async def sock_sendto(self, sock: Any, data: Any, address: Any) -> int:  # type: ignore[override]
        sock = self._standin(sock)
        if isinstance(sock, UdpSocket):
            return await sock.sendto(data, address)
        return await super().sock_sendto(sock, data, address)  # type: ignore[no-any-return]

    async def sock_connect(self, sock: Any, address: Any) -> None:  # type: ignore[override]
        if isinstance(sock, TcpSocket):
            await sock.connect(address)
        elif isinstance(sock, UdpSocket):
            sock.connect(address)
        elif (_is_plain_tcp(sock) and sock not in self._aiostack_standins and isinstance(address, tuple)
              and self._routes(address[0])):
            stack = await self.aiostack_stack()
            standin = stack.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            try:
                await standin.connect(address[:2])
            except BaseException:
                standin.close()
                raise
            # dropped (or closed and dropped) without create_connection(sock=): close ours too
            self._aiostack_standins[sock] = (standin, weakref.finalize(sock, standin.close))
            self._aiostack_counts["stand_ins"] += 1
        else:
            await super().sock_connect(sock, address)

    async def sock_accept(self, sock: Any) -> tuple[Any, Any]:  # type: ignore[override]
        sock = self._standin(sock)
        if isinstance(sock, TcpSocket):
            return await sock.accept()
        return await super().sock_accept(sock)  # type: ignore[no-any-return]

    async def sock_sendfile(  # type: ignore[override]
        self, sock: Any, file: Any, offset: int = 0, count: int | None = None, *, fallback: bool = True
    ) -> int:
        if not isinstance(sock, TcpSocket):
            return await super().sock_sendfile(sock, file, offset, count, fallback=fallback)  # type: ignore[no-any-return]
        if not fallback:
            raise asyncio.SendfileNotAvailableError("sendfile is not available on aiostack sockets")
        return await sock_send_file(self, sock, file, offset, count)


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


# -- the uvloop-shaped entry points ------------------------------------------------------------------
def new_event_loop(options: Options | None = None, *, starter: StackStarter | None = None) -> Loop:
    """A new aiostack :class:`Loop` (``uvloop.new_event_loop``'s counterpart). Without options:
    :func:`configure`'s, else ``$AIOSTACK_ARGS`` — so it is a loop factory for uvicorn's
    ``--loop aiostack:new_event_loop``."""
    return Loop(options, starter=starter)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An asyncio policy whose new loops are aiostack's: ``asyncio.set_event_loop_policy(
    aiostack.EventLoopPolicy(options))``, then ``asyncio.run``, ``asyncio.new_event_loop`` and
    libraries that make their own loop get one.

    Only in the main thread — the reactor's: a loop another thread makes (a library running a
    private loop in a worker thread, as pyroute2 does to configure the TAP device) is asyncio's
    default one, on the kernel, for the device and its stack belong to the reactor and a second
    stack on them would fight the first."""

    def __init__(self, options: Options | None = None, *, starter: StackStarter | None = None) -> None:
        super().__init__()
        self._aiostack_options = options
        self._aiostack_starter = starter

    def _loop_factory(self) -> asyncio.AbstractEventLoop:  # type: ignore[override]
        if threading.current_thread() is not threading.main_thread():
            return asyncio.DefaultEventLoopPolicy._loop_factory()  # type: ignore[attr-defined,no-any-return]
        return Loop(self._aiostack_options, starter=self._aiostack_starter)


def run(
    main: Coroutine[Any, Any, T], *, options: Options | None = None, debug: bool | None = None
) -> T:
    """Run ``main`` on a new aiostack loop and close it (``uvloop.run``'s counterpart, on
    :class:`asyncio.Runner`)."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(options), debug=debug) as runner:
        return runner.run(main)
