"""The neighbour table's bounds and policy (ip/arp.py): the RFC 826 merge rule restricted to our
subnet, a size bound with eviction, expiry by a sweep on the timer wheel, the locktime against
racing replies, the global cap on frames waiting for resolution, the bound on addresses being
resolved, and SYN-ACKs that are never queued."""

from __future__ import annotations

import dpkt

from aiostack.ip import ipv4
from framecraft import PEER_IP, PEER_MAC, STACK_IP, Harness, arp_frame, parse
from scenario import LOCAL_MAC, SYN_OPTIONS, Scenario

REQ = dpkt.arp.ARP_OP_REQUEST
REP = dpkt.arp.ARP_OP_REPLY


def mac(i: int) -> bytes:
    return bytes([2, 0, 0, 1, i >> 8 & 0xFF, i & 0xFF])


def test_request_for_us_from_outside_the_subnet_creates_no_entry() -> None:
    h = Harness()
    out = h.feed(arp_frame(REQ, spa="192.0.2.7", sha=mac(7)))
    assert len(out) == 1  # answered all the same (Linux arp_ignore=0)
    assert ipv4.aton("192.0.2.7") not in h.iface.arp.entries
    h.feed(arp_frame(REQ, spa="10.0.0.7", sha=mac(7)))
    assert ipv4.aton("10.0.0.7") in h.iface.arp.entries


def test_unsolicited_reply_creates_nothing_but_updates_after_locktime() -> None:
    h = Harness()
    peer = ipv4.aton(PEER_IP)
    h.feed(arp_frame(REP, spa="10.0.0.9", sha=mac(9), dst=bytes.fromhex("020000000002")))
    assert ipv4.aton("10.0.0.9") not in h.iface.arp.entries  # Linux arp_accept=0
    h.learn_peer()
    assert h.iface.arp.entries[peer].mac == PEER_MAC
    # A different MAC for a known neighbour within the locktime: the first answer stands.
    h.feed(arp_frame(REP, sha=mac(66), dst=bytes.fromhex("020000000002")))
    assert h.iface.arp.entries[peer].mac == PEER_MAC
    assert h.ip.drops["arp_update_locktime"] == 1
    # After it, an update of a known entry is taken (RFC 826 merge).
    h.advance(1.5)
    h.feed(arp_frame(REP, sha=mac(66), dst=bytes.fromhex("020000000002")))
    assert h.iface.arp.entries[peer].mac == mac(66)
    assert h.ip.stats["arp_mac_changed"] == 1


def test_request_flood_from_many_sources_is_bounded_and_keeps_neighbours_in_use() -> None:
    h = Harness(arp_max_entries=64)
    h.learn_peer()
    for i in range(1, 2000):
        h.feed(arp_frame(REQ, spa=f"10.0.0.{i % 250 + 3}", sha=mac(i)))
        assert len(h.iface.arp.entries) <= 64
    assert h.ip.stats["arp_table_full"] > 0
    assert len(h.iface.arp.entries) == 64
    assert h.iface.arp.entries[ipv4.aton(PEER_IP)].mac == PEER_MAC  # never pushed out


def test_full_table_takes_the_answer_to_our_own_request() -> None:
    h = Harness(arp_max_entries=8)
    for i in range(3, 11):
        h.feed(arp_frame(REQ, spa=f"10.0.0.{i}", sha=mac(i)))
    assert len(h.iface.arp.entries) == 8
    h.feed(arp_frame(REQ, spa="10.0.0.11", sha=mac(11)))  # a request's sender: no room
    assert ipv4.aton("10.0.0.11") not in h.iface.arp.entries
    assert h.ip.stats["arp_table_full"] == 1 and "arp_cache_evicted" not in h.ip.stats
    ep = h.udp_bind(4000)
    h.sendto(ep, b"q", dst="10.0.0.12")  # we need 10.0.0.12: resolve it
    out = h.feed(arp_frame(REP, spa="10.0.0.12", sha=mac(12), dst=bytes.fromhex("020000000002")))
    assert ipv4.aton("10.0.0.12") in h.iface.arp.entries and len(h.iface.arp.entries) == 8
    assert h.ip.stats["arp_cache_evicted"] == 1
    assert ipv4.aton("10.0.0.3") not in h.iface.arp.entries  # the oldest, closest to expiry
    assert parse(out[-1]).type == 0x0800  # the datagram that waited went out (after our request)


def test_entries_expire_by_the_sweep_without_lookups() -> None:
    h = Harness(arp_reachable_time=60.0)
    for i in range(3, 13):
        h.feed(arp_frame(REQ, spa=f"10.0.0.{i}", sha=mac(i)))
    assert len(h.iface.arp.entries) == 10
    h.advance(59.0)
    assert len(h.iface.arp.entries) == 10
    h.advance(31.0)  # the sweep runs every reachable_time / 2
    assert len(h.iface.arp.entries) == 0
    assert h.ip.stats["arp_expired"] == 10
    assert h.iface.arp.sweep_timer is None  # nothing left to sweep: no timer kept alive


def test_frames_waiting_for_arp_have_a_global_cap() -> None:
    h = Harness(arp_queue_total=20, arp_max_pending=1000)
    ep = h.udp_bind(4000)
    for i in range(100):
        h.sendto(ep, b"x" * 100, dst=f"10.0.0.{i + 3}")  # 100 neighbours that never answer
    assert h.iface.arp.queued == 20
    assert h.ip.drops["arp_queue_total_full"] == 80
    assert h.pool.available == h.pool.count - 20 - len(h.iface.tx)
    h.sent()
    for _ in range(4):
        h.advance(1.0)
    assert h.iface.arp.queued == 0 and not h.iface.arp.pending
    assert h.ip.drops["arp_unresolved"] == 20
    assert h.pool.available == h.pool.count  # every buffer came back


def test_addresses_being_resolved_are_bounded() -> None:
    h = Harness(arp_max_pending=16)
    ep = h.udp_bind(4000)
    for i in range(100):
        h.sendto(ep, b"y", dst=f"10.0.0.{i + 3}")
    assert len(h.iface.arp.pending) == 16
    assert h.ip.drops["arp_pending_full"] == 84
    requests = [f for f in h.sent() if parse(f).type == 0x0806]
    assert len(requests) == 16  # one broadcast per address being resolved, not one per frame


def test_resolution_still_delivers_what_waited() -> None:
    h = Harness(arp_queue_total=4)
    ep = h.udp_bind(4000)
    for i in range(6):
        h.sendto(ep, bytes([i]))
    assert h.iface.arp.queued == 4
    h.sent()
    out = [parse(f) for f in h.feed(arp_frame(REP, dst=bytes.fromhex("020000000002")))]
    assert [bytes(e.data.data.data) for e in out] == [bytes([i]) for i in range(4)]
    assert h.iface.arp.queued == 0


def test_synack_to_an_unresolved_neighbour_waits_for_arp_while_the_queue_has_room() -> None:
    """A SYN from an on-link address we hold no entry for (a reactor that did not see its ARP
    request, an entry expired while idle): the SYN-ACK waits for the resolution, no 1 s delay."""
    h = Scenario()
    h.iface.arp.remove(ipv4.aton(PEER_IP))
    h.listen()
    h.inject("S", seq=0, options=dict(SYN_OPTIONS, ts=(1, 0)))
    out = [parse(p.tobytes()) for p in h.iface.tx]
    assert [e.type for e in out] == [0x0806]  # the ARP request; the SYN-ACK waits
    for p in h.iface.tx:
        p.free()
    h.iface.tx.clear()
    assert h.iface.arp.queued == 1
    pkt = h.pool.packet_from(arp_frame(REP, dst=LOCAL_MAC, tpa=STACK_IP))  # the peer answers
    h.ip.receive(h.iface, pkt, h.now)
    pkt.free()
    h.expect("S.", seq=0, ack=1)
    assert "tcp_synack_unresolved" not in h.tcp.drops


def test_synack_flood_toward_unresolved_sources_keeps_the_pool() -> None:
    """The defect of issue 13: SYNs from thousands of on-link sources that never answer ARP used
    to park a SYN-ACK each in per-address ARP queues until the pool was empty."""
    h = Scenario(backlog=16)
    h.iface.arp.max_pending = 32
    h.listen()
    for i in range(4000):
        ip = dpkt.ethernet.Ethernet(h.frame("S", seq=0, options=SYN_OPTIONS, sport=1024 + i)).data
        ip.src = ipv4.aton(f"10.0.0.{i % 250 + 3}").to_bytes(4, "big")
        ip.sum = ip.data.sum = 0  # dpkt recomputes both checksums
        frame = bytes(dpkt.ethernet.Ethernet(dst=LOCAL_MAC, src=mac(i), type=0x0800, data=bytes(ip)))
        pkt = h.pool.packet_from(frame)
        h.ip.receive(h.iface, pkt, h.now)
        pkt.free()
        for p in h.iface.tx:
            p.free()
        h.iface.tx.clear()
        h.advance(0.001)
    # SYN-ACKs took at most half the global cap; the rest were dropped, to be re-made
    assert h.iface.arp.queued <= h.iface.arp.queue_total_limit // 2
    assert len(h.iface.arp.pending) <= 32
    assert h.tcp.drops["tcp_synack_unresolved"] > 2000
    assert h.ip.drops["arp_pending_full"] > 0  # toward more addresses than may resolve at once
    assert h.tcp.stats["syncookies_sent"] > 0
    # frames that cannot be re-made still find room
    ep = h.ip.udp_bind(0, 4000)
    before = h.iface.arp.queued
    h.ip.udp_sendto(ep, b"u", next(iter(h.iface.arp.pending)), 9, h.now)  # one being resolved
    assert h.iface.arp.queued == before + 1
    for _ in range(130):  # the SYN queue gives up (5 SYN-ACK retries) and every resolution fails
        h.advance(1.0)
        for p in h.iface.tx:
            p.free()
        h.iface.tx.clear()
    assert h.iface.arp.queued == 0 and not h.iface.arp.pending
    assert h.pool.available == h.pool.count
