"""``make demo``: the Linux kernel talks to aiostack through a TAP device, in a throw-away namespace.

    python -m aiostack.demo            # TAP inside a namespace when it can (root), else the memory link
    python -m aiostack.demo --memory   # two aiostack instances on an in-memory link, no root needed

With root, ``/dev/net/tun``, ``ip`` and ``ping``, the demo

1. creates a network namespace (:class:`aiostack.netns.NetNS`, deleted at the end, also on error
   or Ctrl-C);
2. starts ``examples/udp_echo.py`` inside it on a TAP device: aiostack at 10.77.0.2/24, the
   kernel's side of the TAP at 10.77.0.1/24, every frame captured to a pcap file;
3. pings the stack from the namespace's kernel, then runs ``examples/udp_client.py`` there (kernel
   UDP sockets): 1000 datagrams of 1..8000 bytes (the large ones fragmented), each checked;
4. stops the server with SIGTERM and prints the stack's counters, and the start of the capture as
   ``tcpdump -r`` reads it.

All traffic stays inside the namespace. Without root (or TAP), or with ``--memory``, the same
conversation runs between two aiostack instances joined by the memory driver
(``examples/udp_echo.py --driver memory``).

Exit status: 0 when every ping was answered and every datagram came back intact, 1 otherwise,
130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from .netns import NetNS, net_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

HOST_ADDR = "10.77.0.1"  # the kernel's side of the TAP, inside the namespace
STACK_ADDR = "10.77.0.2"  # aiostack
PREFIX_LEN = 24
IFACE = "aiostack0"
PORT = 7
MAX_SIZE = 8000
TAP_MTU = 1500  # udp_echo's default --mtu: datagrams over TAP_MTU - 28 bytes travel as fragments
PINGS = 3

READY_TIMEOUT = 20.0  # seconds for the server to print its "listening" line
PING_TIMEOUT = 15.0
CLIENT_SECONDS = 30.0  # udp_client's own --max-seconds; the subprocess gets a little more
STOP_TIMEOUT = 10.0
MEMORY_TIMEOUT = 60.0


class DemoError(Exception):
    """A step that could not run at all (the server did not start, a tool timed out)."""


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


# -- the TAP demo ----------------------------------------------------------------------------------


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def start_server(ns: NetNS, tmp: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start udp_echo on a TAP inside ``ns``; return once it listens (or raise DemoError)."""
    out_path, err_path = tmp / "server.out", tmp / "server.err"
    argv = [
        sys.executable, str(EXAMPLES / "udp_echo.py"),
        "--driver", "tap", "--iface", IFACE,
        "--addr", f"{STACK_ADDR}/{PREFIX_LEN}", "--host-addr", f"{HOST_ADDR}/{PREFIX_LEN}",
        "--port", str(PORT), "--stats", "--pcap", str(tmp / "demo.pcap"),
    ]
    print(indent("$ ip netns exec " + ns.name + " " + " ".join(_short(a) for a in argv)))
    # Output goes to files, not pipes: nothing can block the server, however much it prints.
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = ns.popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        text = out_path.read_text(errors="replace")
        if "listening" in text:
            print(indent(text.strip()), flush=True)
            return proc, out_path, err_path
        if proc.poll() is not None:
            raise DemoError(
                f"the server exited with status {proc.returncode} before listening; its stderr:\n"
                + (_tail(err_path).strip() or "(empty)")
            )
        if time.monotonic() > deadline:
            raise DemoError(
                f"the server did not print its 'listening' line within {READY_TIMEOUT:.0f} s; its stderr:\n"
                + (_tail(err_path).strip() or "(empty)")
            )
        time.sleep(0.05)


def _short(arg: str) -> str:
    """Paths under the repository or the temp dir shortened for display."""
    if arg == sys.executable:
        return "python"
    try:
        return str(Path(arg).relative_to(ROOT))
    except ValueError:
        return arg


def run_ping(ns: NetNS) -> list[str]:
    section(f"kernel ping → aiostack ({HOST_ADDR} → {STACK_ADDR})")
    argv = ["ping", "-c", str(PINGS), "-i", "0.2", "-W", "2", STACK_ADDR]
    print(indent("$ " + " ".join(argv)))
    try:
        res = ns.run(argv, check=False, timeout=PING_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [f"ping did not finish within {PING_TIMEOUT:.0f} s"]
    print(indent(res.stdout + res.stderr), flush=True)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", res.stdout)
    received = int(m.group(2)) if m else 0
    if received != PINGS:
        return [f"ping: {received}/{PINGS} replies (exit status {res.returncode})"]
    return []


def run_udp_client(ns: NetNS, count: int) -> list[str]:
    section(f"kernel UDP client → aiostack echo ({count} datagrams of 1..{MAX_SIZE} bytes to port {PORT})")
    argv = [
        sys.executable, str(EXAMPLES / "udp_client.py"), STACK_ADDR, str(PORT),
        "--count", str(count), "--max-size", str(MAX_SIZE), "--max-seconds", str(CLIENT_SECONDS),
    ]
    print(indent("$ " + " ".join(_short(a) for a in argv)), flush=True)
    try:
        res = ns.run(argv, check=False, timeout=CLIENT_SECONDS + 15)
    except subprocess.TimeoutExpired:
        return [f"the UDP client did not finish within {CLIENT_SECONDS + 15:.0f} s"]
    summary: dict[str, Any] | None = None
    lines = res.stdout.strip().splitlines()
    if lines:
        try:
            summary = json.loads(lines[-1])
        except json.JSONDecodeError:
            summary = None
    if summary is None:
        print(indent(res.stdout + res.stderr))
        return [f"the UDP client printed no summary (exit status {res.returncode})"]
    mb = summary.get("bytes", 0) / 1e6
    rate = summary.get("datagrams_per_second")
    rows = [
        ("sent", f"{summary['sent']:,} datagrams, {mb:.1f} MB in all (those over {TAP_MTU - 28} bytes fragmented)"),
        ("echoed intact", f"{summary['echoed_intact']:,}"),
        ("resent", f"{summary['resent']:,}  (no echo within the client's timeout)"),
        ("lost", f"{summary['lost']:,}"),
        ("mismatched", f"{summary['mismatched']:,}"),
        ("time", f"{summary['seconds']} s" + (f"  ({rate:,} datagrams/s round trip)" if rate else "")),
    ]
    for name, value in rows:
        print(f"   {name:<14} {value}")
    if res.stderr.strip():
        print(indent(res.stderr))
    sys.stdout.flush()
    if res.returncode != 0:
        return [
            f"UDP client: exit status {res.returncode}, {summary['echoed_intact']}/{count} echoed intact, "
            f"{summary['mismatched']} mismatched"
        ]
    return []


def stop_server(proc: subprocess.Popen[bytes], out_path: Path, err_path: Path) -> tuple[list[str], dict | None]:
    section(f"stopping the server (SIGTERM to PID {proc.pid})")
    failures: list[str] = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            failures.append(f"the server did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM (killed)")
    else:
        failures.append(f"the server had already exited (status {proc.returncode})")
    if proc.returncode != 0 and not failures:
        failures.append(f"the server exited with status {proc.returncode}")
    print(f"   exit status {proc.returncode}")
    err = _tail(err_path).strip()
    if err:
        print("   its stderr:\n" + indent(err, "     "))
    counters = None
    for line in reversed(out_path.read_text(errors="replace").strip().splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                counters = json.loads(line)
            break
    if counters is None:
        failures.append("the server printed no counters")
    else:
        print()
        print_counters("aiostack counters (Stack.counters())", counters)
    sys.stdout.flush()
    return failures, counters


def show_capture(ns: NetNS, pcap: Path, counters: Mapping[str, Any] | None, lines: int = 12) -> None:
    section("the capture, as tcpdump reads it (--pcap)")
    if shutil.which("tcpdump") is None:
        print("   tcpdump is not installed (Debian package tcpdump); skipped")
        return
    if not pcap.exists():
        print("   no capture file was written")
        return
    argv = ["tcpdump", "-nn", "-r", str(pcap), "-c", str(lines)]
    print(indent("$ tcpdump -nn -r demo.pcap -c " + str(lines)))
    try:
        res = ns.run(argv, check=False, timeout=15)
    except subprocess.TimeoutExpired:
        print("   tcpdump did not finish in 15 s")
        return
    print(indent(res.stdout or res.stderr))
    total = _frames_written(counters)
    if total is not None and total > lines:
        print(f"   ... {total - lines:,} more frames")
    sys.stdout.flush()


def _frames_written(counters: Mapping[str, Any] | None) -> int | None:
    if not counters:
        return None
    for driver in (counters.get("drivers") or {}).values():
        if isinstance(driver, Mapping) and isinstance(driver.get("pcap"), Mapping):
            return int(driver["pcap"].get("frames_written", 0))
    return None


def tap_demo(count: int) -> list[str]:
    """The kernel ↔ aiostack conversation over a TAP in a namespace; returns what failed."""
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aiostack-demo-") as tmpdir:
        tmp = Path(tmpdir)
        section("creating namespace …")
        with NetNS("aiostack-demo") as ns:
            print(f"   network namespace {ns.name} (deleted at the end, with everything in it)")
            section(f"starting aiostack's UDP echo server on TAP {IFACE} inside it")
            proc, out_path, err_path = start_server(ns, tmp)
            res = ns.run(["ip", "-br", "addr", "show", "dev", IFACE], check=False)
            print(indent("kernel side: " + (res.stdout.strip() or res.stderr.strip())))
            try:
                failures += run_ping(ns)
                failures += run_udp_client(ns, count)
                res = ns.run(["ip", "neigh", "show", STACK_ADDR], check=False)
                if res.stdout.strip():
                    print(f"\n   the kernel's ARP entry for aiostack: {res.stdout.strip()}")
            finally:
                stopped, counters = stop_server(proc, out_path, err_path)
            failures += stopped
            show_capture(ns, tmp / "demo.pcap", counters)
            section(f"deleting namespace {ns.name}")
        print("   done")
    return failures


# -- the memory-link demo --------------------------------------------------------------------------


def memory_demo(count: int) -> list[str]:
    """udp_echo's memory-link demo: an aiostack client and server in one process."""
    section("two aiostack instances on an in-memory link (drivers/memory.py), one process")
    argv = [sys.executable, str(EXAMPLES / "udp_echo.py"), "--driver", "memory", "--count", str(count)]
    print(indent("$ " + " ".join(_short(a) for a in argv)), flush=True)
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=MEMORY_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return [f"the memory-link demo did not finish within {MEMORY_TIMEOUT:.0f} s"]
    text, _, rest = res.stdout.partition("\n{")
    print(indent(text))
    counters: dict[str, Any] | None = None
    if rest:
        try:
            counters = json.loads("{" + rest)
        except json.JSONDecodeError:
            print(indent("{" + rest))
    if counters:
        for side in ("server", "client"):
            if side in counters:
                print()
                print_counters(f"{side} stack counters", counters[side])
    if res.stderr.strip():
        print(indent(res.stderr))
    sys.stdout.flush()
    failures: list[str] = []
    if res.returncode != 0:
        failures.append(f"udp_echo.py --driver memory exited with status {res.returncode}")
    m = re.search(r"(\d+)/(\d+) datagrams echoed intact", res.stdout)
    if not m:
        failures.append("the memory-link demo reported no result")
    elif int(m.group(1)) != count:
        failures.append(f"memory link: only {m.group(1)}/{count} datagrams echoed intact")
    return failures


# -- main ------------------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # unwinds the context managers: the namespace is deleted


def tap_unavailable_reason() -> str | None:
    reason = net_unavailable_reason()
    if reason is None and shutil.which("ping") is None:
        reason = "no 'ping' command (Debian package iputils-ping)"
    return reason


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aiostack.demo",
        description="aiostack answering the Linux kernel's ping and UDP over a TAP device inside a "
        "throw-away network namespace (root), or two aiostack instances on the memory link.",
    )
    parser.add_argument("--memory", action="store_true", help="use the in-memory link even when TAP is possible")
    parser.add_argument("--count", type=int, default=1000, metavar="N", help="UDP datagrams to echo (default: 1000)")
    args = parser.parse_args(None if argv is None else list(argv))
    if not 1 <= args.count <= 10_000:
        parser.error("--count must be 1-10000")
    signal.signal(signal.SIGTERM, _on_sigterm)

    started = time.monotonic()
    reason = tap_unavailable_reason()
    try:
        if args.memory:
            print("aiostack demo: memory link (--memory)")
            failures = memory_demo(args.count)
        elif reason is not None:
            print(f"aiostack demo: cannot use a TAP device here: {reason}.")
            print("Running the same conversation between two aiostack instances on the memory link instead.")
            failures = memory_demo(args.count)
        else:
            print("aiostack demo: the Linux kernel ↔ aiostack over a TAP device, inside a network namespace")
            failures = tap_demo(args.count)
    except DemoError as exc:
        failures = [str(exc)]
    except KeyboardInterrupt:
        print("\ninterrupted; the namespace and the processes started have been cleaned up", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    print()
    if failures:
        print(f"demo FAILED after {elapsed:.1f} s:")
        for failure in failures:
            first, _, rest = failure.partition("\n")
            print(f"  - {first}" + ("\n" + indent(rest, "    ") if rest else ""))
        return 1
    pings = "every ping answered, " if not args.memory and reason is None else ""
    print(f"demo OK in {elapsed:.1f} s: {pings}all {args.count} datagrams echoed intact.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
