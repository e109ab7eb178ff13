"""--cores 2 over the memory driver (drivers/shared_link.py): no root, no kernel — reactors on
one end of a shared-memory link, an aiostack client on the other (tests/memory_cores_app.py).
Flows spread over both reactors and stay on theirs, outgoing connections get their replies on
the reactor that made them, and a killed reactor's successor resumes its queue."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from conftest import PYTHON


def test_two_reactors_on_a_shared_memory_link() -> None:
    script = Path(__file__).parent / "memory_cores_app.py"
    res = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    served = out["served"]
    assert len(served) == 100 and all(served.count(core) >= 30 for core in (0, 1)), served
    assert out["again"] == served  # a connection's segments always reach the same reactor
    reports = {int(k): v for k, v in out["reports"].items()}
    for core in (0, 1):
        first = reports[core][0]
        # every outgoing connection completed, none of their segments landed on the other reactor
        assert first["ok"] == 20 and first["active_opens"] == 20, first
        assert first["resets_sent"] == 0 and "tcp_no_socket" not in first["drops"], first
    killed, successor = reports[1][0], reports[1][1]
    assert successor["pid"] != killed["pid"] and successor["ok"] == 20 and successor["resets_sent"] == 0, successor
    assert re.search(rf"reactor 1 \(pid {killed['pid']}\) was killed by SIGKILL; restarting it", res.stderr)
    assert len(reports[0]) == 1  # reactor 0 kept running ...
    assert out["keep_after_kill"] == 0  # ... and its open connection carried on
    assert set(out["served_after"]) == {0, 1}  # new connections reach the old and the new reactor
    assert out["greeted"] == {"0": 20, "1": 40}
    assert out["client_resets_sent"] == 0 and "tcp_no_socket" not in out["client_drops"], out
    assert out["supervisor_exit"] == 0
    prefixes = (f"aiostack-{out['supervisor']}-", f"aiostack-link-{out['creator']}-")
    assert [n for n in os.listdir("/dev/shm") if n.startswith(prefixes)] == []  # every ring removed
