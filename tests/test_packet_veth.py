"""The whole stack over the AF_PACKET driver (``--driver packet``), against the Linux kernel through
a veth pair inside a test-made namespace: examples/http_server.py owns one end (``pk0``, no
kernel address), the namespace's kernel the other (``pk1``, 10.77.0.1/24) with ping, curl, wrk and
examples/bulk.py as clients. Nothing leaves the namespace."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from aiostack.netns import NetNS
from conftest import PYTHON, bulk_pair, example, need_tool, stop, wait_line

HOST = "10.77.0.1"
STACK = "10.77.0.2"
DRV = "pk0"
PEER = "pk1"
PACKET_ARGS = ["--driver", "packet", "--iface", DRV, "--addr", f"{STACK}/24"]



def make_veth(ns: NetNS) -> None:
    ns.run(["ip", "link", "add", DRV, "type", "veth", "peer", "name", PEER])
    ns.run(["ip", "link", "set", PEER, "up"])
    ns.run(["ip", "addr", "add", f"{HOST}/24", "dev", PEER])


@pytest.fixture
def veth(netns: NetNS) -> NetNS:
    make_veth(netns)
    return netns


def start_http(ns: NetNS, *extra: str) -> subprocess.Popen[bytes]:
    proc = ns.popen(
        [PYTHON, example("http_server.py"), *PACKET_ARGS, "--port", "8080", "--stats", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    wait_line(proc, "serving on")
    return proc


def test_ping_curl_wrk_over_packet_driver(veth: NetNS) -> None:
    curl = need_tool("curl", "curl")
    wrk = need_tool("wrk", "wrk")
    ping = need_tool("ping", "iputils-ping")
    proc = start_http(veth)
    try:
        res = veth.run([ping, "-c", "3", "-i", "0.2", "-W", "2", STACK], check=False, timeout=30)
        assert res.returncode == 0 and "3 received" in res.stdout, res.stdout + res.stderr

        res = veth.run([curl, "-sS", "-i", "--max-time", "10", f"http://{STACK}:8080/"], timeout=30)
        assert res.stdout.startswith("HTTP/1.1 200 OK"), res.stdout + res.stderr
        assert res.stdout.endswith("Hello from aiostack!\n")
        res = veth.run([curl, "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                        f"http://{STACK}:8080/bytes/5000000"], timeout=60)
        assert res.stdout == "200 5000000", res.stdout + res.stderr

        res = veth.run([wrk, "-t", "1", "-c", "10", "-d", "3s", "--timeout", "5s", f"http://{STACK}:8080/"],
                       timeout=60)
        out = res.stdout
        assert "Socket errors" not in out, out  # wrk prints this line only when there were errors
        assert "Non-2xx" not in out, out
        requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        assert requests > 1000, out
    finally:
        if proc.poll() is None:
            counters = json.loads(stop(proc).strip().splitlines()[-1])
        else:
            pytest.fail(f"server exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
    assert counters["tcp"]["stats"]["passive_opens"] >= 12
    assert "internal_error" not in counters["drops"]
    (queue,) = counters["drivers"][f"packet({DRV})"].values()
    assert queue["drops"] == {}, queue
    assert queue["rx_packets"] > requests and queue["tx_packets"] > requests
    assert counters["pool"]["available"] == counters["pool"]["buffers"]


def test_two_queues_fanout_over_packet_driver(veth: NetNS) -> None:
    """``--queues 2``: two RX sockets in one fanout group, polled by the one reactor."""
    curl = need_tool("curl", "curl")
    proc = start_http(veth, "--queues", "2")
    try:
        for _ in range(8):  # several connections, so both queues are likely to see some
            res = veth.run([curl, "-sS", "--max-time", "10", f"http://{STACK}:8080/"], timeout=30)
            assert res.stdout == "Hello from aiostack!\n", res.stdout + res.stderr
    finally:
        counters = json.loads(stop(proc).strip().splitlines()[-1])
    queues = counters["drivers"][f"packet({DRV})"]
    assert set(queues) == {"queue0", "queue1"}
    assert sum(q["rx_packets"] for q in queues.values()) >= 8 * 4
    assert all(q["drops"] == {} for q in queues.values())


@pytest.mark.parametrize("aiostack_mode", ["receive", "send"])
def test_bulk_over_packet_driver(veth: NetNS, aiostack_mode: str) -> None:
    """200 MB each way between examples/bulk.py on aiostack and on the kernel, SHA-256 checked:
    the kernel's TSO segments arrive whole (gro), aiostack's 64 KB segments are cut by the
    kernel (tso)."""
    size = 200_000_000
    ours, kernel = bulk_pair(
        veth, [PYTHON, example("bulk.py"), aiostack_mode, "--bytes", str(size), "--port", "5001", *PACKET_ARGS],
        aiostack_mode, size, STACK, timeout=120,
    )
    assert ours["bytes"] == kernel["bytes"] == size
    assert ours["sha256"] == kernel["sha256"]
