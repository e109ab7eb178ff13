"""The suite's helper that waits for a server's line: it never outlasts its timeout, even when the
process (and a child holding the same pipe) stays alive and silent."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import wait_line

SILENT = (
    "import os, sys, time\n"
    "print('ready', flush=True)\n"
    "print('what went wrong', file=sys.stderr, flush=True)\n"
    "if os.fork() == 0:\n"
    "    time.sleep(60)\n"  # a child that keeps the pipe open, as a forked reactor does
    "time.sleep(60)\n"
)


def test_a_silent_process_fails_the_wait_at_its_timeout_and_is_ended() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SILENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert "ready" in wait_line(proc, "ready", timeout=10)
        with pytest.raises(AssertionError, match=r"within 1 s.*stderr: what went wrong"):
            wait_line(proc, "never printed", timeout=1)
        assert proc.wait(timeout=10) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_line_already_printed_is_found() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "print('a'); print('b serving on x', flush=True)"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_line(proc, "serving on", timeout=10).startswith("b")
    finally:
        proc.wait(timeout=10)
