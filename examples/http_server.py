#!/usr/bin/env python3
"""HTTP/1.1 server with keep-alive and pipelining, parsing with httptools.

``GET /`` returns a small fixed body; ``GET /bytes/N`` returns N bytes. Runs on aiostack
(``--stack native``, the default) or the kernel's sockets (``--stack kernel``) with the same code.

Slow and stalled clients are closed (slowloris; peers that stop reading): a request must be
complete within ``--request-timeout`` seconds of the connection's start or of the previous
response, and a response that makes no progress for ``--idle-timeout`` seconds is aborted (counted
as ``request_timeouts`` and ``idle_timeouts`` in ``app.http``). ``--tcp-mem-snd``/``--tcp-mem-rcv``
set the reactor's TCP buffer totals (aiostack.tcp.memory).

    python examples/http_server.py --driver tap --addr 10.77.0.2/24 --host-addr 10.77.0.1/24 --port 8080
    curl http://10.77.0.2:8080/            # from the kernel side
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import sys
from collections import Counter

import httptools

from aiostack.config import parse_options
from aiostack.network import Network, serve

BODY = b"Hello from aiostack!\n"
STATS: Counter[str] = Counter()
"""This process's requests, exported to ``aiostack stat`` (``app.http.requests``)."""
MAX_BYTES = 1 << 30
# A fixed pattern for /bytes/N, written 16 KiB at a time: a stalled reader keeps at most one
# such write in its transport once the TCP send total is reached (tcp/memory.py).
_CHUNK = bytes(range(256)) * 64
REQUEST_TIMEOUT = 30.0
"""Seconds allowed for a complete request (from the connection's start or the previous response)."""
IDLE_TIMEOUT = 60.0
"""Seconds a response may make no progress (the peer not reading) before the connection is aborted."""


class _Watchdog:
    """One timer per connection that aborts it once ``deadline`` (loop time) passes: moving the
    deadline is an assignment, the timer re-arms itself lazily (no timer per read or write)."""

    __slots__ = ("deadline", "handle", "loop", "reason", "transport")

    def __init__(self, transport: asyncio.BaseTransport, deadline: float, reason: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport = transport
        self.deadline = deadline
        self.reason = reason
        self.handle: asyncio.TimerHandle | None = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        if self.loop.time() < self.deadline:
            self.handle = self.loop.call_at(self.deadline, self._fire)
            return
        self.handle = None
        STATS[self.reason] += 1
        # Reset, not close: a close would queue a FIN behind the unsent response, which a peer
        # that never reads (zero window) never receives.
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def response(status: str, body: bytes | None, *, length: int | None = None, close: bool = False) -> bytes:
    n = len(body) if body is not None else (length or 0)
    head = (
        f"HTTP/1.1 {status}\r\nServer: aiostack\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {n}\r\n{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
    ).encode()
    return head + (body or b"")


class _Request:
    """httptools callbacks for one connection: collects complete requests as (method, path, keep_alive)."""

    __slots__ = ("done", "parser", "url")

    def __init__(self) -> None:
        self.url = b""
        self.done: list[tuple[bytes, bytes, bool]] = []
        self.parser = httptools.HttpRequestParser(self)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        p = self.parser
        self.done.append((p.get_method(), self.url, p.should_keep_alive()))
        self.url = b""


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    req = _Request()
    loop = asyncio.get_running_loop()
    dog = _Watchdog(writer.transport, loop.time() + REQUEST_TIMEOUT, "request_timeouts")
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            try:
                req.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                writer.write(response("501 Not Implemented", b"upgrade not supported\n", close=True))
                break
            except httptools.HttpParserError:
                writer.write(response("400 Bad Request", b"bad request\n", close=True))
                break
            if not req.done:
                continue  # a partial request: the request deadline keeps running
            close = False
            STATS["requests"] += len(req.done)
            dog.reason = "idle_timeouts"
            dog.deadline = loop.time() + IDLE_TIMEOUT
            for method, url, keep_alive in req.done:
                close = not keep_alive
                await respond(writer, method, url, close, dog)
                if close:
                    break
            req.done.clear()
            await writer.drain()
            if close:
                break
            dog.reason = "request_timeouts"
            dog.deadline = loop.time() + REQUEST_TIMEOUT
    except ConnectionError:
        pass
    finally:
        dog.cancel()
        writer.close()


async def respond(
    writer: asyncio.StreamWriter, method: bytes, url: bytes, close: bool, dog: _Watchdog | None = None
) -> None:
    path = url.split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD"):
        writer.write(response("405 Method Not Allowed", b"only GET\n", close=close))
        return
    if path == b"/":
        writer.write(response("200 OK", BODY if method == b"GET" else None, length=len(BODY), close=close))
        return
    if path.startswith(b"/bytes/"):
        try:
            n = int(path[7:])
        except ValueError:
            n = -1
        if not 0 <= n <= MAX_BYTES:
            writer.write(response("400 Bad Request", b"N must be 0..2**30\n", close=close))
            return
        writer.write(response("200 OK", None, length=n, close=close))
        if method == b"HEAD":
            return
        left = n
        while left:
            chunk = _CHUNK if left >= len(_CHUNK) else _CHUNK[:left]
            writer.write(chunk)
            left -= len(chunk)
            await writer.drain()
            if dog is not None:
                dog.deadline = dog.loop.time() + IDLE_TIMEOUT  # progress
        return
    writer.write(response("404 Not Found", b"not found\n", close=close))


def main(argv: list[str] | None = None) -> int:
    global REQUEST_TIMEOUT, IDLE_TIMEOUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", action="store_true", help="print the stack's counters as JSON on exit")
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT, metavar="S",
                        help=f"seconds for a complete request (default {REQUEST_TIMEOUT:g})")
    parser.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT, metavar="S",
                        help=f"seconds a response may make no progress (default {IDLE_TIMEOUT:g})")
    parser.add_argument("--tcp-mem-snd", type=int, default=None, metavar="BYTES",
                        help="TCP send-buffer bytes of all connections (TcpConfig.mem_sndbuf_total)")
    parser.add_argument("--tcp-mem-rcv", type=int, default=None, metavar="BYTES",
                        help="TCP receive-buffer bytes of all connections (TcpConfig.mem_rcvbuf_total)")
    options = parse_options(argv, parser, default_port=8080)
    REQUEST_TIMEOUT = options.extra["request_timeout"]
    IDLE_TIMEOUT = options.extra["idle_timeout"]
    network: list[Network] = []

    def ready(net: Network) -> None:
        network.append(net)
        if net.stack is not None:
            net.stack.export("http", lambda: STATS)
            tcp = net.stack.tcp
            if tcp is not None:
                if options.extra["tcp_mem_snd"] is not None:
                    tcp.config.mem_sndbuf_total = tcp.memory.sndbuf_total = options.extra["tcp_mem_snd"]
                if options.extra["tcp_mem_rcv"] is not None:
                    tcp.config.mem_rcvbuf_total = tcp.memory.rcvbuf_total = options.extra["tcp_mem_rcv"]

    try:
        serve(handle, options=options, ready=ready)
    finally:
        if options.extra["stats"] and network:
            print(json.dumps(network[0].counters(), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
