"""Live slowloris and zero-window attacks over TAP: 1,000 kernel connections that never finish
their request (one header line a second) and 1,000 that request 10 MB with a 4 KiB receive
buffer and never read. The HTTP example's request and idle timeouts (here 3 s) close all of them
(``request_timeouts``, ``idle_timeouts``), the persist timer probes the zero windows
(``zero_window_probes``), the TCP send total (here 16 MiB) bounds the stalled downloads' memory
(``snd_limited``), and a legitimate client is served during and after.

Measured over this TAP (compiled build, 1,000 stalled downloads alone, timeouts off): server RSS
61 -> 379 MB with the default 256 MiB send total, 61 -> 132 MB with 16 MiB; issue #13 saw
~1.1 MB per stalled download before any bound (2,000 -> 2.29 GB)."""

from __future__ import annotations

from tcp_attack_helpers import (
    assert_no_internal_error,
    finish_attack,
    legit_client_served,
    rss_kb,
    start_attack,
    start_server,
    stop_server,
)

from aiostack.netns import NetNS

N = 1000


def test_slowloris_and_zero_window_peers_are_closed_with_memory_bounded(netns: NetNS) -> None:
    server = start_server(netns, "--request-timeout", "3", "--idle-timeout", "3", "--tcp-mem-snd", str(16 << 20))
    rss0 = rss_kb(server.pid)
    attack = start_attack(netns, "slowloris", str(N), str(N), "8")
    assert attack.stdout is not None
    line = attack.stdout.readline().decode()  # every connection is open
    assert "attacking" in line, line
    legit_client_served(netns)  # during the attack
    grown_mb = (rss_kb(server.pid) - rss0) / 1024
    seen = finish_attack(attack)
    legit_client_served(netns)  # after
    counters = stop_server(server)
    app = counters["app"]["http"]
    tcp = counters["tcp"]
    print(f"{seen}, server RSS +{grown_mb:.1f} MB during the attack; app {app}; memory {tcp['memory']}")
    assert_no_internal_error(counters)
    assert seen["slow_closed"] == seen["slow"] == N, seen
    assert seen["stall_closed"] == seen["stall"] == N, seen
    assert seen["trickled_lines"] >= N  # the slow clients kept trickling until closed
    # Bounded: 1,000 stalled downloads hold at most 16 MiB + 1,000 x (16 KiB send floor + one
    # 16 KiB write in the transport) of data, plus per-connection state.
    assert grown_mb < 200, grown_mb
    assert app["request_timeouts"] >= N and app["idle_timeouts"] >= N, app
    assert tcp["connection_stats"]["zero_window_probes"] > 0
    assert tcp["memory"]["snd_limited"] > 0
