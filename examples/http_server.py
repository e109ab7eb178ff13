#!/usr/bin/env python3
"""HTTP/1.1 server with keep-alive and pipelining, parsing with httptools.

``GET /`` returns a small fixed body; ``GET /bytes/N`` returns N bytes. Runs on aiostack
(``--stack native``, the default) or the kernel's sockets (``--stack kernel``) with the same code.

    python examples/http_server.py --driver tap --addr 10.77.0.2/24 --host-addr 10.77.0.1/24 --port 8080
    curl http://10.77.0.2:8080/            # from the kernel side
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

import httptools

from aiostack.config import parse_options
from aiostack.network import Network, serve

BODY = b"Hello from aiostack!\n"
STATS: Counter[str] = Counter()
"""This process's requests, exported to ``aiostack stat`` (``app.http.requests``)."""
MAX_BYTES = 1 << 30
_CHUNK = bytes(range(256)) * 256  # 64 KiB of a fixed pattern for /bytes/N


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
            close = False
            STATS["requests"] += len(req.done)
            for method, url, keep_alive in req.done:
                close = not keep_alive
                await respond(writer, method, url, close)
                if close:
                    break
            req.done.clear()
            await writer.drain()
            if close:
                break
    except ConnectionError:
        pass
    finally:
        writer.close()


async def respond(writer: asyncio.StreamWriter, method: bytes, url: bytes, close: bool) -> None:
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
        return
    writer.write(response("404 Not Found", b"not found\n", close=close))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", action="store_true", help="print the stack's counters as JSON on exit")
    options = parse_options(argv, parser, default_port=8080)
    network: list[Network] = []

    def ready(net: Network) -> None:
        network.append(net)
        if net.stack is not None:
            net.stack.export("http", lambda: STATS)

    try:
        serve(handle, options=options, ready=ready)
    finally:
        if options.extra["stats"] and network:
            print(json.dumps(network[0].counters(), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
