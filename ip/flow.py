"""The network layer's per-flow transmit template (Linux's cached route plus the IPv4 header a
socket would build, in one object).

A transport that sends many datagrams between the same two addresses asks the IPv4 stack once for
a :class:`FlowRoute` (:meth:`~aiostack.ip.stack.IPStack.flow_route`) and keeps it: the outgoing
interface, the next hop, the constant parts of the Ethernet header and of both checksums. Each
datagram then costs one :meth:`FlowRoute.write` — Ethernet and IPv4 headers in front of the
transport header, in the packet's headroom — and the transport never learns the IPv4 layout.
A route is good while the routing table's ``version`` is the one it was made under.

TCP datagrams carry Don't Fragment (RFC 1191 §3: path-MTU discovery sets DF on every datagram;
Linux's ``ip_no_pmtu_disc=0`` default does it for TCP): a router on a smaller-MTU path then says
so with an ICMP Fragmentation Needed (whose MTU lands in :attr:`FlowRoute.pmtu`, see
``TcpLayer.icmp_error``) instead of fragmenting every segment.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from . import ethernet, ipv4

if TYPE_CHECKING:
    from .stack import Interface

_ETH_IPV4 = struct.Struct("!6s8s" + ipv4.HEADER.format.lstrip("!"))
"""Destination MAC, source MAC + EtherType, then the IPv4 header without options (RFC 791 §3.1)."""
HEADERS_LEN = ethernet.HEADER_LEN + ipv4.HEADER_LEN
"""Bytes :meth:`FlowRoute.write` puts in front of the transport header."""
# Copies the compiled build holds as C constants (flow.pxd): a module attribute is a lookup by
# name, and arithmetic on it boxes.
_HEADERS_LEN = HEADERS_LEN
_ETH_HEADER_LEN = ethernet.HEADER_LEN
_IP_HEADER_LEN = ipv4.HEADER_LEN

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False


def _fold(s: int) -> int:
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


class FlowRoute:
    """Where the datagrams of one (source, destination, protocol) go, and their headers' constant
    parts. ``pseudo_sum`` is the transport pseudo-header's sum less its length (RFC 768, RFC 9293
    §3.1): add the transport length and fold."""

    __slots__ = (
        "_headers", "_mac", "arp", "dst", "eth_tail", "frag", "hop", "iface", "ip_sum", "pmtu", "proto", "pseudo_sum",
        "src", "ttl", "version",
    )

    def __init__(self, version: int, iface: Interface, hop: int, src: int, dst: int, proto: int,
                 ttl: int = ipv4.DEFAULT_TTL) -> None:
        self.version = version
        self.iface = iface
        self.arp = iface.arp
        """The interface's ARP cache (held here too: a typed C call per datagram)."""
        self.hop = hop
        self.src = src
        self.dst = dst
        self.proto = proto
        self.ttl = ttl
        self.eth_tail = iface.mac + ethernet.ETHERTYPE_IPV4.to_bytes(2, "big")
        self.frag = ipv4.FLAG_DF if proto == ipv4.PROTO_TCP else 0
        """The flags/fragment-offset word: DF for TCP (module notes)."""
        self.pmtu = iface.mtu
        """The path MTU toward ``dst`` (RFC 1191): the interface's, lowered by validated
        Fragmentation Needed messages, never below ``icmp.PMTU_FLOOR``."""
        addr_sum = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        # The IPv4 header's words that do not change between datagrams: version/IHL, flags,
        # TTL/protocol, the addresses; total length and identification are added per datagram
        # (RFC 1071).
        self.ip_sum = 0x4500 + self.frag + (ttl << 8 | proto) + addr_sum
        self.pseudo_sum = addr_sum + proto
        # Both headers as they go out, but for the three IPv4 fields that change per datagram
        # (total length, identification, checksum): copied in whole, then those six bytes
        # patched, which costs less than packing fourteen fields anew every time.
        self._headers = bytearray(HEADERS_LEN)
        self._mac = b""

    def next_hop_mac(self, now: float) -> bytes | None:
        """The next hop's MAC from the ARP cache; None while it is unknown (the general path then
        queues the datagram and resolves it)."""
        return self.arp.lookup(self.hop, now)  # type: ignore[no-any-return]

    def pseudo_header_sum(self, l4_len: int) -> int:
        """The folded (not inverted) pseudo-header sum for a transport segment of ``l4_len`` bytes:
        what a checksum-offloading device expects in the checksum field."""
        return _fold(self.pseudo_sum + l4_len)

    def write(self, buf: bytearray, l4_off: int, l4_len: int, ident: int, mac: bytes) -> int:
        """Write the Ethernet and IPv4 headers in front of the transport header at
        ``buf[l4_off]`` (``l4_len`` bytes of transport header and payload); returns the offset
        where the frame now starts."""
        if mac != self._mac:
            _ETH_IPV4.pack_into(
                self._headers, 0, mac, self.eth_tail, 0x45, 0, 0, 0, self.frag, self.ttl, self.proto, 0, self.src,
                self.dst,
            )
            self._mac = mac
        total = _IP_HEADER_LEN + l4_len
        csum = ~_fold(self.ip_sum + total + ident) & 0xFFFF
        eth_off = l4_off - _HEADERS_LEN
        if _COMPILED:
            put_bytes(buf, eth_off, self._headers)  # noqa: F821 (a memcpy cimported from speedups.pxd)
        else:
            buf[eth_off:l4_off] = self._headers
        ip_off = eth_off + _ETH_HEADER_LEN
        buf[ip_off + 2] = total >> 8
        buf[ip_off + 3] = total & 0xFF
        buf[ip_off + 4] = ident >> 8
        buf[ip_off + 5] = ident & 0xFF
        buf[ip_off + 10] = csum >> 8
        buf[ip_off + 11] = csum & 0xFF
        return eth_off
