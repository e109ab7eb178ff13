"""ARP abuse against the HTTP example over a TAP (issue 13): a flood of requests for our address
from thousands of in-subnet senders, and unsolicited replies for addresses we never asked
about. Policy (ip/arp.py): only a request for us from our subnet creates an entry, the table is
bounded (1024; a full table takes no more requesters, so the neighbours in use stay), replies
never create entries. During and after, a legitimate
client is served (curl 200 and a 10 MB download intact), the table and RSS stay bounded."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ip_attack_helpers import Target, wait_injector

from aiostack.netns import NetNS
from conftest import PYTHON, need_tool

COUNT = 30_000
RATE = 6_000.0
TABLE_BOUND = 1024  # IPStack(arp_max_entries=...) default
RSS_BOUND_KIB = 200 * 1024


def control_dir() -> Path:
    return Path(os.environ.get("AIOSTACK_CONTROL_DIR", "/tmp/aiostack-ctl")) / "attacks"


@pytest.mark.parametrize("kind", ["arp-requests", "arp-replies"])
def test_arp_floods_keep_the_table_bounded(netns: NetNS, kind: str) -> None:
    curl = need_tool("curl", "curl")
    t = Target(netns, PYTHON, control_dir())
    assert not t.legit_client(curl)
    rss_before = t.rss_kib()
    proc = t.inject(kind, COUNT, RATE)
    during: list[str] = []
    tables: list[dict[str, int]] = []

    def observe() -> None:
        while proc.poll() is None:
            tables.append(t.stat()["arp"])
            during.extend(t.legit_client(curl))

    watcher = threading.Thread(target=observe)
    watcher.start()
    sent = wait_injector(proc, timeout=120)
    watcher.join(timeout=120)
    assert sent["sent"] == COUNT, sent
    assert not during, during
    assert not t.legit_client(curl)
    rss_after = t.rss_kib()
    final = t.stat()
    counters = t.finish()
    for table in [*tables, final["arp"]]:
        assert table["entries"] <= TABLE_BOUND, table
    stats = counters["stats"]
    assert stats.get("arp_rx", 0) >= 0.9 * COUNT, stats
    if kind == "arp-requests":
        assert stats.get("arp_table_full", 0) > 0, stats  # many more senders than slots
        assert final["arp"]["entries"] == TABLE_BOUND, final["arp"]
    else:
        assert final["arp"]["entries"] <= 2, final["arp"]  # the host (and nothing the replies named)
    assert counters["reactor"]["internal_errors"] == 0
    assert counters["pool"]["alloc_failures"] == 0
    assert rss_after - rss_before < RSS_BOUND_KIB, (rss_before, rss_after)
