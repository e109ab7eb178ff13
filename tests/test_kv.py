"""examples/kv.py, the Redis-protocol key-value server: its RESP parser and :class:`Store` without a
network (a fake clock for expiry), the connection handler on in-process streams, then the server
against real ``redis-cli`` and ``redis-benchmark`` — on aiostack over TAP and on the kernel's
sockets, both inside a test-made namespace."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import time
import zlib

import pytest

from aiostack.netns import NetNS
from conftest import PYTHON, example, need_tool, stop, wait_line

_spec = importlib.util.spec_from_file_location("kv", example("kv.py"))
assert _spec is not None and _spec.loader is not None
kv = importlib.util.module_from_spec(_spec)
sys.modules["kv"] = kv
_spec.loader.exec_module(kv)


def resp(*args: bytes | str) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(parts)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> tuple[kv.Store, Clock]:
    clock = Clock()
    return kv.Store(clock, seed=1), clock


def run(s: kv.Store, *args: str | bytes) -> bytes:
    return s.execute([a.encode() if isinstance(a, str) else a for a in args])


# -- parser -----------------------------------------------------------------------------------------


def test_parser_resp_arrays_and_inline() -> None:
    p = kv.Parser()
    data = resp("SET", "k", b"a\r\nb") + resp("GET", "k") + b"PING\r\n  ECHO   hi \n\r\n" + resp("X", "")
    assert p.feed(data) == [[b"SET", b"k", b"a\r\nb"], [b"GET", b"k"], [b"PING"], [b"ECHO", b"hi"], [b"X", b""]]
    assert p.error is None
    # quoted inline arguments (telnet users), empty arrays ignored
    assert p.feed(b'SET "a key" \'x y\'\r\n*0\r\n*-1\r\n') == [[b"SET", b"a key", b"x y"]]


STREAM = (
    resp("SET", "key", b"\x00\r\n\xff" * 40)
    + b"PING\r\n"
    + resp("MSET", "a", "1", "b", "")
    + b"get a\n"
    + resp("INCR", "counter")
    + resp("ECHO", b"$3\r\n*1\r\n")
)
EXPECTED = [
    [b"SET", b"key", b"\x00\r\n\xff" * 40],
    [b"PING"],
    [b"MSET", b"a", b"1", b"b", b""],
    [b"get", b"a"],
    [b"INCR", b"counter"],
    [b"ECHO", b"$3\r\n*1\r\n"],
]


def test_parser_pipelined_input_split_at_every_boundary() -> None:
    for i in range(len(STREAM) + 1):
        for j in range(i, len(STREAM) + 1, 7):
            p = kv.Parser()
            got = p.feed(STREAM[:i]) + p.feed(STREAM[i:j]) + p.feed(STREAM[j:])
            assert got == EXPECTED, (i, j)
            assert p.error is None
    p = kv.Parser()  # and one byte at a time
    assert [c for k in range(len(STREAM)) for c in p.feed(STREAM[k : k + 1])] == EXPECTED


def test_parser_large_bulk_in_many_reads() -> None:
    value = bytes(range(256)) * 8192  # 2 MiB, larger than a line: collected as chunks
    data = resp("SET", "big", value) + resp("GET", "big")
    p = kv.Parser()
    got = []
    for k in range(0, len(data), 4096):
        got += p.feed(data[k : k + 4096])
    assert got == [[b"SET", b"big", value], [b"GET", b"big"]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "invalid bulk length"),  # 512 MB + 1
        (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
        (b"*zz\r\n", "invalid multibulk length"),
        (b"*1\r\n:3\r\n", "expected '$', got ':'"),
        (b"*1\r\n$3\r\nabcde\r\n", "expected CRLF after bulk string"),
        (b"x" * (64 * 1024 + 1), "too big inline request"),
        (b"*" + b"1" * (64 * 1024 + 1), "too big mbulk count string"),
        (b"*1\r\n$" + b"1" * (64 * 1024 + 1), "too big bulk count string"),
        (b'SET "unbalanced\r\n', "unbalanced quotes in request"),
    ],
)
def test_parser_protocol_errors(data: bytes, message: str) -> None:
    p = kv.Parser()
    assert p.feed(resp("PING") + data) == [[b"PING"]]  # what came before the error still counts
    assert p.error == f"Protocol error: {message}"
    assert p.feed(resp("PING")) == []  # nothing more after an error


def test_parser_long_values_are_not_line_errors() -> None:
    p = kv.Parser()
    value = b"v" * 200_000
    data = resp("SET", "k", value)
    assert p.feed(data[:100_000]) == []
    assert p.feed(data[100_000:]) == [[b"SET", b"k", value]]
    assert p.error is None


# -- store ------------------------------------------------------------------------------------------


def test_ping_echo_get_set(store) -> None:  # type: ignore[no-untyped-def]
    s, _ = store
    assert run(s, "PING") == b"+PONG\r\n"
    assert run(s, "ping", "hi") == b"$2\r\nhi\r\n"
    assert run(s, "PING", "a", "b") == b"-ERR wrong number of arguments for 'ping' command\r\n"
    assert run(s, "ECHO", "x y") == b"$3\r\nx y\r\n"
    assert run(s, "GET", "k") == b"$-1\r\n"
    assert run(s, "SET", "k", b"v\r\n") == b"+OK\r\n"
    assert run(s, "get", "k") == b"$3\r\nv\r\n\r\n"
    assert run(s, "Set", "k", "") == b"+OK\r\n"
    assert run(s, "GET", "k") == b"$0\r\n\r\n"


def test_errors_unknown_and_arity(store) -> None:  # type: ignore[no-untyped-def]
    s, _ = store
    assert run(s, "NOPE", "a") == b"-ERR unknown command 'NOPE', with args beginning with: 'a'\r\n"
    assert run(s, b"x\r\ny").startswith(b"-ERR unknown command 'x  y'")  # no CRLF inside an error
    assert run(s, "GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert run(s, "GET", "a", "b") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert run(s, "MSET", "a") == b"-ERR wrong number of arguments for 'mset' command\r\n"
    assert run(s, "MSET", "a", "1", "b") == b"-ERR wrong number of arguments for 'mset' command\r\n"
    assert run(s, "DEL") == b"-ERR wrong number of arguments for 'del' command\r\n"
    assert run(s, "SET", "k", "v", "BOGUS") == b"-ERR syntax error\r\n"
    assert run(s, "SET", "k", "v", "NX", "XX") == b"-ERR syntax error\r\n"
    assert run(s, "SET", "k", "v", "EX") == b"-ERR syntax error\r\n"
    assert run(s, "SET", "k", "v", "EX", "1", "PX", "5") == b"-ERR syntax error\r\n"


def test_incr(store) -> None:  # type: ignore[no-untyped-def]
    s, _ = store
    assert run(s, "INCR", "n") == b":1\r\n"
    assert run(s, "INCR", "n") == b":2\r\n"
    assert run(s, "INCRBY", "n", "-12") == b":-10\r\n"
    assert run(s, "DECR", "n") == b":-11\r\n"
    assert run(s, "DECRBY", "n", "9") == b":-20\r\n"
    assert run(s, "GET", "n") == b"$3\r\n-20\r\n"
    err = b"-ERR value is not an integer or out of range\r\n"
    for bad in ("abc", "1.5", " 1", "01", "+1", "-0", "", "1_0", "9223372036854775808"):
        run(s, "SET", "b", bad)
        assert run(s, "INCR", "b") == err, bad
    assert run(s, "INCRBY", "n", "x") == err
    run(s, "SET", "max", str(2**63 - 1))
    assert run(s, "INCR", "max") == b"-ERR increment or decrement would overflow\r\n"
    assert run(s, "GET", "max") == b"$19\r\n9223372036854775807\r\n"
    run(s, "SET", "min", str(-(2**63)))
    assert run(s, "DECR", "min") == b"-ERR increment or decrement would overflow\r\n"


def test_del_exists_mset_mget_dbsize_flushall(store) -> None:  # type: ignore[no-untyped-def]
    s, _ = store
    assert run(s, "MSET", "a", "1", "b", "2", "c", "3") == b"+OK\r\n"
    assert run(s, "MGET", "a", "x", "c") == b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n"
    assert run(s, "EXISTS", "a", "a", "x", "b") == b":3\r\n"  # duplicates count, as in Redis
    assert run(s, "DBSIZE") == b":3\r\n"
    assert run(s, "DEL", "a", "a", "x", "b") == b":2\r\n"
    assert run(s, "EXISTS", "a", "b") == b":0\r\n"
    assert run(s, "DBSIZE") == b":1\r\n"
    assert run(s, "FLUSHALL") == b"+OK\r\n"
    assert run(s, "DBSIZE") == b":0\r\n"
    assert run(s, "MGET", "c") == b"*1\r\n$-1\r\n"


def test_set_nx_xx_keepttl(store) -> None:  # type: ignore[no-untyped-def]
    s, _ = store
    assert run(s, "SET", "k", "1", "XX") == b"$-1\r\n"
    assert run(s, "SET", "k", "1", "NX") == b"+OK\r\n"
    assert run(s, "SET", "k", "2", "NX") == b"$-1\r\n"
    assert run(s, "SET", "k", "3", "XX", "EX", "10") == b"+OK\r\n"
    assert run(s, "GET", "k") == b"$1\r\n3\r\n"
    assert run(s, "SET", "k", "4", "KEEPTTL") == b"+OK\r\n"
    assert run(s, "TTL", "k") == b":10\r\n"
    assert run(s, "SET", "k", "5") == b"+OK\r\n"  # a plain SET clears the TTL
    assert run(s, "TTL", "k") == b":-1\r\n"


def test_expiry_ex_px_expire_ttl(store) -> None:  # type: ignore[no-untyped-def]
    s, clock = store
    assert run(s, "TTL", "k") == b":-2\r\n"
    run(s, "SET", "k", "v")
    assert run(s, "TTL", "k") == b":-1\r\n"
    assert run(s, "PTTL", "k") == b":-1\r\n"
    assert run(s, "SET", "k", "v", "EX", "10") == b"+OK\r\n"
    assert run(s, "TTL", "k") == b":10\r\n"
    clock.now += 4.4
    assert run(s, "TTL", "k") == b":6\r\n"  # 5.6 s rounds to 6, as Redis rounds
    assert run(s, "PTTL", "k") == b":5600\r\n"
    clock.now += 5.6
    assert run(s, "GET", "k") == b"$-1\r\n"  # lazily expired on access
    assert run(s, "EXISTS", "k") == b":0\r\n"
    assert run(s, "TTL", "k") == b":-2\r\n"
    assert s.data == {} and s.expires == {}

    run(s, "SET", "p", "v", "px", "1500")
    clock.now += 1.499
    assert run(s, "GET", "p") == b"$1\r\nv\r\n"
    clock.now += 0.001
    assert run(s, "GET", "p") == b"$-1\r\n"

    assert run(s, "SET", "k", "v", "EX", "0") == b"-ERR invalid expire time in 'set' command\r\n"
    assert run(s, "SET", "k", "v", "PX", "-5") == b"-ERR invalid expire time in 'set' command\r\n"
    assert run(s, "SET", "k", "v", "EX", "soon") == b"-ERR value is not an integer or out of range\r\n"

    assert run(s, "EXPIRE", "none", "10") == b":0\r\n"
    run(s, "SET", "e", "v")
    assert run(s, "EXPIRE", "e", "x") == b"-ERR value is not an integer or out of range\r\n"
    assert run(s, "EXPIRE", "e", "3") == b":1\r\n"
    assert run(s, "TTL", "e") == b":3\r\n"
    assert run(s, "PERSIST", "e") == b":1\r\n"
    assert run(s, "TTL", "e") == b":-1\r\n"
    assert run(s, "PEXPIRE", "e", "2500") == b":1\r\n"
    assert run(s, "PTTL", "e") == b":2500\r\n"
    run(s, "INCR", "e2")
    run(s, "EXPIRE", "e2", "5")
    run(s, "INCR", "e2")  # INCR keeps the TTL
    assert run(s, "TTL", "e2") == b":5\r\n"
    run(s, "MSET", "e2", "1")  # MSET, like SET, clears it
    assert run(s, "TTL", "e2") == b":-1\r\n"
    assert run(s, "EXPIRE", "e", "-1") == b":1\r\n"  # a past deadline deletes at once
    assert run(s, "EXISTS", "e") == b":0\r\n"
    assert run(s, "EXPIRE", "e2", str(2**62)) == b"-ERR invalid expire time in 'expire' command\r\n"


def test_sweep_is_bounded_and_removes_expired_keys(store) -> None:  # type: ignore[no-untyped-def]
    s, clock = store
    for i in range(1000):
        run(s, "SET", f"short{i}", "v", "PX", "100")
        run(s, "SET", f"long{i}", "v", "EX", "100")
        run(s, "SET", f"forever{i}", "v")
    assert s.sweep() == 0  # nothing is due yet
    clock.now += 1
    removed = s.sweep()
    assert 0 < removed <= 16 * 20  # bounded work per call
    total = removed
    for _ in range(200):
        total += s.sweep()
    # ... and repeated sweeps bring the expired share down to the point where a sample stops
    assert total > 900
    everything = {b"%s%d" % (kind, i) for kind in (b"short", b"long", b"forever") for i in range(1000)}
    assert len(everything - set(s.data)) == total
    assert all(k.startswith(b"short") for k in everything - set(s.data))  # only expired keys went
    assert len(s.expires) == len(s._ttl_keys) == len(s._ttl_pos) == 1000 + (1000 - total)
    assert all(s._ttl_keys[i] == k for k, i in s._ttl_pos.items())
    assert s.expired == total
    clock.now += 1000
    while s.sweep():
        pass
    assert len(s.data) <= 1000 + 20  # the long ones went too (the rest would go lazily)
    assert all(run(s, "GET", f"long{i}") == b"$-1\r\n" for i in range(1000))
    assert len(s.data) == 1000 and not s.expires and not s._ttl_keys


def test_command_config_select_and_internal_errors(store) -> None:  # type: ignore[no-untyped-def]
    s, _ = store
    assert run(s, "COMMAND") == b"*0\r\n"
    assert run(s, "COMMAND", "DOCS") == b"*0\r\n"
    assert run(s, "COMMAND", "COUNT").startswith(b":")
    assert run(s, "CONFIG", "GET", "save") == b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    assert run(s, "config", "get", "appendonly") == b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    assert run(s, "CONFIG", "GET", "nothing") == b"*0\r\n"
    assert run(s, "CONFIG", "GET", "SAV*").startswith(b"*2\r\n")
    assert run(s, "CONFIG", "SET", "save", "").startswith(b"-ERR unknown subcommand")
    assert run(s, "SELECT", "0") == b"+OK\r\n"
    assert run(s, "SELECT", "1") == b"-ERR DB index is out of range\r\n"

    def boom(cmd: list[bytes]) -> bytes:
        raise KeyError("bug")

    s._table[b"GET"] = (boom, 2)
    assert run(s, "GET", "k") == b"-ERR internal error: KeyError\r\n"


def test_owner_is_stable_and_in_range() -> None:
    assert kv.owner(b"foo", 8) == zlib.crc32(b"foo") % 8 == 1  # the same in every process and run
    assert kv.owner(b"{user1}.name", 4) == kv.owner(b"{user1}.mail", 4) == kv.owner(b"user1", 4)
    assert kv.owner(b"{}x", 4) == zlib.crc32(b"{}x") % 4  # an empty tag hashes the whole key
    for cores in (1, 2, 3, 8):
        counts = [0] * cores
        for i in range(4000):
            o = kv.owner(b"key:%d" % i, cores)
            assert 0 <= o < cores
            counts[o] += 1
        assert min(counts) > 4000 / cores * 0.8  # roughly even


# -- the connection handler on in-process streams ---------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


async def _converse(*reads: bytes) -> _Writer:
    reader = asyncio.StreamReader()
    for data in reads:
        reader.feed_data(data)
    reader.feed_eof()
    writer = _Writer()
    await kv.make_handler(kv.Store(), kv.Stats())(reader, writer)  # type: ignore[arg-type]
    return writer


async def test_handler_one_write_per_read_and_protocol_error_closes() -> None:
    batch = b"".join(resp("INCR", "n") for _ in range(100)) + b"PING\r\n"
    w = await _converse(batch)
    assert w.writes == [b"".join(b":%d\r\n" % i for i in range(1, 101)) + b"+PONG\r\n"]  # one write
    assert w.closed

    w = await _converse(resp("SET", "a", "1") + b"*1\r\n$-5\r\n", resp("GET", "a"))
    assert w.writes == [b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"]  # then closed, GET unread

    w = await _converse(b"PING\r\nQUIT\r\nPING\r\n")
    assert w.writes == [b"+PONG\r\n+OK\r\n"]


class _Cores:
    """Two cores' contexts in one process: submit_to runs the other core's handler directly."""

    def __init__(self) -> None:
        self.handlers: dict[int, dict] = {0: {}, 1: {}}
        self.calls: list[tuple[int, str, int]] = []

    def ctx(self, core: int):  # type: ignore[no-untyped-def]
        cores = self

        class Ctx:
            def __init__(self) -> None:
                self.core, self.cores = core, 2

            def serve(self, handlers: dict) -> None:
                cores.handlers[core].update(handlers)

            async def submit_to(self, other: int, name: str, *args):  # type: ignore[no-untyped-def]
                cores.calls.append((other, name, len(args[0]) if name == "kv_many" else 1))
                await asyncio.sleep(0)  # a real call yields to the loop
                return cores.handlers[other][name](*args)

            async def map_reduce(self, name: str, reduce, initial):  # type: ignore[no-untyped-def]
                for c in (0, 1):
                    initial = reduce(initial, cores.handlers[c][name]())
                return initial

        return Ctx()


async def test_a_pipelined_batch_sends_one_call_per_core_and_keeps_every_reply_in_order() -> None:
    cores = _Cores()
    here = kv.ShardedStore(kv.Store(), cores.ctx(0))
    kv.ShardedStore(kv.Store(), cores.ctx(1))
    mine = [b"k%d" % i for i in range(40) if kv.owner(b"k%d" % i, 2) == 0][:3]
    theirs = [b"k%d" % i for i in range(40) if kv.owner(b"k%d" % i, 2) == 1][:3]
    batch = [[b"SET", theirs[0], b"1"], [b"INCR", theirs[0]], [b"SET", mine[0], b"a"], [b"GET", theirs[0]],
             [b"INCR", mine[1]], [b"GET", mine[0]], [b"DBSIZE"], [b"SET", theirs[1], b"x"], [b"GET", theirs[1]]]
    replies = await here.execute_many(batch)
    reference = kv.Store()  # the same commands, one store, one at a time
    assert replies == [reference.execute(c) for c in batch]
    # two runs around DBSIZE (which runs alone): one call to core 1 for each run's part there
    assert cores.calls == [(1, "kv_many", 3), (1, "kv_many", 2)]


# -- against redis-cli and redis-benchmark, on aiostack (TAP) and on the kernel ---------------------

STACK = "10.77.0.2"
TAP_ARGS = ["--driver", "tap", "--iface", "aiostack0", "--addr", f"{STACK}/24", "--host-addr", "10.77.0.1/24"]

RAW_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 6379), timeout=10)
# RESP and inline commands pipelined in one send
s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nraw\r\n$5\r\na\r\nb!\r\nGET raw\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n")
want = b"+OK\r\n$5\r\na\r\nb!\r\n+PONG\r\n$0\r\n\r\n"
got = b""
while len(got) < len(want):
    got += s.recv(4096)
assert got == want, got
# a protocol error: an error reply, then the server closes
s.sendall(b"*1\r\n$abc\r\n")
got = b""
while chunk := s.recv(4096):
    got += chunk
assert got == b"-ERR Protocol error: invalid bulk length\r\n", got
print("raw ok")
"""


def _rps(out: str) -> dict[str, float]:
    """redis-benchmark -q's final line per test (progress lines end in \r)."""
    rates = {}
    for line in re.split(r"[\r\n]", out):
        m = re.match(r"^\s*([A-Z]+)(?: \(\d+ keys\))?: ([\d.]+) requests per second", line)
        if m:
            rates[m.group(1)] = float(m.group(2))
    return rates


@pytest.mark.parametrize("stack", ["native", "kernel"])
def test_redis_cli_and_benchmark(netns: NetNS, stack: str) -> None:
    cli = need_tool("redis-cli", "redis-tools")
    bench = need_tool("redis-benchmark", "redis-tools")
    if stack == "native":
        host, args = STACK, TAP_ARGS
    else:  # the same server on the namespace's kernel sockets
        host, args = "127.0.0.1", ["--stack", "kernel"]
    server = netns.popen([PYTHON, example("kv.py"), *args, "--stats"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_line(server, "serving on")

        def redis(*argv: str) -> str:
            res = netns.run([cli, "-h", host, "-p", "6379", *argv], timeout=30)
            return res.stdout.strip()

        assert redis("PING") == "PONG"
        assert redis("PING", "hello") == "hello"
        assert redis("SET", "greeting", "hello world") == "OK"
        assert redis("GET", "greeting") == "hello world"
        assert redis("GET", "missing") == ""
        assert redis("INCR", "n") == "1"
        assert redis("INCRBY", "n", "41") == "42"
        assert redis("INCR", "greeting") == "ERR value is not an integer or out of range"
        assert redis("MSET", "a", "1", "b", "2") == "OK"
        assert redis("MGET", "a", "nope", "b").split("\n") == ["1", "", "2"]
        assert redis("TTL", "a") == "-1"
        assert redis("TTL", "nope") == "-2"
        assert redis("SET", "t", "v", "EX", "100") == "OK"
        assert redis("TTL", "t") == "100"
        assert redis("EXPIRE", "a", "50") == "1"
        assert redis("TTL", "a") == "50"
        assert redis("DEL", "a", "b", "nope") == "2"
        assert redis("EXISTS", "a", "b", "n") == "1"
        assert redis("FROB", "x").startswith("ERR unknown command 'FROB'")
        assert redis("GET") == "ERR wrong number of arguments for 'get' command"
        # expiry by the periodic sweep, without any access to the key
        size = int(redis("DBSIZE"))
        assert redis("SET", "brief", "v", "PX", "100") == "OK"
        assert int(redis("DBSIZE")) == size + 1
        deadline = time.monotonic() + 5
        while int(redis("DBSIZE")) != size and time.monotonic() < deadline:
            time.sleep(0.2)
        assert int(redis("DBSIZE")) == size

        res = netns.run([PYTHON, "-c", RAW_CLIENT, host], timeout=30)
        assert res.stdout.strip() == "raw ok", res.stderr

        res = netns.run([bench, "-h", host, "-p", "6379", "-t", "set,get,incr,mset", "-n", "20000", "-c", "50",
                         "-q"], timeout=180)
        out = res.stdout + res.stderr
        assert "ERR" not in out and "Error" not in out and "WARNING" not in out, out
        rates = _rps(out)
        assert set(rates) == {"SET", "GET", "INCR", "MSET"}, out
        # pipelined: 16 commands per write
        res = netns.run([bench, "-h", host, "-p", "6379", "-t", "set,get", "-n", "20000", "-c", "10", "-P", "16",
                         "-q"], timeout=180)
        out = res.stdout + res.stderr
        assert "ERR" not in out and "Error" not in out, out
        piped = _rps(out)
        assert set(piped) == {"SET", "GET"}, out
        print(f"\n{stack}: {rates} pipelined -P 16: {piped}")

        # what the benchmark left: 20000 INCRs of one key, its SET/MSET value (-d 3: 3 bytes)
        assert redis("GET", "counter:__rand_int__") == "20000"
        assert len(redis("GET", "key:__rand_int__")) == 3
        for _ in range(10):
            redis("INCR", "total")
        netns.run([cli, "-h", host, "-p", "6379", "-r", "90", "INCR", "total"], timeout=30)
        assert redis("GET", "total") == "100"
        assert redis("GET", "greeting") == "hello world"

        counters = json.loads(stop(server).strip().splitlines()[-1])
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    stats = counters["kv"]
    assert stats["protocol_errors"] == 1
    assert stats["commands"] > 2 * 20000 + 4 * 20000
    assert stats["connections"] >= 50 + 10
    if stack == "native":
        assert counters["reactor"]["internal_errors"] == 0
        assert "internal_error" not in counters["drops"]
        assert counters["tcp"]["stats"]["passive_opens"] >= 50 * 4 + 10 * 2
