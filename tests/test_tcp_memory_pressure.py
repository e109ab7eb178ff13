"""Global TCP memory bounds (tcp/memory.py) through the in-memory link: the issue #13
reproduction shape — 2,000 connections that request a 10 MB body from the HTTP example and never
read — keeps the server's TCP send bytes within ``mem_sndbuf_total + connections ·
mem_min_per_connection`` and its transports' buffers within one write each, where before every
stalled download held a full send buffer (1 MiB); a legitimate client is still served.

Measured (compiled build): 2,000 stalled downloads hold 36.9 MB of TCP send bytes (the 4 MiB
total + 2,000 × the 16 KiB floor) and at most one 16 KiB write per transport; with the total
lifted (no bound), 200 of them already held 209.7 MB (1 MiB each: 2.1 GB for 2,000)."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from types import ModuleType

from aiostack.protocols import Transport
from aiostack.stack import Stack
from aiostack.streams import open_connection, start_server
from aiostack.tcp.config import TcpConfig
from conftest import example
from memnet import CLIENT, SERVER, until

CONNECTIONS = 2000
KB = 1024


def _http_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiostack_http_example", example("http_server.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_two_thousand_stalled_downloads_stay_within_the_send_total() -> None:
    from aiostack.drivers.memory import MemoryLink

    http = _http_example()
    link = MemoryLink()
    server_cfg = TcpConfig(mem_sndbuf_total=4 << 20, mem_min_per_connection=16 * KB, backlog=4096)
    server = Stack(seed=2, tcp_config=server_cfg)
    server.attach(link.port(name="server"), f"{SERVER}/24")
    # The stalled clients advertise a small window (8 KB) and never read it empty.
    client = Stack(seed=1, tcp_config=TcpConfig(rcvbuf=8 * KB))
    client.attach(link.port(name="client"), f"{CLIENT}/24")
    async with client, server:
        srv = await start_server(http.handle, SERVER, 8080, stack=server, backlog=4096)
        socks = []
        request = b"GET /bytes/10000000 HTTP/1.1\r\nHost: x\r\n\r\n"
        for i in range(CONNECTIONS):
            s = client.socket(socket.AF_INET, socket.SOCK_STREAM)
            await asyncio.wait_for(s.connect((SERVER, 8080)), 10)
            await s.sendall(request)
            socks.append(s)
            if i % 200 == 199:
                await asyncio.sleep(0.01)
        tcp = server.tcp
        assert tcp is not None
        mem = tcp.memory
        # Every download started and stalled: the server holds what the totals allow.
        await until(lambda: mem.snd_used >= mem.sndbuf_total, "send total reached", limit=60)
        await asyncio.sleep(0.5)
        bound = mem.sndbuf_total + CONNECTIONS * mem.min_per_connection
        assert mem.snd_used <= bound, (mem.snd_used, bound)
        assert mem.stats["snd_limited"] > 0 and mem.stats["transport_paused_early"] > 0
        held = [t.get_write_buffer_size() for t in _transports(srv)]
        assert len(held) == CONNECTIONS
        # Each transport keeps at most the write that found the send total full (the example
        # writes 16 KiB chunks and drains after each), not a high-water mark plus a send buffer;
        # only the few that filled their own 1 MiB send buffer before the total was reached
        # paused at the usual high-water mark (64 KiB).
        big = [n for n in held if n > 16 * KB + 256]
        assert len(big) <= mem.sndbuf_total // server_cfg.sndbuf + 1, sorted(big)
        assert max(held) <= 64 * KB + 16 * KB + 256
        # A legitimate client is still served while they stall.
        reader, writer = await open_connection(SERVER, 8080, stack=client)
        writer.write(b"GET /bytes/300000 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 200 OK")
        body = await asyncio.wait_for(reader.readexactly(300000), 60)
        assert body[:256] == bytes(range(256))
        writer.close()
        for s in socks:
            s.close()
        # They are gone: every byte they held is given back.
        await until(lambda: mem.snd_used == 0, "send bytes released", limit=60)
        srv.close()


def _transports(srv: object) -> list[Transport]:
    return [t for t in getattr(srv, "_clients", ()) if isinstance(t, Transport)]
