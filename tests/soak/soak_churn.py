"""The churn soak: CONNECTIONS connections at once between two aiostack stacks on the in-memory
link, each one opened, used for an echo transfer of 1 byte to 16 KB, held open (idle) for about
CONNECTIONS/RATE seconds and closed, over and over (RATE = 500 a second by default), for
SOAK_TIME seconds; then every counter reconciled and the memory checked (issue #13 part 3).

    python tests/soak/soak_churn.py --time 180 --connections 10000     # make soak

What is checked at the end (an AssertionError names what failed):

- **RSS flat**: the process's resident set after the warm-up (the first third of the run, at least
  the ramp-up) and at the deadline differ by at most ``RSS_SLACK_FRACTION`` (5%) +
  ``RSS_SLACK_MB`` (32 MB); every sample is printed, and the RSS once the connections open at the
  deadline have finished their hold (no new ones open after it) and after TIME-WAIT too. A leak
  of ~3 KB per connection churned (one lost buffer, socket or timer each) fails it at this scale.
  The packet pools grow when more buffers are in flight at once than they made up front
  (``pool.grows``): at 10,000 connections the client's grew from 4,096 to ~10,240 buffers in the
  ramp-up, with no allocation failing.
- **opened = closed**: every connect the client made completed and was closed; the server accepted
  as many and closed as many; once TIME-WAIT (2·MSL) has passed, neither stack holds a connection.
- **bytes sent = received**: what the clients sent equals what the server received and echoed,
  equals what the clients received back (and every echo matched its request).
- **no internal errors** in either reactor, no connection ending in error, every packet buffer
  back in each stack's pool, and no drop counted on the clean link (by TCP, IP or the link's
  ports) but answers to late retransmissions (``LATE_DUPLICATES``, at most as many as the other
  side resent).

MSL is 1 s here (TIME-WAIT 2 s instead of 60), so the ephemeral ports (28,232) are not held by
TIME-WAIT at this churn rate; everything else is the default configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiostack.drivers.buffers import DEFAULT_POOL_MAX
from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from aiostack.tcp.config import TcpConfig
from memnet import CLIENT, SERVER

PORT = 9300
LATE_DUPLICATES = ("tcp_listen_bad_ack", "tcp_no_socket", "tcp_listen_rst")
"""Drops a clean link still sees: a retransmission that arrives after its connection closed (the
RTO or a tail-loss probe fired while the event loop was busy, the original got through) is
answered by the peer, and that answer finds no connection (RFC 9293 §3.10.7.1: reset). Allowed
up to the number of segments the other side resent; any other drop reason fails the soak."""
RSS_SLACK_FRACTION = 0.05
RSS_SLACK_MB = 32
RX_QUEUE_CAP = DEFAULT_POOL_MAX
"""Frames each end of the link holds before it drops (``rx_queue_full``): as many as a pool may
hold, not the memory driver's default 4,096 (a NIC ring). The link stands for the wire between
two stacks; the soak tests the stacks. With 4,096, a loop lagging on this shared 2-core machine
flushed more frames than that in one burst (everything its tasks wrote since the last iteration):
3,954 rx_queue_full in a 300-second run at 10,000 connections, recovered by TCP's resends."""
SIZES = (1, 100, 1000, 1448, 4000, 16384)
PATTERN = random.Random(5).randbytes(max(SIZES))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Tally:
    """What both sides counted."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.sent = 0
        self.received = 0
        self.mismatched = 0
        self.failed: list[str] = []
        self.accepted = 0
        self.server_closed = 0
        self.server_received = 0
        self.server_sent = 0


async def _serve_one(sock: Any, t: Tally) -> None:
    try:
        while True:
            data = await sock.recv(65536)
            if not data:
                break
            t.server_received += len(data)
            await sock.sendall(data)
            t.server_sent += len(data)
    except OSError as exc:
        t.failed.append(f"server: {exc!r}")
    finally:
        sock.close()
        t.server_closed += 1


async def _server(lsock: Any, t: Tally, tasks: set[asyncio.Task[None]]) -> None:
    while True:
        sock, _ = await lsock.accept()
        t.accepted += 1
        task = asyncio.create_task(_serve_one(sock, t))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _slot(client: Any, i: int, t: Tally, deadline: float, start_at: float, hold: float) -> None:
    """One connection at a time, over and over: open, send a request of 1 byte to 16 KB, read
    its echo, stay open (idle) for about ``hold`` seconds, half-close, read the end, close."""
    rng = random.Random(i)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    while time.monotonic() < deadline:
        s = client.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            await s.connect((SERVER, PORT))
            t.opened += 1
            data = PATTERN[: rng.choice(SIZES)]
            await s.sendall(data)
            t.sent += len(data)
            got = bytearray()
            while len(got) < len(data):
                chunk = await s.recv(65536)
                if not chunk:
                    break
                got += chunk
            # The hold is not cut at the deadline: the last connections close as they would
            # have, spread over up to 1.5 holds after it, not all in one iteration (10,000 FINs at
            # once overflow the link's 4,096-frame receive queues: rx_queue_full, resends).
            await asyncio.sleep(hold * rng.uniform(0.5, 1.5))
            s.shutdown(socket.SHUT_WR)
            while True:
                chunk = await s.recv(65536)
                if not chunk:
                    break
                got += chunk
            t.received += len(got)
            if got != data:
                t.mismatched += 1
        except OSError as exc:
            t.failed.append(f"client {i}: {exc!r}")
            return
        finally:
            s.close()
        t.closed += 1


def pair(config: TcpConfig) -> tuple[Stack, Stack]:
    """(client, server) on one in-memory link with ``RX_QUEUE_CAP``-frame receive queues."""
    link = MemoryLink()
    server = Stack(seed=2, tcp_config=config)
    server.attach(link.port(name="server", rx_queue_cap=RX_QUEUE_CAP), f"{SERVER}/24")
    client = Stack(seed=1, tcp_config=config)
    client.attach(link.port(name="client", rx_queue_cap=RX_QUEUE_CAP), f"{CLIENT}/24")
    return client, server


async def soak(duration: float, connections: int, rate: float = 500.0, ramp: float | None = None) -> dict[str, Any]:
    """Run the churn for ``duration`` seconds with ``connections`` open at once, about ``rate``
    of them closed and replaced a second; what was measured (``checks`` lists what failed,
    empty when everything reconciled)."""
    hold = connections / rate
    config = TcpConfig(msl=1.0)
    client, server = pair(config)
    t = Tally()
    samples: list[tuple[float, float]] = []
    ramp = ramp if ramp is not None else min(duration / 3, connections / rate)  # opened at the churn rate
    warm = max(ramp + 2.0, duration / 3)
    async with client, server:
        lsock = server.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("0.0.0.0", PORT))
        lsock.listen(4096)
        server_tasks: set[asyncio.Task[None]] = set()
        accept_task = asyncio.create_task(_server(lsock, t, server_tasks))
        await client.ping(SERVER, timeout=5.0)  # resolve ARP first: SYNs are not queued behind it
        start = time.monotonic()
        deadline = start + duration
        slots = [
            asyncio.create_task(_slot(client, i, t, deadline, start + ramp * i / connections, hold))
            for i in range(connections)
        ]
        while time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            samples.append((round(time.monotonic() - start, 1), round(rss_mb(), 1)))
        churned = t.closed
        # No slot opens a connection after the deadline; those still open finish their hold.
        await asyncio.wait_for(asyncio.gather(*slots), 300 + 1.5 * hold)
        tail_rss = rss_mb()
        # TIME-WAIT (2·MSL) passes, then neither side may hold a connection.
        for _ in range(200):
            await asyncio.sleep(0.1)
            if not client.tcp.connections and not server.tcp.connections and not server_tasks:
                break
        gc.collect()
        end_rss = rss_mb()
        accept_task.cancel()
        lsock.close()
        await asyncio.sleep(0.1)
        after_warm = [rss for at, rss in samples if at >= warm]
        base = after_warm[0] if after_warm else samples[-1][1]
        counters = {"client": client.counters(), "server": server.counters()}
        out: dict[str, Any] = {
            "duration_s": duration,
            "connections_at_once": connections,
            "mean_hold_s": hold,
            "connections_churned": t.closed,
            "churned_before_deadline": churned,
            "per_second": round(churned / duration, 1),
            "bytes_each_way": t.sent,
            "rss_mb": {
                "after_warmup": base,
                "end_of_run": samples[-1][1],
                "after_tail": round(tail_rss, 1),
                "after_close": round(end_rss, 1),
                "max": max(r for _, r in samples),
                "bound": round(base * (1 + RSS_SLACK_FRACTION) + RSS_SLACK_MB, 1),
            },
            "rss_samples": samples,
            "tally": vars(t) | {"failed": t.failed[:5], "failures": len(t.failed)},
            "tcp": {side: c["tcp"] for side, c in counters.items()},
            "ip_drops": {side: c["drops"] for side, c in counters.items()},
            "pool": {side: c["pool"] for side, c in counters.items()},
            "driver_drops": {side: _driver_drops(c) for side, c in counters.items()},
            "internal_errors": {side: c["reactor"]["internal_errors"] for side, c in counters.items()},
            "connections_left": {"client": len(client.tcp.connections), "server": len(server.tcp.connections)},
        }
    out["checks"] = _checks(out, t)
    return out


def _driver_drops(counters: dict[str, Any]) -> dict[str, int]:
    """Drops the link's ports counted (``rx_queue_full``, ``pool_exhausted`` ...), summed over
    queues."""
    out: dict[str, int] = {}
    for queues in counters["drivers"].values():
        for q in queues.values():
            for reason, n in q["drops"].items():
                out[reason] = out.get(reason, 0) + n
    return out


def _checks(out: dict[str, Any], t: Tally) -> list[str]:
    bad = []

    def need(ok: bool, what: str) -> None:
        if not ok:
            bad.append(what)

    rss = out["rss_mb"]
    need(
        rss["end_of_run"] <= rss["bound"],
        f"RSS grew: {rss['after_warmup']} -> {rss['end_of_run']} MB (bound {rss['bound']})",
    )
    need(not t.failed, f"{len(t.failed)} connection(s) failed: {t.failed[:3]}")
    need(t.mismatched == 0, f"{t.mismatched} echo(es) differed from the request")
    need(t.opened == t.closed, f"client opened {t.opened}, closed {t.closed}")
    need(
        t.accepted == t.opened == t.server_closed,
        f"accepted {t.accepted}, opened {t.opened}, server closed {t.server_closed}",
    )
    need(
        t.sent == t.server_received == t.server_sent == t.received,
        f"bytes: sent {t.sent}, server got {t.server_received}, echoed {t.server_sent}, received {t.received}",
    )
    need(out["connections_left"] == {"client": 0, "server": 0}, f"connections left: {out['connections_left']}")
    need(out["internal_errors"] == {"client": 0, "server": 0}, f"internal errors: {out['internal_errors']}")
    for side, peer in (("client", "server"), ("server", "client")):
        tcp = out["tcp"][side]
        late = {k: v for k, v in tcp["drops"].items() if k in LATE_DUPLICATES}
        other = {k: v for k, v in tcp["drops"].items() if k not in LATE_DUPLICATES}
        need(not other, f"{side} TCP drops on a clean link: {other}")
        resent = sum(out["tcp"][peer]["stats"].get(k, 0) for k in ("retransmitted_segments", "tlp_probes"))
        need(
            sum(late.values()) <= resent, f"{side}: {late} for closed connections, more than the {resent} {peer} resent"
        )
        need(not out["ip_drops"][side], f"{side} IP drops on a clean link: {out['ip_drops'][side]}")
        need(not out["driver_drops"][side], f"{side} port drops on a clean link: {out['driver_drops'][side]}")
        pool = out["pool"][side]
        need(pool["available"] == pool["buffers"], f"{side} pool: {pool['available']} of {pool['buffers']} back")
    opens = out["tcp"]["client"]["stats"].get("active_opens", 0)
    passive = out["tcp"]["server"]["stats"].get("passive_opens", 0)
    need(opens == t.opened and passive == t.accepted, f"active opens {opens}, passive {passive}, tally {t.opened}")
    need(t.closed > 0, "nothing churned")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Connections at once with churn; RSS flat, counters reconciled.")
    ap.add_argument("--time", type=float, default=180.0)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=500.0, help="connections closed and replaced per second")
    args = ap.parse_args(argv)
    from aiostack.build import build_name

    print(
        f"churn soak: {args.connections:,} connections at once for {args.time:.0f} s on the {build_name()} build",
        flush=True,
    )
    out = asyncio.run(soak(args.time, args.connections, args.rate))
    print(json.dumps(out, indent=1, default=str))
    if out["checks"]:
        print("churn soak: FAILED:", *out["checks"], sep="\n  ")
        return 1
    print(
        f"churn soak: OK, {out['connections_churned']:,} connections churned ({out['per_second']}/s), "
        f"RSS {out['rss_mb']['after_warmup']} -> {out['rss_mb']['end_of_run']} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
