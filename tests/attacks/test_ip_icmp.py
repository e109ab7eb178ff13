"""ICMP attacks on a live download over a TAP (issue 13, RFC 5927): Fragmentation Needed with
MTU 68 or 0 quoting a wrong sequence number is ignored (counted); quoting the connection's own
sequence number it lowers the path MTU only to the floor (552: 512-byte segments, never
nothing); Port Unreachable on the established connection is a soft error; redirects are
ignored. The 10 MB download completes intact through all of it, and the next one too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ip_attack_helpers import PORT, STACK, TEN_MB, Target, wait_injector

from aiostack.netns import NetNS
from conftest import PYTHON, need_tool

REPEAT = 20


def control_dir() -> Path:
    return Path(os.environ.get("AIOSTACK_CONTROL_DIR", "/tmp/aiostack-ctl")) / "attacks"


def test_icmp_attacks_on_a_live_download(netns: NetNS) -> None:
    curl = need_tool("curl", "curl")
    t = Target(netns, PYTHON, control_dir())
    # a slow reader keeps the download (and its flight of segments) alive while the ICMP comes
    download = netns.popen([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                            "--limit-rate", "4M", "--max-time", "30", f"http://{STACK}:{PORT}/bytes/{TEN_MB}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    icmp = t.inject("icmp-live", REPEAT, 0.0)
    result = wait_injector(icmp, timeout=60)
    assert result.get("sent") == 5 * REPEAT, result
    # after the right-sequence MTU 68: segments of the floor's MSS (552 - 40 - 12 = 500), not less
    assert result["sizes_before"][0] > 500, result
    assert result["sizes_after"] and max(result["sizes_after"]) == 500, result  # (1: window probes)
    out, err = download.communicate(timeout=60)
    assert out.decode() == f"200 {TEN_MB}", (out, err)
    assert not t.legit_client(curl)
    counters = t.finish()
    tcp = counters["tcp"]
    # wrong sequence numbers: ignored and counted (RFC 5927 §4.1)
    assert tcp["drops"].get("tcp_icmp_error_bad_seq", 0) >= 2 * REPEAT, tcp["drops"]
    # the right one: the path MTU went down once, to the floor, never below
    assert tcp["stats"].get("pmtu_lowered", 0) >= 1, tcp["stats"]
    assert tcp["stats"].get("pmtu_unchanged", 0) >= 1, tcp["stats"]  # the next MTU 68: held at the floor
    assert counters["reactor"]["internal_errors"] == 0
    assert "internal_error" not in counters["drops"]
