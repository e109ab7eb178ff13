"""Frame crafting for tests, with dpkt (an independent implementation of the wire formats), and
a harness that drives one sans-I/O IPStack on a virtual clock."""

from __future__ import annotations

import socket
import struct

import dpkt

from aiostack.drivers.buffers import PacketPool
from aiostack.ip import ipv4
from aiostack.ip.stack import Interface, IPStack

STACK_MAC = bytes.fromhex("020000000002")
PEER_MAC = bytes.fromhex("020000000001")
STACK_IP = "10.0.0.2"
PEER_IP = "10.0.0.1"
BCAST_MAC = b"\xff" * 6


def ip_bytes(text: str) -> bytes:
    return socket.inet_aton(text)


def eth(
    payload: bytes | dpkt.Packet, *, dst: bytes = STACK_MAC, src: bytes = PEER_MAC, etype: int = 0x0800
) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=etype, data=payload))


def ip4(
    payload: bytes | dpkt.Packet,
    *,
    proto: int,
    src: str = PEER_IP,
    dst: str = STACK_IP,
    ttl: int = 64,
    ident: int = 1,
) -> dpkt.ip.IP:
    pkt = dpkt.ip.IP(src=ip_bytes(src), dst=ip_bytes(dst), p=proto, ttl=ttl, id=ident, data=payload)
    pkt.len = 20 + len(bytes(payload))
    return pkt


def udp_frame(
    payload: bytes,
    *,
    sport: int = 5000,
    dport: int = 7,
    src: str = PEER_IP,
    dst: str = STACK_IP,
    dst_mac: bytes = STACK_MAC,
) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = 8 + len(payload)
    ip = ip4(u, proto=17, src=src, dst=dst)
    return eth(ip, dst=dst_mac)


def icmp_echo_frame(
    data: bytes = b"ping",
    *,
    ident: int = 0x1234,
    seq: int = 1,
    src: str = PEER_IP,
    dst: str = STACK_IP,
    dst_mac: bytes = STACK_MAC,
) -> bytes:
    echo = dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=data)
    msg = dpkt.icmp.ICMP(type=8, code=0, data=echo)
    return eth(ip4(msg, proto=1, src=src, dst=dst), dst=dst_mac)


def arp_frame(
    op: int,
    *,
    spa: str = PEER_IP,
    tpa: str = STACK_IP,
    sha: bytes = PEER_MAC,
    tha: bytes = b"\0" * 6,
    dst: bytes = BCAST_MAC,
) -> bytes:
    a = dpkt.arp.ARP(op=op, sha=sha, spa=ip_bytes(spa), tha=tha, tpa=ip_bytes(tpa))
    return eth(a, dst=dst, src=sha, etype=0x0806)


def fragments(datagram: dpkt.ip.IP, size: int) -> list[dpkt.ip.IP]:
    """Cut ``datagram`` (an IP packet with its payload) into fragments of ``size`` payload bytes
    (a multiple of 8), the way a sender would."""
    payload = bytes(datagram.data)
    out = []
    for offset in range(0, len(payload), size):
        chunk = payload[offset : offset + size]
        more = offset + size < len(payload)
        frag = dpkt.ip.IP(
            src=datagram.src,
            dst=datagram.dst,
            p=datagram.p,
            ttl=datagram.ttl,
            id=datagram.id,
            offset=offset >> 3,
            mf=int(more),
            data=chunk,
        )
        frag.len = 20 + len(chunk)
        out.append(frag)
    return out


class Harness:
    """One IPStack with one interface, a virtual clock, and the frames it sent."""

    def __init__(self, *, mtu: int = 1500, seed: int = 1, **kw: object) -> None:
        self.now = 1000.0
        self.pool = PacketPool(count=1024)
        self.ip = IPStack(self.pool, self.now, seed=seed, **kw)  # type: ignore[arg-type]
        self.iface: Interface = self.ip.add_interface("test0", STACK_MAC, f"{STACK_IP}/24", mtu=mtu)

    def feed(self, frame: bytes) -> list[bytes]:
        pkt = self.pool.packet_from(frame)
        self.ip.receive(self.iface, pkt, self.now)
        pkt.free()
        return self.sent()

    def advance(self, seconds: float) -> list[bytes]:
        self.now += seconds
        self.ip.advance(self.now)
        return self.sent()

    def sent(self) -> list[bytes]:
        out = [p.tobytes() for p in self.iface.tx]
        for p in self.iface.tx:
            p.free()
        self.iface.tx.clear()
        return out

    def learn_peer(self) -> None:
        """Let the stack know the peer's MAC (as an ARP request from it would)."""
        self.feed(arp_frame(dpkt.arp.ARP_OP_REQUEST))

    def udp_bind(self, port: int) -> object:
        return self.ip.udp_bind(0, port)

    def sendto(self, ep: object, data: bytes, dst: str = PEER_IP, dport: int = 5000) -> int:
        return self.ip.udp_sendto(ep, data, ipv4.aton(dst), dport, self.now)  # type: ignore[arg-type]


def parse(frame: bytes) -> dpkt.ethernet.Ethernet:
    return dpkt.ethernet.Ethernet(frame)


def checksum_ok(ip: dpkt.ip.IP) -> bool:
    """Recompute the IP and L4 checksums with dpkt and compare."""
    raw = bytes(ip)
    hdr = bytearray(raw[: ip.hl * 4])
    got = struct.unpack("!H", hdr[10:12])[0]
    hdr[10:12] = b"\0\0"
    return got == dpkt.in_cksum(bytes(hdr))
