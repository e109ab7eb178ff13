"""The ingress filter: rule parsing (every bad rule an error naming it), software matching, and the
XDP program compiled from the same rules giving the same verdict and counts on the same frames
(run with BPF_PROG_TEST_RUN: no device, no namespace, but root)."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from aiostack.config import ConfigError, options_from_mapping
from aiostack.drivers import bpf
from aiostack.drivers.memory import MemoryLink
from aiostack.drivers.xdp_filter import COUNTER, xdp_program
from aiostack.ip.filter import FilterWrapper, RuleSet, parse_rule, parse_rules
from conftest import need

MAC = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")


def frame(src: str, dst: str, proto: int, l4: bytes = b"", *, frag: int = 0, ihl: int = 5, etype: int = 0x0800,
          total: int | None = None) -> bytes:
    options = b"\x01" * ((ihl - 5) * 4)
    length = 20 + len(options) + len(l4) if total is None else total
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, frag, 64, proto, 0, socket.inet_aton(src),
                     socket.inet_aton(dst)) + options
    return MAC + struct.pack("!H", etype) + ip + l4


def tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 1024, 0, 0)


def udp(sport: int, dport: int, payload: bytes = b"x") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


SYN, ACK, RST = 0x02, 0x10, 0x04
FRAMES = [
    frame("10.99.1.5", "10.77.0.2", 6, tcp(40000, 8080, SYN)),
    frame("10.99.1.5", "10.77.0.2", 6, tcp(40000, 8080, ACK)),
    frame("10.77.0.1", "10.77.0.2", 6, tcp(40001, 8080, SYN)),
    frame("10.77.0.1", "10.77.0.2", 6, tcp(40001, 8080, SYN | ACK)),
    frame("10.77.0.1", "10.77.0.2", 6, tcp(40001, 22, RST | ACK)),
    frame("10.77.0.1", "10.77.0.2", 17, udp(5353, 5000)),
    frame("10.77.0.1", "10.77.0.2", 17, udp(5353, 6000, b"y" * 300)),
    frame("192.168.7.9", "10.77.0.2", 17, udp(1, 65535)),
    frame("200.1.2.3", "10.77.0.2", 1, b"\x08\x00\x00\x00\x00\x01\x00\x01"),
    frame("10.99.0.1", "224.0.0.1", 2, b"\x11" * 8),
    frame("10.77.0.1", "10.77.0.2", 17, udp(5353, 5000), frag=0x2000),  # first fragment (MF)
    frame("10.77.0.1", "10.77.0.2", 17, b"\x00" * 16, frag=0x0010),  # a later fragment
    frame("10.77.0.1", "10.77.0.2", 6, tcp(40002, 8080, SYN), ihl=7),  # IP options
    frame("10.77.0.1", "10.77.0.2", 6, tcp(40003, 8080, SYN)[:6]),  # truncated TCP header
    frame("10.77.0.1", "10.77.0.2", 17, udp(9, 9)[:3]),  # no room for ports
    frame("10.77.0.1", "10.77.0.2", 6, b"", ihl=4),  # bad IHL
    MAC + b"\x08\x06" + b"\x00" * 28,  # ARP
    MAC + b"\x08\x00" + b"\x45" * 10,  # too short for IPv4
]

RULE_SETS = [
    ["drop src 10.99.0.0/16"],
    ["drop proto tcp dport 8080 flags syn,!ack"],
    ["count proto udp dport 5000-5999", "drop proto udp", "pass src 10.77.0.1"],
    ["pass src 10.99.1.5", "drop dst 10.77.0.2/32"],
    ["count", "drop sport 40000-40001", "count flags rst"],
    ["drop src 200.0.0.0/8 proto icmp", "drop dst 224.0.0.0/4", "count dport 65535 sport 1"],
    ["drop proto 2", "count src 0.0.0.0/0", "drop flags syn dport 8080 sport 40002"],
]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty rule"),
        ("block src 10.0.0.0/8", "'block' is not an action"),
        ("drop src 10.0.0.300/8", "is not an IPv4 address"),
        ("drop src 10.0.0.0/8 src 10.1.0.0/16", "given twice"),
        ("drop dport", "needs a value"),
        ("drop dport 90-80", "low to high"),
        ("drop dport 70000", "within 0-65535"),
        ("drop proto icmp dport 80", "only TCP and UDP"),
        ("drop proto udp flags syn", "only TCP"),
        ("drop flags syn,bogus", "'bogus' is not a TCP flag"),
        ("drop flags syn,!syn", "given twice"),
        ("drop port 80", "'port' is not a match"),
        ("drop proto 256", "out of range"),
    ],
)
def test_bad_rules_are_errors_naming_the_rule(text: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rule(text)
    assert f"filter rule {text!r}" in str(info.value) and words in str(info.value)


def test_bad_rule_in_options_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"--filter: filter rule 'drop src nowhere'"):
        options_from_mapping({"filter": ["pass proto tcp", "drop src nowhere"]})
    opts = options_from_mapping({"aiostack": {"filter": ["drop src 10.0.0.0/8", "count proto udp"]}})
    assert opts.filter == ["drop src 10.0.0.0/8", "count proto udp"]
    with pytest.raises(ConfigError, match=r"--filter: the ingress filter is aiostack's"):
        options_from_mapping({"stack": "kernel", "filter": ["drop src 10.0.0.0/8"]})


def test_rule_fields() -> None:
    r = parse_rule("DROP  src 10.99.0.0/16 proto tcp dport 80-90 flags syn,!ack")
    assert r.text == "DROP src 10.99.0.0/16 proto tcp dport 80-90 flags syn,!ack"
    assert (r.action, r.src, r.proto, r.dport, r.sport) == ("drop", (0x0A630000, 16), 6, (80, 90), None)
    assert (r.flags_set, r.flags_clear) == (SYN, ACK)
    assert parse_rule("pass dst 10.1.2.3").dst == (0x0A010203, 32)


def _software(rules: list[str]) -> tuple[list[bool], list[tuple[int, int]]]:
    rs = RuleSet(parse_rules(rules))
    verdicts = []
    for f in FRAMES:
        buf = bytearray(16) + bytearray(f)
        verdicts.append(rs.drops(buf, 16, len(buf)))
    return verdicts, list(zip(rs.packets, rs.bytes, strict=True))


def test_software_matching() -> None:
    drops, counts = _software(["drop src 10.99.0.0/16"])
    assert drops == [True, True] + [False] * 7 + [True] + [False] * 8
    assert counts == [(3, 14 * 3 + 40 + 40 + 28)]
    drops, counts = _software(["drop proto tcp dport 8080 flags syn,!ack"])
    assert [i for i, d in enumerate(drops) if d] == [0, 2, 12]  # not the SYN-ACK, not the truncated one
    drops, counts = _software(["count proto udp dport 5000-5999", "drop proto udp", "pass src 10.77.0.1"])
    # the first fragment has ports, the later one none: it is dropped by 'drop proto udp' only
    assert counts[0][0] == 2 and counts[1][0] == 6 and counts[2][0] == 5  # TCP from .1 (not the bad IHL)


def test_filter_wrapper_drops_before_the_stack_and_counts() -> None:
    a, b = MemoryLink.pair()
    wrapped = FilterWrapper(a, parse_rules(["drop src 10.99.0.0/16", "count proto udp"]))
    sent = [b.pool.packet_from(f) for f in FRAMES[:8]]
    b.tx_burst(0, sent)
    got = wrapped.rx_burst(0, 64)
    assert len(got) == 6
    for p in got:
        p.free()
    stats = wrapped.stats()
    assert stats["filter"] == {"drop src 10.99.0.0/16": {"packets": 2, "bytes": 2 * 54},
                               "count proto udp": {"packets": 3, "bytes": 14 + 29 + 14 + 328 + 14 + 29}}
    assert wrapped.counters(0).drops["filtered"] == 2


@pytest.fixture
def root() -> None:
    need(None if os.geteuid() == 0 else "loading BPF programs needs root")


@pytest.mark.parametrize("rules", RULE_SETS, ids=[" | ".join(r) for r in RULE_SETS])
def test_xdp_program_agrees_with_software(root: None, rules: list[str]) -> None:
    """The compiled program drops exactly the frames the software filter drops and counts the
    same packets and bytes per rule."""
    parsed = parse_rules(rules)
    xsks = bpf.Map(bpf.BPF_MAP_TYPE_XSKMAP, 4, 4, 1, "t_xsks")
    counters = bpf.Map(bpf.BPF_MAP_TYPE_ARRAY, 4, COUNTER.size, len(parsed), "t_rules")
    try:
        fd = bpf.load_program(xdp_program(xsks.fd, counters.fd, parsed, 1), "t_filter")
        try:
            verdicts = [bpf.test_run(fd, f) for f in FRAMES]
        finally:
            os.close(fd)
        kernel_counts = [COUNTER.unpack(counters.lookup(i)) for i in range(len(parsed))]
    finally:
        xsks.close()
        counters.close()
    want_drops, want_counts = _software(rules)
    # XDP_DROP (1) exactly where the software drops; everything else is redirected, which with no
    # socket in the map falls back to XDP_PASS (2)
    assert verdicts == [1 if d else 2 for d in want_drops]
    assert kernel_counts == want_counts


def test_xdp_program_without_rules_loads(root: None) -> None:
    xsks = bpf.Map(bpf.BPF_MAP_TYPE_XSKMAP, 4, 4, 2, "t_xsks")
    try:
        fd = bpf.load_program(xdp_program(xsks.fd, None, [], 2), "t_plain")
        try:
            assert {bpf.test_run(fd, f) for f in FRAMES} == {2}
        finally:
            os.close(fd)
    finally:
        xsks.close()
