"""Running an application on a reactor: uvloop, signal handling, a clean stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvloop

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T | None:
    """Run ``main()`` on a uvloop loop; SIGINT and SIGTERM cancel it so ``finally`` blocks and
    ``async with`` exits run (counters get printed, devices closed). Returns its result, or None
    when stopped by a signal."""

    async def wrapper() -> T | None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(main())
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            return None
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return uvloop.run(wrapper())
