"""UDP, ICMP and ARP against the real Linux kernel through a TAP, inside a test-made namespace:
the kernel's ping, a kernel UDP socket round-tripping 10,000 datagrams of 1..8000 bytes through
examples/udp_echo.py, ARP both ways, a destination that never answers ARP, and the pcap wrapper's
file read back by tcpdump."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from aiostack.netns import NetNS
from conftest import PYTHON, ROOT, need_tool

HOST = "10.77.0.1"
STACK = "10.77.0.2"
SILENT = "10.77.0.99"


def start_echo(ns: NetNS, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    proc = ns.popen(
        [PYTHON, str(ROOT / "examples" / "udp_echo.py"), "--driver", "tap", "--iface", "aiostack0",
         "--addr", f"{STACK}/24", "--host-addr", f"{HOST}/24", "--port", "7", "--stats", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert "listening" in line, line + proc.stderr.read().decode() if proc.stderr else line
    return proc


def stop(proc: subprocess.Popen[bytes]) -> tuple[dict[str, object], str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    last = out.decode().strip().splitlines()[-1]
    return json.loads(last), err.decode()


@pytest.fixture
def echo_server(netns: NetNS, tmp_path: Path):  # type: ignore[no-untyped-def]
    pcap = tmp_path / "echo.pcap"
    proc = start_echo(netns, tmp_path, "--pcap", str(pcap))
    yield netns, proc, pcap
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def test_ping_udp_roundtrip_and_pcap(echo_server) -> None:  # type: ignore[no-untyped-def]
    ns, proc, pcap = echo_server
    need_tool("ping", "iputils-ping")
    res = ns.run(["ping", "-c", "5", "-i", "0.2", "-W", "2", STACK], check=False, timeout=30)
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr
    # large pings are fragmented by the kernel, reassembled by the stack, and the reply fragmented back
    res = ns.run(["ping", "-c", "2", "-s", "5000", "-W", "2", STACK], check=False, timeout=30)
    assert res.returncode == 0 and " 0% packet loss" in res.stdout, res.stdout + res.stderr

    res = ns.run(
        [PYTHON, str(ROOT / "examples" / "udp_client.py"), STACK, "7", "--count", "10000", "--min-size", "1",
         "--max-size", "8000"],
        check=False, timeout=300,
    )
    summary = json.loads(res.stdout)
    assert res.returncode == 0, (summary, res.stderr)
    assert summary["echoed_intact"] == 10000 and summary["mismatched"] == 0

    # ARP, kernel → stack: the kernel's neighbour table holds the stack's MAC
    neigh = ns.run(["ip", "neigh", "show", STACK]).stdout
    assert "lladdr" in neigh, neigh

    counters, _ = stop(proc)
    stats = counters["stats"]
    drops = counters["drops"]
    assert isinstance(stats, dict) and isinstance(drops, dict)
    assert stats["udp_rx"] >= 10000 and stats["udp_tx"] >= 10000
    assert stats["icmp_echo_replied"] == 7
    assert stats["ipv4_reassembled"] > 0 and stats["ipv4_tx_fragmented"] > 0
    assert "internal_error" not in drops
    assert counters["pool"]["available"] == counters["pool"]["buffers"]  # type: ignore[index]

    tcpdump = need_tool("tcpdump", "tcpdump")
    res = subprocess.run([tcpdump, "-nn", "-r", str(pcap)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert f"{HOST} > {STACK}: ICMP echo request" in text
    assert f"{STACK} > {HOST}: ICMP echo reply" in text
    assert f"{HOST}." in text and f"{STACK}.7: UDP" in text
    assert "ARP, Request who-has" in text and "ARP, Reply" in text


def test_stack_resolves_kernel_and_reports_silent_destination(netns: NetNS) -> None:
    """ARP, stack → kernel: the stack speaks first; and a destination that never answers ARP gives
    the waiting sender EHOSTUNREACH after the retries, with the drop counted — never a hang."""
    kernel_echo = netns.popen(
        [PYTHON, "-c", textwrap.dedent(f"""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(60)
            for _ in range(30):
                try:
                    s.bind(("{HOST}", 9999))
                    break
                except OSError:
                    import time; time.sleep(0.2)
            print("bound", flush=True)
            while True:
                data, peer = s.recvfrom(2048)
                s.sendto(data.upper(), peer)
        """)],
        stdout=subprocess.PIPE,
    )
    sender = netns.popen(
        [PYTHON, str(ROOT / "tests" / "tap_udp_sender.py"), "aiostack0", f"{STACK}/24", f"{HOST}/24", HOST,
         "9999", SILENT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = sender.communicate(timeout=90)
    assert sender.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    kernel_echo.kill()
    kernel_echo.wait(timeout=10)
    assert result["replies"] == 20
    assert any(row["ip"] == HOST and row["state"] in ("reachable", "stale") for row in result["arp_table"])
    assert result["silent_error"] == "EHOSTUNREACH", result
    assert SILENT in result["silent_message"]
    assert result["counters"]["drops"]["arp_unresolved"] == 1
    assert result["silent_seconds"] < 30  # bounded by the retry count, not a hang


def test_echo_server_survives_kernel_flood_of_closed_ports(echo_server) -> None:  # type: ignore[no-untyped-def]
    """Datagrams to closed ports get rate-limited ICMP port unreachables; the kernel sees them as
    ECONNREFUSED on a connected socket."""
    ns, proc, _ = echo_server
    res = ns.run([PYTHON, "-c", textwrap.dedent(f"""
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("{STACK}", 9))
        s.settimeout(2)
        s.send(b"x")
        try:
            s.recv(10)
            print("no-error")
        except ConnectionRefusedError:
            print("refused")
    """)], timeout=30)
    assert res.stdout.strip() == "refused"
    counters, _ = stop(proc)
    assert counters["drops"]["udp_no_port"] >= 1  # type: ignore[index]
    assert counters["stats"]["icmp_error_tx"] >= 1  # type: ignore[index]


