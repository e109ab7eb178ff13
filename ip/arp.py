"""ARP for IPv4 over Ethernet (RFC 826), with the host behaviour of RFC 1122 §2.3.2.

Sans-I/O: :class:`ArpCache` takes time as an argument and schedules its retries on the caller's
:class:`~aiostack.ip.timers.TimerWheel`; frames it wants sent come back through the ``send_request``
callback, failures through ``on_failure``.

Behaviour:

- a resolved entry lives ``reachable_time`` seconds; in its last ``refresh_time`` seconds a lookup
  sends a unicast request to refresh it, again every ``retry_interval`` until a reply comes (RFC
  1122 §2.3.2.1: the unicast poll is retransmitted; one lost request, e.g. while the transmit pool
  is empty, must not let an active flow's entry expire into a broadcast re-resolution);
- an unresolved address queues up to ``queue_limit`` packets while ``retries`` broadcast requests
  go out ``retry_interval`` apart (RFC 1122 §2.3.2.2 asks to queue at least one); when all go
  unanswered the queued packets are dropped and counted (``arp_unresolved``) and ``on_failure``
  tells the layer above, so a waiting sender gets an error instead of hanging;
- RFC 826's merge: any ARP packet from a known sender refreshes it; a request for us also adds
  its sender (the requester will talk to us next) — only a sender in our subnet (the caller
  checks, as Linux's ``arp_process`` only creates neighbours it has a route to on the device).

Bounds, so that hostile ARP traffic and floods toward unresolvable neighbours stay cheap (each
excess counted, never raised):

- **Table size** (``max_entries``, Linux ``gc_thresh3`` = 1024): in a full table (after a
  sweep of expired entries) a request's sender is not added (``arp_table_full`` in stats) — a
  flood of requests from many senders must not push out the neighbours in use; an answer to
  our own request (a neighbour we need now) evicts the entry closest to expiry
  (``arp_cache_evicted`` in stats). Evicting for every request was tried first and rejected:
  a 30k-sender request flood then evicted the legitimate client's entry every 0.2 s, and its
  re-resolutions, queued behind the flood, timed out.
- **Expiry by a sweep** on the timer wheel every ``reachable_time / 2`` s, not only on lookup:
  entries nobody looks up any more leave (``arp_expired`` in stats).
- **Unresolved neighbours** (``max_pending`` = 256 addresses being resolved at once, each a
  broadcast request per retry) and a **global cap on frames waiting for resolution**
  (``queue_total_limit`` = 256 frames, on top of ``queue_limit`` per address, like Linux's
  per-neighbour ``unres_qlen``): these frames hold buffers of the pool every transmit draws
  from, so without a global cap a flood toward unresolvable addresses empties the pool
  (``arp_queue_total_full``, ``arp_pending_full``).
- **SYN-ACKs are queued only while the queue is less than half full**
  (:meth:`may_queue_remakeable`, asked by the TCP layer): a SYN-ACK is re-made when the peer
  retransmits its SYN (or the SYN queue's timer fires, or from the cookie), so under a spoofed
  SYN flood from on-link addresses that never answer ARP it is the frame to give up first —
  those SYN-ACKs then take at most half the global cap, the other half stays for frames that
  cannot be re-made. Not queuing them at all was tried and rejected: a legitimate first SYN
  from a neighbour not yet in the table (a reactor that did not see its ARP request, an entry
  expired while idle) then waits a whole SYN retransmission (1 s) for its answer.
- **Unsolicited replies** (RFC 826 merge; Linux ``arp_accept=0``, ``locktime``): an ARP packet
  never creates an entry unless it is a request for us; it updates an existing entry, but a
  *different* MAC within ``locktime`` (1 s) of the last update is ignored
  (``arp_update_locktime``): when several answers race (proxy ARP, or a spoofer answering next
  to the owner) the first wins, as on Linux.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..counts import Counts
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
    __slots__ = ("expires", "mac", "probe_at", "updated")

    def __init__(self, mac: bytes, expires: float, updated: float = 0.0) -> None:
        self.mac = mac
        self.expires = expires
        self.probe_at = 0.0  # when a lookup may send the next refresh request
        self.updated = updated


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
        stats: Counter[str] | None = None,
        reachable_time: float = 60.0,
        refresh_time: float = 5.0,
        retry_interval: float = 1.0,
        retries: int = 3,
        queue_limit: int = 64,
        queue_total_limit: int = 256,
        max_pending: int = 256,
        max_entries: int = 1024,
        locktime: float = 1.0,
    ) -> None:
        self.timers = timers
        self._send_request = send_request
        self._on_failure = on_failure
        self._on_resolved = on_resolved
        self.drops: Counter[str] = drops if drops is not None else Counts()
        self.stats: Counter[str] = stats if stats is not None else Counts()
        self.reachable_time = reachable_time
        self.refresh_time = refresh_time
        self.retry_interval = retry_interval
        self.retries = retries
        self.queue_limit = queue_limit
        self.queue_total_limit = queue_total_limit
        self.max_pending = max_pending
        self.max_entries = max_entries
        self.locktime = locktime
        self.queued = 0
        """Frames waiting for resolution, over all addresses (bounded by ``queue_total_limit``)."""
        self.entries: dict[int, _Entry] = {}
        self.pending: dict[int, _Pending] = {}
        self.static: set[int] = set()
        self.sweep_timer: Timer | None = None

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
        if now >= entry.probe_at and now >= entry.expires - self.refresh_time:
            entry.probe_at = now + self.retry_interval
            self._send_request(ip, entry.mac)
        return entry.mac

    def enqueue(self, ip: int, pkt: Packet, now: float) -> None:
        """Hold ``pkt`` (an IP packet without its Ethernet header) until ``ip`` resolves; it is
        freed and counted instead when the bounds (module docstring) say so."""
        pending = self._start(ip, now)
        if pending is None:
            pkt.free()
            self.drops["arp_pending_full"] += 1
            return
        if len(pending.packets) >= self.queue_limit:
            # RFC 1122 §2.3.2.2: keep the newest; the oldest is the least likely still wanted.
            pending.packets.popleft().free()
            self.queued -= 1
            self.drops["arp_queue_full"] += 1
        elif self.queued >= self.queue_total_limit:
            pkt.free()
            self.drops["arp_queue_total_full"] += 1
            return
        pending.packets.append(pkt)
        self.queued += 1

    def may_queue_remakeable(self, ip: int, now: float) -> bool:
        """Whether a frame its sender can re-make (a SYN-ACK) may go on toward ``ip``: yes when
        the MAC is known or the frames waiting for resolution fill less than half of
        ``queue_total_limit``; otherwise resolution starts (within ``max_pending``) and the
        caller drops the frame — the other half stays for frames that cannot be re-made."""
        if self.lookup(ip, now) is not None or self.queued < self.queue_total_limit // 2:
            return True
        if self._start(ip, now) is None:
            self.drops["arp_pending_full"] += 1
        return False

    def _start(self, ip: int, now: float) -> _Pending | None:
        pending = self.pending.get(ip)
        if pending is None:
            if len(self.pending) >= self.max_pending:
                return None
            pending = self.pending[ip] = _Pending()
            self._retry(ip, now)
        return pending

    def _retry(self, ip: int, now: float) -> None:
        pending = self.pending.get(ip)
        if pending is None:
            return
        if pending.tries >= self.retries:
            del self.pending[ip]
            n = len(pending.packets)
            for pkt in pending.packets:
                pkt.free()
            self.queued -= n
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
            if ip in self.pending:  # the answer to our own request: room is made for it
                if len(self.entries) >= self.max_entries:
                    self._make_room(now)
            elif not create:
                return
            elif len(self.entries) >= self.max_entries and (self.sweep(now) == 0 or
                                                             len(self.entries) >= self.max_entries):
                # a request's sender only takes a free slot: a flood of requests from many
                # senders must not push out the neighbours in use (Linux's neighbour GC also
                # keeps referenced entries); we resolve a new neighbour ourselves when needed
                self.stats["arp_table_full"] += 1
                return
            self.entries[ip] = _Entry(mac, now + self.reachable_time, now)
            if self.sweep_timer is None:
                self._schedule_sweep(now)
        else:
            if entry.mac != mac:
                if now - entry.updated < self.locktime:
                    self.drops["arp_update_locktime"] += 1
                    return
                self.stats["arp_mac_changed"] += 1
                entry.mac = mac
            entry.updated = now
            entry.expires = now + self.reachable_time
            entry.probe_at = 0.0
        pending = self.pending.pop(ip, None)
        if pending is not None:
            if pending.timer is not None:
                pending.timer.cancel()
            self.queued -= len(pending.packets)
            self._on_resolved(ip, mac, pending.packets)

    # -- bounds -------------------------------------------------------------------------------
    def _make_room(self, now: float) -> None:
        """A full table: sweep the expired entries, else evict the one closest to expiry."""
        self.sweep(now)
        if len(self.entries) < self.max_entries:
            return
        victim = -1
        soonest = float("inf")
        for ip, e in self.entries.items():
            if e.expires < soonest and ip not in self.static:
                soonest = e.expires
                victim = ip
        if victim >= 0:
            del self.entries[victim]
            self.stats["arp_cache_evicted"] += 1

    def sweep(self, now: float) -> int:
        """Remove the entries that expired (static ones never do); how many went."""
        gone = [ip for ip, e in self.entries.items() if now >= e.expires and ip not in self.static]
        for ip in gone:
            del self.entries[ip]
        if gone:
            self.stats["arp_expired"] += len(gone)
        return len(gone)

    def _schedule_sweep(self, now: float) -> None:
        when = now + self.reachable_time / 2
        self.sweep_timer = self.timers.schedule(when, self._sweep_tick, when)

    def _sweep_tick(self, now: float) -> None:
        self.sweep_timer = None
        self.sweep(now)
        if len(self.entries) > len(self.static):
            self._schedule_sweep(now)

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
        if self.sweep_timer is not None:
            self.sweep_timer.cancel()
            self.sweep_timer = None
        self.queued = 0
        for pending in self.pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            for pkt in pending.packets:
                pkt.free()
            if pending.packets:
                self.drops["arp_unresolved"] += len(pending.packets)
        self.pending.clear()
