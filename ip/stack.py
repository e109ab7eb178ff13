"""The network layer of one reactor, sans-I/O: frames and time in, frames and events out.

:class:`IPStack` joins Ethernet, ARP and IPv4 (with fragmentation and reassembly) and
demultiplexes received datagrams to the transports registered in ``transports`` by protocol
number: ICMP (:mod:`.icmp_layer`, ``icmp``) and UDP (:mod:`.udp`, ``udp``), made here, and TCP,
which registers itself. Each gets the stack's one reused :class:`~.datagram.Datagram`. The
reactor hands the stack received frames (``receive``), the current time (``advance``) and
application requests (``udp.sendto`` …); it answers with frames queued on each interface's ``tx``
list and with events: ``udp.ready`` (UDP endpoints that have data or an error),
``icmp.echo_events`` and ``arp_events`` (next hops that resolved or failed, for senders waiting
on them). It never reads a clock or touches a file.

Every frame that is not used is counted in ``drops`` under a reason; nothing raises on bad input.
"""

from __future__ import annotations

import errno
import ipaddress
import random
from collections import Counter
from collections.abc import Callable, Iterable

from ..counts import Counts, fold
from ..drivers.base import Offloads
from ..drivers.buffers import Packet, PacketPool
from ..drivers.steering import queue_for
from . import arp, ethernet, icmp, ipv4, udp
from .checksum import ones_sum
from .datagram import Datagram, Transport
from .flow import FlowRoute
from .fragments import Reassembler, fragment_ranges
from .icmp_layer import IcmpLayer
from .ipv4 import parse_into
from .martians import check as check_martian
from .routes import RouteTable
from .timers import TimerWheel

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

_ETH = ethernet.HEADER_LEN
_IP = ipv4.HEADER_LEN
_FLOW_ROUTES_MAX = 65536
# Copies the compiled build holds as C constants (a module attribute is a lookup by name; _ETH
# too: stack.pxd).
_ETHERTYPE_IPV4 = ethernet.ETHERTYPE_IPV4
_FLAG_MF = ipv4.FLAG_MF
_LIMITED_BROADCAST = ipv4.LIMITED_BROADCAST


class Interface:
    """One attached device port as the network layer sees it: addresses, MTU, offloads, the ARP
    cache, and the frames waiting to be flushed to the driver (``tx``)."""

    __slots__ = (
        "addr",
        "arp",
        "broadcast",
        "gso_max",
        "index",
        "large_pool",
        "mac",
        "mtu",
        "name",
        "netmask",
        "network",
        "offloads",
        "prefix_len",
        "tx",
    )

    def __init__(
        self, index: int, name: str, mac: bytes, addr: int, prefix_len: int, mtu: int, offloads: Offloads
    ) -> None:
        self.index = index
        self.name = name
        self.mac = mac
        self.addr = addr
        self.prefix_len = prefix_len
        self.netmask = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF if prefix_len else 0
        self.network = addr & self.netmask
        self.broadcast = self.network | (~self.netmask & 0xFFFFFFFF) if prefix_len < 31 else 0xFFFFFFFF
        self.mtu = mtu
        self.offloads = offloads
        self.large_pool: PacketPool | None = None
        """The driver's buffers for frames above the MTU (TSO segments)."""
        self.gso_max = 0
        """Most TCP payload bytes one segment may carry for the device to cut (0: no TSO)."""
        self.tx: list[Packet] = []
        self.arp: arp.ArpCache  # set by IPStack.add_interface

    def __repr__(self) -> str:
        return f"<Interface {self.name} {ipv4.ntoa(self.addr)}/{self.prefix_len} mtu {self.mtu}>"


class IPStack:
    """Ethernet/ARP/IPv4 for the interfaces of one reactor, with ICMP and UDP registered as its
    transports."""

    def __init__(
        self,
        pool: PacketPool,
        now: float,
        *,
        timers: TimerWheel | None = None,
        seed: int | None = None,
        icmp_rate: float = 1000.0,
        icmp_burst: float = 50.0,
        reassembly_timeout: float = 30.0,
        reassembly_max_bytes: int = 4 * 1024 * 1024,
        arp_retries: int = 3,
        arp_retry_interval: float = 1.0,
        arp_reachable_time: float = 60.0,
        arp_max_entries: int = 1024,
        arp_max_pending: int = 256,
        arp_queue_total: int = 256,
        arp_locktime: float = 1.0,
    ) -> None:
        self.pool = pool
        self.timers = timers if timers is not None else TimerWheel(now)
        self.rng = random.Random(seed)
        self.interfaces: list[Interface] = []
        self.routes = RouteTable()
        self.reassembler = Reassembler(timeout=reassembly_timeout, max_bytes=reassembly_max_bytes)
        self.drops: Counter[str] = Counts()
        self._stats: Counter[str] = Counts()
        # The per-frame events, counted in C fields and folded into :attr:`stats` when it is read
        # (aiostack/counts.py's fold).
        self._rx_frames = 0
        self._ipv4_rx = 0
        self._ipv4_tx = 0
        self.arp_events: list[tuple[int, bool]] = []
        self.transports: dict[int, Transport] = {}
        """Protocol number → the transport layered on this stack (ICMP and UDP, made below; TCP
        registers itself)."""
        self.dgram = Datagram()
        """The one received-datagram object, refilled for every datagram and handed to its
        transport (a transport copies what it keeps: :mod:`.datagram`)."""
        self.on_arp_reply: Callable[[bytes], None] | None = None
        """Called with the raw frame of every well-formed ARP reply received (a multi-core
        reactor that gets the link's ARP passes them to the others)."""
        self.steering = (0, 1)
        """(this stack's queue, queues): see :meth:`steer_to`."""
        self.on_foreign_frame: Callable[[bytes, int], None] | None = None
        """With :meth:`steer_to`: called with a received frame that concerns another queue's
        stack, and that queue — an ICMP error quoting a flow it owns, the echo reply to its ping
        (the device steers ICMP by addresses alone), a datagram reassembled here from fragments
        (steered by addresses too) whose ports name the other queue: then a frame larger than
        the MTU. Unset, such frames are handled here."""
        self._ident = self.rng.randrange(0x10000)
        self._local_addrs: list[int] = []
        """The interfaces' addresses (the martian checks' LAND test reads them per datagram)."""
        self._flow_routes: dict[tuple[int, int, int], FlowRoute] = {}
        """Shared by every flow between the same two addresses (~200 bytes each, which counts
        when a reactor holds a million connections)."""
        self._arp_opts = {
            "retries": arp_retries,
            "retry_interval": arp_retry_interval,
            "reachable_time": arp_reachable_time,
            "max_entries": arp_max_entries,
            "max_pending": arp_max_pending,
            "queue_total_limit": arp_queue_total,
            "locktime": arp_locktime,
        }
        self.icmp = IcmpLayer(self, icmp_rate, icmp_burst)
        self.udp = udp.UdpLayer(self)

    # == configuration ========================================================================
    @property
    def stats(self) -> Counter[str]:
        """Events counted by name (frames received, datagrams sent, ARP …)."""
        stats = self._stats
        fold(stats, "rx_frames", self._rx_frames)
        fold(stats, "ipv4_rx", self._ipv4_rx)
        fold(stats, "ipv4_tx", self._ipv4_tx)
        self._rx_frames = self._ipv4_rx = self._ipv4_tx = 0
        return stats

    def add_interface(
        self,
        name: str,
        mac: bytes,
        addr: str | ipaddress.IPv4Interface,
        *,
        mtu: int = 1500,
        offloads: Offloads | None = None,
        large_pool: PacketPool | None = None,
    ) -> Interface:
        iface_addr = ipaddress.IPv4Interface(addr)
        # RFC 791 §3.2: every link carries 68-byte datagrams unfragmented; below that, no IP at all.
        if mtu < 68 or mtu + _ETH > self.pool.mtu_capacity:
            raise ValueError(
                f"MTU {mtu} must be at least 68 (RFC 791) and fit a {self.pool.mtu_capacity}-byte buffer"
            )
        index = len(self.interfaces)
        iface = Interface(
            index, name, bytes(mac), int(iface_addr.ip), iface_addr.network.prefixlen, mtu, offloads or Offloads()
        )
        if iface.offloads.tso and iface.offloads.tx_csum and large_pool is not None:
            iface.large_pool = large_pool
            # A 64 KB IPv4 datagram less the IP header and the largest TCP header.
            iface.gso_max = min(0xFFFF, large_pool.mtu_capacity - _ETH) - _IP - 60
        iface.arp = arp.ArpCache(
            self.timers,
            send_request=lambda ip, dst_mac, i=iface: self._send_arp(i, arp.OP_REQUEST, dst_mac, ip),
            on_failure=self._arp_failed,
            on_resolved=lambda ip, mac_, pkts, i=iface: self._arp_resolved(i, ip, mac_, pkts),
            drops=self.drops,
            stats=self._stats,
            **self._arp_opts,  # type: ignore[arg-type]
        )
        self.interfaces.append(iface)
        self._local_addrs.append(iface.addr)
        self.routes.add(iface.network, iface.prefix_len, index)
        return iface

    def set_gateway(self, gateway: str | int, iface: int = 0) -> None:
        gw = ipv4.aton(gateway) if isinstance(gateway, str) else gateway
        it = self.interfaces[iface]
        if gw & it.netmask != it.network:
            raise ValueError(f"gateway {ipv4.ntoa(gw)} is not on {it.name}'s subnet")
        self.routes.add(0, 0, iface, gw)

    def start(self, now: float) -> None:
        """Announce every interface with a gratuitous ARP request (RFC 5227 §3: sender and target
        protocol address both ours), so neighbours refresh stale entries for our address."""
        for iface in self.interfaces:
            self._send_arp(iface, arp.OP_REQUEST, ethernet.BROADCAST, iface.addr, tha=ethernet.ZERO_MAC)

    # == time =================================================================================
    def advance(self, now: float) -> None:
        """Fire due timers (ARP retries) and expire reassembly (with ICMP Time Exceeded)."""
        self.timers.advance(now)
        deadline = self.reassembler.next_deadline()
        if deadline is not None and deadline <= now:
            for quote in self.reassembler.expire(now):
                self.icmp.send_error(icmp.TIME_EXCEEDED, icmp.CODE_REASSEMBLY_EXCEEDED, quote, False, now)

    def next_deadline(self) -> float | None:
        a = self.timers.next_deadline()
        b = self.reassembler.next_deadline()
        if a is None:
            return b
        return a if b is None else min(a, b)

    # == receive ==============================================================================
    def receive(self, iface: Interface, pkt: Packet, now: float) -> None:
        """Process one received frame. The caller still owns ``pkt`` and frees it afterwards;
        anything kept is copied."""
        buf = pkt.buf
        off = pkt.start
        end = pkt.end
        if end - off < _ETH:
            self.drops["eth_truncated"] += 1
            return
        self._rx_frames += 1
        # same_bytes: a C inline function cimported from speedups.pxd (speedups.py says why)
        for_us = same_bytes(buf, off, iface.mac) if _COMPILED else buf[off : off + 6] == iface.mac  # noqa: F821
        if buf[off] & 1:
            if buf[off : off + 6] != ethernet.BROADCAST:
                self.drops["eth_multicast"] += 1
                return
            link_bcast = True
        elif not for_us:
            self.drops["eth_not_for_us"] += 1
            return
        else:
            link_bcast = False
        if buf[off + 6] & 1:
            self.drops["eth_bad_source"] += 1
            return
        ethertype = (buf[off + 12] << 8) | buf[off + 13]
        if ethertype == _ETHERTYPE_IPV4:
            self._ipv4_input(iface, pkt, off + _ETH, end, link_bcast, now)
        elif ethertype == ethernet.ETHERTYPE_ARP:
            self._arp_input(iface, buf, off + _ETH, end, now)
        elif ethertype == ethernet.ETHERTYPE_IPV6:
            self.drops["eth_ipv6_unsupported"] += 1
        elif ethertype == ethernet.ETHERTYPE_VLAN:
            self.drops["eth_vlan_unsupported"] += 1
        else:
            self.drops["eth_unknown_type"] += 1

    def _arp_input(self, iface: Interface, buf: bytearray, off: int, end: int, now: float) -> None:
        a = arp.parse_packet(buf, off, end)
        if isinstance(a, str):
            self.drops[a] += 1
            return
        self._stats["arp_rx"] += 1
        if self.on_arp_reply is not None and a.op == arp.OP_REPLY:
            self.on_arp_reply(bytes(buf[off - _ETH : end]))
        if a.spa == iface.addr and a.sha != iface.mac:
            # RFC 5227 §2.4: someone else claims our address; defend it once, say so in counters.
            self._stats["arp_address_conflict"] += 1
            self._send_arp(iface, arp.OP_REQUEST, ethernet.BROADCAST, iface.addr, tha=ethernet.ZERO_MAC)
            return
        if a.tpa == iface.addr:
            self._stats["arp_for_us"] += 1
            if a.spa:  # RFC 826: only a request for us from our subnet creates an entry
                iface.arp.learn(a.spa, a.sha, now,
                                create=a.op == arp.OP_REQUEST and a.spa & iface.netmask == iface.network)
            if a.op == arp.OP_REQUEST:
                self._send_arp(iface, arp.OP_REPLY, a.sha, a.spa, tha=a.sha)
            return
        if a.spa and a.spa & iface.netmask == iface.network:
            iface.arp.learn(a.spa, a.sha, now, create=False)
        if a.spa == a.tpa:
            # A gratuitous ARP (RFC 5227 §3): an announcement, used above to refresh the entry.
            self._stats["arp_gratuitous"] += 1
        else:
            self.drops["arp_not_for_us"] += 1

    def _ipv4_input(
        self, iface: Interface, pkt: Packet, off: int, end: int, link_bcast: bool, now: float
    ) -> None:
        buf = pkt.buf
        view = pkt.view
        hdr = self.dgram
        reason = parse_into(hdr, buf, off, end)
        if reason is not None:
            self.drops[reason] += 1
            return
        end = off + hdr.total_length
        dst = hdr.dst
        if dst == iface.addr:
            dst_bcast = False
        elif dst == _LIMITED_BROADCAST or dst == iface.broadcast:
            dst_bcast = True
        elif ipv4.is_multicast(dst):
            self.drops["ipv4_multicast_unsupported"] += 1
            return
        else:
            self.drops["ipv4_not_for_us"] += 1
            return
        src = hdr.src
        if (martian := check_martian(hdr, buf, off, iface.broadcast, self._local_addrs, self._stats)) is not None:
            self.drops[martian] += 1
            return
        if link_bcast and not dst_bcast:
            # RFC 1122 §3.3.6: a unicast IP datagram in a link-layer broadcast is discarded.
            self.drops["ipv4_unicast_in_link_broadcast"] += 1
            return
        self._ipv4_rx += 1
        hl = hdr.header_len
        if hdr.flags & _FLAG_MF or hdr.offset:
            before = sum(self.reassembler.drops.values())
            whole = self.reassembler.add(
                src, dst, hdr.proto, hdr.ident, hdr.offset, bool(hdr.flags & ipv4.FLAG_MF),
                view[off + hl : end], now, header=bytes(view[off : off + hl]),
            )
            dropped = sum(self.reassembler.drops.values()) - before
            if dropped:
                self._stats["ipv4_fragments_dropped"] += dropped
            if whole is None:
                if not dropped:
                    self._stats["ipv4_fragments_queued"] += 1
                return
            self._stats["ipv4_reassembled"] += 1
            # The reassembled datagram as if it had arrived whole: its header with the fragment
            # fields cleared, followed by the payload (needed for ICMP quotes).
            header = bytearray(view[off : off + hl])
            total = hl + len(whole)
            header[2] = total >> 8 & 0xFF
            header[3] = total & 0xFF
            header[6] = header[7] = header[10] = header[11] = 0
            csum = ~ones_sum(header) & 0xFFFF  # a valid header: it may be quoted, or handed over
            header[10] = csum >> 8
            header[11] = csum & 0xFF
            data = bytes(header) + whole
            queues = self.steering[1]
            if queues > 1 and hdr.proto in (ipv4.PROTO_UDP, ipv4.PROTO_TCP) and len(whole) >= 4:
                # Fragments carry no ports, so the device steered them all by addresses, here;
                # the whole datagram belongs to the reactor its ports name.
                owner = queue_for(queues, src, dst, (whole[0] << 8) | whole[1], (whole[2] << 8) | whole[3])
                if carry := self.elsewhere(owner):
                    carry(bytes(view[off - _ETH : off]) + data, owner)
                    self._stats["ipv4_reassembled_handed_over"] += 1
                    return
            view = memoryview(data)
            off = 0
            end = len(data)
            hdr.total_length = end
            hdr.flags = hdr.offset = 0
            csum_valid = False
        else:
            csum_valid = pkt.csum_valid
        hdr.iface = iface
        hdr.view = view
        hdr.ip_off = off
        hdr.l4 = off + hl
        hdr.end = end
        hdr.csum_valid = csum_valid
        hdr.link_bcast = link_bcast
        hdr.dst_bcast = dst_bcast
        # To the transport registered for the protocol; none: Protocol Unreachable (RFC 1122
        # §3.2.2.1) unless it was sent to a broadcast address.
        transport = self.transports.get(hdr.proto)
        if transport is not None:
            if isinstance(transport, Transport):
                base = transport  # typed: compiled, input is a C call through the vtable
                base.input(hdr, now)
            else:
                transport.input(hdr, now)
            return
        self.drops["ipv4_unknown_protocol"] += 1
        if not dst_bcast:
            self.icmp.send_error(icmp.DEST_UNREACHABLE, icmp.CODE_PROTOCOL_UNREACHABLE, hdr.quoted(), link_bcast, now)

    def steer_to(self, queue: int, queues: int) -> None:
        """This stack serves ``queue`` of a device with ``queues`` queues that steers flows by
        :func:`aiostack.drivers.steering.queue_for` (one reactor per queue): ephemeral ports (TCP
        connect, UDP autobind) are picked so the device steers their replies back here (mTCP,
        F-Stack and Seastar do the same with their RSS hash), ping identifiers name this queue,
        and what the device could only steer by addresses — ICMP about another queue's flow or
        ping, datagrams reassembled from fragments — goes to the queue that owns it, through
        :attr:`on_foreign_frame` (Seastar forwards such packets between cores the same way)."""
        if not 0 <= queue < queues:
            raise ValueError(f"queue {queue} is not one of {queues}")
        self.steering = (queue, queues)

    def steers_here(self, local: int, remote: int, lport: int, rport: int) -> bool:
        """Whether the device steers the flow (local, lport) ↔ (remote, rport) to this stack."""
        queue, queues = self.steering
        return queues == 1 or queue_for(queues, local, remote, lport, rport) == queue

    def elsewhere(self, owner: int) -> Callable[[bytes, int], None] | None:
        """What carries a frame to the stack of queue ``owner``, if that is not this one (the
        frame is copied only then)."""
        return self.on_foreign_frame if owner != self.steering[0] else None

    # == transmit =============================================================================
    def next_ident(self) -> int:
        """The IPv4 Identification for the next datagram sent (a per-stack counter)."""
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident


    def alloc(self) -> Packet:
        """A transmit buffer from the pool; OSError(ENOBUFS), counted, when it is empty."""
        pkt = self.pool.try_alloc()
        if pkt is None:
            self.drops["tx_pool_exhausted"] += 1
            raise OSError(errno.ENOBUFS, "no packet buffer available")
        return pkt

    def flow_route(self, src: int, dst: int, proto: int) -> FlowRoute | None:
        """The transmit template for datagrams of ``proto`` from ``src`` to ``dst``
        (:mod:`.flow`), made under the current routes and cached; None when there is no route or
        ``dst`` is a broadcast address (:meth:`ip_output` handles those)."""
        version = self.routes.version
        cache = self._flow_routes
        key = (src, dst, proto)
        rt = cache.get(key)
        if rt is not None and rt.version == version:
            return rt
        try:
            iface, hop = self.route(dst)
        except OSError:
            return None
        if dst == ipv4.LIMITED_BROADCAST or dst == iface.broadcast:
            return None
        rt = FlowRoute(version, iface, hop, src, dst, proto)
        if len(cache) >= _FLOW_ROUTES_MAX:
            cache.clear()  # the flows keep theirs; later ones share anew
        cache[key] = rt
        return rt

    def flow_output(self, rt: FlowRoute, pkt: Packet, l4_off: int, l4_len: int, mac: bytes) -> None:
        """Send the transport segment at ``pkt.buf[l4_off:]`` (``l4_len`` bytes) along ``rt`` to
        the next hop ``mac`` (:meth:`FlowRoute.next_hop_mac`): headers written in the headroom,
        the frame queued for the flush."""
        pkt.start = rt.write(pkt.buf, l4_off, l4_len, self.next_ident(), mac)
        pkt.end = l4_off + l4_len
        iface = rt.iface
        iface.tx.append(pkt)
        self._ipv4_tx += 1

    def route(self, dst: int) -> tuple[Interface, int]:
        """(interface, next hop) for ``dst``; OSError(ENETUNREACH) when there is no route."""
        if dst == ipv4.LIMITED_BROADCAST:
            if not self.interfaces:
                raise OSError(errno.ENETUNREACH, "no interface")
            return self.interfaces[0], dst
        index, hop = self.routes.lookup(dst)
        return self.interfaces[index], hop

    def send_ip(
        self,
        dst: int,
        proto: int,
        message: bytes | bytearray | memoryview,
        now: float,
        *,
        src: int = 0,
        ttl: int = ipv4.DEFAULT_TTL,
        tos: int = 0,
    ) -> int:
        """Send a complete transport message (checksum already in it), fragmenting to the MTU
        (RFC 791 §3.2). Returns 0 when the frames are queued for the driver, or the next-hop
        address whose ARP resolution they wait for (see ``arp_events``)."""
        if not 1 <= ttl <= 255:
            # RFC 1122 §3.2.1.7: a host must never send a datagram with TTL 0.
            raise OSError(errno.EINVAL, f"TTL {ttl} out of range 1-255")
        iface, hop = self.route(dst)
        src = src or iface.addr
        n = len(message)
        if n > ipv4.MAX_PACKET - _IP:
            raise OSError(errno.EMSGSIZE, f"{n}-byte payload exceeds the IPv4 maximum")
        if _IP + n <= iface.mtu:
            pkt = self.alloc()
            start = pkt.start
            pkt.buf[start : start + n] = message
            pkt.end = start + n
            self.ip_output(iface, hop, pkt, src, dst, proto, ttl, tos, 0, 0, now)
            return hop if self._pending_on(iface, hop) else 0
        pieces = fragment_ranges(n, iface.mtu, _IP)
        if self.pool.available < len(pieces):
            self.drops["tx_pool_exhausted"] += 1
            raise OSError(errno.ENOBUFS, "not enough packet buffers for the fragments")
        ident = self.next_ident()
        mv = memoryview(message)
        for offset, length, more in pieces:
            pkt = self.alloc()
            start = pkt.start
            pkt.buf[start : start + length] = mv[offset : offset + length]
            pkt.end = start + length
            flags = ipv4.FLAG_MF if more else 0
            self.ip_output(iface, hop, pkt, src, dst, proto, ttl, tos, flags, offset, now, ident)
        self._stats["ipv4_tx_fragmented"] += 1
        self._stats["ipv4_tx_fragments"] += len(pieces)
        return hop if self._pending_on(iface, hop) else 0

    def _pending_on(self, iface: Interface, hop: int) -> bool:
        return hop in iface.arp.pending

    def ip_output(
        self,
        iface: Interface,
        hop: int,
        pkt: Packet,
        src: int,
        dst: int,
        proto: int,
        ttl: int,
        tos: int,
        flags: int,
        frag_offset: int,
        now: float,
        ident: int | None = None,
    ) -> None:
        """Prepend the IPv4 header to ``pkt`` (which starts at the transport header) and hand it to
        the link; ARP may hold it until ``hop`` resolves (``hop in iface.arp.pending`` then)."""
        off = pkt.prepend(_IP)
        ipv4.write_header(
            pkt.buf, off, total_length=pkt.end - off, ident=self.next_ident() if ident is None else ident,
            proto=proto, src=src, dst=dst, ttl=ttl, tos=tos, flags=flags, frag_offset=frag_offset,
        )
        self._ipv4_tx += 1
        if dst == ipv4.LIMITED_BROADCAST or dst == iface.broadcast:
            self._link_out(iface, pkt, ethernet.BROADCAST)
            return
        mac = iface.arp.lookup(hop, now)
        if mac is None:
            iface.arp.enqueue(hop, pkt, now)
        else:
            self._link_out(iface, pkt, mac)

    def _link_out(self, iface: Interface, pkt: Packet, dst_mac: bytes) -> None:
        off = pkt.prepend(_ETH)
        ethernet.write_header(pkt.buf, off, dst_mac, iface.mac, ethernet.ETHERTYPE_IPV4)
        iface.tx.append(pkt)

    def _send_arp(
        self, iface: Interface, op: int, dst_mac: bytes, tpa: int, tha: bytes = ethernet.ZERO_MAC
    ) -> None:
        pkt = self.pool.try_alloc()
        if pkt is None:
            self.drops["tx_pool_exhausted"] += 1
            return
        off = pkt.start
        arp.write_packet(pkt.buf, off, op, iface.mac, iface.addr, tha, tpa)
        pkt.end = off + arp.PACKET_LEN
        # Pad to the Ethernet minimum so every link (and every pcap reader) sees a legal frame.
        pad = ethernet.MIN_FRAME - _ETH - arp.PACKET_LEN
        pkt.buf[pkt.end : pkt.end + pad] = bytes(pad)
        pkt.end += pad
        off = pkt.prepend(_ETH)
        ethernet.write_header(pkt.buf, off, dst_mac, iface.mac, ethernet.ETHERTYPE_ARP)
        iface.tx.append(pkt)
        self._stats["arp_tx"] += 1

    def _arp_resolved(self, iface: Interface, ip: int, mac: bytes, packets: Iterable[Packet]) -> None:
        for pkt in packets:
            self._link_out(iface, pkt, mac)
        self.arp_events.append((ip, True))

    def _arp_failed(self, ip: int) -> None:
        self.arp_events.append((ip, False))

    # == the transports' calls, kept on the stack for callers that predate them ================
    def udp_bind(self, addr: int = 0, port: int = 0, *, toward: tuple[int, int] | None = None) -> udp.UdpEndpoint:
        """:meth:`UdpLayer.bind <.udp.UdpLayer.bind>`."""
        return self.udp.bind(addr, port, toward=toward)

    def udp_close(self, ep: udp.UdpEndpoint) -> None:
        self.udp.close(ep)

    def udp_sendto(
        self, ep: udp.UdpEndpoint, data: bytes | bytearray | memoryview, dst: int, dport: int, now: float
    ) -> int:
        """:meth:`UdpLayer.sendto <.udp.UdpLayer.sendto>`."""
        return self.udp.sendto(ep, data, dst, dport, now)

    def take_ready(self) -> set[udp.UdpEndpoint]:
        return self.udp.take_ready()

    def send_echo_request(self, dst: int, ident: int, seq: int, payload: bytes, now: float) -> int:
        """:meth:`IcmpLayer.send_echo_request <.icmp_layer.IcmpLayer.send_echo_request>`."""
        return self.icmp.send_echo_request(dst, ident, seq, payload, now)

    def take_echo_events(self) -> list[tuple[int, int, int, bytes]]:
        return self.icmp.take_echo_events()

    def take_arp_events(self) -> list[tuple[int, bool]]:
        events = self.arp_events
        self.arp_events = []
        return events

    def counters(self) -> dict[str, object]:
        drops = Counter(self.drops)
        drops.update(self.reassembler.drops)
        arp_state = {  # the neighbour tables' bounded state (ip/arp.py), summed over interfaces
            "entries": sum(len(i.arp.entries) for i in self.interfaces),
            "resolving": sum(len(i.arp.pending) for i in self.interfaces),
            "queued": sum(i.arp.queued for i in self.interfaces),
        }
        return {"stats": dict(self.stats), "drops": dict(drops), "arp": arp_state}

    def close(self) -> None:
        for iface in self.interfaces:
            iface.arp.close()
            for pkt in iface.tx:
                pkt.free()
            iface.tx.clear()
