"""RACK-TLP loss detection (RFC 8985), sans-I/O.

One :class:`Rack` per connection keeps a record of every transmission still outstanding and
answers, on each ACK and when its reordering timer fires, "which segments are lost now, and when
should I look again?". The connection owns the timers, the congestion response and the actual
retransmissions; time is always passed in.

RACK (RFC 8985 §6): a segment is lost once a segment *sent later* has been delivered
(cumulatively ACKed or SACKed) and more than ``RACK.rtt + RACK.reo_wnd`` has passed since the
segment was sent. Because it compares transmission *times*, it detects lost retransmissions
(which RFC 6675's sequence-based IsLost cannot) and losses at the tail of an application-limited
flight. TLP (RFC 8985 §7): the connection probes (new data, or the last segment again) after a
probe timeout ``PTO`` of about two round trips, so a lost tail produces an ACK that RACK can
work with instead of waiting for the retransmission timeout. :func:`pto` computes it.

Records
-------

One :class:`Sent` per transmission of a range ``[start, end)`` (the FIN counts as one byte at
its end), holding its last transmission time, its transmission count and three marks: ``sacked``
/ ``delivered`` (cumulatively ACKed or SACKed), ``lost`` (RACK or the connection declared it
lost) and ``rtx`` (a retransmission of it is believed to be in flight). Positions are kept as
unbounded integer offsets from an anchor that follows SND.UNA, so ordinary comparisons work and
sequence-number wraparound never shows.

- ``_q`` is a list in sequence order with a moving head index (compacted now and then):
  appending a new transmission and trimming on a cumulative ACK are O(1) amortised, and SACK
  blocks find their records by bisection. A transmission whose range does not line up with
  existing records (a partial retransmission, a SACK block edge inside a record) splits a record
  — rare, O(n).
- Records never retransmitted were sent in sequence order, so in ``_q`` they are also in
  transmission-time order: RACK scans them from a cursor that only moves forwards (everything
  before it is delivered, lost or retransmitted). Retransmitted records go into ``_rtxq``, a
  heap by (transmit time, end), since a retransmission breaks the time order. So
  :meth:`Rack.detect_loss` is amortised O(1) per record, not a walk over the window per ACK.
- ``_lostq`` is a heap by sequence number of records marked lost and not yet retransmitted:
  :meth:`Rack.next_lost` gives the retransmissions in sequence order.
- :attr:`Rack.pipe` is RFC 6675's SetPipe with RACK's lost marks in place of IsLost and the
  per-record ``rtx`` mark in place of HighRxt: per outstanding, unSACKed byte, one if it is not
  marked lost plus one if a retransmission of it is in flight. Kept incrementally (Linux's
  ``packets_out - sacked_out - lost_out + retrans_out``, in bytes).

Simplifications (documented deviations)
---------------------------------------

- ``RACK.min_RTT`` (§6.2 step 1) is the plain minimum of RACK's own RTT samples (per-record
  transmit times, so finer than the millisecond timestamp clock), not a windowed minimum.
- The reordering window (§6.2 step 4) follows the RFC: zero while no reordering has been seen
  and either recovery is under way or ``DupThresh`` segments are SACKed, else
  ``min(reo_wnd_mult · min_RTT / 4, SRTT)``; ``reo_wnd_mult`` grows by one per round trip in
  which a D-SACK arrived and falls back to 1 after 16 recoveries without one.
- :meth:`Rack.detect_loss` reports the *earliest* time a pending segment could be declared lost
  (the RFC arms the timer for the latest): the timer then fires once per pending segment at most,
  and each loss is found as soon as it is due.
- A record only partly covered by a SACK block is split at the block's edge, so marks stay exact.
- :meth:`Rack.detect_loss` marks the lost records itself and returns their number; the
  connection takes them, lowest first, from :meth:`Rack.next_lost`.

How the connection uses it (``tcp/connection.py``)
---------------------------------------------------

Only with SACK (RFC 8985 §4 requires it; without SACK nothing is recorded and NewReno, RFC 6582,
runs as before). Every data/FIN transmission goes to :meth:`Rack.on_transmit`; every ACK, new or
duplicate, data-carrying or not, to :meth:`Rack.on_ack` and then :meth:`Rack.detect_loss`, whose
first loss starts fast recovery (DupThresh counting is only a fallback for a peer that agreed to
SACK but sends no blocks). In recovery RFC 6675's NextSeg runs with RACK's marks as rule (1)'s
IsLost, new data before rule (3), and rule (4)'s rescue, sized by :attr:`Rack.pipe`. One wheel
timer per connection serves the RTO, the PTO (in place of the RTO while a probe is allowed) and
the reordering timer. On an RTO, :meth:`Rack.on_rto` marks the flight lost and the connection
retransmits it in order as the window reopens (RFC 6675 §5.1: no new recovery before the old
RecoveryPoint is reached). The connection's own deviations — probes also during recovery, a PTO
only when it comes before the RTO, none while the RTO is backed off — are documented there.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from heapq import heappop, heappush
from operator import attrgetter

__all__ = ["DUPTHRESH", "PTO_MIN", "REO_WND_PERSIST", "WCDELACKT", "Rack", "Sent", "pto"]

from ..counts import Counts
from .seq import HALF, MASK, seq_sub

DUPTHRESH = 3
"""RFC 6675 DupThresh, used by RFC 8985 §6.2 step 4."""
WCDELACKT = 0.2
"""RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK timer a receiver may use (200 ms)."""
PTO_MIN = 0.01
"""A floor under the probe timeout: on sub-millisecond paths 2·SRTT would fire on scheduling
noise (Linux adds two jiffies; 10 ms is the brief's and many stacks' floor)."""
# Typed copies (rack.pxd): C constants in pto(), which runs whenever the retransmission timer is armed.
_WCDELACKT = WCDELACKT
_PTO_MIN = PTO_MIN
REO_WND_PERSIST = 16
"""RFC 8985 §6.2 step 4: recoveries a grown reordering window persists without new D-SACKs."""

_start = attrgetter("start")
_NO_QUEUE: tuple[Sent, ...] = ()  # the queues of a Rack that has recorded no transmission yet
_COMPACT = 256


def pto(srtt: float | None, flight: int, mss: int, rto: float) -> float:
    """RFC 8985 §7.2 TLP_calc_PTO: ``2·SRTT``, plus WCDelAckT when only one segment is in
    flight (its ACK may be delayed), at least :data:`PTO_MIN`; 1 s without an SRTT. Never later
    than the RTO would fire (``rto`` from now)."""
    if srtt is None:
        value = 1.0
    else:
        value = 2 * srtt
        if flight <= mss:
            value += _WCDELACKT
        value = max(value, _PTO_MIN)
    return min(value, rto)


class Sent:
    """One transmitted range ``[start, end)`` (offsets) and its RACK marks."""

    __slots__ = ("delivered", "end", "lost", "rtx", "sacked", "start", "xmit_ts", "xmits")

    def __init__(self, start: int, end: int, xmit_ts: float) -> None:
        self._first(start, end, xmit_ts)

    def _first(self, start: int, end: int, xmit_ts: float) -> None:
        """The record of a first transmission (no marks)."""
        self.start = start
        self.end = end
        self.xmit_ts = xmit_ts
        self.xmits = 1
        self.delivered = False
        self.sacked = False
        self.lost = False
        self.rtx = False

    def _copy(self, start: int, end: int) -> Sent:
        r = Sent(start, end, self.xmit_ts)
        r.xmits = self.xmits
        r.delivered = self.delivered
        r.sacked = self.sacked
        r.lost = self.lost
        r.rtx = self.rtx
        return r

    def __repr__(self) -> str:
        marks = "".join(
            c for c, on in (("D", self.delivered), ("S", self.sacked), ("L", self.lost), ("R", self.rtx)) if on
        )
        return f"<Sent [{self.start},{self.end}) t={self.xmit_ts:.6f} x{self.xmits} {marks}>"


def _sent(start: int, end: int, xmit_ts: float) -> Sent:
    """``Sent(start, end, xmit_ts)`` for the per-segment path (:meth:`Rack.on_transmit`'s new
    data): compiled, Sent.__new__ and C field sets, without the call through the type, the
    argument parsing and the boxing of the three values (~800 instructions per segment)."""
    r = Sent.__new__(Sent)
    r._first(start, end, xmit_ts)
    return r


class Rack:
    """RACK state and the transmit records of one connection (see the module docstring).

    Public state: ``pipe`` (bytes in flight, RFC 6675 SetPipe with RACK's marks), ``segs_sacked``
    (records SACKed above SND.UNA), ``xmit_ts``/``end_seq``/``rtt`` (RACK.xmit_ts, RACK.end_seq as
    an offset, RACK.rtt), ``min_rtt``, ``reordering_seen``, ``reo_wnd_mult``, ``stats``.
    """

    __slots__ = (
        "_base",
        "_base_seq",
        "_cursor",
        "_head",
        "_lostq",
        "_n",
        "_q",
        "_rtxq",
        "_stats",
        "dsack_round",
        "end_seq",
        "fack",
        "min_rtt",
        "pipe",
        "reo_wnd_mult",
        "reo_wnd_persist",
        "reordering_seen",
        "rtt",
        "segs_sacked",
        "xmit_ts",
    )

    def __init__(self) -> None:
        # The three queues are the shared empty tuple until the first transmission
        # (_make_queues): a connection that never sends data allocates none of them.
        self._q: list[Sent] = _NO_QUEUE  # type: ignore[assignment]
        self._head = 0
        self._cursor = 0
        self._rtxq: list[tuple[float, int, int, Sent]] = _NO_QUEUE  # type: ignore[assignment]
        self._lostq: list[tuple[int, int, Sent]] = _NO_QUEUE  # type: ignore[assignment]
        self._n = 0  # tie-breaker for the heaps
        self._base = 0  # the offset of _base_seq
        self._base_seq = 0
        self.pipe = 0
        self.segs_sacked = 0
        self.xmit_ts: float | None = None
        self.end_seq = 0
        self.rtt = 0.0
        self.min_rtt: float | None = None
        self.fack = 0
        self.reordering_seen = False
        self.reo_wnd_mult = 1
        self.reo_wnd_persist = 0
        self.dsack_round: int | None = None
        self._stats: Counter[str] | None = None

    @property
    def stats(self) -> Counter[str]:
        """Counts by event (made on first use)."""
        stats = self._stats
        if stats is None:
            stats = self._stats = Counts()
        return stats

    def _make_queues(self) -> list[Sent]:
        self._q = q = []
        self._rtxq = []
        self._lostq = []
        return q

    # -- positions ------------------------------------------------------------------------------
    def _off(self, seq: int) -> int:
        return self._base + seq_sub(seq, self._base_seq)

    def _seq(self, off: int) -> int:
        return (self._base_seq + off - self._base) & MASK

    @property
    def empty(self) -> bool:
        return self._head >= len(self._q)

    def holds_records(self) -> bool:
        """``not`` :attr:`empty`, as a method: a C call from the connection's ACK path."""
        return self._head < len(self._q)

    def __len__(self) -> int:
        return len(self._q) - self._head

    def records(self) -> list[tuple[int, int, Sent]]:
        """``(start_seq, end_seq, record)`` for every outstanding record (for tests and debugging)."""
        return [(self._seq(r.start), self._seq(r.end), r) for r in self._q[self._head :]]

    # -- transmissions ---------------------------------------------------------------------------
    def on_transmit(self, seq: int, end_seq: int, now: float) -> None:
        """Record a transmission of ``[seq, end_seq)`` (the FIN counts as one byte) at ``now``.

        The common case, new data at the tail, appends a record: O(1). Anything else is a
        retransmission of the records it covers (split where its edges fall inside one), plus a
        new record for any part beyond the tail.
        """
        q = self._q
        if self._head >= len(q):
            if q:
                q.clear()
                self._head = self._cursor = 0
            elif q is _NO_QUEUE:
                q = self._make_queues()
                # Offsets start at 0 with the first record: from the initial _base_seq of 0 the
                # first offset would be negative for every seq >= 2**31, below fack's initial 0,
                # and the first SACK would look like reordering (half of all random ISNs).
                self._base_seq = seq
            self._base = self._off(seq)
            self._base_seq = seq
            s = self._base
            tail = s
        else:
            s = self._off(seq)
            last = q[-1]
            tail = last.end
        e = s + ((end_seq - seq) & MASK)
        if s == tail:  # new data: the fast path
            if e > s:
                q.append(_sent(s, e, now))
                self.pipe += e - s
            return
        if e <= s:
            return
        if s > tail:  # a gap: cannot happen with a well-behaved caller; keep the records sane
            q.append(Sent(s, e, now))
            self.pipe += e - s
            return
        lo = max(s, q[self._head].start)
        hi = min(e, tail)
        if lo < hi:
            self._split(lo)
            self._split(hi)
            i = bisect_left(q, lo, self._head, len(q), key=_start)
            n = len(q)
            while i < n:
                r = q[i]
                if r.start >= hi:
                    break
                self._retransmitted(r, now)
                i += 1
        if e > tail:
            q.append(Sent(tail, e, now))
            self.pipe += e - tail

    def _retransmitted(self, r: Sent, now: float) -> None:
        r.xmits += 1
        r.xmit_ts = now
        if r.delivered:
            return
        if not r.rtx:
            r.rtx = True
            self.pipe += r.end - r.start
        self._n += 1
        heappush(self._rtxq, (now, r.end, self._n, r))

    def _split(self, off: int) -> None:
        """Split the record holding ``off`` strictly inside it into two at ``off``."""
        q = self._q
        i = bisect_left(q, off, self._head, len(q), key=_start)
        if i < len(q) and q[i].start == off:
            return
        i -= 1
        if i < self._head:
            return
        r = q[i]
        if not r.start < off < r.end:
            return
        tail = r._copy(off, r.end)
        r.end = off
        q.insert(i + 1, tail)
        if i + 1 <= self._cursor:
            self._cursor += 1
        if not tail.delivered:
            if tail.rtx:
                self._n += 1
                heappush(self._rtxq, (tail.xmit_ts, tail.end, self._n, tail))
            elif tail.lost:
                self._n += 1
                heappush(self._lostq, (tail.start, self._n, tail))
        elif tail.sacked:
            self.segs_sacked += 1
        self.stats["splits"] += 1

    # -- acknowledgments -------------------------------------------------------------------------
    def on_ack(
        self,
        snd_una: int,
        blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]],
        now: float,
        dsack: bool = False,
        snd_max: int = 0,
        ts_ecr: int | None = None,
        ts_offset: int = 0,
    ) -> None:
        """One ACK: cumulative point ``snd_una`` (after the ACK) and its SACK ``blocks`` (without
        a D-SACK block; ``dsack`` says whether the ACK carried one). Marks what it delivers and
        updates RACK.xmit_ts / end_seq / rtt / min_RTT, reordering and the D-SACK rounds (RFC 8985
        §6.2 steps 1-4). ``ts_ecr`` (the ACK's TSecr, if timestamps are on; our TSval clock is
        ``int(t * 1000) + ts_offset``) screens out ACKs of an earlier transmission of a
        retransmitted record; ``snd_max`` is SND.NXT for the D-SACK round."""
        q = self._q
        h = self._head
        n = len(q)
        if h < n:
            una = self._off(snd_una)
            while h < n:
                r = q[h]
                if r.end <= una:
                    if r.sacked:
                        self.segs_sacked -= 1
                    elif not r.delivered:
                        self._deliver(r, now, ts_ecr, ts_offset)
                    h += 1
                    continue
                if r.start < una:
                    if not r.delivered:
                        self.pipe -= (una - r.start) * ((0 if r.lost else 1) + (1 if r.rtx else 0))
                    r.start = una
                break
            self._head = h
            if h >= _COMPACT and 2 * h >= n:
                del q[:h]
                self._cursor = max(0, self._cursor - h)
                self._head = h = 0
                n = len(q)
            if una > self._base:
                self._base_seq = snd_una & MASK
                self._base = una
            if blocks and h < n:
                first = q[h]
                last = q[-1]
                lo_limit = first.start
                hi_limit = last.end
                for left, right in blocks:
                    lo = self._off(left)
                    hi = lo + seq_sub(right, left)
                    if lo < lo_limit:
                        lo = lo_limit
                    if hi > hi_limit:
                        hi = hi_limit
                    if lo >= hi:
                        continue
                    self._split(lo)
                    self._split(hi)
                    i = bisect_left(q, lo, self._head, len(q), key=_start)
                    m = len(q)
                    while i < m:
                        r = q[i]
                        if r.start >= hi:
                            break
                        if not r.delivered:
                            self._deliver(r, now, ts_ecr, ts_offset)
                            r.sacked = True
                            self.segs_sacked += 1
                        i += 1
        # RFC 8985 §6.2 step 4: D-SACK rounds drive the reordering window's multiplier.
        if self.dsack_round is not None and self._off(snd_una) >= self.dsack_round:
            self.dsack_round = None
        if dsack:
            self.stats["dsack"] += 1
            if self.dsack_round is None:
                self.dsack_round = self._off(snd_max)
                self.reo_wnd_mult += 1
                self.reo_wnd_persist = REO_WND_PERSIST

    def _deliver(self, r: Sent, now: float, ts_ecr: int | None, ts_offset: int) -> None:
        """RFC 8985 §6.2 steps 2-3 for a newly delivered record."""
        r.delivered = True
        self.pipe -= (r.end - r.start) * ((0 if r.lost else 1) + (1 if r.rtx else 0))
        ts = r.xmit_ts
        rtt = now - ts
        if r.xmits > 1:
            # Step 2: an ACK that may be for an earlier transmission of a retransmitted segment
            # says nothing about the retransmission's fate or the path's RTT.
            if ts_ecr is not None and ((ts_ecr - ((int(ts * 1000) + ts_offset) & MASK)) & MASK) >= HALF:
                return
            if self.min_rtt is not None and rtt < self.min_rtt:
                return
        elif self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        self.rtt = rtt
        rts = self.xmit_ts
        if rts is None or ts > rts or (ts == rts and r.end > self.end_seq):
            self.xmit_ts = ts
            self.end_seq = r.end
        # Step 3: reordering.
        if r.end > self.fack:
            self.fack = r.end
        elif r.end < self.fack and r.xmits == 1:
            if not self.reordering_seen:
                self.stats["reordering_seen"] += 1
            self.reordering_seen = True

    def on_recovery_exit(self) -> None:
        """A recovery episode ended (RFC 8985 §6.2 step 4: the grown window persists 16 of them)."""
        if self.reo_wnd_persist > 0:
            self.reo_wnd_persist -= 1
            if self.reo_wnd_persist == 0:
                self.reo_wnd_mult = 1

    # -- loss detection --------------------------------------------------------------------------
    def reo_wnd(self, in_recovery: bool, srtt: float | None) -> float:
        """RFC 8985 §6.2 step 4, RACK_update_reo_wnd (the D-SACK part runs in :meth:`on_ack`)."""
        if not self.reordering_seen and (in_recovery or self.segs_sacked >= DUPTHRESH):
            return 0.0
        min_rtt = self.min_rtt
        if min_rtt is None:
            return 0.0
        wnd = self.reo_wnd_mult * min_rtt / 4
        if srtt is not None and srtt < wnd:
            wnd = srtt
        return wnd

    def _mark_lost(self, r: Sent) -> None:
        size = r.end - r.start
        if r.rtx:
            r.rtx = False  # that retransmission is lost too
            self.pipe -= size
            self.stats["lost_retransmissions"] += 1
        if not r.lost:
            r.lost = True
            self.pipe -= size
        self._n += 1
        heappush(self._lostq, (r.start, self._n, r))

    def detect_loss(self, now: float, in_recovery: bool, srtt: float | None) -> tuple[int, float | None]:
        """RFC 8985 §6.2 steps 4-5, RACK_detect_loss: mark lost every outstanding record sent
        before the RACK segment and more than RACK.rtt + RACK.reo_wnd ago (:meth:`reo_wnd`, from
        ``in_recovery`` and ``srtt``). Returns ``(newly lost records, seconds until the earliest
        pending one is due)`` — the second is for the reordering timer, None if nothing is
        pending. O(1) when nothing was sent before the RACK segment (the usual case)."""
        rack_ts = self.xmit_ts
        if rack_ts is None:
            return 0, None
        rack_end = self.end_seq
        h = self._rtxq
        q = self._q
        i = self._cursor
        if i < self._head:
            i = self._head
        if not h and i < len(q):
            r = q[i]
            ts = r.xmit_ts
            if not (r.delivered or r.lost or r.xmits > 1) and (ts > rack_ts or (ts == rack_ts and r.end >= rack_end)):
                self._cursor = i
                return 0, None  # the oldest candidate was sent after the RACK segment
        wait = self.rtt + self.reo_wnd(in_recovery, srtt)
        lost = 0
        timeout: float | None = None
        # Retransmitted records, in transmission order.
        while h:
            ts, _, _, r = h[0]
            if r.delivered or not r.rtx or r.xmit_ts != ts:
                heappop(h)
                continue
            if ts > rack_ts or (ts == rack_ts and r.end >= rack_end):
                break
            remaining = ts + wait - now
            if remaining > 0:
                timeout = remaining
                break
            heappop(h)
            self._mark_lost(r)
            lost += 1
        # Records sent once: sequence order is transmission order.
        n = len(q)
        while i < n:
            r = q[i]
            if r.delivered or r.lost or r.xmits > 1:
                i += 1
                continue
            ts = r.xmit_ts
            if ts > rack_ts or (ts == rack_ts and r.end >= rack_end):
                break
            remaining = ts + wait - now
            if remaining > 0:
                if timeout is None or remaining < timeout:
                    timeout = remaining
                break
            self._mark_lost(r)
            lost += 1
            i += 1
        self._cursor = i
        if lost:
            self.stats["lost"] += lost
        return lost, timeout

    def on_rto(self, now: float, reo_wnd: float, *, keep_sacks: bool) -> None:
        """RFC 8985 §6.3: the retransmission timer expired. The first outstanding record and
        every one sent more than RACK.rtt + ``reo_wnd`` ago are lost; retransmissions in flight
        are presumed lost with them. Without ``keep_sacks`` the SACK marks are forgotten first
        (RFC 2018 §8, RFC 6675 §5.1: the receiver may have reneged)."""
        q = self._q
        first = True
        wait = self.rtt + reo_wnd
        if q is not _NO_QUEUE:
            self._lostq.clear()
            self._rtxq.clear()
        for i in range(self._head, len(q)):
            r = q[i]
            if r.delivered:
                if keep_sacks:
                    continue
                r.delivered = False
                r.sacked = False
                self.segs_sacked -= 1
            if first or r.xmit_ts + wait - now <= 0:
                r.rtx = False
                r.lost = True
                self._n += 1
                self._lostq.append((r.start, self._n, r))  # in sequence order: a valid heap
            elif r.rtx:
                self._n += 1
                heappush(self._rtxq, (r.xmit_ts, r.end, self._n, r))
            first = False
        self._cursor = self._head
        self._recount()

    def _recount(self) -> None:
        pipe = 0
        for i in range(self._head, len(self._q)):
            r = self._q[i]
            if not r.delivered:
                pipe += (r.end - r.start) * ((0 if r.lost else 1) + (1 if r.rtx else 0))
        self.pipe = pipe

    def mark_lost(self, seq: int, end_seq: int) -> int:
        """Mark the records in ``[seq, end_seq)`` lost (another detector, e.g. RFC 6675's IsLost
        or DupThresh, declared them so); returns how many were newly marked."""
        q = self._q
        if self._head >= len(q):
            return 0
        lo = max(self._off(seq), q[self._head].start)
        hi = min(lo + ((end_seq - seq) & MASK), q[-1].end)
        if lo >= hi:
            return 0
        self._split(lo)
        self._split(hi)
        i = bisect_left(q, lo, self._head, len(q), key=_start)
        marked = 0
        while i < len(q) and q[i].start < hi:
            r = q[i]
            if not r.delivered and not r.lost:
                self._mark_lost(r)
                marked += 1
            i += 1
        return marked

    # -- queries ---------------------------------------------------------------------------------
    def next_lost(self) -> tuple[int, int] | None:
        """``(seq, end_seq)`` of the lowest record marked lost and not yet retransmitted."""
        h = self._lostq
        while h:
            r = h[0][2]
            if r.delivered or not r.lost or r.rtx:
                heappop(h)
                continue
            return self._seq(r.start), self._seq(r.end)
        return None

    def has_lost(self) -> bool:
        return self.next_lost() is not None

    def retransmitted(self, seq: int) -> bool:
        """Whether the record holding ``seq`` is delivered or has a retransmission in flight
        (so retransmitting it again now would be redundant)."""
        q = self._q
        if self._head >= len(q):
            return False
        off = self._off(seq)
        i = bisect_left(q, off + 1, self._head, len(q), key=_start) - 1
        if i < self._head:
            return False
        r = q[i]
        return r.start <= off < r.end and (r.delivered or r.rtx)

    def last(self) -> tuple[int, int] | None:
        """``(seq, end_seq)`` of the highest record sent and not delivered (TLP's probe when there
        is no new data: RFC 8985 §7.3's last segment, skipping ones already SACKed, which would
        draw an ACK with nothing new in it)."""
        q = self._q
        for i in range(len(q) - 1, self._head - 1, -1):
            r = q[i]
            if not r.delivered:
                return self._seq(r.start), self._seq(r.end)
        return None

    def __repr__(self) -> str:
        return (
            f"Rack(records={len(self)}, pipe={self.pipe}, sacked={self.segs_sacked}, rtt={self.rtt:.6f}, "
            f"min_rtt={self.min_rtt}, reordering={self.reordering_seen}, mult={self.reo_wnd_mult})"
        )
