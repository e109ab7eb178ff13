#!/usr/bin/env python3
"""First-use memory (issue #13): how much RSS a fresh server process gains on its first large
transfer and its first 4000-byte (fragmented) datagram, over a TAP with offloads (root; a
network namespace made and deleted here).

- TCP: ``examples/http_server.py`` on the TAP; RSS after start, after ``curl /`` and after each
  of two 10 MB downloads (the first one makes the 64 KB segmentation-offload buffers it needs:
  the large pool is lazy).
- UDP: ``examples/udp_echo.py``; RSS after start, after a 100-byte datagram and after a
  4000-byte one (fragmented by the kernel: the stack reassembles it and checksums it in
  software — the pure build's first long software checksum used to import numba).

    python benchmarks/first_use_memory.py                            # compiled build
    AIOSTACK_NO_EXTENSIONS=1 python benchmarks/first_use_memory.py   # pure build

Measured (issue #13, this machine): compiled build, TCP 62.9 MB at start, 67.1 after the first
10 MB download, 67.2 after the second; UDP 61.8 -> 62.0 MB after the first 4000-byte datagram.
Pure build: TCP 58.6 -> 62.0 -> 62.1; UDP 58.0 -> 58.0 MB, a 0.12 s round trip — where, before
numba was kept to devices without checksum offload, the first 4000-byte datagram took the pure
server to 180.5 MB (+122.5) and its round trip 1.32 s.

Prints one JSON object (MB).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "attacks")]

HOST, STACK = "10.77.0.1", "10.77.0.2"
TAP = ["--driver", "tap", "--iface", "aiostack0", "--addr", f"{STACK}/24", "--host-addr", f"{HOST}/24"]


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def tcp(ns: Any) -> dict[str, float]:
    from tcp_attack_helpers import BIG, body_sha256, start_server, stop_server

    server = start_server(ns)
    out = {"start": _rss(server.pid)}
    try:
        ns.run(["curl", "-sS", "-o", "/dev/null", f"http://{STACK}:8080/"], timeout=30)
        time.sleep(0.5)
        out["after_small_request"] = _rss(server.pid)
        for name in ("after_first_10MB", "after_second_10MB"):
            res = ns.run(["sh", "-c", f"curl -sS http://{STACK}:8080/bytes/{BIG} | sha256sum"], timeout=60)
            assert res.stdout.split()[0] == body_sha256(BIG)
            time.sleep(0.5)
            out[name] = _rss(server.pid)
    finally:
        counters = stop_server(server)
    print("tcp pool:", counters.get("pool"), file=sys.stderr)
    return out


PROBE = f"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for n in map(int, sys.argv[1:]):
    s.sendto(bytes(n), ("{STACK}", 7))
    data, _ = s.recvfrom(65536)
    assert len(data) == n
"""


def udp(ns: Any) -> dict[str, float]:
    from conftest import PYTHON

    proc = ns.popen([PYTHON, str(ROOT / "examples" / "udp_echo.py"), *TAP, "--port", "7"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert "listening" in line, line
        out = {"start": _rss(proc.pid)}
        for name, size in (("after_100B", 100), ("after_first_4000B", 4000), ("after_second_4000B", 4000)):
            t = time.perf_counter()
            ns.run([PYTHON, "-c", PROBE, str(size)], timeout=60)
            out[name] = _rss(proc.pid)
            out[name + "_s"] = round(time.perf_counter() - t, 2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


def main() -> None:
    from aiostack.build import build_name
    from aiostack.netns import NetNS

    with NetNS() as ns:
        res = {"build": build_name(), "tcp_rss_mb": tcp(ns)}
    with NetNS() as ns:
        res["udp_rss_mb"] = udp(ns)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
