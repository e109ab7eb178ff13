"""Live RFC 5961 attacks over TAP (blind in-window RST, SYN on an established connection, data
with an unacceptable ACK) against the HTTP example, from a raw-frame peer in the test's
namespace: each answered as §3–§5 say, the victim connection survives, an exact RST still resets,
a legitimate client is served during and after, and the defences are counted by name."""

from __future__ import annotations

from tcp_attack_helpers import (
    assert_no_internal_error,
    legit_client_served,
    run_attack,
    start_server,
    stop_server,
)

from aiostack.netns import NetNS


def test_rfc5961_blind_rst_syn_and_ack_attacks(netns: NetNS) -> None:
    server = start_server(netns)
    legit_client_served(netns)
    seen = run_attack(netns, "rfc5961", timeout=40)
    assert seen == {
        "rst_in_window_challenged": True,
        "syn_challenged": True,
        "unacceptable_ack_dropped": True,
        "old_ack_dropped": True,
        "served_after": True,
        "exact_rst_reset": True,
    }
    legit_client_served(netns)
    counters = stop_server(server)
    assert_no_internal_error(counters)
    tcp = counters["tcp"]
    assert tcp["connection_stats"]["challenge_acks"] >= 2
    assert tcp["connection_drops"]["tcp_ack_for_unsent"] >= 1
    assert tcp["connection_drops"]["tcp_ack_too_old"] >= 1
    assert tcp["connection_stats"]["resets_received"] >= 1
