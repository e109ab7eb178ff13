"""ICMP for IPv4 as a transport of the network layer (RFC 792, host rules of RFC 1122 §3.2.2):
echo requests answered, echo replies of our pings reported, errors handed to the transport of
the datagram they quote, errors sent within RFC 1122's rules and a rate limit.

The wire format and the rules that need no state (types, codes, which datagrams may be answered
with an error, the path MTU floor, the token bucket) live in :mod:`aiostack.ip.icmp`; this module
is the behaviour, registered in ``IPStack.transports`` under protocol 1 like TCP and UDP.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..drivers.steering import queue_for
from . import icmp, ipv4
from .checksum import ones_sum
from .datagram import Datagram, Transport

if TYPE_CHECKING:
    from .stack import IPStack

_ETH = 14
_PORTS = (ipv4.PROTO_TCP, ipv4.PROTO_UDP)


class IcmpLayer(Transport):
    """The ICMP of one :class:`~aiostack.ip.stack.IPStack` (its ``icmp``)."""

    def __init__(self, ip: IPStack, rate: float = 1000.0, burst: float = 50.0) -> None:
        self.ip = ip
        self.limiter = icmp.RateLimiter(rate, burst)
        """The token bucket of the errors we send (RFC 1812 §4.3.2.8; Linux's icmp_ratelimit)."""
        self.echo_idents: set[int] = set()
        """ICMP echo identifiers of pings in progress (:meth:`send_echo_request`); their replies
        become ``echo_events`` (source, identifier, sequence, payload)."""
        self.echo_events: list[tuple[int, int, int, bytes]] = []
        ip.transports[ipv4.PROTO_ICMP] = self

    # == receive ==============================================================================
    def input(self, d: Datagram, now: float) -> None:
        ip = self.ip
        view = d.view
        l4 = d.l4
        end = d.end
        if end - l4 < icmp.HEADER_LEN:
            ip.drops["icmp_truncated"] += 1
            return
        if ones_sum(view[l4:end]) != 0xFFFF:
            ip.drops["icmp_bad_checksum"] += 1
            return
        ip.stats["icmp_rx"] += 1
        itype = view[l4]
        if itype == icmp.ECHO_REQUEST:
            self._echo_request(d, now)
        elif itype in icmp.ERROR_TYPES:
            self._error_input(d, itype, view[l4 + 1])
        elif itype == icmp.ECHO_REPLY and end - l4 >= icmp.ECHO.size:
            self._echo_reply(d)
        else:
            ip.stats["icmp_ignored"] += 1

    def _echo_request(self, d: Datagram, now: float) -> None:
        """RFC 792: the reply carries the request's identifier, sequence and data back."""
        ip = self.ip
        if d.dst_bcast or d.link_bcast:
            # Linux's icmp_echo_ignore_broadcasts=1 default (RFC 1122 §3.2.2.6 leaves it open).
            ip.drops["icmp_echo_broadcast_ignored"] += 1
            return
        msg = bytearray(d.view[d.l4 : d.end])
        msg[0] = icmp.ECHO_REPLY
        msg[2] = msg[3] = 0
        csum = ~ones_sum(msg) & 0xFFFF
        msg[2] = csum >> 8
        msg[3] = csum & 0xFF
        try:
            ip.send_ip(d.src, ipv4.PROTO_ICMP, msg, now, src=d.dst)
        except OSError as exc:
            ip.drops[f"icmp_reply_{errno.errorcode.get(exc.errno or 0, 'error').lower()}"] += 1
            return
        ip.stats["icmp_echo_replied"] += 1

    def _echo_reply(self, d: Datagram) -> None:
        ip = self.ip
        view = d.view
        l4 = d.l4
        ident, seq = icmp.ECHO.unpack_from(view, l4)[3:]
        queues = ip.steering[1]
        carry = None if ident in self.echo_idents else ip.elsewhere(ident % queues)
        if carry:  # another reactor's ping: Stack.ping picks identifiers that name the queue
            carry(bytes(view[d.ip_off - _ETH : d.end]), ident % queues)
            ip.stats["icmp_handed_over"] += 1
        elif ident in self.echo_idents:
            self.echo_events.append((d.src, ident, seq, bytes(view[l4 + icmp.ECHO.size : d.end])))
            ip.stats["icmp_echo_reply_rx"] += 1
        else:
            ip.stats["icmp_ignored"] += 1

    def _error_input(self, d: Datagram, itype: int, code: int) -> None:
        """Hand an ICMP error to the transport registered for the protocol of the datagram it
        quotes (RFC 1122 §3.2.2: "MUST be passed to the transport layer"), through its
        ``icmp_error``. One about a TCP or UDP flow another reactor owns goes to it
        (``IPStack.steer_to``)."""
        ip = self.ip
        view = d.view
        l4 = d.l4
        end = d.end
        q = l4 + icmp.HEADER_LEN
        if end - q < ipv4.HEADER_LEN + 8:
            ip.drops["icmp_error_short_quote"] += 1
            return
        vihl, _tos, _len, _ident, _frag, _ttl, qproto, _csum, qsrc, qdst = ipv4.HEADER.unpack_from(view, q)
        qhl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or qhl < ipv4.HEADER_LEN or end - q < qhl + 8:
            ip.drops["icmp_error_bad_quote"] += 1
            return
        ports = q + qhl
        queues = ip.steering[1]
        if queues > 1 and qproto in _PORTS:
            # TCP's ports sit where UDP's do: the first two 16-bit words.
            sport = (view[ports] << 8) | view[ports + 1]
            dport = (view[ports + 2] << 8) | view[ports + 3]
            owner = queue_for(queues, qsrc, qdst, sport, dport)
            carry: Callable[[bytes, int], None] | None = ip.elsewhere(owner)
            if carry:
                carry(bytes(view[d.ip_off - _ETH : end]), owner)
                ip.stats["icmp_handed_over"] += 1
                return
        transport = ip.transports.get(qproto)
        if transport is None:
            ip.stats["icmp_error_other_protocol"] += 1
            return
        transport.icmp_error(itype, code, qsrc, qdst, view, ports, end, icmp.next_hop_mtu(view, l4))

    def icmp_error(
        self, itype: int, code: int, local: int, remote: int, view: memoryview, l4: int, end: int, mtu: int
    ) -> None:
        """An error about an ICMP message we sent (an echo request or reply): no state is kept per
        message, so nothing is told (Linux tells a ping socket; ours wait for their timeout)."""
        self.ip.stats["icmp_error_other_protocol"] += 1

    # == send =================================================================================
    def send_error(
        self, itype: int, code: int, quoted: bytes | bytearray | memoryview, link_bcast: bool, now: float
    ) -> None:
        """An ICMP error about ``quoted`` (the offending datagram from its IP header on), within
        the rules of RFC 1122 §3.2.2 and the rate limit."""
        ip = self.ip
        if not icmp.may_answer_with_error(quoted, link_bcast):
            return
        dst = int.from_bytes(quoted[12:16], "big")
        if any(dst == i.broadcast for i in ip.interfaces):
            return
        if not self.limiter.allow(now):
            ip.stats["icmp_error_rate_limited"] += 1
            return
        body = bytes(quoted[: icmp.MAX_QUOTE])
        msg = bytearray(icmp.HEADER_LEN + len(body))
        msg[0] = itype
        msg[1] = code
        msg[icmp.HEADER_LEN :] = body
        csum = ~ones_sum(msg) & 0xFFFF
        msg[2] = csum >> 8
        msg[3] = csum & 0xFF
        try:
            ip.send_ip(dst, ipv4.PROTO_ICMP, msg, now, src=int.from_bytes(quoted[16:20], "big"))
        except OSError:
            ip.drops["icmp_error_unsendable"] += 1
            return
        ip.stats["icmp_error_tx"] += 1

    def send_echo_request(self, dst: int, ident: int, seq: int, payload: bytes, now: float) -> int:
        """Send an ICMP echo request (RFC 792); replies with ``ident`` are reported in
        ``echo_events``. Returns like ``IPStack.send_ip``."""
        msg = bytearray(icmp.ECHO.size + len(payload))
        icmp.ECHO.pack_into(msg, 0, icmp.ECHO_REQUEST, 0, 0, ident, seq)
        msg[icmp.ECHO.size :] = payload
        csum = ~ones_sum(msg) & 0xFFFF
        msg[2] = csum >> 8
        msg[3] = csum & 0xFF
        self.echo_idents.add(ident)
        self.ip.stats["icmp_echo_request_tx"] += 1
        return self.ip.send_ip(dst, ipv4.PROTO_ICMP, msg, now)

    def take_echo_events(self) -> list[tuple[int, int, int, bytes]]:
        events = self.echo_events
        self.echo_events = []
        return events
