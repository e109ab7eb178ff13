#!/usr/bin/env python3
"""Key-value server speaking a subset of the Redis protocol (RESP2), one reactor.

Commands: PING [msg], ECHO, GET, SET key value [EX s | PX ms | KEEPTTL] [NX | XX], DEL, EXISTS,
INCR, DECR, INCRBY, DECRBY, MGET, MSET, EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, DBSIZE, FLUSHALL,
SELECT 0, QUIT, and minimal COMMAND [DOCS|COUNT] and CONFIG GET (what redis-cli and
redis-benchmark ask on start). Requests are RESP arrays or inline text lines (telnet); pipelined
requests are answered with one write per read. Keys expire lazily on access and by a periodic,
sample-based sweep (as Redis does), on the event loop's clock.

The store sits behind :class:`Store` (``execute(cmd) -> reply bytes``) and :func:`owner` maps a
key to a core (stable CRC-32), ready for sharding across reactors later.

    python examples/kv.py --driver tap --addr 10.77.0.2/24 --host-addr 10.77.0.1/24   # port 6379
    redis-cli -h 10.77.0.2 PING                                                       # kernel side
    redis-benchmark -h 10.77.0.2 -t set,get -q
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import random
import re
import shlex
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

from aiostack.config import Options, parse_options
from aiostack.network import Network, serve

MAX_LINE = 64 * 1024  # inline request or count line (Redis's PROTO_INLINE_MAX_SIZE)
MAX_BULK = 512 * 1024 * 1024  # one bulk string (Redis's proto-max-bulk-len)
MAX_ARGS = 1024 * 1024  # elements of one request array
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
SWEEP_INTERVAL = 0.1  # seconds between expiry sweeps (Redis's hz 10)


def owner(key: bytes, cores: int) -> int:
    """The core that owns ``key``: CRC-32 of the key modulo ``cores``, stable across processes and
    runs (unlike ``hash()``). As in Redis Cluster, a non-empty ``{tag}`` in the key is hashed
    alone, so ``{user1}.name`` and ``{user1}.mail`` land on the same core."""
    start = key.find(b"{")
    if start >= 0:
        stop = key.find(b"}", start + 1)
        if stop > start + 1:
            key = key[start + 1 : stop]
    return zlib.crc32(key) % cores


# -- RESP2 parsing ----------------------------------------------------------------------------------


class ProtocolError(ValueError):
    """A malformed request; the connection gets ``-ERR Protocol error: ...`` and is closed."""


def _length(text: bytes, what: str) -> int:
    if text.isdigit() and len(text) <= 18:
        return int(text)
    if text[:1] == b"-" and text[1:].isdigit() and len(text) <= 19:
        return -int(text[1:])
    raise ProtocolError(what)


def _inline(line: bytes) -> list[bytes]:
    if b'"' not in line and b"'" not in line:
        return line.split()
    try:
        return [a.encode("latin-1") for a in shlex.split(line.decode("latin-1"))]
    except ValueError:
        raise ProtocolError("unbalanced quotes in request") from None


class Parser:
    """Incremental request parser: :meth:`feed` bytes as they arrive, get back the complete
    commands (lists of bytes). Lines are found with ``bytes.find`` and bulk strings sliced by
    their length; a bulk larger than a line is collected as chunks and joined once, so a large
    value arriving in many reads costs linear time. After a protocol error :attr:`error` holds
    the message (commands before it are still returned) and the parser accepts nothing more."""

    __slots__ = ("_args", "_buf", "_bulk", "_chunks", "_have", "_left", "error")

    def __init__(self) -> None:
        self._buf = b""  # unparsed tail
        self._chunks: list[bytes] | None = None  # a large bulk still arriving
        self._have = 0  # bytes in _chunks
        self._args: list[bytes] = []  # the array being read
        self._left = 0  # its elements still to read; 0 between commands
        self._bulk = -1  # length of the bulk being read; -1 while expecting its "$" line
        self.error: str | None = None

    def feed(self, data: bytes) -> list[list[bytes]]:
        if self.error is not None:
            return []
        if self._chunks is not None:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._bulk + 2:
                return []
            buf = b"".join(self._chunks)
            self._chunks = None
        elif self._buf:
            buf = self._buf + data
        else:
            buf = data
        out: list[list[bytes]] = []
        pos, end = 0, len(buf)
        args, left, bulk = self._args, self._left, self._bulk
        try:
            while pos < end:
                if not left:  # a new command: an array or an inline line
                    if buf[pos] == 42:  # "*"
                        nl = buf.find(b"\r\n", pos)
                        if nl < 0:
                            if end - pos > MAX_LINE:
                                raise ProtocolError("too big mbulk count string")
                            break
                        n = _length(buf[pos + 1 : nl], "invalid multibulk length")
                        if n > MAX_ARGS:
                            raise ProtocolError("invalid multibulk length")
                        pos = nl + 2
                        if n > 0:
                            left, args, bulk = n, [], -1
                    else:
                        nl = buf.find(b"\n", pos)
                        if nl < 0:
                            if end - pos > MAX_LINE:
                                raise ProtocolError("too big inline request")
                            break
                        words = _inline(buf[pos:nl])
                        pos = nl + 1
                        if words:
                            out.append(words)
                    continue
                if bulk < 0:  # the "$<length>" line of the next element
                    if buf[pos] != 36:  # "$"
                        raise ProtocolError(f"expected '$', got '{chr(buf[pos])}'")
                    nl = buf.find(b"\r\n", pos)
                    if nl < 0:
                        if end - pos > MAX_LINE:
                            raise ProtocolError("too big bulk count string")
                        break
                    bulk = _length(buf[pos + 1 : nl], "invalid bulk length")
                    if not 0 <= bulk <= MAX_BULK:
                        raise ProtocolError("invalid bulk length")
                    pos = nl + 2
                stop = pos + bulk
                if stop + 2 > end:
                    break
                if buf[stop : stop + 2] != b"\r\n":
                    raise ProtocolError("expected CRLF after bulk string")
                args.append(buf[pos:stop])
                pos = stop + 2
                bulk = -1
                left -= 1
                if not left:
                    out.append(args)
                    args = []
        except ProtocolError as exc:
            self.error = f"Protocol error: {exc}"
            self._buf, self._chunks, self._args = b"", None, []
            return out
        self._args, self._left, self._bulk = args, left, bulk
        rest = buf[pos:] if pos < end else b""
        if left and bulk > MAX_LINE:  # inside a large bulk: collect chunks until it is whole
            self._chunks, self._have, self._buf = [rest], len(rest), b""
        else:
            self._buf = rest
        return out


# -- replies ----------------------------------------------------------------------------------------

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
NIL = b"$-1\r\n"
EMPTY_ARRAY = b"*0\r\n"
ZERO = b":0\r\n"
ONE = b":1\r\n"


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


def array(items: list[bytes]) -> bytes:
    """An array of already-encoded replies."""
    return b"*%d\r\n" % len(items) + b"".join(items)


def error(message: str) -> bytes:
    return b"-" + message.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


NOT_INTEGER = error("ERR value is not an integer or out of range")
SYNTAX = error("ERR syntax error")
OVERFLOW = error("ERR increment or decrement would overflow")


def _text(arg: bytes, limit: int = 128) -> str:
    return arg[:limit].decode("utf-8", "replace")


def _int64(arg: bytes) -> int | None:
    """Redis's strict integer: optional "-", digits, no leading zeros or spaces, within int64."""
    digits = arg[1:] if arg[:1] == b"-" else arg
    if not digits.isdigit() or len(arg) > 20 or (digits[0] == 48 and (len(digits) > 1 or arg[:1] == b"-")):
        return None
    n = int(arg)
    return n if INT64_MIN <= n <= INT64_MAX else None


# -- the store --------------------------------------------------------------------------------------

_COMMANDS: dict[str, int] = {  # name -> arity as Redis counts it: n exactly, -n at least n (name included)
    "ping": -1, "echo": 2, "get": 2, "set": -3, "del": -2, "exists": -2, "incr": 2, "decr": 2,
    "incrby": 3, "decrby": 3, "mget": -2, "mset": -3, "expire": 3, "pexpire": 3, "ttl": 2, "pttl": 2,
    "persist": 2, "dbsize": 1, "flushall": -1, "select": 2, "command": -1, "config": -2,
}  # fmt: skip

CONFIG = {"save": b"", "appendonly": b"no", "databases": b"1", "maxmemory": b"0"}


class Store:
    """The keyspace and the commands on it. :meth:`execute` takes one command (a list of bytes,
    the name first) and returns its encoded RESP2 reply. ``clock`` returns seconds (the event
    loop's ``time`` in the server, a fake in tests); expiry deadlines are on that clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, seed: int | None = None) -> None:
        self.clock = clock
        self.data: dict[bytes, bytes] = {}
        self.expires: dict[bytes, float] = {}  # key -> deadline; only keys with a TTL
        self._ttl_keys: list[bytes] = []  # the keys of `expires`, for O(1) random sampling
        self._ttl_pos: dict[bytes, int] = {}  # key -> its index in _ttl_keys
        self._rng = random.Random(seed)
        self.commands = 0
        self.expired = 0
        self._table: dict[bytes, tuple[Callable[[list[bytes]], bytes], int]] = {}
        for name, arity in _COMMANDS.items():
            entry = (getattr(self, "cmd_" + name), arity)
            self._table[name.encode()] = self._table[name.upper().encode()] = entry

    # -- dispatch ---------------------------------------------------------------------------------

    def execute(self, cmd: list[bytes]) -> bytes:
        self.commands += 1
        name = cmd[0]
        entry = self._table.get(name) or self._table.get(name.lower())
        if entry is None:
            started = " ".join(f"'{_text(a)}'" for a in cmd[1:])
            return error(f"ERR unknown command '{_text(name)}', with args beginning with: {started}")
        fn, arity = entry
        n = len(cmd)
        if n != arity if arity > 0 else n < -arity:
            return error(f"ERR wrong number of arguments for '{name.lower().decode()}' command")
        try:
            return fn(cmd)
        except Exception as exc:  # a bug must cost one reply, never the server
            return error(f"ERR internal error: {type(exc).__name__}")

    # -- keyspace primitives ----------------------------------------------------------------------

    def _lookup(self, key: bytes) -> bytes | None:
        """The live value of ``key``; an expired key is deleted on the way (lazy expiry)."""
        if self.expires:
            deadline = self.expires.get(key)
            if deadline is not None and deadline <= self.clock():
                self._delete(key)
                self.expired += 1
                return None
        return self.data.get(key)

    def _delete(self, key: bytes) -> bool:
        if key in self.expires:
            self._clear_expire(key)
        return self.data.pop(key, None) is not None

    def _set_expire(self, key: bytes, deadline: float) -> None:
        if key not in self.expires:
            self._ttl_pos[key] = len(self._ttl_keys)
            self._ttl_keys.append(key)
        self.expires[key] = deadline

    def _clear_expire(self, key: bytes) -> None:
        del self.expires[key]
        i = self._ttl_pos.pop(key)
        last = self._ttl_keys.pop()
        if last != key:  # move the last key into the hole
            self._ttl_keys[i] = last
            self._ttl_pos[last] = i

    def sweep(self, samples: int = 20, max_rounds: int = 16) -> int:
        """Active expiry, as Redis does it: test ``samples`` random keys that have a TTL, delete the
        expired ones, and go again while more than a quarter of a sample had expired — at most
        ``max_rounds`` times, so one call does bounded work. Returns the keys deleted."""
        removed = 0
        now = self.clock()
        keys, rng = self._ttl_keys, self._rng
        for _ in range(max_rounds):
            if not keys:
                break
            hits = 0
            for _ in range(min(samples, len(keys))):
                key = keys[rng.randrange(len(keys))]
                if self.expires[key] <= now:
                    self._delete(key)
                    hits += 1
            removed += hits
            if hits * 4 <= samples:
                break
        self.expired += removed
        return removed

    # -- commands ---------------------------------------------------------------------------------

    def cmd_ping(self, cmd: list[bytes]) -> bytes:
        if len(cmd) > 2:
            return error("ERR wrong number of arguments for 'ping' command")
        return bulk(cmd[1]) if len(cmd) == 2 else PONG

    def cmd_echo(self, cmd: list[bytes]) -> bytes:
        return bulk(cmd[1])

    def cmd_get(self, cmd: list[bytes]) -> bytes:
        value = self._lookup(cmd[1])
        return NIL if value is None else b"$%d\r\n%b\r\n" % (len(value), value)

    def cmd_set(self, cmd: list[bytes]) -> bytes:
        key, value = cmd[1], cmd[2]
        if len(cmd) == 3:  # the common case
            if self.expires and key in self.expires:
                self._clear_expire(key)
            self.data[key] = value
            return OK
        nx = xx = keepttl = False
        ttl_ms: int | None = None
        i = 3
        while i < len(cmd):
            opt = cmd[i].upper()
            if opt == b"NX" and not xx:
                nx = True
            elif opt == b"XX" and not nx:
                xx = True
            elif opt == b"KEEPTTL" and ttl_ms is None:
                keepttl = True
            elif opt in (b"EX", b"PX") and ttl_ms is None and not keepttl and i + 1 < len(cmd):
                i += 1
                n = _int64(cmd[i])
                if n is None:
                    return NOT_INTEGER
                if n <= 0 or (opt == b"EX" and n > INT64_MAX // 1000):
                    return error("ERR invalid expire time in 'set' command")
                ttl_ms = n * 1000 if opt == b"EX" else n
            else:
                return SYNTAX
            i += 1
        exists = self._lookup(key) is not None
        if (nx and exists) or (xx and not exists):
            return NIL
        self.data[key] = value
        if ttl_ms is not None:
            self._set_expire(key, self.clock() + ttl_ms / 1000)
        elif not keepttl and key in self.expires:
            self._clear_expire(key)
        return OK

    def cmd_del(self, cmd: list[bytes]) -> bytes:
        n = 0
        for key in cmd[1:]:
            if self._lookup(key) is not None:
                self._delete(key)
                n += 1
        return integer(n)

    def cmd_exists(self, cmd: list[bytes]) -> bytes:
        return integer(sum(self._lookup(key) is not None for key in cmd[1:]))

    def _incr(self, key: bytes, by: int) -> bytes:
        old = self._lookup(key)
        n = 0 if old is None else _int64(old)
        if n is None:
            return NOT_INTEGER
        n += by
        if not INT64_MIN <= n <= INT64_MAX:
            return OVERFLOW
        self.data[key] = b"%d" % n  # keeps the key's TTL, as Redis does
        return b":%d\r\n" % n

    def cmd_incr(self, cmd: list[bytes]) -> bytes:
        return self._incr(cmd[1], 1)

    def cmd_decr(self, cmd: list[bytes]) -> bytes:
        return self._incr(cmd[1], -1)

    def cmd_incrby(self, cmd: list[bytes]) -> bytes:
        by = _int64(cmd[2])
        return NOT_INTEGER if by is None else self._incr(cmd[1], by)

    def cmd_decrby(self, cmd: list[bytes]) -> bytes:
        by = _int64(cmd[2])
        return NOT_INTEGER if by is None or by == INT64_MIN else self._incr(cmd[1], -by)

    def cmd_mget(self, cmd: list[bytes]) -> bytes:
        out = [b"*%d\r\n" % (len(cmd) - 1)]
        for key in cmd[1:]:
            value = self._lookup(key)
            out.append(NIL if value is None else b"$%d\r\n%b\r\n" % (len(value), value))
        return b"".join(out)

    def cmd_mset(self, cmd: list[bytes]) -> bytes:
        if len(cmd) % 2 == 0:
            return error("ERR wrong number of arguments for 'mset' command")
        data, expires = self.data, self.expires
        for i in range(1, len(cmd), 2):
            key = cmd[i]
            if expires and key in expires:
                self._clear_expire(key)
            data[key] = cmd[i + 1]
        return OK

    def _expire(self, cmd: list[bytes], unit_ms: int) -> bytes:
        n = _int64(cmd[2])
        if n is None:
            return NOT_INTEGER
        if abs(n) > INT64_MAX // unit_ms:
            return error(f"ERR invalid expire time in '{cmd[0].lower().decode()}' command")
        key = cmd[1]
        if self._lookup(key) is None:
            return ZERO
        if n <= 0:  # a deadline in the past deletes the key now
            self._delete(key)
        else:
            self._set_expire(key, self.clock() + n * unit_ms / 1000)
        return ONE

    def cmd_expire(self, cmd: list[bytes]) -> bytes:
        return self._expire(cmd, 1000)

    def cmd_pexpire(self, cmd: list[bytes]) -> bytes:
        return self._expire(cmd, 1)

    def _ttl_ms(self, key: bytes) -> int:
        if self._lookup(key) is None:
            return -2
        deadline = self.expires.get(key)
        return -1 if deadline is None else max(0, round((deadline - self.clock()) * 1000))

    def cmd_ttl(self, cmd: list[bytes]) -> bytes:
        ms = self._ttl_ms(cmd[1])
        return integer(ms if ms < 0 else (ms + 500) // 1000)  # rounded, as Redis does

    def cmd_pttl(self, cmd: list[bytes]) -> bytes:
        return integer(self._ttl_ms(cmd[1]))

    def cmd_persist(self, cmd: list[bytes]) -> bytes:
        key = cmd[1]
        if self._lookup(key) is None or key not in self.expires:
            return ZERO
        self._clear_expire(key)
        return ONE

    def cmd_dbsize(self, cmd: list[bytes]) -> bytes:
        return integer(len(self.data))

    def cmd_flushall(self, cmd: list[bytes]) -> bytes:
        if len(cmd) > 2 or (len(cmd) == 2 and cmd[1].upper() not in (b"SYNC", b"ASYNC")):
            return SYNTAX
        self.data.clear()
        self.expires.clear()
        self._ttl_keys.clear()
        self._ttl_pos.clear()
        return OK

    def cmd_select(self, cmd: list[bytes]) -> bytes:
        index = _int64(cmd[1])
        if index is None:
            return NOT_INTEGER
        return OK if index == 0 else error("ERR DB index is out of range")

    def cmd_command(self, cmd: list[bytes]) -> bytes:
        """Just enough for clients: COMMAND COUNT is the number of commands, the rest (COMMAND,
        COMMAND DOCS, COMMAND INFO) an empty array — clients then go without command hints."""
        if len(cmd) > 1 and cmd[1].upper() == b"COUNT":
            return integer(len(_COMMANDS))
        return EMPTY_ARRAY

    def cmd_config(self, cmd: list[bytes]) -> bytes:
        """CONFIG GET pattern...: name/value pairs of a few fixed parameters (redis-benchmark asks
        for ``save`` and ``appendonly``)."""
        sub = cmd[1].upper()
        if sub != b"GET":
            return error(f"ERR unknown subcommand '{_text(cmd[1])}'. Try CONFIG HELP.")
        if len(cmd) < 3:
            return error("ERR wrong number of arguments for 'config|get' command")
        out: list[bytes] = []
        for name, value in CONFIG.items():
            if any(fnmatch.fnmatchcase(name, p.decode("latin-1").lower()) for p in cmd[2:]):
                out += (bulk(name.encode()), bulk(value))
        return array(out)


# -- the server -------------------------------------------------------------------------------------


class Stats:
    __slots__ = ("connections", "protocol_errors", "reads")

    def __init__(self) -> None:
        self.connections = self.protocol_errors = self.reads = 0


def kv_counters(store: Store, stats: Stats) -> dict[str, int]:
    """The server's own counters: printed by ``--stats``, exported to ``aiostack stat`` (``app.kv``)."""
    return {
        "commands": store.commands,
        "connections": stats.connections,
        "reads": stats.reads,
        "protocol_errors": stats.protocol_errors,
        "keys": len(store.data),
        "expired": store.expired,
    }


def make_handler(
    store: Store, stats: Stats, sharded: ShardedStore | None = None
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]:
    """The connection handler: parse what arrives, run each command in order (on ``store``, or
    through ``sharded`` when the keyspace is split across reactors), one write per read."""
    execute = store.execute
    route = sharded.execute_many if sharded is not None else None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        parser = Parser()
        try:
            while data := await reader.read(65536):
                stats.reads += 1
                commands = parser.feed(data)
                closing = False
                for i, cmd in enumerate(commands):
                    name = cmd[0]
                    if len(name) == 4 and name.lower() == b"quit":
                        del commands[i:]
                        closing = True
                        break
                replies = [execute(cmd) for cmd in commands] if route is None else await route(commands)
                if closing:
                    replies.append(OK)
                if parser.error is not None and not closing:
                    stats.protocol_errors += 1
                    replies.append(error("ERR " + parser.error))
                    closing = True
                if replies:
                    writer.write(replies[0] if len(replies) == 1 else b"".join(replies))  # one write per read
                if closing:
                    break
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return handle


_ROUTED_BY_FIRST_KEY = frozenset(
    b"get set incr decr incrby decrby expire pexpire ttl pttl persist".split()
)
"""Commands about one key (the first argument): run on the core that owns it."""
_INTEGER = re.compile(rb":(-?\d+)\r\n")


class ShardedStore:
    """The keyspace split across reactors by :func:`owner`: each core holds its own
    :class:`Store`; a command about keys another core owns goes there through the cross-core
    channel (:meth:`aiostack.cores.ReactorContext.submit_to`) — never a packet, only the command
    and its encoded reply. Multi-key commands are split per owner and their replies merged (MSET
    is then atomic per core, not across cores, as in Redis Cluster, which refuses such MSETs)."""

    def __init__(self, store: Store, ctx: Any) -> None:
        self.store = store
        self.ctx = ctx
        self.core = ctx.core
        self.cores = ctx.cores
        self.remote = 0
        ctx.serve({"kv": store.execute, "kv_many": lambda cmds: [store.execute(c) for c in cmds],
                   "dbsize": lambda: len(store.data), "flush": lambda: store.execute([b"flushall"])})

    async def execute_many(self, cmds: list[list[bytes]]) -> list[bytes]:
        """The replies to a pipelined batch, in order. A run of single-key commands is split by
        owner and each other core gets its part in one call (run there in order), the local part
        runs here meanwhile: commands on different cores touch different keys, so no reply
        depends on the order between the parts. Anything else ends the run and runs alone."""
        if len(cmds) == 1:  # not pipelined: no batch to split
            return [await self.execute(cmds[0])]
        replies: list[bytes] = [b""] * len(cmds)
        run: dict[int, list[int]] = {}

        async def flush() -> None:
            remote = [(idx, self.ctx.submit_to(core, "kv_many", [cmds[i] for i in idx]))
                      for core, idx in run.items() if core != self.core]
            for i in run.get(self.core, ()):
                replies[i] = self.store.execute(cmds[i])
            if remote:
                self.remote += sum(len(idx) for idx, _ in remote)
                results = [await remote[0][1]] if len(remote) == 1 else await asyncio.gather(*(c for _, c in remote))
                for (idx, _), got in zip(remote, results, strict=True):
                    for i, reply in zip(idx, got, strict=True):
                        replies[i] = reply
            run.clear()

        for i, cmd in enumerate(cmds):
            if cmd[0].lower() in _ROUTED_BY_FIRST_KEY and len(cmd) >= 2:
                run.setdefault(owner(cmd[1], self.cores), []).append(i)
            else:
                await flush()
                replies[i] = await self.execute(cmd)
        await flush()
        return replies

    async def execute(self, cmd: list[bytes]) -> bytes:
        name = cmd[0].lower()
        store = self.store
        if name in _ROUTED_BY_FIRST_KEY and len(cmd) >= 2:
            return await self._on_owner(owner(cmd[1], self.cores), cmd)
        if name in (b"del", b"exists") and len(cmd) >= 2:
            total = 0
            for core, keys in self._by_owner(cmd[1:]).items():
                reply = await self._on_owner(core, [name, *keys])
                m = _INTEGER.fullmatch(reply)
                if m is None:
                    return reply
                total += int(m.group(1))
            return integer(total)
        if name == b"mget" and len(cmd) >= 2:
            replies = [await self._on_owner(owner(k, self.cores), [b"get", k]) for k in cmd[1:]]
            return b"*%d\r\n" % len(replies) + b"".join(replies)
        if name == b"mset" and len(cmd) >= 3 and len(cmd) % 2 == 1:
            pairs: dict[int, list[bytes]] = {}
            for i in range(1, len(cmd), 2):
                pairs.setdefault(owner(cmd[i], self.cores), []).extend(cmd[i : i + 2])
            for core, args in pairs.items():
                reply = await self._on_owner(core, [b"mset", *args])
                if reply != OK:
                    return reply
            return OK
        if name == b"dbsize" and len(cmd) == 1:
            return integer(await self.ctx.map_reduce("dbsize", lambda a, b: a + b, 0))
        if name == b"flushall" and len(cmd) <= 2:
            await self.ctx.invoke_on_all("flush")
            return OK
        return store.execute(cmd)

    def _by_owner(self, keys: list[bytes]) -> dict[int, list[bytes]]:
        out: dict[int, list[bytes]] = {}
        for k in keys:
            out.setdefault(owner(k, self.cores), []).append(k)
        return out

    async def _on_owner(self, core: int, cmd: list[bytes]) -> bytes:
        if core == self.core:
            return self.store.execute(cmd)
        self.remote += 1
        return await self.ctx.submit_to(core, "kv", cmd)


async def expiry_sweeper(store: Store, interval: float = SWEEP_INTERVAL) -> None:
    while True:
        await asyncio.sleep(interval)
        store.sweep()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", action="store_true", help="print the counters as JSON on exit")
    options = parse_options(argv, parser, default_port=6379)
    if options.cores > 1:
        return run_sharded(options)
    store, stats = Store(), Stats()
    network: list[Network] = []
    tasks: list[asyncio.Task[None]] = []

    def ready(net: Network) -> None:
        loop = asyncio.get_running_loop()
        store.clock = loop.time  # deadlines on the loop's clock from now on (the store is empty)
        tasks.append(loop.create_task(expiry_sweeper(store)))
        network.append(net)
        if net.stack is not None:
            net.stack.export("kv", lambda: kv_counters(store, stats))

    try:
        serve(make_handler(store, stats), options=options, ready=ready)
    finally:
        if options.extra["stats"] and network:
            counters = dict(network[0].counters())
            counters["kv"] = kv_counters(store, stats)
            print(json.dumps(counters, default=str), flush=True)
    return 0


def run_sharded(options: Options) -> int:
    """``--cores N``: one reactor per core (aiostack.cores), each owning the keys :func:`owner`
    gives it; any reactor takes any client and routes each command to the key's owner."""
    from aiostack.cores import ReactorContext, run_reactors

    async def app(ctx: ReactorContext) -> None:
        loop = asyncio.get_running_loop()
        store, stats = Store(loop.time), Stats()
        sharded = ShardedStore(store, ctx)
        sweeper = loop.create_task(expiry_sweeper(store))
        if ctx.network.stack is not None:
            ctx.network.stack.export("kv", lambda: kv_counters(store, stats))
        kernel = ctx.network.name == "kernel"
        bind = None if kernel else str(options.addr.ip)
        server = await ctx.network.start_server(make_handler(store, stats, sharded), bind, options.port,
                                                **({"reuse_port": True} if kernel else {}))
        print(f"kv reactor {ctx.core}/{ctx.cores} (pid {os.getpid()}) on {bind or '0.0.0.0'}:{options.port}",
              flush=True)
        try:
            async with server:
                await server.serve_forever()
        finally:
            sweeper.cancel()

    return run_reactors(options, app)


if __name__ == "__main__":
    sys.exit(main())
