"""Scenarios: sequence numbers wrapping at 2**32 (RFC 9293 §3.4: "all arithmetic dealing with
sequence numbers must be performed modulo 2**32") on every path — handshake, in-order and
out-of-order data, SACK blocks, retransmission and recovery, FIN, RST and challenge ACKs, window
edges, zero-window and keep-alive probes, ACK validation and SYN cookies. Each scenario puts the
wrap exactly where its path crosses it and checks the absolute numbers on the wire."""

from __future__ import annotations

import pytest

from scenario import MASK, Scenario, State

MSS = 1448
TOP = 2**32


@pytest.mark.parametrize("iss", [TOP - 1, TOP - 2, 0])
def test_handshake_with_iss_at_the_top(iss: int) -> None:
    """Our ISS at 2**32 − 1 (the SYN takes the last number: SND.NXT = 0), 2**32 − 2, or 0: the
    handshake and the first data segment carry the right absolute numbers."""
    h = Scenario(iss=iss, peer_isn=TOP - 1)
    conn = h.passive_open()
    h.send(b"data")
    out = h.expect("P.", seq=1, ack=1, payload=b"data")
    assert out.raw_seq == (iss + 1) % TOP and out.raw_ack == 0
    h.inject(".", seq=1, ack=5)
    assert conn.snd_una == (iss + 5) % TOP


def test_active_open_with_peer_isn_at_the_top() -> None:
    """The peer's ISN 2**32 − 1: our handshake ACK acknowledges 0."""
    h = Scenario(peer_isn=TOP - 1)
    h.connect()
    h.expect("S", seq=0)
    h.inject("S.", seq=0, ack=1, options={"mss": 1460})
    ack = h.expect(".", seq=1, ack=1)
    assert ack.raw_ack == 0


def test_out_of_order_reassembly_across_the_wrap() -> None:
    """Three segments spanning the wrap arrive 3, 2, 1: the SACK blocks straddle 2**32 and the
    final cumulative ACK is past it."""
    h = Scenario(peer_isn=TOP - 1500)
    h.passive_open(options={"mss": 1460, "sack_perm": True, "wscale": 7})
    data = bytes(range(256)) * 12  # 3072 bytes
    h.inject("P.", seq=2001, ack=1, payload=data[2000:])
    h.expect(".", ack=1, sack=[(2001, 3073)])
    h.inject(".", seq=1001, ack=1, payload=data[1000:2000])
    out = h.expect(".", ack=1, sack=[(1001, 3073)])
    assert out.options["sack"][0][0] == (TOP - 1500 + 1001) % TOP  # above the wrap
    h.inject(".", seq=1, ack=1, payload=data[:1000])
    final = h.expect(".", ack=3073)
    assert final.raw_ack == (TOP - 1500 + 3073) % TOP
    assert h.recv() == data


def test_sack_blocks_straddling_the_wrap_drive_recovery() -> None:
    """Our data crosses the wrap; the peer SACKs segments 2..5 (a block from below to above
    2**32): recovery retransmits only segment 1, whose numbers sit below the wrap."""
    h = Scenario(iss=TOP - 3000)
    conn = h.passive_open(rtt=0.05)
    h.send(b"w" * 10 * MSS)
    assert len(h.sent()) == 10
    for i in range(3, 6):
        sack = {"ts": (h.peer_ts(), h.last_tsval), "sack": [(1 + MSS, 1 + i * MSS)]}
        h.inject(".", seq=1, ack=1, options=sack, at=0.1)
    out = h.sent()
    assert [o.seq for o in out] == [1] and out[0].raw_seq == TOP - 2999
    assert conn.scoreboard.sacked_bytes == 4 * MSS


def test_rto_retransmission_across_the_wrap() -> None:
    """A segment spanning 2**32 is lost; the RTO resends it with the same absolute SEQ, and the
    ACK beyond the wrap clears it."""
    h = Scenario(iss=TOP - 700)
    conn = h.passive_open(rtt=0.1)
    h.send(b"r" * 1000)
    first = h.expect("P.", seq=1, payload_len=1000)
    again = h.expect_within(2, "P.", seq=1, payload_len=1000)
    assert again.raw_seq == first.raw_seq == TOP - 699
    h.inject(".", seq=1, ack=1001)
    assert conn.snd_una == 301 and not conn._flight()


def test_fin_on_the_last_sequence_number() -> None:
    """Our FIN takes sequence number 2**32 − 1; the peer's ACK of it is 0 and closes FIN-WAIT-1."""
    h = Scenario(iss=TOP - 11)
    h.passive_open()
    h.send(b"123456789")
    h.expect("P.", seq=1, payload=b"123456789")
    h.close()
    fin = h.expect("F.", seq=10)
    assert fin.raw_seq == TOP - 1
    h.inject(".", seq=1, ack=11)
    assert h.state == State.FIN_WAIT_2


def test_peer_fin_on_the_last_sequence_number() -> None:
    """The peer's FIN at 2**32 − 1: we acknowledge 0 and move to CLOSE-WAIT."""
    h = Scenario(peer_isn=TOP - 6)
    h.passive_open()
    h.inject("FP.", seq=1, ack=1, payload=b"abcd")
    out = h.expect(".", ack=6)
    assert out.raw_ack == 0 and h.state == State.CLOSE_WAIT
    assert h.recv() == b"abcd"


def test_exact_rst_after_the_wrap_resets() -> None:
    """RCV.NXT has wrapped to a small number: an RST at exactly that number resets."""
    h = Scenario(peer_isn=TOP - 3)
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"wrap!")
    assert conn.rcvbuf is not None and conn.rcvbuf.rcv_nxt == 3
    h.inject("R", seq=6)
    assert conn.state == State.CLOSED


def test_rst_just_below_the_wrapped_rcv_nxt_is_out_of_window() -> None:
    """An RST at 2**32 − 1 when RCV.NXT is 3 is below the window (modular compare): dropped
    silently, not a challenge ACK (naive integer compare would put it far inside the window)."""
    h = Scenario(peer_isn=TOP - 3)
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"wrap!")
    h.expect_within(0.1, ".", ack=6)
    h.inject("R", seq=3)
    h.expect_nothing()
    assert conn.state == State.ESTABLISHED and conn.drops["tcp_rst_out_of_window"] == 1


def test_in_window_rst_across_the_wrap_gets_challenge_ack() -> None:
    """RCV.NXT just below 2**32, the RST 1000 above it (wrapped): in window → challenge ACK."""
    h = Scenario(peer_isn=TOP - 100)
    conn = h.passive_open()
    h.inject("R", seq=1000)
    out = h.expect(".", ack=1)
    assert out.raw_ack == TOP - 99 and conn.state == State.ESTABLISHED


def test_receive_window_edge_across_the_wrap() -> None:
    """Our window's right edge lies past 2**32: a segment ending at the edge is accepted, one
    starting at the edge is not (ACK and drop)."""
    h = Scenario(peer_isn=TOP - 2000, rcvbuf=4096, window_scaling=False)
    conn = h.passive_open(options={"mss": 1460})
    h.inject(".", seq=1, ack=1, payload=b"a" * 1000)
    h.expect_within(0.1, ".", ack=1001, win=3096)
    for off in range(0, 3096, 1460):  # ends exactly at the edge (wrapped)
        h.inject(".", seq=1001 + off, ack=1, payload=b"b" * min(1460, 3096 - off))
    h.inject(".", seq=4097, ack=1, payload=b"c")  # one past: outside a zero window
    outs = h.sent()
    assert [(o.ack, o.win) for o in outs] == [(3921, 176), (4097, 0)]  # the second: the refused byte
    assert conn.rcvbuf is not None and conn.rcvbuf.rcv_nxt == (TOP - 2000 + 4097) % TOP


def test_zero_window_probe_byte_at_the_wrap() -> None:
    """Our persist probe's byte is the last sequence number: SEQ 2**32 − 1."""
    h = Scenario(iss=TOP - 2)
    h.passive_open(rtt=0.1, win=0)
    h.send(b"zz")
    probe = h.expect_within(1, ".", seq=1, payload=b"z", after=0.3)
    assert probe.raw_seq == TOP - 1
    h.inject(".", seq=1, ack=2, win=0)
    probe2 = h.expect_within(2, "P.", seq=2, payload=b"z")
    assert probe2.raw_seq == 0


def test_keepalive_probe_when_snd_nxt_is_zero() -> None:
    """SND.NXT = 0 after the wrap: the keep-alive probe's SEQ = SND.NXT − 1 = 2**32 − 1."""
    h = Scenario(iss=TOP - 1, keepalive_idle=5.0)
    conn = h.passive_open()
    assert conn.snd_nxt == 0
    conn.keepalive = True
    conn._arm_keepalive(h.now)
    probe = h.expect_within(10, ".", seq=0, payload_len=0, after=5.0)
    assert probe.raw_seq == TOP - 1


def test_ack_validation_lower_bound_across_the_wrap() -> None:
    """SND.UNA just above 0 and MAX.SND.WND 40000: the lower bound SND.UNA − MAX.SND.WND lies
    below the wrap. An ACK at exactly it is acceptable; one below it is not (RFC 5961 §5.2)."""
    h = Scenario(iss=TOP - 10_000)
    h.passive_open(options={"mss": 1460, "ts": (0, 0)}, win=40_000)
    h.peer_win = 40_000  # MAX.SND.WND stays 40000
    h.send(b"x" * 14_480)  # the initial window: ten segments of 1448
    h.sent()
    h.inject(".", seq=1, ack=14_481)
    assert h.conn is not None and h.conn.snd_una == 4_481  # past the wrap
    h.inject("P.", seq=1, ack=14_481 - 40_001, payload=b"no")
    h.expect(".", ack=1)
    h.inject("P.", seq=1, ack=14_481 - 40_000, payload=b"yes")
    assert h.recv() == b"yes"


def test_syn_cookie_with_isn_at_the_top() -> None:
    """A SYN cookie handshake whose client ISN is 2**32 − 1 (its ACK's SEQ wraps to 0)."""
    h = Scenario(peer_isn=TOP - 1, backlog=1)
    h.listen(backlog=1)
    h.inject("S", seq=0, options={"mss": 1460}, sport=40000)  # fills the SYN queue
    h.sent()
    h.inject("S", seq=0, options={"mss": 1460})
    cookie = h.expect("S.", ack=1)
    assert cookie.raw_ack == 0 and h.tcp.stats["syncookies_sent"] == 1
    h.inject(".", seq=0, ack=(cookie.raw_seq + 1) & MASK, raw=True)  # SEQ = ISN + 1 = 0
    assert h.tcp.stats["syncookies_accepted"] == 1


def test_bulk_transfer_through_the_wrap_both_ways() -> None:
    """200 KB each way with both ISNs 100 KB below the wrap: every byte arrives once and in
    order, every ACK moves SND.UNA forward across 2**32."""
    h = Scenario(iss=TOP - 100_000, peer_isn=TOP - 100_000, nodelay=True)
    conn = h.passive_open()
    out_data = bytes(i % 251 for i in range(200_000))
    h.send(out_data)
    got = b""
    for _ in range(2000):
        sent = h.sent()
        if not sent:
            break
        for o in sent:
            got += o.payload
        h.inject(".", seq=1, ack=(sent[-1].seq + len(sent[-1].payload)) & MASK)
    assert got == out_data and conn.snd_una == (TOP - 100_000 + 1 + 200_000) % TOP
    in_data = bytes(i % 241 for i in range(200_000))
    received = b""
    for off in range(0, len(in_data), MSS):
        h.inject(".", seq=1 + off, ack=1 + 200_000, payload=in_data[off : off + MSS])
        received += h.recv()
    assert received == in_data
    assert conn.rcvbuf is not None and conn.rcvbuf.rcv_nxt == (TOP - 100_000 + 1 + 200_000) % TOP


@pytest.mark.parametrize("iss", [1_000_000, 2**31 - 100_000, 2**31 + 1000, TOP - 3000])
def test_sack_loss_detection_is_the_same_for_every_iss(iss: int) -> None:
    """Three SACKed segments above a hole, one RTT after sending: RACK (RFC 8985) marks the hole
    lost and it is retransmitted at once, with no reordering seen — for an ISS in either half of
    the sequence space. (Bug fixed here: for every ISS ≥ 2**31, RACK's first record offset was
    negative, below its initial FACK of 0, so the first SACK "showed reordering", the reordering
    window grew and the retransmission waited for the reordering timer.)"""
    h = Scenario(iss=iss)
    conn = h.passive_open(rtt=0.05)
    h.send(b"w" * 10 * MSS)
    assert len(h.sent()) == 10
    for i in range(3, 6):
        sack = {"ts": (h.peer_ts(), h.last_tsval), "sack": [(1 + MSS, 1 + i * MSS)]}
        h.inject(".", seq=1, ack=1, options=sack, at=0.1)
    h.expect(".", seq=1, payload_len=MSS)
    h.expect_nothing()
    assert not conn.rack.reordering_seen and conn.in_recovery
