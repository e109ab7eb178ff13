"""asyncio streams on aiostack: :func:`start_server` and :func:`open_connection`.

These are asyncio's own streams: the reader is an :class:`asyncio.StreamReader` (its ``limit``,
``readline``/``readexactly``/``readuntil``/``read`` and their exceptions are asyncio's), the
writer an :class:`asyncio.StreamWriter`, joined by :class:`asyncio.StreamReaderProtocol` — only
the transport underneath is aiostack's (:class:`aiostack.protocols.Transport`). So
``writer.drain()`` blocks while the transport's write buffer is above its high-water mark (see
:mod:`aiostack.protocols` for what is counted and how backpressure reaches the peer), the
reader's buffer above ``2 * limit`` pauses reading (the TCP window then closes), and
``get_extra_info('peername'|'sockname'|'socket')`` answer with the aiostack socket's.

The same application code runs on either stack::

    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(line)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 8888)              # kernel
    server = await aiostack.streams.start_server(handle, None, 8888, stack=stack)  # aiostack
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from .protocols import Server, Transport, create_connection, create_server

if TYPE_CHECKING:
    from .stack import Stack

__all__ = [
    "Server",
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "Transport",
    "open_connection",
    "start_server",
]

StreamReader = asyncio.StreamReader
StreamWriter = asyncio.StreamWriter
StreamReaderProtocol = asyncio.StreamReaderProtocol

DEFAULT_LIMIT = 2**16
"""asyncio's default stream buffer limit (64 KiB)."""

ClientConnected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


async def open_connection(
    host: str | None = None,
    port: int | None = None,
    *,
    stack: Stack | None = None,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``(host, port)`` through ``stack``; ``(reader, writer)`` as
    :func:`asyncio.open_connection` returns them. Other keyword arguments (``local_addr``,
    ``sock``) go to :func:`aiostack.protocols.create_connection`."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(lambda: protocol, host, port, stack=stack, **kwds)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_server(
    client_connected_cb: ClientConnected,
    host: str | Iterable[str] | None = None,
    port: int | None = None,
    *,
    stack: Stack | None = None,
    backlog: int = 100,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> Server:
    """Serve ``client_connected_cb(reader, writer)`` (a plain function or a coroutine function,
    run as a task) for every connection to ``(host, port)`` on ``stack``, as
    :func:`asyncio.start_server` does. Returns a :class:`~aiostack.protocols.Server`. Other keyword
    arguments (``reuse_address``, ``reuse_port``, ``sock``, ``start_serving``) go to
    :func:`aiostack.protocols.create_server`."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(factory, host, port, stack=stack, backlog=backlog, **kwds)
