"""The whole stack over the AF_XDP driver (``--driver xdp``), against the Linux kernel through a
veth pair inside a test-made namespace: the stack owns one end (``xd0``, no kernel address), the
namespace's kernel the other (``xd1``, 10.77.0.1/24 — and 10.77.0.200/24, a source the filter
tests drop) with ping, curl, wrk, ab, UDP and examples/bulk.py as clients. The XDP program is
attached only to ``xd0``, which the test made. Nothing leaves the namespace.

The kernel's end has checksum offload turned off: a veth hands its peer's frames over with the
partial checksum of CHECKSUM_PARTIAL skbs, which copy-mode AF_XDP delivers as they are (see
drivers/xdp.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from aiostack.drivers.packet import set_offload
from aiostack.drivers.xdp import PROGRAM_NAME
from aiostack.netns import NetNS
from conftest import PYTHON, ROOT, bulk_pair, example, interrupt, need_tool, stop, wait_line

HOST = "10.77.0.1"
BLOCKED = "10.77.0.200"
STACK = "10.77.0.2"
DRV = "xd0"
PEER = "xd1"
XDP_ARGS = ["--driver", "xdp", "--iface", DRV, "--addr", f"{STACK}/24"]


def make_veth(ns: NetNS, queues: int = 1, drv: str = DRV, peer: str = PEER) -> None:
    q = ["numtxqueues", str(queues), "numrxqueues", str(queues)]
    ns.run(["ip", "link", "add", drv, *q, "type", "veth", "peer", "name", peer, *q])
    ns.run(["ip", "link", "set", peer, "up"])
    ns.run(["ip", "addr", "add", f"{HOST}/24", "dev", peer])
    set_offload(peer, "tx-csum", False, netns=ns.name)


@pytest.fixture
def veth(netns: NetNS) -> NetNS:
    make_veth(netns)
    return netns


def xdp_state(ns: NetNS, iface: str = DRV) -> str:
    """``ip link show``'s view: 'xdp', 'xdpgeneric' ... in the flags line when a program is attached."""
    return ns.run(["ip", "-d", "link", "show", iface]).stdout


@pytest.mark.parametrize("mode", ["auto", "generic"])
def test_ping_udp_over_xdp(veth: NetNS, mode: str) -> None:
    """The kernel's ping (also 5000-byte, fragmented both ways) and 2000 UDP datagrams of 1..8000
    bytes, every one checked, through examples/udp_echo.py — with native XDP (what ``auto``
    picks on veth) and with generic XDP forced."""
    need_tool("ping", "iputils-ping")
    proc = veth.popen([PYTHON, example("udp_echo.py"), *XDP_ARGS, "--xdp-mode", mode, "--port", "7", "--stats"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_line(proc, "listening")
    try:
        res = veth.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", STACK], check=False, timeout=30)
        assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
        res = veth.run(["ping", "-c", "2", "-s", "5000", "-W", "2", STACK], check=False, timeout=30)
        assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
        res = veth.run([PYTHON, str(ROOT / "examples" / "udp_client.py"), STACK, "7", "--count", "2000",
                        "--min-size", "1", "--max-size", "8000"], check=False, timeout=120)
        assert res.stdout.strip(), res.stderr
        summary = json.loads(res.stdout)
        assert res.returncode == 0, (summary, res.stderr)
        assert summary["echoed_intact"] == 2000 and summary["mismatched"] == 0
    finally:
        counters = json.loads(stop(proc).strip().splitlines()[-1])
    stats = counters["stats"]
    assert stats["ipv4_reassembled"] > 0 and stats["ipv4_tx_fragmented"] > 0
    assert "internal_error" not in counters["drops"]
    drv = counters["drivers"][f"xdp({DRV})"]
    assert drv["mode"]["bind"] == "copy"  # veth has no zero-copy
    assert drv["mode"]["xdp"] == ("native" if mode == "auto" else "generic")
    assert drv["queue0"]["drops"] == {}, drv


def test_curl_wrk_ab_over_xdp(veth: NetNS, tmp_path: Path) -> None:
    curl = need_tool("curl", "curl")
    wrk = need_tool("wrk", "wrk")
    ab = need_tool("ab", "apache2-utils")
    env = dict(os.environ, AIOSTACK_CONTROL_DIR=str(tmp_path / "ctl"))
    proc = veth.popen([PYTHON, example("http_server.py"), *XDP_ARGS, "--port", "8080", "--stats"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    wait_line(proc, "serving on")
    try:
        assert "prog/xdp" in xdp_state(veth)  # ip -d link: the program, attached while we run
        res = veth.run([curl, "-sS", "-i", "--max-time", "10", f"http://{STACK}:8080/"], timeout=30)
        assert res.stdout.startswith("HTTP/1.1 200 OK") and res.stdout.endswith("Hello from aiostack!\n"), res
        res = veth.run([curl, "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                        f"http://{STACK}:8080/bytes/5000000"], timeout=60)
        assert res.stdout == "200 5000000", res.stdout + res.stderr
        res = veth.run([wrk, "-t", "1", "-c", "100", "-d", "3s", "--timeout", "5s", f"http://{STACK}:8080/"],
                       timeout=60)
        assert "Socket errors" not in res.stdout and "Non-2xx" not in res.stdout, res.stdout
        requests = int(re.search(r"(\d+) requests in", res.stdout).group(1))  # type: ignore[union-attr]
        assert requests > 1000, res.stdout
        res = veth.run([ab, "-q", "-n", "10000", "-c", "20", "-s", "10", f"http://{STACK}:8080/"], timeout=300)
        assert "Complete requests:      10000" in res.stdout, res.stdout
        assert "Failed requests:        0" in res.stdout, res.stdout
        stat = subprocess.run([PYTHON, "-m", "aiostack", "stat", "--json", "--conns", "0"], capture_output=True,
                              text=True, env=env, timeout=30)
        assert stat.returncode == 0, stat.stderr
        (instance,) = json.loads(stat.stdout).get("instances", [json.loads(stat.stdout)])
        assert instance["counters"]["drivers"][f"xdp({DRV})"]["mode"]["bind"] == "copy"
    finally:
        counters = json.loads(stop(proc).strip().splitlines()[-1])
    assert "prog/xdp" not in xdp_state(veth)  # detached when the stack stopped
    assert counters["tcp"]["stats"]["passive_opens"] >= 10000 + 100
    assert "internal_error" not in counters["drops"] and "tcp_bad_checksum" not in counters["tcp"]["drops"]
    queue = counters["drivers"][f"xdp({DRV})"]["queue0"]
    assert queue["drops"] == {}, queue
    assert counters["pool"]["available"] == counters["pool"]["buffers"]


@pytest.mark.parametrize("aiostack_mode", ["receive", "send"])
def test_bulk_one_gigabyte_over_xdp(veth: NetNS, aiostack_mode: str) -> None:
    """1 GB each way between examples/bulk.py on aiostack (AF_XDP, checksums in software) and on
    the kernel, SHA-256 checked (about 20 s each way here)."""
    size = 1_000_000_000
    ours, kernel = bulk_pair(
        veth, [PYTHON, example("bulk.py"), aiostack_mode, "--bytes", str(size), "--port", "5001", *XDP_ARGS],
        aiostack_mode, size, STACK, timeout=240,
    )
    assert ours["bytes"] == kernel["bytes"] == size
    assert ours["sha256"] == kernel["sha256"]


@pytest.mark.parametrize("aiostack_mode", ["receive", "send"])
def test_bulk_through_loss_over_xdp(veth: NetNS, aiostack_mode: str) -> None:
    """200 MB each way with the AF_XDP driver behind the fault wrapper (1% loss, 1% reordering,
    0.5% duplication, 0.1% corruption each way): the content arrives intact."""
    nbytes = 200_000_000
    ours, kernel = bulk_pair(
        veth, [PYTHON, str(Path(__file__).parent / "tap_fault_bulk.py"), aiostack_mode, "--bytes", str(nbytes),
               "--driver", "xdp", "--iface", DRV],
        aiostack_mode, nbytes, STACK, timeout=180,
    )
    assert ours["bytes"] == kernel["bytes"] == nbytes
    assert ours["sha256"] == kernel["sha256"]
    fault = ours["counters"]["fault"]
    assert fault["rx_loss"] > 0 and fault["tx_loss"] > 0
    assert "internal_error" not in ours["counters"]["tcp"]["drops"]


def test_sigkill_leaves_no_program_and_a_leftover_is_removed(veth: NetNS) -> None:
    """A stack killed with SIGKILL takes its program with it (the BPF link closes with the process);
    a program of ours attached the old way (netlink, as a tool or an older run could leave it) is
    removed by the next start, which says so."""
    proc = veth.popen([PYTHON, example("http_server.py"), *XDP_ARGS, "--port", "8080"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_line(proc, "serving on")
    assert "prog/xdp" in xdp_state(veth)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while "prog/xdp" in xdp_state(veth) and time.monotonic() < deadline:
        time.sleep(0.1)  # the kernel closes a dead process's fds as it exits
    assert "prog/xdp" not in xdp_state(veth)

    leave = f"""
from aiostack.drivers import bpf, xdp
from aiostack.drivers.xdp_filter import xdp_program
import socket
m = bpf.Map(bpf.BPF_MAP_TYPE_XSKMAP, 4, 4, 1, "x")
fd = bpf.load_program(xdp_program(m.fd, None, [], 1), xdp.PROGRAM_NAME)
bpf.attach_xdp_netlink(socket.if_nametoindex("{DRV}"), fd, "generic")
"""
    veth.run([PYTHON, "-c", leave])
    assert "prog/xdp" in xdp_state(veth)  # stays: nothing holds it but the interface
    proc = veth.popen([PYTHON, example("http_server.py"), *XDP_ARGS, "--port", "8080"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_line(proc, "serving on")
    res = veth.run(["curl", "-sS", "--max-time", "10", f"http://{STACK}:8080/"], check=False, timeout=30)
    assert res.stdout == "Hello from aiostack!\n", res
    err = interrupt(proc).decode()
    assert f"removed a leftover XDP program from {DRV} ({PROGRAM_NAME} id" in err, err
    assert "prog/xdp" not in xdp_state(veth)

    # someone else's program is left alone: the start fails, naming it
    veth.run([PYTHON, "-c", leave.replace("xdp.PROGRAM_NAME", "'someone_else'")])
    res = veth.run([PYTHON, example("http_server.py"), *XDP_ARGS, "--port", "8080"], check=False, timeout=60)
    assert res.returncode != 0
    assert f"interface '{DRV}' already has an XDP program ('someone_else'" in res.stderr, res.stderr
    assert "prog/xdp" in xdp_state(veth)


# -- the ingress filter, the same rules on every driver --------------------------------------------
RULES = [
    "count proto icmp",
    f"drop src {BLOCKED}/26",  # 10.77.0.192/26
    "drop proto tcp dport 8080 flags syn,!ack",
]


def _device(ns: NetNS, driver: str) -> list[str]:
    if driver == "tap":
        return ["--driver", "tap", "--iface", "aiostack0", "--host-addr", f"{HOST}/24", "--addr", f"{STACK}/24"]
    make_veth(ns, drv="fd0", peer="fd1")
    return ["--driver", driver, "--iface", "fd0", "--addr", f"{STACK}/24"]


@pytest.mark.parametrize("driver", ["xdp", "packet", "tap"])
def test_filter_drops_before_the_stack(netns: NetNS, driver: str) -> None:
    """The same three rules on AF_XDP (in the XDP program), AF_PACKET and TAP (FilterWrapper): the
    kernel pinging and connecting from a dropped source gets nothing; new connections to 8080 are
    stopped (their SYNs dropped) while a connection the stack opened keeps carrying data; the
    rules count exactly the ping frames sent; on AF_XDP the dropped frames never reach the ring."""
    need_tool("ping", "iputils-ping")
    need_tool("curl", "curl")
    device = _device(netns, driver)
    kernel_dev = "aiostack0" if driver == "tap" else "fd1"
    echo = netns.popen([PYTHON, "-c", ECHO_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_line(echo, "ready")
    app = netns.popen([PYTHON, str(Path(__file__).parent / "filter_app.py"), *device, "--echo", f"{HOST}:9000",
                       *(a for r in RULES for a in ("--filter", r))],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_line(app, "ready")
        netns.run(["ip", "addr", "add", f"{BLOCKED}/24", "dev", kernel_dev])
        assert app.stdin is not None and app.stdout is not None
        # the established connection (opened by the stack: its SYN-ACK carries ACK) keeps working
        app.stdin.write(b"before\n")
        app.stdin.flush()
        assert app.stdout.readline().decode().strip() == "echo before"
        allowed = netns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", HOST, STACK], check=False, timeout=30)
        assert allowed.returncode == 0 and " 0% packet loss" in allowed.stdout, allowed.stdout
        blocked = netns.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", BLOCKED, STACK], check=False,
                            timeout=30)
        assert " 0 received" in blocked.stdout, blocked.stdout
        res = netns.run(["curl", "-sS", "--max-time", "2", "--interface", BLOCKED, f"http://{STACK}:8080/"],
                        check=False, timeout=30)
        assert res.returncode == 28, res  # timed out: not even a RST came back
        res = netns.run(["curl", "-sS", "--max-time", "2", "--interface", HOST, f"http://{STACK}:8080/"],
                        check=False, timeout=30)
        assert res.returncode == 28, res  # the SYN-only rule: no new connection from anyone
        app.stdin.write(b"after\n")
        app.stdin.flush()
        assert app.stdout.readline().decode().strip() == "echo after"
        app.stdin.close()
    finally:
        if app.stdin is not None and not app.stdin.closed:
            app.stdin.close()
        app.send_signal(signal.SIGTERM)
        assert app.stdout is not None and app.stderr is not None
        out = app.stdout.read().decode()
        err = app.stderr.read().decode()
        assert app.wait(timeout=30) == 0, err
        echo.terminate()
        echo.wait(timeout=10)
    counters = json.loads(out.strip().splitlines()[-1])
    (drv,) = counters["drivers"].values()
    rules = drv["filter"]
    # ping -c 3 with 56 data bytes: 3 IPv4 datagrams of 84 bytes each way counted in the frames
    # that arrive; the allowed pings pass rule 0 (count) and nothing else
    assert rules[RULES[0]] == {"packets": 6, "bytes": 6 * (14 + 84)}, rules
    assert rules[RULES[1]]["packets"] >= 3 + 1  # 3 pings, 1+ SYNs from the blocked source
    assert rules[RULES[2]]["packets"] >= 1  # the allowed source's SYNs
    assert counters["stats"]["icmp_rx"] == 3
    assert counters["tcp"]["stats"].get("passive_opens", 0) == 0
    (queue,) = (v for k, v in drv.items() if k.startswith("queue"))
    dropped = rules[RULES[1]]["packets"] + rules[RULES[2]]["packets"]
    if driver == "xdp":
        # dropped in the XDP program: they never were in the RX ring, so every frame the ring
        # delivered reached the stack
        assert "filtered" not in queue["drops"]
        assert queue["rx_packets"] == counters["stats"]["rx_frames"]
    else:
        assert queue["drops"]["filtered"] == dropped
        assert queue["rx_packets"] == counters["stats"]["rx_frames"] + dropped


ECHO_SERVER = """
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000))
s.listen()
print("ready", flush=True)
def serve(c):
    while data := c.recv(4096):
        c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def test_two_reactors_over_xdp_with_the_kernels_steering(netns: NetNS, tmp_path: Path) -> None:
    """``--cores 2`` on a two-queue veth without ``--xdp-peer``: a socket per queue, one reactor
    each, and the queue of a frame is the kernel's choice (the peer's transmit queue, by its own
    hash of the sending socket; an XDP program cannot move frames between queues' sockets).
    Connections from kernel clients spread over both reactors and stay on one queue for their
    lifetime (no reactor answers a segment with a RST). (With ``--xdp-peer`` the flow hash
    steers, and tests/test_multicore.py runs its whole multi-core suite over AF_XDP that way.)"""
    need_tool("wrk", "wrk")
    make_veth(netns, queues=2)
    env = dict(os.environ, AIOSTACK_CONTROL_DIR=str(tmp_path / "ctl"))
    server = netns.popen([PYTHON, example("http_server.py"), "--cores", "2", *XDP_ARGS, "--port", "8080"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        wait_line(server, "serving on")
        wait_line(server, "serving on")
        res = netns.run(["wrk", "-t2", "-c100", "-d3s", f"http://{STACK}:8080/"], timeout=60)
        assert "Socket errors" not in res.stdout and "Non-2xx" not in res.stdout, res.stdout
        completed = int(re.search(r"(\d+) requests in", res.stdout).group(1))  # type: ignore[union-attr]
        stat = subprocess.run([PYTHON, "-m", "aiostack", "stat", "--json", "--conns", "0"], capture_output=True,
                              text=True, env=env, timeout=30)
        reactors = [i for i in json.loads(stat.stdout)["instances"] if i.get("role") != "parent"]
        assert sorted(r["core"] for r in reactors) == [0, 1]
        served = [r["counters"]["app"]["http"]["requests"] for r in reactors]
        assert sum(served) >= completed > 0, (served, completed)
        assert all(n >= 0.1 * sum(served) for n in served), served  # the kernel's hash: no promise
        for r in reactors:
            assert r["counters"]["tcp"]["stats"].get("resets_sent", 0) == 0, r["counters"]["tcp"]
            (queues,) = r["counters"]["drivers"].values()
            assert queues["queue0"]["rx_packets"] > 0  # a reactor's own queue
    finally:
        err = interrupt(server)
    assert server.returncode == 0, err.decode()
    assert "prog/xdp" not in xdp_state(netns)
