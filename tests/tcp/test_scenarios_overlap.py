"""Scenarios: overlapping, duplicate and out-of-order data from a hostile or broken sender (RFC 9293
§3.10.7.4 seventh; tcp/receive_buffer.py's policy) — the first copy wins, duplicates are ACKed at
once, overlaps are trimmed, the out-of-order store is capped (TcpConfig.ooo_max_segments) and
every refusal is a counted drop."""

from __future__ import annotations

from scenario import Scenario, State


def test_exact_duplicate_is_acked_at_once_and_counted() -> None:
    """A segment wholly below RCV.NXT (a retransmission of delivered data): an immediate ACK
    (RFC 5681 §4.2 — the sender may be probing after a lost ACK); it fails the sequence test
    (§3.10.7.4 first: nothing in it is in the window) and is counted there."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"abcdefghij")
    h.expect_within(0.1, ".", ack=11, after=0.04)
    h.inject("P.", seq=1, ack=1, payload=b"abcdefghij")
    h.expect(".", ack=11)
    assert conn.drops["tcp_out_of_window"] == 1


def test_partial_overlap_with_delivered_data_keeps_the_first_copy() -> None:
    """A segment half old, half new, whose old half differs from what was delivered: only the new
    half is taken — the first copy wins (BSD, Linux; the overlapping-segment evasion trick
    gets nowhere)."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"abcdefghij")
    h.inject("P.", seq=6, ack=1, payload=b"FGHIJklmno")
    assert h.recv() == b"abcdefghijklmno"


def test_conflicting_out_of_order_copies_first_wins() -> None:
    """Two different copies of the same out-of-order range: the first is kept; the second is a
    counted duplicate; the SACK block is unchanged."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("P.", seq=21, ack=1, payload=b"X" * 10)
    h.expect(".", ack=1, sack=[(21, 31)])
    h.inject("P.", seq=21, ack=1, payload=b"Y" * 10)
    h.expect(".", ack=1, sack=[(21, 31)])
    h.inject("P.", seq=1, ack=1, payload=b"-" * 20)
    assert h.recv() == b"-" * 20 + b"X" * 10
    assert conn.rcvbuf is not None and conn.rcvbuf.drops["tcp_rcv_duplicate"] == 1


def test_overlapping_out_of_order_segments_merge() -> None:
    """An out-of-order segment overlapping an island's left part extends it (only its new bytes
    are taken); the SACK block grows to cover both."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=31, ack=1, payload=b"X" * 10)
    h.expect(".", ack=1, sack=[(31, 41)])
    h.inject("P.", seq=26, ack=1, payload=b"Z" * 10)
    h.expect(".", ack=1, sack=[(26, 41)])
    h.inject("P.", seq=1, ack=1, payload=b"W" * 25)
    h.expect(".", ack=41)
    assert h.recv() == b"W" * 25 + b"Z" * 5 + b"X" * 10


def test_out_of_order_islands_are_capped() -> None:
    """70 disjoint 10-byte islands with TcpConfig.ooo_max_segments = 64: the 6 that would open
    islands beyond the cap are refused (tcp_ooo_queue_full) — each island costs a buffer and a
    bisection step, so an attacker cannot make thousands."""
    h = Scenario()
    conn = h.passive_open()
    for i in range(70):
        h.inject("P.", seq=11 + 20 * i, ack=1, payload=b"q" * 10)
    h.sent()
    assert conn.rcvbuf is not None and conn.rcvbuf.drops["tcp_ooo_queue_full"] == 6
    assert conn.state == State.ESTABLISHED


def test_ooo_cap_is_configurable() -> None:
    """ooo_max_segments = 2: the third island is refused, and once the gap fills the two held
    islands are delivered with it."""
    h = Scenario(ooo_max_segments=2)
    conn = h.passive_open()
    for i in range(3):
        h.inject("P.", seq=11 + 20 * i, ack=1, payload=bytes([65 + i]) * 10)
    h.sent()
    assert conn.rcvbuf is not None and conn.rcvbuf.drops["tcp_ooo_queue_full"] == 1
    h.inject("P.", seq=1, ack=1, payload=b"0" * 10)
    h.inject("P.", seq=21, ack=1, payload=b"1" * 10)
    assert h.recv() == b"0" * 10 + b"A" * 10 + b"1" * 10 + b"B" * 10


def test_segment_filling_many_holes_at_once() -> None:
    """One large segment covering the hole at RCV.NXT and everything between five islands: all of
    it is delivered in order, with the islands' first copies kept; one cumulative ACK."""
    h = Scenario()
    h.passive_open()
    for i in range(5):
        h.inject("P.", seq=101 + 200 * i, ack=1, payload=b"i" * 100)
    h.sent()
    h.inject("P.", seq=1, ack=1, payload=b"b" * 1000)
    h.expect(".", ack=1001)
    assert h.recv() == (b"b" * 100 + b"i" * 100) * 5


def test_data_straddling_the_window_edge_is_trimmed() -> None:
    """A segment starting inside the window and running past its right edge: the part inside is
    taken, the rest trimmed and counted (tcp_rcv_beyond_window); the ACK shows the window full."""
    h = Scenario(rcvbuf=1000, window_scaling=False)
    conn = h.passive_open(options={"mss": 1460})
    h.inject("P.", seq=1, ack=1, payload=b"t" * 1400)
    h.expect_within(0.1, ".", ack=1001, win=0)
    assert conn.rcvbuf is not None and conn.rcvbuf.drops["tcp_rcv_beyond_window"] == 1
    assert h.recv() == b"t" * 1000


def test_one_byte_out_of_order_spray_stays_bounded() -> None:
    """A sender spraying 1,000 one-byte segments at every other position above a hole: at most 64
    islands are held (each SACKed), the rest are counted drops; filling the hole delivers exactly
    the held bytes in order and no more."""
    h = Scenario()
    conn = h.passive_open()
    for i in range(1000):
        h.inject("P.", seq=3 + 2 * i, ack=1, payload=bytes([i % 256]))
    h.sent()
    rb = conn.rcvbuf
    assert rb is not None and rb.drops["tcp_ooo_queue_full"] == 1000 - 64
    h.inject("P.", seq=1, ack=1, payload=b"\0\0")
    assert h.recv() == b"\0\0" + bytes([0])


def test_data_after_the_peers_fin_is_refused() -> None:
    """Bytes beyond a FIN that was already taken: nothing follows a FIN — counted
    (tcp_rcv_after_fin or an out-of-window drop) and never delivered."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("F.", seq=1, ack=1)
    h.expect(".", ack=2)
    h.inject("P.", seq=2, ack=1, payload=b"after fin")
    h.sent()
    assert h.recv() == b""
    assert conn.state == State.CLOSE_WAIT
