"""Fragment attacks through a whole IPStack (the Reassembler's own rules are in
test_fragments.py): teardrop's overlapping pair, offset + length beyond 65535 (ping of death),
floods of sets that never complete (the memory cap holds and a legitimate datagram still gets
through), and tiny fragments (RFC 1858) that only reassemble to what they carry."""

from __future__ import annotations

import dpkt

from framecraft import Harness, eth, fragments, ip4


def frag(payload: bytes, *, ident: int, offset: int, more: bool, proto: int = 17) -> bytes:
    ip = dpkt.ip.IP(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=proto, ttl=64, id=ident,
                    offset=offset >> 3, mf=int(more), data=payload)
    ip.len = 20 + len(payload)
    return eth(ip)


def udp_bytes(data: bytes, dport: int = 7) -> bytes:
    u = dpkt.udp.UDP(sport=5000, dport=dport, data=data)
    u.ulen = 8 + len(data)
    u.sum = 0  # RFC 768: no checksum (the pieces are what is under test here)
    return bytes(u)


def test_teardrop_pair_is_dropped_and_poisons_the_datagram() -> None:
    h = Harness()
    ep = h.udp_bind(7)
    whole = udp_bytes(b"T" * 40)  # 48 bytes
    h.feed(frag(whole[:40], ident=1, offset=0, more=True))
    h.feed(frag(b"t" * 8, ident=1, offset=24, more=True))  # inside [0, 40)
    h.feed(frag(whole[40:], ident=1, offset=40, more=False))  # would have completed it
    assert not ep.rx
    drops = h.ip.counters()["drops"]
    assert drops["frag_overlap"] >= 2  # the overlap, then the late piece of the poisoned key
    assert h.ip.stats.get("ipv4_reassembled", 0) == 0


def test_offset_plus_length_beyond_65535_is_dropped() -> None:
    h = Harness()
    h.feed(frag(b"b" * 16, ident=2, offset=65528, more=False))
    h.feed(frag(b"b" * 1480, ident=3, offset=64800, more=False))
    assert h.ip.counters()["drops"]["frag_too_big"] == 2
    assert h.ip.reassembler.memory == 0


def test_incomplete_set_flood_stays_under_the_cap_and_legit_datagrams_pass() -> None:
    cap = 256 * 1024
    h = Harness(reassembly_max_bytes=cap)
    ep = h.udp_bind(7)
    for i in range(3000):
        h.feed(frag(b"i" * 1480, ident=i, offset=1480 * (i % 7), more=True))
        assert h.ip.reassembler.memory <= cap
    assert h.ip.counters()["drops"]["frag_memory_cap"] > 0
    data = b"L" * 3000
    whole = ip4(dpkt.udp.UDP(sport=5000, dport=7, data=data, ulen=3008), proto=17, ident=60000)
    for piece in fragments(whole, 1480):
        h.feed(eth(piece))
    assert ep.rx.popleft()[0] == data
    h.advance(31.0)  # the reassembly timeout empties the rest
    assert h.ip.reassembler.memory == 0 and len(h.ip.reassembler) == 0


def test_tiny_fragments_reassemble_only_what_they_carry() -> None:
    """RFC 1858's tiny fragments (the first too short to hold the transport header) are legal;
    reassembly happens before anything looks at ports, so they cannot slip past a check."""
    h = Harness()
    ep = h.udp_bind(7)
    whole = udp_bytes(b"tiny-fragments!!" * 2)  # 40 bytes
    for off in range(0, len(whole), 8):
        h.feed(frag(whole[off : off + 8], ident=9, offset=off, more=off + 8 < len(whole)))
    assert ep.rx.popleft()[0] == b"tiny-fragments!!" * 2
    assert h.ip.stats["ipv4_reassembled"] == 1
