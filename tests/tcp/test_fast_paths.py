"""The performance paths of the TCP layer, checked against what they stand in for: segmentation
offload (TSO) output, ACKs for coalesced (GRO) segments, ACKs deferred to the end of a receive
burst, and header prediction, which must leave every byte on the wire as the full RFC 9293
§3.10.7.4 processing would."""

from __future__ import annotations

from typing import Any

from aiostack.drivers.base import Offloads
from aiostack.drivers.buffers import DEFAULT_HEADROOM, PacketPool
from aiostack.drivers.vnet import VIRTIO_NET_HDR_GSO_TCPV4
from aiostack.tcp.connection import Connection
from scenario import Scenario

MSS = 1448  # 1460 less the 12 bytes of the timestamp option


def _with_tso(h: Scenario, conn: Connection) -> None:
    """Give the scenario's interface what a TAP with TSO offers, after the handshake (whose frames
    the harness checks with full checksums), and the connection what the layer would have read
    from such an interface when it made it."""
    h.iface.offloads = Offloads(rx_csum=True, tx_csum=True, tso=True, gro=True)
    h.iface.large_pool = PacketPool(count=16, size=DEFAULT_HEADROOM + 14 + 65535 + 64, lazy=True)
    h.iface.gso_max = 65535 - 20 - 60
    conn.gso_max = h.iface.gso_max


def _take(h: Scenario) -> list[tuple[int, int, int, int, int]]:
    """(payload bytes, gso_type, gso_size, hdr_len, csum_start) of every frame sent, freed."""
    out = []
    for pkt in h.iface.tx:
        payload = len(pkt) - (pkt.hdr_len or 14 + 20 + 32)
        out.append((payload, pkt.gso_type, pkt.gso_size, pkt.hdr_len, pkt.csum_start))
        pkt.free()
    h.iface.tx.clear()
    return out


def test_tso_sends_whole_windows_as_one_segment_cut_at_the_mss() -> None:
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.05)
    _with_tso(h, conn)
    h.send(b"z" * 100 * MSS)
    # The initial window (RFC 6928: 10 segments) leaves as one 10-MSS segment for the device.
    assert _take(h) == [(10 * MSS, VIRTIO_NET_HDR_GSO_TCPV4, MSS, 14 + 20 + 32, 14 + 20)]
    # The ACK for all of it grows cwnd (slow start, RFC 3465's L = 2 SMSS): the whole new window
    # follows in segments the device cuts.
    h.inject(".", seq=1, ack=1 + 10 * MSS, at=0.1)
    sent = _take(h)
    assert sum(p for p, *_ in sent) == conn.cc.cwnd == 12 * MSS
    assert all(p % MSS == 0 and p <= h.iface.gso_max and gso == MSS for p, _, gso, _, _ in sent)


def test_the_layer_gives_connections_the_interfaces_gso_max() -> None:
    h = Scenario()
    h.iface.gso_max = 65000
    assert h.passive_open().gso_max == 65000


def test_tso_off_without_the_offload() -> None:
    h = Scenario(congestion="newreno")
    conn = h.passive_open(rtt=0.05)
    assert conn.gso_max == 0
    h.send(b"z" * 20 * MSS)
    sent = _take(h)
    assert len(sent) == 10 and all(p == MSS and gso_type == 0 for p, gso_type, *_ in sent)


def test_a_coalesced_segment_is_acked_at_once() -> None:
    """A segment longer than the MSS stands for several (GRO): ACKed at once, as Linux does for
    more than one full-sized segment (RFC 9293 §3.8.6.3's every-second-segment rule)."""
    h = Scenario()
    h.passive_open()
    h.pool = PacketPool(count=8, size=DEFAULT_HEADROOM + 8192)  # room for the coalesced frame
    h.inject("P.", seq=1, ack=1, payload=b"g" * (3 * MSS), at=1.0)
    h.expect(".", seq=1, ack=1 + 3 * MSS)


def test_one_full_segment_still_waits_for_a_second() -> None:
    h = Scenario()
    h.passive_open()
    h.inject(".", seq=1, ack=1, payload=b"g" * MSS, at=1.0)
    h.expect_nothing()
    h.expect_within(0.5, ".", seq=1, ack=1 + MSS, after=0.04)


def test_deferred_acks_wait_for_the_end_of_the_burst() -> None:
    """With ``defer_acks`` (what a reactor sets), the ACK owed after two full segments is sent
    by ``send_owed_acks`` at the end of the burst: one ACK for the whole burst."""
    h = Scenario()
    h.passive_open()
    h.tcp.defer_acks = True
    for i in range(4):
        h.inject(".", seq=1 + i * MSS, ack=1, payload=b"g" * MSS, at=1.0)
    h.expect_nothing()
    h.tcp.send_owed_acks(h.now)
    h.expect(".", seq=1, ack=1 + 4 * MSS)
    h.expect_nothing()


def test_a_reply_carries_the_deferred_ack() -> None:
    h = Scenario()
    h.passive_open()
    h.tcp.defer_acks = True
    h.inject(".", seq=1, ack=1, payload=b"g" * MSS, at=1.0)
    h.inject("P.", seq=1 + MSS, ack=1, payload=b"g" * MSS)
    assert h.recv() == b"g" * 2 * MSS
    h.send(b"reply")
    h.expect("P.", seq=1, ack=1 + 2 * MSS, payload=b"reply")
    h.tcp.send_owed_acks(h.now)
    h.expect_nothing()


def _conversation(h: Scenario) -> list[tuple[Any, ...]]:
    """Data both ways with window changes, a reordering, a duplicate, a window update and an
    ACK of new data riding on data: every segment the stack sends, in order."""
    wire: list[tuple[Any, ...]] = []

    def sent() -> None:
        for o in h.sent():
            wire.append((round(o.time, 6), o.flags, o.seq, o.ack, o.win, o.payload, sorted(o.options.items())))

    h.passive_open(rtt=0.02)
    seq = 1
    for i in range(12):
        n = MSS if i % 3 else 100
        h.inject("P." if i % 2 else ".", seq=seq, ack=1, payload=bytes([i]) * n, at=0.1 + i * 0.001)
        seq += n
        sent()
    h.recv(5000)
    h.send(b"r" * 5 * MSS)
    sent()
    h.inject(".", seq=seq, ack=1 + 2 * MSS, at=0.2)
    sent()
    h.inject(".", seq=seq + MSS, ack=1 + 2 * MSS, payload=b"x" * MSS, at=0.201)  # out of order
    sent()
    h.inject(".", seq=seq, ack=1 + 3 * MSS, payload=b"y" * MSS, at=0.202)  # fills the hole
    seq += 2 * MSS
    sent()
    h.inject(".", seq=seq, ack=1 + 3 * MSS, payload=b"w" * 10, at=0.203)
    h.inject(".", seq=seq, ack=1 + 3 * MSS, payload=b"w" * 10, at=0.204)  # a duplicate
    seq += 10
    sent()
    h.peer_win = 30000
    h.inject(".", seq=seq, ack=1 + 5 * MSS, at=0.21)  # everything acked, new window
    h.recv()
    h.send(b"s" * 3 * MSS)
    sent()
    h.inject("P.", seq=seq, ack=1 + 8 * MSS, payload=b"q" * 500, at=0.3)
    h.advance(1.0)
    sent()
    return wire


def test_header_prediction_sends_what_the_full_processing_sends() -> None:
    h = Scenario(congestion="cubic")
    fast = _conversation(h)
    hits = h.tcp.stats["header_predicted"]
    assert hits >= 10 and hits < h.conn.segs_in  # both paths were taken
    slow_h = Scenario(congestion="cubic", header_prediction=False)
    slow = _conversation(slow_h)
    assert slow_h.tcp.stats["header_predicted"] == 0
    assert len(fast) > 10
    assert fast == slow


def test_a_request_read_on_a_new_connection_sends_no_window_update_ahead_of_the_reply() -> None:
    """The SYN-ACK can only offer 64 KB (its window is never scaled, RFC 7323 §2.2); reading
    the first request leaves the advertised edge far behind the buffer's, but not because of
    this read: the peer is 64 KB from blocked, and learns the real window from the reply."""
    h = Scenario(rcvbuf=1 << 20)
    conn = h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"GET / HTTP/1.0\r\n\r\n")
    assert h.recv() == b"GET / HTTP/1.0\r\n\r\n"
    h.expect_nothing()
    h.send(b"HTTP/1.0 200 OK\r\n\r\n")
    reply = h.expect("P.", seq=1, ack=19, payload=b"HTTP/1.0 200 OK\r\n\r\n")
    assert reply.win << conn.rcv_wscale >= (1 << 20) - 64  # the whole buffer, at last
