"""100,000 random and mutated frames through the memory driver: nothing raises, every frame is
either used or dropped under a counted reason, and the stack still answers ping and UDP after.

The generator is seeded (reproducible); each frame starts from a valid one (UDP to an open or
closed port, ICMP echo, ARP, IP fragments) and is then broken in one of the ways a hostile or
broken peer breaks frames: truncation, bad checksums, bad lengths, IHL < 5, garbage options,
overlapping and oversized fragments, random bytes.
"""

from __future__ import annotations

import asyncio
import random
import struct

import dpkt

from aiostack.drivers.memory import MemoryLink
from aiostack.ip.checksum import internet_checksum
from aiostack.stack import Stack
from framecraft import PEER_MAC, STACK_MAC, arp_frame, eth, fragments, icmp_echo_frame, ip4, udp_frame

FRAMES = 100_000
SEED = 20261122

# Counters that mean "this frame was used" (everything else is in drops).
USED = (
    "udp_rx",
    "icmp_echo_replied",
    "icmp_error_rx",
    "icmp_error_no_endpoint",
    "icmp_error_other_protocol",
    "icmp_ignored",
    "arp_for_us",
    "arp_gratuitous",
    "arp_address_conflict",
    "ipv4_fragments_queued",
)


def _fix_ip_checksum(frame: bytearray) -> None:
    ihl = (frame[14] & 0x0F) * 4
    if ihl < 20 or 14 + ihl > len(frame):
        return
    frame[24:26] = b"\0\0"
    struct.pack_into("!H", frame, 24, internet_checksum(frame[14 : 14 + ihl]))


def _bases(rng: random.Random) -> list[bytes]:
    payload = rng.randbytes(rng.randrange(0, 1400))
    u = dpkt.udp.UDP(sport=rng.randrange(1, 65536), dport=7, data=b"q" * 3000)
    u.ulen = 3008
    big = ip4(u, proto=17, ident=rng.randrange(65536))
    syn = dpkt.tcp.TCP(
        sport=rng.randrange(1024, 65536),
        dport=80,
        seq=rng.randrange(1 << 32),
        flags=dpkt.tcp.TH_SYN,
        win=65535,
        opts=b"\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02\x00\x00",
    )
    ack = dpkt.tcp.TCP(
        sport=rng.randrange(1024, 65536),
        dport=80,
        seq=rng.randrange(1 << 32),
        ack=rng.randrange(1 << 32),
        flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
        win=512,
        data=payload[:100],
    )
    return [
        eth(ip4(syn, proto=6)),
        eth(ip4(ack, proto=6)),
        udp_frame(payload, dport=7),
        udp_frame(payload, dport=rng.randrange(1, 65536)),
        icmp_echo_frame(payload[:500]),
        arp_frame(rng.choice((1, 2))),
        *(eth(f) for f in fragments(big, 1480)),
    ]


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    kind = rng.randrange(12)
    if kind == 0:  # truncation anywhere
        return bytes(b[: rng.randrange(0, len(b) + 1)])
    if kind == 1:  # flip a few random bytes (checksums break)
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= rng.randrange(1, 256)
        return bytes(b)
    if len(b) < 34 or b[12:14] != b"\x08\x00":
        return rng.randbytes(rng.randrange(0, 200)) if kind == 2 else bytes(b)
    if kind == 2:  # IHL < 5 with the checksum recomputed so the IHL check itself is reached
        b[14] = 0x40 | rng.randrange(0, 5)
        _fix_ip_checksum(b)
    elif kind == 3:  # total length lies, either way
        struct.pack_into("!H", b, 16, rng.choice((0, 19, 21, len(b) - 14 + rng.randrange(1, 3000), 65535)))
        _fix_ip_checksum(b)
    elif kind == 4:  # garbage options inside a valid header
        n = rng.randrange(1, 11) * 4
        ihl = (b[14] & 0x0F) * 4
        b[14 + ihl : 14 + ihl] = rng.randbytes(n)
        b[14] = 0x40 | ((ihl + n) // 4)
        struct.pack_into("!H", b, 16, struct.unpack_from("!H", b, 16)[0] + n)
        _fix_ip_checksum(b)
    elif kind == 5:  # fragment with a random offset / MF (overlaps and oversize follow)
        struct.pack_into("!H", b, 20, rng.randrange(0, 0x4000))
        _fix_ip_checksum(b)
    elif kind == 6:  # the last possible fragment offset: datagram larger than 65535
        struct.pack_into("!H", b, 20, 0x1FFF)
        _fix_ip_checksum(b)
    elif kind == 7:  # UDP length field lies
        ihl = (b[14] & 0x0F) * 4
        if 14 + ihl + 6 <= len(b):
            struct.pack_into("!H", b, 14 + ihl + 4, rng.randrange(0, 65536))
    elif kind == 8:  # random protocol number
        b[23] = rng.randrange(256)
        _fix_ip_checksum(b)
    elif kind == 9:  # random source / destination address
        b[26 + 4 * rng.randrange(2) + rng.randrange(4)] = rng.randrange(256)
        _fix_ip_checksum(b)
    elif kind == 10:  # random version
        b[14] = (rng.randrange(16) << 4) | (b[14] & 0x0F)
        _fix_ip_checksum(b)
    else:  # random bytes after a valid Ethernet header
        return bytes(b[:14]) + rng.randbytes(rng.randrange(0, 1600))
    return bytes(b)


def _accounted(stack: Stack) -> int:
    counters = stack.ip.counters()
    stats = counters["stats"]
    assert isinstance(stats, dict)
    drops = counters["drops"]
    assert isinstance(drops, dict)
    tcp = stack.tcp
    assert tcp is not None
    # TCP segments are used (counted in segments_in) or dropped by the TCP layer or a connection.
    tcp_used = tcp.stats["segments_in"] + sum(tcp.drops.values())
    return sum(drops.values()) + sum(stats.get(k, 0) for k in USED) + tcp_used


def test_fuzzed_frames_are_counted_and_stack_survives() -> None:
    rng = random.Random(SEED)
    link = MemoryLink()
    fuzz_port = link.port(mac=PEER_MAC)
    stack_port = link.port(mac=STACK_MAC)
    stack = Stack(seed=1)
    stack.attach(stack_port, "10.0.0.2/24")
    echo = stack.ip.udp_bind(0, 7)
    assert stack.tcp is not None
    stack.tcp.listen(0, 80, backlog=8)  # SYNs fill the SYN queue, then SYN cookies answer
    stack.ip.start(stack.clock())
    stack.reactor.run_once()

    before = _accounted(stack)
    uncounted = 0
    link_before = 0
    samples: list[bytes] = []
    bases = _bases(rng)
    for i in range(FRAMES):
        if i % 500 == 0:
            bases = _bases(rng)
        frame = _mutate(rng, rng.choice(bases)) if rng.random() < 0.9 else rng.randbytes(rng.randrange(0, 1600))
        if len(frame) >= 12 and rng.random() < 0.95:  # most frames addressed to the stack
            frame = STACK_MAC + PEER_MAC + frame[12:]
        pkt = fuzz_port.pool.packet_from(frame)
        fuzz_port.tx_burst(0, [pkt])
        stack.reactor.run_once()
        after = _accounted(stack)
        # The memory driver itself may drop frames (runts, oversize) before they reach the stack.
        link_drops = sum(stack_port.counters(0).drops.values()) + sum(fuzz_port.counters(0).drops.values())
        if after == before and link_drops == link_before:
            uncounted += 1
            if len(samples) < 5:
                samples.append(frame)
        before = after
        link_before = link_drops
        for p in fuzz_port.rx_burst(0, 64):  # replies and ARP requests the stack sent
            p.free()
        echo.rx.clear()
        echo.rx_bytes = 0
    assert stack.reactor.internal_errors == 0
    assert uncounted == 0, [f.hex() for f in samples]
    counters = stack.ip.counters()
    drops = counters["drops"]
    assert isinstance(drops, dict)
    for reason in ("ipv4_bad_checksum", "ipv4_bad_ihl", "ipv4_truncated", "udp_bad_length", "eth_truncated"):
        assert drops.get(reason, 0) > 0, reason
    assert "internal_error" not in drops
    assert any(k.startswith("frag_") for k in drops)

    # Still alive: ping and UDP echo from a clean peer, through the running reactor.
    async def still_answers() -> None:
        await stack.start()
        sock = stack.socket()
        sock.bind(("0.0.0.0", 9))

        async def serve() -> None:
            data, peer = await sock.recvfrom(2048)
            await sock.sendto(data, peer)

        task = asyncio.create_task(serve())
        fuzz_port.tx_burst(0, [fuzz_port.pool.packet_from(arp_frame(1))])
        fuzz_port.tx_burst(0, [fuzz_port.pool.packet_from(icmp_echo_frame(b"alive", seq=42))])
        fuzz_port.tx_burst(0, [fuzz_port.pool.packet_from(udp_frame(b"still here", sport=5555, dport=9))])
        stack.reactor.kick()
        got_ping = got_udp = False
        for _ in range(200):
            await asyncio.sleep(0.005)
            for p in fuzz_port.rx_burst(0, 64):
                e = dpkt.ethernet.Ethernet(p.tobytes())
                p.free()
                if isinstance(e.data, dpkt.ip.IP):
                    if isinstance(e.data.data, dpkt.icmp.ICMP) and e.data.data.type == 0:
                        got_ping = e.data.data.data.seq == 42
                    if isinstance(e.data.data, dpkt.udp.UDP) and e.data.data.dport == 5555:
                        got_udp = e.data.data.data == b"still here"
            if got_ping and got_udp:
                break
        await task
        assert got_ping and got_udp
        stack.close()

    asyncio.run(still_answers())
