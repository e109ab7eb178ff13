"""A kernel-side websocket client (plain asyncio, aiohttp): sends N messages to URL, one at a
time, and checks that each echo is the message sent. Prints a JSON summary; exit 0 only when all
came back intact."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def main(url: str, count: int) -> int:
    ok = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        for i in range(count):
            if i % 2:
                payload: str | bytes = f"message {i} " + "x" * (i % 300)
                await ws.send_str(payload)
            else:
                payload = bytes((i + k) % 256 for k in range(i % 500 + 1))
                await ws.send_bytes(payload)
            msg = await asyncio.wait_for(ws.receive(), 10)
            if msg.data == payload:
                ok += 1
    print(json.dumps({"sent": count, "echoed_intact": ok}))
    return 0 if ok == count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
