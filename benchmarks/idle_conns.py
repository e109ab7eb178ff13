#!/usr/bin/env python3
"""Concurrency: N established idle TCP connections held by one aiostack reactor; bytes per
connection of the server's RSS.

    python benchmarks/idle_conns.py [--count N] [--json]          # TAP in a namespace (root)
    python benchmarks/idle_conns.py --inprocess [--count N]       # memory link, one process
    python benchmarks/idle_conns.py --tracemalloc [--count N]     # where each connection's bytes go

The default run (root, /dev/net/tun, iproute2) creates a network namespace and, inside it:

- the server, ``benchmarks/idle_server.py``: one reactor (uvloop) on a TAP, 10.77.0.2:8080 with
  gateway 10.77.0.1 (the kernel's side of the TAP), ``aiostack.protocols.create_server`` with a
  protocol that holds each connection and does nothing;
- the client, this script with ``--generator``: a stateless handshake generator
  (``benchmarks/handshake.py``) on an AF_PACKET socket bound to the kernel's side of the TAP. It
  writes SYNs from 10.78.0.1, 10.78.0.2, … (60,000 source ports each) — addresses nobody in the
  namespace owns — and answers every SYN-ACK with the completing ACK. The stack routes its replies
  to those addresses through its gateway, so they land on the TAP; the kernel, not forwarding
  (the namespace's default), drops them as not local, so no RST comes back (checked: the server's
  reset counters are reported). SYNs are paced in a window of ``--window`` unanswered ones so
  the server's queues never overflow; any SYN left unanswered is sent again, and a SYN-ACK the
  server retransmits (its ACK was lost) is answered again.

When the server reports exactly N established connections, its RSS is read; the namespace (and
with it the TAP and both processes) is then deleted — also on errors and Ctrl-C.

Output: progress lines, then as the last stdout line one JSON object::

    {"connections": N, "rss_bytes": ..., "baseline_rss_bytes": ..., "bytes_per_connection": ...,
     "seconds": time to establish, "target_rss_bytes": 1.5e9, "within_target": bool, ...}

``--inprocess`` runs server and generator in one process over the in-memory link (no root
needed; the RSS then includes the generator's bitmap, N bytes). ``--tracemalloc`` does the same
under tracemalloc and prints, per connection, the bytes allocated by each source line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from handshake import HandshakeGen, Pacer  # noqa: E402

TARGET_RSS = 1_500_000_000  # 1,000,000 idle connections in 1.5 GB
SERVER_ADDR = "10.77.0.2"
KERNEL_ADDR = "10.77.0.1"
SERVER_MAC = "02:00:00:77:00:02"
PORT = 8080
SRC_BASE = "10.78.0.1"


def log(msg: str) -> None:
    print(msg, flush=True)


# == the generator on an AF_PACKET socket (runs inside the namespace) ===========================
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32


def generator_main(args: argparse.Namespace) -> int:
    """Establish ``args.count`` connections through ``args.iface``; report JSON lines on stdout
    (progress, then ``{"done": ...}`` when every SYN-ACK has been answered). Keeps answering
    SYN-ACK retransmissions until stdin closes."""
    kernel_mac = Path(f"/sys/class/net/{args.iface}/address").read_text().strip()
    gen = HandshakeGen(
        count=args.count, server=SERVER_ADDR, port=PORT, server_mac=args.server_mac, client_mac=kernel_mac,
        src_base=SRC_BASE,
    )
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
    s.bind((args.iface, 0))
    s.setblocking(False)
    send = s.send
    recv_into = s.recv_into
    buf = bytearray(2048)
    view = memoryview(buf)
    reply = gen.reply
    count = args.count
    pacer = Pacer(gen, 0, count, args.window)
    start = time.monotonic()
    last_report = start
    send_errors = 0
    done_reported = False

    def out(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def xmit(frame: bytes) -> None:
        nonlocal send_errors
        try:
            send(frame)
        except OSError:  # ENOBUFS and the like: the sweep sends it again
            send_errors += 1

    while True:
        now = time.monotonic()
        for i in pacer.due(now, 512):
            xmit(gen.syn(i))
        got = 0
        before = gen.synacks
        while got < 1024:
            try:
                n = recv_into(buf)
            except BlockingIOError:
                break
            except OSError:  # the TAP went away (the server stopped): nothing more to do
                s.close()
                return 0
            got += 1
            frame = reply(view[:n])
            if frame is not None:
                xmit(frame)
        now = time.monotonic()
        pacer.answered_new(gen.synacks - before, now)
        if pacer.complete and not done_reported:
            done_reported = True
            out({"done": True, "seconds": now - start, "sent": pacer.sent, "resent": pacer.resent,
                 "sweeps": pacer.sweeps, "dup_synacks": gen.dup_synacks, "resets": gen.resets,
                 "send_errors": send_errors})
        if now - last_report >= 1.0 and not done_reported:
            last_report = now
            out({"progress": gen.synacks, "sent": pacer.sent, "resent": pacer.resent, "seconds": now - start})
        if got == 0 or done_reported:
            idle = got == 0 and (pacer.outstanding >= pacer.window or pacer.nxt >= count)
            r, _, _ = select.select([s, sys.stdin], [], [], 0.01 if idle else 0)
            if sys.stdin in r and not sys.stdin.readline():
                break
    s.close()
    return 0


# == the orchestrated run (TAP in a namespace) ================================================
class Server:
    """idle_server.py inside the namespace, spoken to by lines on stdin/stdout."""

    def __init__(self, ns: Any, tap: str, backlog: int, gc_policy: str, api: str = "socket") -> None:
        self.proc = ns.popen(
            [sys.executable, str(HERE / "idle_server.py"), "--tap", tap, "--mac", SERVER_MAC,
             "--addr", f"{SERVER_ADDR}/24", "--host-addr", f"{KERNEL_ADDR}/24", "--gateway", KERNEL_ADDR,
             "--port", str(PORT), "--backlog", str(backlog), "--gc", gc_policy, "--api", api],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )

    def read(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TimeoutError("the server did not answer")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server exited (status {self.proc.poll()})")
        return json.loads(line)

    def ask(self, cmd: str = "stats", timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _kernel_counters(ns: Any) -> dict[str, int]:
    """The namespace kernel's view: SYN-ACKs it dropped as not addressed to it (InAddrErrors)
    and any resets it sent (OutRsts, which must stay 0)."""
    out: dict[str, int] = {}
    with contextlib.suppress(Exception):
        lines = ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            names = head.split()
            vals = values.split()
            if names[0] == "Ip:":
                out["ip_in_addr_errors"] = int(vals[names.index("InAddrErrors")])
            elif names[0] == "Tcp:":
                out["tcp_out_rsts"] = int(vals[names.index("OutRsts")])
    return out


def run_tap(args: argparse.Namespace, progress: dict[str, Any]) -> dict[str, Any]:
    """The orchestrated run; ``progress`` is kept up to date (established count, RSS) so that a
    failure can still report how far it got."""
    from aiostack.netns import NetNS, net_unavailable_reason

    reason = net_unavailable_reason()
    if reason:
        raise RuntimeError(f"cannot run on a TAP: {reason} (try --inprocess)")
    tap = "idle0"
    count = args.count
    with NetNS("aiostack-idle") as ns:
        log(f"namespace {ns.name}; server {SERVER_ADDR}:{PORT} on TAP {tap}, clients from {SRC_BASE} up")
        server = Server(ns, tap, args.backlog, args.server_gc, args.api)
        gen: subprocess.Popen[str] | None = None
        try:
            ready = server.read(timeout=60)
            # A deep queue on the kernel's side of the TAP: frames the generator writes wait there
            # for the reactor instead of being dropped (1000 by default).
            ns.run(["ip", "link", "set", tap, "txqueuelen", str(max(1000, 4 * args.window))])
            base = server.ask("gc")
            baseline = progress["baseline_rss_bytes"] = base["rss_bytes"]
            log(f"server ready, baseline RSS {baseline / 1e6:.1f} MB")
            gen = ns.popen(
                [sys.executable, str(HERE / "idle_conns.py"), "--generator", "--iface", tap, "--count", str(count),
                 "--window", str(args.window), "--server-mac", ready["mac"]],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            )
            assert gen.stdout is not None and gen.stdin is not None
            t0 = time.monotonic()
            deadline = t0 + args.timeout
            done: dict[str, Any] | None = None
            established = 0
            last_log = t0
            while True:
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"only {established} of {count} connections after {args.timeout:.0f} s")
                if gen.poll() is not None and done is None:
                    raise RuntimeError(f"the generator exited (status {gen.returncode})")
                r, _, _ = select.select([gen.stdout], [], [], 0.25)
                if r:
                    line = gen.stdout.readline()
                    if line:
                        msg = json.loads(line)
                        if msg.get("done"):
                            done = msg
                            log(f"generator: every SYN-ACK answered after {msg['seconds']:.1f} s "
                                f"({msg['resent']} SYNs resent, {msg['dup_synacks']} duplicate SYN-ACKs)")
                if done is not None or now - last_log >= 2.0:
                    st = server.ask("stats")
                    established = st["established"]
                    progress.update(established=established, rss_bytes=st["rss_bytes"],
                                    seconds=round(now - t0, 1))
                    if now - last_log >= 2.0:
                        last_log = now
                        log(f"  {now - t0:6.1f} s: {established:>9,} established, "
                            f"RSS {st['rss_bytes'] / 1e6:8.1f} MB")
                    if done is not None and established >= count:
                        break
            seconds = time.monotonic() - t0
            log(f"{established:,} connections established in {seconds:.1f} s")
            time.sleep(args.settle)  # idle: the last handshakes' timers run out; then measure
            final = server.ask("gc full", timeout=120)
            kernel = _kernel_counters(ns)
        finally:
            if gen is not None:  # the generator first (EOF on its stdin), then the server
                with contextlib.suppress(Exception):
                    assert gen.stdin is not None
                    gen.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    gen.wait(timeout=10)
            server.stop()
    conns = final["established"]
    rss = final["rss_bytes"]
    per = (rss - baseline) / conns if conns else None
    result = {
        "connections": conns,
        "requested": count,
        "rss_bytes": rss,
        "baseline_rss_bytes": baseline,
        "bytes_per_connection": round(per, 1) if per is not None else None,
        "seconds": round(seconds, 2),
        "connections_per_second": round(conns / seconds) if seconds else None,
        "target_rss_bytes": TARGET_RSS,
        "within_target": rss <= TARGET_RSS,
        "tcp_connections": final["connections"],
        "tcp_states": final.get("tcp_states"),
        "resets_received": final.get("resets_received"),
        "pending_timers": final.get("pending_timers"),
        "server_resets_sent": final["tcp_stats"].get("resets_sent", 0),
        "syncookies_accepted": final["tcp_stats"].get("syncookies_accepted", 0),
        "tcp_drops": final["tcp_drops"],
        "server_gc": final.get("gc"),
        "server_pool": final.get("pool"),
        "server_gc_policy": args.server_gc,
        "generator": done,
        "kernel": kernel,
        "mode": "tap",
        "api": args.api,
    }
    return result


# == in one process, over the memory link ======================================================
async def _inprocess(args: argparse.Namespace, trace: bool) -> dict[str, Any]:
    import tracemalloc

    from idle_server import IdleProtocol, rss_bytes, start, stats

    from aiostack.drivers.buffers import PacketPool
    from aiostack.drivers.memory import MemoryLink
    from aiostack.stack import Stack

    count = args.count
    warm = min(200, count)
    link = MemoryLink()
    pool = PacketPool(count=max(4096, 2 * args.window + 256))
    sport = link.port(name="server", mac=bytes.fromhex(SERVER_MAC.replace(":", "")), pool=pool,
                      rx_queue_cap=4 * args.window + 64)
    gpool = PacketPool(count=max(4096, 2 * args.window + 256))
    gport = link.port(name="gen", pool=gpool, rx_queue_cap=4 * args.window + 64)
    stack = Stack(pool=pool, batch=256)
    stack.attach(sport, f"{SERVER_ADDR}/24")
    stack.set_gateway(KERNEL_ADDR)
    server = await start(stack, SERVER_ADDR, PORT, args.backlog, args.api)
    gen = HandshakeGen(count=count + warm, server=SERVER_ADDR, port=PORT, server_mac=SERVER_MAC,
                       client_mac=gport.mac, src_base=SRC_BASE, arp_addr=KERNEL_ADDR)

    async def establish(first: int, last: int) -> None:
        pacer = Pacer(gen, first, last, args.window)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        while not pacer.complete or IdleProtocol.established() < last:
            now = loop.time()
            if now > deadline:
                raise TimeoutError(f"{pacer.answered} SYN-ACKs, {IdleProtocol.established()} established")
            burst = [gpool.packet_from(gen.syn(i)) for i in pacer.due(now)]
            if burst:
                gport.tx_burst(0, burst)
            await asyncio.sleep(0 if burst or pacer.outstanding else 0.001)
            pkts = gport.rx_burst(0, 1 << 20)
            replies = []
            before = gen.synacks
            for pkt in pkts:
                frame = gen.reply(pkt.view[pkt.start : pkt.end])
                pkt.free()
                if frame is not None:
                    replies.append(gpool.packet_from(frame))
            if replies:
                gport.tx_burst(0, replies)
            pacer.answered_new(gen.synacks - before, loop.time())

    try:
        await establish(0, warm)
        gc.collect()
        if trace:
            tracemalloc.start(args.frames)
        gc.collect()
        baseline = rss_bytes()
        snap0 = tracemalloc.take_snapshot() if trace else None
        log(f"in-process: baseline RSS {baseline / 1e6:.1f} MB; establishing {count:,} connections")
        t0 = time.monotonic()
        await establish(warm, warm + count)
        seconds = time.monotonic() - t0
        await asyncio.sleep(args.settle)  # idle: handshake timers run out
        gc.collect()
        rss = rss_bytes()
        breakdown = None
        if trace:
            assert snap0 is not None
            snap1 = tracemalloc.take_snapshot()
            tracemalloc.stop()
            breakdown = _breakdown(snap0, snap1, count, args.top)
        final = stats(stack, full=True)
    finally:
        server.close()
        stack.close()
        gport.close()
    conns = final["established"] - warm
    per = (rss - baseline) / conns if conns else None
    result: dict[str, Any] = {
        "connections": conns,
        "requested": count,
        "rss_bytes": rss,
        "baseline_rss_bytes": baseline,
        "bytes_per_connection": round(per, 1) if per is not None else None,
        "seconds": round(seconds, 2),
        "connections_per_second": round(conns / seconds) if seconds else None,
        "target_rss_bytes": TARGET_RSS,
        "within_target": rss <= TARGET_RSS,
        "tcp_connections": final["connections"] - warm,
        "tcp_states": final["tcp_states"],
        "resets_received": final["resets_received"],
        "pending_timers": final["pending_timers"],
        "tcp_drops": final["tcp_drops"],
        "mode": "tracemalloc" if trace else "inprocess",
        "api": args.api,
    }
    if breakdown is not None:
        result["tracemalloc"] = breakdown
    return result


def _breakdown(snap0: Any, snap1: Any, count: int, top: int) -> dict[str, Any]:
    import tracemalloc

    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    snap0 = snap0.filter_traces(filters)
    snap1 = snap1.filter_traces(filters)
    root = str(HERE.parent)
    diff = snap1.compare_to(snap0, "lineno")
    total = sum(d.size_diff for d in diff)
    rows = []
    log(f"tracemalloc: {total / count:,.0f} bytes per connection in total; by line (per connection):")
    for d in diff[:top]:
        if abs(d.size_diff) < count // 4:
            break
        frame = d.traceback[0]
        where = frame.filename.replace(root + "/", "")
        line = ""
        with contextlib.suppress(Exception):
            import linecache

            line = linecache.getline(frame.filename, frame.lineno).strip()
        rows.append({"where": f"{where}:{frame.lineno}", "bytes": round(d.size_diff / count, 1),
                     "blocks": round(d.count_diff / count, 2), "code": line[:80]})
        log(f"  {d.size_diff / count:8.1f} B {d.count_diff / count:6.2f} blk  {where}:{frame.lineno}  {line[:70]}")
    return {"bytes_per_connection": round(total / count, 1), "by_line": rows}


def run_inprocess(args: argparse.Namespace, trace: bool) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(_inprocess(args, trace))
    return uvloop.run(_inprocess(args, trace))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=1_000_000, help="connections to establish (default 1,000,000)")
    p.add_argument("--json", action="store_true", help="only the JSON line (progress goes to stderr)")
    p.add_argument("--window", type=int, default=2000, help="SYNs in flight at once")
    p.add_argument("--backlog", type=int, default=65535)
    p.add_argument("--api", choices=("socket", "protocol"), default="socket",
                   help="the server holds accepted TcpSockets (default) or Transport + Protocol pairs")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    p.add_argument("--settle", type=float, default=1.5,
                   help="idle seconds before measuring (the handshake's retransmission timers run out)")
    p.add_argument("--server-gc", choices=("freeze", "default"), default="freeze",
                   help="the server's GC policy: gc.freeze() twice a second (default) or Python's own")
    p.add_argument("--inprocess", action="store_true", help="memory link in one process, no root needed")
    p.add_argument("--tracemalloc", action="store_true", help="in-process, with a per-line breakdown")
    p.add_argument("--frames", type=int, default=1, help="tracemalloc traceback depth")
    p.add_argument("--top", type=int, default=40, help="lines shown by --tracemalloc")
    # internal: the generator process inside the namespace
    p.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--iface", help=argparse.SUPPRESS)
    p.add_argument("--server-mac", default=SERVER_MAC, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.generator:
        return generator_main(args)
    if args.count < 1:
        raise SystemExit("--count must be at least 1")
    if args.json:
        global log

        def log(msg: str) -> None:  # type: ignore[no-redef]
            print(msg, file=sys.stderr, flush=True)

    progress: dict[str, Any] = {}
    try:
        if args.tracemalloc or args.inprocess:
            result = run_inprocess(args, args.tracemalloc)
        else:
            result = run_tap(args, progress)
    except Exception as exc:  # still one JSON line last, for the harness
        log(f"idle_conns: {type(exc).__name__}: {exc}")
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "connections": progress.get("established", 0),
                          "requested": args.count, "target_rss_bytes": TARGET_RSS, **progress}), flush=True)
        return 1
    if result["connections"] != args.count:
        log(f"WARNING: {result['connections']} connections, not {args.count}")
    if not args.json:
        log(f"{result['connections']:,} idle connections: RSS {result['rss_bytes'] / 1e6:.1f} MB "
            f"(baseline {result['baseline_rss_bytes'] / 1e6:.1f} MB), "
            f"{result['bytes_per_connection']:,.0f} bytes per connection, established in {result['seconds']:.1f} s")
    print(json.dumps(result), flush=True)
    return 0 if result["connections"] == args.count else 1


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: the namespace (TAP, server, generator) is deleted


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
