"""`make demo`'s no-root path: ``python -m aiostack.demo --memory`` runs the UDP conversation between
two aiostack instances on the memory link, reports it, and exits 0 (the TAP path is what
tests/test_udp_tap.py checks piece by piece)."""

from __future__ import annotations

import subprocess

from conftest import PYTHON, ROOT


def test_memory_demo_echoes_every_datagram() -> None:
    res = subprocess.run(
        [PYTHON, "-m", "aiostack.demo", "--memory", "--count", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "memory link: 200/200 datagrams echoed intact" in res.stdout, res.stdout
    assert "demo OK" in res.stdout, res.stdout
    assert "server stack counters" in res.stdout and "client stack counters" in res.stdout, res.stdout
    assert "udp_rx" in res.stdout  # the counters table is printed


def test_demo_rejects_a_bad_count() -> None:
    res = subprocess.run(
        [PYTHON, "-m", "aiostack.demo", "--memory", "--count", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )
    assert res.returncode == 2 and "--count" in res.stderr, res.stderr
