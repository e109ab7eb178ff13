"""``make bench``: aiostack side by side with uvloop, asyncio and PyTCP, with real clients.

    python -m benchmarks.run            # the whole comparison (≤ 10 minutes), as root
    python -m benchmarks.run --quick    # aiostack-tap vs uvloop-veth vs uvloop-loopback, req/s + bulk (≤ 2 min)
    python -m benchmarks.run --systems aiostack-tap,uvloop-veth --runs 5 --out /tmp/bench

For every system (see ``benchmarks/systems.py``) it makes the system's namespaces, starts its
server pinned to CPU 0 and drives it from CPU 1 with

- ``wrk -t1 -c50 --latency`` against ``GET /`` (keep-alive, a 21-byte body): requests per second;
- ``wrk`` held at a fixed rate — half of uvloop-veth's median (``wrk_paced.lua``): p50/p99/p99.9;
- ``ab -c50`` without keep-alive for a fixed time: connections (= requests) per second;
- one bulk connection each way with ``examples/bulk.py`` (the system serves, a kernel
  ``bulk.py --stack kernel`` is the client; the calibration transfer's SHA-256 is checked on both
  ends, the measured ones skip hashing), sized from a
  calibration transfer to last about ``--bulk-seconds``; kernel→kernel through the veth pair both
  with ``bulk.py`` on both ends and with ``iperf3``;

then deletes the namespaces. Last, when ``benchmarks/idle_conns.py`` exists, it runs it (the
idle-connection target) and takes the JSON object on its last output line. It prints a table of
medians and of the issue's ratios with pass/fail, and writes ``results.json`` (every run, medians,
machine), ``results.md`` and three PNG plots to ``--out`` (default ``benchmarks/results``; with
``--quick``, ``benchmarks/results/quick``). A full run into the default directory also updates the
table in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiostack.build import build_name
from aiostack.netns import net_unavailable_reason

from . import report, workloads
from .systems import (
    BULK_PORT,
    IPERF_PORT,
    SYSTEMS,
    ServerError,
    System,
    Testbed,
    internal_errors,
    missing_tools,
    unavailable_reason,
)
from .workloads import (
    CLIENT_CPU,
    PYTHON,
    ROOT,
    SERVER_CPU,
    WorkloadError,
    bulk_bytes_for,
    median,
    parse_bulk,
    run_ab,
    run_bulk_client,
    run_iperf3,
    run_wrk,
)

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"
IDLE_CONNS = HERE / "idle_conns.py"
CORES = HERE / "cores.py"
INSTRUCTIONS = HERE / "instructions.py"
INSTRUCTIONS_BUDGET_S = 300
"""benchmarks/instructions.py: one callgrind run per build (~1 min here)."""
CORES_BUDGET_S = 180.0
"""benchmarks/cores.py: four servers (1 and 2 reactors, TAP and AF_PACKET), 3 wrk runs each (~80 s here)."""
README = HERE / "README.md"
ORDER = ("uvloop-veth", "aiostack-tap", "aiostack-packet", "aiostack-xdp", "uvloop-loopback", "asyncio-loopback",
         "pmd-pytcp", "aiohttp-veth", "aiohttp-tap")
QUICK_SYSTEMS = ("uvloop-veth", "aiostack-tap", "uvloop-loopback")
LATENCY_SYSTEMS = ("uvloop-veth", "aiostack-tap", "aiostack-packet", "aiostack-xdp", "uvloop-loopback")
CALIBRATION_BYTES = {"kernel": 1_000_000_000, "native": 300_000_000, "pytcp": 4_000_000}


@dataclass
class Plan:
    mode: str
    command: str
    systems: list[str]
    runs: int
    rps_seconds: float
    warmup_seconds: float
    latency_systems: list[str]
    latency_seconds: float
    ab_seconds: float
    bulk_seconds: float
    iperf3: bool
    idle_conns: bool
    budget_s: int
    latency_rate: float | None = None
    server_cpu: str = SERVER_CPU
    client_cpu: str = CLIENT_CPU
    labels: dict[str, str] = field(default_factory=dict)

    def steps(self) -> int:
        """Progress steps: one per measured or calibration run, one per server start."""
        n = 0
        for name in self.systems:
            s = SYSTEMS[name]
            n += 1 + 1 + self.runs  # start, warm-up, rps runs
            if name in self.latency_systems:
                n += self.runs
            if self.ab_seconds and s.app == "http_server":
                n += self.runs
            if s.bulk and self.bulk_seconds:
                n += (1 if s.stack == "kernel" else 2) * (1 + self.runs)
            if name == "uvloop-veth" and self.iperf3:
                n += self.runs
        return n + (3 if self.idle_conns else 0)


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    systems = [s.strip() for s in args.systems.split(",")] if args.systems else list(QUICK_SYSTEMS if quick else ORDER)
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(unknown)} (known: {', '.join(SYSTEMS)})")
    systems = sorted(systems, key=ORDER.index)  # uvloop-veth first: its rate sets the latency test's
    latency = [] if quick or args.no_latency else [s for s in systems if s in LATENCY_SYSTEMS]
    return Plan(
        mode="quick" if quick else "full",
        command="make bench-quick" if quick else "make bench",
        systems=systems,
        runs=args.runs,
        rps_seconds=args.seconds or (3 if quick else 4),
        warmup_seconds=1,
        latency_systems=latency,
        latency_seconds=args.seconds or 4,
        ab_seconds=0 if quick or args.no_ab else 3,
        bulk_seconds=0 if args.no_bulk else args.bulk_seconds or (1.5 if quick else 2.5),
        iperf3="uvloop-veth" in systems and not args.no_bulk,
        idle_conns=not quick and not args.no_idle_conns,
        budget_s=120 if quick else 600,
        latency_rate=args.latency_rate,
        labels={name: SYSTEMS[name].label for name in SYSTEMS} | {report.IPERF_SERIES: "iperf3 · veth (kernel↔kernel)"},
    )


# -- progress --------------------------------------------------------------------------------------


class UI:
    """A rich progress bar with a log line per step; plain lines without rich."""

    def __init__(self, total: int) -> None:
        self.start = time.monotonic()
        self._progress: Any = None
        self.console: Any = None
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:
            self._total, self._done = total, 0
            return
        self.console = Console(width=None if sys.stdout.isatty() else 160)
        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=self.console, transient=False)
        self._task = self._progress.add_task("benchmarks", total=total)

    def __enter__(self) -> UI:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def stage(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)
        self.log(f"── {text}", style="bold cyan")

    def log(self, text: str, style: str | None = None) -> None:
        stamp = f"[{time.monotonic() - self.start:6.1f}s]"
        if self.console is not None:
            self.console.print(f"{stamp} {text}", style=style, highlight=False, markup=False)
        else:
            print(f"{stamp} {text}", flush=True)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)
        else:
            self._done += n


# -- machine ---------------------------------------------------------------------------------------


def _cmd_first_line(argv: list[str]) -> str | None:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    versions = {}
    for pkg in ("uvloop", "pmd-pytcp", "numba", "httptools"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    commit = _cmd_first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    uname = platform.uname()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "hostname": uname.node,
        "uname": " ".join([uname.system, uname.node, uname.release, uname.version, uname.machine]),
        "kernel": uname.release,
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "mem_gib": mem_gib,
        "virtualization": ", ".join(v for v in (_cmd_first_line(["systemd-detect-virt", "--vm"]),
                                                _cmd_first_line(["systemd-detect-virt", "--container"]))
                                    if v and v != "none") or None,
        "python": platform.python_version(),
        "build": build_name(),
        "packages": versions,
        "tools": {
            "wrk": _cmd_first_line(["wrk", "-v"]),
            "ab": _cmd_first_line(["ab", "-V"]),
            "iperf3": _cmd_first_line(["iperf3", "--version"]),
        },
        "commit": commit + (" (+ uncommitted changes)" if dirty else ""),
    }


# -- the steps -------------------------------------------------------------------------------------


class Runner:
    def __init__(self, plan: Plan, results: report.Results, ui: UI, logdir: Path, idle_args: list[str]) -> None:
        self.plan, self.results, self.ui, self.logdir = plan, results, ui, logdir
        self.idle_args = idle_args
        self.latency_rate_fixed = plan.latency_rate is not None

    def attempt(self, workload: str, series: str, what: str, fn: Callable[[], None]) -> bool:
        """Run one step; a failure is recorded against its series and the run goes on."""
        try:
            fn()
            return True
        except (WorkloadError, ServerError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            message = f"{what}: {exc}"
            self.results.add_error(workload, series, message)
            self.ui.log(f"   ✗ {series} {message}", style="red")
            return False

    def note_errors(self, workload: str, series: str, what: str, run: dict[str, Any]) -> None:
        """A run with socket errors or bad responses is kept, and the count shown with the results."""
        if run.get("errors"):
            message = f"{what}: {run['errors']} socket errors / failed or non-2xx responses (run kept)"
            self.results.add_error(workload, series, message)
            self.ui.log(f"   ! {series} {message}", style="yellow")

    def system(self, system: System) -> None:
        plan = self.plan
        reason = unavailable_reason(system)
        self.ui.stage(f"{system.name}: {system.about}")
        if reason:
            self.results.system(system.name, "skipped", reason)
            self.ui.log(f"   skipped: {reason}", style="yellow")
            self.ui.advance(self._steps_of(system))
            return
        self.results.system(system.name, "ran", about=system.about)
        try:
            with Testbed(system, self.logdir) as tb:
                self.ui.log(f"   namespaces {tb.server_ns.name if tb.server_ns else '?'}"
                            + (f" + {tb.client_ns.name}" if tb.client_ns is not tb.server_ns and tb.client_ns else "")
                            + f"; server {tb.server_ip}")
                self.http(tb)
                if system.bulk and plan.bulk_seconds:
                    for mode in ("send",) if system.stack == "kernel" else ("send", "receive"):
                        self.bulk(tb, mode)
                if system.name == "uvloop-veth" and plan.iperf3:
                    self.iperf3(tb)
        except Exception as exc:  # a broken system must not end the comparison; its error is shown
            self.results.system(system.name, "failed", f"{type(exc).__name__}: {exc}")
            self.results.add_error("rps", system.name, f"system failed: {type(exc).__name__}: {exc}")
            self.ui.log(f"   ✗ {system.name} failed: {type(exc).__name__}: {exc}", style="red")

    def _steps_of(self, system: System) -> int:
        sub = Plan(**{**asdict(self.plan), "systems": [system.name]})
        return sub.steps() - (3 if sub.idle_conns else 0)

    # -- HTTP: rps, latency, cps ------------------------------------------------------------------

    def http(self, tb: Testbed) -> None:
        plan, name = self.plan, tb.system.name
        latency = name in plan.latency_systems
        # an application other than the example (aiohttp) gets the keep-alive runs only: the row
        # compares req/s and wrk's latency percentiles, and keeps make bench short
        ab = plan.ab_seconds if tb.system.app == "http_server" else 0
        steps = 1 + self.plan.runs + (plan.runs if latency else 0) + (plan.runs if ab else 0)
        server = tb.start("http", tb.http_server_argv())
        self.ui.log(f"   start {' '.join(_short(a) for a in tb.http_server_argv())}")
        try:
            tb.wait_http(server)
        except ServerError as exc:
            self.results.add_error("rps", name, f"server: {exc}")
            self.ui.log(f"   ✗ {exc}", style="red")
            tb.stop(server)
            self.ui.advance(1 + steps)
            return
        self.ui.advance()
        url = tb.url()
        try:
            # keep-alive requests per second
            def warm() -> None:
                r = run_wrk(tb.client_ns, url, plan.warmup_seconds)  # type: ignore[arg-type]
                self.results.add_run("rps", name, _rps_run(r), warmup=True)
                self.ui.log(f"   warm-up {r['rps']:,.0f} req/s")

            self.attempt("rps", name, "warm-up", warm)
            self.ui.advance()
            for i in range(plan.runs):
                def one(i: int = i) -> None:
                    r = run_wrk(tb.client_ns, url, plan.rps_seconds)  # type: ignore[arg-type]
                    run = _rps_run(r)
                    self.results.add_run("rps", name, run)
                    self.note_errors("rps", name, f"wrk run {i + 1}", run)
                    self.ui.log(f"   req/s run {i + 1}/{plan.runs}: {run['rps']:,.0f}  "
                                f"(p50 {run.get('p50_ms', 0):.2f} ms, p99 {run.get('p99_ms', 0):.2f} ms)")

                self.attempt("rps", name, f"wrk run {i + 1}", one)
                self.ui.advance()
            if name == "uvloop-veth" and not self.latency_rate_fixed:
                m = median(r["rps"] for r in self.results.data["workloads"]["rps"].get(name, {}).get("runs", []))
                if m:
                    plan.latency_rate = round(m / 2)
                    self.ui.log(f"   uvloop-veth median {m:,.0f} req/s → latency tests at {plan.latency_rate:,} req/s")
            if latency:
                self.latency(tb, url)
            if ab:
                for i in range(plan.runs):
                    def ab_run(i: int = i) -> None:
                        r = run_ab(tb.client_ns, url, plan.ab_seconds)  # type: ignore[arg-type]
                        run = {"rps": r["rps"], "complete": r["complete"], "errors": r["errors"],
                               "seconds": r.get("seconds"), "mean_ms": r.get("mean_ms")}
                        self.results.add_run("cps", name, run)
                        self.note_errors("cps", name, f"ab run {i + 1}", run)
                        self.ui.log(f"   conns/s run {i + 1}/{plan.runs}: {r['rps']:,.0f} ({r['complete']:,} "
                                    f"connections)")

                    self.attempt("cps", name, f"ab run {i + 1}", ab_run)
                    self.ui.advance()
        finally:
            counters = tb.stop(server)
            errors = internal_errors(counters)
            if errors is not None:
                self.results.system(name, "ran", internal_errors=errors)
                if errors:
                    self.results.add_error("rps", name, f"aiostack counted {errors} internal errors")

    def latency(self, tb: Testbed, url: str) -> None:
        """wrk held at the fixed rate (``wrk_paced.lua``): latency percentiles and the achieved rate."""
        plan, name = self.plan, tb.system.name
        rate = plan.latency_rate
        if not rate:
            self.results.add_error("latency", name, "no rate: uvloop-veth's req/s was not measured")
            self.ui.advance(plan.runs)
            return
        self.results.set_info("latency", name, target_rps=rate)
        for i in range(plan.runs):
            def one(i: int = i) -> None:
                r = run_wrk(tb.client_ns, url, plan.latency_seconds, rate=rate)  # type: ignore[arg-type]
                run = _latency_run(r, rate)
                self.results.add_run("latency", name, run)
                self.note_errors("latency", name, f"paced wrk run {i + 1}", run)
                self.ui.log(f"   latency run {i + 1}/{plan.runs} at {run['rps']:,.0f} of {rate:,.0f} req/s: p50 "
                            f"{run['p50_ms']:.2f} / p99 {run['p99_ms']:.2f} / p99.9 {run['p99.9_ms']:.2f} ms")

            self.attempt("latency", name, f"paced wrk run {i + 1}", one)
            self.ui.advance()

    # -- bulk ---------------------------------------------------------------------------------------

    def bulk(self, tb: Testbed, mode: str) -> None:
        """The system serves ``mode`` (send: it sends to the kernel client; receive: it receives)."""
        plan, system = self.plan, tb.system
        series = f"{system.name}/{mode}"
        client_mode = "receive" if mode == "send" else "send"
        nbytes = CALIBRATION_BYTES[system.stack]
        gbit: float | None = None
        for i in range(plan.runs + 1):
            warm = i == 0
            if not warm and gbit is not None:
                nbytes = bulk_bytes_for(gbit, plan.bulk_seconds, low=1_000_000)

            def one(nbytes: int = nbytes, warm: bool = warm, i: int = i) -> None:
                nonlocal gbit
                # The calibration transfer checks the content (SHA-256 at both ends); the measured
                # ones skip hashing, which costs more CPU than the stacks themselves (~1.5 s/GB).
                run = self.bulk_once(tb, mode, client_mode, nbytes, verify=warm)
                self.results.add_run("bulk", series, run, warmup=warm)
                if warm:
                    gbit = run["gbit_per_s"]
                what = "calibration" if warm else f"run {i}/{plan.runs}"
                self.ui.log(f"   bulk {_direction(system, mode)} {what}: {run['gbit_per_s']:.3f} Gbit/s "
                            f"({run['bytes'] / 1e6:,.0f} MB in {run['seconds']:.2f} s)")

            ok = self.attempt("bulk", series, "calibration" if warm else f"run {i}", one)
            self.ui.advance()
            if warm and not ok:
                self.ui.advance(plan.runs)
                return

    def bulk_once(
        self, tb: Testbed, mode: str, client_mode: str, nbytes: int, *, verify: bool = True
    ) -> dict[str, Any]:
        server = tb.start(f"bulk-{mode}", tb.bulk_server_argv(mode, nbytes, verify=verify))
        try:
            tb.wait_line(server, "listening")
            expected = nbytes * 8 / 0.02e9  # seconds at 20 Mbit/s: a generous bound, PyTCP included
            timeout = min(300.0, 30.0 + expected)
            client = run_bulk_client(tb.client_ns, client_mode, tb.server_ip, BULK_PORT, nbytes, timeout,  # type: ignore[arg-type]
                                     verify=verify)
            ours = parse_bulk(tb.wait_exit(server, timeout=20))
        finally:
            tb.stop(server)
        if client.get("bytes") != nbytes or ours.get("bytes") != nbytes:
            raise WorkloadError(f"bulk: {client.get('bytes')} bytes at the client, {ours.get('bytes')} at the "
                                f"server, expected {nbytes}")
        if client.get("sha256") != ours.get("sha256"):
            raise WorkloadError("bulk: SHA-256 differs between the two ends")
        # the kernel client's measurement: the same code measures every system
        return {"gbit_per_s": client["gbit_per_s"], "seconds": client["seconds"], "bytes": nbytes,
                "server_gbit_per_s": ours.get("gbit_per_s")}

    def iperf3(self, tb: Testbed) -> None:
        plan = self.plan
        series = report.IPERF_SERIES
        for i in range(plan.runs):
            def one(i: int = i) -> None:
                server = tb.start("iperf3", ["iperf3", "-s", "-1", "-B", tb.server_ip, "-p", str(IPERF_PORT)])
                try:
                    tb.wait_listening(server, IPERF_PORT)
                    r = run_iperf3(tb.client_ns, tb.server_ip, IPERF_PORT, plan.bulk_seconds)  # type: ignore[arg-type]
                finally:
                    tb.stop(server)
                self.results.add_run("bulk", series, r)
                self.ui.log(f"   iperf3 kernel→kernel veth run {i + 1}/{plan.runs}: {r['gbit_per_s']:.2f} Gbit/s "
                            f"({r.get('retransmits')} retransmits)")

            self.attempt("bulk", series, f"iperf3 run {i + 1}", one)
            self.ui.advance()

    # -- benchmarks in scripts of their own: idle connections, 1 vs N cores -------------------------------

    def idle_conns(self, deadline: float) -> None:
        self.ui.stage("idle connections (benchmarks/idle_conns.py)")
        budget = max(60.0, deadline - time.monotonic())  # the last step: whatever time is left
        # its own --timeout makes it give up (and clean up) in time; ours is the backstop
        args = self.idle_args or ["--timeout", str(round(budget))]
        self._script("idle_conns", IDLE_CONNS, args, budget + 30)

    def cores(self) -> None:
        self.ui.stage("1 vs 2 reactors (benchmarks/cores.py)")
        self._script("cores", CORES, ["--json", "--runs", str(self.plan.runs)], CORES_BUDGET_S)

    def instructions(self) -> None:
        self.ui.stage("instructions per round trip, pure vs compiled build (benchmarks/instructions.py)")
        self._script("instructions", INSTRUCTIONS, [], INSTRUCTIONS_BUDGET_S)

    def _script(self, key: str, script: Path, args: list[str], timeout: float) -> None:
        """Run ``script`` and keep the JSON object on its last output line as ``results[key]``."""
        argv = [PYTHON, str(script), *args]
        self.ui.log(f"   {' '.join(_short(a) for a in argv)} (timeout {timeout:.0f} s)")
        out_path = self.logdir / f"{key}.out"
        started = time.monotonic()
        entry: dict[str, Any] = {"argv": [_short(a) for a in argv]}
        try:
            with open(out_path, "w") as out, open(self.logdir / f"{key}.err", "w") as err:
                proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _end(proc)
                    entry["error"] = f"no result within {timeout:.0f} s"
                except BaseException:
                    _end(proc)
                    raise
            entry["returncode"] = proc.returncode
            lines = out_path.read_text(errors="replace").strip().splitlines()
            if "error" not in entry:
                try:
                    result = json.loads(lines[-1]) if lines else None
                    if not isinstance(result, dict):
                        raise ValueError("not a JSON object")
                    entry["result"] = result
                except (ValueError, IndexError) as exc:
                    entry["error"] = f"exit status {proc.returncode}; last line is not a JSON object ({exc})"
        finally:
            entry["seconds"] = round(time.monotonic() - started, 1)
            self.results.data[key] = entry
            self.ui.advance()
        shown = json.dumps(entry.get("result") or entry.get("error"))
        self.ui.log(f"   {key}: {shown[:300]}", style=None if "result" in entry else "red")


def _end(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process (and its session), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _rps_run(r: dict[str, Any]) -> dict[str, Any]:
    lat = r.get("latency_ms", {})
    return {"rps": r["rps"], "requests": r.get("requests"), "errors": r.get("errors", 0), "p50_ms": lat.get("p50"),
            "p99_ms": lat.get("p99"), "p99.9_ms": lat.get("p99.9")}


def _latency_run(r: dict[str, Any], rate: float) -> dict[str, Any]:
    lat = r.get("latency_ms", {})
    return {"rps": r["rps"], "target_rps": rate, "errors": r.get("errors", 0),
            "mean_ms": lat.get("mean"), "p50_ms": lat.get("p50"),
            "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"), "p99.9_ms": lat.get("p99.9"),
            "max_ms": lat.get("max")}


def _direction(system: System, mode: str) -> str:
    if system.stack == "kernel":
        return "kernel→kernel (bulk.py)"
    who = {"native": "stack", "pytcp": "pytcp"}.get(system.stack, system.stack)
    return f"{who}→kernel" if mode == "send" else f"kernel→{who}"


def _short(arg: str) -> str:
    if arg == PYTHON:
        return "python"
    with contextlib.suppress(ValueError):
        return str(Path(arg).relative_to(ROOT))
    return arg


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: servers stopped, namespaces deleted, partial results kept."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def write_outputs(results: report.Results, out: Path, *, update_readme: bool, ui: UI) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results.summarize()
    results.write_json(out / "results.json")
    md = report.markdown(results.data, images=".")  # results.md sits next to its PNGs
    (out / "results.md").write_text("# aiostack benchmarks\n\n" + md)
    pngs = report.plot(results.data, out)
    ui.log(f"wrote {_short(str(out / 'results.json'))}, {_short(str(out / 'results.md'))}"
           + (", " + ", ".join(p.name for p in pngs) if pngs else " (no plots: matplotlib missing)"))
    if update_readme and report.update_readme(README, report.markdown(results.data, images="results")):
        ui.log(f"updated the table in {_short(str(README))}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the ≤ 2 minute subset (make bench-quick)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: benchmarks/results[/quick])")
    p.add_argument("--systems", help=f"comma-separated subset of: {', '.join(ORDER)}")
    p.add_argument("--runs", type=int, default=3, help="measured runs per workload; medians over them (default: 3)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per wrk run (default: 4; quick: 3)")
    p.add_argument("--bulk-seconds", type=float, default=None,
                   help="target seconds per bulk transfer (default: 2.5; quick: 1.5)")
    p.add_argument("--no-latency", action="store_true", help="skip the fixed-rate latency runs")
    p.add_argument("--latency-rate", type=float, default=None,
                   help="req/s for the latency runs (default: half of uvloop-veth's measured median)")
    p.add_argument("--no-ab", action="store_true", help="skip the connections-per-second runs")
    p.add_argument("--no-bulk", action="store_true", help="skip the bulk transfers")
    p.add_argument("--no-idle-conns", action="store_true", help="do not run benchmarks/idle_conns.py")
    p.add_argument("--idle-conns-args", default="", help="arguments passed to benchmarks/idle_conns.py")
    p.add_argument("--no-readme", action="store_true", help="do not update the table in benchmarks/README.md")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if reason := net_unavailable_reason():
        print(f"benchmarks: cannot run: {reason}", file=sys.stderr)
        return 2
    if missing := missing_tools():
        print(f"benchmarks: missing tools: {', '.join(missing)} (make benchdeps installs them)", file=sys.stderr)
        return 2
    plan = make_plan(args)
    out = args.out or (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)
    update = not args.quick and args.out is None and not args.no_readme and args.systems is None
    results = report.Results(machine_info(), asdict(plan))
    started = time.monotonic()
    deadline = started + plan.budget_s - 20
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="aiostack-bench-") as tmp, UI(plan.steps()) as ui:
        logdir = Path(tmp)
        workloads.CLIENT_LOG = logdir / "clients.log"
        runner = Runner(plan, results, ui, logdir, args.idle_conns_args.split())
        ui.log(f"{plan.command}: {', '.join(plan.systems)}; {plan.runs} runs each; server on CPU {SERVER_CPU}, "
               f"clients on CPU {CLIENT_CPU}; logs in {logdir}")
        try:
            with sigterm_as_interrupt():
                for name in plan.systems:
                    runner.system(SYSTEMS[name])
                if plan.idle_conns:
                    runner.cores()
                    runner.instructions()
                    runner.idle_conns(deadline)
        except KeyboardInterrupt:
            interrupted = True
            ui.log("interrupted: servers stopped, namespaces deleted; writing partial results", style="yellow")
        finally:
            results.data["interrupted"] = interrupted
            results.data["plan"] = asdict(plan)  # with the latency rate found
            results.data["meta"]["elapsed_s"] = round(time.monotonic() - started)
            write_outputs(results, out, update_readme=update and not interrupted, ui=ui)
            _keep_logs(logdir, out / "logs")
    report.print_tables(results.data, ui.console)
    elapsed = time.monotonic() - started
    over = " — over its budget" if elapsed > plan.budget_s else ""
    print(f"{plan.command}: {elapsed:.0f} s (budget {plan.budget_s} s){over}; results in {_short(str(out))}/")
    return 130 if interrupted else 0


def _keep_logs(src: Path, dst: Path) -> None:
    """Server and tool logs of the last run, for when something failed (not meant for git)."""
    import shutil

    shutil.rmtree(dst, ignore_errors=True)
    with contextlib.suppress(OSError):
        shutil.copytree(src, dst)


if __name__ == "__main__":
    sys.exit(main())
