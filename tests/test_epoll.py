"""The ff_epoll family on aiostack (two stacks on the in-memory link): level- and edge-triggered
reports for listening, connected and UDP sockets, EPOLLONESHOT, RDHUP/HUP/ERR on FIN and reset,
timeouts, maxevents fairness, the errors, and an F-Stack-style echo server (one epoll loop with
the non-blocking calls)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import select
import socket
import struct

import pytest

from aiostack import epoll
from aiostack.epoll import (
    EPOLLERR,
    EPOLLET,
    EPOLLHUP,
    EPOLLIN,
    EPOLLONESHOT,
    EPOLLOUT,
    EPOLLRDHUP,
    Epoll,
)
from aiostack.stack import Stack
from aiostack.tcp_socket import TcpSocket
from memnet import SERVER, pair

TIMEOUT = 5.0


def listener(stack: Stack, port: int) -> TcpSocket:
    lsock = stack.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("0.0.0.0", port))
    lsock.listen()
    return lsock


async def connected(client: Stack, server: Stack, port: int) -> tuple[TcpSocket, TcpSocket, TcpSocket]:
    """(listening socket, client end, server end) of one connection."""
    lsock = listener(server, port)
    csock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
    await asyncio.wait_for(csock.connect((SERVER, port)), TIMEOUT)
    ssock, _ = await asyncio.wait_for(lsock.accept(), TIMEOUT)
    return lsock, csock, ssock


async def wait_for_event(ep: Epoll, sock: object, bits: int) -> int:
    """Wait until ``sock`` is reported with all of ``bits``; returns its events."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            for s, ev in await ep.wait():
                if s is sock and ev & bits == bits:
                    return ev


def test_constants_are_the_select_modules() -> None:
    for name in ("EPOLLIN", "EPOLLOUT", "EPOLLERR", "EPOLLHUP", "EPOLLRDHUP", "EPOLLET", "EPOLLONESHOT", "EPOLLPRI"):
        assert getattr(epoll, name) == getattr(select, name)


async def test_level_triggered_listener_and_connection() -> None:
    client, server = pair()
    async with client, server:
        lsock = listener(server, 7200)
        with Epoll(server) as ep:
            ep.register(lsock, EPOLLIN)
            assert await ep.wait(timeout=0) == []
            csock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
            connect = asyncio.create_task(csock.connect((SERVER, 7200)))
            assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(lsock, EPOLLIN)]
            # Level-triggered: reported again while the connection waits in the accept queue.
            assert await ep.wait(timeout=0) == [(lsock, EPOLLIN)]
            ssock, _ = lsock.accept_nowait()
            assert await ep.wait(timeout=0) == []
            await connect

            ep.register(ssock, EPOLLIN | EPOLLOUT)
            assert await ep.wait(timeout=0) == [(ssock, EPOLLOUT)]
            ep.modify(ssock, EPOLLIN)
            assert await ep.wait(timeout=0) == []
            await csock.sendall(b"ping")
            assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(ssock, EPOLLIN)]
            assert await ep.wait(timeout=0) == [(ssock, EPOLLIN)]  # still unread
            assert ssock.recv_nowait(2) == b"pi"
            assert await ep.wait(timeout=0) == [(ssock, EPOLLIN)]  # still some left
            assert ssock.recv_nowait(100) == b"ng"
            assert await ep.wait(timeout=0) == []
            with pytest.raises(BlockingIOError):
                ssock.recv_nowait(100)
            ep.unregister(ssock)
            assert ssock not in ep and lsock in ep and len(ep) == 1
            csock.close()
            ssock.close()
        lsock.close()


async def test_edge_triggered_reports_changes_only() -> None:
    client, server = pair()
    async with client, server:
        lsock, csock, ssock = await connected(client, server, 7201)
        ep = Epoll(server)
        ep.register(ssock, EPOLLIN | EPOLLOUT | EPOLLET)
        assert await ep.wait(timeout=0) == [(ssock, EPOLLOUT)]  # what is ready at registration, once
        assert await ep.wait(timeout=0) == []
        await csock.sendall(b"one")
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(ssock, EPOLLIN)]
        assert await ep.wait(timeout=0) == []  # not read, but nothing new: no report
        await csock.sendall(b"two")  # new data while still readable: a new edge
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(ssock, EPOLLIN)]
        assert ssock.recv_nowait(100) == b"onetwo"
        assert await ep.wait(timeout=0) == []
        # Drained, then new data before the next wait: still reported.
        await csock.sendall(b"three")
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(ssock, EPOLLIN)]
        # modify() re-evaluates: what holds is reported once more.
        ep.modify(ssock, EPOLLIN | EPOLLRDHUP | EPOLLET)
        assert await ep.wait(timeout=0) == [(ssock, EPOLLIN)]
        assert await ep.wait(timeout=0) == []
        csock.shutdown(socket.SHUT_WR)  # FIN: IN and RDHUP rise again
        ev = await wait_for_event(ep, ssock, EPOLLIN)
        assert ev == EPOLLIN | EPOLLRDHUP
        assert await ep.wait(timeout=0) == []
        ep.close()
        for s in (csock, ssock, lsock):
            s.close()


async def test_oneshot_until_modify() -> None:
    client, server = pair()
    async with client, server:
        lsock, csock, ssock = await connected(client, server, 7202)
        ep = Epoll(server)
        ep.register(ssock, EPOLLIN | EPOLLONESHOT)
        await csock.sendall(b"data")
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(ssock, EPOLLIN)]
        assert await ep.wait(timeout=0) == []  # disabled, though still readable
        await csock.sendall(b"more")
        csock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        csock.close()  # not even HUP/ERR is reported while disabled
        assert await ep.wait(timeout=0.05) == []
        ep.modify(ssock, EPOLLIN | EPOLLONESHOT)
        events = await asyncio.wait_for(ep.wait(), TIMEOUT)
        assert len(events) == 1 and events[0][0] is ssock
        assert events[0][1] & EPOLLIN and events[0][1] & EPOLLHUP
        assert await ep.wait(timeout=0) == []
        ep.close()
        ssock.close()
        lsock.close()


async def test_fin_gives_rdhup_and_close_gives_hup() -> None:
    client, server = pair()
    async with client, server:
        lsock, csock, ssock = await connected(client, server, 7203)
        ep = Epoll(server)
        ep.register(ssock, EPOLLIN | EPOLLRDHUP)  # HUP and ERR need not be asked for
        csock.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(ssock, EPOLLIN | EPOLLRDHUP)]
        assert ssock.recv_nowait(10) == b""  # EOF; still reported (level-triggered)
        assert await ep.wait(timeout=0) == [(ssock, EPOLLIN | EPOLLRDHUP)]
        ep.modify(ssock, EPOLLOUT)
        assert await ep.wait(timeout=0) == [(ssock, EPOLLOUT)]  # we may still write (CLOSE-WAIT)
        ssock.shutdown(socket.SHUT_WR)  # both directions closed
        assert await ep.wait(timeout=0) == [(ssock, EPOLLOUT | EPOLLHUP)]
        ep.modify(ssock, 0)
        assert await ep.wait(timeout=0) == [(ssock, EPOLLHUP)]  # HUP is always reported
        ep.close()
        for s in (csock, ssock, lsock):
            s.close()


async def test_reset_gives_err_and_hup() -> None:
    client, server = pair()
    async with client, server:
        lsock, csock, ssock = await connected(client, server, 7204)
        ep = Epoll(client)
        ep.register(csock, EPOLLIN)
        assert await ep.wait(timeout=0) == []
        ssock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ssock.close()
        ev = await wait_for_event(ep, csock, EPOLLERR)
        assert ev == EPOLLIN | EPOLLERR | EPOLLHUP
        with pytest.raises(ConnectionResetError):
            csock.recv_nowait(10)
        # The error was reported once; the connection stays hung up.
        assert await ep.wait(timeout=0) == [(csock, EPOLLIN | EPOLLHUP)]
        csock.close()
        assert await ep.wait(timeout=0) == []  # closed sockets leave the interest list
        assert csock not in ep
        ep.close()
        lsock.close()


async def test_unconnected_tcp_socket_reports_hup() -> None:
    client, server = pair()
    async with client, server:
        ep = Epoll(client)
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        ep.register(sock, EPOLLIN)
        assert await ep.wait(timeout=0) == [(sock, EPOLLHUP)]  # as on Linux
        ep.close()
        sock.close()


async def test_udp_in_and_out() -> None:
    client, server = pair()
    async with client, server:
        rx = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("0.0.0.0", 5300))
        tx = client.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ep = Epoll(server)
        ep.register(rx, EPOLLIN | EPOLLOUT)
        assert await ep.wait(timeout=0) == [(rx, EPOLLOUT)]  # a UDP socket is always writable
        ep.modify(rx, EPOLLIN)
        assert await ep.wait(timeout=0) == []
        await tx.sendto(b"d1", (SERVER, 5300))
        await tx.sendto(b"d1", (SERVER, 5300))
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(rx, EPOLLIN)]
        assert rx.recvfrom_nowait(100)[0] == b"d1"
        assert await ep.wait(timeout=0) == [(rx, EPOLLIN)]  # one more queued
        assert rx.recvfrom_nowait(100)[0] == b"d1"
        assert await ep.wait(timeout=0) == []
        # Edge-triggered: one report per new datagram, even an identical one.
        ep.modify(rx, EPOLLIN | EPOLLET)
        await tx.sendto(b"same", (SERVER, 5300))
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(rx, EPOLLIN)]
        assert await ep.wait(timeout=0) == []
        await tx.sendto(b"same", (SERVER, 5300))
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(rx, EPOLLIN)]
        ep.close()
        rx.close()
        tx.close()


async def test_timeout_maxevents_and_fairness() -> None:
    client, server = pair()
    async with client, server:
        ep = Epoll(server)
        socks = []
        for port in range(5310, 5314):
            s = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", port))
            ep.register(s, EPOLLOUT)
            socks.append(s)
        seen: list[object] = []
        for _ in range(4):
            events = await ep.wait(maxevents=1)
            assert len(events) == 1
            seen.append(events[0][0])
        assert sorted(map(id, seen)) == sorted(map(id, socks))  # round robin: everyone once
        with pytest.raises(ValueError):
            await ep.wait(maxevents=0)
        for s in socks:
            ep.modify(s, EPOLLIN)
        assert await ep.wait(timeout=0.02) == []  # nothing arrives: the timeout returns []
        ep.close()
        for s in socks:
            s.close()


async def test_wait_wakes_and_close_interrupts() -> None:
    client, server = pair()
    async with client, server:
        rx = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("0.0.0.0", 5320))
        ep = Epoll(server)
        ep.register(rx, EPOLLIN)
        waiter = asyncio.create_task(ep.wait())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        tx = client.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await tx.sendto(b"wake", (SERVER, 5320))
        assert await asyncio.wait_for(waiter, TIMEOUT) == [(rx, EPOLLIN)]
        rx.recvfrom_nowait(100)
        waiter = asyncio.create_task(ep.wait())
        await asyncio.sleep(0.01)
        ep.close()
        with pytest.raises(ValueError):
            await asyncio.wait_for(waiter, TIMEOUT)
        assert ep.closed
        rx.close()
        tx.close()


async def test_errors() -> None:
    client, server = pair()
    async with client, server:
        ep = Epoll(server)
        sock = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ep.register(sock, EPOLLIN)
        with pytest.raises(FileExistsError) as exists:
            ep.register(sock, EPOLLIN)
        assert exists.value.errno == errno.EEXIST
        other = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(FileNotFoundError) as missing:
            ep.modify(other, EPOLLIN)
        assert missing.value.errno == errno.ENOENT
        with pytest.raises(FileNotFoundError):
            ep.unregister(other)
        for bad in (1 << 20, -1, EPOLLIN | 0x4000):
            with pytest.raises(OSError) as invalid:
                ep.register(other, bad)
            assert invalid.value.errno == errno.EINVAL
            with pytest.raises(OSError) as invalid:
                ep.modify(sock, bad)
            assert invalid.value.errno == errno.EINVAL
        with pytest.raises(TypeError):
            ep.register(object(), EPOLLIN)  # type: ignore[arg-type]
        foreign = client.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(OSError) as wrong_stack:
            ep.register(foreign, EPOLLIN)
        assert wrong_stack.value.errno == errno.EINVAL
        closed = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.close()
        with pytest.raises(OSError) as badf:
            ep.register(closed, EPOLLIN)
        assert badf.value.errno == errno.EBADF
        with pytest.raises(OSError) as badop:
            ep.ctl(99, sock, EPOLLIN)
        assert badop.value.errno == errno.EINVAL
        ep.ctl(epoll.EPOLL_CTL_MOD, sock, EPOLLOUT)
        ep.ctl(epoll.EPOLL_CTL_DEL, sock)
        ep.ctl(epoll.EPOLL_CTL_ADD, sock, EPOLLOUT)
        assert list(ep) == [(sock, EPOLLOUT)]
        ep.close()
        ep.close()
        with pytest.raises(ValueError):
            ep.register(other, EPOLLIN)
        with pytest.raises(ValueError):
            await ep.wait(timeout=0)
        for s in (sock, other, foreign):
            s.close()
    ep2 = Epoll(server)  # the stack is stopped now
    with pytest.raises(OSError) as down:
        await ep2.wait()
    assert down.value.errno == errno.ENETDOWN


async def test_fstack_style_echo_server() -> None:
    """One loop, ff_epoll_wait + non-blocking accept/recv/send, serving several clients."""
    client, server = pair()
    async with client, server:
        lsock = listener(server, 7210)
        ep = Epoll(server)
        ep.register(lsock, EPOLLIN)
        pending: dict[TcpSocket, bytearray] = {}

        async def serve() -> None:
            while True:
                try:
                    events = await ep.wait()
                except (OSError, ValueError):
                    return
                for sock, ev in events:
                    if sock is lsock:
                        while True:
                            try:
                                conn, _ = lsock.accept_nowait()
                            except BlockingIOError:
                                break
                            ep.register(conn, EPOLLIN | EPOLLRDHUP | EPOLLET)
                            pending[conn] = bytearray()
                        continue
                    assert isinstance(sock, TcpSocket)
                    out = pending[sock]
                    if ev & EPOLLIN:
                        while True:  # edge-triggered: read until EAGAIN
                            try:
                                data = sock.recv_nowait(65536)
                            except BlockingIOError:
                                break
                            except OSError:
                                data = b""
                            if not data:
                                ev |= EPOLLHUP
                                break
                            out += data
                    if out:
                        with contextlib.suppress(BlockingIOError):
                            out[: sock.send_nowait(out)] = b""
                        ep.modify(sock, EPOLLIN | EPOLLRDHUP | EPOLLET | (EPOLLOUT if out else 0))
                    if ev & (EPOLLHUP | EPOLLERR) and not out:
                        ep.unregister(sock)
                        del pending[sock]
                        sock.close()

        task = asyncio.create_task(serve())

        async def one_client(i: int) -> bytes:
            sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
            await sock.connect((SERVER, 7210))
            msg = b"client %d " % i * (1000 * (i + 1))
            await sock.sendall(msg)
            got = bytearray()
            while len(got) < len(msg):
                chunk = await sock.recv(65536)
                assert chunk
                got += chunk
            sock.shutdown(socket.SHUT_WR)
            assert await sock.recv(10) == b""
            sock.close()
            assert bytes(got) == msg
            return bytes(got)

        results = await asyncio.wait_for(asyncio.gather(*(one_client(i) for i in range(4))), 10)
        assert [len(r) for r in results] == [len(b"client %d " % i) * 1000 * (i + 1) for i in range(4)]
        await asyncio.wait_for(_until_empty(pending), TIMEOUT)
        ep.close()
        await asyncio.wait_for(task, TIMEOUT)
        lsock.close()


async def _until_empty(pending: dict[TcpSocket, bytearray]) -> None:
    while pending:
        await asyncio.sleep(0.001)


async def test_edge_triggered_listener() -> None:
    client, server = pair()
    async with client, server:
        lsock = listener(server, 7211)
        ep = Epoll(server)
        ep.register(lsock, EPOLLIN | EPOLLET)
        assert await ep.wait(timeout=0) == []
        socks = [client.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
        await asyncio.wait_for(socks[0].connect((SERVER, 7211)), TIMEOUT)
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(lsock, EPOLLIN)]
        assert await ep.wait(timeout=0) == []  # not accepted, nothing new
        await asyncio.wait_for(socks[1].connect((SERVER, 7211)), TIMEOUT)
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(lsock, EPOLLIN)]  # a new one queued
        accepted = [lsock.accept_nowait()[0], lsock.accept_nowait()[0]]
        await asyncio.wait_for(socks[2].connect((SERVER, 7211)), TIMEOUT)
        assert await asyncio.wait_for(ep.wait(), TIMEOUT) == [(lsock, EPOLLIN)]
        accepted.append(lsock.accept_nowait()[0])
        with pytest.raises(BlockingIOError):
            lsock.accept_nowait()
        ep.close()
        for s in socks + accepted + [lsock]:
            s.close()
