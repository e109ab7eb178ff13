"""Feeding an :class:`asyncio.BufferedProtocol` from a transport that hands out ``bytes``.

aiostack's :class:`~aiostack.protocols.Transport` reads whole chunks out of the TCP receive buffer
and calls ``data_received``. asyncio's selector transports also accept a ``BufferedProtocol``
(``get_buffer``/``buffer_updated``, see the asyncio docs, "Buffered Streaming Protocols") — and
asyncio's own TLS layer, :class:`asyncio.sslproto.SSLProtocol`, is one. :class:`BufferedAdapter`
copies each chunk into the buffers the protocol offers, so such a protocol runs unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["BufferedAdapter", "as_data_protocol", "unwrap"]


class BufferedAdapter(asyncio.Protocol):
    """An ``asyncio.Protocol`` face for a ``BufferedProtocol``; everything else is passed on."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: asyncio.BufferedProtocol) -> None:
        self.protocol = protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.protocol.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        proto = self.protocol
        view = memoryview(data)
        while view:
            buf = proto.get_buffer(len(view))
            n = min(len(buf), len(view))
            if n == 0:
                raise RuntimeError("get_buffer() returned an empty buffer")
            buf[:n] = view[:n]
            proto.buffer_updated(n)
            view = view[n:]

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.protocol, name)


def as_data_protocol(protocol: Any) -> Any:
    """``protocol`` itself, or wrapped in a :class:`BufferedAdapter` when it is a
    ``BufferedProtocol`` (asyncio's rule: a protocol is buffered when it is an instance of it)."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        return BufferedAdapter(protocol)
    return protocol


def unwrap(protocol: Any) -> Any:
    """The protocol an application set, with any adapter taken off."""
    return protocol.protocol if isinstance(protocol, BufferedAdapter) else protocol
