"""Issue #3 acceptance: through the fault wrapper (5% loss, 2% reordering, 1% duplication, 0.1%
corruption, both directions), 200 MB each direction between two aiostack instances with equal
SHA-256, and the close completes on both ends."""

from __future__ import annotations

import asyncio
import socket

from aiostack.drivers.fault import FaultProfile
from aiostack.tcp.connection import State
from memnet import SERVER, drain, pair, pump

MB = 1_000_000
TOTAL = 200 * MB
async def test_200mb_each_way_through_faults() -> None:
    fault = FaultProfile(loss=0.05, reorder=0.02, duplicate=0.01, corrupt=0.001)
    client, server = pair(fault=fault, seed=11)
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", 9100))
        lsock.listen()
        csock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        connect = asyncio.create_task(csock.connect((SERVER, 9100)))
        ssock, _ = await asyncio.wait_for(lsock.accept(), 60)
        await asyncio.wait_for(connect, 60)
        results = await asyncio.wait_for(
            asyncio.gather(pump(csock, 1, TOTAL), drain(ssock), pump(ssock, 2, TOTAL), drain(csock)), 600
        )
        sent_up, (got_up, hash_up), sent_down, (got_down, hash_down) = results
        assert got_up == got_down == TOTAL
        assert hash_up == sent_up and hash_down == sent_down
        cconn, sconn = csock.connection, ssock.connection
        assert cconn is not None and sconn is not None
        # Both ends sent their FIN and read the peer's: the close completes on both sides.
        await asyncio.wait_for(asyncio.gather(csock.wait_closed(), ssock.wait_closed()), 120)
        assert cconn.state in (State.TIME_WAIT, State.CLOSED)
        assert sconn.state in (State.TIME_WAIT, State.CLOSED)
        assert cconn.error == 0 and sconn.error == 0
        assert cconn.stats["retransmitted_segments"] > 0 and sconn.stats["retransmitted_segments"] > 0
        csock.close()
        ssock.close()
