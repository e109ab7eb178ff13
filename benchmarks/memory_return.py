#!/usr/bin/env python3
"""Memory given back after pressure: N peers that request a large body and never read it, then
go away; the process's RSS before, at the peak, and after (issue #13: a server stayed at 2.29 GB
after 2,000 stalled downloads were gone, because the tuned allocator keeps freed memory).

Two aiostack stacks on the in-memory link in one process (no root): the server writes ``--body``
bytes on each of ``--connections`` connections whose client never reads, so every connection's
send buffer (1 MiB by default, under the reactor's send total) and the client's receive window
fill; then every client closes (an RST: unread data), the server's connections end, and the
buffers are freed. ``aiostack.malloc.MemoryReturn`` (once a second) sees the stacks' buffer
bytes fall far below their peak and calls ``malloc_trim(0)``.

    python benchmarks/memory_return.py [--connections 1000] [--body 10000000]
    AIOSTACK_MALLOC_TRIM=0 python benchmarks/memory_return.py     # without giving memory back
    python benchmarks/memory_return.py --tap [--connections 1000]  # root: the issue's own shape

``--tap`` runs the issue's reproduction instead (root, in a network namespace it creates and
deletes): the HTTP example on a TAP with 5-second request and idle timeouts, and ``--connections``
kernel sockets inside the namespace that request 10 MB with a 4 KiB receive buffer and never read
(``tests/attacks/tcp_attack_helpers.py``'s slowloris attacker, stalled half only); the server's
RSS before, with all of them stalled, and after the timeouts closed them.

Measured (compiled build): ``--tap --connections 1000``: server RSS 62.7 MB at start, 381.0 with
the 1,000 stalled downloads, 73.3 MB once the timeouts had closed them (379.4 MB with
``AIOSTACK_MALLOC_TRIM=0``). In-process, pure build, ``--connections 200 --body 3000000``: 224 ->
723 -> 233 MB (723 without).

Prints one JSON object (RSS in MB: ``start``, ``peak``, ``closed`` right after the connections
ended, ``after`` once the trim had its chance, and the trim counters).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from aiostack.tcp.config import TcpConfig

SERVER, CLIENT, PORT = "10.9.0.2", "10.9.0.1", 9400


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _settle(stacks: tuple[Stack, ...], limit: float) -> None:
    """Until the stacks' buffer bytes stop changing for a second (the stalled peers are full)."""
    last, since = -1, time.monotonic()
    end = time.monotonic() + limit
    while time.monotonic() < end:
        await asyncio.sleep(0.2)
        held = sum(s.buffer_bytes() for s in stacks)
        if held != last:
            last, since = held, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            return


@contextlib.asynccontextmanager
async def stalled_downloads(
    body: int, config: TcpConfig, port: int = PORT
) -> AsyncIterator[tuple[Stack, Stack, set[asyncio.Task[None]]]]:
    """Two running stacks on the in-memory link, (client, server, the server's writer tasks): the
    server listens on ``port`` and writes ``body`` bytes on every connection it accepts, then
    closes it. The caller connects client sockets and never reads from them."""
    link = MemoryLink()
    server = Stack(seed=2, tcp_config=config)
    server.attach(link.port(name="server"), f"{SERVER}/24")
    client = Stack(seed=1, tcp_config=config)
    client.attach(link.port(name="client"), f"{CLIENT}/24")
    payload = bytes(body)
    writers: set[asyncio.Task[None]] = set()

    async def write(sock: Any) -> None:
        try:
            await sock.sendall(payload)
        except OSError:
            pass  # the client's RST
        finally:
            sock.close()

    async def accept(lsock: Any) -> None:
        while True:
            sock, _ = await lsock.accept()
            task = asyncio.create_task(write(sock))
            writers.add(task)
            task.add_done_callback(writers.discard)

    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", port))
        lsock.listen(4096)
        acceptor = asyncio.create_task(accept(lsock))
        try:
            yield client, server, writers
        finally:
            acceptor.cancel()
            lsock.close()


async def run(connections: int, body: int, wait: float = 3.0) -> dict[str, Any]:
    async with stalled_downloads(body, TcpConfig(msl=0.5)) as (client, server, writers):
        await client.ping(SERVER, timeout=5.0)
        gc.collect()
        start = rss_mb()
        socks = []
        for _ in range(connections):
            s = client.socket(socket.AF_INET, socket.SOCK_STREAM)
            await s.connect((SERVER, PORT))
            socks.append(s)
        await _settle((client, server), 120)
        peak = rss_mb()
        held = {"server": server.buffer_bytes(), "client": client.buffer_bytes()}
        for s in socks:
            s.close()  # unread data: an RST (RFC 2525 §2.17), the server's connection ends
        del socks
        for _ in range(600):
            await asyncio.sleep(0.1)
            if not writers and not client.tcp.connections and not server.tcp.connections:
                break
        gc.collect()
        closed = rss_mb()
        await asyncio.sleep(wait)  # MemoryReturn checks once a second
        after = rss_mb()
        out = {
            "connections": connections,
            "body_bytes": body,
            "rss_mb": {"start": round(start, 1), "peak": round(peak, 1), "closed": round(closed, 1),
                       "after": round(after, 1)},
            "buffer_bytes_at_peak": held,
            "malloc": {"server": server.counters()["malloc"], "client": client.counters()["malloc"]},
            "pool": {"server": server.counters()["pool"], "client": client.counters()["pool"]},
            "connections_left": {"client": len(client.tcp.connections), "server": len(server.tcp.connections)},
        }
    return out


def run_tap(connections: int, wait: float) -> dict[str, Any]:
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent.parent / "tests"
    sys.path[:0] = [str(tests), str(tests / "attacks")]
    from tcp_attack_helpers import finish_attack, rss_kb, start_attack, start_server, stop_server

    from aiostack.netns import NetNS

    with NetNS() as ns:
        server = start_server(ns, "--request-timeout", "5", "--idle-timeout", "5")
        try:
            start = rss_kb(server.pid) / 1024
            attack = start_attack(ns, "slowloris", "0", str(connections), "10")
            assert attack.stdout is not None
            line = attack.stdout.readline().decode()
            assert "attacking" in line, line
            time.sleep(2.0)  # the send buffers fill
            peak = rss_kb(server.pid) / 1024
            seen = finish_attack(attack)  # the timeouts close them meanwhile
            closed = rss_kb(server.pid) / 1024
            time.sleep(wait)
            after = rss_kb(server.pid) / 1024
        finally:
            counters = stop_server(server)
    return {
        "mode": "tap",
        "connections": connections,
        "rss_mb": {"start": round(start, 1), "peak": round(peak, 1), "closed": round(closed, 1),
                   "after": round(after, 1)},
        "attack": seen,
        "malloc": counters.get("malloc"),
        "pool": counters.get("pool"),
        "tcp_memory": counters["tcp"]["memory"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--body", type=int, default=10_000_000)
    ap.add_argument("--wait", type=float, default=3.0, help="seconds after the close before the last RSS")
    ap.add_argument("--tap", action="store_true", help="the HTTP example on a TAP, kernel clients (root)")
    args = ap.parse_args()
    run_it = (lambda: run_tap(args.connections, args.wait)) if args.tap else (
        lambda: asyncio.run(run(args.connections, args.body, args.wait)))
    print(json.dumps(run_it(), indent=1))


if __name__ == "__main__":
    main()
