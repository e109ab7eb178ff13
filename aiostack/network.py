"""Two stacks, one application (Seastar's ``--network-stack native|posix``).

:func:`open_network` gives an application the four asyncio entry points — ``start_server``,
``open_connection``, ``create_server``, ``create_connection`` — served either by aiostack
(``--stack native``) or by uvloop on the OS's own sockets (``--stack kernel``), so any comparison
runs identical application code. :func:`serve` is the one-call entry for servers (Seastar's
``app_template``, F-Stack's ``ff_run``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from .app import run
from .config import Options, options_from_mapping
from .cores import serve_cores
from .devices import DeviceError
from .drivers.base import Driver
from .networks import KernelNetwork, NativeNetwork, Network, StreamHandler, start_control
from .stack import Stack

__all__ = ["KernelNetwork", "NativeNetwork", "Network", "StreamHandler", "open_network", "serve"]


@contextlib.asynccontextmanager
async def open_network(options: Options, *, driver: Driver | None = None) -> AsyncIterator[Network]:
    """The network the options choose, started, and closed again on exit."""
    if options.stack == "kernel":
        yield KernelNetwork()
        return
    stack = Stack.from_options(options, driver=driver)
    async with stack:
        control = await start_control(stack, options)
        try:
            yield NativeNetwork(stack)
        finally:
            if control is not None:
                control.close()


def serve(
    handler: StreamHandler,
    port: int | None = None,
    *,
    options: Options | None = None,
    host: str | None = None,
    ready: Callable[[Network], None] | None = None,
    device: Driver | None = None,
    **kw: Any,
) -> None:
    """Serve ``handler(reader, writer)`` (asyncio streams) for every connection on ``port``,
    until SIGINT or SIGTERM.

    The network comes from the standard options — ``options`` (an :class:`Options`) or keyword
    arguments (``stack="native"``, ``driver="tap"``, ``addr="10.77.0.2/24"``,
    ``host_addr=...``, …). ``cores=N`` > 1: N reactor processes, one per core
    (:mod:`aiostack.cores`).
    ``ready(network)`` is called once the server listens. ``device``: an opened driver to serve
    on instead of the one the options name (a memory port; with ``cores=N``, an end of a
    :class:`~aiostack.drivers.shared_link.SharedMemoryLink` with N queues).
    """
    if options is None:
        options = options_from_mapping({**kw, **({"port": port} if port else {})})
    elif kw:
        raise TypeError("pass either options= or keyword options, not both")
    port = port or options.port
    if not port:
        raise ValueError("serve() needs a port")
    if options.cores != 1:
        try:
            serve_cores(handler, options, port, host, ready, device)
        except DeviceError as exc:  # a configuration problem, not a crash: one line
            sys.exit(f"aiostack: {exc}")
        return

    async def main() -> None:
        async with open_network(options, driver=device) as net:
            bind = host if host is not None else (None if net.name == "kernel" else str(options.addr.ip))
            server = await net.start_server(handler, bind, port)
            print(f"serving on {bind or '0.0.0.0'}:{port} ({net.name} stack)", flush=True)
            if ready is not None:
                ready(net)
            async with server:
                await server.serve_forever()

    try:
        run(main)
    except DeviceError as exc:
        sys.exit(f"aiostack: {exc}")
    except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled by run(); belt and braces
        sys.exit(130)
