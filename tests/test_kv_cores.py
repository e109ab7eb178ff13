"""examples/kv.py with --cores 2 over TAP: keys sharded by owner(), commands for keys another
reactor owns carried through the cross-core channels; redis-benchmark and redis-cli agree."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from aiostack.netns import NetNS
from conftest import PYTHON, example, interrupt, need_tool

STACK = "10.77.0.2"


def test_redis_benchmark_against_two_sharded_reactors(netns: NetNS, tmp_path: Path) -> None:
    cli = need_tool("redis-cli", "redis-tools")
    bench = need_tool("redis-benchmark", "redis-tools")
    env = dict(os.environ, AIOSTACK_CONTROL_DIR=str(tmp_path / "ctl"))
    server = netns.popen(
        [PYTHON, example("kv.py"), "--cores", "2", "--driver", "tap", "--iface", "aiostack0",
         "--addr", f"{STACK}/24", "--host-addr", "10.77.0.1/24"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )

    def redis(*args: str) -> str:
        return netns.run([cli, "-h", STACK, *args], timeout=30).stdout.strip()

    try:
        deadline = time.monotonic() + 30
        while netns.run([cli, "-h", STACK, "PING"], check=False, timeout=10).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "kv.py did not answer"
            time.sleep(0.1)
        res = netns.run([bench, "-h", STACK, "-t", "set,get,incr,mset", "-n", "100000", "-c", "50", "-q"],
                        timeout=300)
        summary = res.stdout.replace("\r", "\n")
        for name in ("SET", "GET", "INCR", "MSET"):
            assert re.search(rf"^{name}[^:\n]*: [\d.]+ requests per second", summary, re.M), summary[-2000:]
        assert "ERR" not in summary and "Error" not in summary, summary[-2000:]
        # every key written, read back: the benchmark's keys and the INCR total
        assert redis("GET", "counter:__rand_int__") == "100000"
        assert len(redis("GET", "key:__rand_int__")) == 3
        assert redis("DBSIZE") == "2"  # summed over both shards (map-reduce)
        # multi-key commands across shards
        keys = [f"k{i}" for i in range(20)]
        assert redis("MSET", *[x for k in keys for x in (k, k.upper())]) == "OK"
        assert redis("MGET", *keys).split("\n") == [k.upper() for k in keys]
        assert redis("EXISTS", *keys, "missing") == "20"
        for i in range(10):
            assert redis("INCR", f"n{i % 3}") in {str(v) for v in range(1, 5)}
        assert [redis("GET", f"n{i}") for i in range(3)] == ["4", "3", "3"]
        assert redis("DEL", *keys) == "20"
        assert redis("DBSIZE") == "5"
    finally:
        err = interrupt(server)
    assert server.returncode == 0, err.decode()


def test_two_sharded_reactors_on_the_kernel_stack(netns: NetNS) -> None:
    """The same sharding with --stack kernel: two SO_REUSEPORT servers, keys routed through the
    channels all the same."""
    cli = need_tool("redis-cli", "redis-tools")
    bench = need_tool("redis-benchmark", "redis-tools")
    server = netns.popen([PYTHON, example("kv.py"), "--cores", "2", "--stack", "kernel", "--port", "6390"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while netns.run([cli, "-p", "6390", "PING"], check=False, timeout=10).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "kv.py did not answer"
            time.sleep(0.1)
        res = netns.run([bench, "-p", "6390", "-t", "set,incr", "-n", "20000", "-c", "50", "-q"], timeout=120)
        assert "ERR" not in res.stdout and "Error" not in res.stdout
        assert netns.run([cli, "-p", "6390", "GET", "counter:__rand_int__"]).stdout.strip() == "20000"
        assert netns.run([cli, "-p", "6390", "DBSIZE"]).stdout.strip() == "2"
    finally:
        interrupt(server)
    assert server.returncode == 0
