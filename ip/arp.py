"""ARP for IPv4 over Ethernet (RFC 826), with the host behaviour of RFC 1122 §2.3.2.

Sans-I/O: :class:`ArpCache` takes time as an argument and schedules its retries on the caller's
:class:`~aiostack.ip.timers.TimerWheel`; frames it wants sent come back through the ``send_request``
callback, failures through ``on_failure``.

Behaviour:

- a resolved entry lives ``reachable_time`` seconds; in its last ``refresh_time`` seconds a lookup
  sends one unicast request to refresh it, so an active flow never stalls on expiry;
- an unresolved address queues up to ``queue_limit`` packets while ``retries`` broadcast requests
  go out ``retry_interval`` apart (RFC 1122 §2.3.2.2 asks to queue at least one); when all go
  unanswered the queued packets are dropped and counted (``arp_unresolved``) and ``on_failure``
  tells the layer above, so a waiting sender gets an error instead of hanging;
- RFC 826's merge: any ARP packet from a known sender refreshes it; a request for us also adds
  its sender (the requester will talk to us next).
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .ethernet import BROADCAST, ZERO_MAC, is_multicast

if TYPE_CHECKING:
    from ..drivers.buffers import Packet
    from .timers import Timer, TimerWheel

HTYPE_ETHERNET = 1
PTYPE_IPV4 = 0x0800
OP_REQUEST = 1
OP_REPLY = 2
PACKET_LEN = 28

PACKET = struct.Struct("!HHBBH6sI6sI")


def write_packet(
    buf: bytearray, offset: int, op: int, sha: bytes, spa: int, tha: bytes, tpa: int
) -> None:
    PACKET.pack_into(buf, offset, HTYPE_ETHERNET, PTYPE_IPV4, 6, 4, op, sha, spa, tha, tpa)


class ArpPacket:
    __slots__ = ("op", "sha", "spa", "tha", "tpa")

    def __init__(self, op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> None:
        self.op = op
        self.sha = sha
        self.spa = spa
        self.tha = tha
        self.tpa = tpa


def parse_packet(buf: bytes | bytearray | memoryview, offset: int, end: int) -> ArpPacket | str:
    """An :class:`ArpPacket`, or the drop reason when the bytes are not Ethernet/IPv4 ARP."""
    if end - offset < PACKET_LEN:
        return "arp_truncated"
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = PACKET.unpack_from(buf, offset)
    if htype != HTYPE_ETHERNET or ptype != PTYPE_IPV4 or hlen != 6 or plen != 4:
        return "arp_unsupported_format"
    if op not in (OP_REQUEST, OP_REPLY):
        return "arp_bad_opcode"
    if is_multicast(sha) or sha == ZERO_MAC:
        return "arp_bad_sender"
    return ArpPacket(op, sha, spa, tha, tpa)


class _Entry:
    __slots__ = ("expires", "mac", "refreshing")

    def __init__(self, mac: bytes, expires: float) -> None:
        self.mac = mac
        self.expires = expires
        self.refreshing = False


class _Pending:
    __slots__ = ("packets", "timer", "tries")

    def __init__(self) -> None:
        self.packets: deque[Packet] = deque()
        self.tries = 0
        self.timer: Timer | None = None


class ArpCache:
    """The neighbour table of one interface."""

    def __init__(
        self,
        timers: TimerWheel,
        send_request: Callable[[int, bytes], None],
        on_failure: Callable[[int], None],
        on_resolved: Callable[[int, bytes, deque[Packet]], None],
        *,
        drops: Counter[str] | None = None,
        reachable_time: float = 60.0,
        refresh_time: float = 5.0,
        retry_interval: float = 1.0,
        retries: int = 3,
        queue_limit: int = 64,
    ) -> None:
        self.timers = timers
        self._send_request = send_request
        self._on_failure = on_failure
        self._on_resolved = on_resolved
        self.drops: Counter[str] = drops if drops is not None else Counter()
        self.reachable_time = reachable_time
        self.refresh_time = refresh_time
        self.retry_interval = retry_interval
        self.retries = retries
        self.queue_limit = queue_limit
        self.entries: dict[int, _Entry] = {}
        self.pending: dict[int, _Pending] = {}
        self.static: set[int] = set()

    # -- lookups from the transmit path -----------------------------------------------------
    def lookup(self, ip: int, now: float) -> bytes | None:
        """The MAC for ``ip``, or None when it must be resolved first (see :meth:`enqueue`)."""
        entry = self.entries.get(ip)
        if entry is None:
            return None
        if ip in self.static:
            return entry.mac
        if now >= entry.expires:
            del self.entries[ip]
            return None
        if not entry.refreshing and now >= entry.expires - self.refresh_time:
            entry.refreshing = True
            self._send_request(ip, entry.mac)
        return entry.mac

    def enqueue(self, ip: int, pkt: Packet, now: float) -> None:
        """Hold ``pkt`` (an IP packet without its Ethernet header) until ``ip`` resolves."""
        pending = self.pending.get(ip)
        if pending is None:
            pending = self.pending[ip] = _Pending()
            self._retry(ip, now)
        if len(pending.packets) >= self.queue_limit:
            # RFC 1122 §2.3.2.2: keep the newest; the oldest is the least likely still wanted.
            pending.packets.popleft().free()
            self.drops["arp_queue_full"] += 1
        pending.packets.append(pkt)

    def _retry(self, ip: int, now: float) -> None:
        pending = self.pending.get(ip)
        if pending is None:
            return
        if pending.tries >= self.retries:
            del self.pending[ip]
            n = len(pending.packets)
            for pkt in pending.packets:
                pkt.free()
            if n:
                self.drops["arp_unresolved"] += n
            self._on_failure(ip)
            return
        pending.tries += 1
        self._send_request(ip, BROADCAST)
        pending.timer = self.timers.schedule(now + self.retry_interval, self._retry, ip, now + self.retry_interval)

    # -- learning from received ARP ---------------------------------------------------------
    def learn(self, ip: int, mac: bytes, now: float, *, create: bool) -> None:
        """Record ``ip`` at ``mac`` (RFC 826 merge); ``create`` adds an entry not yet known."""
        if ip in self.static:
            return
        entry = self.entries.get(ip)
        if entry is None:
            if not create and ip not in self.pending:
                return
            self.entries[ip] = _Entry(mac, now + self.reachable_time)
        else:
            entry.mac = mac
            entry.expires = now + self.reachable_time
            entry.refreshing = False
        pending = self.pending.pop(ip, None)
        if pending is not None:
            if pending.timer is not None:
                pending.timer.cancel()
            self._on_resolved(ip, mac, pending.packets)

    def add_static(self, ip: int, mac: bytes) -> None:
        self.entries[ip] = _Entry(mac, float("inf"))
        self.static.add(ip)

    def remove(self, ip: int) -> None:
        self.entries.pop(ip, None)
        self.static.discard(ip)

    def table(self, now: float) -> list[tuple[int, bytes, str, float]]:
        """(ip, mac, state, seconds left) for display; state is reachable, stale, static or incomplete."""
        rows: list[tuple[int, bytes, str, float]] = []
        for ip, e in self.entries.items():
            if ip in self.static:
                rows.append((ip, e.mac, "static", float("inf")))
            else:
                left = e.expires - now
                rows.append((ip, e.mac, "reachable" if left > self.refresh_time else "stale", max(left, 0.0)))
        rows.extend((ip, ZERO_MAC, "incomplete", 0.0) for ip in self.pending)
        return rows

    def close(self) -> None:
        """Drop everything still queued (counted) without reporting failures."""
        for pending in self.pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            for pkt in pending.packets:
                pkt.free()
            if pending.packets:
                self.drops["arp_unresolved"] += len(pending.packets)
        self.pending.clear()
