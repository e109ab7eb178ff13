"""``make demo``: aiostack serves HTTP to the Linux kernel's curl and wrk through a TAP device,
inside a throw-away network namespace.

    python -m aiostack.demo            # TAP inside a namespace when it can (root), else the memory link
    python -m aiostack.demo --memory   # an aiostack client and server on an in-memory link, no root needed

With root, ``/dev/net/tun``, ``ip``, ``ping``, ``curl`` and ``wrk``, the demo

1. creates a network namespace (:class:`aiostack.netns.NetNS`, deleted at the end, also on error,
   Ctrl-C or SIGTERM);
2. starts ``examples/http_server.py`` inside it on a TAP device: aiostack at 10.77.0.2/24, port
   8080, the kernel's side of the TAP at 10.77.0.1/24, every frame captured to a pcap file;
3. from the namespace's kernel: fetches ``GET /`` with ``curl -i`` (response headers and body
   shown) and ``GET /bytes/1000000`` (size and content checked), then loads the server with
   ``wrk -t1 -c50 -d3s`` (keep-alive connections) and reports the request rate and latency;
4. stops the server with SIGTERM, prints the stack's counters (its ``--stats`` JSON, as a table)
   and the start of the capture as ``tcpdump -r`` reads it (ARP, then curl's connection);
5. briefly, ICMP and UDP: ``examples/udp_echo.py`` on the same TAP, the kernel's ``ping``, and
   ``examples/udp_client.py`` (kernel sockets) sending 200 datagrams of 1..8000 bytes through it
   (the large ones fragmented), each checked (``--datagrams 0`` skips this part).

All traffic stays inside the namespace. Without root (or TAP, or the tools), or with ``--memory``,
two aiostack stacks run in this process, joined by the memory driver: the server is
``examples/http_server.py``'s ``handle`` on :func:`aiostack.streams.start_server`, the client
:func:`aiostack.streams.open_connection` fetching ``GET /``, ``GET /bytes/1000000`` and 1000
keep-alive ``GET /`` requests pipelined 50 at a time.

Exit status: 0 when every response was right (status, size, content), wrk saw no socket errors
and no non-2xx responses, every ping was answered and every datagram came back intact; 1
otherwise; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.util
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from .build import build_name
from .netns import NetNS, net_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

HOST_ADDR = "10.77.0.1"  # the kernel's side of the TAP, inside the namespace
STACK_ADDR = "10.77.0.2"  # aiostack (the server)
CLIENT_ADDR = "10.77.0.3"  # the aiostack client on the memory link
PREFIX_LEN = 24
IFACE = "aiostack0"
HTTP_PORT = 8080
UDP_PORT = 7
BIG = 1_000_000  # GET /bytes/BIG
MAX_SIZE = 8000  # UDP datagrams of 1..MAX_SIZE bytes
TAP_MTU = 1500  # the examples' default --mtu: datagrams over TAP_MTU - 28 bytes travel as fragments
PINGS = 3
WRK_THREADS = 1
WRK_CONNECTIONS = 50
PIPELINE = 50  # memory link: GET / requests written at once

READY_TIMEOUT = 20.0  # seconds for a server to print its ready line
PING_TIMEOUT = 15.0
CURL_TIMEOUT = 20.0
CLIENT_SECONDS = 20.0  # udp_client's own --max-seconds; the subprocess gets a little more
STOP_TIMEOUT = 10.0
STEP_TIMEOUT = 20.0  # memory link: each step


class DemoError(Exception):
    """A step that could not run at all (the server did not start, a tool timed out)."""


@dataclass
class Outcome:
    """What went wrong (``failures``) and what went right (``done``, for the last line)."""

    failures: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)


# -- output ----------------------------------------------------------------------------------------


def section(title: str) -> None:
    print(f"\n── {title} " + "─" * max(3, 76 - len(title)), flush=True)


def indent(text: str, prefix: str = "   ") -> str:
    return "\n".join(prefix + line if line else line for line in text.rstrip("\n").splitlines())


def _fmt(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def counter_rows(tree: Mapping[str, Any], depth: int = 0) -> list[tuple[int, str, str | None]]:
    """Nested counters → rows of (depth, name, value); a group is a row with value None, followed by
    its members one level deeper; an empty group reads ``(none)``."""
    rows: list[tuple[int, str, str | None]] = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            if value:
                rows.append((depth, str(key), None))
                rows.extend(counter_rows(value, depth + 1))
            else:
                rows.append((depth, str(key), "(none)"))
        else:
            rows.append((depth, str(key), _fmt(value)))
    return rows


def print_counters(title: str, counters: Mapping[str, Any]) -> None:
    """The stack's counters (``Stack.counters()``) as an indented table (rich's, if installed)."""
    rows = counter_rows(counters)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(2 * depth + len(name) for depth, name, _ in rows)
        print(f"   {title}")
        for depth, name, value in rows:
            label = "  " * depth + name
            print(f"     {label}" if value is None else f"     {label:<{width}}  {value:>12}")
        sys.stdout.flush()
        return
    table = Table(title=title, title_justify="left")
    table.add_column("counter")
    table.add_column("value", justify="right")
    for depth, name, value in rows:
        table.add_row("  " * depth + (f"[bold]{name}[/bold]" if value is None else name), value or "")
    Console().print(table)


def _short(arg: str) -> str:
    """Paths under the repository shortened for display."""
    if arg == sys.executable:
        return "python"
    try:
        return str(Path(arg).relative_to(ROOT))
    except ValueError:
        return arg


def _cmd(argv: Iterable[str], prefix: str = "$ ") -> None:
    print(indent(prefix + " ".join(_short(a) for a in argv)), flush=True)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


# -- what the HTTP example serves ------------------------------------------------------------------

_http_module: ModuleType | None = None


def http_example() -> ModuleType:
    """``examples/http_server.py`` as a module (its ``handle`` and ``BODY``)."""
    global _http_module
    if _http_module is None:
        spec = importlib.util.spec_from_file_location("aiostack_demo_http_server", EXAMPLES / "http_server.py")
        if spec is None or spec.loader is None:
            raise DemoError(f"cannot load {EXAMPLES / 'http_server.py'}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _http_module = module
    return _http_module


def pattern_digest(n: int) -> str:
    """sha256 of what ``GET /bytes/n`` returns: bytes 0..255 over and over."""
    block = bytes(range(256)) * 256
    h = hashlib.sha256()
    for start in range(0, n, len(block)):
        h.update(block[: min(len(block), n - start)])
    return h.hexdigest()


def _mb_per_s(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e6:,.1f} MB/s" if seconds > 0 else "-"


# -- the TAP demo: servers in the namespace ----------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path


def start_server(ns: NetNS, tmp: Path, name: str, argv: list[str], ready: str) -> Server:
    """Start an example inside ``ns``; return once it printed ``ready`` (or raise DemoError)."""
    out_path, err_path = tmp / f"{name}.out", tmp / f"{name}.err"
    _cmd(["ip", "netns", "exec", ns.name, *argv])
    # Output goes to files, not pipes: nothing can block the server, however much it prints.
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = ns.popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        text = out_path.read_text(errors="replace")
        if ready in text:
            print(indent(text.strip()), flush=True)
            return Server(proc, out_path, err_path)
        if proc.poll() is not None:
            raise DemoError(
                f"{name} exited with status {proc.returncode} before printing '{ready}'; its stderr:\n"
                + (_tail(err_path).strip() or "(empty)")
            )
        if time.monotonic() > deadline:
            raise DemoError(
                f"{name} did not print '{ready}' within {READY_TIMEOUT:.0f} s; its stderr:\n"
                + (_tail(err_path).strip() or "(empty)")
            )
        time.sleep(0.05)


def stop_server(server: Server, what: str) -> tuple[list[str], dict[str, Any] | None]:
    """SIGTERM, wait, and read the ``--stats`` JSON it printed on the way out."""
    proc = server.proc
    failures: list[str] = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            failures.append(f"{what} did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM (killed)")
    else:
        failures.append(f"{what} had already exited (status {proc.returncode})")
    if proc.returncode != 0 and not failures:
        failures.append(f"{what} exited with status {proc.returncode}")
    err = _tail(server.err_path).strip()
    if err:
        print(f"   {what}'s stderr:\n" + indent(err, "     "))
    counters = None
    for line in reversed(server.out_path.read_text(errors="replace").strip().splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                counters = json.loads(line)
            break
    if counters is None:
        failures.append(f"{what} printed no counters")
    return failures, counters


def check_counters(counters: Mapping[str, Any] | None, who: str) -> list[str]:
    """A processing error inside the stack is a bug, whatever the clients saw."""
    if not counters:
        return []
    errors = (counters.get("reactor") or {}).get("internal_errors", 0)
    return [f"{who}: {errors} internal errors while processing frames"] if errors else []


# -- the TAP demo: kernel-side clients -------------------------------------------------------------


def run_ping(ns: NetNS, out: Outcome) -> None:
    argv = ["ping", "-c", str(PINGS), "-i", "0.2", "-W", "2", STACK_ADDR]
    _cmd(argv)
    try:
        res = ns.run(argv, check=False, timeout=PING_TIMEOUT)
    except subprocess.TimeoutExpired:
        out.failures.append(f"ping did not finish within {PING_TIMEOUT:.0f} s")
        return
    lines = (res.stdout + res.stderr).strip().splitlines()
    print(indent("\n".join(lines[-2:])), flush=True)  # the summary: transmitted/received, rtt
    m = re.search(r"(\d+) packets transmitted, (\d+) received", res.stdout)
    received = int(m.group(2)) if m else 0
    if received != PINGS:
        out.failures.append(f"ping: {received}/{PINGS} replies (exit status {res.returncode})")
    else:
        out.done.append(f"{PINGS}/{PINGS} pings answered")


def run_curl_root(ns: NetNS, out: Outcome) -> None:
    url = f"http://{STACK_ADDR}:{HTTP_PORT}/"
    section(f"curl GET {url}")
    argv = ["curl", "-sS", "-i", "--max-time", "10", url]
    _cmd(argv)
    try:
        res = ns.run(argv, check=False, timeout=CURL_TIMEOUT)
    except subprocess.TimeoutExpired:
        out.failures.append(f"curl {url}: no answer within {CURL_TIMEOUT:.0f} s")
        return
    print(indent(res.stdout.replace("\r\n", "\n")), flush=True)
    if res.returncode != 0:
        out.failures.append(f"curl {url}: exit status {res.returncode}: {res.stderr.strip()}")
        return
    head, _, body = res.stdout.partition("\n\n")  # text mode: curl's CRLFs read as "\n"
    expected = http_example().BODY.decode()
    if not head.startswith("HTTP/1.1 200 "):
        out.failures.append(f"curl {url}: {head.splitlines()[0] if head else 'no status line'}")
    elif body != expected:
        out.failures.append(f"curl {url}: body {body!r}, expected {expected!r}")
    else:
        out.done.append("GET / → 200")


def run_curl_bytes(ns: NetNS, tmp: Path, out: Outcome) -> None:
    url = f"http://{STACK_ADDR}:{HTTP_PORT}/bytes/{BIG}"
    section(f"curl GET {url}")
    target = tmp / "bytes.out"
    argv = ["curl", "-sS", "--max-time", "15", "-o", str(target), "-w",
            "%{http_code} %{size_download} %{time_total}", url]
    print(indent(f"$ curl -sS -o bytes.out -w '%{{http_code}} %{{size_download}} %{{time_total}}' {url}"))
    try:
        res = ns.run(argv, check=False, timeout=CURL_TIMEOUT)
    except subprocess.TimeoutExpired:
        out.failures.append(f"curl {url}: not done within {CURL_TIMEOUT:.0f} s")
        return
    if res.returncode != 0:
        out.failures.append(f"curl {url}: exit status {res.returncode}: {res.stderr.strip()}")
        return
    try:
        code, size, seconds = res.stdout.split()
        status, nbytes, elapsed = int(code), int(size), float(seconds)
    except ValueError:
        out.failures.append(f"curl {url}: unexpected -w output {res.stdout!r}")
        return
    data = target.read_bytes() if target.exists() else b""
    ok = hashlib.sha256(data).hexdigest() == pattern_digest(BIG)
    print(f"   HTTP {status}, {nbytes:,} bytes in {elapsed * 1000:.1f} ms ({_mb_per_s(nbytes, elapsed)}), "
          f"content {'as served (bytes 0..255 repeated)' if ok else 'WRONG'}", flush=True)
    if status != 200 or nbytes != BIG or len(data) != BIG or not ok:
        out.failures.append(f"curl {url}: status {status}, {nbytes:,} bytes (file {len(data):,}), "
                            f"content {'ok' if ok else 'differs'}; expected 200 and {BIG:,} bytes")
    else:
        out.done.append(f"GET /bytes/{BIG} → {BIG:,} bytes")


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float | None:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def parse_wrk(text: str) -> dict[str, Any]:
    """The numbers in wrk's report (``--latency`` form)."""
    found: dict[str, Any] = {}
    if m := re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", text):
        found["requests"], found["duration"], found["read"] = int(m.group(1)), m.group(2), m.group(3)
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        found["rps"] = float(m.group(1))
    if m := re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", text):
        found["latency"] = {"avg": m.group(1), "stdev": m.group(2), "max": m.group(3)}
    for pct in ("50", "99"):
        if m := re.search(rf"\b{pct}%\s+(\S+)", text):
            found[f"p{pct}"] = m.group(1)
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        found["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        found["non_2xx"] = int(m.group(1))
    return found


def run_wrk(ns: NetNS, seconds: int, out: Outcome) -> None:
    url = f"http://{STACK_ADDR}:{HTTP_PORT}/"
    section(f"wrk: {WRK_CONNECTIONS} keep-alive connections for {seconds} s against {url}")
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s", "--latency", url]
    _cmd(argv)
    try:
        res = ns.run(argv, check=False, timeout=seconds + 20)
    except subprocess.TimeoutExpired:
        out.failures.append(f"wrk did not finish within {seconds + 20} s")
        return
    print(indent(res.stdout + res.stderr), flush=True)
    w = parse_wrk(res.stdout)
    if res.returncode != 0 or "rps" not in w or "requests" not in w:
        out.failures.append(f"wrk: exit status {res.returncode}, no report")
        return
    lat = w.get("latency", {})
    avg, worst = _ms(lat.get("avg", "")), _ms(lat.get("max", ""))
    p50, p99 = _ms(w.get("p50", "")), _ms(w.get("p99", ""))
    print()
    print(f"   request rate  {w['rps']:,.0f} requests/s  ({w['requests']:,} requests in {w['duration']}, "
          f"{WRK_CONNECTIONS} connections, all HTTP/1.1 keep-alive)")
    if avg is not None:
        print(f"   latency       avg {avg:.2f} ms, stdev {lat['stdev']}, max {worst:.2f} ms"
              + (f"; p50 {p50:.2f} ms, p99 {p99:.2f} ms" if p50 is not None and p99 is not None else ""))
    errors = w.get("socket_errors")
    bad = w.get("non_2xx", 0)
    print(f"   errors        {('socket errors ' + json.dumps(errors)) if errors else 'no socket errors'}, "
          f"{bad:,} non-2xx responses", flush=True)
    if errors and any(errors.values()):
        out.failures.append(f"wrk: socket errors {errors}")
    if bad:
        out.failures.append(f"wrk: {bad:,} non-2xx/3xx responses")
    if not w["requests"]:
        out.failures.append("wrk: no requests completed")
    if not (errors and any(errors.values())) and not bad and w["requests"]:
        out.done.append(f"wrk {w['requests']:,} requests at {w['rps']:,.0f} requests/s, no errors")


def show_capture(ns: NetNS, pcap: Path, counters: Mapping[str, Any] | None, lines: int = 14) -> None:
    section("the capture, as tcpdump reads it (--pcap): ARP, then curl's GET /")
    if shutil.which("tcpdump") is None:
        print("   tcpdump is not installed (Debian package tcpdump); skipped")
        return
    if not pcap.exists():
        print("   no capture file was written")
        return
    argv = ["tcpdump", "-nn", "-r", str(pcap), "-c", str(lines)]
    print(indent(f"$ tcpdump -nn -r http.pcap -c {lines}"))
    try:
        res = ns.run(argv, check=False, timeout=15)
    except subprocess.TimeoutExpired:
        print("   tcpdump did not finish in 15 s")
        return
    text = re.sub(r"^\d\d:\d\d:", "", res.stdout or res.stderr, flags=re.M)  # hh:mm: adds nothing here
    print(indent(text))
    total = _frames_written(counters)
    if total is not None and total > lines:
        print(f"   ... {total - lines:,} more frames in all ({total:,} captured)")
    sys.stdout.flush()


def _frames_written(counters: Mapping[str, Any] | None) -> int | None:
    if not counters:
        return None
    for driver in (counters.get("drivers") or {}).values():
        if isinstance(driver, Mapping) and isinstance(driver.get("pcap"), Mapping):
            return int(driver["pcap"].get("frames_written", 0))
    return None


def run_udp_client(ns: NetNS, count: int, out: Outcome) -> None:
    argv = [
        sys.executable, str(EXAMPLES / "udp_client.py"), STACK_ADDR, str(UDP_PORT),
        "--count", str(count), "--max-size", str(MAX_SIZE), "--max-seconds", str(CLIENT_SECONDS),
        # The server loads numba's checksum loop on the first long datagram (a few tenths of a
        # second): a longer resend timeout than the default 0.5 s keeps that from looking like loss.
        "--timeout", "2",
    ]
    _cmd(argv)
    try:
        res = ns.run(argv, check=False, timeout=CLIENT_SECONDS + 15)
    except subprocess.TimeoutExpired:
        out.failures.append(f"the UDP client did not finish within {CLIENT_SECONDS + 15:.0f} s")
        return
    summary: dict[str, Any] | None = None
    lines = res.stdout.strip().splitlines()
    if lines:
        with contextlib.suppress(json.JSONDecodeError):
            summary = json.loads(lines[-1])
    if summary is None:
        print(indent(res.stdout + res.stderr))
        out.failures.append(f"the UDP client printed no summary (exit status {res.returncode})")
        return
    mb = summary.get("bytes", 0) / 1e6
    print(f"   {summary['echoed_intact']:,}/{summary['sent']:,} datagrams echoed intact ({mb:.1f} MB; those over "
          f"{TAP_MTU - 28} bytes fragmented), {summary['resent']:,} resent, {summary['lost']:,} lost, "
          f"{summary['mismatched']:,} mismatched, in {summary['seconds']} s")
    if res.stderr.strip():
        print(indent(res.stderr))
    sys.stdout.flush()
    if res.returncode != 0:
        out.failures.append(
            f"UDP client: exit status {res.returncode}, {summary['echoed_intact']}/{count} echoed intact, "
            f"{summary['mismatched']} mismatched"
        )
    else:
        out.done.append(f"{count}/{count} UDP datagrams echoed intact")


def udp_part(ns: NetNS, tmp: Path, count: int, out: Outcome) -> None:
    section(f"and ICMP + UDP: examples/udp_echo.py on the TAP; kernel ping, {count} datagrams of 1..{MAX_SIZE} bytes")
    argv = [
        sys.executable, str(EXAMPLES / "udp_echo.py"), "--driver", "tap", "--iface", IFACE,
        "--addr", f"{STACK_ADDR}/{PREFIX_LEN}", "--host-addr", f"{HOST_ADDR}/{PREFIX_LEN}",
        "--port", str(UDP_PORT), "--stats",
    ]
    server = start_server(ns, tmp, "udp_echo", argv, "listening")
    try:
        run_ping(ns, out)  # also resolves ARP first: a burst of fragments would outrun the kernel's ARP queue
        run_udp_client(ns, count, out)
    finally:
        stopped, counters = stop_server(server, "udp_echo")
    out.failures += stopped + check_counters(counters, "udp_echo")
    if counters:
        s = counters.get("stats", {})
        print(f"   udp_echo's counters: udp_rx {s.get('udp_rx', 0):,}, udp_tx {s.get('udp_tx', 0):,}, "
              f"ipv4_reassembled {s.get('ipv4_reassembled', 0):,}, ipv4_tx_fragments "
              f"{s.get('ipv4_tx_fragments', 0):,}, drops {json.dumps(counters.get('drops', {}))}", flush=True)


def tap_demo(wrk_seconds: int, datagrams: int) -> Outcome:
    """The kernel's curl and wrk ↔ aiostack's HTTP server over a TAP in a namespace."""
    out = Outcome()
    with tempfile.TemporaryDirectory(prefix="aiostack-demo-") as tmpdir:
        tmp = Path(tmpdir)
        section("creating a network namespace")
        with NetNS("aiostack-demo") as ns:
            print(f"   {ns.name} (deleted at the end, with everything in it)")
            section(f"starting aiostack's HTTP server (examples/http_server.py) on TAP {IFACE} inside it")
            argv = [
                sys.executable, str(EXAMPLES / "http_server.py"),
                "--driver", "tap", "--iface", IFACE,
                "--addr", f"{STACK_ADDR}/{PREFIX_LEN}", "--host-addr", f"{HOST_ADDR}/{PREFIX_LEN}",
                "--port", str(HTTP_PORT), "--stats", "--pcap", str(tmp / "http.pcap"),
            ]
            server = start_server(ns, tmp, "http_server", argv, "serving on")
            res = ns.run(["ip", "-br", "addr", "show", "dev", IFACE], check=False)
            print(indent("kernel side: " + (res.stdout.strip() or res.stderr.strip())))
            try:
                run_curl_root(ns, out)
                run_curl_bytes(ns, tmp, out)
                run_wrk(ns, wrk_seconds, out)
            finally:
                section(f"stopping the HTTP server (SIGTERM to PID {server.proc.pid}): its --stats counters")
                stopped, counters = stop_server(server, "http_server")
            out.failures += stopped + check_counters(counters, "http_server")
            if counters:
                print_counters("aiostack counters (Stack.counters())", counters)
            show_capture(ns, tmp / "http.pcap", counters)
            if datagrams:
                udp_part(ns, tmp, datagrams, out)
            section(f"deleting namespace {ns.name}")
        print("   done")
    return out


# -- the memory-link demo --------------------------------------------------------------------------


class Responses:
    """HTTP/1.1 responses parsed off one connection's byte stream (httptools)."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.complete = 0
        self.last_status = 0
        self.statuses: dict[int, int] = {}
        self.bodies: dict[bytes, int] = {}  # for small bodies: body → count
        self.sizes: list[int] = []
        self.digest = hashlib.sha256()
        self._small = bytearray()
        self._size = 0

    def feed(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.digest = hashlib.sha256()
        self._small.clear()
        self._size = 0

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        self.digest.update(body)
        if len(self._small) < 4096:
            self._small += body[: 4096 - len(self._small)]

    def on_message_complete(self) -> None:
        status = self.last_status = self.parser.get_status_code()
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.sizes.append(self._size)
        if self._size <= 4096:
            key = bytes(self._small)
            self.bodies[key] = self.bodies.get(key, 0) + 1
        self.complete += 1


async def _read_until(reader: asyncio.StreamReader, resp: Responses, total: int, raw: bytearray | None = None) -> None:
    """Read until ``resp`` has seen ``total`` complete responses (bounded by STEP_TIMEOUT)."""
    async with asyncio.timeout(STEP_TIMEOUT):
        while resp.complete < total:
            data = await reader.read(1 << 18)
            if not data:
                raise ConnectionError(f"the server closed the connection after {resp.complete} responses")
            if raw is not None:
                raw += data
            resp.feed(data)


async def memory_http(requests: int) -> tuple[Outcome, dict[str, Any]]:
    from .drivers.memory import MemoryLink
    from .ip.checksum import NUMBA_THRESHOLD, ones_sum
    from .stack import Stack, pool_for_mtu
    from .streams import open_connection, start_server

    out = Outcome()
    example = http_example()
    t = time.perf_counter()
    ones_sum(bytes(NUMBA_THRESHOLD))  # loads numba's checksum loop now, not inside a timed step
    print(f"   (numba's checksum loop loaded first, {time.perf_counter() - t:.2f} s, so no timing below includes it)")

    link = MemoryLink()
    server_stack, client_stack = Stack(pool=pool_for_mtu(TAP_MTU)), Stack(pool=pool_for_mtu(TAP_MTU))
    server_stack.attach(link.port(name="server", pool=server_stack.pool), f"{STACK_ADDR}/{PREFIX_LEN}", name="server")
    client_stack.attach(link.port(name="client", pool=client_stack.pool), f"{CLIENT_ADDR}/{PREFIX_LEN}", name="client")
    counters: dict[str, Any] = {}
    async with server_stack, client_stack:
        server = await start_server(example.handle, STACK_ADDR, HTTP_PORT, stack=server_stack)
        print(f"   server {STACK_ADDR}:{HTTP_PORT}: examples/http_server.py's handle() "
              "on aiostack.streams.start_server")
        print(f"   client {CLIENT_ADDR}: aiostack.streams.open_connection, one keep-alive connection")
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                reader, writer = await open_connection(STACK_ADDR, HTTP_PORT, stack=client_stack)
            resp = Responses()
            host = f"Host: {STACK_ADDR}:{HTTP_PORT}\r\n"

            section("GET / from the aiostack client (the response as it arrives)")
            request = f"GET / HTTP/1.1\r\n{host}User-Agent: aiostack-demo\r\nAccept: */*\r\n\r\n".encode()
            print(indent("> " + request.decode().rstrip("\r\n").replace("\r\n", "\n> ")))
            raw = bytearray()
            writer.write(request)
            await _read_until(reader, resp, 1, raw)
            print(indent(raw.decode("latin-1").replace("\r\n", "\n")))
            if resp.statuses.get(200) != 1 or resp.bodies.get(example.BODY) != 1:
                out.failures.append(f"GET /: {bytes(raw)[:200]!r}")
            else:
                out.done.append("GET / → 200")

            section(f"GET /bytes/{BIG}")
            t = time.perf_counter()
            writer.write(f"GET /bytes/{BIG} HTTP/1.1\r\n{host}\r\n".encode())
            await _read_until(reader, resp, 2)
            elapsed = time.perf_counter() - t
            ok = resp.digest.hexdigest() == pattern_digest(BIG)
            size = resp.sizes[-1]
            print(f"   HTTP {resp.last_status}, {size:,} bytes in {elapsed * 1000:.1f} ms "
                  f"({_mb_per_s(size, elapsed)}), content {'as served (bytes 0..255 repeated)' if ok else 'WRONG'}")
            if resp.statuses.get(200) != 2 or size != BIG or not ok:
                out.failures.append(f"GET /bytes/{BIG}: statuses {resp.statuses}, {size:,} bytes, "
                                    f"content {'ok' if ok else 'differs'}")
            else:
                out.done.append(f"GET /bytes/{BIG} → {BIG:,} bytes")

            section(f"{requests:,} keep-alive GET / requests, pipelined {PIPELINE} at a time")
            load = Responses()
            one = f"GET / HTTP/1.1\r\n{host}\r\n".encode()
            t = time.perf_counter()
            sent = 0
            while sent < requests:
                n = min(PIPELINE, requests - sent)
                writer.write(one * n)
                sent += n
                await _read_until(reader, load, sent)
            elapsed = time.perf_counter() - t
            good = load.bodies.get(example.BODY, 0) if load.statuses.get(200) == requests else 0
            rate = requests / elapsed if elapsed > 0 else 0.0
            print(f"   request rate  {rate:,.0f} requests/s  ({requests:,} requests in {elapsed * 1000:.0f} ms, "
                  "client and server in this one process)")
            print(f"   responses     {load.complete:,}: statuses {load.statuses}, {good:,} with the expected body")
            if good != requests:
                out.failures.append(f"pipelined GET /: {good}/{requests} right (statuses {load.statuses})")
            else:
                out.done.append(f"{requests:,} pipelined requests at {rate:,.0f} requests/s, all 200")

            writer.close()
            with contextlib.suppress(asyncio.TimeoutError, OSError):
                async with asyncio.timeout(2):
                    await writer.wait_closed()
            await asyncio.sleep(0.05)  # the server's side of the close, so the counters show it
        except (OSError, TimeoutError) as exc:
            out.failures.append(f"memory link: {type(exc).__name__}: {exc}")
        finally:
            server.close()
            counters = {"server": server_stack.counters(), "client": client_stack.counters()}
    return out, counters


def memory_demo(requests: int) -> Outcome:
    """An aiostack HTTP client and server on an in-memory link, in this process."""
    section("two aiostack stacks on an in-memory link (drivers/memory.py), in this one process")
    import uvloop

    out, counters = uvloop.run(memory_http(requests))
    for side in ("server", "client"):
        if side in counters:
            section(f"the {side} stack's counters")
            print_counters(f"{side} (Stack.counters())", counters[side])
            out.failures += check_counters(counters[side], f"the {side} stack")
    return out


# -- main ------------------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # unwinds the context managers: the namespace is deleted


def tap_unavailable_reason() -> str | None:
    reason = net_unavailable_reason()
    if reason is not None:
        return reason
    for tool, package in (("ping", "iputils-ping"), ("curl", "curl"), ("wrk", "wrk")):
        if shutil.which(tool) is None:
            return f"no '{tool}' command (Debian package {package}; `make demo` installs it as root)"
    return None


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aiostack.demo",
        description="aiostack serving HTTP to the Linux kernel's curl and wrk over a TAP device inside a "
        "throw-away network namespace (root), or to an aiostack client on the memory link.",
    )
    parser.add_argument("--memory", action="store_true", help="use the in-memory link even when TAP is possible")
    parser.add_argument("--requests", type=int, default=1000, metavar="N",
                        help="memory link: pipelined GET / requests (default: 1000)")
    parser.add_argument("--seconds", type=int, default=3, metavar="S", help="TAP: wrk's duration (default: 3)")
    parser.add_argument("--datagrams", type=int, default=200, metavar="N",
                        help="TAP: UDP datagrams echoed after the HTTP part; 0 skips it (default: 200)")
    args = parser.parse_args(None if argv is None else list(argv))
    if not 1 <= args.requests <= 100_000:
        parser.error("--requests must be 1-100000")
    if not 1 <= args.seconds <= 30:
        parser.error("--seconds must be 1-30")
    if not 0 <= args.datagrams <= 10_000:
        parser.error("--datagrams must be 0-10000")
    signal.signal(signal.SIGTERM, _on_sigterm)

    started = time.monotonic()
    print(f"aiostack build: {build_name()} (AIOSTACK_NO_EXTENSIONS=1 selects the pure-Python build)", flush=True)
    reason = None if args.memory else tap_unavailable_reason()
    try:
        if args.memory:
            print("aiostack demo: HTTP between two aiostack stacks on the memory link (--memory)")
            out = memory_demo(args.requests)
        elif reason is not None:
            print(f"aiostack demo: cannot use a TAP device here: {reason}.")
            print("Running HTTP between two aiostack stacks on the memory link instead.")
            out = memory_demo(args.requests)
        else:
            print("aiostack demo: the Linux kernel's curl and wrk ↔ aiostack's HTTP server over a TAP device, "
                  "inside a network namespace")
            out = tap_demo(args.seconds, args.datagrams)
    except DemoError as exc:
        out = Outcome(failures=[str(exc)])
    except KeyboardInterrupt:
        print("\ninterrupted; the namespace and the processes started have been cleaned up", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    print()
    if out.failures:
        print(f"demo FAILED after {elapsed:.1f} s:")
        for failure in out.failures:
            first, _, rest = failure.partition("\n")
            print(f"  - {first}" + ("\n" + indent(rest, "    ") if rest else ""))
        return 1
    print(f"demo OK in {elapsed:.1f} s: " + "; ".join(out.done) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
