"""Malformed and hostile IPv4 against the HTTP example over a TAP (issue 13): LAND, martian and
broadcast sources, TTL 0, bad IHL and total lengths, garbage and source-route options; and
fragment attacks — overlapping pairs (teardrop), tiny fragments, sets that never complete
(the memory cap holds), offset + length beyond 65535. During and after each, a legitimate client
is served (curl 200 and a 10 MB download intact), RSS stays bounded, nothing counts as an
internal error, and every attack frame shows under a named counter."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ip_attack_helpers import FRAGMENT_KINDS, MARTIAN_KINDS, Target, wait_injector

from aiostack.netns import NetNS
from conftest import PYTHON, need_tool

RATE = 8_000.0
RSS_BOUND_KIB = 200 * 1024


def control_dir() -> Path:
    return Path(os.environ.get("AIOSTACK_CONTROL_DIR", "/tmp/aiostack-ctl")) / "attacks"


def attack(netns: NetNS, kind: str, count: int) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    """Run ``count`` frames of ``kind`` while a legitimate client fetches; the server's final
    counters, what the injector sent, RSS before and at the end (KiB)."""
    curl = need_tool("curl", "curl")
    t = Target(netns, PYTHON, control_dir())
    assert not t.legit_client(curl)
    rss_before = t.rss_kib()
    proc = t.inject(kind, count, RATE)
    during: list[str] = []

    def observe() -> None:
        while proc.poll() is None:
            during.extend(t.legit_client(curl))

    watcher = threading.Thread(target=observe)
    watcher.start()
    sent = wait_injector(proc, timeout=120)
    watcher.join(timeout=120)
    assert not during, during
    assert not t.legit_client(curl)
    rss_after = t.rss_kib()
    counters = t.finish()
    assert counters["reactor"]["internal_errors"] == 0
    assert "internal_error" not in counters["drops"]
    assert counters["pool"]["alloc_failures"] == 0
    assert rss_after - rss_before < RSS_BOUND_KIB, (rss_before, rss_after)
    return counters, sent, rss_before, rss_after


def test_land_martians_ttl0_bad_headers_and_options(netns: NetNS) -> None:
    per_kind = 2000
    count = per_kind * len(MARTIAN_KINDS)
    counters, sent, _, _ = attack(netns, "martians", count)
    assert sent["sent"] == count and sent["errors"] == 0, sent
    drops = counters["drops"]
    stats = counters["stats"]
    # each kind under its own name (a few of the last burst may still be in flight: >= 95%)
    expect = {
        "ipv4_land_source": per_kind,
        "ipv4_bad_source": 5 * per_kind,  # loopback, multicast, limited/directed broadcast, 0.0.0.0
        "ipv4_bad_ihl": per_kind,
        "ipv4_bad_total_length": per_kind,
        "ipv4_source_route": per_kind,
    }
    for name, n in expect.items():
        assert drops.get(name, 0) >= 0.95 * n, (name, drops)
    # garbage options: three of the four choices are malformed, one (record route) is well formed
    assert drops.get("ipv4_bad_options", 0) >= 0.5 * per_kind, drops
    assert stats.get("ipv4_rx_ttl_zero", 0) >= 0.95 * per_kind, stats
    tcp = counters["tcp"]
    # LAND made no state: no SYN-ACK to ourselves, no ARP for our own address
    assert tcp["stats"]["passive_opens"] + tcp["stats"].get("syncookies_sent", 0) < 100 + per_kind, tcp
    assert stats.get("arp_address_conflict", 0) == 0


def test_fragment_attacks(netns: NetNS) -> None:
    count = 40_000
    counters, sent, _, _ = attack(netns, "fragments", count)
    assert sent["sent"] == count and sent["errors"] == 0, sent
    drops = counters["drops"]
    per_kind = count // len(FRAGMENT_KINDS)
    assert drops.get("frag_overlap", 0) >= 0.95 * per_kind // 2, drops  # teardrop: the second of each pair
    assert "frag_bad_length" not in drops, drops
    assert drops.get("frag_too_big", 0) >= 0.95 * per_kind, drops  # offset + length > 65535
    assert drops.get("frag_memory_cap", 0) > 0, drops  # incomplete sets: the 4 MB cap evicted
    assert counters["stats"].get("ipv4_reassembled", 0) == 0  # nothing hostile completed
