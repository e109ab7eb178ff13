"""Run by tests/test_xdp_veth.py inside a test-made namespace: a stack built from the standard
options (``--driver``, ``--filter`` ...: the production path, so the rules run where they run for
any application) that serves a short HTTP answer on 8080 and, before that, opens one connection of
its own to a kernel echo server (``--echo HOST:PORT``). Every line on stdin goes over that
connection and its echo is printed; SIGTERM prints the stack's counters as one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiostack.app import run
from aiostack.config import parse_options
from aiostack.stack import Stack
from aiostack.streams import open_connection, start_server

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line = await reader.readline()
        if not line:
            break
        if line in (b"\r\n", b"\n"):
            writer.write(ANSWER)
            await writer.drain()
    writer.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo", required=True)
    options = parse_options(parser=ap, default_port=8080)
    host, port = options.extra["echo"].rsplit(":", 1)
    counters: dict[str, object] = {}

    async def amain() -> None:
        stack = Stack.from_options(options)
        async with stack:
            server = await start_server(handle, str(options.addr.ip), options.port, stack=stack)
            reader, writer = await open_connection(host, int(port), stack=stack)
            print("ready", flush=True)
            loop = asyncio.get_running_loop()
            try:
                async with server:
                    while line := await loop.run_in_executor(None, sys.stdin.readline):
                        writer.write(line.encode())
                        print("echo", (await reader.readline()).decode().strip(), flush=True)
                    await asyncio.Event().wait()
            finally:
                counters.update(stack.counters())

    run(amain)
    print(json.dumps(counters, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
