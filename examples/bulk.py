#!/usr/bin/env python3
"""Bulk transfer over one TCP connection: ``send`` or ``receive`` N bytes, as client
(``--connect HOST``) or server (listening on ``--port``). Prints the SHA-256 of the bytes and the
throughput as one JSON line. Runs on aiostack or, with ``--stack kernel``, the kernel's sockets.

    python examples/bulk.py receive --port 5001 --driver tap ...          # server, receives
    python examples/bulk.py send --bytes 1000000000 --connect 10.77.0.2 --port 5001 --stack kernel
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time

from aiostack.app import run
from aiostack.config import parse_options
from aiostack.network import open_network

CHUNK = 256 * 1024


def pattern(seed: int) -> bytes:
    """A fixed pseudo-random chunk: both ends can know the SHA-256 without storing the data."""
    return random.Random(seed).randbytes(CHUNK)


class _NoHash:
    """Stands in for hashlib's SHA-256 under ``--no-verify``: hashing costs ~1.5 CPU seconds per
    GB here, more than the stack itself, which a throughput benchmark should not measure."""

    def update(self, data: bytes) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


def _hasher(verify: bool) -> hashlib._Hash | _NoHash:
    return hashlib.sha256() if verify else _NoHash()


async def send(writer: asyncio.StreamWriter, nbytes: int, seed: int, verify: bool = True) -> str:
    chunk = pattern(seed)
    h = _hasher(verify)
    left = nbytes
    while left:
        piece = chunk if left >= CHUNK else chunk[:left]
        writer.write(piece)
        h.update(piece)
        left -= len(piece)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    await writer.drain()
    return h.hexdigest()


async def receive(reader: asyncio.StreamReader, verify: bool = True) -> tuple[int, str]:
    h = _hasher(verify)
    n = 0
    while data := await reader.read(1 << 20):
        h.update(data)
        n += len(data)
    return n, h.hexdigest()


async def transfer(
    mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, nbytes: int, seed: int,
    verify: bool = True,
) -> dict[str, object]:
    start = time.perf_counter()
    if mode == "send":
        digest = await send(writer, nbytes, seed, verify)
        await reader.read()  # wait for the peer's close: everything was received
        count = nbytes
    else:
        count, digest = await receive(reader, verify)
    seconds = time.perf_counter() - start
    writer.close()
    return {
        "mode": mode,
        "bytes": count,
        "sha256": digest,
        "seconds": round(seconds, 3),
        "gbit_per_s": round(count * 8 / seconds / 1e9, 3) if seconds else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("send", "receive"))
    parser.add_argument("--bytes", type=int, default=100_000_000, help="bytes to send (default: 1e8)")
    parser.add_argument("--connect", metavar="HOST", help="connect to HOST (else listen on --port)")
    parser.add_argument("--seed", type=int, default=1, help="pattern seed (default: 1)")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the SHA-256 (throughput benchmarks); sha256 is then empty")
    options = parse_options(argv, parser, default_port=5001)
    x = options.extra
    if x["bytes"] < 0:
        parser.error("--bytes must be >= 0")

    async def amain() -> dict[str, object]:
        async with open_network(options) as net:
            if x["connect"]:
                reader, writer = await net.open_connection(x["connect"], options.port)
                return await transfer(x["mode"], reader, writer, x["bytes"], x["seed"], x["verify"])
            done: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

            async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                if done.done():
                    writer.close()
                    return
                try:
                    done.set_result(await transfer(x["mode"], reader, writer, x["bytes"], x["seed"], x["verify"]))
                except Exception as exc:  # report it as the result of the run
                    if not done.done():
                        done.set_exception(exc)

            bind = None if net.name == "kernel" else str(options.addr.ip)
            server = await net.start_server(one, bind, options.port)
            print(f"bulk {x['mode']} listening on {bind or '0.0.0.0'}:{options.port}", flush=True)
            async with server:
                return await done

    result = run(amain)
    if result is None:
        return 130
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
