"""TCP between two aiostack instances on the in-memory link, through the coroutine socket API:
handshake, bulk transfer both ways with equal hashes, half-close, errors with kernel errnos,
and a transfer through loss, reordering and duplication."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import socket

import pytest

from aiostack.drivers.fault import FaultProfile
from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from aiostack.tcp.connection import State
from memnet import CLIENT, SERVER, blob, pair

tasks: set[asyncio.Task[None]] = set()  # strong references for background tasks


async def echo_server(stack: Stack, port: int) -> socket.socket:  # returns the listening TcpSocket
    lsock = stack.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("0.0.0.0", port))
    lsock.listen(16)

    async def handle(conn) -> None:  # type: ignore[no-untyped-def]
        while True:
            data = await conn.recv(65536)
            if not data:
                break
            await conn.sendall(data)
        conn.close()

    async def serve() -> None:
        while True:
            try:
                conn, _ = await lsock.accept()
            except OSError:  # the stack stopped at the end of the test
                return
            tasks.add(asyncio.create_task(handle(conn)))

    tasks.add(asyncio.create_task(serve()))
    return lsock  # type: ignore[return-value]


async def test_connect_echo_close() -> None:
    client, server = pair()
    async with client, server:
        await echo_server(server, 7)
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        await asyncio.wait_for(sock.connect((SERVER, 7)), 5)
        assert sock.getpeername() == (SERVER, 7)
        assert sock.getsockname()[0] == CLIENT
        await sock.sendall(b"hello, tcp")
        assert await asyncio.wait_for(sock.recv(100), 5) == b"hello, tcp"
        sock.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(sock.recv(100), 5) == b""  # server closed after our FIN
        conn = sock.connection
        assert conn is not None
        await asyncio.wait_for(sock.wait_closed(), 5)
        assert conn.state == State.TIME_WAIT  # we closed first
        sock.close()


async def test_bulk_both_ways() -> None:
    client, server = pair()
    data = blob(4 << 20)
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", 9000))
        lsock.listen()

        async def sink_and_source() -> str:
            conn, _ = await lsock.accept()
            h = hashlib.sha256()
            got = 0
            while got < len(data):
                chunk = await conn.recv(1 << 16)
                assert chunk
                h.update(chunk)
                got += len(chunk)
            await conn.sendall(data)
            conn.close()
            return h.hexdigest()

        task = asyncio.create_task(sink_and_source())
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect((SERVER, 9000))
        await sock.sendall(data)
        h = hashlib.sha256()
        while True:
            chunk = await asyncio.wait_for(sock.recv(1 << 16), 10)
            if not chunk:
                break
            h.update(chunk)
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()
        assert await asyncio.wait_for(task, 10) == hashlib.sha256(data).hexdigest()
        sock.close()


async def test_connection_refused_and_errors() -> None:
    client, server = pair()
    async with client, server:
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(OSError) as exc:
            await asyncio.wait_for(sock.connect((SERVER, 81)), 5)
        assert exc.value.errno == errno.ECONNREFUSED
        other = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(OSError) as exc:
            await other.recv(10)
        assert exc.value.errno == errno.ENOTCONN
        l1 = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        l1.bind(("0.0.0.0", 80))
        l1.listen()
        l2 = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(OSError) as exc:
            l2.bind(("0.0.0.0", 80))
        assert exc.value.errno == errno.EADDRINUSE


async def test_reset_reported_as_econnreset() -> None:
    client, server = pair()
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", 7))
        lsock.listen()
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect((SERVER, 7))
        conn, _ = await lsock.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        conn.close()  # SO_LINGER 0: abortive close, a RST
        with pytest.raises(OSError) as exc:
            await asyncio.wait_for(sock.recv(10), 5)
        assert exc.value.errno == errno.ECONNRESET
        with pytest.raises(OSError) as exc:
            await sock.send(b"x")
        assert exc.value.errno == errno.EPIPE


async def test_transfer_through_loss_reorder_duplication() -> None:
    fault = FaultProfile(loss=0.05, reorder=0.02, duplicate=0.01, corrupt=0.001)
    client, server = pair(fault=fault)
    data = blob(2 << 20, seed=5)
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", 9001))
        lsock.listen()

        async def sink() -> str:
            conn, _ = await lsock.accept()
            h = hashlib.sha256()
            while True:
                chunk = await conn.recv(1 << 16)
                if not chunk:
                    break
                h.update(chunk)
            conn.close()
            return h.hexdigest()

        task = asyncio.create_task(sink())
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        await asyncio.wait_for(sock.connect((SERVER, 9001)), 30)
        await asyncio.wait_for(sock.sendall(data), 60)
        sock.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(task, 60) == hashlib.sha256(data).hexdigest()
        assert await asyncio.wait_for(sock.recv(10), 30) == b""
        conn = sock.connection
        assert conn is not None
        assert conn.stats["retransmitted_segments"] > 0
        sock.close()


async def test_module_level_api_uses_the_running_stack() -> None:
    import aiostack

    link = MemoryLink()
    only = Stack()
    only.attach(link.port(), f"{SERVER}/24")
    with pytest.raises(RuntimeError):
        aiostack.current_stack()  # none running yet
    async with only:
        assert aiostack.current_stack() is only
        server = await aiostack.start_server(lambda r, w: None, None, 7070)  # no stack= needed
        assert server.sockets[0].getsockname() == ("0.0.0.0", 7070)
        server.close()
        other = Stack()
        other.attach(link.port(), f"{CLIENT}/24")
        async with other:
            with pytest.raises(RuntimeError, match="pass stack="):
                aiostack.current_stack()
    with pytest.raises(RuntimeError):
        aiostack.current_stack()


async def test_socket_options() -> None:
    client, server = pair()
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # inherited by accepted sockets
        lsock.bind(("0.0.0.0", 7100))
        lsock.listen()
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        await sock.connect((SERVER, 7100))
        conn, _ = await lsock.accept()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert (
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        ) == (30, 5, 3)
        c = sock.connection
        assert c is not None and c.keepalive and c.nodelay
        # the peer advertised a window for its 64 KiB receive buffer, not the default 1 MiB
        assert c.max_snd_wnd <= 65536
        assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 65536
        assert 0 < sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) <= 1460
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
        with pytest.raises(OSError) as exc:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 0)
        assert exc.value.errno == errno.EINVAL
        with pytest.raises(OSError) as exc:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        assert exc.value.errno == errno.ENOPROTOOPT
        with pytest.raises(OSError) as exc:
            await sock.connect((SERVER, 7100))
        assert exc.value.errno == errno.EISCONN
        sock.close()
        conn.close()
        with pytest.raises(OSError) as exc:
            await sock.recv(1)
        assert exc.value.errno == errno.EBADF
