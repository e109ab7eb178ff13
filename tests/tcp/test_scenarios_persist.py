"""Scenarios: zero windows and the persist timer (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17) — probe
timing and backoff, the probe byte, windows reopening by ACK or by a bare window update, lost
window updates, a FIN behind a shut window, and the receiving side's zero window and SWS
avoidance (§3.8.6.2.2)."""

from __future__ import annotations

import pytest

from scenario import Scenario, State

MSS = 1448


def test_probe_backoff_is_capped_at_max_persist() -> None:
    """Probes back off exponentially from the RTO (0.3 s here: RTT 0.1 s) and the interval stops
    growing at TcpConfig.max_persist (1 s here): 0.3, 0.6, 1, 1, 1."""
    h = Scenario(max_persist=1.0)
    h.passive_open(rtt=0.1, win=0)
    h.send(b"p" * 100)
    for delay in (0.3, 0.6, 1.0, 1.0, 1.0):
        h.expect_within(2, ".", seq=1, payload=b"p", after=delay)
        h.inject(".", seq=1, ack=1, win=0)


def test_probe_interval_default_cap_is_60s() -> None:
    """With the defaults, the interval doubles up to 60 s (TcpConfig.max_persist) and stays there;
    every probe still carries the first unacknowledged byte."""
    h = Scenario()
    conn = h.passive_open(rtt=0.1, win=0)
    h.send(b"q" * 10)
    waits = []
    for _ in range(10):
        waits.append(round(h.expect_within(61, ".", seq=1, payload=b"q").elapsed, 6))
        h.inject(".", seq=1, ack=1, win=0)
    assert waits == [0.3, 0.6, 1.2, 2.4, 4.8, 9.6, 19.2, 38.4, 60.0, 60.0]
    assert conn.stats["zero_window_probes"] == 10


def test_bare_window_update_ends_persist() -> None:
    """A window update that acknowledges nothing new (SEG.ACK = SND.UNA, larger window) reopens
    sending at once; the persist timer is cancelled — no more probes."""
    h = Scenario()
    conn = h.passive_open(rtt=0.1, win=0)
    h.send(b"u" * 500)
    h.expect_nothing()
    h.inject(".", seq=1, ack=1, win=100, at=0.1)
    h.expect("P.", seq=1, payload_len=500)
    h.inject(".", seq=1, ack=501, win=100, at=0.2)
    h.expect_silence(30)
    assert conn.stats["zero_window_probes"] == 0


def test_lost_window_update_is_recovered_by_the_probe() -> None:
    """The peer's window-opening ACK is lost: our probe (after the RTO) makes the peer reply with
    its open window, and sending resumes from the probe byte's successor."""
    h = Scenario()
    h.passive_open(rtt=0.1, win=0)
    h.send(b"0123456789")
    h.expect_within(1, ".", seq=1, payload=b"0", after=0.3)
    h.inject(".", seq=1, ack=2, win=100)  # the peer took the byte and has room
    h.expect("P.", seq=2, payload=b"123456789")


def test_probe_accepted_then_window_shuts_again() -> None:
    """The peer takes each probe byte but still has no room: the next probe carries the next byte
    (SND.UNA moved), and — the window never opened — the backoff keeps growing."""
    h = Scenario()
    h.passive_open(rtt=0.1, win=0)
    h.send(b"abc")
    first = h.expect_within(1, ".", seq=1, payload=b"a", after=0.3)
    h.inject(".", seq=1, ack=2, win=0)
    second = h.expect_within(2, ".", seq=2, payload=b"b")
    h.inject(".", seq=1, ack=3, win=0)
    third = h.expect_within(4, "P.", seq=3, payload=b"c")  # the write's last byte: PSH
    assert first.elapsed < second.elapsed < third.elapsed


def test_window_reopening_resets_the_backoff() -> None:
    """Once the window has opened (persist_backoff = 0), a later zero window is probed from one
    RTO again, not from where the old backoff stopped."""
    h = Scenario()
    h.passive_open(rtt=0.1, win=0)
    h.send(b"x" * 10)
    h.expect_within(1, ".", seq=1, payload_len=1, after=0.3)
    h.inject(".", seq=1, ack=1, win=0)
    h.expect_within(1, ".", seq=1, payload_len=1, after=0.6)
    h.inject(".", seq=1, ack=1, win=100)
    h.expect("P.", seq=1, payload_len=10)
    h.inject(".", seq=1, ack=11, win=0)
    h.send(b"y" * 10)
    h.expect_nothing()
    probe = h.expect_within(2, ".", seq=11, payload=b"y")
    assert probe.elapsed == pytest.approx(h.conn.rtt.rto if h.conn else 0, abs=0.21)


def test_fin_behind_a_zero_window_waits_for_the_data() -> None:
    """close() with data queued behind a zero window: the FIN cannot go before the data; probes
    carry data bytes, and once the window opens the data goes with the FIN on its last segment."""
    h = Scenario()
    h.passive_open(rtt=0.1, win=0)
    h.send(b"tail")
    h.close()
    h.expect_within(1, ".", seq=1, payload=b"t", after=0.3)
    assert h.state == State.FIN_WAIT_1
    h.inject(".", seq=1, ack=1, win=100)
    h.expect("FP.", seq=1, payload=b"tail")
    h.inject(".", seq=1, ack=6, win=100)
    assert h.state == State.FIN_WAIT_2


def test_bare_fin_goes_out_at_zero_window() -> None:
    """A FIN with no data before it needs no window space for data: with nothing in flight it is
    sent even though the peer's window is 0 (RFC 9293 §3.10.4: the FIN goes "after all preceding
    SENDs"; a zero window would otherwise hold the close forever)."""
    h = Scenario()
    h.passive_open(win=0)
    h.close()
    h.expect("F.", seq=1, ack=1)
    h.inject(".", seq=1, ack=2, win=0)
    assert h.state == State.FIN_WAIT_2


def test_window_shrinking_to_zero_with_data_in_flight() -> None:
    """The peer shrinks its window to 0 with our data still unacknowledged (RFC 9293 §3.8.6
    discourages it, but it happens): no new data goes; the outstanding data is retransmitted by
    the RTO, not a probe, until it is acknowledged; then the persist timer takes over."""
    h = Scenario(nodelay=True)
    conn = h.passive_open(rtt=0.1)
    h.send(b"a" * 100)
    h.expect("P.", seq=1, payload_len=100)
    h.inject(".", seq=1, ack=1, win=0, at=0.15)
    h.send(b"b" * 100)
    h.expect_nothing()
    out = h.expect_within(2, seq=1)
    assert len(out.payload) >= 1
    h.inject(".", seq=1, ack=101, win=0)
    probe = h.expect_within(2, seq=101, payload=b"b")
    assert probe.elapsed > 0 and conn.state == State.ESTABLISHED


def test_zero_window_from_the_syn() -> None:
    """A SYN announcing window 0 (legal: RFC 9293 §3.8.6): nothing is sent until the peer opens
    its window; data queued meanwhile is probed for."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, win=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=1, win=0)
    h.accept()
    h.send(b"wait")
    h.expect_nothing()
    h.expect_within(2, ".", seq=1, payload=b"w")


def test_probes_do_not_count_as_retransmissions() -> None:
    """Probes are governed by the persist timer, not the RTO: many probes never exhaust
    TcpConfig.data_retries while the peer answers each (RFC 1122 §4.2.2.17: keep probing as long
    as the receiver answers)."""
    h = Scenario(max_persist=0.5, data_retries=3)
    conn = h.passive_open(rtt=0.1, win=0)
    h.send(b"k")
    for _ in range(8):
        h.expect_within(1, "P.", seq=1, payload=b"k")
        h.inject(".", seq=1, ack=1, win=0)
    assert conn.state == State.ESTABLISHED and conn.stats["zero_window_probes"] == 8


def test_our_zero_window_answers_every_probe() -> None:
    """Receiving side: our buffer is full (window 0). Each probe from the peer (a byte at
    RCV.NXT) is answered at once with <ACK=RCV.NXT, WIN=0>; none is taken."""
    h = Scenario(rcvbuf=MSS)
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, payload=b"f" * MSS)
    h.expect_within(0.1, ".", ack=1 + MSS, win=0)
    for t in (0.5, 1.5, 3.5):
        h.inject(".", seq=1 + MSS, ack=1, payload=b"g", at=t)
        h.expect(".", seq=1, ack=1 + MSS, win=0)
    assert conn.rcvbuf is not None and conn.rcvbuf.rcv_nxt == h.peer_isn + 1 + MSS


def test_receiver_sws_avoidance_withholds_tiny_window_updates() -> None:
    """§3.8.6.2.2: after a zero window, reads that open less than min(2·MSS, rcvbuf/2) (2896
    bytes here) send no window update — a tiny window would invite tiny segments; the read that
    crosses it sends one at once, announcing all the room there is."""
    h = Scenario(rcvbuf=4 * MSS)
    h.passive_open()
    for i in range(4):
        h.inject(".", seq=1 + i * MSS, ack=1, payload=b"h" * MSS)
    h.sent()
    assert h.recv(100) == b"h" * 100
    h.expect_nothing()
    h.recv(2700)
    h.expect_nothing()
    h.recv(200)
    h.expect(".", seq=1, ack=1 + 4 * MSS, win=3000)  # a 5792-byte buffer: no scaling (shift 0)


def test_window_edge_never_moves_left() -> None:
    """RFC 9293 §3.8.6 / RFC 7323 §2.4: the right edge we advertised never shrinks, even when the
    data that arrives fills the buffer faster than announced (the window field counts down)."""
    h = Scenario(rcvbuf=8192, window_scaling=False)
    h.passive_open(options={"mss": 1460})
    edges = []
    for i in range(4):
        h.inject(".", seq=1 + i * 1000, ack=1, payload=b"e" * 1000)
        h.advance(0.05)  # the delayed ACK
        for out in h.sent():
            edges.append(out.ack + out.win)
    assert len(edges) == 4 and edges == sorted(edges)


def test_zero_window_probe_beyond_rcv_nxt_is_not_taken() -> None:
    """A peer that probes with the byte after RCV.NXT (wrong, but seen) at our zero window: the
    byte is out of window — ACK <ACK=RCV.NXT, WIN=0>, not queued as out-of-order data."""
    h = Scenario(rcvbuf=MSS)
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, payload=b"f" * MSS)
    h.sent()
    h.inject(".", seq=2 + MSS, ack=1, payload=b"?", at=0.5)
    h.expect(".", ack=1 + MSS, win=0)
    assert conn.rcvbuf is not None and not conn.rcvbuf.has_ooo
