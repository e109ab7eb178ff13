"""Live tiny-MSS and malicious-SACK attacks over TAP (the CVE-2019-11477/11478/11479 shapes):
a client announcing MSS 1 or 48 downloads 2 MB while every one of its ACKs carries four bogus
SACK blocks (below SND.UNA, beyond SND.NXT, inverted, far out of range). The MSS is raised to
the floor (TcpConfig.min_mss = 216, ``tcp_mss_clamped_to_floor``), the blocks are refused and
counted (``tcp_sack_invalid``) without spurious retransmissions, the body arrives intact, the
server's memory stays bounded, and a legitimate client is served during and after."""

from __future__ import annotations

import pytest
from tcp_attack_helpers import (
    assert_no_internal_error,
    body_sha256,
    cpu_seconds,
    finish_attack,
    legit_client_served,
    rss_kb,
    start_attack,
    start_server,
    stop_server,
)

from aiostack.netns import NetNS

NBYTES = 2_000_000


@pytest.mark.parametrize("mss", [1, 48])
def test_tiny_mss_and_malicious_sack_blocks(netns: NetNS, mss: int) -> None:
    server = start_server(netns)
    rss0 = rss_kb(server.pid)
    cpu0 = cpu_seconds(server.pid)
    attack = start_attack(netns, "tiny_mss_sack", str(mss), str(NBYTES))
    legit_client_served(netns)  # during the attack
    seen = finish_attack(attack)
    cpu = cpu_seconds(server.pid) - cpu0
    grown_mb = (rss_kb(server.pid) - rss0) / 1024
    print(f"mss {mss}: {seen}, server CPU {cpu:.2f} s, RSS +{grown_mb:.1f} MB")
    assert seen["status_ok"] and seen["body_sha256"] == body_sha256(NBYTES), seen
    assert seen["acks_with_bad_sack"] > 50
    assert grown_mb < 64, grown_mb  # bounded: two 10 MB downloads and the attack's connection
    legit_client_served(netns)
    counters = stop_server(server)
    assert_no_internal_error(counters)
    tcp = counters["tcp"]
    assert tcp["connection_stats"]["tcp_mss_clamped_to_floor"] >= 1
    assert tcp["connection_drops"]["tcp_sack_invalid"] >= seen["acks_with_bad_sack"]
    # No retransmission storm from made-up SACK information: the link is lossless.
    assert tcp["stats"].get("retransmitted_segments", 0) <= 10, tcp["stats"]
