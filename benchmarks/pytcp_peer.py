#!/usr/bin/env python3
"""The comparison's pure-Python peer: the same HTTP and bulk applications on PyTCP
(``pmd-pytcp`` on PyPI, a TCP/IP stack written in Python, on a TAP device).

PyTCP (0.3.x) runs entirely on the caller's asyncio loop and offers BSD-style sockets whose
``accept``/``recv``/``send`` are coroutines. Two small adapters give such a socket the part of
asyncio's ``StreamReader``/``StreamWriter`` interface the examples use (``read``, ``write``,
``drain``, ``write_eof``, ``close``), so the code that answers requests and moves bytes is the very
same code aiostack and uvloop run: ``handle`` from ``examples/http_server.py`` and ``transfer`` from
``examples/bulk.py``.

    python benchmarks/pytcp_peer.py http --iface pytcp0 --addr 10.78.6.2/24 --host-addr 10.78.6.1/24
    python benchmarks/pytcp_peer.py bulk-receive --bytes 100000000 --iface pytcp0 ...   # one transfer

Run it inside a network namespace (it creates the TAP device ``--iface`` in the namespace it runs
in and gives the kernel's side ``--host-addr``). ``http`` prints ``serving on ADDR:PORT (pytcp)``
and serves until SIGTERM/SIGINT; ``bulk-send``/``bulk-receive`` print ``bulk MODE listening on
ADDR:PORT``, serve one connection like ``examples/bulk.py`` does, and print its JSON result line.

Where PyTCP differs: its ``send`` queues without limit (there is no send-buffer cap to block on),
so ``drain()`` waits, polling every millisecond, until the session's unacknowledged backlog is
below 1 MiB; the static address is installed with PyTCP's address API (no RFC 5227 probing, which
would take seconds), like ``ip addr add``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import signal
import subprocess
import sys
from ipaddress import IPv4Interface
from pathlib import Path
from types import ModuleType
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HIGH_WATER = 1 << 20  # bytes queued in a PyTCP session before drain() waits
SHUT_WR = 1
_CLOSING: set[asyncio.Future[None]] = set()  # closes in flight (asyncio keeps only weak references)


def load_example(name: str) -> ModuleType:
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"aiostack_bench_{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PyTcpReader:
    """``StreamReader.read`` over a PyTCP socket."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._eof = False

    async def read(self, n: int = -1) -> bytes:
        if n < 0:  # to EOF, as asyncio's read(-1)
            parts = []
            while data := await self.read(1 << 20):
                parts.append(data)
            return b"".join(parts)
        if self._eof:
            return b""
        try:
            data = await self._sock.recv(n)
        except OSError as exc:
            raise ConnectionResetError(str(exc)) from exc
        if not data:
            self._eof = True
        return bytes(data)


class _PyTcpTransport:
    """What the example server asks of ``writer.transport`` (its request/idle watchdog): no
    extra info, and ``abort()`` closes the PyTCP socket at once."""

    def __init__(self, writer: PyTcpWriter) -> None:
        self._writer = writer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def abort(self) -> None:
        self._writer._closed = True
        with contextlib.suppress(OSError):
            self._writer._sock.close()


class PyTcpWriter:
    """``StreamWriter``'s write/drain/write_eof/close (and a ``transport`` to abort) over a PyTCP
    socket."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._pending: list[bytes] = []
        self._eof = False
        self._closed = False
        self.transport = _PyTcpTransport(self)

    def write(self, data: bytes) -> None:
        self._pending.append(bytes(data))

    async def drain(self) -> None:
        await self._flush()
        session = getattr(self._sock, "_tcp_session", None)
        tx = getattr(session, "_tx", None)
        while tx is not None and len(tx.buffer) > HIGH_WATER and not self._closed:
            await asyncio.sleep(0.001)

    async def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            try:
                await self._sock.send(data)
            except OSError as exc:
                raise ConnectionResetError(str(exc)) from exc
        if self._eof:
            self._eof = False
            with contextlib.suppress(OSError):
                self._sock.shutdown(SHUT_WR)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._eof = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task = asyncio.ensure_future(self._close())
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)

    async def _close(self) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            await self._flush()
        with contextlib.suppress(OSError):
            self._sock.close()

    def is_closing(self) -> bool:
        return self._closed


def configure_host_side(iface: str, host_addr: IPv4Interface | None) -> None:
    """The kernel's side of the TAP, in the namespace this process runs in."""
    if host_addr is not None:
        subprocess.run(["ip", "addr", "add", str(host_addr), "dev", iface], check=True)
    subprocess.run(["ip", "link", "set", iface, "up"], check=True)


async def start_stack(args: argparse.Namespace) -> None:
    from pmd_net_addr import Ip4IfAddr, MacAddress
    from pmd_pytcp import stack

    iface = stack.initialize_interface__tap(args.iface, mac_address=MacAddress(args.mac))
    stack.init(**iface, ip4_dhcp=False, ip6_support=False)
    ifindex = next(iter(stack.interfaces.keys()))
    stack.address.interface(ifindex).add(ifaddr=Ip4IfAddr(str(args.addr)))
    await stack.start()
    configure_host_side(args.iface, args.host_addr)


async def listener(args: argparse.Namespace) -> Any:
    from pmd_pytcp import socket as pytcp_socket

    sock = pytcp_socket.socket(pytcp_socket.AddressFamily.INET4, pytcp_socket.SocketType.STREAM)
    sock.bind((str(args.addr.ip), args.port))
    sock.listen(backlog=1024)
    return sock


async def serve_http(args: argparse.Namespace) -> None:
    handle = load_example("http_server").handle
    sock = await listener(args)
    print(f"serving on {args.addr.ip}:{args.port} (pytcp)", flush=True)
    tasks: set[asyncio.Task[None]] = set()
    while True:
        conn, _ = await sock.accept()
        task = asyncio.ensure_future(handle(PyTcpReader(conn), PyTcpWriter(conn)))  # type: ignore[arg-type]
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def serve_bulk(args: argparse.Namespace) -> dict[str, object]:
    transfer = load_example("bulk").transfer
    mode = args.mode.removeprefix("bulk-")
    sock = await listener(args)
    print(f"bulk {mode} listening on {args.addr.ip}:{args.port}", flush=True)
    conn, _ = await sock.accept()
    reader, writer = PyTcpReader(conn), PyTcpWriter(conn)
    result = await transfer(mode, reader, writer, args.bytes, args.seed, args.verify)  # type: ignore[arg-type]
    await asyncio.sleep(0.05)  # let the close go out
    return result


async def amain(args: argparse.Namespace) -> dict[str, object] | None:
    from pmd_pytcp import stack

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    await start_stack(args)
    try:
        if args.mode == "http":
            await serve_http(args)
            return None
        return await serve_bulk(args)
    except asyncio.CancelledError:
        return None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stack.stop(), 5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("http", "bulk-send", "bulk-receive"))
    parser.add_argument("--iface", default="pytcp0", help="TAP device to create (default: pytcp0)")
    parser.add_argument("--mac", default="02:00:00:77:77:77", help="the stack's MAC address")
    parser.add_argument("--addr", type=IPv4Interface, default=IPv4Interface("10.78.6.2/24"), help="the stack's CIDR")
    parser.add_argument("--host-addr", type=IPv4Interface, default=None, help="CIDR for the kernel's side")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bytes", type=int, default=100_000_000, help="bulk: bytes to send")
    parser.add_argument("--seed", type=int, default=1, help="bulk: pattern seed (as examples/bulk.py)")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="bulk: skip the SHA-256")
    args = parser.parse_args(argv)
    result = asyncio.run(amain(args))
    if result is not None:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
