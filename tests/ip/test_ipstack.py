"""The sans-I/O network layer on a virtual clock: frames crafted with dpkt in, frames out."""

from __future__ import annotations

import dpkt
import pytest

from aiostack.ip import ipv4
from framecraft import (
    BCAST_MAC,
    PEER_IP,
    PEER_MAC,
    STACK_IP,
    STACK_MAC,
    Harness,
    arp_frame,
    checksum_ok,
    eth,
    fragments,
    icmp_echo_frame,
    ip4,
    parse,
    udp_frame,
)


def test_gratuitous_arp_at_start() -> None:
    h = Harness()
    h.ip.start(h.now)
    (frame,) = h.sent()
    e = parse(frame)
    assert e.dst == BCAST_MAC and e.type == 0x0806
    a = e.data
    assert a.op == dpkt.arp.ARP_OP_REQUEST
    assert a.spa == a.tpa
    assert ipv4.ntoa(int.from_bytes(a.spa, "big")) == STACK_IP
    assert len(frame) >= 60


def test_arp_request_for_us_gets_reply_and_teaches_sender() -> None:
    h = Harness()
    (frame,) = h.feed(arp_frame(dpkt.arp.ARP_OP_REQUEST))
    e = parse(frame)
    assert e.dst == PEER_MAC and e.src == STACK_MAC
    assert e.data.op == dpkt.arp.ARP_OP_REPLY
    assert e.data.sha == STACK_MAC and e.data.tha == PEER_MAC
    assert h.iface.arp.lookup(ipv4.aton(PEER_IP), h.now) == PEER_MAC


def test_arp_for_someone_else_is_ignored_and_counted() -> None:
    h = Harness()
    assert h.feed(arp_frame(dpkt.arp.ARP_OP_REQUEST, tpa="10.0.0.77")) == []
    assert h.ip.drops["arp_not_for_us"] == 1
    assert h.iface.arp.lookup(ipv4.aton(PEER_IP), h.now) is None  # not created (RFC 826 merge)


def test_send_waits_for_arp_then_flushes_queue() -> None:
    h = Harness()
    ep = h.udp_bind(4000)
    hop = h.sendto(ep, b"hello")
    assert hop == ipv4.aton(PEER_IP)
    (req,) = h.sent()
    e = parse(req)
    assert e.dst == BCAST_MAC and e.data.op == dpkt.arp.ARP_OP_REQUEST
    assert e.data.tpa == bytes(map(int, PEER_IP.split(".")))
    frames = h.feed(arp_frame(dpkt.arp.ARP_OP_REPLY, dst=STACK_MAC, tha=STACK_MAC))
    assert len(frames) == 1
    e = parse(frames[0])
    assert e.dst == PEER_MAC
    assert e.data.data.data == b"hello"
    assert h.ip.take_arp_events() == [(ipv4.aton(PEER_IP), True)]


def test_arp_failure_drops_counts_and_reports() -> None:
    h = Harness()
    ep = h.udp_bind(4000)
    for i in range(3):
        h.sendto(ep, b"x%d" % i)
    requests = len(h.sent())
    for _ in range(5):
        requests += len(h.advance(1.0))
    assert requests == 3  # RFC 1122: a bounded number of retries
    assert h.ip.drops["arp_unresolved"] == 3
    assert h.ip.take_arp_events() == [(ipv4.aton(PEER_IP), False)]
    assert h.pool.available == h.pool.count


def test_arp_queue_is_bounded() -> None:
    h = Harness()
    ep = h.udp_bind(4000)
    for _ in range(100):
        h.sendto(ep, b"x")
    assert h.ip.drops["arp_queue_full"] == 100 - h.iface.arp.queue_limit


def test_icmp_echo_reply() -> None:
    h = Harness()
    h.learn_peer()
    frames = h.feed(icmp_echo_frame(b"abc" * 10, ident=7, seq=9))
    (frame,) = frames
    ip = parse(frame).data
    assert checksum_ok(ip)
    assert ip.src == bytes([10, 0, 0, 2]) and ip.dst == bytes([10, 0, 0, 1])
    icmp = ip.data
    assert icmp.type == 0
    assert icmp.data.id == 7 and icmp.data.seq == 9 and icmp.data.data == b"abc" * 10
    raw = bytes(icmp)
    assert dpkt.in_cksum(raw) == 0


def test_large_ping_is_reassembled_and_reply_fragmented() -> None:
    h = Harness()
    h.learn_peer()
    echo = dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=1, seq=1, data=bytes(range(256)) * 16))
    whole = ip4(echo, proto=1, ident=77)
    out: list[bytes] = []
    for frag in fragments(whole, 1480):
        out += h.feed(eth(frag))
    assert len(out) == 3  # 4104 bytes of ICMP in 1480-byte pieces
    payload = b""
    for f in out:
        ip = parse(f).data
        assert checksum_ok(ip)
        payload += bytes(ip.data)
    reply = dpkt.icmp.ICMP(payload)
    assert reply.type == 0 and reply.data.data == bytes(range(256)) * 16


def test_echo_to_broadcast_is_ignored() -> None:
    h = Harness()
    assert h.feed(icmp_echo_frame(dst="10.0.0.255", dst_mac=BCAST_MAC)) == []
    assert h.ip.drops["icmp_echo_broadcast_ignored"] == 1


def test_udp_delivery_and_closed_port() -> None:
    h = Harness()
    h.learn_peer()
    ep = h.udp_bind(7)
    assert h.feed(udp_frame(b"data", dport=7)) == []
    assert ep.rx.popleft() == (b"data", (ipv4.aton(PEER_IP), 5000))
    assert ep in h.ip.take_ready()
    (err,) = h.feed(udp_frame(b"data", dport=9))
    icmp = parse(err).data.data
    assert icmp.type == 3 and icmp.code == 3
    quoted = dpkt.ip.IP(bytes(icmp.data.data))
    assert quoted.data.dport == 9
    assert h.ip.drops["udp_no_port"] == 1


def test_icmp_errors_are_rate_limited() -> None:
    h = Harness(icmp_rate=10.0, icmp_burst=5.0)
    h.learn_peer()
    sent = sum(len(h.feed(udp_frame(b"x", dport=9))) for _ in range(20))
    assert sent == 5
    assert h.ip.stats["icmp_error_rate_limited"] == 15
    h.advance(1.0)
    assert len(h.feed(udp_frame(b"x", dport=9))) == 1


def test_udp_bad_checksum_and_length_dropped() -> None:
    h = Harness()
    ep = h.udp_bind(7)
    frame = bytearray(udp_frame(b"payload", dport=7))
    frame[-1] ^= 0xFF
    h.feed(bytes(frame))
    assert h.ip.drops["udp_bad_checksum"] == 1
    u = dpkt.udp.UDP(sport=1, dport=7, data=b"abc")
    u.ulen = 200
    h.feed(eth(ip4(bytes(u), proto=17)))
    assert h.ip.drops["udp_bad_length"] == 1
    assert not ep.rx


def test_udp_zero_checksum_accepted() -> None:
    h = Harness()
    ep = h.udp_bind(7)
    raw = bytearray(bytes(dpkt.udp.UDP(sport=1, dport=7, ulen=11, data=b"abc")))
    raw[6:8] = b"\0\0"
    h.feed(eth(ip4(bytes(raw), proto=17)))
    assert ep.rx.popleft()[0] == b"abc"


def test_udp_send_large_datagram_fragments() -> None:
    h = Harness(mtu=1500)
    h.learn_peer()
    ep = h.udp_bind(4000)
    data = bytes(i & 0xFF for i in range(8000))
    assert h.sendto(ep, data) == 0
    frames = h.sent()
    assert len(frames) == 6
    pieces = []
    for f in frames:
        ip = parse(f).data
        assert checksum_ok(ip)
        assert len(bytes(ip)) <= 1500
        pieces.append((ip.offset, bytes(ip)[20:], ip.mf))
    pieces.sort()
    blob = b"".join(p[1] for p in pieces)
    assert not pieces[-1][2] and all(p[2] for p in pieces[:-1])
    u = dpkt.udp.UDP(blob)
    assert u.data == data and u.ulen == 8008


def test_fragmented_udp_reassembled() -> None:
    h = Harness()
    ep = h.udp_bind(7)
    u = dpkt.udp.UDP(sport=5, dport=7, data=b"z" * 3000)
    u.ulen = 3008
    whole = ip4(u, proto=17, ident=9)
    for frag in reversed(fragments(whole, 1480)):
        h.feed(eth(frag))
    assert ep.rx.popleft()[0] == b"z" * 3000
    assert h.ip.stats["ipv4_reassembled"] == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[: 14 + 10], "ipv4_truncated"),
        (lambda b: b[:14] + bytes([0x65]) + b[15:], "ipv4_bad_version"),
        (lambda b: b[:14] + bytes([0x44]) + b[15:], "ipv4_bad_ihl"),
        (lambda b: b[:24] + bytes([b[24] ^ 1]) + b[25:], "ipv4_bad_checksum"),
    ],
)
def test_ipv4_validation(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    h = Harness()
    h.feed(mutate(udp_frame(b"abcdef")))
    assert h.ip.drops[reason] == 1


def test_not_for_us_and_bad_source() -> None:
    h = Harness()
    h.feed(udp_frame(b"x", dst="10.0.0.99"))
    assert h.ip.drops["ipv4_not_for_us"] == 1
    h.feed(udp_frame(b"x", src="224.0.0.1"))
    assert h.ip.drops["ipv4_bad_source"] == 1
    h.feed(udp_frame(b"x", dst_mac=bytes.fromhex("020000000099")))
    assert h.ip.drops["eth_not_for_us"] == 1


def test_ip_options_are_skipped() -> None:
    h = Harness()
    ep = h.udp_bind(7)
    u = dpkt.udp.UDP(sport=5, dport=7, data=b"opt")
    u.ulen = 11
    ip = dpkt.ip.IP(
        src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=17, opts=b"\x07\x07\x04" + b"\0" * 5, data=u
    )
    ip.hl = 7  # dpkt does not derive the IHL from the options
    ip.len = 28 + 11
    h.feed(eth(ip))
    assert ep.rx.popleft()[0] == b"opt"


def test_send_without_route_and_broadcast_permission() -> None:
    h = Harness()
    ep = h.udp_bind(0)
    with pytest.raises(OSError) as exc:
        h.sendto(ep, b"x", dst="192.0.2.1")
    assert exc.value.errno == 101  # ENETUNREACH
    with pytest.raises(OSError) as exc:
        h.sendto(ep, b"x", dst="10.0.0.255")
    assert exc.value.errno == 13  # EACCES without SO_BROADCAST
    ep.broadcast = True
    assert h.sendto(ep, b"x", dst="255.255.255.255") == 0
    assert parse(h.sent()[0]).dst == BCAST_MAC


def test_gateway_route() -> None:
    h = Harness()
    h.ip.set_gateway("10.0.0.1")
    ep = h.udp_bind(0)
    assert h.sendto(ep, b"x", dst="192.0.2.1") == ipv4.aton("10.0.0.1")
    with pytest.raises(ValueError):
        h.ip.set_gateway("192.168.5.1")


def test_connected_endpoint_gets_icmp_error() -> None:
    h = Harness()
    h.learn_peer()
    ep = h.udp_bind(4000)
    ep.remote_addr, ep.remote_port = ipv4.aton(PEER_IP), 5000
    assert h.sendto(ep, b"q") == 0
    (frame,) = h.sent()
    sent_ip = parse(frame).data
    err = dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=bytes(sent_ip)[:28]))
    h.feed(eth(ip4(err, proto=1)))
    assert ep.take_error() == 111  # ECONNREFUSED
    assert ep in h.ip.take_ready()  # a waiting receiver is woken to see it


def test_never_sends_ttl_zero_but_accepts_it() -> None:
    h = Harness()
    h.learn_peer()
    with pytest.raises(OSError) as exc:
        h.ip.send_ip(ipv4.aton(PEER_IP), ipv4.PROTO_UDP, b"12345678", h.now, ttl=0)
    assert exc.value.errno == 22  # EINVAL
    ep = h.udp_bind(7)
    u = dpkt.udp.UDP(sport=5, dport=7, data=b"ttl0")
    u.ulen = 12
    h.feed(eth(ip4(u, proto=17, ttl=0)))  # RFC 1122 §3.2.1.7: a host must not discard it
    assert ep.rx.popleft()[0] == b"ttl0"
