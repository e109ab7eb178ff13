"""Run by tests/test_multicore.py inside a test-made namespace: ``--cores N`` reactors each make
outgoing connections to a kernel server and count what comes back — every reply must reach the
reactor that connected (its ephemeral ports steer back to it), so every fetch completes and no
reactor sees a segment for a connection it does not have. Each also pings the kernel (the
replies, steered by addresses, land on one reactor, which hands the others theirs) and
exchanges datagrams with a kernel UDP echo server from an implicitly bound socket."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from aiostack.config import parse_options
from aiostack.cores import ReactorContext, run_reactors


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="HOST:PORT of a kernel HTTP server")
    parser.add_argument("--fetches", type=int, default=30)
    parser.add_argument("--udp-echo", type=int, default=0, help="a kernel UDP echo server's port on the target host")
    options = parse_options(None, parser, default_port=8080)
    host, _, port = options.extra["target"].rpartition(":")

    async def app(ctx: ReactorContext) -> None:
        ok = 0
        for _ in range(options.extra["fetches"]):
            reader, writer = await asyncio.wait_for(ctx.network.open_connection(host, int(port)), 10)
            writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            ok += data.startswith(b"HTTP/1.") and b"200" in data.split(b"\r\n", 1)[0]
        stack = ctx.network.stack
        pings = 0
        for _ in range(3):
            await stack.ping(host, timeout=5)
            pings += 1
        datagrams = 0
        if options.extra["udp_echo"]:
            sock = stack.socket()  # UDP; bound by connect, to a port whose replies come back here
            sock.connect((host, options.extra["udp_echo"]))
            for i in range(10):
                await sock.send(f"datagram {i} from {ctx.core}".encode())
                datagrams += await asyncio.wait_for(sock.recv(100), 10) == f"datagram {i} from {ctx.core}".encode()
            sock.close()
        await asyncio.sleep(0.3)
        tcp = ctx.network.counters()["tcp"]
        report = {"core": ctx.core, "pid": os.getpid(), "ok": ok, "drops": tcp["drops"],
                  "resets_sent": tcp["stats"].get("resets_sent", 0),
                  "active_opens": tcp["stats"].get("active_opens", 0), "pings": pings,
                  "datagrams": datagrams, "handed_over": stack.ip.stats["icmp_handed_over"]}
        # one write(2) of the whole line: both reactors share the pipe, and a line under PIPE_BUF
        # written at once is never interleaved with the other's (print() may write it in pieces)
        os.write(sys.stdout.fileno(), (json.dumps(report) + "\n").encode())
        await asyncio.sleep(3600)  # the test stops the run (SIGINT to the parent) once all reported

    return run_reactors(options, app)


if __name__ == "__main__":
    sys.exit(main())
