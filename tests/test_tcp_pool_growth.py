"""The transmit pool grows when more frames are in flight at once than it made up front (issue
#13: 10,000 connections sending in one reactor iteration needed ~12,800 buffers more than the
4,096 made, and each one missing was a ``tcp_tx_pool_exhausted`` drop and a resend)."""

from __future__ import annotations

import asyncio
import socket

from aiostack.drivers.buffers import PacketPool
from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from memnet import CLIENT, SERVER, until

CONNECTIONS = 24
BODY = 16384  # 12 segments each: 288 frames from one iteration, the pool makes 64 up front
PORT = 9420


async def test_a_burst_bigger_than_the_pool_grows_it_instead_of_dropping() -> None:
    link = MemoryLink()
    server = Stack(seed=2)
    server.attach(link.port(name="server", rx_queue_cap=4096), f"{SERVER}/24")
    pool = PacketPool(count=4096, initial=64, grow_by=64)
    client = Stack(seed=1, pool=pool)
    client.attach(link.port(name="client", rx_queue_cap=4096), f"{CLIENT}/24")
    received: dict[int, int] = {}

    async def sink(sock: socket.socket, i: int) -> None:
        while data := await sock.recv(65536):  # type: ignore[misc]
            received[i] = received.get(i, 0) + len(data)
        sock.close()

    tasks: set[asyncio.Task[None]] = set()

    async def accept(lsock: socket.socket) -> None:
        i = 0
        while True:
            sock, _ = await lsock.accept()  # type: ignore[misc]
            task = asyncio.create_task(sink(sock, i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1

    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", PORT))
        lsock.listen(64)
        acceptor = asyncio.create_task(accept(lsock))  # type: ignore[arg-type]
        socks = []
        for _ in range(CONNECTIONS):
            s = client.socket(socket.AF_INET, socket.SOCK_STREAM)
            await s.connect((SERVER, PORT))
            socks.append(s)
        await until(lambda: len(received) + len(tasks) >= CONNECTIONS, "every connection accepted")
        await asyncio.sleep(0.1)  # every handshake's last ACK has landed and the windows are open
        body = bytes(BODY)
        for s in socks:  # all in one go: the frames wait for the reactor's flush together
            assert s.send_nowait(body) == BODY
            s.shutdown(socket.SHUT_WR)
        await until(lambda: sum(received.values()) == CONNECTIONS * BODY and not tasks, "every body delivered", 20)
        for s in socks:
            s.close()
        acceptor.cancel()
        lsock.close()
        counters = client.counters()
    assert counters["tcp"]["drops"].get("tcp_tx_pool_exhausted", 0) == 0, counters["tcp"]["drops"]  # type: ignore[index]
    assert counters["pool"]["grows"] >= 1 and counters["pool"]["made"] > 64, counters["pool"]  # type: ignore[index]
    assert counters["pool"]["alloc_failures"] == 0  # type: ignore[index]
    assert counters["pool"]["available"] == counters["pool"]["buffers"]  # type: ignore[index]
