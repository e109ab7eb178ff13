"""Two aiostack stacks joined by the in-memory link, for conversation tests: the client's port
may sit behind the fault wrapper."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
from collections.abc import Callable
from typing import Any

from aiostack.drivers.fault import FaultProfile, FaultWrapper
from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from aiostack.tcp.config import TcpConfig

SERVER = "10.8.0.2"
CLIENT = "10.8.0.1"


def pair(
    tcp_config: TcpConfig | None = None, *, fault: FaultProfile | None = None, seed: int = 3
) -> tuple[Stack, Stack]:
    """(client, server) on one link; ``fault`` impairs both directions at the client's port."""
    link = MemoryLink()
    server = Stack(seed=2, tcp_config=tcp_config)
    server.attach(link.port(name="server"), f"{SERVER}/24")
    client = Stack(seed=1, tcp_config=tcp_config)
    port = link.port(name="client")
    if fault is not None:
        client.attach(FaultWrapper(port, rx=fault, tx=fault, seed=seed), f"{CLIENT}/24")
    else:
        client.attach(port, f"{CLIENT}/24")
    return client, server


def blob(n: int, seed: int = 0) -> bytes:
    """``n`` reproducible pseudo-random bytes."""
    out = bytearray()
    h = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h * 64
    return bytes(out[:n])


async def until(predicate: Callable[[], bool], what: str, limit: float = 5.0) -> None:
    """Let the loop run until ``predicate()`` holds (a bound on the wait, not a timing check)."""
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.001)
    assert predicate(), what


CHUNK = 1 << 18


def chunks(seed: int, total: int):  # type: ignore[no-untyped-def]
    """``total`` bytes of a seeded pattern in CHUNK pieces, no two equal (a misplaced piece
    changes the hash), without holding them all."""
    base = random.Random(seed).randbytes(CHUNK)
    sent = 0
    i = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        k = (i * 7919) % CHUNK
        yield (base[k:] + base[:k])[:n]
        sent += n
        i += 1


async def pump(sock: Any, seed: int, total: int) -> str:
    """Send ``chunks(seed, total)`` and shut the sending side; the SHA-256 of what was sent."""
    h = hashlib.sha256()
    for piece in chunks(seed, total):
        h.update(piece)
        await sock.sendall(piece)
    sock.shutdown(socket.SHUT_WR)
    return h.hexdigest()


async def drain(sock: Any) -> tuple[int, str]:
    """Read to end of stream: bytes received and their SHA-256."""
    h = hashlib.sha256()
    n = 0
    while True:
        data = await sock.recv(1 << 17)
        if not data:
            return n, h.hexdigest()
        h.update(data)
        n += len(data)
