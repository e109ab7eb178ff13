"""Shared fixtures. Network tests (root, TAP, namespaces) skip with a reason on a user's machine and
fail instead when AIOSTACK_REQUIRE_NET=1 (CI), so they can never pass in CI by not running."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiostack.netns import NetNS, net_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _require_net() -> bool:
    return os.environ.get("AIOSTACK_REQUIRE_NET", "") not in ("", "0")


def example(name: str) -> str:
    """The path of ``examples/<name>``."""
    return str(ROOT / "examples" / name)


def wait_line(proc: subprocess.Popen[bytes], word: str, timeout: float = 30) -> str:
    """Read the process's stdout until a line containing ``word``, within ``timeout`` seconds.

    ``readline()`` blocks, so the deadline cannot be checked between lines alone: a process that
    stays alive and silent (a reactor that never reports) would hang the suite. At the deadline a
    timer ends the process and everything it started (by PID: they are this test's), the read
    then meets the end of the pipe, and the test fails saying so."""
    assert proc.stdout is not None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        kill_tree(proc.pid)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        while True:
            line = proc.stdout.readline().decode()
            if word in line and not expired.is_set():
                return line
            if not line and proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                if expired.is_set():
                    raise AssertionError(f"no '{word}' line within {timeout} s (the process was ended); "
                                         f"stderr: {err[-3000:] or '(empty)'}")
                raise AssertionError(f"process exited ({proc.returncode}) before '{word}': {err}")
            if not line:
                time.sleep(0.05)  # the pipe's end reached while the process is still exiting
    finally:
        timer.cancel()


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (children first found through /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    tree = [pid]
    for p in tree:
        tree.extend(parents.get(p, ()))
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def bulk_pair(
    ns: NetNS, server_argv: list[str], aiostack_mode: str, nbytes: int, host: str, timeout: float = 240
) -> tuple[dict[str, object], dict[str, object]]:
    """Run ``server_argv`` (an aiostack bulk server in ``aiostack_mode``, printing a "listening"
    line, then its JSON result) in ``ns`` against the kernel's examples/bulk.py as the other end;
    both JSON results, aiostack's first."""
    kernel_mode = "send" if aiostack_mode == "receive" else "receive"
    server = ns.popen(server_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_line(server, "listening")
    client = ns.run(
        [PYTHON, example("bulk.py"), kernel_mode, "--bytes", str(nbytes), "--connect", host, "--port", "5001",
         "--stack", "kernel"],
        timeout=timeout,
    )
    out, err = server.communicate(timeout=timeout)
    assert server.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1]), json.loads(client.stdout.strip().splitlines()[-1])


def interrupt(proc: subprocess.Popen[bytes], timeout: float = 30) -> bytes:
    """SIGINT (as Ctrl-C would), SIGKILL if it does not end in ``timeout``; its stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return err or b""


def stop(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM, then its stdout once it exited cleanly."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def need(reason: str | None) -> None:
    """Skip (or, under AIOSTACK_REQUIRE_NET=1, fail) when ``reason`` is not None."""
    if reason is None:
        return
    if _require_net():
        pytest.fail(f"AIOSTACK_REQUIRE_NET=1 but {reason}")
    pytest.skip(reason)


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    need(None if path else f"'{name}' not installed (Debian package {package}; `make setup` installs it)")
    assert path is not None
    return path


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A fresh network namespace, deleted after the test."""
    need(net_unavailable_reason())
    with NetNS() as ns:
        yield ns


# Hypothesis explores new examples on every run on a developer's machine (that is how it finds
# bugs); in CI it replays a fixed sequence, so a red CI always means a change broke something.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hyp_settings.register_profile("dev", deadline=None, print_blob=True)
    _hyp_settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass
