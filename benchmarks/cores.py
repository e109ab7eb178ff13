#!/usr/bin/env python3
"""1 vs N reactors: examples/http_server.py with ``--cores 1`` and ``--cores N`` (aiostack/cores.py)
over a multi-queue TAP, over AF_PACKET on a veth end (fanout) and over AF_XDP on a multi-queue veth
end (``--xdp-peer``), wrk with 100 keep-alive connections from the same namespace; requests per
second and CPU seconds per request of each reactor (from /proc: user + system time of every
reactor process over the measured run, divided by the requests that reactor served as it reports
them to ``aiostack stat``). On this 2-core machine the load generator shares the cores with the
reactors, so the aggregate cannot double; what should stay flat as reactors are added is the CPU
time per request.

    sudo .venv/bin/python benchmarks/cores.py [--cores 2] [--driver tap|packet|xdp|all] [--seconds 4] \
        [--runs 3] [--json]

The last line of output is one JSON object (``benchmarks/run.py`` reads it). Everything runs in a
namespace this script creates and deletes; servers are stopped by their PID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiostack.netns import NetNS  # noqa: E402

PYTHON = sys.executable
CONTROL = Path("/tmp/aiostack-bench-cores.sock")
STACK = "10.78.9.2"
HOST = "10.78.9.1"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reactors(cores: int) -> list[tuple[int, int]]:
    """(pid, requests served so far) of each reactor, in core order, from the control sockets
    (``--control PATH`` gives reactor k the socket ``PATH.k``; the example exports its requests)."""
    paths = [CONTROL] if cores == 1 else [Path(f"{CONTROL}.{k}") for k in range(cores)]
    out = []
    for path in paths:
        res = subprocess.run([PYTHON, "-m", "aiostack", "stat", "--json", "--conns", "0", "--socket", str(path)],
                             capture_output=True, text=True, timeout=30, check=True)
        doc = json.loads(res.stdout)
        out.append((int(doc["pid"]), int(doc["counters"].get("app", {}).get("http", {}).get("requests", 0))))
    return out


DEVICES = {
    "tap": ["--driver", "tap", "--iface", "abcore0", "--host-addr", f"{HOST}/24"],
    "packet": ["--driver", "packet", "--iface", "abpk0"],
    # AF_XDP on a multi-queue veth, the flow hash picking the peer's transmit queue
    "xdp": ["--driver", "xdp", "--iface", "abxd0", "--xdp-peer", "abxd1"],
}


def measure(ns: NetNS, driver: str, cores: int, seconds: int, runs: int, env: dict[str, str]) -> dict[str, object]:
    server = ns.popen(
        [PYTHON, str(ROOT / "examples" / "http_server.py"), "--cores", str(cores), *DEVICES[driver],
         "--addr", f"{STACK}/24", "--port", "8080", "--control", str(CONTROL)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while ns.run(["curl", "-s", "-m", "1", f"http://{STACK}:8080/"], check=False).returncode != 0:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"http_server.py --cores {cores} --driver {driver} did not answer")
            time.sleep(0.1)
        time.sleep(0.3)
        pids = [pid for pid, _ in _reactors(cores)]
        rates, cpu_per_req = [], []
        for _ in range(runs):
            served0 = [n for _, n in _reactors(cores)]
            before = [_cpu_seconds(p) for p in pids]
            res = ns.run(["wrk", "-t2", "-c100", f"-d{int(seconds)}s", f"http://{STACK}:8080/"], check=False,
                         timeout=seconds + 30)
            after = [_cpu_seconds(p) for p in pids]
            m = re.search(r"Requests/sec:\s+([\d.]+)", res.stdout)
            if not m or "Socket errors" in res.stdout or "Non-2xx" in res.stdout:
                raise RuntimeError(f"wrk: {res.stdout[-500:]} {res.stderr[-300:]}")
            rates.append(float(m.group(1)))
            served = [b - a for a, (_, b) in zip(served0, _reactors(cores), strict=True)]
            cpu_per_req.append([(a - b) / n if n else 0.0 for a, b, n in zip(after, before, served, strict=True)])
        return {
            "driver": driver,
            "cores": cores,
            "req_per_s": statistics.median(rates),
            "runs": rates,
            # CPU seconds one reactor spends per request it serves (its CPU / its requests)
            "cpu_us_per_request_per_reactor": [
                round(statistics.median(r[i] for r in cpu_per_req) * 1e6, 1) for i in range(len(pids))
            ],
        }
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


DEFAULT_DEVICES = ("tap", "packet")
"""What ``--driver all`` (make bench) measures: AF_XDP's pair (``--driver xdp``, ~35 s) would take
make bench past its 10 minutes beside the aiohttp systems and the instruction counts. Measured
by hand (2026-12-06): 1 reactor 16,223 req/s, 47.6 µs per request; 2 reactors 20,528, 55.3 / 54.3."""


def _xdp_veth(ns: NetNS, queues: int) -> None:
    """A veth pair with ``queues`` queues each way for the AF_XDP reactors (made anew for each
    row: a queue without a socket would lose its frames to the kernel)."""
    from aiostack.drivers.packet import set_offload

    ns.run(["ip", "link", "del", "abxd0"], check=False)
    q = ["numtxqueues", str(queues), "numrxqueues", str(queues)]
    ns.run(["ip", "link", "add", "abxd0", *q, "type", "veth", "peer", "name", "abxd1", *q])
    ns.run(["ip", "link", "set", "abxd1", "up"])
    ns.run(["ip", "addr", "add", f"{HOST}/24", "dev", "abxd1"])
    # copy-mode AF_XDP hands the kernel's partial checksums over as they are
    set_offload("abxd1", "tx-csum", False, netns=ns.name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2, help="the N of 1 vs N (default 2)")
    ap.add_argument("--driver", choices=(*DEVICES, "all"), default="all",
                    help="one device, or all: " + ", ".join(DEFAULT_DEVICES) + " (default)")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="only the JSON line")
    args = ap.parse_args()
    env = dict(os.environ, AIOSTACK_CONTROL_DIR="/tmp/aiostack-bench-cores")
    out: dict[str, object] = {"rows": []}
    with NetNS("abcores") as ns:
        for driver in DEFAULT_DEVICES if args.driver == "all" else [args.driver]:
            if driver == "packet":  # a veth pair: the reactors' end holds no kernel address
                ns.run(["ip", "link", "add", "abpk0", "type", "veth", "peer", "name", "abpk1"])
                ns.run(["ip", "link", "set", "abpk1", "up"])
                ns.run(["ip", "addr", "add", f"{HOST}/24", "dev", "abpk1"])
            try:
                for n in (1, args.cores):
                    if driver == "xdp":
                        _xdp_veth(ns, n)
                    row = measure(ns, driver, n, args.seconds, args.runs, env)
                    out["rows"].append(row)  # type: ignore[attr-defined]
                    if not args.json:
                        print(f"{driver} --cores {n}: {row['req_per_s']:,.0f} req/s; CPU µs per request per "
                              f"reactor {row['cpu_us_per_request_per_reactor']}", flush=True)
            finally:
                if driver in ("packet", "xdp"):
                    ns.run(["ip", "link", "del", "abpk0" if driver == "packet" else "abxd0"], check=False)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
