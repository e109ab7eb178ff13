#!/usr/bin/env python3
"""Fetch a URL over aiostack (or the kernel's sockets with ``--stack kernel``) and print the
status and body length. Parsing by httptools.

    python examples/http_client.py http://10.77.0.1:8000/ --driver tap --addr 10.77.0.2/24 --host-addr 10.77.0.1/24
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from urllib.parse import urlsplit

import httptools

from aiostack.app import run
from aiostack.config import parse_options
from aiostack.network import open_network


class _Response:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.length = 0
        self.digest = hashlib.sha256()
        self.complete = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.length += len(body)
        self.digest.update(body)

    def on_message_complete(self) -> None:
        self.complete = True


async def fetch(net, url: str, timeout: float) -> dict[str, object]:  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs with a host: {url!r}")
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.wait_for(net.open_connection(parts.hostname, port), timeout)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: aiostack-http-client\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    resp = _Response()
    while not resp.complete:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            break
        resp.parser.feed_data(data)
    writer.close()
    return {
        "status": resp.status,
        "body_length": resp.length,
        "sha256": resp.digest.hexdigest(),
        "complete": resp.complete,
        "content_type": resp.headers.get("content-type"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step (default: 10)")
    options = parse_options(argv, parser)

    async def amain() -> dict[str, object]:
        async with open_network(options) as net:
            return await fetch(net, options.extra["url"], options.extra["timeout"])

    try:
        result = run(amain)
    except (OSError, TimeoutError, ValueError, httptools.HttpParserError) as exc:
        print(f"http_client: {options.extra['url']}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if result is None:
        return 130
    print(f"status {result['status']}, body {result['body_length']} bytes", flush=True)
    print(json.dumps(result), flush=True)
    return 0 if result["complete"] and 200 <= int(result["status"]) < 400 else 1  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
