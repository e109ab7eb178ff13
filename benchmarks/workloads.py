"""The clients of the comparison and what their reports say.

Every client is a real program on the kernel's sockets, run inside a namespace and pinned to the
client core: ``wrk`` (keep-alive request rate, and latency at a fixed rate with
``wrk_paced.lua``), ``ab`` (ApacheBench without keep-alive: a connection per request),
``iperf3`` (kernel-to-kernel reference throughput) and ``examples/bulk.py --stack kernel`` (one
bulk connection, checked by SHA-256).

The parsers and the small pieces of arithmetic here are pure functions (tested by
``tests/test_bench_harness.py`` on captured output); the functions that run a client take a
namespace and return the parsed numbers plus a short excerpt of what the tool printed.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiostack.netns import NetNS

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"
PYTHON = sys.executable

SERVER_CPU = "0"  # servers (the system under test) run here ...
CLIENT_CPU = "1"  # ... and every load generator here

WRK_CONNECTIONS = 50
WRK_THREADS = 1
AB_CONCURRENCY = 50
WRK_REPORT_LUA = HERE / "wrk_report.lua"
WRK_PACED_LUA = HERE / "wrk_paced.lua"


CLIENT_LOG: Path | None = None
"""When set (the runner sets it), every client's command line and output are appended here."""


class WorkloadError(RuntimeError):
    """A client failed: no report, socket errors, wrong responses, a timeout."""


def pinned(cpu: str, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv]


# -- numbers --------------------------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def to_ms(text: str) -> float | None:
    """wrk's duration notation (``812.00us``, ``6.93ms``, ``1.20s``, ``2.00m``) in milliseconds."""
    m = re.fullmatch(r"\s*([\d.]+)(us|ms|s|m)\s*", text)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


# -- wrk ------------------------------------------------------------------------------------------


def parse_wrk(text: str) -> dict[str, Any]:
    """wrk's report: the standard lines, and the ``WRKJSON {...}`` line that ``wrk_report.lua`` /
    ``wrk_paced.lua`` print from their ``done()`` hook (exact p50/p90/p99/p99.9)."""
    out: dict[str, Any] = {}
    if m := re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", text):
        out["requests"] = int(m.group(1))
        duration = to_ms(m.group(2))
        out["duration_s"] = duration / 1000 if duration is not None else None
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        out["non_2xx"] = int(m.group(1))
    dist = {}
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)\s*$", text, re.M):
            dist[f"p{pct}"] = to_ms(m.group(1))
    if dist:
        out["latency_ms"] = dist
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON ") :])
            lat = data.get("latency_us", {})
            out["latency_ms"] = {k: round(v / 1000, 4) for k, v in lat.items()}
            out["script"] = {k: v for k, v in data.items() if k != "latency_us"}
            if data.get("duration_us") and "requests" in data:
                out.setdefault("rps", data["requests"] / (data["duration_us"] / 1e6))
    return out


def wrk_errors(report: dict[str, Any]) -> int:
    """Socket errors plus non-2xx responses in a parsed wrk report."""
    errors = sum((report.get("socket_errors") or {}).values())
    return errors + int(report.get("non_2xx") or 0)


def wrk_argv(url: str, seconds: float, *, rate: float | None = None) -> list[str]:
    """wrk flat out (``wrk_report.lua``), or held at ``rate`` requests/s (``wrk_paced.lua``)."""
    script = WRK_PACED_LUA if rate is not None else WRK_REPORT_LUA
    argv = [
        "wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
        "--latency", "-s", str(script), url,
    ]
    if rate is not None:
        argv += ["--", f"{rate:.0f}"]
    return argv


def run_wrk(ns: NetNS, url: str, seconds: float, *, rate: float | None = None) -> dict[str, Any]:
    argv = pinned(CLIENT_CPU, wrk_argv(url, seconds, rate=rate))
    res = _run(ns, argv, timeout=seconds + 30)
    report = parse_wrk(res.stdout)
    if res.returncode != 0 or "rps" not in report:
        raise WorkloadError(f"wrk: exit status {res.returncode}, no report: {_excerpt(res.stdout + res.stderr)}")
    report["errors"] = wrk_errors(report)  # kept with the run; the runner notes them
    return report


# -- ab -------------------------------------------------------------------------------------------


def parse_ab(text: str) -> dict[str, Any]:
    """ApacheBench's report."""
    out: dict[str, Any] = {}
    patterns = {
        "complete": r"Complete requests:\s+(\d+)",
        "failed": r"Failed requests:\s+(\d+)",
        "non_2xx": r"Non-2xx responses:\s+(\d+)",
        "rps": r"Requests per second:\s+([\d.]+)",
        "seconds": r"Time taken for tests:\s+([\d.]+) seconds",
        "mean_ms": r"Time per request:\s+([\d.]+) \[ms\] \(mean\)",
    }
    for key, pattern in patterns.items():
        if m := re.search(pattern, text):
            out[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    return out


def ab_argv(url: str, seconds: float) -> list[str]:
    # -t before -n: -t sets the request limit to 50000 itself; the -n after it lifts that, so
    # the run is bounded by time. -r: a reset does not end the run (it is counted as failed).
    return ["ab", "-q", "-r", "-s", "10", "-t", str(max(1, round(seconds))), "-n", "10000000",
            "-c", str(AB_CONCURRENCY), url]


def run_ab(ns: NetNS, url: str, seconds: float) -> dict[str, Any]:
    res = _run(ns, pinned(CLIENT_CPU, ab_argv(url, seconds)), timeout=seconds + 40)
    report = parse_ab(res.stdout)
    if "rps" not in report or not report.get("complete"):
        raise WorkloadError(f"ab: exit status {res.returncode}, no report: {_excerpt(res.stdout + res.stderr)}")
    bad = int(report.get("failed") or 0) + int(report.get("non_2xx") or 0)
    report["errors"] = bad
    # ab's rate counts failed requests too; the rate of good ones is what is reported
    if bad and report.get("seconds"):
        report["rps"] = round(max(0, report["complete"] - bad) / report["seconds"], 2)
    return report


# -- iperf3 ---------------------------------------------------------------------------------------


def parse_iperf3(text: str) -> dict[str, Any]:
    """``iperf3 -J``'s JSON: received and sent throughput, retransmissions."""
    data = json.loads(text)
    if "error" in data:
        raise WorkloadError(f"iperf3: {data['error']}")
    end = data["end"]
    received = end["sum_received"]
    sent = end["sum_sent"]
    return {
        "gbit_per_s": round(received["bits_per_second"] / 1e9, 4),
        "sent_gbit_per_s": round(sent["bits_per_second"] / 1e9, 4),
        "bytes": int(received["bytes"]),
        "seconds": round(received["seconds"], 3),
        "retransmits": sent.get("retransmits"),
    }


def run_iperf3(ns: NetNS, host: str, port: int, seconds: float) -> dict[str, Any]:
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", str(max(1, round(seconds))), "-J"]
    res = _run(ns, pinned(CLIENT_CPU, argv), timeout=seconds + 30)
    try:
        return parse_iperf3(res.stdout)
    except (ValueError, KeyError) as exc:
        text = _excerpt(res.stdout + res.stderr)
        raise WorkloadError(f"iperf3: exit status {res.returncode}: {exc}: {text}") from None


# -- examples/bulk.py ------------------------------------------------------------------------------


def parse_bulk(text: str) -> dict[str, Any]:
    """The JSON line ``examples/bulk.py`` (and ``pytcp_peer.py bulk-*``) prints last."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise WorkloadError(f"bulk: no result line in {_excerpt(text)!r}")


def bulk_bytes_for(gbit_per_s: float, seconds: float, *, low: int = 10_000_000, high: int = 8_000_000_000) -> int:
    """Bytes for a transfer of about ``seconds`` at the calibrated rate, rounded to whole MB."""
    n = gbit_per_s * 1e9 / 8 * seconds
    return int(min(high, max(low, math.ceil(n / 1e6) * 1e6)))


def bulk_client_argv(mode: str, host: str, port: int, nbytes: int, *, verify: bool = True) -> list[str]:
    return [PYTHON, str(EXAMPLES / "bulk.py"), mode, "--bytes", str(nbytes), "--connect", host, "--port", str(port),
            "--stack", "kernel", *([] if verify else ["--no-verify"])]


def run_bulk_client(
    ns: NetNS, mode: str, host: str, port: int, nbytes: int, timeout: float, *, verify: bool = True
) -> dict[str, Any]:
    res = _run(ns, pinned(CLIENT_CPU, bulk_client_argv(mode, host, port, nbytes, verify=verify)), timeout=timeout)
    if res.returncode != 0:
        raise WorkloadError(f"bulk.py {mode} client: exit status {res.returncode}: {_excerpt(res.stderr)}")
    return parse_bulk(res.stdout)


# -- helpers --------------------------------------------------------------------------------------


def _run(ns: NetNS, argv: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(
            ns.command(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        tool = argv[3] if argv[:1] == ["taskset"] else argv[0]
        _log(ns, argv, f"(no result within {timeout:.0f} s)\n")
        raise WorkloadError(f"{tool}: no result within {timeout:.0f} s") from None
    _log(ns, argv, f"exit status {res.returncode}\n{res.stdout}{res.stderr}")
    return res


def _log(ns: NetNS, argv: Sequence[str], text: str) -> None:
    if CLIENT_LOG is not None:
        with open(CLIENT_LOG, "a") as f:
            f.write(f"\n$ ip netns exec {ns.name} {' '.join(argv)}\n{text}")


def _excerpt(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
