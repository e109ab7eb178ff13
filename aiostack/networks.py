"""The two networks an application runs on — aiostack (:class:`NativeNetwork`) or the OS's
sockets through the running uvloop loop (:class:`KernelNetwork`) — with the same four asyncio
entry points, and :func:`start_control`, the control socket every running stack answers on.

Kept apart from :mod:`aiostack.network` (``serve``, ``open_network``) so that
:mod:`aiostack.cores` builds its reactors' networks without importing the module that imports it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Options
    from .control import ControlServer
    from .stack import Stack

__all__ = ["KernelNetwork", "NativeNetwork", "Network", "StreamHandler", "start_control"]

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

log = logging.getLogger("aiostack.network")


class KernelNetwork:
    """The OS's TCP/IP stack through the running (uvloop) event loop."""

    name = "kernel"
    stack: Stack | None = None

    async def start_server(self, cb: StreamHandler, host: str | None = None, port: int | None = None, **kw: Any) -> Any:
        return await asyncio.start_server(cb, host, port, **kw)

    async def open_connection(self, host: str, port: int, **kw: Any) -> Any:
        return await asyncio.open_connection(host, port, **kw)

    async def create_server(
        self, factory: Callable[[], asyncio.Protocol], host: str | None, port: int, **kw: Any
    ) -> Any:
        return await asyncio.get_running_loop().create_server(factory, host, port, **kw)

    async def create_connection(self, factory: Callable[[], asyncio.Protocol], host: str, port: int, **kw: Any) -> Any:
        return await asyncio.get_running_loop().create_connection(factory, host, port, **kw)

    def counters(self) -> dict[str, object]:
        return {}


class NativeNetwork:
    """aiostack: a :class:`Stack` with the asyncio-compatible entry points bound to it."""

    name = "native"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def start_server(self, cb: StreamHandler, host: str | None = None, port: int | None = None, **kw: Any) -> Any:
        from .streams import start_server

        return await start_server(cb, host, port, stack=self.stack, **kw)

    async def open_connection(self, host: str, port: int, **kw: Any) -> Any:
        from .streams import open_connection

        return await open_connection(host, port, stack=self.stack, **kw)

    async def create_server(
        self, factory: Callable[[], asyncio.Protocol], host: str | None, port: int, **kw: Any
    ) -> Any:
        from .protocols import create_server

        return await create_server(factory, host, port, stack=self.stack, **kw)

    async def create_connection(self, factory: Callable[[], asyncio.Protocol], host: str, port: int, **kw: Any) -> Any:
        from .protocols import create_connection

        return await create_connection(factory, host, port, stack=self.stack, **kw)

    def counters(self) -> dict[str, object]:
        return self.stack.counters()


Network = KernelNetwork | NativeNetwork


async def start_control(
    stack: Stack, options: Options, *, core: int | None = None, labels: dict[str, Any] | None = None
) -> ControlServer | None:
    """Start ``stack``'s control socket as ``--control`` says (``auto``, ``off`` or a path; reactor
    ``core`` of several answers at ``PATH.<core>``), or None when off. Where there is no place for
    the socket, the stack serves anyway and the reason is logged."""
    from .control import ControlServer

    if options.control == "off":
        return None
    path = None if options.control == "auto" else (options.control if core is None else f"{options.control}.{core}")
    control = ControlServer(stack, path, labels=labels)
    try:
        await control.start()
    except OSError as exc:
        log.warning("no control socket at %s: %s", control.path, exc)
        return None
    return control
