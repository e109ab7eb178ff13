"""Kernel-side client for the retransmission test: N connections to an echo server, then N
payloads written at once, every echo read back and compared. Prints a JSON line."""

from __future__ import annotations

import asyncio
import json
import sys


async def main(host: str, port: int, conns: int, size: int) -> None:
    pairs = [await asyncio.open_connection(host, port) for _ in range(conns)]
    payloads = [bytes((i + k) & 0xFF for k in range(size)) for i in range(conns)]
    for (_reader, writer), data in zip(pairs, payloads, strict=True):
        writer.write(data)  # all before any read: the echoes come back as one burst

    async def read_back(reader: asyncio.StreamReader, data: bytes) -> bool:
        return await reader.readexactly(len(data)) == data

    results = await asyncio.wait_for(
        asyncio.gather(*(read_back(r, d) for (r, _w), d in zip(pairs, payloads, strict=True))), 60
    )
    for _reader, writer in pairs:
        writer.close()
    print(json.dumps({"connections": conns, "intact": sum(results)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
