"""Run by tests/test_memory_cores.py: ``--cores 2 --driver memory`` without root or a kernel.

This process makes a :class:`SharedMemoryLink` (end 0: two queues, end 1: one), forks the
supervisor of two reactors serving on end 0 (``run_reactors(options, app, device=...)``), and
runs an aiostack client stack on end 1 itself. The reactors answer every line with their core
number, connect out to the client's server (ports picked to steer back to them) and send it their
counters; the client opens connections to the reactors, kills reactor 1 by its pid, and checks
the restarted one and reactor 0's open connection. One JSON line of findings on stdout; the
test asserts on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys

import uvloop

from aiostack.config import options_from_mapping
from aiostack.cores import ReactorContext, run_reactors
from aiostack.drivers.shared_link import SharedMemoryLink
from aiostack.stack import Stack, pool_for_mtu
from aiostack.streams import open_connection, start_server

SERVER, CLIENT = "10.78.0.2", "10.78.0.1"
OUT_CONNS = 20
CONNS = 100
STEP = 20.0


def reactors(link: SharedMemoryLink) -> int:
    options = options_from_mapping({"cores": 2, "driver": "memory", "addr": f"{SERVER}/24", "control": "off"})

    async def app(ctx: ReactorContext) -> None:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):  # the client's stack resets what is open when it stops
                while await reader.readline():
                    writer.write(f"{ctx.core}\n".encode())
            writer.close()

        server = await ctx.network.start_server(answer, SERVER, 8080)
        ok = 0
        for _ in range(OUT_CONNS):
            r, w = await asyncio.wait_for(ctx.network.open_connection(CLIENT, 9000), STEP)
            w.write(f"hello {ctx.core}\n".encode())
            ok += await asyncio.wait_for(r.readline(), STEP) == b"ok\n"
            w.close()
        await asyncio.sleep(0.2)
        tcp = ctx.network.counters()["tcp"]
        report = {"core": ctx.core, "pid": os.getpid(), "ok": ok, "drops": tcp["drops"],
                  "resets_sent": tcp["stats"].get("resets_sent", 0),
                  "active_opens": tcp["stats"].get("active_opens", 0)}
        r, w = await asyncio.wait_for(ctx.network.open_connection(CLIENT, 9000), STEP)
        w.write(f"report {json.dumps(report)}\n".encode())
        await w.drain()
        await r.readline()
        async with server:
            await server.serve_forever()

    return run_reactors(options, app, device=link.end(0))


async def client(link: SharedMemoryLink, supervisor: int) -> dict[str, object]:
    stack = Stack(pool=pool_for_mtu(1500))
    stack.attach(link.end(1, pool=stack.pool), f"{CLIENT}/24", name="client")
    reports: dict[int, list[dict]] = {0: [], 1: []}
    greeted: dict[str, int] = {}
    arrived = asyncio.Event()

    async def hub(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode()
        if line.startswith("hello "):
            greeted[line.split()[1]] = greeted.get(line.split()[1], 0) + 1
        elif line.startswith("report "):
            rep = json.loads(line[7:])
            reports[rep["core"]].append(rep)
            arrived.set()
        writer.write(b"ok\n")
        await writer.drain()
        writer.close()

    async def ask(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> int:
        conn[1].write(b"which\n")
        return int(await asyncio.wait_for(conn[0].readline(), STEP))

    async def until(pred) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(60):
            while not pred():
                arrived.clear()
                await arrived.wait()

    async with stack:
        hub_server = await start_server(hub, CLIENT, 9000, stack=stack)
        await until(lambda: reports[0] and reports[1])
        conns = [await asyncio.wait_for(open_connection(SERVER, 8080, stack=stack), STEP) for _ in range(CONNS)]
        served = [await ask(c) for c in conns]
        again = [await ask(c) for c in conns]  # the same reactor answers on a connection, always
        keep = next(c for c, core in zip(conns, served, strict=True) if core == 0)
        keep_ports = (keep[1].get_extra_info("sockname")[1], 8080)
        for _r, w in conns:
            if w is not keep[1]:
                w.close()
        # the closes finish first (every closed connection in TIME-WAIT: the server's FIN came and
        # was acknowledged), so the killed reactor's successor gets no segment of an old flow
        async with asyncio.timeout(STEP):
            while any(c.state.name != "TIME_WAIT" for c in stack.tcp.connections.values()
                      if c.remote_port == 8080 and (c.local_port, c.remote_port) != keep_ports):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # and the final ACKs reached the reactors
        os.kill(reports[1][0]["pid"], signal.SIGKILL)
        await until(lambda: len(reports[1]) >= 2)  # the restarted reactor 1 ran the app again
        after_kill = await ask(keep)
        fresh = [await asyncio.wait_for(open_connection(SERVER, 8080, stack=stack), STEP) for _ in range(20)]
        served_after = [await ask(c) for c in fresh]
        for _r, w in [*fresh, keep]:
            w.close()
        hub_server.close()
        tcp = stack.counters()["tcp"]
    return {
        "served": served, "again": again, "served_after": served_after, "keep_after_kill": after_kill,
        "reports": reports, "greeted": greeted, "client_resets_sent": tcp["stats"].get("resets_sent", 0),
        "client_drops": tcp["drops"], "supervisor": supervisor,
    }


def main() -> int:
    link = SharedMemoryLink.create((2, 1))
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = reactors(link)
            finally:
                os._exit(code)
        try:
            result = uvloop.run(client(link, pid))
        finally:
            os.kill(pid, signal.SIGINT)
            _, status = os.waitpid(pid, 0)
        result["supervisor_exit"] = os.waitstatus_to_exitcode(status)
        result["creator"] = os.getpid()
        print(json.dumps(result), flush=True)
        return 0
    finally:
        link.close()


if __name__ == "__main__":
    sys.exit(main())
