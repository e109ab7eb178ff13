"""The receive side of one TCP connection: reassembly, the receive window, FIN and SACK blocks.

Sans-I/O: the connection hands in segment payloads whose acceptability it has already checked
(RFC 9293 §3.10.7.4, "segment arrives", first check); this module keeps the bytes, the sequence
state (``RCV.NXT``) and the out-of-order queue, and answers with how far ``RCV.NXT`` moved.

Sequence numbers are modulo 2**32 (RFC 9293 §3.4). Internally every sequence number is turned into
an unbounded *stream offset* (``offset = seq - base``, unwrapped against ``RCV.NXT``), so the
out-of-order store, the FIN and the window edge compare as plain integers and never wrap. The
unwrapping is valid for sequence numbers within 2**31 of ``RCV.NXT``, which RFC 7323's 2**30
window cap guarantees for anything the connection accepts (:func:`aiostack.tcp.seq.seq_sub`,
inlined on the per-segment path).

Policy, each drop counted in :attr:`ReceiveBuffer.drops` (a Counter by reason) and never raised:

- **The acceptance edge** is ``RCV.NXT + capacity - readable``: bytes beyond it have nowhere to go
  and are trimmed (``tcp_rcv_beyond_window``); bytes before ``RCV.NXT`` are old duplicates and
  trimmed too (a segment with nothing new counts ``tcp_rcv_duplicate``). This edge never moves left
  (in-order data raises ``RCV.NXT`` and ``readable`` together; reads raise it), and every window
  this buffer ever reported ended at or before it, so nothing a conforming sender sent is refused.
- **The advertised window** :attr:`~ReceiveBuffer.window` is ``capacity - readable - ooo_bytes``:
  out-of-order bytes count against the buffer, as Linux charges its out-of-order queue to
  ``sk_rcvbuf``. The window can therefore shrink while data waits out of order; RFC 9293 §3.8.6.2.2
  says a receiver SHOULD NOT shrink the window (move its right edge left), so the connection
  advertises ``max(window, previous right edge - RCV.NXT)``. The acceptance edge above is what
  makes that safe.
- **Overlaps: the first copy wins.** Bytes already held (readable or out of order) are never
  overwritten by a later copy, as in BSD and Linux. A retransmission that differs from the original
  is a broken or hostile sender either way (the "overlapping segment" IDS-evasion trick); keeping
  the first copy is the common behaviour and the cheap one: the new copy is only sliced for the
  holes it fills.
- **Out-of-order store.** Contiguous out-of-order data is coalesced into one ``bytearray`` per
  island, and the islands sit in lists sorted by start offset (found by bisection). A segment
  extending an island at its right end is an amortized O(1) append, which is the loss-recovery
  pattern (new data keeps arriving above one hole); a segment bridging islands joins them (each
  join copies the right island once); prepending copies the island (only reverse-order arrival of
  consecutive segments does that). When the gap at ``RCV.NXT`` fills, the new data and every island
  that became contiguous are appended to the readable stream: each byte is copied once more.
- **Caps.** ``max_ooo_segments`` bounds the number of disjoint islands (each island costs a buffer,
  a bisection step and a SACK block; contiguous segments coalesce, so one loss in a large window
  costs one island, not a window's worth of segments); ``max_ooo_bytes`` (default ``capacity``)
  bounds the bytes held out of order. A segment that would open an island beyond the first cap, or
  add bytes beyond the second, is dropped whole (``tcp_ooo_queue_full``). The newcomer is dropped
  rather than older islands evicted: evicting would renege on data already reported in SACK blocks
  (RFC 2018 §8 permits it but the sender then has to wait for a retransmission timeout). In-order
  data is never subject to these caps.
- **FIN** (RFC 9293 §3.10.7.4, eighth check; §3.4: the FIN occupies one sequence number).
  :meth:`~ReceiveBuffer.fin` records the FIN's sequence number; once ``RCV.NXT`` reaches it (at
  once, or when an out-of-order gap fills) it is consumed: ``RCV.NXT`` advances by one and
  :attr:`~ReceiveBuffer.fin_received` becomes true. Data at or beyond a known FIN is trimmed
  (``tcp_rcv_after_fin``, including out-of-order data already held there); a second FIN at a
  different sequence number is ignored (``tcp_fin_conflict``), as is one beyond the acceptance edge
  (``tcp_fin_beyond_window``). A FIN needs no buffer space, so one exactly at the edge is accepted.
- **SACK blocks** (RFC 2018 §4): each island remembers when it last received data; blocks are
  reported most recent first. The first block thus contains the segment that triggered the ACK (if
  it went out of order), and the rest are the most recently reported islands, as §4 asks.

Readable data is kept as the chunks it arrived in: one ``bytes`` (the common case, a request in
one segment), or a list of them once a second arrives before a read. Each payload is copied once
on arrival (out of the packet buffer, which is reused) and once more on a read that joins several
chunks; a read of a lone chunk hands that ``bytes`` over as it is. A growing ``bytearray`` instead
copied every byte in and out, and then again whenever CPython reallocated it as it grew after
reads from its front (~6% of a bulk receiver's CPU, in perf).

Cost (CPython 3.11 on the 2-core dev machine; timeit, best of 7 runs over 100,000 segments):
:meth:`~ReceiveBuffer.add` of an in-order 1448-byte segment (the fast path) costs 100-130 ns of
Python, call included, on top of the ``bytearray`` append that copies the payload (75-95 ns).
Out-of-order arrival (the slow path) averages about 0.65 µs per segment over a pattern of one loss
every ten segments (nine stored out of order, then the retransmission pulls them in).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter

from ..counts import Counts
from .seq import MASK, seq_sub

__all__ = ["ReceiveBuffer"]

_MAX_WINDOW = 1 << 30  # RFC 7323 §2.3: the largest window, so offsets unwrap unambiguously
_NONE: tuple[int, ...] = ()  # the out-of-order lists of a buffer that has never held any
_NO_DATA = b""  # the readable bytes of a buffer holding none
_LARGE_CHUNK = 16 * 1024
"""A chunk this large is handed over alone rather than joined (:meth:`ReceiveBuffer.read_size`):
copying it costs more than one more call of the application's ``data_received``."""
_stamp = 0
"""When an out-of-order island last received data, for the order of SACK blocks (RFC 2018 §4):
one counter for all buffers (only the order within one buffer matters), so a connection does not
carry its own."""


def _next_stamp() -> int:
    global _stamp
    _stamp += 1
    return _stamp


class ReceiveBuffer:
    """The bytes, ``RCV.NXT`` and out-of-order queue of one connection; see the module docstring.

    ``rcv_nxt`` is the next sequence number expected (RFC 9293 §3.3.1), initially ``IRS + 1``;
    ``capacity`` the receive buffer size in bytes (may be changed later; lowering it below what is
    held only closes the window). ``max_ooo_segments`` caps the out-of-order islands and
    ``max_ooo_bytes`` (default: ``capacity`` at construction) the bytes held out of order.
    ``drops`` counts trimmed and refused data by reason.
    """

    __slots__ = (
        "_base",
        "_buf",
        "_datas",
        "_drops",
        "_ends",
        "_fast_seq",
        "_fin_off",
        "_nxt",
        "_ooo_bytes",
        "_ready",
        "_stamps",
        "_starts",
        "capacity",
        "fin_received",
        "max_ooo_bytes",
        "max_ooo_segments",
        "mem",
        "rcv_nxt",
    )

    def __init__(
        self, rcv_nxt: int, capacity: int, *, max_ooo_segments: int = 64, max_ooo_bytes: int | None = None
    ) -> None:
        if not 0 < capacity <= _MAX_WINDOW:
            raise ValueError(f"capacity must be in 1..2**30 (RFC 7323 §2.3), not {capacity!r}")
        if max_ooo_segments < 0 or (max_ooo_bytes is not None and max_ooo_bytes < 0):
            raise ValueError("max_ooo_segments and max_ooo_bytes must not be negative")
        self.capacity = capacity
        self.max_ooo_segments = max_ooo_segments
        self.max_ooo_bytes = capacity if max_ooo_bytes is None else max_ooo_bytes
        self._drops: Counter[str] | None = None
        self.fin_received = False
        # (the caller's int object when already in range: one fewer object per connection)
        self.rcv_nxt: int = rcv_nxt if 0 <= rcv_nxt <= MASK else rcv_nxt & MASK
        """RCV.NXT (RFC 9293 §3.3.1): the next sequence number expected, modulo 2**32. Only this
        buffer moves it."""
        # RCV.NXT while the fast path applies (nothing out of order, no FIN pending), else -1.
        self._fast_seq = self.rcv_nxt
        # Stream offsets: _nxt is RCV.NXT's offset, _base the sequence number at offset 0. They are
        # kept only while the slow path is in use; on the fast path they are re-based on entry to
        # the slow path (_sync), so the per-segment path updates a single attribute.
        self._base = self.rcv_nxt
        self._nxt = 0
        # Readable bytes, in order, ending at RCV.NXT (module notes): the shared empty bytes (an
        # idle connection holds no buffer), one chunk, or a list of chunks; _ready counts them.
        self._buf: bytes | memoryview | list[bytes | bytearray | memoryview] = _NO_DATA
        self._ready = 0
        self._fin_off: int | None = None  # stream offset of a FIN seen but not yet consumed
        # Out-of-order islands, sorted, disjoint and never adjacent (adjacent ones are joined);
        # every start is above _nxt. Parallel lists so that bisection runs on plain int lists;
        # until the first out-of-order segment all four are the shared empty tuple (_add_ooo makes
        # the lists), so a connection that never sees reordering or loss allocates none of them.
        self._starts: list[int] = _NONE  # type: ignore[assignment]
        self._ends: list[int] = _NONE  # type: ignore[assignment]
        self._datas: list[bytearray] = _NONE  # type: ignore[assignment]
        self._stamps: list[int] = _NONE  # type: ignore[assignment]  # when each island last received data
        self._ooo_bytes = 0
        self.mem: object = None
        """The reactor's :class:`~aiostack.tcp.memory.TcpMemory` (None: not accounted)."""

    # -- state -----------------------------------------------------------------------------------

    @property
    def drops(self) -> Counter[str]:
        """Trimmed and refused data by reason (made on first use)."""
        drops = self._drops
        if drops is None:
            drops = self._drops = Counts()
        return drops

    # The established path calls the methods below; the properties beside them are for readers.
    # (In the compiled build a method of a typed object is a C call, a property a lookup by name.)

    def ready_bytes(self) -> int:
        """Bytes ready for the application."""
        return self._ready

    @property
    def readable(self) -> int:
        """:meth:`ready_bytes`."""
        return self.ready_bytes()

    def free_window(self) -> int:
        """Free buffer space to advertise (RFC 9293 §3.8.6.2.2; never negative).

        ``capacity - readable - ooo_bytes``: out-of-order data counts against the buffer, as in
        Linux. The connection keeps the advertised right edge from moving left (module docstring).
        """
        w = self.capacity - self._ready - self._ooo_bytes
        if w <= 0:
            return 0
        mem = self.mem
        if mem is not None and w > mem.rcvbuf_total - mem.rcv_used:
            return mem.rcv_window(w, self._ready + self._ooo_bytes)  # the reactor's total
        return w

    @property
    def window(self) -> int:
        """:meth:`free_window`."""
        return self.free_window()

    def holds_ooo(self) -> bool:
        """Whether any data is held out of order (there is a hole at RCV.NXT)."""
        return bool(self._starts)

    @property
    def has_ooo(self) -> bool:
        """:meth:`holds_ooo`."""
        return self.holds_ooo()

    @property
    def ooo_bytes(self) -> int:
        """Bytes held out of order."""
        return self._ooo_bytes

    @property
    def ooo_segments(self) -> int:
        """Number of disjoint out-of-order islands held (what ``max_ooo_segments`` caps)."""
        return len(self._starts)

    # -- receiving -------------------------------------------------------------------------------

    def add(self, seq: int, data: bytes | bytearray | memoryview) -> int:
        """Accept one segment's payload (a bytes-like object of bytes) starting at ``seq``.

        The connection has checked acceptability (RFC 9293 §3.10.7.4); here the segment is trimmed
        to ``[RCV.NXT, RCV.NXT + capacity - readable)`` (and to a known FIN), in-order bytes join
        the readable stream together with any out-of-order data they make contiguous, and the rest
        is stored out of order (first copy wins). Returns how far RCV.NXT advanced, in sequence
        numbers: data bytes, plus one if a FIN held out of order was consumed (check
        :attr:`fin_received`). What is kept is copied: the caller may reuse its buffer.
        """
        # Fast path (header prediction's data case, RFC 9293 §3.10.7.4 seventh check): in order,
        # nothing out of order, no FIN pending, fits the buffer.
        n = len(data)
        if seq == self._fast_seq and n + self._ready <= self.capacity:
            if n:
                self._append(bytes(data))  # the one copy in (module notes)
            self.rcv_nxt = self._fast_seq = (seq + n) & MASK
            mem = self.mem
            if mem is not None:
                mem.rcv_used += n
                mem.note_used()
            return n
        mem = self.mem
        if mem is None:
            return self._add_slow(seq, data)
        held = self._ready + self._ooo_bytes
        ooo = self._ooo_bytes
        advanced = self._add_slow(seq, data)
        mem.rcv_used += self._ready + self._ooo_bytes - held
        mem.note_used()
        mem.ooo_used += self._ooo_bytes - ooo
        return advanced

    def fin(self, seq: int) -> int:
        """Record a FIN at sequence number ``seq`` (the segment's SEG.SEQ + its data length).

        RFC 9293 §3.10.7.4, eighth check: the FIN is processed once all data before it has arrived;
        it occupies one sequence number (§3.4). Returns how far RCV.NXT advanced: 1 if the FIN was
        consumed now, 0 if it waits for a gap to fill (or was a duplicate or refused; see the
        module docstring).
        """
        self._sync()
        nxt = self._nxt
        off = nxt + seq_sub(seq, self.rcv_nxt)
        if self.fin_received:
            if off != nxt - 1:
                self.drops["tcp_fin_conflict"] += 1  # a retransmitted FIN sits at RCV.NXT - 1
            return 0
        known = self._fin_off
        if known is not None:
            if off != known:
                self.drops["tcp_fin_conflict"] += 1
            return 0
        if off < nxt:
            # The stream cannot end before data already accepted.
            self.drops["tcp_fin_conflict"] += 1
            return 0
        if off > nxt + max(self.capacity - self._ready, 0):
            self.drops["tcp_fin_beyond_window"] += 1
            return 0
        self._fin_off = off
        self._fast_seq = -1
        if self._starts and self._ends[-1] > off:
            ooo = self._ooo_bytes
            self._trim_ooo_from(off)
            mem = self.mem
            if mem is not None:
                mem.rcv_used -= ooo - self._ooo_bytes
                mem.ooo_used -= ooo - self._ooo_bytes
        if off == nxt:
            self._consume_fin()
            return 1
        return 0

    # -- reading ---------------------------------------------------------------------------------

    def read(self, n: int = -1) -> bytes:
        """Remove and return up to ``n`` readable bytes (all of them if ``n`` is negative)."""
        ready = self._ready
        if n < 0 or n > ready:
            n = ready
        if n <= 0:
            return _NO_DATA
        out = self._take(n)
        mem = self.mem
        if mem is not None:
            mem.rcv_used -= n
        return out

    def read_size(self, limit: int) -> int:
        """How many bytes (at most ``limit``) a :meth:`read` should take to copy no large chunk:
        the first chunk alone if it is large (a coalesced GRO frame of up to 64 KB), else the
        small chunks before the first large one, joined. A transport that hands each read to its
        protocol reads this much, so a bulk receiver's bytes are not copied once more into one
        ``bytes`` here only to be copied again into the protocol's buffer."""
        buf = self._buf
        if type(buf) is not list:
            return limit
        total = 0
        for chunk in buf:
            size = len(chunk)
            if size >= _LARGE_CHUNK:
                if total == 0:
                    total = size
                break
            total += size
            if total >= limit:
                break
        return total if total < limit else limit

    def read_into(self, dest: bytearray | memoryview) -> int:
        """Move up to ``len(dest)`` readable bytes into the writable buffer ``dest``; return the count."""
        with memoryview(dest) as out:
            target = out.cast("B") if out.format != "B" or out.ndim != 1 else out
            n = min(target.nbytes, self._ready)
            if n > 0:
                target[:n] = self._take(n)
            if target is not out:
                target.release()
        mem = self.mem
        if mem is not None:
            mem.rcv_used -= n
        return n

    def peek(self, n: int = -1) -> bytes:
        """Return (a copy of) up to ``n`` readable bytes without consuming them (all if negative)."""
        ready = self._ready
        if n < 0 or n > ready:
            n = ready
        buf = self._buf
        data = b"".join(buf) if type(buf) is list else buf
        if n >= len(data):
            return bytes(data)
        with memoryview(data) as view:
            return bytes(view[:n])

    def _append(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add ``chunk`` to the readable bytes; nothing may change it afterwards (module notes)."""
        n = len(chunk)
        if n == 0:
            return
        buf = self._buf
        if not self._ready:
            self._buf = chunk
        elif type(buf) is list:
            buf.append(chunk)
        else:
            self._buf = [buf, chunk]
        self._ready += n

    def _take(self, n: int) -> bytes:
        """Remove the first ``n`` readable bytes (1 ≤ n ≤ ready) and return them as one ``bytes``:
        a lone chunk as it is, else joined (a chunk cut in two leaves a view of its rest)."""
        buf = self._buf
        self._ready -= n
        if type(buf) is not list:
            if n == len(buf):
                self._buf = _NO_DATA  # everything read: let it go
                return buf if type(buf) is bytes else bytes(buf)
            view = memoryview(buf)
            self._buf = view[n:]
            return bytes(view[:n])
        parts = []
        got = 0
        i = 0
        while got < n:
            chunk = buf[i]
            size = len(chunk)
            if got + size <= n:
                parts.append(chunk)
                got += size
                i += 1
            else:
                view = memoryview(chunk)
                parts.append(view[: n - got])
                buf[i] = view[n - got :]
                got = n
        del buf[:i]
        if len(buf) == 1:
            self._buf = buf[0]
        elif not buf:
            self._buf = _NO_DATA
        if len(parts) == 1:
            only = parts[0]
            return only if type(only) is bytes else bytes(only)
        return b"".join(parts)

    # -- SACK ------------------------------------------------------------------------------------

    def sack_blocks(self, max_blocks: int = 4) -> list[tuple[int, int]]:
        """SACK blocks ``[(left, right), ...]`` (sequence numbers; right is exclusive), RFC 2018 §4.

        Each block is an island of contiguous out-of-order data above RCV.NXT. The first block is
        the one holding the most recently received segment; the others follow most recently
        received (so most recently reported) first. ``max_blocks`` is what fits the option: 4
        without timestamps, 3 with them (RFC 2018 §3).
        """
        starts = self._starts
        if not starts or max_blocks <= 0:
            return []
        base = self._base
        ends = self._ends
        if len(starts) == 1:
            return [((base + starts[0]) & MASK, (base + ends[0]) & MASK)]
        stamps = self._stamps
        order = sorted(range(len(starts)), key=stamps.__getitem__, reverse=True)[:max_blocks]
        return [((base + starts[i]) & MASK, (base + ends[i]) & MASK) for i in order]

    # -- internals -------------------------------------------------------------------------------

    def _add_slow(self, seq: int, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if n == 0:
            return 0
        self._sync()
        nxt = self._nxt
        start = nxt + seq_sub(seq, self.rcv_nxt)
        end = start + n
        if end <= nxt:
            self.drops["tcp_rcv_duplicate"] += 1
            return 0
        if self.fin_received:
            self.drops["tcp_rcv_after_fin"] += 1  # nothing follows a consumed FIN
            return 0
        lo = 0  # the slice of data kept: [lo, hi)
        hi = n
        if start < nxt:
            lo = nxt - start
            start = nxt
        limit = nxt + self.capacity - self._ready
        fin_off = self._fin_off
        if fin_off is not None and end > fin_off:
            self.drops["tcp_rcv_after_fin"] += 1
            limit = min(limit, fin_off)
        elif end > limit:
            self.drops["tcp_rcv_beyond_window"] += 1
        if end > limit:
            if start >= limit:
                return 0
            hi -= end - limit
            end = limit
        if lo or hi != n:
            data = memoryview(data)[lo:hi]
        if start == nxt:
            advanced = self._add_in_order(data, start, end)
        else:
            self._add_ooo(data, start, end)
            advanced = 0
        if self._fin_off is not None and self._nxt == self._fin_off:
            self._consume_fin()
            advanced += 1
        elif not self._starts and self._fin_off is None and not self.fin_received:
            self._fast_seq = self.rcv_nxt  # back to the fast path
        return advanced

    def _add_in_order(self, data: bytes | bytearray | memoryview, start: int, end: int) -> int:
        """Append in-order data and every out-of-order island it reaches; first copy wins."""
        starts = self._starts
        nxt = start
        if not starts or starts[0] > end:
            self._append(bytes(data))
            nxt = end
        else:
            view = memoryview(data)
            ends = self._ends
            datas = self._datas
            count = len(starts)
            k = 0
            pos = start  # every island starts above pos, so the gap [pos, starts[k]) is non-empty
            while k < count and starts[k] <= end:
                self._append(bytes(view[pos - start : starts[k] - start]))
                self._append(datas[k])  # the island itself: it leaves the out-of-order lists below
                self._ooo_bytes -= ends[k] - starts[k]
                pos = ends[k]
                k += 1
            if end > pos:
                self._append(bytes(view[pos - start :]))
                pos = end
            del starts[:k], ends[:k], datas[:k], self._stamps[:k]
            nxt = pos
        advanced = nxt - self._nxt
        self._nxt = nxt
        self.rcv_nxt = (self._base + nxt) & MASK
        return advanced

    def _add_ooo(self, data: bytes | bytearray | memoryview, start: int, end: int) -> None:
        """Store out-of-order data [start, end), joining islands it touches; first copy wins."""
        starts = self._starts
        if starts is _NONE:
            self._starts = starts = []
            self._ends = []
            self._datas = []
            self._stamps = []
        ends = self._ends
        datas = self._datas
        stamp = _next_stamp()
        if starts and ends[-1] == start:
            # Extends the highest island: the loss-recovery pattern (new data above one hole).
            if self._ooo_bytes + (end - start) > self.max_ooo_bytes:
                self.drops["tcp_ooo_queue_full"] += 1
                return
            if self._over_ooo_total(end - start):
                return
            datas[-1] += data
            ends[-1] = end
            self._stamps[-1] = stamp
            self._ooo_bytes += end - start
            return
        i = bisect_left(ends, start)  # first island ending at or after start (touching counts)
        j = bisect_right(starts, end)  # islands [i, j) start at or before end
        if i == j:
            if len(starts) >= self.max_ooo_segments or self._ooo_bytes + (end - start) > self.max_ooo_bytes:
                self.drops["tcp_ooo_queue_full"] += 1
                return
            if self._over_ooo_total(end - start):
                return
            self._fast_seq = -1
            starts.insert(i, start)
            ends.insert(i, end)
            datas.insert(i, bytearray(data))
            self._stamps.insert(i, stamp)
            self._ooo_bytes += end - start
            return
        # The joined island spans [min(start, starts[i]), max(end, ends[j-1])); what the islands
        # [i, j) do not cover of it is what this segment adds.
        held = 0
        for k in range(i, j):
            held += ends[k] - starts[k]
        added = max(end, ends[j - 1]) - min(start, starts[i]) - held
        if added == 0:
            self.drops["tcp_rcv_duplicate"] += 1
            self._stamps[i] = stamp  # still the island holding the latest segment (RFC 2018 §4)
            return
        if self._ooo_bytes + added > self.max_ooo_bytes:
            self.drops["tcp_ooo_queue_full"] += 1
            return
        if self._over_ooo_total(added):
            return
        view = memoryview(data)
        if starts[i] <= start:
            merged = datas[i]  # extend the first island in place
            merged_start = starts[i]
        else:
            merged = bytearray(view[: starts[i] - start])
            merged += datas[i]
            merged_start = start
        pos = ends[i]
        for k in range(i + 1, j):
            merged += view[pos - start : starts[k] - start]
            merged += datas[k]
            pos = ends[k]
        if end > pos:
            merged += view[pos - start :]
            pos = end
        starts[i:j] = [merged_start]
        ends[i:j] = [pos]
        datas[i:j] = [merged]
        self._stamps[i:j] = [stamp]
        self._ooo_bytes += added

    def _over_ooo_total(self, added: int) -> bool:
        """Whether ``added`` more out-of-order bytes would pass the reactor's out-of-order total
        (tcp/memory.py); counts the drop (``tcp_ooo_mem_limit``)."""
        mem = self.mem
        if mem is not None and mem.ooo_used + added > mem.ooo_total:
            self.drops["tcp_ooo_mem_limit"] += 1
            return True
        return False

    def _trim_ooo_from(self, off: int) -> None:
        """Drop out-of-order data at or beyond stream offset ``off`` (a FIN arrived below it)."""
        self.drops["tcp_rcv_after_fin"] += 1
        starts = self._starts
        ends = self._ends
        k = bisect_left(starts, off)  # islands [k:] start at or beyond off: drop them whole
        for e, s in zip(ends[k:], starts[k:], strict=True):
            self._ooo_bytes -= e - s
        del starts[k:], ends[k:], self._datas[k:], self._stamps[k:]
        if k and ends[k - 1] > off:
            cut = ends[k - 1] - off
            del self._datas[k - 1][-cut:]
            ends[k - 1] = off
            self._ooo_bytes -= cut

    def _sync(self) -> None:
        """Re-base the stream offsets if the fast path was in use (it updates only rcv_nxt)."""
        if not self._starts and self._fin_off is None:
            self._base = self.rcv_nxt
            self._nxt = 0

    def _consume_fin(self) -> None:
        self._fin_off = None
        self._fast_seq = -1  # nothing follows a FIN
        self.fin_received = True
        self._nxt += 1
        self.rcv_nxt = (self.rcv_nxt + 1) & MASK
