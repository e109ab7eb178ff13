#!/usr/bin/env python3
"""UDP echo server on aiostack: every datagram comes back to its sender unchanged.

    # on a TAP device (root), kernel side of the TAP at 10.77.0.1:
    python examples/udp_echo.py --driver tap --iface aiostack0 --addr 10.77.0.2/24 --host-addr 10.77.0.1/24
    # without root: an aiostack client and this server on an in-memory link, in one process
    python examples/udp_echo.py --driver memory --count 1000

Takes the standard options (``--help``) or a TOML file (``--config``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiostack.app import run
from aiostack.config import Options, parse_options
from aiostack.stack import Stack, pool_for_mtu


async def echo(stack: Stack, port: int) -> None:
    sock = stack.socket()
    sock.bind(("0.0.0.0", port))
    addr = stack.interfaces[0]
    print(f"udp echo listening on {addr!r} port {port}", flush=True)
    with sock:
        while True:
            data, peer = await sock.recvfrom(65535)
            try:
                await sock.sendto(data, peer)
            except OSError as exc:  # the peer vanished (ARP failed): keep serving the others
                print(f"echo to {peer} failed: {exc}", file=sys.stderr, flush=True)


class _KernelEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


async def kernel_echo(port: int) -> None:
    """The same service on the OS's sockets (``--stack kernel``), for side-by-side runs."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_KernelEcho, local_addr=("0.0.0.0", port))
    print(f"udp echo listening on 0.0.0.0 port {port} (kernel stack)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


async def memory_demo(options: Options, count: int) -> bool:
    """Server and client stacks joined by an in-memory link; the client checks every echo."""
    from aiostack.drivers.memory import MemoryLink

    link = MemoryLink()
    server = Stack.from_options(options, driver=link.port(mtu=options.mtu, pool=pool_for_mtu(options.mtu)))
    client = Stack(pool=pool_for_mtu(options.mtu))
    client_addr = options.addr.network.network_address + (1 if int(options.addr.ip) & 0xFF != 1 else 3)
    client_port = link.port(mtu=options.mtu, pool=client.pool)
    client.attach(client_port, f"{client_addr}/{options.addr.network.prefixlen}", name="client")
    async with server, client:
        task = asyncio.create_task(echo(server, options.port))
        try:
            sock = client.socket()
            ok = 0
            for i in range(count):
                size = 1 + (i * 7919) % 8000
                payload = bytes((i + j) & 0xFF for j in range(size))
                await sock.sendto(payload, (str(options.addr.ip), options.port))
                data, _ = await asyncio.wait_for(sock.recvfrom(65535), 5)
                ok += data == payload
        finally:
            task.cancel()
        print(f"memory link: {ok}/{count} datagrams echoed intact", flush=True)
        print(json.dumps({"client": client.counters(), "server": server.counters()}, indent=1, default=str))
    return ok == count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="datagrams the memory-link demo sends")
    parser.add_argument("--stats", action="store_true", help="print the stack's counters as JSON on exit")
    options = parse_options(argv, parser, default_port=7)

    async def amain() -> bool:
        if options.stack == "kernel":
            await kernel_echo(options.port)
            return True
        if options.driver == "memory":
            return await memory_demo(options, options.extra["count"])
        stack = Stack.from_options(options)
        try:
            async with stack:
                await echo(stack, options.port)
        finally:
            if options.extra["stats"]:
                print(json.dumps(stack.counters(), default=str), flush=True)
        return True

    return 0 if run(amain) is not False else 1


if __name__ == "__main__":
    sys.exit(main())
