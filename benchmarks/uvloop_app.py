"""Run an unmodified asyncio program on uvloop (the kernel reference for ``aiostack run``):
``python benchmarks/uvloop_app.py PROGRAM ARGS…`` installs uvloop's policy, then runs PROGRAM as
``__main__``, so ``web.run_app`` gets a uvloop loop."""

from __future__ import annotations

import asyncio
import runpy
import sys

import uvloop

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
