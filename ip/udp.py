"""UDP (RFC 768) with the host rules of RFC 1122 §4.1: endpoints, port demultiplexing, and the
transport the network layer hands UDP datagrams and ICMP errors to.

An :class:`UdpEndpoint` is the sans-I/O half of a UDP socket: a bound address, an optional
connected peer, a receive queue capped in bytes (like SO_RCVBUF) and a pending error slot (like
SO_ERROR, fed by ICMP errors for connected endpoints, as Linux does). :class:`UdpLayer` is the
UDP of one :class:`~aiostack.ip.stack.IPStack` (its ``udp``, registered in its ``transports``
under protocol 17 like TCP): the receive path, the send path, and the endpoints with data or an
error for the socket layer to wake (``ready``).
"""

from __future__ import annotations

import errno
import random
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import icmp
from .checksum import ones_sum, pseudo_header_sum
from .datagram import Datagram, Transport
from .ipv4 import HEADER_LEN as IP_HEADER_LEN
from .ipv4 import LIMITED_BROADCAST, PROTO_UDP, is_multicast, ntoa

if TYPE_CHECKING:
    from .stack import IPStack

HEADER_LEN = 8
HEADER = struct.Struct("!HHHH")
_PORTS = struct.Struct("!HH")
_CSUM_START = 14 + IP_HEADER_LEN
"""Where the UDP header starts in a frame we send (Ethernet, IPv4 without options)."""
_CSUM_OFFSET = 6
MAX_PAYLOAD = 65535 - 20 - HEADER_LEN
EPHEMERAL_FIRST = 32768
EPHEMERAL_LAST = 60999
"""Linux's default ip_local_port_range."""

DEFAULT_RCVBUF = 212992
"""Linux's default net.core.rmem_default."""


class UdpEndpoint:
    """One bound UDP port. ``local_addr`` 0 means any address of the stack."""

    __slots__ = (
        "broadcast",
        "closed",
        "error",
        "local_addr",
        "local_port",
        "rcvbuf",
        "remote_addr",
        "remote_port",
        "rx",
        "rx_bytes",
        "ttl",
    )

    def __init__(self, local_addr: int, local_port: int) -> None:
        self.local_addr = local_addr
        self.local_port = local_port
        self.remote_addr = 0
        self.remote_port = 0
        self.rx: deque[tuple[bytes, tuple[int, int]]] = deque()
        self.rx_bytes = 0
        self.rcvbuf = DEFAULT_RCVBUF
        self.error = 0
        self.broadcast = False
        self.ttl = 64
        self.closed = False

    @property
    def connected(self) -> bool:
        return self.remote_port != 0

    def take_error(self) -> int:
        """Return and clear the pending errno (0 when none), as getsockopt(SO_ERROR) does."""
        err, self.error = self.error, 0
        return err


class UdpPortTable:
    """Port → endpoint demultiplexing; allocation of ephemeral ports."""

    def __init__(self, rng: random.Random) -> None:
        self.by_port: dict[int, UdpEndpoint] = {}
        self._rng = rng

    def bind(self, local_addr: int, port: int, *, accept: Callable[[int], bool] | None = None) -> UdpEndpoint:
        """A new endpoint on ``port`` (0 picks an ephemeral one, one ``accept`` takes if given).
        OSError(EADDRINUSE) when taken."""
        if port == 0:
            port = self._ephemeral(accept)
        elif not 0 < port < 65536:
            raise OSError(errno.EINVAL, f"port {port} out of range")
        elif port in self.by_port:
            raise OSError(errno.EADDRINUSE, f"UDP port {port} is already in use")
        ep = UdpEndpoint(local_addr, port)
        self.by_port[port] = ep
        return ep

    def _ephemeral(self, accept: Callable[[int], bool] | None = None) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        start = self._rng.randrange(span)
        for i in range(span):
            port = EPHEMERAL_FIRST + (start + i) % span
            if port not in self.by_port and (accept is None or accept(port)):
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no free ephemeral UDP port")

    def lookup(self, dst_addr: int, dst_port: int, src_addr: int, src_port: int) -> UdpEndpoint | None:
        ep = self.by_port.get(dst_port)
        if ep is None:
            return None
        if ep.local_addr and ep.local_addr != dst_addr:
            return None
        if ep.remote_port and (ep.remote_addr != src_addr or ep.remote_port != src_port):
            return None
        return ep

    def unbind(self, ep: UdpEndpoint) -> None:
        if self.by_port.get(ep.local_port) is ep:
            del self.by_port[ep.local_port]
        ep.closed = True


_ICMP_ERRNO = {
    icmp.CODE_PORT_UNREACHABLE: errno.ECONNREFUSED,
    icmp.CODE_PROTOCOL_UNREACHABLE: errno.ENOPROTOOPT,
    icmp.CODE_NET_UNREACHABLE: errno.ENETUNREACH,
    icmp.CODE_FRAG_NEEDED: errno.EMSGSIZE,
}
"""Destination Unreachable codes → the errno a connected endpoint reports (as Linux's
``icmp_err_convert``); any other code, and Time Exceeded or Parameter Problem, is EHOSTUNREACH."""


class UdpLayer(Transport):
    """The UDP of one network layer; counts into its ``drops`` and ``stats``."""

    def __init__(self, ip: IPStack) -> None:
        self.ip = ip
        self.ports = UdpPortTable(ip.rng)
        self.ready: set[UdpEndpoint] = set()
        """Endpoints that got a datagram or an error since :meth:`take_ready`."""
        ip.transports[PROTO_UDP] = self

    # == receive ==============================================================================
    def input(self, d: Datagram, now: float) -> None:
        """RFC 768 / RFC 1122 §4.1.3: length and checksum checked, delivered to the endpoint of
        the destination port (a copy of the payload joins its queue), or answered with Port
        Unreachable (RFC 1122 §4.1.3.1) unless sent to a broadcast address."""
        ip = self.ip
        view = d.view
        l4 = d.l4
        end = d.end
        if end - l4 < HEADER_LEN:
            ip.drops["udp_truncated"] += 1
            return
        sport, dport, ulen, csum = HEADER.unpack_from(view, l4)
        if ulen < HEADER_LEN or ulen > end - l4:
            ip.drops["udp_bad_length"] += 1
            return
        uend = l4 + ulen
        # RFC 768: a zero checksum means the sender computed none (IPv4 only).
        if (
            csum
            and not d.csum_valid
            and ones_sum(view[l4:uend], pseudo_header_sum(d.src, d.dst, PROTO_UDP, ulen)) != 0xFFFF
        ):
            ip.drops["udp_bad_checksum"] += 1
            return
        if dport == 0:
            ip.drops["udp_bad_port"] += 1
            return
        ep = self.ports.lookup(d.dst, dport, d.src, sport)
        if ep is None:
            ip.drops["udp_no_port"] += 1
            if not d.dst_bcast:
                ip.icmp.send_error(icmp.DEST_UNREACHABLE, icmp.CODE_PORT_UNREACHABLE, d.quoted(), d.link_bcast, now)
            return
        n = ulen - HEADER_LEN
        if ep.rx_bytes + n > ep.rcvbuf:
            ip.drops["udp_rcvbuf_full"] += 1
            return
        ep.rx.append((bytes(view[l4 + HEADER_LEN : uend]), (d.src, sport)))
        ep.rx_bytes += n
        self.ready.add(ep)
        ip.stats["udp_rx"] += 1

    def icmp_error(
        self, itype: int, code: int, local: int, remote: int, view: memoryview, l4: int, end: int, mtu: int
    ) -> None:
        """Deliver an ICMP error to the UDP endpoint it is about (RFC 1122 §4.1.3.3): a connected
        endpoint gets the errno as its pending error, as Linux reports it on the next call."""
        sport, dport = _PORTS.unpack_from(view, l4)
        ep = self.ports.by_port.get(sport)
        ip = self.ip
        if ep is None or (ep.local_addr and ep.local_addr != local):
            ip.stats["icmp_error_no_endpoint"] += 1
            return
        ip.stats["icmp_error_rx"] += 1
        if not ep.connected or ep.remote_addr != remote or ep.remote_port != dport:
            return
        if itype == icmp.DEST_UNREACHABLE:
            ep.error = _ICMP_ERRNO.get(code, errno.EHOSTUNREACH)
        else:
            ep.error = errno.EHOSTUNREACH
        self.ready.add(ep)

    # == the socket layer's calls =============================================================
    def bind(self, addr: int = 0, port: int = 0, *, toward: tuple[int, int] | None = None) -> UdpEndpoint:
        """A UDP endpoint on ``addr``:``port``. Port 0 picks an ephemeral one; with ``toward``
        (the destination of the datagram or connect that binds it implicitly), one whose replies
        the device steers to this stack (``IPStack.steer_to``), as the kernel's autobind would
        pick if it were one of several reactors."""
        ip = self.ip
        if addr and not any(i.addr == addr for i in ip.interfaces):
            raise OSError(errno.EADDRNOTAVAIL, f"{ntoa(addr)} is not an address of this stack")
        if port == 0 and toward is not None and ip.steering[1] > 1:
            dst, dport = toward
            src = addr or ip.route(dst)[0].addr
            return self.ports.bind(addr, 0, accept=lambda p: ip.steers_here(src, dst, p, dport))
        return self.ports.bind(addr, port)

    def close(self, ep: UdpEndpoint) -> None:
        self.ports.unbind(ep)
        self.ready.discard(ep)

    def sendto(self, ep: UdpEndpoint, data: bytes | bytearray | memoryview, dst: int, dport: int, now: float) -> int:
        """Send one datagram from ``ep``. Returns 0 when queued for the driver, or the next hop
        whose ARP resolution it waits for. Errors are OSError with the errno a kernel gives."""
        if ep.closed:
            raise OSError(errno.EBADF, "socket is closed")
        n = len(data)
        if n > MAX_PAYLOAD:
            raise OSError(errno.EMSGSIZE, f"message too long ({n} > {MAX_PAYLOAD})")
        if not 0 < dport < 65536:
            raise OSError(errno.EINVAL, f"bad destination port {dport}")
        if dst == 0:
            raise OSError(errno.EDESTADDRREQ, "destination address required")
        ip = self.ip
        iface, hop = ip.route(dst)
        if (dst == LIMITED_BROADCAST or dst == iface.broadcast) and not ep.broadcast:
            raise OSError(errno.EACCES, "broadcast needs SO_BROADCAST")
        if is_multicast(dst):
            raise OSError(errno.ENETUNREACH, "multicast is not supported yet")
        src = ep.local_addr or iface.addr
        ulen = HEADER_LEN + n
        ip.stats["udp_tx"] += 1
        if IP_HEADER_LEN + ulen > iface.mtu:
            msg = bytearray(ulen)
            HEADER.pack_into(msg, 0, ep.local_port, dport, ulen, 0)
            msg[HEADER_LEN:] = data
            csum = ~ones_sum(msg, pseudo_header_sum(src, dst, PROTO_UDP, ulen)) & 0xFFFF
            HEADER.pack_into(msg, 0, ep.local_port, dport, ulen, csum or 0xFFFF)
            return ip.send_ip(dst, PROTO_UDP, msg, now, src=src, ttl=ep.ttl)
        pkt = ip.alloc()
        buf = pkt.buf
        start = pkt.start
        buf[start : start + n] = data
        pkt.end = start + n
        off = pkt.prepend(HEADER_LEN)
        phs = pseudo_header_sum(src, dst, PROTO_UDP, ulen)
        if iface.offloads.tx_csum:
            # The device finishes the sum; the field holds the pseudo-header sum, not inverted.
            HEADER.pack_into(buf, off, ep.local_port, dport, ulen, phs)
            pkt.csum_start = _CSUM_START
            pkt.csum_offset = _CSUM_OFFSET
        else:
            HEADER.pack_into(buf, off, ep.local_port, dport, ulen, 0)
            csum = ~ones_sum(pkt.view[off : pkt.end], phs) & 0xFFFF
            HEADER.pack_into(buf, off, ep.local_port, dport, ulen, csum or 0xFFFF)
        ip.ip_output(iface, hop, pkt, src, dst, PROTO_UDP, ep.ttl, 0, 0, 0, now)
        return hop if hop in iface.arp.pending else 0

    def take_ready(self) -> set[UdpEndpoint]:
        ready = self.ready
        self.ready = set()
        return ready
