"""Throw-away network namespaces for tests, the demo and benchmarks.

Every TAP device and kernel-side client aiostack's own runs use lives in a namespace made here and
deleted afterwards, so no traffic ever leaves the machine's sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path


def net_unavailable_reason() -> str | None:
    """Why namespaces + TAP cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and TAP devices)"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun"
    if shutil.which("ip") is None:
        return "no 'ip' command (Debian package iproute2)"
    return None


class NetNS:
    """A named network namespace that exists for the lifetime of this object (context manager).

    ``run``/``popen`` execute commands inside it with ``ip netns exec``. Loopback is brought up.
    IPv6 is off unless asked for: a new link otherwise emits router solicitations and MLD reports
    on its own, which makes frame-exact tests nondeterministic (the stack has no IPv6 yet).
    """

    def __init__(self, prefix: str = "aiostack", *, ipv6: bool = False) -> None:
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self._procs: list[subprocess.Popen[bytes]] = []
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            self.run(["ip", "link", "set", "lo", "up"])
            if not ipv6:
                self.run(
                    ["sh", "-c", "for k in all default; do echo 1 > /proc/sys/net/ipv6/conf/$k/disable_ipv6; done"]
                )
        except BaseException:
            self.delete()
            raise

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 60, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv), check=check, timeout=timeout, capture_output=True, text=True, **kw
        )

    def popen(self, argv: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        """Start a process inside the namespace; it is ended (by its PID) when the namespace goes."""
        proc = subprocess.Popen(self.command(argv), **kw)
        self._procs.append(proc)
        return proc

    def delete(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._procs.clear()
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)

    def __enter__(self) -> NetNS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()
