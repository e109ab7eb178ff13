"""Martian sources (LAND, loopback, multicast, broadcast, 0.0.0.0), TTL 0 and malformed IPv4
options (ip/martians.py), each a counted drop or a counted note — through a whole IPStack and
through the TCP layer, where LAND used to create SYN-queue state."""

from __future__ import annotations

import dpkt
import pytest

from aiostack.ip import ipv4, martians
from framecraft import STACK_IP, Harness, eth, ip4, udp_frame
from scenario import LOCAL_IP, LOCAL_MAC, PEER_MAC, SYN_OPTIONS, Scenario


@pytest.mark.parametrize(
    ("src", "reason"),
    [
        (STACK_IP, "ipv4_land_source"),
        ("127.0.0.1", "ipv4_bad_source"),
        ("127.255.0.9", "ipv4_bad_source"),
        ("0.0.0.0", "ipv4_bad_source"),
        ("0.1.2.3", "ipv4_bad_source"),
        ("224.0.0.1", "ipv4_bad_source"),
        ("239.1.1.1", "ipv4_bad_source"),
        ("240.0.0.1", "ipv4_bad_source"),
        ("255.255.255.255", "ipv4_bad_source"),
        ("10.0.0.255", "ipv4_bad_source"),  # the subnet's directed broadcast
    ],
)
def test_martian_sources_are_counted_drops(src: str, reason: str) -> None:
    h = Harness()
    ep = h.udp_bind(7)
    h.feed(udp_frame(b"m", src=src, dport=7))
    assert h.ip.drops[reason] == 1
    assert not ep.rx and not h.sent()  # nothing delivered, nothing answered (no ARP for it)


def test_land_syn_creates_no_state() -> None:
    """LAND (CVE-1999-0016): a SYN from our own address and port to ourselves."""
    h = Scenario()
    h.listen()
    tcp = dpkt.tcp.TCP(sport=8080, dport=8080, seq=1, flags=dpkt.tcp.TH_SYN, win=65535,
                       opts=b"\x02\x04\x05\xb4")
    tcp.off = 6
    ip = dpkt.ip.IP(src=ipv4.aton(LOCAL_IP).to_bytes(4, "big"), dst=ipv4.aton(LOCAL_IP).to_bytes(4, "big"),
                    p=6, ttl=64, id=1, data=tcp)
    ip.len = 20 + len(bytes(tcp))
    pkt = h.pool.packet_from(bytes(dpkt.ethernet.Ethernet(dst=LOCAL_MAC, src=PEER_MAC, type=0x0800, data=ip)))
    h.ip.receive(h.iface, pkt, h.now)
    pkt.free()
    assert h.ip.drops["ipv4_land_source"] == 1
    assert not h.tcp.connections and not h.listener.syn_queue  # type: ignore[union-attr]
    assert not h.iface.tx  # no SYN-ACK, and no ARP request for our own address
    # an ordinary SYN is still served
    h.inject("S", seq=0, options=SYN_OPTIONS)
    h.expect("S.", seq=0, ack=1)


def test_ttl_zero_is_counted_and_delivered() -> None:
    """RFC 1122 §3.2.1.7 forbids discarding it; the counter shows it (martians.py)."""
    h = Harness()
    ep = h.udp_bind(7)
    u = dpkt.udp.UDP(sport=5, dport=7, data=b"ttl0")
    u.ulen = 12
    h.feed(eth(ip4(u, proto=17, ttl=0)))
    assert ep.rx.popleft()[0] == b"ttl0"
    assert h.ip.stats["ipv4_rx_ttl_zero"] == 1


def options_frame(opts: bytes, hl: int | None = None) -> bytes:
    u = dpkt.udp.UDP(sport=5, dport=7, data=b"opt")
    u.ulen = 11
    ip = dpkt.ip.IP(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=17, opts=opts, data=u)
    ip.hl = hl if hl is not None else 5 + len(opts) // 4
    ip.len = ip.hl * 4 + 11
    return eth(ip)


@pytest.mark.parametrize(
    ("opts", "reason"),
    [
        (b"\x07\x00\x00\x00", "ipv4_bad_options"),  # length 0
        (b"\x07\x01\x00\x00", "ipv4_bad_options"),  # length 1
        (b"\x07\x09\x04\x00", "ipv4_bad_options"),  # length beyond the header
        (b"\x01\x01\x01\x07", "ipv4_bad_options"),  # a kind with no room for its length
        (b"\x83\x07\x04" + b"\0" * 5, "ipv4_source_route"),  # loose source route
        (b"\x89\x07\x04" + b"\0" * 5, "ipv4_source_route"),  # strict source route
        (b"\x44\xff" + b"\0" * 6, "ipv4_bad_options"),  # timestamp claiming 255 bytes
    ],
)
def test_garbage_options_are_counted_drops(opts: bytes, reason: str) -> None:
    h = Harness()
    ep = h.udp_bind(7)
    h.feed(options_frame(opts))
    assert h.ip.drops[reason] == 1
    assert not ep.rx


@pytest.mark.parametrize(
    "opts",
    [
        b"\x01\x01\x01\x00",  # NOPs then EOL
        b"\x00\xff\xff\xff",  # EOL: whatever follows is padding
        b"\x07\x07\x04" + b"\0" * 5,  # record route
        b"\x94\x04\x00\x00",  # router alert (RFC 2113)
    ],
)
def test_wellformed_options_still_pass(opts: bytes) -> None:
    h = Harness()
    ep = h.udp_bind(7)
    h.feed(options_frame(opts))
    assert ep.rx.popleft()[0] == b"opt"


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_bad_ihl_is_a_counted_drop(ihl: int) -> None:
    h = Harness()
    frame = bytearray(udp_frame(b"x", dport=7))
    frame[14] = 0x40 | ihl
    h.feed(bytes(frame))
    assert h.ip.drops["ipv4_bad_ihl"] == 1


@pytest.mark.parametrize(("total", "reason"), [(19, "ipv4_bad_total_length"), (0, "ipv4_bad_total_length"),
                                              (60000, "ipv4_truncated")])
def test_bad_total_length_is_a_counted_drop(total: int, reason: str) -> None:
    h = Harness()
    frame = bytearray(udp_frame(b"x", dport=7))
    frame[16:18] = total.to_bytes(2, "big")
    frame[24:26] = b"\0\0"
    frame[24:26] = dpkt.in_cksum(bytes(frame[14:34])).to_bytes(2, "big")
    h.feed(bytes(frame))
    assert h.ip.drops[reason] == 1


def test_options_walk_stops_at_the_header_end() -> None:
    assert martians.options_problem(b"\x01" * 40, 0, 40) is None
    assert martians.options_problem(b"\x07\x03\x04", 0, 3) is None
    assert martians.options_problem(b"\x07\x03\x04", 0, 2) == "ipv4_bad_options"
