#!/usr/bin/env python3
"""TCP echo server: every byte comes back. Runs on aiostack (``--stack native``, the default) or
on the kernel's sockets (``--stack kernel``) with the same handler.

    python examples/echo.py --driver tap --addr 10.77.0.2/24 --host-addr 10.77.0.1/24 --port 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiostack.config import parse_options
from aiostack.network import Network, serve


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", action="store_true", help="print the stack's counters as JSON on exit")
    options = parse_options(argv, parser, default_port=7)
    network: list[Network] = []
    try:
        serve(echo, options=options, ready=network.append)
    finally:
        if options.extra["stats"] and network:
            print(json.dumps(network[0].counters(), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
