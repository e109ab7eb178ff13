"""Transports above IPv4 (ip/datagram.py): every protocol — ICMP, UDP, TCP, and any other — is an
object registered in ``IPStack.transports`` that gets the stack's one reused ``Datagram`` and the
ICMP errors quoting its datagrams through one ``icmp_error`` signature."""

from __future__ import annotations

import dpkt

from aiostack.ip import ipv4
from aiostack.ip.datagram import Datagram
from framecraft import PEER_IP, STACK_IP, Harness, eth, fragments, ip4, parse, udp_frame

EXPERIMENTAL = 253
"""RFC 3692's protocol number for experimentation: no transport of ours uses it."""


class Recorder:
    """A transport that keeps what it was given (copied: the datagram object is reused)."""

    def __init__(self) -> None:
        self.objects: list[Datagram] = []
        self.got: list[dict[str, object]] = []
        self.errors: list[tuple[int, int, int, int, bytes, int]] = []

    def input(self, d: Datagram, now: float) -> None:
        self.objects.append(d)
        self.got.append({
            "proto": d.proto, "src": d.src, "dst": d.dst, "ttl": d.ttl, "iface": d.iface,
            "header_len": d.header_len, "total_length": d.total_length, "flags": d.flags,
            "offset": d.offset, "csum_valid": d.csum_valid, "link_bcast": d.link_bcast,
            "dst_bcast": d.dst_bcast, "version": d.view[d.ip_off] >> 4, "ip_len": d.end - d.ip_off,
            "l4_at": d.l4 - d.ip_off, "whole_view": d.ip_off == 0 and len(d.view) == d.end,
            "payload": bytes(d.view[d.l4 : d.end]), "quoted": bytes(d.quoted()),
        })

    def icmp_error(
        self, itype: int, code: int, local: int, remote: int, view: memoryview, l4: int, end: int, mtu: int
    ) -> None:
        self.errors.append((itype, code, local, remote, bytes(view[l4:end]), mtu))


def registered(h: Harness) -> Recorder:
    rec = Recorder()
    h.ip.transports[EXPERIMENTAL] = rec
    return rec


def test_icmp_and_udp_are_registered_transports() -> None:
    h = Harness()
    assert h.ip.transports[ipv4.PROTO_ICMP] is h.ip.icmp
    assert h.ip.transports[ipv4.PROTO_UDP] is h.ip.udp


def test_a_registered_transport_gets_the_datagram() -> None:
    h = Harness()
    rec = registered(h)
    datagram = ip4(b"experimental payload", proto=EXPERIMENTAL, ttl=9)
    assert h.feed(eth(datagram)) == []  # taken: no Protocol Unreachable
    (got,) = rec.got
    assert got == {
        "proto": EXPERIMENTAL, "src": ipv4.aton(PEER_IP), "dst": ipv4.aton(STACK_IP), "ttl": 9,
        "iface": h.iface, "header_len": 20, "total_length": 40, "flags": 0, "offset": 0,
        "csum_valid": False, "link_bcast": False, "dst_bcast": False, "version": 4, "ip_len": 40,
        "l4_at": 20, "whole_view": False, "payload": b"experimental payload", "quoted": bytes(datagram),
    }
    assert "ipv4_unknown_protocol" not in h.ip.drops


def test_without_a_transport_the_protocol_is_unreachable() -> None:
    h = Harness()
    h.learn_peer()
    (frame,) = h.feed(eth(ip4(b"nobody", proto=EXPERIMENTAL)))
    msg = parse(frame).data.data
    assert (msg.type, msg.code) == (3, 2)  # RFC 1122 §3.2.2.1: Protocol Unreachable
    assert h.ip.drops["ipv4_unknown_protocol"] == 1


def test_one_datagram_object_serves_every_datagram_and_kept_data_is_a_copy() -> None:
    h = Harness()
    rec = registered(h)
    h.feed(eth(ip4(b"first", proto=EXPERIMENTAL)))
    h.feed(eth(ip4(b"second", proto=EXPERIMENTAL, ttl=1)))
    assert rec.objects[0] is rec.objects[1] is h.ip.dgram
    assert [g["payload"] for g in rec.got] == [b"first", b"second"]
    # UDP keeps payloads past the call: copies, untouched by the datagrams after them
    ep = h.udp_bind(7)
    h.feed(udp_frame(b"one"))
    h.feed(udp_frame(b"two!"))
    h.feed(eth(ip4(b"x" * 40, proto=EXPERIMENTAL)))
    assert [data for data, _addr in ep.rx] == [b"one", b"two!"]


def test_a_reassembled_datagram_reaches_its_transport_whole() -> None:
    h = Harness()
    rec = registered(h)
    payload = bytes(range(256)) * 12
    for frag in fragments(ip4(payload, proto=EXPERIMENTAL, ident=77), 1000):
        h.feed(eth(frag))
    (got,) = rec.got
    assert got["payload"] == payload
    # its own view, from its IP header (fragment fields cleared) to its end
    assert (got["whole_view"], got["total_length"], got["ip_len"], got["flags"], got["offset"]) == (
        True, 20 + len(payload), 20 + len(payload), 0, 0)
    assert got["version"] == 4 and got["csum_valid"] is False


def test_an_icmp_error_reaches_the_transport_of_the_quoted_protocol() -> None:
    h = Harness()
    rec = registered(h)
    ours = ip4(b"12345678rest", proto=EXPERIMENTAL, src=STACK_IP, dst=PEER_IP)  # one we sent
    quote = bytes(ours)[:28]  # RFC 792: the IP header and the first 8 bytes
    for itype, code, mtu in ((3, 4, 1400), (11, 0, 0)):
        msg = dpkt.icmp.ICMP(type=itype, code=code, data=dpkt.icmp.ICMP.Unreach(mtu=mtu, data=quote))
        assert h.feed(eth(ip4(msg, proto=ipv4.PROTO_ICMP))) == []
    local, remote = ipv4.aton(STACK_IP), ipv4.aton(PEER_IP)
    assert rec.errors == [(3, 4, local, remote, b"12345678", 1400), (11, 0, local, remote, b"12345678", 0)]
    assert rec.got == []  # errors are not datagrams of the quoted protocol


def test_an_icmp_error_about_an_unregistered_protocol_is_counted() -> None:
    h = Harness()
    quote = bytes(ip4(b"12345678", proto=EXPERIMENTAL, src=STACK_IP, dst=PEER_IP))
    msg = dpkt.icmp.ICMP(type=3, code=1, data=dpkt.icmp.ICMP.Unreach(data=quote))
    assert h.feed(eth(ip4(msg, proto=ipv4.PROTO_ICMP))) == []
    assert h.ip.stats["icmp_error_other_protocol"] == 1
