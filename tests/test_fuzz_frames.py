"""100,000 random and mutated frames through the memory driver: nothing raises, every frame is
either used or dropped under a counted reason, and the stack still answers ping and UDP after.

The generator is seeded (reproducible); each frame starts from a valid one (UDP to an open or
closed port, ICMP echo, ARP, IP fragments) and is then broken in one of the ways a hostile or
broken peer breaks frames: truncation, bad checksums, bad lengths, IHL < 5, garbage options,
overlapping and oversized fragments, random bytes. The generator lives in
``tests/fuzz/frame_generator.py``; ``make fuzz`` pushes 10,000,000 of its frames through the
stack, and the last test here runs a short form of that.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import dpkt

from aiostack.drivers.memory import MemoryLink
from aiostack.stack import Stack
from framecraft import PEER_MAC, STACK_MAC, arp_frame, icmp_echo_frame, udp_frame

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))
from frame_generator import bases as _bases
from frame_generator import mutate as _mutate
from frame_generator import run as run_generator

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


GENERATOR_FRAMES = 40_000


def test_frame_generator_short_form(capsys) -> None:  # type: ignore[no-untyped-def]
    """The short form of ``make fuzz``'s 10,000,000 frames: 40,000 random and mutated frames (TCP
    to a live connection and a listener included) in two processes, through the sans-I/O stack
    of the fuzz harness: no exception, no malformed frame sent, no packet buffer leaked."""
    assert run_generator(GENERATOR_FRAMES, procs=2, seed=SEED, rebuild=10_000) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert f"{GENERATOR_FRAMES:,} frames through" in out and "0 failure(s)" in out, out
