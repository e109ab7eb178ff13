"""The systems under comparison and the throw-away network each one runs in.

Every system is one server process pinned to CPU 0 (``taskset -c 0``), in a network namespace
this run creates; its clients run pinned to CPU 1 in the same namespace or in a second one joined
by a veth pair. Nothing is configured outside those namespaces, and every address used
(10.78.N.0/24, or 127.0.0.1 inside a namespace) exists only inside them.

=================== ========================================================================
system              server and path
=================== ========================================================================
aiostack-tap        ``examples/http_server.py --stack native --driver tap`` — aiostack on a TAP
                    device; the kernel's side of the TAP (the clients) in the same namespace
aiostack-packet     ``--stack native --driver packet`` — aiostack on AF_PACKET on one end of a veth
                    pair (no kernel address there); the clients behind the other end, in a
                    second namespace
aiostack-xdp        ``--stack native --driver xdp`` — aiostack on AF_XDP (copy mode, native XDP) on
                    one end of a veth pair, the clients behind the other end (checksum offload off
                    there: copy-mode AF_XDP hands partial checksums over as they are)
uvloop-veth         ``--stack kernel`` — the same application on uvloop and kernel sockets in
                    namespace A, the clients in namespace B through a veth pair
uvloop-loopback     ``--stack kernel``, clients on 127.0.0.1 in the same namespace
asyncio-loopback    ``benchmarks/asyncio_server.py`` — the example's handler on plain asyncio
pmd-pytcp           ``benchmarks/pytcp_peer.py`` — the example's handler on PyTCP on a TAP device
aiohttp-tap         ``aiostack run --driver tap -- examples/aiohttp_app.py`` — an unmodified aiohttp
                    application on aiostack's loop, over a TAP (req/s only)
aiohttp-veth        ``benchmarks/uvloop_app.py examples/aiohttp_app.py`` — the same application on
                    uvloop, the clients through a veth pair (req/s only)
=================== ========================================================================
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiostack.netns import NetNS

from .workloads import EXAMPLES, HERE, PYTHON, SERVER_CPU, pinned

HTTP_PORT = 8080
BULK_PORT = 5001
IPERF_PORT = 5201
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
TAP_IFACE = "abtap0"
VETH_SERVER = "abvs"  # the server's end of the veth pair
VETH_CLIENT = "abvc"  # the clients' end


@dataclass(frozen=True)
class System:
    name: str
    label: str  # for tables and plots
    stack: str  # native (aiostack) | kernel (uvloop) | asyncio | pytcp
    link: str  # tap | packet | xdp | veth | loopback
    index: int  # addresses 10.78.<index>.0/24
    bulk: bool  # takes part in the bulk transfers
    about: str
    app: str = "http_server"  # the server: examples/http_server.py, or "aiohttp" (examples/aiohttp_app.py)


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System("uvloop-veth", "uvloop · veth", "kernel", "veth", 3, True,
               "uvloop on kernel sockets in namespace A, clients in namespace B through a veth pair"),
        System("aiostack-tap", "aiostack · TAP", "native", "tap", 1, True,
               "aiostack on a TAP device, the kernel's side of the TAP is the client"),
        System("aiostack-packet", "aiostack · AF_PACKET", "native", "packet", 2, True,
               "aiostack on AF_PACKET on a veth end, clients behind the other end"),
        System("aiostack-xdp", "aiostack · AF_XDP", "native", "xdp", 9, True,
               "aiostack on AF_XDP on a veth end, clients behind the other end"),
        System("uvloop-loopback", "uvloop · loopback", "kernel", "loopback", 4, False,
               "uvloop on kernel sockets, clients on 127.0.0.1 in the same namespace"),
        System("asyncio-loopback", "asyncio · loopback", "asyncio", "loopback", 5, False,
               "plain asyncio (no uvloop) on kernel sockets, clients on 127.0.0.1"),
        System("pmd-pytcp", "PyTCP · TAP", "pytcp", "tap", 6, True,
               "PyTCP (pmd-pytcp, pure Python) on a TAP device"),
        System("aiohttp-veth", "aiohttp app · uvloop · veth", "kernel", "veth", 7, False,
               "an unmodified aiohttp application on uvloop, clients through a veth pair", app="aiohttp"),
        System("aiohttp-tap", "aiohttp app · aiostack · TAP", "native", "tap", 8, False,
               "the same aiohttp application under `aiostack run`, on a TAP device", app="aiohttp"),
    )
}


class ServerError(RuntimeError):
    """A server did not start, or died."""


def unavailable_reason(system: System) -> str | None:
    """Why ``system`` cannot run on this machine, or None."""
    if system.stack == "native" and system.link == "packet":
        from aiostack.config import DRIVERS

        if "packet" not in DRIVERS:
            return "aiostack has no 'packet' driver yet (not in aiostack.config.DRIVERS)"
    if system.stack == "native" and system.link == "xdp":
        from aiostack.config import DRIVERS

        if "xdp" not in DRIVERS:
            return "aiostack has no 'xdp' driver yet (not in aiostack.config.DRIVERS)"
    if system.app == "aiohttp" and importlib.util.find_spec("aiohttp") is None:
        return "aiohttp is not installed (pip install -e '.[test]')"
    if system.stack == "pytcp" and importlib.util.find_spec("pmd_pytcp") is None:
        return "pmd-pytcp is not installed (pip install -e '.[bench]')"
    if system.link == "tap" and not Path("/dev/net/tun").exists():
        return "no /dev/net/tun"
    return None


def missing_tools(tools: tuple[str, ...] = ("ip", "taskset", "curl", "wrk", "ab", "iperf3", "ss")) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def stderr_tail(self, limit: int = 1500) -> str:
        text = self.err_path.read_text(errors="replace") if self.err_path.exists() else ""
        return text[-limit:].strip()


class Testbed:
    """The namespaces (and veth pair) of one system, and its server processes (context manager:
    every server is stopped by its PID and every namespace deleted on exit, error or Ctrl-C)."""

    def __init__(self, system: System, logdir: Path) -> None:
        self.system = system
        self.logdir = logdir
        self.server_ns: NetNS | None = None
        self.client_ns: NetNS | None = None
        self._servers: list[Server] = []
        self._count = 0
        net = f"10.78.{system.index}"
        if system.link == "loopback":
            self.server_ip = self.host_ip = "127.0.0.1"
        else:
            self.server_ip, self.host_ip = f"{net}.2", f"{net}.1"
        self.prefix = 24

    # -- the network ------------------------------------------------------------------------------

    def __enter__(self) -> Testbed:
        try:
            self.server_ns = NetNS("aiobench")
            self.client_ns = self.server_ns
            if self.system.link in ("veth", "packet", "xdp"):
                self.client_ns = NetNS("aiobench")
                self._veth()
            self._client_sysctls()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _veth(self) -> None:
        s, c = self.server_ns, self.client_ns
        assert s is not None and c is not None
        s.run(["ip", "link", "add", VETH_SERVER, "type", "veth", "peer", "name", VETH_CLIENT, "netns", c.name])
        if self.system.link == "veth":  # the kernel serves: it needs the address
            s.run(["ip", "addr", "add", f"{self.server_ip}/{self.prefix}", "dev", VETH_SERVER])
        s.run(["ip", "link", "set", VETH_SERVER, "up"])
        c.run(["ip", "addr", "add", f"{self.host_ip}/{self.prefix}", "dev", VETH_CLIENT])
        c.run(["ip", "link", "set", VETH_CLIENT, "up"])
        # The kernel's end keeps TSO on (its default): the packet driver's ``gro`` offload reads
        # the unsegmented 64 KB frames whole, as the TAP driver does. For AF_XDP its checksum
        # offload goes off: copy mode delivers a CHECKSUM_PARTIAL frame with only the
        # pseudo-header sum in it (drivers/xdp.py); with an XDP program on our end the kernel
        # turns GSO off on its end by itself.
        if self.system.link == "xdp":
            from aiostack.drivers.packet import set_offload

            set_offload(VETH_CLIENT, "tx-csum", False, netns=c.name)

    def _client_sysctls(self) -> None:
        """Room for ab's connection-per-request load: the whole ephemeral range, and TIME-WAIT
        reuse for outgoing connections (namespace-local settings)."""
        assert self.client_ns is not None
        self.client_ns.run(["sh", "-c", "echo 1024 65535 > /proc/sys/net/ipv4/ip_local_port_range; "
                                        "echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse"], check=False)

    def close(self) -> None:
        for server in self._servers:
            self._terminate(server)
        self._servers.clear()
        for ns in {id(n): n for n in (self.client_ns, self.server_ns) if n is not None}.values():
            ns.delete()
        self.server_ns = self.client_ns = None

    # -- what runs on it --------------------------------------------------------------------------

    def url(self, path: str = "/") -> str:
        return f"http://{self.server_ip}:{HTTP_PORT}{path}"

    def _stack_options(self) -> list[str]:
        s = self.system
        if s.link == "tap":
            return ["--driver", "tap", "--iface", TAP_IFACE, "--addr", f"{self.server_ip}/{self.prefix}",
                    "--host-addr", f"{self.host_ip}/{self.prefix}"]
        if s.link == "packet":
            return ["--driver", "packet", "--iface", VETH_SERVER, "--addr", f"{self.server_ip}/{self.prefix}"]
        if s.link == "xdp":
            return ["--driver", "xdp", "--iface", VETH_SERVER, "--addr", f"{self.server_ip}/{self.prefix}"]
        raise ValueError(f"no native options for link {s.link}")

    def http_server_argv(self) -> list[str]:
        s = self.system
        if s.app == "aiohttp":
            app = [str(EXAMPLES / "aiohttp_app.py"), "--port", str(HTTP_PORT)]
            if s.stack == "native":
                return [PYTHON, "-m", "aiostack", "run", *self._stack_options(), "--control", "off", "--", *app]
            return [PYTHON, str(HERE / "uvloop_app.py"), *app]
        if s.stack == "native":
            return [PYTHON, str(EXAMPLES / "http_server.py"), "--stack", "native", *self._stack_options(),
                    "--port", str(HTTP_PORT), "--stats"]
        if s.stack == "kernel":
            return [PYTHON, str(EXAMPLES / "http_server.py"), "--stack", "kernel", "--port", str(HTTP_PORT)]
        if s.stack == "asyncio":
            return [PYTHON, str(HERE / "asyncio_server.py"), "--host", self.server_ip, "--port", str(HTTP_PORT)]
        if s.stack == "pytcp":
            return [PYTHON, str(HERE / "pytcp_peer.py"), "http", *self._pytcp_options(), "--port", str(HTTP_PORT)]
        raise ValueError(s.stack)

    def _pytcp_options(self) -> list[str]:
        return ["--iface", TAP_IFACE, "--addr", f"{self.server_ip}/{self.prefix}",
                "--host-addr", f"{self.host_ip}/{self.prefix}"]

    def bulk_server_argv(self, mode: str, nbytes: int, *, verify: bool = True) -> list[str]:
        s = self.system
        check = [] if verify else ["--no-verify"]
        if s.stack == "native":
            return [PYTHON, str(EXAMPLES / "bulk.py"), mode, "--bytes", str(nbytes), "--port", str(BULK_PORT),
                    "--stack", "native", *self._stack_options(), *check]
        if s.stack == "kernel":
            return [PYTHON, str(EXAMPLES / "bulk.py"), mode, "--bytes", str(nbytes), "--port", str(BULK_PORT),
                    "--stack", "kernel", *check]
        if s.stack == "pytcp":
            return [PYTHON, str(HERE / "pytcp_peer.py"), f"bulk-{mode}", "--bytes", str(nbytes),
                    *self._pytcp_options(), "--port", str(BULK_PORT), *check]
        raise ValueError(f"{s.name} runs no bulk server")

    def start(self, role: str, argv: list[str]) -> Server:
        """Start a server in the server namespace, pinned to the server CPU; output to log files."""
        assert self.server_ns is not None
        self._count += 1
        stem = f"{self.system.name}-{self._count:02d}-{role}"
        out_path, err_path = self.logdir / f"{stem}.out", self.logdir / f"{stem}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = self.server_ns.popen(pinned(SERVER_CPU, argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        server = Server(f"{self.system.name} {role}", proc, out_path, err_path)
        self._servers.append(server)
        return server

    def wait_http(self, server: Server, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``GET /`` with curl from the client namespace until it answers 200."""
        assert self.client_ns is not None
        deadline = time.monotonic() + timeout
        argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", self.url()]
        while True:
            self._check_alive(server)
            try:
                res = self.client_ns.run(argv, check=False, timeout=5)
                if res.stdout.strip() == "200":
                    return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"{server.name}: GET / did not answer 200 within {timeout:.0f} s; "
                                   f"stderr: {server.stderr_tail() or '(empty)'}")
            time.sleep(0.1)

    def wait_line(self, server: Server, word: str, timeout: float = READY_TIMEOUT) -> None:
        """Wait for ``word`` in the server's output. (A bulk server serves exactly one connection,
        so a probe connection would be taken for the transfer: it announces itself instead.)"""
        deadline = time.monotonic() + timeout
        while word not in server.output():
            self._check_alive(server)
            if time.monotonic() > deadline:
                raise ServerError(f"{server.name}: no '{word}' within {timeout:.0f} s; "
                                   f"stderr: {server.stderr_tail() or '(empty)'}")
            time.sleep(0.05)

    def wait_listening(self, server: Server, port: int, timeout: float = READY_TIMEOUT) -> None:
        """Poll the server namespace's listening kernel sockets (``ss``) for ``port``."""
        assert self.server_ns is not None
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(server)
            res = self.server_ns.run(["ss", "-Hltn", f"sport = :{port}"], check=False, timeout=5)
            if res.stdout.strip():
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{server.name}: nothing listens on port {port} after {timeout:.0f} s")
            time.sleep(0.05)

    def _check_alive(self, server: Server) -> None:
        if server.proc.poll() is not None:
            raise ServerError(f"{server.name} exited with status {server.proc.returncode}; "
                               f"stderr: {server.stderr_tail() or '(empty)'}")

    def wait_exit(self, server: Server, timeout: float) -> str:
        """Wait for a server that ends by itself (a bulk transfer); its output."""
        try:
            server.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._terminate(server)
            raise ServerError(f"{server.name} did not finish within {timeout:.0f} s") from None
        if server in self._servers:
            self._servers.remove(server)
        if server.proc.returncode != 0:
            raise ServerError(f"{server.name} exited with status {server.proc.returncode}; "
                               f"stderr: {server.stderr_tail() or '(empty)'}")
        return server.output()

    def stop(self, server: Server) -> dict[str, Any] | None:
        """SIGTERM (then SIGKILL) by PID; the ``--stats`` counters it printed, if any."""
        self._terminate(server)
        if server in self._servers:
            self._servers.remove(server)
        for line in reversed(server.output().strip().splitlines()):
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    return json.loads(line)
                break
        return None

    @staticmethod
    def _terminate(server: Server) -> None:
        proc = server.proc
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def internal_errors(counters: dict[str, Any] | None) -> int | None:
    """aiostack's count of errors while processing frames, from its ``--stats`` counters."""
    if not counters:
        return None
    reactor = counters.get("reactor") or {}
    value = reactor.get("internal_errors")
    return int(value) if isinstance(value, int) else None
