#!/usr/bin/env python3
"""The AF_PACKET driver's receive and transmit rates, frames per second of one Python thread.

Run as root: ``.venv/bin/python benchmarks/packet_driver.py [--rounds N] [--quick]``.

It makes a throw-away network namespace with a veth pair ``pkb0``/``pkb1`` (deleted at the end,
also on errors) and opens two :class:`~aiostack.drivers.packet.PacketDriver` s in this process,
one per end (``netns=``, so the process itself stays in its namespace):

- **rx drain**: the sender fills the receiver's ring with ``fill`` frames (untimed), then the
  receiver drains it with ``rx_burst(0, 64)`` and frees every packet — timed. Both RX ring
  versions (V2 slots, V3 blocks), V2 also with the offloads (a virtio_net_hdr per frame),
  60-byte and 1514-byte frames.
- **tx**: ``tx_burst`` of 64 prepared packets at a time (preparing them is untimed), including
  the one ``send`` per burst and everything the kernel does inside it (veth delivery into the
  other end's ring); with ``PACKET_QDISC_BYPASS`` and (the driver's default) without it; with
  and without a partial checksum (``csum_start``: finished in software without offloads, handed
  to the kernel in the virtio_net_hdr with them).
- **ping-pong**: one frame out, wait until the echo (the other driver bounces it) is back —
  latency of a round trip through both rings, busy-polling; V2 against V3.

Frames are UDP/IPv4 addressed to the receiving interface's MAC; the namespace's kernel has no
address on either end, so it drops them after the packet taps saw them. Rates are frames per
second of this thread's CPU time (``time.thread_time``: user + system, so the kernel's work inside
``send`` counts, and time lost to other processes on a shared machine does not), the median of
``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import time
import uuid

from aiostack.drivers.buffers import Packet
from aiostack.drivers.packet import SUPPORTED_OFFLOADS as OFFLOADS
from aiostack.drivers.packet import TPACKET_V3, PacketDriver

BURST = 64


def udp_frame(dst: bytes, src: bytes, size: int) -> bytes:
    """An Ethernet/IPv4/UDP frame of ``size`` bytes (checksums not filled: nobody verifies them)."""
    payload = size - 14 - 20 - 8
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + payload, 0, 0, 64, 17, 0,
                     bytes([10, 99, 0, 2]), bytes([10, 99, 0, 1]))
    udp = struct.pack("!HHHH", 1000, 9, 8 + payload, 0)
    return dst + src + b"\x08\x00" + ip + udp + bytes(payload)


def make(d: PacketDriver, frame: bytes, n: int, csum: bool = False) -> list[Packet]:
    pkts = [d.pool.packet_from(frame) for _ in range(n)]
    if csum:
        for p in pkts:
            p.csum_start, p.csum_offset = 34, 6
    return pkts


def drain(d: PacketDriver, timeout: float = 0.5) -> int:
    n = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = d.rx_burst(0, 256)
        for p in got:
            p.free()
        n += len(got)
        if not got and n:
            break
    return n


def rx_rate(tx: PacketDriver, rx: PacketDriver, size: int, fill: int, rounds: int) -> tuple[float, int]:
    frame = udp_frame(rx.mac, tx.mac, size)
    rates = []
    lost = 0
    for _ in range(rounds):
        drain(rx, 0.05)
        sent = 0
        while sent < fill:
            sent += tx.tx_burst(0, make(tx, frame, min(BURST, fill - sent)))
        if rx.rx_version == TPACKET_V3:  # let the retire timer close the last block
            time.sleep(0.005)
        t0 = time.thread_time()
        got = 0
        while True:
            pkts = rx.rx_burst(0, BURST)
            if not pkts:
                break
            for p in pkts:
                p.free()
            got += len(pkts)
        dt = time.thread_time() - t0
        lost += sent - got
        rates.append(got / dt)
    return statistics.median(rates), lost


def tx_rate(tx: PacketDriver, rx: PacketDriver, size: int, csum: bool, total: int, rounds: int) -> float:
    frame = udp_frame(rx.mac, tx.mac, size)
    rates = []
    for _ in range(rounds):
        drain(rx, 0.05)
        busy = 0.0
        sent = 0
        while sent < total:
            pkts = make(tx, frame, BURST, csum)
            t0 = time.thread_time()
            sent += tx.tx_burst(0, pkts)
            busy += time.thread_time() - t0
            if sent % 1024 < BURST:
                drain(rx, 0.01)  # keep the receiving ring from filling (untimed)
        rates.append(sent / busy)
    return statistics.median(rates)


def ping_pong(a: PacketDriver, b: PacketDriver, n: int) -> float:
    """Median round-trip in microseconds: a sends, b echoes what it gets, a waits for it."""
    frame = udp_frame(b.mac, a.mac, 100)
    echo = udp_frame(a.mac, b.mac, 100)
    rtts = []
    for _ in range(n):
        t0 = time.perf_counter()
        a.tx_burst(0, make(a, frame, 1))
        while True:
            got = b.rx_burst(0, 8)
            if got:
                for p in got:
                    p.free()
                b.tx_burst(0, make(b, echo, 1))
                break
        while True:
            got = a.rx_burst(0, 8)
            if got:
                for p in got:
                    p.free()
                break
        rtts.append(time.perf_counter() - t0)
    return statistics.median(rtts) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and frames")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (a network namespace, a veth pair and AF_PACKET sockets)")
    rounds = 3 if args.quick else args.rounds
    fill = 1000 if args.quick else 2000
    ns = f"pkbench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sh = ["ip", "netns", "exec", ns, "sh", "-c"]
        subprocess.run([*sh, "ip link set lo up; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
                        "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; "
                        "ip link add pkb0 type veth peer name pkb1"], check=True)
        print(f"namespace {ns}, veth pkb0/pkb1, {rounds} rounds, median; burst {BURST}")
        print(f"{'what':62s} {'frames/s':>10}")
        plain: tuple[str, ...] = ()
        for ring, offloads in (("v2", plain), ("v2", OFFLOADS), ("v3", plain)):
            label = f"{ring} ring{', vnet hdr' if offloads else ''}"
            rx = PacketDriver("pkb0", netns=ns, rx_ring=ring, rx_frames=4096, offloads=offloads)
            tx = PacketDriver("pkb1", netns=ns, offloads=plain)
            try:
                for size in (60, 1514):
                    rate, lost = rx_rate(tx, rx, size, fill, rounds)
                    note = f"  ({lost} not received)" if lost else ""
                    print(f"{f'rx drain, {label}, {size}-byte frames':62s} {rate:>10,.0f}{note}")
                us = ping_pong(tx, rx, 200 if args.quick else 1000)
                print(f"{f'ping-pong, {label} (busy-poll)':62s} {us:>9.1f} us round trip")
            finally:
                rx.close()
                tx.close()
        rx = PacketDriver("pkb0", netns=ns, rx_frames=4096, offloads=plain)
        for bypass, offloads, csum in (
            (True, plain, False), (True, plain, True), (True, OFFLOADS, False), (True, OFFLOADS, True),
            (False, plain, False),
        ):
            tx = PacketDriver("pkb1", netns=ns, qdisc_bypass=bypass, offloads=offloads)
            try:
                for size in (60, 1514):
                    if csum and size == 60:
                        continue
                    rate = tx_rate(tx, rx, size, csum, 5000 if args.quick else 20000, rounds)
                    what = (
                        f"tx, {size}-byte frames"
                        f"{', partial csum' if csum else ''}{', vnet hdr' if offloads else ''}"
                        f"{', qdisc bypass' if bypass else ''}"
                    )
                    print(f"{what:62s} {rate:>10,.0f}")
            finally:
                tx.close()
        rx.close()
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


if __name__ == "__main__":
    main()
