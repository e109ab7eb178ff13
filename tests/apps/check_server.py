"""A kernel-side HTTP server for the client test (plain asyncio): ``GET /check/<i>`` answers
``item <i>\\n``. Prints "listening" once it listens."""

from __future__ import annotations

import sys

from aiohttp import web


async def check(request: web.Request) -> web.Response:
    return web.Response(text=f"item {request.match_info['i']}\n")


app = web.Application()
app.router.add_get("/check/{i}", check)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=lambda *_: print("listening", flush=True),
            access_log=None)
