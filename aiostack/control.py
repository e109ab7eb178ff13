"""The control socket: a running stack's counters and connection table for ``aiostack stat``.

A Unix stream socket — never the data-plane stack — served by the reactor's own loop. A client
sends one command line and reads one JSON document back, then the server closes:

- ``stat`` — identity (pid, interfaces, uptime) and :meth:`Stack.counters`;
- ``conns [N]`` — the connection table, at most N rows (default 1000; a reactor may hold a
  million) and the total count, with the states summed over all of them.

Sockets live in :func:`control_dir` as ``<pid>.sock`` unless a path is given, so ``aiostack stat``
finds every instance running on the machine without being told where.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ip.ipv4 import ntoa

if TYPE_CHECKING:
    from .stack import Stack

MAX_COMMAND = 256
DEFAULT_CONNS = 1000


def control_dir() -> Path:
    """Where instances put their sockets: ``$AIOSTACK_CONTROL_DIR``, else ``/run/aiostack`` for
    root, else ``$XDG_RUNTIME_DIR/aiostack`` (or ``/tmp/aiostack-<uid>``)."""
    env = os.environ.get("AIOSTACK_CONTROL_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/run/aiostack")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime, "aiostack") if runtime else Path(f"/tmp/aiostack-{os.getuid()}")


def stat_snapshot(stack: Stack, started: float) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "uptime_s": round(time.monotonic() - started, 3),
        "interfaces": [
            {"name": i.name, "addr": f"{ntoa(i.addr)}/{i.prefix_len}", "mtu": i.mtu, "mac": i.mac.hex(":")}
            for i in stack.ip.interfaces
        ],
        "counters": stack.counters(),
    }


def connection_table(stack: Stack, limit: int = DEFAULT_CONNS) -> dict[str, Any]:
    tcp = stack.tcp
    conns = tcp.connections if tcp is not None else {}
    rows = []
    for conn in conns.values():
        if len(rows) >= limit:
            break
        rb = conn.rcvbuf
        rows.append({
            "local": f"{ntoa(conn.local_addr)}:{conn.local_port}",
            "remote": f"{ntoa(conn.remote_addr)}:{conn.remote_port}",
            "state": conn.state.name,
            "send_queue": len(conn.sndbuf),
            "recv_queue": rb.readable if rb is not None else 0,
            "srtt_ms": round(conn.rtt.srtt * 1000, 3) if conn.rtt.srtt is not None else None,
        })
    states = Counter(c.state.name for c in conns.values())
    listeners = [f"{ntoa(a)}:{p}" for (a, p) in tcp.listeners] if tcp is not None else []
    return {"total": len(conns), "states": dict(states), "listeners": listeners, "connections": rows}


def remove_stale(directory: Path) -> list[Path]:
    """Remove ``<pid>.sock`` files in ``directory`` whose process is gone (one killed with
    SIGKILL cannot remove its own); returns them."""
    gone = []
    for path in directory.glob("*.sock"):
        if not path.stem.isdigit():
            continue
        try:
            os.kill(int(path.stem), 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            gone.append(path)
        except PermissionError:
            pass  # someone else's live process
    return gone


class ControlServer:
    """Serves ``stack``'s control socket at ``path`` (default: ``control_dir()/<pid>.sock``)."""

    def __init__(self, stack: Stack, path: str | Path | None = None, *, labels: dict[str, Any] | None = None) -> None:
        self.stack = stack
        self.labels = labels or {}
        """Extra identity in ``stat`` (a reactor's core, its parent's pid)."""
        self.path = Path(path) if path is not None else control_dir() / f"{os.getpid()}.sock"
        self.started = time.monotonic()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of a process with our pid that died
        remove_stale(self.path.parent)
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            reply = self.answer(line[:MAX_COMMAND].decode(errors="replace"))
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, line: str) -> dict[str, Any]:
        words = line.split()
        if not words:
            return {"error": "empty command (try: stat, conns [N])"}
        cmd, args = words[0], words[1:]
        if cmd == "stat":
            return {**self.labels, **stat_snapshot(self.stack, self.started)}
        if cmd == "conns":
            try:
                limit = int(args[0]) if args else DEFAULT_CONNS
            except ValueError:
                return {"error": f"conns: not a number: {args[0]!r}"}
            return connection_table(self.stack, max(0, limit))
        return {"error": f"unknown command {cmd!r} (try: stat, conns [N])"}

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def query(path: str | Path, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send ``command`` to the control socket at ``path``; its JSON reply."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    return json.loads(data)
