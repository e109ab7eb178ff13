"""Toeplitz RSS hash: Microsoft's verification suite, symmetry, and the NIC-style flow peek."""

from __future__ import annotations

import ipaddress
import random
import struct

import pytest

from aiostack.drivers.rss import (
    MICROSOFT_KEY,
    SYMMETRIC_KEY,
    Toeplitz,
    default_toeplitz,
    flow_hash,
    queue_for,
)

# "Verifying the RSS Hash Calculation" (Microsoft), IPv4 table, same as the Intel 82599 datasheet
# 7.1.2.8.3: (source, source port, destination, destination port, IPv4 hash, IPv4-with-TCP hash).
MS_IPV4_VECTORS = [
    ("66.9.149.187", 2794, "161.142.100.80", 1766, 0x323E8FC2, 0x51CCC178),
    ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xD718262A, 0xC626B0EA),
    ("24.19.198.95", 12898, "12.22.207.184", 38024, 0xD2D0A5DE, 0x5C2B394A),
    ("38.27.205.30", 48228, "209.142.163.6", 2217, 0x82989176, 0xAFC7327F),
    ("153.39.163.191", 44251, "202.188.127.2", 1303, 0x5D1809C5, 0x10E828A2),
]


def ip(s: str) -> int:
    return int(ipaddress.IPv4Address(s))


def reference_toeplitz(key: bytes, data: bytes) -> int:
    """The spec's algorithm, bit by bit, as a check on the lookup tables."""
    k = int.from_bytes(key, "big")
    nbits = len(key) * 8
    result = 0
    for i in range(len(data) * 8):
        if data[i // 8] & (0x80 >> (i % 8)):
            result ^= (k >> (nbits - 32 - i)) & 0xFFFFFFFF
    return result


def ipv4_frame(
    src: str,
    dst: str,
    proto: int,
    l4: bytes = b"",
    *,
    flags_frag: int = 0,
    ihl: int = 5,
    version: int = 4,
    ethertype: int = 0x0800,
    vlan: int | None = None,
) -> bytes:
    options = b"\x01" * (max(ihl, 5) * 4 - 20)
    total = 20 + len(options) + len(l4)
    ip_hdr = struct.pack(
        "!BBHHHBBH4s4s",
        (version << 4) | ihl,
        0,
        total,
        0x1234,
        flags_frag,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    eth += struct.pack("!H", ethertype)
    return eth + ip_hdr + options + l4


def ports(sport: int, dport: int, rest: bytes = b"\x00" * 16) -> bytes:
    return struct.pack("!HH", sport, dport) + rest


def test_keys():
    assert len(MICROSOFT_KEY) == 40
    assert MICROSOFT_KEY[:8] == bytes.fromhex("6d5a56da255b0ec2")
    assert bytes([0x6D, 0x5A] * 20) == SYMMETRIC_KEY


@pytest.mark.parametrize(("src", "sport", "dst", "dport", "h2", "h4"), MS_IPV4_VECTORS)
def test_microsoft_verification_suite(src, sport, dst, dport, h2, h4):
    t = Toeplitz(MICROSOFT_KEY)
    assert t.hash_ipv4(ip(src), ip(dst), sport, dport) == h4
    assert t.hash_ipv4(ip(src), ip(dst)) == h2
    assert t.hash_ipv4(ip(src), ip(dst), None, None) == h2
    packed = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    assert t.hash(packed) == h2
    assert t.hash(packed + struct.pack("!HH", sport, dport)) == h4
    assert t.hash(bytearray(packed)) == h2
    assert t.hash(memoryview(packed)) == h2


@pytest.mark.parametrize(("src", "sport", "dst", "dport", "h2", "h4"), MS_IPV4_VECTORS)
def test_flow_hash_of_microsoft_vectors(src, sport, dst, dport, h2, h4):
    t = Toeplitz(MICROSOFT_KEY)
    for proto in (6, 17):
        frame = ipv4_frame(src, dst, proto, ports(sport, dport))
        assert flow_hash(frame, 0, len(frame), t) == h4
    icmp = ipv4_frame(src, dst, 1, b"\x08\x00" + b"\x00" * 6)
    assert flow_hash(icmp, 0, len(icmp), t) == h2


def test_tables_match_bitwise_reference():
    rng = random.Random(1)
    for key in (MICROSOFT_KEY, SYMMETRIC_KEY, bytes(rng.randrange(256) for _ in range(40))):
        t = Toeplitz(key)
        assert t.max_len == 36
        assert len(t.table) == 36 * 256
        for n in (0, 1, 8, 12, 13, 36):
            data = bytes(rng.randrange(256) for _ in range(n))
            assert t.hash(data) == reference_toeplitz(key, data)


def test_input_longer_than_key_reach_is_rejected():
    t = Toeplitz(MICROSOFT_KEY)
    t.hash(b"\xff" * 36)
    with pytest.raises(ValueError):
        t.hash(b"\xff" * 37)
    with pytest.raises(ValueError):
        Toeplitz(b"\x01\x02\x03\x04")


def test_shorter_key_limits_input():
    t = Toeplitz(MICROSOFT_KEY[:16])
    assert t.max_len == 12
    data = bytes(range(12))
    assert t.hash(data) == reference_toeplitz(MICROSOFT_KEY[:16], data)


def test_symmetric_key_hashes_both_directions_alike():
    t = Toeplitz(SYMMETRIC_KEY)
    rng = random.Random(7)
    for _ in range(500):
        a, b = rng.getrandbits(32), rng.getrandbits(32)
        pa, pb = rng.getrandbits(16), rng.getrandbits(16)
        assert t.hash_ipv4(a, b, pa, pb) == t.hash_ipv4(b, a, pb, pa)
        assert t.hash_ipv4(a, b) == t.hash_ipv4(b, a)


def test_microsoft_key_is_not_symmetric():
    t = Toeplitz(MICROSOFT_KEY)
    src, sport, dst, dport, _, h4 = MS_IPV4_VECTORS[0]
    assert t.hash_ipv4(ip(dst), ip(src), dport, sport) != h4


def test_default_toeplitz_is_shared_and_symmetric():
    assert default_toeplitz() is default_toeplitz()
    assert default_toeplitz().key == SYMMETRIC_KEY


def test_flow_hash_tcp_udp_four_tuple():
    t = default_toeplitz()
    for proto in (6, 17):
        frame = ipv4_frame("10.0.0.1", "10.0.0.2", proto, ports(40000, 80))
        assert flow_hash(frame, 0, len(frame), t) == t.hash_ipv4(ip("10.0.0.1"), ip("10.0.0.2"), 40000, 80)
    # the reply of the same flow, same hash (symmetric key)
    reply = ipv4_frame("10.0.0.2", "10.0.0.1", 6, ports(80, 40000))
    assert flow_hash(reply, 0, len(reply), t) == t.hash_ipv4(ip("10.0.0.1"), ip("10.0.0.2"), 40000, 80)


def test_flow_hash_other_protocols_and_fragments_use_addresses_only():
    t = default_toeplitz()
    two = t.hash_ipv4(ip("10.0.0.1"), ip("10.0.0.2"))
    cases = [
        ipv4_frame("10.0.0.1", "10.0.0.2", 1, b"\x08\x00\x00\x00\x00\x01\x00\x01"),  # ICMP echo
        ipv4_frame("10.0.0.1", "10.0.0.2", 47, b"\x00" * 8),  # GRE
        ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2), flags_frag=0x2000),  # MF: first fragment
        ipv4_frame("10.0.0.1", "10.0.0.2", 17, b"\x00" * 8, flags_frag=0x00B9),  # later fragment
        ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2), flags_frag=0x20B9),  # MF + offset
        ipv4_frame("10.0.0.1", "10.0.0.2", 6, b"\x00\x01"),  # ports cut off
    ]
    for frame in cases:
        assert flow_hash(frame, 0, len(frame), t) == two
    # DF alone is not a fragment
    df = ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2), flags_frag=0x4000)
    assert flow_hash(df, 0, len(df), t) == t.hash_ipv4(ip("10.0.0.1"), ip("10.0.0.2"), 1, 2)


def test_flow_hash_finds_ports_after_ip_options():
    t = default_toeplitz()
    frame = ipv4_frame("192.0.2.1", "192.0.2.2", 6, ports(1234, 443), ihl=7)
    assert flow_hash(frame, 0, len(frame), t) == t.hash_ipv4(ip("192.0.2.1"), ip("192.0.2.2"), 1234, 443)


def test_flow_hash_looks_through_one_vlan_tag():
    t = default_toeplitz()
    frame = ipv4_frame("192.0.2.1", "192.0.2.2", 17, ports(53, 5353), vlan=100)
    assert flow_hash(frame, 0, len(frame), t) == t.hash_ipv4(ip("192.0.2.1"), ip("192.0.2.2"), 53, 5353)


def test_flow_hash_honours_offset_and_length():
    t = default_toeplitz()
    frame = ipv4_frame("10.1.1.1", "10.2.2.2", 6, ports(5555, 22))
    buf = bytearray(b"\xee" * 100) + frame + b"\xee" * 50
    expected = t.hash_ipv4(ip("10.1.1.1"), ip("10.2.2.2"), 5555, 22)
    assert flow_hash(buf, 100, len(frame), t) == expected
    assert flow_hash(memoryview(buf), 100, len(frame), t) == expected
    # a length ending before the ports: addresses only
    assert flow_hash(buf, 100, 14 + 20 + 2, t) == t.hash_ipv4(ip("10.1.1.1"), ip("10.2.2.2"))


def test_flow_hash_none_for_non_ipv4_and_malformed():
    t = default_toeplitz()
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20
    good = ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2))
    cases = [
        arp,
        b"",
        b"\x00" * 13,
        good[:33],  # IPv4 header cut short
        ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2), ethertype=0x86DD),  # not IPv4
        ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2), version=6),
        ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2), ihl=4),
        ipv4_frame("10.0.0.1", "10.0.0.2", 6, b"", ihl=15)[:50],  # options run past the end
    ]
    for frame in cases:
        assert flow_hash(frame, 0, len(frame), t) is None
    # out-of-range windows
    assert flow_hash(good, 0, len(good) + 1, t) is None
    assert flow_hash(good, -1, len(good), t) is None
    assert flow_hash(good, 0, -5, t) is None


def test_flow_hash_never_raises_on_garbage():
    t = default_toeplitz()
    rng = random.Random(42)
    for i in range(3000):
        n = rng.randrange(0, 80)
        frame = bytearray(rng.getrandbits(8) for _ in range(n))
        if n >= 15 and i % 2:
            frame[12:14] = b"\x08\x00"  # IPv4 ethertype over random bytes
            frame[14] = 0x40 | (frame[14] & 0x0F)
        off = rng.randrange(0, n + 2)
        length = rng.randrange(-2, n + 3)
        h = flow_hash(bytes(frame), off, length, t)
        assert h is None or 0 <= h < 2**32


def test_queue_for():
    assert queue_for(0x51CCC178, 1) == 0
    assert queue_for(0x51CCC178, 4) == 0x51CCC178 % 4
    assert {queue_for(h, 3) for h in range(30)} == {0, 1, 2}


def test_flow_hash_refuses_a_key_too_short_for_a_four_tuple():
    frame = ipv4_frame("10.0.0.1", "10.0.0.2", 6, ports(1, 2))
    assert flow_hash(frame, 0, len(frame), Toeplitz(MICROSOFT_KEY[:16])) is not None  # 12 bytes: enough
    with pytest.raises(ValueError):
        flow_hash(frame, 0, len(frame), Toeplitz(MICROSOFT_KEY[:15]))
