"""A host that restarts (a killed reactor's successor) and connects again from a port its peer
still holds in TIME-WAIT: with the host's one secret (``Stack(secret=...)``, what
:func:`aiostack.cores.host_secret` gives every reactor and its successors), the new SYN's
timestamp is beyond the old incarnation's, so the peer reopens the port at once (RFC 6191 §2)
instead of answering for the old connection until 2·MSL has passed."""

from __future__ import annotations

import asyncio
import os

from aiostack.cores import host_secret
from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from aiostack.streams import open_connection, start_server
from aiostack.tcp.connection import State

HUB, HOST = "10.8.1.1", "10.8.1.2"
HOST_MAC = bytes.fromhex("020000080102")
PORT = 40001


async def test_a_restarted_host_reopens_a_port_its_peer_holds_in_time_wait() -> None:
    link = MemoryLink()
    hub = Stack(seed=2)
    hub.attach(link.port(name="hub"), f"{HUB}/24")

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"ok\n")
        writer.close()  # the hub closes first: the port stays in TIME-WAIT on the hub's side

    secret = os.urandom(32)
    async with hub:
        server = await start_server(greet, HUB, 9000, stack=hub)
        assert hub.tcp is not None
        for incarnation in range(2):
            host = Stack(secret=secret)  # a new process of the same host: a new stack, the same secret
            host.attach(link.port(name=f"host{incarnation}", mac=HOST_MAC), f"{HOST}/24")
            async with host:
                r, w = await asyncio.wait_for(
                    open_connection(HUB, 9000, stack=host, local_addr=(HOST, PORT)), 5
                )
                w.write(b"hello\n")
                assert await asyncio.wait_for(r.readline(), 5) == b"ok\n"
                assert await asyncio.wait_for(r.read(), 5) == b""
                w.close()
                async with asyncio.timeout(5):
                    while any(c.state != State.TIME_WAIT for c in hub.tcp.connections.values()):
                        await asyncio.sleep(0.001)
                assert host.tcp is not None
                assert host.tcp.stats.get("retransmits", 0) == 0  # the SYN was answered the first time
            await asyncio.sleep(0.002)  # the successor's clock is past the old incarnation's last TSval
        assert hub.tcp.stats["time_wait_reused"] == 1
        server.close()


def test_every_reactor_of_a_run_gets_the_same_secret() -> None:
    assert host_secret() == host_secret() and len(host_secret()) == 32
