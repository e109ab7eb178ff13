"""aiostack's event loop (aiostack.loop) over the memory link, no root needed: which stack serves
each call, asyncio's streams and protocols through it, TLS (server side, start_tls, a wrong CA),
UDP endpoints, sock_* on aiostack sockets, sendfile, the errors asyncio raises; and the launcher
installing the loop into an unmodified program."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import ssl
import subprocess
from asyncio import sslproto
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from aiostack import protocols
from aiostack.config import Options, options_from_mapping
from aiostack.loop import Loop
from aiostack.stack import Stack
from conftest import PYTHON, example
from memnet import CLIENT, SERVER, blob, pair
from tlscerts import self_signed

OPTIONS = options_from_mapping({"driver": "memory", "addr": f"{SERVER}/24", "control": "off"})


def run_on_loop(main: Callable[[Stack], Coroutine[Any, Any, None]], options: Options = OPTIONS) -> Loop:
    """Run ``main(peer)`` on an aiostack Loop whose stack is the server end of a memory link; the
    peer (client) stack runs on the same loop. Returns the (closed) loop."""
    client, server = pair()

    async def starter(_options: Options) -> tuple[Stack, Callable[[], None]]:
        await server.start()
        return server, server.close

    loop = Loop(options, starter=starter)

    async def wrapper() -> None:
        async with client:
            await main(client)

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(wrapper())
    return loop


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_loop_is_a_uvloop_loop_and_the_rule() -> None:
    loop = Loop(options_from_mapping({"addr": "10.9.0.2/24", "gateway": "10.9.0.1"}))
    try:
        assert isinstance(loop, uvloop.Loop)
        assert loop.aiostack is None  # nothing built before a call needs it
        for host in (None, "", "0.0.0.0", "::", "10.9.0.2", ["0.0.0.0"]):
            assert loop._listens_here(host), host
        for host in ("127.0.0.1", "10.9.0.3", "localhost", ["127.0.0.1", "::1"]):
            assert not loop._listens_here(host), host
        with pytest.raises(ValueError, match="mixes"):
            loop._listens_here(["10.9.0.2", "127.0.0.1"])
        assert loop._routes("10.9.0.77") and loop._routes("192.0.2.1")  # subnet; gateway → the rest
        assert not loop._routes("127.0.0.1") and not loop._routes("0.0.0.0") and not loop._routes("::1")
    finally:
        loop.close()
    no_gateway = Loop(options_from_mapping({"addr": "10.9.0.2/24"}))
    try:
        assert no_gateway._routes("10.9.0.1") and not no_gateway._routes("192.0.2.1")
    finally:
        no_gateway.close()


def test_streams_on_aiostack_and_loopback_on_the_kernel() -> None:
    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(echo, None, 7)  # wildcard: aiostack
        assert isinstance(server, protocols.Server)
        reader, writer = await protocols_open(peer, SERVER, 7)
        data = blob(300_000)
        writer.write(data)
        assert await reader.readexactly(len(data)) == data
        writer.close()
        # loopback stays on the kernel, in the same program
        kernel = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = kernel.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        assert not isinstance(w.transport, protocols.Transport)
        w.write(b"kernel\n")
        assert await r.readline() == b"kernel\n"
        w.close()
        kernel.close()
        # an outgoing connection to a destination aiostack routes goes through it
        peer_server = await protocols.create_server(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(), echo), CLIENT, 9, stack=peer)
        r, w = await asyncio.open_connection(CLIENT, 9)
        assert isinstance(w.transport, protocols.Transport)
        w.write(b"through aiostack\n")
        assert await r.readline() == b"through aiostack\n"
        w.close()
        peer_server.close()
        server.close()
        assert loop.aiostack is not None
        counts = loop.aiostack.counters()["app"]["loop"]
        assert counts["accepted"] == 1 and counts["connected"] == 1 and counts["servers"] == 1, counts

    run_on_loop(main)


async def protocols_open(stack: Stack, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    from aiostack.streams import open_connection

    return await open_connection(host, port, stack=stack)


def test_errors_are_asyncios() -> None:
    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, CLIENT, 9)  # nobody listens there
        server = await loop.create_server(asyncio.Protocol, SERVER, 8000)
        with pytest.raises(OSError) as info:
            await loop.create_server(asyncio.Protocol, None, 8000)
        assert info.value.errno == errno.EADDRINUSE
        with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
            await loop.create_connection(asyncio.Protocol, CLIENT, 9, server_hostname="x")
        server.close()

    run_on_loop(main)


def _tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext, ssl.SSLContext]:
    cert, key = self_signed(tmp_path, "aiostack-test", SERVER)
    other, _ = self_signed(tmp_path, "someone-else", SERVER)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    good = ssl.create_default_context(cafile=str(cert))
    wrong = ssl.create_default_context(cafile=str(other))
    return server_ctx, good, wrong


def test_tls_server_start_tls_and_a_wrong_ca(tmp_path: Path) -> None:
    server_ctx, good, wrong = _tls_contexts(tmp_path)

    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(echo, SERVER, 443, ssl=server_ctx)
        # the client: a plain aiostack connection from the peer stack, upgraded with start_tls
        reader, writer = await protocols_open(peer, SERVER, 443)
        await writer.start_tls(good, server_hostname=SERVER)
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        data = blob(200_000, seed=5)
        writer.write(data)
        assert await reader.readexactly(len(data)) == data
        writer.close()
        # a client that does not trust the certificate gets asyncio's usual error
        reader, writer = await protocols_open(peer, SERVER, 443)
        with pytest.raises(ssl.SSLCertVerificationError):
            await writer.start_tls(wrong, server_hostname=SERVER)
        # and the server goes on serving
        reader, writer = await protocols_open(peer, SERVER, 443)
        await writer.start_tls(good, server_hostname=SERVER)
        writer.write(b"again\n")
        assert await reader.readline() == b"again\n"
        writer.close()
        server.close()
        counts = loop.aiostack.counters()["app"]["loop"]  # type: ignore[union-attr]
        assert counts["tls_accepted"] == 3, counts

    run_on_loop(main)


def test_tls_client_through_aiostack(tmp_path: Path) -> None:
    """``open_connection(ssl=)`` from the loop to a TLS server on the peer stack (asyncio's
    SSLProtocol on the aiostack transport); a wrong CA raises SSLCertVerificationError."""
    cert, key = self_signed(tmp_path, "peer", CLIENT)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    _, _, wrong = _tls_contexts(tmp_path)

    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()

        def tls_echo() -> asyncio.BaseProtocol:  # the peer's TLS server: asyncio's SSLProtocol too
            app = asyncio.StreamReaderProtocol(asyncio.StreamReader(), echo)
            return sslproto.SSLProtocol(loop, app, server_ctx, None, server_side=True)

        peer_server = await protocols.create_server(tls_echo, CLIENT, 8443, stack=peer)
        reader, writer = await asyncio.open_connection(CLIENT, 8443, ssl=ssl.create_default_context(cafile=str(cert)))
        writer.write(b"hello tls\n")
        assert await reader.readline() == b"hello tls\n"
        writer.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(CLIENT, 8443, ssl=wrong)
        peer_server.close()
        assert loop.aiostack.counters()["app"]["loop"]["tls_connected"] == 1  # type: ignore[union-attr]

    run_on_loop(main)


def test_datagram_endpoint_roundtrips() -> None:
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data, addr)  # type: ignore[attr-defined]

    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("0.0.0.0", 7))
        assert transport.get_extra_info("sockname") == ("0.0.0.0", 7)
        sock = peer.socket()
        for i in range(200):
            payload = bytes([i % 256]) * (i * 7 % 1400 + 1)
            await sock.sendto(payload, (SERVER, 7))
            data, addr = await sock.recvfrom(2000)
            assert data == payload and addr == (SERVER, 7)
        # a connected endpoint towards a closed port of the peer: the ICMP error reaches the protocol
        errors: list[Exception] = []

        class Client(asyncio.DatagramProtocol):
            def error_received(self, exc: Exception) -> None:
                errors.append(exc)

        client, _ = await loop.create_datagram_endpoint(Client, remote_addr=(CLIENT, 9))
        client.sendto(b"anyone?")
        async with asyncio.timeout(5):
            while not errors:
                await asyncio.sleep(0.001)
        assert isinstance(errors[0], ConnectionRefusedError)
        client.close()
        transport.close()
        sock.close()

    run_on_loop(main)


def test_sock_methods_on_aiostack_sockets_and_sendfile(tmp_path: Path) -> None:
    path = tmp_path / "payload"
    data = blob(1_500_000, seed=9)
    path.write_bytes(data)

    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()
        got = bytearray()
        done = loop.create_future()

        class Sink(asyncio.Protocol):
            def data_received(self, chunk: bytes) -> None:
                got.extend(chunk)

            def eof_received(self) -> None:
                done.set_result(None)

        sink = await protocols.create_server(Sink, CLIENT, 5001, stack=peer)
        transport, _ = await loop.create_connection(asyncio.Protocol, CLIENT, 5001)
        with open(path, "rb") as f:
            assert await loop.sendfile(transport, f) == len(data)
        transport.write_eof()  # type: ignore[attr-defined]
        await done
        assert bytes(got) == data
        transport.close()
        sink.close()
        # sock_* on a socket the loop handed out: a server's listening socket, accepted sockets
        server = await loop.create_server(asyncio.Protocol, None, 6000, start_serving=False)
        lsock = server.sockets[0]
        lsock.listen(8)
        client = peer.socket(socket.AF_INET, socket.SOCK_STREAM)
        connecting = asyncio.ensure_future(client.connect((SERVER, 6000)))
        conn, _addr = await loop.sock_accept(lsock)
        await connecting
        await client.sendall(b"ping")
        assert await loop.sock_recv(conn, 4) == b"ping"
        await loop.sock_sendall(conn, b"pong")
        assert await client.recv(4) == b"pong"
        conn.close()
        client.close()
        server.close()

    run_on_loop(main)


def test_launcher_installs_the_loop_everywhere(tmp_path: Path) -> None:
    """``aiostack run -- script``: asyncio.run, asyncio.new_event_loop, uvloop.new_event_loop and
    uvloop.run all give aiostack's loop; nothing here touches the network (the stack starts at the
    first call that needs it), so it runs without root."""
    script = tmp_path / "which_loop.py"
    script.write_text(
        "import asyncio, json, sys, threading, uvloop\n"
        "async def kind():\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "out = {'asyncio.run': asyncio.run(kind()), 'uvloop.run': uvloop.run(kind()),\n"
        "       'asyncio.new_event_loop': type(asyncio.new_event_loop()).__module__,\n"
        "       'uvloop.new_event_loop': type(uvloop.new_event_loop()).__module__, 'argv': sys.argv[1:]}\n"
        "t = threading.Thread(target=lambda: out.__setitem__('thread', asyncio.run(kind())))\n"
        "t.start(); t.join()\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([PYTHON, "-m", "aiostack", "run", "--driver", "tap", "--", str(script), "a", "b"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out.pop("argv") == ["a", "b"]
    assert out.pop("thread") != "aiostack.loop"  # a worker thread's loop stays asyncio's
    assert set(out.values()) == {"aiostack.loop"}, out
    # -m module, found from the current directory as python -m finds it
    res = subprocess.run([PYTHON, "-m", "aiostack", "run", "--driver", "tap", "--", "-m", "which_loop", "c"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["argv"] == ["c"]


def test_launcher_errors_are_one_line() -> None:
    for args in (["--driver", "memory", "--cores", "2", "--", "app.py"], ["--driver", "tap", "app.py"],
                 ["--driver", "tap", "--", "/nonexistent/app.py"]):
        res = subprocess.run([PYTHON, "-m", "aiostack", "run", *args], capture_output=True, text=True, timeout=60)
        assert res.returncode != 0 and "Traceback" not in res.stderr, (args, res.stderr)
        assert res.stderr.strip(), args
    # the examples' serve(): a device the options cannot open is one line, not a traceback
    res = subprocess.run([PYTHON, example("http_server.py"), "--driver", "memory", "--cores", "2", "--control", "off"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stderr.strip().count("\n") == 0, res.stderr
    assert res.stderr.startswith("aiostack: --driver memory with --cores 2"), res.stderr


def test_one_readiness_mask_for_sockets_and_epoll() -> None:
    """TcpSocket.poll (the connection's mask) through a connection's life, and epoll reporting
    exactly that mask."""
    from aiostack.epoll import Epoll
    from aiostack.tcp.readiness import POLLHUP, POLLRDHUP, READABLE, WRITABLE

    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()
        stack = loop.aiostack_stack  # type: ignore[attr-defined]
        server_stack = await stack()
        lsock = server_stack.socket(socket.AF_INET, socket.SOCK_STREAM)
        assert lsock.poll() == WRITABLE | POLLHUP  # never connected: Linux's CLOSE
        lsock.bind((SERVER, 7000))
        lsock.listen(4)
        assert lsock.poll() == 0
        client = peer.socket(socket.AF_INET, socket.SOCK_STREAM)
        await client.connect((SERVER, 7000))
        async with asyncio.timeout(5):
            while not lsock.poll():
                await asyncio.sleep(0.001)
        assert lsock.poll() == READABLE
        conn, _ = lsock.accept_nowait()
        assert conn.poll() == WRITABLE
        await client.sendall(b"x")
        async with asyncio.timeout(5):
            while conn.poll() == WRITABLE:
                await asyncio.sleep(0.001)
        assert conn.poll() == READABLE | WRITABLE
        with Epoll(server_stack) as ep:
            ep.register(conn, READABLE | WRITABLE | POLLRDHUP)
            assert ep.poll_nowait() == [(conn, conn.poll())]
            client.shutdown(socket.SHUT_WR)
            async with asyncio.timeout(5):
                while not conn.poll() & POLLRDHUP:
                    await asyncio.sleep(0.001)
            assert conn.poll() == READABLE | WRITABLE | POLLRDHUP  # data and end of stream
            assert ep.poll_nowait() == [(conn, conn.poll())]
        conn.close()
        assert conn.poll() == 0
        client.close()
        lsock.close()

    run_on_loop(main)


def test_sock_connect_stand_in_for_a_kernel_socket() -> None:
    """What aiohttp's client does: a kernel socket, ``sock_connect`` to an aiostack destination,
    then ``create_connection(sock=)``; and a stand-in dropped unused is closed with its socket."""
    import gc

    async def main(peer: Stack) -> None:
        loop = asyncio.get_running_loop()
        server = await protocols.create_server(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(), echo), CLIENT, 9, stack=peer)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        await loop.sock_connect(sock, (CLIENT, 9))
        reader = asyncio.StreamReader()
        transport, _ = await loop.create_connection(lambda: asyncio.StreamReaderProtocol(reader), sock=sock)
        assert isinstance(transport, protocols.Transport) and sock.fileno() == -1  # the kernel one is closed
        transport.write(b"stand-in\n")
        assert await reader.readline() == b"stand-in\n"
        transport.close()
        unused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await loop.sock_connect(unused, (CLIENT, 9))
        standin = loop._aiostack_standins[unused][0]  # type: ignore[attr-defined]
        unused.close()
        del unused
        gc.collect()
        assert standin.closed
        server.close()

    run_on_loop(main)
