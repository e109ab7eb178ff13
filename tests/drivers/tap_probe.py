"""A minimal responder on a :class:`TapDriver`, run by tests/drivers/test_tap.py *inside a network
namespace* (a process creates its TAP in the namespace it runs in).

It is a driver test harness, not a stack: ARP, ICMP echo and a UDP echo on port 7 are answered with
frames crafted by hand (dpkt to parse, struct to build), so the kernel on the other side of the TAP
can ping it and talk UDP to it. It prints JSON lines on stdout:

- ``{"event": "ready", ...}`` once the TAP is up (name, mac, fds, offloads);
- ``{"event": "stats", ...}`` when stdin closes or ``--seconds`` runs out: driver counters and what
  it saw (checksums of received frames: ``csum_valid`` or verified in software).

UDP echo: a datagram to port 7 comes back with the same payload, its checksum left partial for the
device to finish (``csum_start``/``csum_offset``, NEEDS_CSUM); a payload starting with ``b"bad"``
comes back with a deliberately wrong checksum (the partial sum, no NEEDS_CSUM), which the kernel
must drop — the negative control that shows the kernel really checks.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import struct
import sys
import time

import dpkt

from aiostack.drivers.buffers import Packet
from aiostack.drivers.tap import TapDriver

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
UDP_ECHO_PORT = 7


def csum_sum(data: bytes) -> int:
    """One's-complement sum of 16-bit big-endian words, folded (not inverted)."""
    if len(data) & 1:
        data += b"\x00"
    s = int.from_bytes(data, "big") % 0xFFFF
    return s or (0xFFFF if any(data) else 0)


def inet_csum(data: bytes) -> int:
    return (~csum_sum(data)) & 0xFFFF


def pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    return csum_sum(src + dst + struct.pack("!BBH", 0, proto, length))


def l4_checksum_ok(ip: dpkt.ip.IP) -> bool | None:
    """Verify an IPv4 packet's TCP/UDP/ICMP checksum in software; None for other protocols."""
    raw = bytes(ip)
    ihl = (raw[0] & 0x0F) * 4
    total = struct.unpack_from("!H", raw, 2)[0]
    seg = raw[ihl:total]
    if ip.p == dpkt.ip.IP_PROTO_ICMP:
        return csum_sum(seg) == 0xFFFF
    if ip.p in (dpkt.ip.IP_PROTO_TCP, dpkt.ip.IP_PROTO_UDP):
        if ip.p == dpkt.ip.IP_PROTO_UDP and seg[6:8] == b"\x00\x00":
            return True  # UDP over IPv4 without a checksum
        s = pseudo_sum(raw[12:16], raw[16:20], ip.p, len(seg))
        return csum_sum(struct.pack("!H", s) + seg) == 0xFFFF
    return None


def ipv4_header(src: bytes, dst: bytes, proto: int, payload_len: int, ident: int) -> bytes:
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, 0x4000, 64, proto, 0,
                                src, dst))
    struct.pack_into("!H", hdr, 10, inet_csum(bytes(hdr)))
    return bytes(hdr)


class Probe:
    def __init__(self, drv: TapDriver, addr: str) -> None:
        self.drv = drv
        self.addr = ipaddress.IPv4Address(addr).packed
        self.ident = 1
        self.seen: dict[str, int] = {
            "frames": 0, "ipv4": 0, "csum_valid": 0, "csum_ok": 0, "csum_bad": 0,
            "csum_valid_udp": 0, "csum_valid_tcp": 0, "arp_replies": 0, "icmp_replies": 0,
            "udp_echoed": 0, "udp_bad_sent": 0, "big_frames": 0,
        }

    def send(self, q: int, frame: bytes, csum_start: int = -1, csum_offset: int = 0) -> None:
        pkt: Packet = self.drv.pool.packet_from(frame)
        pkt.csum_start = csum_start
        pkt.csum_offset = csum_offset
        self.drv.tx_burst(q, [pkt])

    def gratuitous_arp(self) -> None:
        arp = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=self.drv.mac, spa=self.addr,
                           tha=b"\x00" * 6, tpa=self.addr)
        eth = dpkt.ethernet.Ethernet(dst=BROADCAST, src=self.drv.mac, type=ETH_P_ARP, data=arp)
        self.send(0, bytes(eth))

    def handle(self, q: int, pkt: Packet) -> None:
        raw = pkt.tobytes()
        self.seen["frames"] += 1
        if len(raw) > 1514:
            self.seen["big_frames"] += 1
        eth = dpkt.ethernet.Ethernet(raw)
        if eth.type == ETH_P_ARP:
            arp = eth.data
            if arp.op == dpkt.arp.ARP_OP_REQUEST and arp.tpa == self.addr:
                reply = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REPLY, sha=self.drv.mac, spa=self.addr,
                                     tha=arp.sha, tpa=arp.spa)
                out = dpkt.ethernet.Ethernet(dst=eth.src, src=self.drv.mac, type=ETH_P_ARP, data=reply)
                self.send(q, bytes(out))
                self.seen["arp_replies"] += 1
            return
        if eth.type != ETH_P_IP or not isinstance(eth.data, dpkt.ip.IP):
            return
        ip = eth.data
        self.seen["ipv4"] += 1
        if pkt.csum_valid:
            self.seen["csum_valid"] += 1
            if ip.p == dpkt.ip.IP_PROTO_UDP:
                self.seen["csum_valid_udp"] += 1
            elif ip.p == dpkt.ip.IP_PROTO_TCP:
                self.seen["csum_valid_tcp"] += 1
        else:
            ok = l4_checksum_ok(ip)
            if ok is not None:
                self.seen["csum_ok" if ok else "csum_bad"] += 1
        if ip.dst != self.addr:
            return
        if ip.p == dpkt.ip.IP_PROTO_ICMP and ip.data.type == dpkt.icmp.ICMP_ECHO:
            icmp = bytearray(bytes(ip.data))
            icmp[0] = dpkt.icmp.ICMP_ECHOREPLY
            icmp[2:4] = b"\x00\x00"
            struct.pack_into("!H", icmp, 2, inet_csum(bytes(icmp)))
            frame = eth.src + self.drv.mac + struct.pack("!H", ETH_P_IP)
            frame += ipv4_header(self.addr, ip.src, dpkt.ip.IP_PROTO_ICMP, len(icmp), self.next_id()) + icmp
            self.send(q, frame)
            self.seen["icmp_replies"] += 1
        elif ip.p == dpkt.ip.IP_PROTO_UDP and ip.data.dport == UDP_ECHO_PORT:
            self.udp_echo(q, eth, ip)

    def next_id(self) -> int:
        self.ident = (self.ident + 1) & 0xFFFF
        return self.ident

    def udp_echo(self, q: int, eth: dpkt.ethernet.Ethernet, ip: dpkt.ip.IP) -> None:
        """Echo with a partial checksum the device finishes (or, for b"bad...", a wrong one)."""
        udp = ip.data
        payload = bytes(udp.data)
        length = 8 + len(payload)
        partial = pseudo_sum(self.addr, ip.src, dpkt.ip.IP_PROTO_UDP, length)
        seg = struct.pack("!HHHH", UDP_ECHO_PORT, udp.sport, length, partial) + payload
        frame = eth.src + self.drv.mac + struct.pack("!H", ETH_P_IP)
        frame += ipv4_header(self.addr, ip.src, dpkt.ip.IP_PROTO_UDP, length, self.next_id()) + seg
        if payload.startswith(b"bad"):
            # The pseudo-header sum alone is a wrong checksum unless a device completes it.
            self.send(q, frame)
            self.seen["udp_bad_sent"] += 1
        else:
            self.send(q, frame, csum_start=14 + 20, csum_offset=6)
            self.seen["udp_echoed"] += 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="aiotap0")
    ap.add_argument("--host-addr", default="10.77.0.1/24")
    ap.add_argument("--addr", default="10.77.0.2")
    ap.add_argument("--queues", type=int, default=1)
    ap.add_argument("--no-vnet-hdr", action="store_true")
    ap.add_argument("--vnet-hdr-size", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--offloads", default="csum,tso,gro", help="comma-separated, or empty for none")
    args = ap.parse_args()

    drv = TapDriver(args.name, queues=args.queues, host_addr=args.host_addr,
                    vnet_hdr=not args.no_vnet_hdr, vnet_hdr_size=args.vnet_hdr_size,
                    offloads=[o for o in args.offloads.split(",") if o])
    probe = Probe(drv, args.addr)
    fds = [drv.fileno(q) for q in range(drv.num_queues)]
    print(json.dumps({
        "event": "ready", "name": drv.name, "mac": drv.mac.hex(":"), "fds": fds,
        "ifindex": drv.ifindex, "offloads": {"rx_csum": drv.offloads.rx_csum,
                                             "tx_csum": drv.offloads.tx_csum},
        "hdr_size": drv.hdr_size,
    }), flush=True)
    probe.gratuitous_arp()

    stdin = sys.stdin.fileno()
    deadline = time.monotonic() + args.seconds
    running = True
    while running and time.monotonic() < deadline:
        readable, _, _ = select.select([stdin, *fds], [], [], 0.2)
        for q in range(drv.num_queues):
            for _ in range(16):  # bounded: at most 16 bursts per wake-up
                pkts = drv.rx_burst(q, 64)
                if not pkts:
                    break
                for pkt in pkts:
                    try:
                        probe.handle(q, pkt)
                    finally:
                        pkt.free()
        if stdin in readable and not os.read(stdin, 4096):
            running = False

    print(json.dumps({
        "event": "stats", "seen": probe.seen,
        "counters": [drv.counters(q).as_dict() for q in range(drv.num_queues)],
        "pool_available": drv.pool.available, "pool_count": drv.pool.count,
    }), flush=True)
    drv.close()
    drv.close()  # idempotent
    return 0


if __name__ == "__main__":
    sys.exit(main())
