"""asyncio streams on aiostack (two stacks on the in-memory link): asyncio's own StreamReader and
StreamWriter over aiostack's transport — readline/readexactly/readuntil and the limit, drain()
backpressure against a slow reader, half-close, reset — and one application that runs unchanged
on asyncio's kernel sockets (loopback) and on aiostack."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiostack import streams
from aiostack.protocols import Server, Transport
from aiostack.tcp.config import TcpConfig
from memnet import CLIENT, SERVER, blob, pair, until

# == one application, two stacks ===============================================================
StartServer = Callable[..., Awaitable[Any]]
OpenConnection = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A line protocol: ``ECHO <text>`` echoes a line, ``BLOB <n>`` reads n bytes and answers
    their SHA-256, ``QUIT`` (or end of stream) closes."""
    try:
        while True:
            line = await reader.readline()
            if not line or line == b"QUIT\n":
                break
            cmd, _, arg = line.rstrip(b"\n").partition(b" ")
            if cmd == b"ECHO":
                writer.write(arg + b"\n")
            elif cmd == b"BLOB":
                data = await reader.readexactly(int(arg))
                writer.writelines([b"SHA ", hashlib.sha256(data).hexdigest().encode(), b"\n"])
            else:
                writer.write(b"ERR\n")
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def echo_client(open_connection: OpenConnection, host: str, port: int) -> dict[str, Any]:
    reader, writer = await open_connection(host, port)
    got: dict[str, Any] = {"peer": writer.get_extra_info("peername"), "sock": writer.get_extra_info("sockname")}
    writer.write(b"ECHO hello\nECHO world\n")
    await writer.drain()
    got["lines"] = [await reader.readline(), await reader.readline()]
    payload = blob(300_000, seed=5)
    writer.write(b"BLOB %d\n" % len(payload))
    writer.write(payload)
    await writer.drain()
    got["sha"] = await reader.readuntil(b"\n")
    writer.write(b"NOPE\n")
    got["err"] = await reader.readexactly(4)
    writer.write(b"QUIT\n")
    await writer.drain()
    got["eof"] = await reader.read()
    got["at_eof"] = reader.at_eof()
    writer.close()
    await writer.wait_closed()
    got["closing"] = writer.is_closing()
    return got


async def run_echo_app(start_server: StartServer, open_connection: OpenConnection, host: str) -> list[dict[str, Any]]:
    server = await start_server(echo_handler, host, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert server.is_serving()
        results = await asyncio.gather(*(echo_client(open_connection, host, port) for _ in range(3)))
    assert not server.is_serving()
    assert not server.sockets
    for got in results:
        assert got["peer"] == (host, port)
        assert got["sock"][0] == host.replace(SERVER, CLIENT)
    return results


def check_echo_results(results: list[dict[str, Any]]) -> None:
    sha = hashlib.sha256(blob(300_000, seed=5)).hexdigest().encode()
    for got in results:
        assert got["lines"] == [b"hello\n", b"world\n"]
        assert got["sha"] == b"SHA " + sha + b"\n"
        assert got["err"] == b"ERR\n"
        assert got["eof"] == b""
        assert got["at_eof"] is True
        assert got["closing"] is True


async def test_same_application_on_kernel_sockets() -> None:
    results = await asyncio.wait_for(run_echo_app(asyncio.start_server, asyncio.open_connection, "127.0.0.1"), 10)
    check_echo_results(results)


async def test_same_application_on_aiostack() -> None:
    client, server = pair()
    async with client, server:
        results = await asyncio.wait_for(
            run_echo_app(
                functools.partial(streams.start_server, stack=server),
                functools.partial(streams.open_connection, stack=client),
                SERVER,
            ),
            10,
        )
    check_echo_results(results)


# == asyncio semantics over aiostack ===========================================================
async def test_reader_is_asyncios_with_limit() -> None:
    client, server = pair()
    async with client, server:
        done = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"x" * 100 + b"\nshort\nabc|def|")
            await writer.drain()
            await done.wait()
            writer.close()

        srv = await streams.start_server(handle, SERVER, 7000, stack=server)
        reader, writer = await streams.open_connection(SERVER, 7000, stack=client, limit=64)
        assert isinstance(reader, asyncio.StreamReader) and isinstance(writer, asyncio.StreamWriter)
        assert isinstance(writer.transport, Transport)
        with pytest.raises(ValueError):  # asyncio's readline turns LimitOverrunError into ValueError
            await reader.readline()
        assert await reader.readline() == b"short\n"
        assert await reader.readuntil(b"|") == b"abc|"
        assert await reader.readexactly(4) == b"def|"
        done.set()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(10)
        assert info.value.partial == b""
        sock = writer.get_extra_info("socket")
        assert sock.getpeername() == (SERVER, 7000)
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()


async def test_drain_blocks_until_a_slow_reader_reads() -> None:
    # Small TCP buffers so the transport's own buffer fills quickly.
    client, server = pair(TcpConfig(rcvbuf=32768, sndbuf=32768))
    data = blob(1_000_000, seed=9)
    async with client, server:
        accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.get_running_loop().create_future()
        )

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result((reader, writer))

        srv = await streams.start_server(handle, None, 7001, stack=server)
        _reader, writer = await streams.open_connection(SERVER, 7001, stack=client)
        slow_reader, slow_writer = await accepted
        transport = writer.transport
        assert transport.get_write_buffer_limits() == (16384, 65536)
        writer.write(data)
        drain = asyncio.create_task(writer.drain())
        # The peer reads nothing: its StreamReader fills (pausing its transport), then its TCP
        # receive buffer, then our send buffer; the rest waits in our transport buffer.
        peer_transport = slow_writer.transport
        await until(lambda: not peer_transport.is_reading(), "the slow reader's transport paused")
        conn = writer.get_extra_info("socket").connection
        peer = slow_writer.get_extra_info("socket").connection
        await until(
            lambda: conn.sndbuf.space == 0 and peer.rcvbuf.window < conn.snd_mss,
            "our send buffer full, the peer's window closed",
        )
        for _ in range(20):
            await asyncio.sleep(0)
        assert not drain.done()
        assert transport.get_write_buffer_size() > 65536
        # Now read: the window opens, the buffer drains, drain() returns.
        got = await asyncio.wait_for(slow_reader.readexactly(len(data)), 10)
        await asyncio.wait_for(drain, 5)
        assert got == data
        assert transport.get_write_buffer_size() == 0
        slow_writer.close()
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()


async def test_half_close_and_write_eof() -> None:
    client, server = pair()
    async with client, server:

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read()  # until the client's EOF
            writer.write(data[::-1])  # our side is still open
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        srv = await streams.start_server(handle, None, 7002, stack=server)
        reader, writer = await streams.open_connection(SERVER, 7002, stack=client)
        assert writer.can_write_eof()
        writer.write(b"abcdef")
        writer.write_eof()
        with pytest.raises(RuntimeError):
            writer.write(b"more")
        assert await asyncio.wait_for(reader.read(), 5) == b"fedcba"
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()


async def test_reset_reaches_reader_and_wait_closed() -> None:
    client, server = pair()
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", 7003))
        lsock.listen()
        reader, writer = await streams.open_connection(SERVER, 7003, stack=client)
        conn, _ = await lsock.accept()
        await conn.sendall(b"partial line")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.readline(), 5)
        with pytest.raises(ConnectionResetError):
            await writer.wait_closed()
        assert writer.is_closing()
        with pytest.raises(ConnectionResetError):
            await writer.drain()
        writer.close()
        lsock.close()


async def test_open_connection_refused() -> None:
    client, server = pair()
    async with client, server:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(streams.open_connection(SERVER, 7999, stack=client), 5)


async def test_server_serve_forever_and_close() -> None:
    client, server = pair()
    async with client, server:
        lines: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            lines.append(await reader.readline())
            writer.close()

        srv = await streams.start_server(handle, [SERVER], 7004, stack=server, start_serving=False)
        assert isinstance(srv, Server)
        assert not srv.is_serving()
        assert srv.get_loop() is asyncio.get_running_loop()
        forever = asyncio.create_task(srv.serve_forever())
        await asyncio.sleep(0)
        assert srv.is_serving()
        with pytest.raises(RuntimeError):
            await srv.serve_forever()
        reader, writer = await streams.open_connection(SERVER, 7004, stack=client)
        writer.write(b"one\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        assert not srv.is_serving() and srv.sockets == ()
        await srv.wait_closed()
        assert lines == [b"one\n"]
        with pytest.raises(ConnectionRefusedError):  # no longer listening
            await asyncio.wait_for(streams.open_connection(SERVER, 7004, stack=client), 5)
