"""A stack that is one reactor of several (IPStack.steer_to): UDP ports picked on an implicit bind
steer their replies back, and ICMP the device steered here by addresses alone — an error about
another reactor's flow, the echo reply to its ping — is handed to that reactor."""

from __future__ import annotations

import dpkt
import pytest

from aiostack.drivers.steering import queue_for
from aiostack.ip import ipv4
from framecraft import PEER_IP, STACK_IP, Harness, eth, ip4

QUEUES = 3
PEER, US = ipv4.aton(PEER_IP), ipv4.aton(STACK_IP)


def steered(queue: int) -> tuple[Harness, list[tuple[bytes, int]]]:
    h = Harness()
    h.learn_peer()
    h.ip.steer_to(queue, QUEUES)
    handed: list[tuple[bytes, int]] = []
    h.ip.on_foreign_frame = lambda frame, owner: handed.append((frame, owner))
    return h, handed


@pytest.mark.parametrize("queue", range(QUEUES))
def test_implicit_udp_bind_picks_a_port_whose_replies_come_back(queue: int) -> None:
    h, _ = steered(queue)
    for _ in range(20):
        ep = h.ip.udp_bind(0, 0, toward=(PEER, 53))
        # the reply's 4-tuple, as the peer sends it
        assert queue_for(QUEUES, PEER, US, 53, ep.local_port) == queue
    explicit = h.ip.udp_bind(0, 0)  # bound before any destination is known: any port
    assert explicit.local_port


def port_unreachable_about(sport: int, dport: int) -> bytes:
    quoted = ip4(dpkt.udp.UDP(sport=sport, dport=dport, ulen=9, data=b"q"), proto=17, src=STACK_IP, dst=PEER_IP)
    err = dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=bytes(quoted)[:28]))
    return eth(ip4(err, proto=1))


def test_an_icmp_error_about_another_reactors_flow_is_handed_to_it() -> None:
    h, handed = steered(0)
    sport = next(p for p in range(40000, 41000) if queue_for(QUEUES, US, PEER, p, 53) == 2)
    frame = port_unreachable_about(sport, 53)
    h.feed(frame)
    assert handed == [(frame, 2)] and h.ip.stats["icmp_handed_over"] == 1
    # at the owner it is delivered: its connected endpoint gets the error
    owner, again = steered(2)
    ep = owner.ip.udp_bind(0, sport)
    ep.remote_addr, ep.remote_port = PEER, 53
    owner.feed(frame)
    assert again == [] and ep.take_error() == 111  # ECONNREFUSED


def test_without_a_carrier_the_stack_keeps_what_it_gets() -> None:
    h, _ = steered(0)
    h.ip.on_foreign_frame = None  # nobody to hand to: handled here, as on a single reactor
    sport = next(p for p in range(40000, 41000) if queue_for(QUEUES, US, PEER, p, 53) == 1)
    h.feed(port_unreachable_about(sport, 53))
    assert h.ip.stats["icmp_handed_over"] == 0 and h.ip.stats["icmp_error_no_endpoint"] == 1


def echo_reply(ident: int) -> bytes:
    msg = dpkt.icmp.ICMP(type=0, code=0, data=dpkt.icmp.ICMP.Echo(id=ident, seq=1, data=b"ping"))
    return eth(ip4(msg, proto=1))


def test_echo_replies_go_to_the_reactor_whose_ping_they_answer() -> None:
    h, handed = steered(1)
    theirs = echo_reply(0x1230 + 2)  # identifier ≡ 2 (mod 3): queue 2's ping (Stack.ping picks so)
    h.feed(theirs)
    assert handed == [(theirs, 2)]
    h.ip.icmp.echo_idents.add(0x1231)  # our own ping (≡ 1): kept
    h.feed(echo_reply(0x1231))
    assert len(handed) == 1 and h.ip.stats["icmp_echo_reply_rx"] == 1


def test_a_datagram_reassembled_here_goes_to_the_reactor_its_ports_name() -> None:
    from aiostack.drivers.buffers import Packet
    from framecraft import fragments

    h, handed = steered(0)
    sport = next(p for p in range(40000, 41000) if queue_for(QUEUES, PEER, US, p, 53) == 1)
    payload = bytes(range(256)) * 12  # 3 KB: three fragments on a 1500-byte link
    u = dpkt.udp.UDP(sport=sport, dport=53, data=payload)
    u.ulen = 8 + len(payload)
    datagram = ip4(u, proto=17)
    for frag in fragments(datagram, 1480):
        assert h.feed(eth(frag)) == []  # nothing answered here (no port unreachable)
    ((frame, owner),) = handed
    assert owner == 1 and h.ip.stats["ipv4_reassembled_handed_over"] == 1
    # the owner takes it as a frame larger than the MTU, in a buffer of its own
    other, _ = steered(1)
    ep = other.ip.udp_bind(0, 53)
    pkt = Packet(None, len(frame), 0)
    pkt.set_data(frame)
    other.ip.receive(other.iface, pkt, other.now)
    assert ep.rx.popleft() == (payload, (PEER, sport))
