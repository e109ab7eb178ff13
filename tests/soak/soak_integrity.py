"""Integrity at length: N bytes each way at once between two aiostack stacks on the in-memory
link, through the fault wrapper (loss, reordering, duplication and corruption, both directions),
and the SHA-256 of what arrived equal to what was sent (issue #13 part 3).

    python tests/soak/soak_integrity.py --bytes 1000000000      # make soak: 1 GB each way

The suite runs a 20 MB form (``test_soak.py``). Prints throughput, retransmissions and the
fault wrapper's counters; exits 1 if anything differs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiostack.drivers.fault import FaultProfile
from aiostack.tcp.connection import State
from memnet import SERVER, drain, pair, pump

FAULTS = FaultProfile(loss=0.02, reorder=0.02, duplicate=0.01, corrupt=0.001)
"""Per frame, each direction: 2% lost, 2% reordered, 1% duplicated, 0.1% with a flipped bit."""


async def transfer(total: int, fault: FaultProfile = FAULTS, seed: int = 11, limit: float = 7200) -> dict[str, Any]:
    """Send ``total`` bytes each way at once through ``fault``; what was measured. Raises
    AssertionError if a byte count or a hash differs or the close does not complete."""
    client, server = pair(fault=fault, seed=seed)
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", 9100))
        lsock.listen()
        csock = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        connect = asyncio.create_task(csock.connect((SERVER, 9100)))
        ssock, _ = await asyncio.wait_for(lsock.accept(), 60)
        await asyncio.wait_for(connect, 60)
        start = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(pump(csock, 1, total), drain(ssock), pump(ssock, 2, total), drain(csock)), limit
        )
        elapsed = time.perf_counter() - start
        sent_up, (got_up, hash_up), sent_down, (got_down, hash_down) = results
        cconn, sconn = csock.connection, ssock.connection
        assert cconn is not None and sconn is not None
        await asyncio.wait_for(asyncio.gather(csock.wait_closed(), ssock.wait_closed()), 120)
        out = {
            "bytes_each_way": total,
            "seconds": round(elapsed, 2),
            "mb_per_s_each_way": round(total / elapsed / 1e6, 2),
            "up": {"received": got_up, "sha256_sent": sent_up, "sha256_received": hash_up},
            "down": {"received": got_down, "sha256_sent": sent_down, "sha256_received": hash_down},
            "retransmitted_segments": {
                "client": cconn.stats["retransmitted_segments"],
                "server": sconn.stats["retransmitted_segments"],
            },
            "fault": client.drivers[0].stats()["fault"],
            "states": [cconn.state.name, sconn.state.name],
            "errors": [cconn.error, sconn.error],
            "internal_errors": client.reactor.internal_errors + server.reactor.internal_errors,
        }
        csock.close()
        ssock.close()
    assert got_up == total and got_down == total, out
    assert hash_up == sent_up and hash_down == sent_down, out
    assert cconn.state in (State.TIME_WAIT, State.CLOSED) and sconn.state in (State.TIME_WAIT, State.CLOSED), out
    assert cconn.error == 0 and sconn.error == 0, out
    assert out["internal_errors"] == 0, out
    fault_counts = out["fault"]
    for kind in ("rx_loss", "tx_loss", "rx_reorder", "tx_reorder", "rx_duplicate", "tx_duplicate"):
        assert fault_counts.get(kind, 0) > 0, f"the fault wrapper did no {kind}: {fault_counts}"
    assert fault_counts.get("rx_corrupt", 0) + fault_counts.get("tx_corrupt", 0) > 0, fault_counts
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="N bytes each way through the fault wrapper, SHA-256 compared.")
    ap.add_argument("--bytes", type=int, default=1_000_000_000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    from aiostack.build import build_name

    print(f"integrity: {args.bytes:,} bytes each way through {FAULTS} on the {build_name()} build", flush=True)
    out = asyncio.run(transfer(args.bytes, seed=args.seed))
    print(json.dumps(out, indent=1))
    print(f"integrity: OK, SHA-256 equal both ways, {out['mb_per_s_each_way']} MB/s each way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
