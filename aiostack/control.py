"""The control socket: a running stack's counters and connection table for ``aiostack stat``.

A Unix stream socket — never the data-plane stack — served by the reactor's own loop. A client
sends one command line and reads one JSON document back, then the server closes:

- ``stat`` — identity (pid, interfaces, uptime) and :meth:`Stack.counters`;
- ``conns [N]`` — the connection table, at most N rows (default 1000; a reactor may hold a
  million) and the total count, with the states summed over all of them.

Sockets live in :func:`control_dir` as ``<pid>.sock`` unless a path is given, so ``aiostack stat``
finds every instance running on the machine without being told where.

A multi-core instance's parent answers too (:class:`ParentControl`, ``"role": "parent"``): ``stat``
gives its reactors (core, pid, restarts) and their counters summed, ``conns`` their connection
tables merged — the per-core counters aggregated where the reactors are known, so a reactor that
was restarted (new pid, new socket) is still counted as its core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import build_name
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
        "build": build_name(),
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


def clear_place(path: Path) -> None:
    """Make ``path``'s directory (private) and free the path: a socket left there by a process
    with our pid that died, and sockets of processes that are gone."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    remove_stale(path.parent)


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
        clear_place(self.path)
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


def query_sync(path: str | Path, command: str, timeout: float = 2.0) -> dict[str, Any]:
    """:func:`query` without an event loop (the parent's supervisor loop has none)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))


def sum_counters(total: dict[str, Any], counters: dict[str, Any]) -> None:
    """Add ``counters`` into ``total``, number by number, through nested dicts (booleans and
    strings are identity, not amounts: left out)."""
    for k, v in counters.items():
        if isinstance(v, dict):
            sum_counters(total.setdefault(k, {}), v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v


Reactors = Callable[[], list[dict[str, Any]]]
"""What the parent knows of its reactors now: ``[{"core", "pid", "restarts", "socket"}]``."""


class ParentControl:
    """A multi-core instance's parent on its own control socket, driven by the supervisor's loop
    (:meth:`fileno` to wait on, :meth:`serve_one` when it is readable): it asks each reactor's
    socket and answers with the sum."""

    def __init__(self, path: str | Path | None, reactors: Reactors, *, labels: dict[str, Any] | None = None) -> None:
        self.path = Path(path) if path is not None else control_dir() / f"{os.getpid()}.sock"
        self.reactors = reactors
        self.labels = labels or {}
        self.started = time.monotonic()
        clear_place(self.path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self._sock.listen(8)
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def serve_one(self) -> None:
        """Answer one waiting client (a stuck client costs at most the timeout)."""
        try:
            conn, _ = self._sock.accept()
        except BlockingIOError:
            return
        with conn:
            conn.settimeout(2.0)
            try:
                line = conn.recv(MAX_COMMAND).split(b"\n", 1)[0].decode(errors="replace")
                conn.sendall(json.dumps(self.answer(line), default=str).encode() + b"\n")
            except OSError:
                pass

    def answer(self, line: str) -> dict[str, Any]:
        words = line.split()
        if not words or words[0] not in ("stat", "conns"):
            return {"error": f"unknown command {line.strip()!r} (try: stat, conns [N])"}
        if words[0] == "conns":
            try:
                limit = max(0, int(words[1])) if len(words) > 1 else DEFAULT_CONNS
            except ValueError:
                return {"error": f"conns: not a number: {words[1]!r}"}
            return self._conns(limit)
        reactors = self.reactors()
        counters: dict[str, Any] = {}
        interfaces: list[dict[str, Any]] = []
        for r in reactors:
            try:
                st = query_sync(r["socket"], "stat")
            except (OSError, ValueError) as exc:
                r["error"] = f"{type(exc).__name__}: {exc}"  # between a death and its restart
                continue
            sum_counters(counters, st.get("counters", {}))
            interfaces = interfaces or st.get("interfaces", [])
        return {"cores": len(reactors), **self.labels, "role": "parent", "pid": os.getpid(), "build": build_name(),
                "uptime_s": round(time.monotonic() - self.started, 3), "interfaces": interfaces,
                "reactors": reactors, "counters": counters}

    def _conns(self, limit: int) -> dict[str, Any]:
        total = 0
        states: Counter[str] = Counter()
        listeners: set[str] = set()
        rows: list[dict[str, Any]] = []
        for r in self.reactors():
            try:
                table = query_sync(r["socket"], f"conns {max(0, limit - len(rows))}")
            except (OSError, ValueError):
                continue
            total += table.get("total", 0)
            states.update(table.get("states", {}))
            listeners.update(table.get("listeners", []))
            rows += [{"core": r["core"], **row} for row in table.get("connections", [])]
        return {"total": total, "states": dict(states), "listeners": sorted(listeners), "connections": rows[:limit]}

    def forget(self) -> None:
        """In a forked child: close the inherited listening socket, leave the path to the parent."""
        self._sock.close()

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
