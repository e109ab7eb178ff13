"""Scenarios: data transfer — initial window and slow start (RFC 6928, RFC 5681), delayed ACKs
(RFC 9293 §3.8.6.3, RFC 5681 §4.2), Nagle (RFC 9293 §3.7.4), window scaling (RFC 7323 §2),
our receive window (RFC 9293 §3.8.6.2.2), ACKs of unsent data (RFC 9293 §3.10.7.4, RFC 5961
§5.2) and sequence-number wraparound (RFC 9293 §3.4)."""

from __future__ import annotations

import pytest

from scenario import Scenario, State

MSS = 1448  # 1460 less the 12 bytes of the timestamp option


def test_initial_window_then_slow_start() -> None:
    """RFC 6928: ten segments go out at once; RFC 5681 §3.1 (with RFC 3465 byte counting): an ACK
    for two segments grows cwnd by two, so four segments follow it (two replaced, two new)."""
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.05)
    h.send(b"z" * 30 * MSS)
    for i in range(10):
        h.expect(".", seq=1 + i * MSS, ack=1, payload_len=MSS)
    h.expect_nothing()
    h.inject(".", seq=1, ack=1 + 2 * MSS, at=0.1)
    for i in range(10, 14):
        h.expect(".", seq=1 + i * MSS, payload_len=MSS)
    h.expect_nothing()
    assert conn.cc.cwnd == 12 * MSS


def test_delayed_ack_for_a_small_segment_is_40ms() -> None:
    """RFC 9293 §3.8.6.3: an ACK may be delayed (< 0.5 s); the stack uses Linux's 40 ms."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"ping", at=1.0)
    h.expect_nothing()
    h.expect_within(0.5, ".", seq=1, ack=5, after=0.04)
    h.expect_silence(2)  # one ACK only


def test_delayed_ack_timeout_is_configurable() -> None:
    """TcpConfig.delack_timeout = 0.2 s (the RFC 1122 §4.2.3.2 classic)."""
    h = Scenario(delack_timeout=0.2)
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"ping")
    h.expect_within(0.5, ".", ack=5, after=0.2)


def test_every_second_full_segment_is_acked_at_once() -> None:
    """RFC 9293 §3.8.6.3 / RFC 5681 §4.2: an ACK SHOULD be sent for at least every second
    full-sized segment: the first waits, the second is acknowledged at once."""
    h = Scenario()
    h.passive_open()
    h.inject(".", seq=1, ack=1, payload=b"a" * MSS)
    h.expect_nothing()
    h.inject(".", seq=1 + MSS, ack=1, payload=b"b" * MSS, at=0.01)
    h.expect(".", seq=1, ack=1 + 2 * MSS)
    h.inject(".", seq=1 + 2 * MSS, ack=1, payload=b"c" * MSS, at=0.02)
    h.expect_within(0.1, ".", ack=1 + 3 * MSS, after=0.04)  # the odd one out: delayed again


def test_out_of_order_data_is_acked_at_once_with_sack() -> None:
    """RFC 5681 §4.2: out-of-order data gets an immediate duplicate ACK, and RFC 2018 §4 puts
    the block just received first; filling the hole gets an immediate ACK too."""
    h = Scenario()
    h.passive_open()
    h.inject(".", seq=1 + MSS, ack=1, payload=b"b" * MSS)
    h.expect(".", seq=1, ack=1, sack=[(1 + MSS, 1 + 2 * MSS)])
    h.inject(".", seq=1 + 3 * MSS, ack=1, payload=b"d" * MSS)
    h.expect(".", ack=1, sack=[(1 + 3 * MSS, 1 + 4 * MSS), (1 + MSS, 1 + 2 * MSS)])
    h.inject(".", seq=1, ack=1, payload=b"a" * MSS)
    h.expect(".", ack=1 + 2 * MSS, sack=[(1 + 3 * MSS, 1 + 4 * MSS)])
    h.inject(".", seq=1 + 2 * MSS, ack=1, payload=b"c" * MSS)
    out = h.expect(".", ack=1 + 4 * MSS)
    assert "sack" not in out.options
    assert h.recv() == b"a" * MSS + b"b" * MSS + b"c" * MSS + b"d" * MSS


def test_duplicate_data_is_acked_at_once() -> None:
    """RFC 9293 §3.10.7.4 first: an old (already received) segment is not acceptable; it is
    answered with <SEQ=SND.NXT><ACK=RCV.NXT> at once (the peer lost our ACK)."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"hello")
    h.expect_within(0.1, ".", ack=6)
    h.inject("P.", seq=1, ack=1, payload=b"hello", at=1.0)
    h.expect(".", seq=1, ack=6)
    assert h.recv() == b"hello"


def test_nagle_holds_small_writes_while_data_is_unacked() -> None:
    """RFC 9293 §3.7.4 (Nagle): a small segment goes out only when nothing is unacknowledged;
    later small writes are coalesced until the ACK comes."""
    h = Scenario()
    h.passive_open()
    h.send(b"a")
    h.expect("P.", seq=1, payload=b"a")
    h.send(b"b")
    h.send(b"c")
    h.expect_silence(0.1)
    h.inject(".", seq=1, ack=2)
    h.expect("P.", seq=2, payload=b"bc")
    h.expect_nothing()


def test_nagle_does_not_hold_full_segments() -> None:
    """Nagle delays only the less-than-full tail: full segments go out at once."""
    h = Scenario()
    h.passive_open()
    h.send(b"a")
    h.expect("P.", seq=1, payload_len=1)
    h.send(b"x" * 3000)
    h.expect(".", seq=2, payload_len=MSS)
    h.expect(".", seq=2 + MSS, payload_len=MSS)
    h.expect_nothing()  # the 104-byte tail waits
    h.inject(".", seq=1, ack=2 + 2 * MSS)
    h.expect("P.", seq=2 + 2 * MSS, payload_len=3000 - 2 * MSS)


def test_nodelay_sends_small_writes_at_once() -> None:
    """TCP_NODELAY (conn.nodelay): Nagle off, every write is sent at once."""
    h = Scenario()
    conn = h.passive_open()
    conn.nodelay = True
    for i, chunk in enumerate([b"a", b"b", b"c"]):
        h.send(chunk)
        h.expect("P.", seq=1 + i, payload=chunk)


def test_nodelay_from_config() -> None:
    """TcpConfig.nodelay sets the default for new connections."""
    h = Scenario(nodelay=True)
    h.passive_open()
    h.send(b"a")
    h.send(b"b")
    h.expect("P.", seq=1, payload=b"a")
    h.expect("P.", seq=2, payload=b"b")


def test_peer_window_scale_is_honoured() -> None:
    """RFC 7323 §2.3: the peer's window field is shifted by its scale (7): a field of 34 allows
    4352 bytes — three full segments; the 8 bytes left are not worth a segment (sender SWS
    avoidance, RFC 9293 §3.8.6.2.1) while data is in flight."""
    h = Scenario()
    conn = h.passive_open(win=34)
    assert conn.snd_wnd == 34 << 7
    h.send(b"w" * 10 * MSS)
    for i in range(3):
        h.expect(".", seq=1 + i * MSS, payload_len=MSS)
    h.expect_nothing()
    h.inject(".", seq=1, ack=1 + 3 * MSS, win=34)
    for i in range(3, 6):
        h.expect(".", seq=1 + i * MSS, payload_len=MSS)
    h.expect_nothing()


def test_our_window_is_scaled_and_shrinks_as_data_waits() -> None:
    """Our window (RFC 9293 §3.8.6.2.2): with an 8 KiB buffer no scale is needed (wscale 0);
    unread data reduces it byte for byte, and the right edge never moves left."""
    h = Scenario(rcvbuf=8192)
    conn = h.passive_open()
    assert conn.rcv_wscale == 0
    h.inject(".", seq=1, ack=1, payload=b"a" * MSS)
    h.inject(".", seq=1 + MSS, ack=1, payload=b"b" * MSS)
    h.expect(".", ack=1 + 2 * MSS, win=8192 - 2 * MSS)
    assert h.recv(10) == b"a" * 10  # a small read: the window is not re-advertised yet
    h.expect_nothing()


def test_receiver_zero_window_probe_and_window_update() -> None:
    """We fill up: window 0. The peer's zero-window probe is answered with an ACK at once (RFC
    9293 §3.8.6.1, §3.10.7.4: not acceptable with RCV.WND = 0) and not accepted; once the
    application reads, a window update goes out (RFC 9293 §3.8.6.2.2)."""
    h = Scenario(rcvbuf=4096)
    conn = h.passive_open()
    h.inject(".", seq=1, ack=1, payload=b"a" * MSS)
    h.inject(".", seq=1 + MSS, ack=1, payload=b"b" * MSS)
    h.expect(".", ack=1 + 2 * MSS, win=4096 - 2 * MSS)
    h.inject(".", seq=1 + 2 * MSS, ack=1, payload=b"c" * (4096 - 2 * MSS))
    h.expect_within(0.1, ".", ack=4097, win=0, after=0.04)
    h.inject(".", seq=4097, ack=1, payload=b"d", at=0.5)  # zero-window probe
    h.expect(".", seq=1, ack=4097, win=0)
    assert h.recv(4096) == b"a" * MSS + b"b" * MSS + b"c" * (4096 - 2 * MSS)
    h.expect(".", seq=1, ack=4097, win=4096)
    h.inject(".", seq=4097, ack=1, payload=b"d")
    assert conn.readable and h.recv() == b"d"


def test_ack_of_unsent_data_is_acked_and_dropped() -> None:
    """RFC 9293 §3.10.7.4 fifth (RFC 5961 §5.2): SEG.ACK > SND.NXT acknowledges something not
    yet sent: send an ACK and drop the segment, data included."""
    h = Scenario()
    conn = h.passive_open()
    h.send(b"abc")
    h.expect("P.", seq=1, payload_len=3)
    h.inject("P.", seq=1, ack=1000, payload=b"evil")
    h.expect(".", seq=4, ack=1)
    with pytest.raises(BlockingIOError):
        h.recv()
    assert conn.snd_una == h.iss + 1  # nothing acknowledged
    h.inject(".", seq=1, ack=4)
    assert conn.snd_una == h.iss + 4


def test_push_flag_on_the_last_segment_of_a_write() -> None:
    """PSH marks the segment that empties the send buffer (RFC 9293 §3.9.1.2)."""
    h = Scenario()
    h.passive_open()
    h.send(b"p" * 2 * MSS)
    h.expect(".", seq=1, payload_len=MSS)
    h.expect("P.", seq=1 + MSS, payload_len=MSS)


def test_fin_after_data_and_eof() -> None:
    """Data then FIN from the peer: the FIN is acknowledged at once (RFC 9293 §3.10.7.4 eighth),
    recv returns the data then b"" (end of stream), and we are in CLOSE-WAIT."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("FP.", seq=1, ack=1, payload=b"bye")
    h.expect(".", seq=1, ack=5)
    assert conn.state == State.CLOSE_WAIT
    assert h.recv() == b"bye"
    assert h.recv() == b""


def test_sequence_numbers_wrap_around() -> None:
    """RFC 9293 §3.4: sequence numbers are modulo 2**32. Both ISNs sit just below the wrap and
    data crosses it in both directions."""
    h = Scenario(iss=2**32 - 1000, peer_isn=2**32 - 2000)
    conn = h.passive_open()
    data = bytes(range(256)) * 12  # 3072 bytes
    h.send(data)
    first = h.expect(".", seq=1, payload_len=MSS)
    second = h.expect(".", seq=1 + MSS, payload_len=MSS)
    assert first.raw_seq == 2**32 - 999 and second.raw_seq == (2**32 - 999 + MSS) % 2**32  # wrapped
    h.inject(".", seq=1, ack=1 + 2 * MSS)
    h.expect("P.", seq=1 + 2 * MSS, payload_len=len(data) - 2 * MSS, payload=data[2 * MSS :])
    h.inject(".", seq=1, ack=1 + len(data))
    assert conn.snd_una == (h.iss + 1 + len(data)) % 2**32 and conn.snd_una < 3000
    incoming = bytes(reversed(data))
    for off in range(0, len(incoming), 1000):
        h.inject("P.", seq=1 + off, ack=1 + len(data), payload=incoming[off : off + 1000])
    out = h.expect_within(0.1, ".", after=0.04)  # small segments: one delayed ACK
    assert out.ack == 1 + len(incoming) and out.raw_ack == (2**32 - 1999 + len(incoming)) % 2**32
    assert h.recv() == incoming


def test_send_buffer_limits_writes() -> None:
    """TcpConfig.sndbuf bounds what send() accepts (EAGAIN-style partial write)."""
    h = Scenario(sndbuf=4000)
    conn = h.passive_open()
    assert h.send(b"q" * 10000) == 4000
    assert h.send(b"q") == 0 and not conn.writable
    h.sent()
    h.inject(".", seq=1, ack=1 + MSS)
    assert conn.writable and h.send(b"r" * 5000) == MSS


def test_fin_arriving_out_of_order() -> None:
    """A FIN that arrives before the data preceding it is held (RFC 9293 §3.10.7.4 eighth: it
    counts once RCV.NXT reaches it); the segment that fills the gap completes it: ACK of the
    FIN, CLOSE-WAIT, then EOF for the application."""
    h = Scenario()
    conn = h.passive_open()
    h.inject("FP.", seq=101, ack=1, payload=b"b" * 100)
    h.expect(".", ack=1, sack=[(101, 201)])  # out of order: immediate duplicate ACK
    assert conn.state == State.ESTABLISHED
    h.inject("P.", seq=1, ack=1, payload=b"a" * 100)
    h.expect(".", ack=202)
    assert conn.state == State.CLOSE_WAIT
    assert h.recv() == b"a" * 100 + b"b" * 100
    assert h.recv() == b""
    h.close()
    h.expect("F.", seq=1, ack=202)
    assert conn.state == State.LAST_ACK
