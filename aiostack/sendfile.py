"""``sendfile`` on aiostack: the file read in blocks and written, as asyncio does when
``os.sendfile`` cannot be used (``loop.sendfile(..., fallback=True)``, ``loop.sock_sendfile``) —
aiostack's transports have no kernel socket to hand a file to. Blocks are read in the loop's
default executor, so a slow disk does not stall the reactor."""

from __future__ import annotations

import asyncio
from typing import Any

from .tcp_socket import TcpSocket

__all__ = ["send_file", "sock_send_file"]

BLOCK = 256 * 1024


class _SendfileFlow(asyncio.Protocol):
    """Stands in for the transport's protocol while a file goes out: catches
    ``pause_writing``/``resume_writing`` (so the sender waits for the buffer to drain) and a lost
    connection, and hands the original protocol back afterwards — asyncio's
    ``_SendfileFallbackProtocol``, for transports that are not asyncio's own."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._proto = transport.get_protocol()
        self._was_reading = transport.is_reading() if isinstance(transport, asyncio.ReadTransport) else False
        low, high = transport.get_write_buffer_limits()
        self._ready: asyncio.Future[None] | None = None
        if transport.get_write_buffer_size() > high:
            self._ready = asyncio.get_running_loop().create_future()
        self._low = low
        self._lost: BaseException | None = None
        if self._was_reading:
            transport.pause_reading()  # type: ignore[attr-defined]
        transport.set_protocol(self)

    async def drain(self) -> None:
        if self._lost is not None:
            raise self._lost
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._ready is not None:
            await self._ready

    def pause_writing(self) -> None:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        fut, self._ready = self._ready, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: connection should have been paused while sending a file")

    def eof_received(self) -> bool:
        raise RuntimeError("Invalid state: connection should have been paused while sending a file")

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc if exc is not None else ConnectionError("Connection is closed by peer")
        fut, self._ready = self._ready, None
        if fut is not None and not fut.done():
            fut.set_exception(self._lost)
            fut.exception()
        self._proto.connection_lost(exc)

    def restore(self) -> None:
        self._transport.set_protocol(self._proto)
        if self._was_reading and not self._transport.is_closing():
            self._transport.resume_reading()  # type: ignore[attr-defined]
        fut, self._ready = self._ready, None
        if fut is not None and not fut.done():
            fut.cancel()


async def send_file(
    loop: asyncio.AbstractEventLoop, transport: asyncio.WriteTransport, file: Any, offset: int, count: int | None
) -> int:
    """``loop.sendfile`` on an aiostack transport (or TLS over one): the bytes sent."""
    if offset:
        file.seek(offset)
    flow = _SendfileFlow(transport)
    total = 0
    try:
        while count is None or total < count:
            block = BLOCK if count is None else min(BLOCK, count - total)
            data = await loop.run_in_executor(None, file.read, block)
            if not data:
                break
            await flow.drain()
            transport.write(data)
            total += len(data)
        await flow.drain()
        return total
    finally:
        if total and hasattr(file, "seek"):
            file.seek(offset + total)
        flow.restore()


async def sock_send_file(
    loop: asyncio.AbstractEventLoop, sock: TcpSocket, file: Any, offset: int, count: int | None
) -> int:
    """``loop.sock_sendfile`` on an aiostack socket: the bytes sent."""
    if offset:
        file.seek(offset)
    total = 0
    while count is None or total < count:
        block = BLOCK if count is None else min(BLOCK, count - total)
        data = await loop.run_in_executor(None, file.read, block)
        if not data:
            break
        await sock.sendall(data)
        total += len(data)
    return total
