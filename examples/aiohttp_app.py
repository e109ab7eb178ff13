"""An ordinary aiohttp application — nothing in it knows of aiostack. Run by the tests under
``aiostack run`` (and by the benchmark on plain uvloop):

    aiostack run --driver tap ... -- examples/aiohttp_app.py --port 8080 [--cert C --key K]

Routes: ``GET /`` a short text, ``GET /json`` a JSON document, ``GET /stream/N`` N bytes sent in
chunks (a StreamResponse), ``GET /ws`` a websocket that echoes every message, ``GET /file`` this
file (FileResponse: loop.sendfile).
"""

from __future__ import annotations

import argparse
import ssl

from aiohttp import web

routes = web.RouteTableDef()
CHUNK = bytes(range(256)) * 64  # 16 KiB


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return web.Response(text="Hello from aiohttp\n")


@routes.get("/json")
async def json_handler(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "peer": request.remote, "items": list(range(10))})


@routes.get("/stream/{n}")
async def stream(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    resp = web.StreamResponse()
    resp.content_length = n
    await resp.prepare(request)
    sent = 0
    while sent < n:
        part = CHUNK[: min(len(CHUNK), n - sent)]
        await resp.write(part)
        sent += len(part)
    await resp.write_eof()
    return resp


@routes.get("/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


@routes.get("/file")
async def file(request: web.Request) -> web.FileResponse:
    return web.FileResponse(__file__)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    app = web.Application()
    app.add_routes(routes)
    web.run_app(app, host=args.host, port=args.port, ssl_context=context, access_log=None)


if __name__ == "__main__":
    main()
