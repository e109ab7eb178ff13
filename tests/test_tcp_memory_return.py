"""Memory goes back to the kernel after pressure (issue #13: a server stayed at 2.29 GB RSS after
2,000 stalled downloads were gone, because the tuned allocator keeps what is freed).

Two stacks on the in-memory link: the server writes a body bigger than its send buffer on each of
``CONNECTIONS`` connections whose client never reads, so the server's send buffers and the
client's receive buffers fill (1 MiB each by default); then every client closes (RST: unread
data) and the buffers are freed. Each stack's :class:`~aiostack.malloc.MemoryReturn` sees its
buffer bytes fall far below their peak and calls ``malloc_trim(0)``; the process's RSS comes back
down. Measured (``benchmarks/memory_return.py``, 200 connections, pure build): RSS 224 -> 723 MB
at the peak; 723 MB after the close with ``AIOSTACK_MALLOC_TRIM=0``, 233 MB with the trim."""

from __future__ import annotations

import asyncio
import socket

import pytest

from aiostack.malloc import MemoryReturn, malloc_trim
from aiostack.tcp.config import TcpConfig
from benchmarks.memory_return import SERVER, rss_mb, stalled_downloads
from memnet import until

CONNECTIONS = 48
BODY = 2 << 20  # twice the send buffer: every writer stalls with a full buffer
PORT = 9410


async def test_rss_comes_back_down_after_stalled_peers_are_gone() -> None:
    if not malloc_trim():  # releases what earlier tests left, so the peak below is ours
        with open("/proc/self/maps") as f:
            if "libc.so" not in f.read():
                pytest.skip("not glibc: no malloc_trim")
    config = TcpConfig(msl=0.5)
    async with stalled_downloads(BODY, config, PORT) as (client, server, writers):
        assert server.memory_return is not None and client.memory_return is not None
        start = rss_mb()
        socks = []
        for _ in range(CONNECTIONS):
            s = client.socket(socket.AF_INET, socket.SOCK_STREAM)
            await s.connect((SERVER, PORT))
            socks.append(s)
        full = CONNECTIONS * config.sndbuf
        await until(lambda: server.tcp.memory.snd_used >= full, "every send buffer full", 60)  # type: ignore[union-attr]
        await until(lambda: client.tcp.memory.rcv_used >= full, "every receive buffer full", 60)  # type: ignore[union-attr]
        peak = rss_mb()
        for s in socks:
            s.close()
        socks.clear()
        await until(lambda: not writers and not server.tcp.connections and not client.tcp.connections,  # type: ignore[union-attr]
                    "every connection gone", 30)
        # MemoryReturn looks once a second; give it a few looks (a bound, not a timing check).
        for _ in range(50):
            if server.memory_return.trims and client.memory_return.trims:
                break
            await asyncio.sleep(0.1)
        after = rss_mb()
        print(f"RSS {start:.1f} -> peak {peak:.1f} -> after {after:.1f} MB; "
              f"server {server.counters()['malloc']}, client {client.counters()['malloc']}")
    grown = peak - start
    assert grown >= 0.5 * 2 * full / (1 << 20), (start, peak)  # the pressure was real
    assert after <= start + 0.3 * grown, (start, peak, after)


def test_memory_return_policy() -> None:
    """The policy alone: a trim only after a fall of ``min_drop`` to ``fraction`` of the peak,
    at most once per ``min_gap``; growable pools trimmed with it."""
    held = [0]
    trims: list[int] = []

    class Pool:
        def trim(self) -> int:
            return 7

    mr = MemoryReturn(lambda: held[0], pools=[Pool()], trim=lambda: trims.append(held[0]) is None,
                      min_drop=100, fraction=0.5, min_gap=5.0)
    for value, now, trimmed in ((1000, 0, False), (600, 1, False), (550, 2, False), (400, 3, True),
                                (1000, 4, False), (100, 5, False), (100, 8, True), (100, 20, False)):
        held[0] = value
        assert mr.check(now) is trimmed, (value, now)
    assert trims == [400, 100] and mr.trims == 2 and mr.buffers_released == 14
    assert mr.counters() == {"trims": 2, "buffers_released": 14, "peak_buffer_bytes": 1000}
