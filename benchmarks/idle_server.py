#!/usr/bin/env python3
"""The server side of the idle-connections benchmark: one aiostack reactor that accepts every
connection on a port and holds it, doing nothing.

    python benchmarks/idle_server.py --tap NAME --addr 10.77.0.2/24 --host-addr 10.77.0.1/24 \
        --mac 02:00:00:77:00:02 --port 8080

Run it inside a network namespace (``benchmarks/idle_conns.py`` does): it creates TAP ``NAME``
there. The application accepts and holds every connection: with ``--api socket`` (the default)
as accepted :class:`~aiostack.tcp_socket.TcpSocket` objects (the native ``ff_accept`` style),
with ``--api protocol`` through ``aiostack.protocols.create_server`` with :class:`IdleProtocol`,
a minimal ``asyncio.Protocol`` — an asyncio Transport per connection costs ~400 bytes more.
Control is by lines on stdin, each answered by one JSON line on stdout:

- ``stats`` — ``{"established": protocols connected, "connections": TCP connections in the
  table, "rss_bytes": VmRSS, ...}`` (``stats full`` adds the TCP states and the stack's counters);
- ``gc`` — a full garbage collection first, then the same;
- ``quit`` — close everything and exit (EOF on stdin does the same).

``--gc freeze`` (the default) freezes the garbage collector's view of the heap twice a second
(see :func:`_freeze_periodically`); ``--gc default`` leaves Python's policy alone.

The first line written is ``{"ready": true, ...}`` once the server listens.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket as _socket
import sys
import time
from collections import Counter
from typing import Any

from aiostack.drivers.buffers import PacketPool
from aiostack.protocols import Server, create_server
from aiostack.stack import Stack
from aiostack.tcp_socket import TcpSocket


def rss_bytes() -> int:
    """This process's resident set size (VmRSS), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class IdleProtocol(asyncio.Protocol):
    """Holds its transport and nothing else; counts connections made and lost."""

    __slots__ = ("transport",)
    made = 0
    lost = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        IdleProtocol.made += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        IdleProtocol.lost += 1
        self.transport = None  # type: ignore[assignment]

    @classmethod
    def established(cls) -> int:
        return cls.made - cls.lost


class GcClock:
    """Time spent in the cyclic garbage collector (gc.callbacks), by generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            gen = info["generation"]
            self.seconds[gen] += time.perf_counter() - self._start
            self.collections[gen] += 1

    def report(self) -> dict[str, Any]:
        return {"seconds": round(sum(self.seconds), 3), "full_collections": self.collections[2],
                "full_seconds": round(self.seconds[2], 3)}


GC_CLOCK = GcClock()


def _made(obj: object, name: str) -> Any:
    """``obj.name`` if it exists, without making it (a connection makes its counters lazily)."""
    try:
        return object.__getattribute__(obj, name)
    except AttributeError:
        return None


def stats(stack: Stack, *, full: bool = False) -> dict[str, Any]:
    tcp = stack.tcp
    assert tcp is not None
    out: dict[str, Any] = {
        "established": IdleProtocol.established(),
        "connections": len(tcp.connections),
        "rss_bytes": rss_bytes(),
        "tcp_stats": {k: v for k, v in tcp.stats.items() if k in (
            "passive_opens", "syncookies_sent", "syncookies_accepted", "resets_sent", "segments_in",
            "segments_out")},
        "tcp_drops": dict(tcp.drops),
        "ip_drops": dict(stack.ip.drops),
        "reactor_internal_errors": stack.reactor.internal_errors,
        "pool": {"made": stack.pool.made, "grows": stack.pool.grows},
        "gc": GC_CLOCK.report(),
    }
    if full:
        out["tcp_states"] = dict(Counter(c.state.name for c in tcp.connections.values()))
        resets = 0
        for c in tcp.connections.values():
            counts = _made(c, "stats")
            if counts:
                resets += counts.get("resets_received", 0)
        out["resets_received"] = resets
        out["pending_timers"] = len(stack.ip.timers)
        out["counters"] = stack.counters()
    return out


class SocketHolder:
    """The ``--api socket`` application: accepts on a listening :class:`TcpSocket` (F-Stack's
    ``ff_accept`` way) and keeps the sockets — no transport, protocol or task per connection."""

    held: list[TcpSocket] = []

    def __init__(self, stack: Stack, host: str, port: int, backlog: int) -> None:
        self.lsock = stack.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        self.lsock.bind((host, port))
        self.lsock.listen(backlog)
        self.task = asyncio.get_running_loop().create_task(self._accept())

    async def _accept(self) -> None:
        held = SocketHolder.held
        lsock = self.lsock
        while True:
            sock, _ = await lsock.accept()
            held.append(sock)
            while True:  # drain the accept queue without a wait per connection
                try:
                    sock, _ = lsock.accept_nowait()
                except BlockingIOError:
                    break
                held.append(sock)
                IdleProtocol.made += 1
            IdleProtocol.made += 1

    def close(self) -> None:
        self.task.cancel()
        self.lsock.close()


async def start(stack: Stack, host: str, port: int, backlog: int, api: str = "protocol") -> Server | SocketHolder:
    await stack.start()
    if api == "socket":
        return SocketHolder(stack, host, port, backlog)
    return await create_server(IdleProtocol, host, port, stack=stack, backlog=backlog)


async def _freeze_periodically(interval: float = 0.5) -> None:
    """``gc.freeze()`` what the server holds, twice a second: the connections are long-lived, so
    the cyclic collector need not walk them again and again (with Python's default policy a full
    collection runs each time the heap grows by 25%, and at a million connections those walks
    are most of the time spent establishing). Frozen objects are still freed by reference
    counting; only cycles among them would outlive their connection — fine for this benchmark,
    whose connections live until the process exits."""
    while True:
        await asyncio.sleep(interval)
        gc.freeze()


async def main(args: argparse.Namespace) -> None:
    from aiostack.drivers.tap import TapDriver

    pool = PacketPool(count=args.pool)
    stack = Stack(pool=pool, batch=args.batch)
    driver = TapDriver(args.tap, pool=pool, mac=args.mac, host_addr=args.host_addr)
    stack.attach(driver, args.addr)
    if args.gateway:
        stack.set_gateway(args.gateway)
    host = args.addr.split("/")[0]
    server = await start(stack, host, args.port, args.backlog, args.api)
    loop = asyncio.get_running_loop()
    freezer = loop.create_task(_freeze_periodically()) if args.gc == "freeze" else None
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    gc.collect()
    say({"ready": True, "rss_bytes": rss_bytes(), "mac": driver.mac.hex(":"), "tap": driver.name})
    try:
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line.startswith("gc"):
                gc.collect()
            say(stats(stack, full=line.endswith("full")))
    except BaseException:
        if freezer is not None:
            freezer.cancel()
        server.close()
        stack.close()
        raise
    # Done: exit without the orderly close, which would abort every connection one by one (a
    # RST each, to addresses nobody owns: half a minute at a million). The TAP goes with the
    # process, and the namespace with it.
    server.close()
    sys.stdout.flush()
    os._exit(0)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tap", default="idle0")
    p.add_argument("--addr", default="10.77.0.2/24")
    p.add_argument("--host-addr", default="10.77.0.1/24")
    p.add_argument("--gateway", default="10.77.0.1")
    p.add_argument("--mac", default="02:00:00:77:00:02")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--backlog", type=int, default=65535)
    p.add_argument("--api", choices=("socket", "protocol"), default="socket",
                   help="hold connections as accepted TcpSockets (default) or as Transport + Protocol")
    p.add_argument("--pool", type=int, default=4096, help="packet buffers")
    p.add_argument("--batch", type=int, default=256, help="frames per receive burst")
    p.add_argument("--gc", choices=("freeze", "default"), default="freeze",
                   help="freeze: gc.freeze() twice a second (default); default: Python's own GC policy")
    return p.parse_args(argv)


if __name__ == "__main__":
    import uvloop

    profile = os.environ.get("IDLE_SERVER_PROFILE")  # a path: cProfile the server into it
    if profile:
        import cProfile

        cProfile.run("uvloop.run(main(parse()))", profile)
    else:
        uvloop.run(main(parse()))
