"""Live malformed-option attacks over TAP against the HTTP example: option length 0 / 1 /
overrunning the header, a kind with no length byte, SACK and TS options of the wrong length,
repeated options, WS > 14 (used as 14, RFC 7323 §2.3), data offsets below 5 words or beyond the
segment (dropped, ``tcp_bad_offset``). Nothing crashes, bad layouts are counted
(``tcp_bad_options``) and a legitimate client is served during and after."""

from __future__ import annotations

from tcp_attack_helpers import (
    assert_no_internal_error,
    legit_client_served,
    run_attack,
    start_server,
    stop_server,
)

from aiostack.netns import NetNS


def test_malformed_tcp_options(netns: NetNS) -> None:
    server = start_server(netns)
    legit_client_served(netns)
    seen = run_attack(netns, "options", timeout=40)
    # Every SYN is still a SYN: options are read up to the bad one (RFC 9293 §3.1 robustness).
    assert seen["synacks"] == seen["layouts"] == 8
    assert 14600 < seen["ws15_inflight"] <= 1 << 14, seen  # more than IW10, at most the window
    assert seen["bad_offset_ignored"] and seen["served_with_bad_options"], seen
    legit_client_served(netns)
    counters = stop_server(server)
    assert_no_internal_error(counters)
    tcp = counters["tcp"]
    # Length 0, length 1, overrun, a kind without its length byte, and the request's TS of length 0
    # break the option list; wrong-length SACK/TS, repeats and WS 255 are well-formed lists.
    assert tcp["stats"]["tcp_bad_options"] >= 5
    assert tcp["drops"]["tcp_bad_offset"] >= 2
