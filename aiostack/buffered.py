"""Feeding an :class:`asyncio.BufferedProtocol` from a transport that reads ``bytes``.

aiostack's :class:`~aiostack.protocols.Transport` reads whole chunks out of the TCP receive buffer.
asyncio's selector transports also accept a ``BufferedProtocol`` (``get_buffer``/
``buffer_updated``, see the asyncio docs, "Buffered Streaming Protocols") — and asyncio's own TLS
layer, :class:`asyncio.sslproto.SSLProtocol`, is one. The transport tells the two kinds apart once
per protocol (:func:`is_buffered`) and hands a buffered protocol each chunk with
:func:`feed_buffered`, which copies it into the buffers the protocol offers, so such a protocol
runs unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["feed_buffered", "is_buffered"]


def is_buffered(protocol: Any) -> bool:
    """asyncio's rule: a protocol is buffered when it is an instance of ``BufferedProtocol``."""
    return isinstance(protocol, asyncio.BufferedProtocol)


def feed_buffered(protocol: asyncio.BufferedProtocol, data: bytes) -> None:
    """Copy ``data`` into ``protocol.get_buffer(n)`` buffers, ``buffer_updated`` after each."""
    view = memoryview(data)
    while view:
        buf = protocol.get_buffer(len(view))
        n = min(len(buf), len(view))  # type: ignore[arg-type]
        if n == 0:
            raise RuntimeError("get_buffer() returned an empty buffer")
        buf[:n] = view[:n]  # type: ignore[index]
        protocol.buffer_updated(n)
        view = view[n:]
