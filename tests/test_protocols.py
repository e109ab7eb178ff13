"""asyncio Protocol/Transport on aiostack (two stacks on the in-memory link): the callback order,
echo, pause_reading/resume_reading closing and reopening the TCP window, write-buffer limits with
pause_writing/resume_writing, half-close through eof_received, connection_lost exactly once (None
on an orderly close, ConnectionResetError on a reset), writes after close, abort, the Server."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

import pytest

from aiostack import protocols
from aiostack.protocols import Server, Transport, create_connection, create_server
from aiostack.tcp.config import TcpConfig
from memnet import CLIENT, SERVER, blob, pair, until


class Recorder(asyncio.Protocol):
    """Records every callback; ``eof_keep_open`` is what eof_received returns."""

    def __init__(self, eof_keep_open: bool | None = None) -> None:
        self.calls: list[str] = []
        self.data = bytearray()
        self.transport: Transport | None = None
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.eof = asyncio.Event()
        self.eof_keep_open = eof_keep_open
        self.lost_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, Transport)
        self.transport = transport
        self.calls.append("made")

    def data_received(self, data: bytes) -> None:
        assert self.calls and self.calls[0] == "made" and "lost" not in self.calls
        if not self.calls or self.calls[-1] != "data":
            self.calls.append("data")
        self.data += data

    def eof_received(self) -> bool | None:
        self.calls.append("eof")
        self.eof.set()
        return self.eof_keep_open

    def pause_writing(self) -> None:
        self.calls.append("pause_writing")

    def resume_writing(self) -> None:
        self.calls.append("resume_writing")

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("lost")
        self.lost_count += 1
        if not self.lost.done():
            self.lost.set_result(exc)


def recording_factory() -> tuple[Callable[[], Recorder], asyncio.Future[Recorder]]:
    """A protocol factory for ``create_server`` and the future of the first protocol it made."""
    accepted: asyncio.Future[Recorder] = asyncio.get_running_loop().create_future()

    def factory() -> Recorder:
        proto = Recorder()
        if not accepted.done():
            accepted.set_result(proto)
        return proto

    return factory, accepted


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def test_echo_and_callback_order() -> None:
    client, server = pair()
    async with client, server:
        srv = await create_server(Echo, None, 7100, stack=server)
        transport, proto = await create_connection(Recorder, SERVER, 7100, stack=client)
        assert isinstance(proto, Recorder) and proto.transport is transport
        assert transport.get_extra_info("peername") == (SERVER, 7100)
        assert transport.get_extra_info("sockname")[0] == CLIENT
        assert transport.get_extra_info("socket").getpeername() == (SERVER, 7100)
        assert transport.get_extra_info("nothing", 42) == 42
        assert transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert transport.get_protocol() is proto
        assert transport.is_reading() and not transport.is_closing()
        transport.write(b"hello ")
        transport.writelines([b"proto", bytearray(b"col "), memoryview(b"world")])
        await until(lambda: bytes(proto.data) == b"hello protocol world", "echo")
        transport.close()
        assert transport.is_closing() and not transport.is_reading()
        assert await asyncio.wait_for(proto.lost, 5) is None
        await asyncio.sleep(0.01)
        assert proto.calls == ["made", "data", "lost"]
        assert proto.lost_count == 1
        srv.close()
        await srv.wait_closed()


async def test_pause_reading_closes_the_window_and_pause_writing_follows() -> None:
    client, server = pair(TcpConfig(rcvbuf=32768, sndbuf=32768))
    data = blob(600_000, seed=1)
    async with client, server:
        factory, accepted = recording_factory()

        srv = await create_server(factory, SERVER, 7101, stack=server)
        transport, cproto = await create_connection(Recorder, SERVER, 7101, stack=client)
        sproto = await accepted
        await until(lambda: sproto.transport is not None, "accepted")
        stransport = sproto.transport
        assert stransport is not None
        stransport.pause_reading()
        assert not stransport.is_reading()
        stransport.pause_reading()  # idempotent
        transport.set_write_buffer_limits(high=40000)
        assert transport.get_write_buffer_limits() == (10000, 40000)
        transport.write(data)
        # The server reads nothing: its receive window closes, our send buffer fills, the rest
        # stays in the transport buffer and the protocol is told to pause.
        sconn = stransport.get_extra_info("socket").connection
        cconn = transport.get_extra_info("socket").connection
        # "Closed": less than a segment of window left (sender-side silly window avoidance keeps
        # a sub-MSS remainder for its override timer), the receive buffer full of unread data.
        mss = cconn.snd_mss
        await until(
            lambda: cconn.sndbuf.space == 0 and sconn.rcvbuf.readable > 32768 - mss and sconn.rcvbuf.window < mss,
            "the window closed",
        )
        assert "pause_writing" in cproto.calls
        assert transport.get_write_buffer_size() > 40000
        assert not sproto.data
        stransport.resume_reading()
        assert stransport.is_reading()
        await until(lambda: len(sproto.data) == len(data), "all data arrived")
        assert bytes(sproto.data) == data
        assert cproto.calls == ["made", "pause_writing", "resume_writing"]
        assert transport.get_write_buffer_size() == 0
        transport.close()
        assert await asyncio.wait_for(cproto.lost, 5) is None
        await asyncio.wait_for(sproto.eof.wait(), 5)
        assert await asyncio.wait_for(sproto.lost, 5) is None  # eof_received returned None → close
        assert sproto.calls == ["made", "data", "eof", "lost"]
        srv.close()
        await srv.wait_closed()


async def test_write_buffer_limits_validation() -> None:
    client, server = pair()
    async with client, server:
        srv = await create_server(Echo, None, 7102, stack=server)
        transport, proto = await create_connection(Recorder, SERVER, 7102, stack=client)
        assert transport.get_write_buffer_limits() == (16384, 65536)
        transport.set_write_buffer_limits(low=100)
        assert transport.get_write_buffer_limits() == (100, 400)
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=10, low=20)
        with pytest.raises(TypeError):
            transport.write("text")  # type: ignore[arg-type]
        transport.set_write_buffer_limits(high=0)  # everything buffered counts as "too much"
        assert transport.get_write_buffer_size() == 0
        transport.close()
        await asyncio.wait_for(proto.lost, 5)
        srv.close()
        await srv.wait_closed()


async def test_half_close_keeps_write_side_open() -> None:
    client, server = pair()
    async with client, server:

        class Reverser(Recorder):
            def eof_received(self) -> bool:
                super().eof_received()
                assert self.transport is not None
                self.transport.write(bytes(self.data[::-1]))
                self.transport.close()
                return True

        srv = await create_server(Reverser, None, 7103, stack=server)
        transport, proto = await create_connection(lambda: Recorder(eof_keep_open=True), SERVER, 7103, stack=client)
        transport.write(b"stressed")
        assert transport.can_write_eof()
        transport.write_eof()
        transport.write_eof()  # idempotent
        with pytest.raises(RuntimeError):
            transport.write(b"x")
        await asyncio.wait_for(proto.eof.wait(), 5)
        assert bytes(proto.data) == b"desserts"
        assert not transport.is_closing()  # eof_received returned True
        transport.close()
        assert await asyncio.wait_for(proto.lost, 5) is None
        assert proto.calls == ["made", "data", "eof", "lost"]
        srv.close()
        await srv.wait_closed()


async def test_connection_lost_on_reset_client_side() -> None:
    client, server = pair()
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", 7104))
        lsock.listen()
        transport, proto = await create_connection(Recorder, SERVER, 7104, stack=client)
        conn, _ = await lsock.accept()
        await conn.sendall(b"before the reset")
        await until(lambda: bytes(proto.data) == b"before the reset", "data first")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, ConnectionResetError)
        await asyncio.sleep(0.01)
        assert proto.calls == ["made", "data", "lost"] and proto.lost_count == 1
        assert transport.is_closing()
        transport.write(b"ignored")  # after the connection is lost: ignored
        transport.close()
        transport.abort()
        lsock.close()


async def test_connection_lost_on_reset_server_side_while_writing() -> None:
    client, server = pair(TcpConfig(rcvbuf=32768, sndbuf=32768))
    async with client, server:
        factory, accepted = recording_factory()

        srv = await create_server(factory, None, 7105, stack=server)
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect((SERVER, 7105))
        sproto = await accepted
        await until(lambda: sproto.transport is not None, "accepted")
        assert sproto.transport is not None
        sproto.transport.write(blob(300_000))  # more than fits: the writer task is busy
        assert sproto.transport.get_write_buffer_size() > 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        exc = await asyncio.wait_for(sproto.lost, 5)
        assert isinstance(exc, ConnectionResetError)
        assert sproto.lost_count == 1
        assert sproto.transport.get_write_buffer_size() == 0
        await srv.__aexit__()  # close + wait_closed: the server has no connection left


async def test_writes_after_close_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    client, server = pair()
    async with client, server:
        srv = await create_server(Echo, None, 7106, stack=server)
        transport, proto = await create_connection(Recorder, SERVER, 7106, stack=client)
        transport.close()
        transport.close()  # idempotent
        with caplog.at_level(logging.WARNING, logger="aiostack.protocols"):
            for _ in range(protocols.LOG_THRESHOLD_FOR_CONNLOST_WRITES + 2):
                transport.write(b"late")
        assert any("socket.send() raised exception" in r.message for r in caplog.records)
        assert await asyncio.wait_for(proto.lost, 5) is None
        assert proto.calls == ["made", "lost"]
        srv.close()
        await srv.wait_closed()


async def test_abort_drops_the_buffer() -> None:
    client, server = pair(TcpConfig(rcvbuf=32768, sndbuf=32768))
    async with client, server:
        srv = await create_server(Recorder, None, 7107, stack=server)
        transport, proto = await create_connection(Recorder, SERVER, 7107, stack=client)
        transport.write(blob(200_000))
        assert transport.get_write_buffer_size() > 0
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        assert transport.is_closing()
        assert await asyncio.wait_for(proto.lost, 5) is None
        assert proto.lost_count == 1
        srv.abort_clients()
        srv.close()
        await asyncio.wait_for(srv.wait_closed(), 5)


async def test_create_connection_errors() -> None:
    client, server = pair()
    async with client, server:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(create_connection(Recorder, SERVER, 7999, stack=client), 5)
        with pytest.raises(ValueError):
            await create_connection(Recorder, None, None, stack=client)


async def test_server_interface() -> None:
    client, server = pair()
    async with client, server:
        srv = await create_server(Echo, None, None, stack=server, backlog=5)  # free port chosen
        assert isinstance(srv, Server)
        (lsock,) = srv.sockets
        host, port = lsock.getsockname()
        assert host == "0.0.0.0" and port > 0
        with pytest.raises(OSError):  # the port is taken
            await create_server(Echo, None, port, stack=server)
        async with srv:
            assert srv.is_serving()
            transports = [(await create_connection(Recorder, SERVER, port, stack=client)) for _ in range(3)]
            await until(lambda: len(srv._clients) == 3, "three connections")
            srv.close()  # stops listening; connections stay
            assert srv.sockets == () and not srv.is_serving()
            transports[0][0].write(b"still open")
            await until(lambda: bytes(transports[0][1].data) == b"still open", "echo after close")  # type: ignore[attr-defined]
            srv.close_clients()
            for _transport, proto in transports:
                assert await asyncio.wait_for(proto.lost, 5) is None  # type: ignore[attr-defined]
        await asyncio.wait_for(srv.wait_closed(), 5)
        with pytest.raises(RuntimeError):
            await srv.serve_forever()  # closed


async def test_create_connection_with_sock_or_local_addr() -> None:
    client, server = pair()
    async with client, server:
        srv = await create_server(Echo, SERVER, 7108, stack=server)
        transport, proto = await create_connection(Recorder, SERVER, 7108, stack=client, local_addr=(CLIENT, 45000))
        assert transport.get_extra_info("sockname") == (CLIENT, 45000)
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect((SERVER, 7108))
        transport2, proto2 = await create_connection(Recorder, stack=client, sock=sock)
        assert transport2.get_extra_info("socket") is sock
        transport2.write(b"via sock")
        await until(lambda: bytes(proto2.data) == b"via sock", "echo")  # type: ignore[attr-defined]
        with pytest.raises(ValueError):
            await create_connection(Recorder, SERVER, 7108, stack=client, sock=sock)
        transport.close()
        transport2.close()
        await asyncio.wait_for(proto.lost, 5)  # type: ignore[attr-defined]
        await asyncio.wait_for(proto2.lost, 5)  # type: ignore[attr-defined]
        srv.close()
        await srv.wait_closed()


async def test_data_and_fin_in_one_burst_reach_the_protocol() -> None:
    """Data and the FIN behind it arrive in one burst: the transport hands over the data, then
    reports the end of stream in the same wake (the reactor does not report the connection
    again for them)."""
    client, server = pair()
    async with client, server:
        factory, accepted = recording_factory()

        srv = await create_server(factory, SERVER, 7109, stack=server)
        sock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.connect((SERVER, 7109))
        proto = await asyncio.wait_for(accepted, 5)
        await until(lambda: proto.calls == ["made"], "connection_made")
        payload = blob(3000, seed=4)
        assert sock.send_nowait(payload) == len(payload)
        sock.shutdown(socket.SHUT_WR)  # the FIN leaves in the same flush as the data
        await asyncio.wait_for(proto.eof.wait(), 5)
        assert bytes(proto.data) == payload
        assert proto.calls[:3] == ["made", "data", "eof"]
        assert await asyncio.wait_for(proto.lost, 5) is None  # eof_received returned None → close
        sock.close()
        srv.close()
        await srv.wait_closed()


class SmallBuffers(asyncio.BufferedProtocol):
    """A BufferedProtocol offering 7-byte buffers: every chunk is copied in pieces."""

    def __init__(self) -> None:
        self.buf = bytearray(7)
        self.data = bytearray()
        self.transport: asyncio.BaseTransport | None = None
        self.eof = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.buf[:nbytes]

    def eof_received(self) -> bool:
        self.eof.set()
        return False


async def test_buffered_protocol_is_fed_through_its_buffers() -> None:
    client, server = pair()
    async with client, server:
        accepted: asyncio.Future[SmallBuffers] = asyncio.get_running_loop().create_future()

        def factory() -> SmallBuffers:
            proto = SmallBuffers()
            accepted.set_result(proto)
            return proto

        srv = await create_server(factory, SERVER, 7110, stack=server)
        transport, _ = await create_connection(Recorder, SERVER, 7110, stack=client)
        sproto = await asyncio.wait_for(accepted, 5)
        await until(lambda: sproto.transport is not None, "connection_made")
        assert isinstance(sproto.transport, asyncio.Transport)
        assert sproto.transport.get_protocol() is sproto  # the protocol itself, no adapter
        payload = blob(20_000, seed=5)
        transport.write(payload)
        transport.write_eof()
        await asyncio.wait_for(sproto.eof.wait(), 5)
        assert bytes(sproto.data) == payload
        transport.close()
        srv.close()
        await srv.wait_closed()


async def test_transport_is_an_asyncio_transport_over_its_core() -> None:
    """What aiohttp, uvicorn and asyncio's TLS check; and set_protocol switches the kind of
    protocol the core feeds (data_received ↔ get_buffer/buffer_updated)."""
    client, server = pair()
    async with client, server:
        srv = await create_server(Echo, SERVER, 7111, stack=server)
        transport, proto = await create_connection(Recorder, SERVER, 7111, stack=client)
        assert isinstance(transport, asyncio.Transport)
        assert isinstance(transport, asyncio.ReadTransport) and isinstance(transport, asyncio.WriteTransport)
        assert transport._loop is asyncio.get_running_loop()
        buffered = SmallBuffers()
        transport.set_protocol(buffered)
        assert transport.get_protocol() is buffered
        transport.write(b"through small buffers")
        await until(lambda: bytes(buffered.data) == b"through small buffers", "echo into buffers")
        transport.set_protocol(proto)
        transport.write(b"and back")
        await until(lambda: bytes(proto.data) == b"and back", "echo to data_received")  # type: ignore[attr-defined]
        transport.close()
        srv.close()
        await srv.wait_closed()
