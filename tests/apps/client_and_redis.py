"""One program, both stacks: an aiohttp ClientSession fetches URL N times (through aiostack when
the program runs under ``aiostack run`` and URL's host is on aiostack's network) while redis-py
(asyncio) reads and writes a Redis server on 127.0.0.1 (loopback: always the kernel). Checks every
body against the server's ``/check/<i>`` convention (the body is ``item <i>\\n``) and every Redis
value; prints a JSON summary, exit 0 only when everything matched.

    aiostack run ... -- tests/apps/client_and_redis.py http://10.77.0.1:8081 1000 REDIS_PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
import redis.asyncio as redis


async def fetch_all(base: str, count: int) -> int:
    ok = 0
    connector = aiohttp.TCPConnector(limit=20)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(i: int) -> bool:
            async with session.get(f"{base}/check/{i}") as resp:
                return resp.status == 200 and await resp.text() == f"item {i}\n"

        for start in range(0, count, 50):
            results = await asyncio.gather(*(one(i) for i in range(start, min(count, start + 50))))
            ok += sum(results)
    return ok


async def redis_work(port: int, count: int) -> int:
    client = redis.Redis(host="127.0.0.1", port=port)
    ok = 0
    try:
        for i in range(count):
            await client.set(f"key:{i}", f"value {i}")
            if await client.get(f"key:{i}") == f"value {i}".encode():
                ok += 1
    finally:
        await client.aclose()
    return ok


async def main() -> int:
    base, count, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    loop = asyncio.get_running_loop()
    fetched, stored = await asyncio.gather(fetch_all(base, count), redis_work(port, count // 2))
    stack = getattr(loop, "aiostack", None)
    through = stack.counters()["app"]["loop"] if stack is not None else {}
    print(json.dumps({"fetched_ok": fetched, "redis_ok": stored, "loop": type(loop).__module__ + "." +
                      type(loop).__name__, "aiostack_loop_counters": through}))
    return 0 if fetched == count and stored == count // 2 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
