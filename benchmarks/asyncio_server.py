#!/usr/bin/env python3
"""``examples/http_server.py``'s handler on plain asyncio: the standard library's event loop and
the kernel's sockets, no uvloop — the "asyncio" row of the comparison.

``aiostack.app.run`` (which ``serve()`` uses) always runs uvloop, so this runner serves the very same
``handle`` coroutine with ``asyncio.start_server`` under ``asyncio.run``:

    python benchmarks/asyncio_server.py --host 127.0.0.1 --port 8080

Prints ``serving on HOST:PORT (asyncio, <loop class>)`` once it listens; SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "http_server.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiostack_bench_http_server", EXAMPLE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {EXAMPLE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def serve(host: str, port: int) -> None:
    handle = load_example().handle
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    server = await asyncio.start_server(handle, host, port)
    print(f"serving on {host}:{port} (asyncio, {type(loop).__name__})", flush=True)
    async with server:
        await stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())  # whatever was installed before
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
