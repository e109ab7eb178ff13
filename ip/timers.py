"""One timer structure per reactor: a hashed timing wheel (Varghese & Lauck, SOSP 1987, scheme 6).

Why a wheel and not ``loop.call_at`` or a heap: a reactor carries ARP, reassembly and TCP timers
for up to a million connections, and almost every TCP timer (retransmission, delayed ACK,
keepalive) is cancelled or re-armed long before it fires. An event-loop handle per timer would
mean a million loop handles, and a binary heap makes every schedule O(log n) and leaves cancelled
entries in the heap. On a hashed wheel, schedule and cancel are O(1): a timer goes into the set of
the slot its deadline hashes to, and cancelling removes it from that set (no tombstones, so
cancelled timers never pile up).

Sans-I/O: the wheel never reads a clock. Time is a float (seconds, monotonic) passed to the
constructor, to :meth:`TimerWheel.schedule` as an absolute deadline, and to
:meth:`TimerWheel.advance`.

Tick arithmetic. A deadline ``when`` belongs to tick ``floor((when - origin) / tick)``; that map is
monotonic in ``when`` even in floating point (a correctly rounded subtraction and division by a
positive constant are monotonic, and so is ``floor``). Hence a timer in a tick before the tick of
``now`` is certainly due, and only timers in ``now``'s own tick need the exact ``when <= now``
comparison. Deadlines in ticks the wheel has already passed are stored in the current tick
("clamped"), so every stored tick is >= the wheel's current tick.

Firing order. :meth:`TimerWheel.advance` moves every due timer from the walked slots into one
small heap keyed by ``(when, schedule order)`` and fires from it; timers scheduled by callbacks
with a deadline that is already due go into the same heap. So timers fire in exactly the order a
plain heap of all timers would give, including re-entrant schedules and cancels.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

__all__ = ["Timer", "TimerWheel"]

_INF = math.inf
_NO_TICK = 1 << 62  # "slot empty" in the per-slot lower bounds; schedule() refuses ticks this far out
_WALK_WHEN_OVER = 64
"""next_deadline() first walks the coming ticks when more slots than this hold timers."""
_WALK_TICKS = 256
"""How many ticks that walk looks ahead before ordering the slots' bounds instead."""


class Timer:
    """A scheduled callback. Returned by :meth:`TimerWheel.schedule`; keep it to cancel.

    ``__slots__`` because a reactor may hold a million of these (TCP keeps several per connection).
    """

    __slots__ = ("_seq", "_slot", "_wheel", "args", "callback", "tick", "when")

    def __init__(
        self, wheel: TimerWheel, when: float, tick: int, seq: int, callback: Callable[..., Any], args: tuple
    ) -> None:
        self.when = when
        self.tick = tick
        self.callback: Callable[..., Any] | None = callback
        self.args = args
        self._seq = seq
        self._wheel: TimerWheel | None = wheel  # None once fired or cancelled
        self._slot: set[Timer] | None = None  # the wheel slot holding it; None while in the due heap

    @property
    def active(self) -> bool:
        """True until the timer fires or is cancelled."""
        return self._wheel is not None

    def pending(self) -> bool:
        """:attr:`active`, as a method: a C call from compiled callers (a property of a compiled
        class is still looked up by name)."""
        return self._wheel is not None

    def cancel(self) -> bool:
        """Cancel the timer in O(1). Returns True if it was pending, False if it had already fired
        or been cancelled (so cancelling twice, or from its own callback, is harmless)."""
        wheel = self._wheel
        if wheel is None:
            return False
        self._wheel = None
        wheel._live -= 1
        slot = self._slot
        if slot is not None:
            slot.discard(self)
            self._slot = None
        # A timer already moved to the due heap stays there and is skipped when popped; that heap
        # only lives for one advance() call, so nothing accumulates.
        self.callback = None
        self.args = ()
        return True

    def __repr__(self) -> str:
        state = "active" if self._wheel is not None else "done"
        return f"<Timer when={self.when!r} {state}>"


class TimerWheel:
    """A hashed timing wheel of ``slots`` buckets, each ``tick`` seconds wide.

    One revolution covers ``slots * tick`` seconds (4.096 s with the defaults); later deadlines
    share slots with nearer ones and are skipped by a comparison until their revolution comes.

    Costs:

    - :meth:`schedule`: O(1) (one float division, one set insertion).
    - :meth:`Timer.cancel`: O(1) (one set removal).
    - :meth:`advance`: O(ticks elapsed since the previous call, capped at one revolution: past that
      every slot is walked once) + O(timers in the walked slots) + O(k log k) for the k timers that
      fire.
    - :meth:`next_deadline`: O(1) while the cached answer is valid: scheduling lowers it in O(1)
      and cancelling leaves it a valid lower bound, so only an :meth:`advance` that reaches it
      invalidates it. It is then recomputed from the lower bounds of the slots holding timers (a
      heap of them: O(occupied slots), at most ``slots``; with every slot occupied about 130 µs
      with 200k pending timers, measured on the 2-core test machine) plus a scan of the one slot
      holding the earliest tick. Affordable once per idle transition, not per packet.
    """

    __slots__ = (
        "_bounded",
        "_firing",
        "_hint",
        "_live",
        "_mins",
        "_n",
        "_now",
        "_origin",
        "_ready",
        "_seq",
        "_slots",
        "_tick",
        "tick",
    )

    def __init__(self, now: float, tick: float = 0.001, slots: int = 4096) -> None:
        if not tick > 0 or not math.isfinite(tick):
            raise ValueError(f"tick must be a positive finite number of seconds, not {tick!r}")
        if slots < 1:
            raise ValueError(f"slots must be >= 1, not {slots!r}")
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, not {now!r}")
        self.tick = float(tick)
        self._origin = float(now)
        self._n = slots
        self._slots: list[set[Timer]] = [set() for _ in range(slots)]
        # _mins[i]: a lower bound on the stored ticks in slot i (_NO_TICK when known empty). Lowered
        # on schedule, made exact when next_deadline() looks at the slot; cancels may leave it low.
        self._mins: list[int] = [_NO_TICK] * slots
        # The slots whose bound is not _NO_TICK: next_deadline() looks at these only, not at every
        # slot (a scan of all 4096 bounds cost ~100 µs per idle transition: ~4% of a
        # connection-per-request run's CPU, cProfile).
        self._bounded: set[int] = set()
        self._tick = 0  # current tick: every stored timer has tick >= this
        self._now = float(now)  # the latest time passed to advance() (or the constructor)
        self._seq = 0
        self._live = 0
        self._hint: float | None = None  # cached lower bound on the earliest live deadline
        self._firing = False
        self._ready: list[tuple[float, int, Timer]] = []

    # -- scheduling ------------------------------------------------------------------------------

    def _tick_of(self, t: float) -> int:
        x = (t - self._origin) / self.tick
        if x >= _NO_TICK:
            return _NO_TICK  # too far out to count in ticks (schedule() refuses it)
        return int(x) if x > 0 else 0  # int() truncates == floor for x >= 0; earlier times clamp

    def schedule(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Call ``callback(*args)`` at the first :meth:`advance` whose ``now >= when``.

        ``when`` is an absolute deadline on the same clock as ``now``. A deadline in the past fires
        at the next advance (or within the running one, if called from a callback). O(1).
        """
        return self.schedule_args(when, callback, args)

    def schedule_args(self, when: float, callback: Callable[..., Any], args: tuple) -> Timer:
        """:meth:`schedule` with the arguments as one tuple: compiled, a C call (a ``cpdef``
        method cannot take ``*args``). TCP passes an unbound method and ``(conn,)``: a bound
        method made per call costs a lookup by name and an allocation, and one kept per
        connection 64 bytes."""
        if not -_INF < when < _INF:  # finite (NaN fails both comparisons)
            raise ValueError(f"deadline must be finite, not {when!r}")
        tick = self._tick_of(when)
        if tick < self._tick:
            tick = self._tick
        elif tick >= _NO_TICK:
            raise ValueError(f"deadline {when!r} is too far in the future for this wheel")
        seq = self._seq
        self._seq = seq + 1
        self._live += 1
        hint = self._hint
        if hint is not None and when < hint:
            self._hint = when
        # Timer.__new__ and the fields set here, not Timer(...): compiled, that skips the call
        # through the type and the parsing of six arguments (a third of a schedule's cost).
        timer = Timer.__new__(Timer)
        timer.when = when
        timer.tick = tick
        timer.callback = callback
        timer.args = args
        timer._seq = seq
        timer._wheel = self
        timer._slot = None
        if self._firing and when <= self._now:
            # Already due inside the running advance(): fire in this same call, in deadline order.
            heapq.heappush(self._ready, (when, seq, timer))
            return timer
        i = tick % self._n
        slot = self._slots[i]
        slot.add(timer)
        timer._slot = slot
        mins = self._mins
        if tick < mins[i]:
            if mins[i] == _NO_TICK:
                self._bounded.add(i)
            mins[i] = tick
        return timer

    # -- firing ----------------------------------------------------------------------------------

    def advance(self, now: float) -> int:
        """Fire, in deadline order, every timer whose deadline is <= ``now``; return how many fired.

        Never early: a timer fires in the first call whose ``now >= when``. Callbacks may schedule
        and cancel timers; ones they schedule with a deadline <= ``now`` fire in this same call.
        If a callback raises, the exception propagates and the timers still due stay pending for
        the next call. Not re-entrant (a callback must not call ``advance``).
        """
        if self._firing:
            raise RuntimeError("TimerWheel.advance() called from a timer callback")
        self._now = now
        cur = self._tick_of(now)
        start = self._tick
        if cur < start:
            cur = start  # the wheel's tick never moves back, even if a caller's clock does
        hint = self._hint
        if hint is not None and now < hint:
            # Nothing is due before the cached lower bound, so no slot needs a look: every timer
            # stored at a tick before cur would be due. A reactor iterates far more often than a
            # timer fires, and with no walk its timer step is a comparison.
            self._tick = cur
            return 0
        n = self._n
        slots = self._slots
        mins = self._mins
        ready = self._ready
        # Walk the slots of ticks start..cur (each slot once at most). A timer in them is due iff
        # when <= now: a due timer has stored tick in [start, cur] (clamping never lifts it past
        # the current tick), and a timer of a later revolution sharing the slot has when > now.
        walk = n if cur - start >= n else cur - start + 1
        for k in range(walk):
            i = (start + k) % n
            slot = slots[i]
            if not slot:
                continue
            due = [t for t in slot if t.when <= now]
            if due:
                slot.difference_update(due)
                for t in due:
                    t._slot = None
                    ready.append((t.when, t._seq, t))
                if not slot:
                    mins[i] = _NO_TICK
                    self._bounded.discard(i)
        self._tick = cur
        if not ready:
            if hint is not None and hint <= now:
                self._hint = None
            return 0
        heapq.heapify(ready)
        fired = 0
        self._firing = True
        try:
            while ready:
                timer = heapq.heappop(ready)[2]
                if timer._wheel is None:
                    continue  # cancelled after it was found due
                timer._wheel = None
                self._live -= 1
                fired += 1
                callback, args = timer.callback, timer.args
                timer.callback = None
                timer.args = ()
                callback(*args)  # type: ignore[misc]
        finally:
            self._firing = False
            self._hint = None
            if ready:  # a callback raised: put the rest back, due at the next advance
                slot = slots[cur % n]
                for _, _, t in ready:
                    if t._wheel is not None:
                        t.tick = cur
                        t._slot = slot
                        slot.add(t)
                        mins[cur % n] = min(mins[cur % n], cur)
                        self._bounded.add(cur % n)
                ready.clear()
        return fired

    # -- queries ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest pending deadline, or None when no timer is pending.

        Exact after a schedule or an advance; after cancels it may be the deadline of a cancelled
        timer, which is earlier than every live one (a reactor sleeping until then wakes once
        early, advances, fires nothing and asks again). Cost: see the class docstring.
        """
        if self._live == 0:
            return None
        hint = self._hint
        if hint is not None:
            return hint
        mins = self._mins
        if self._firing:
            # Called from a callback: live timers may also sit in the due heap (rare; O(heap)).
            due = [w for w, _, t in self._ready if t._wheel is not None]
            if due:
                return min(due)
        if len(self._bounded) > _WALK_WHEN_OVER:
            # Many occupied slots (a reactor closing connections holds a TIME-WAIT timer each):
            # the earliest timer is most likely a few ticks ahead — look there first, tick by
            # tick, before ordering every slot's bound (144 µs with 30k such timers, measured).
            found = self._walk(_WALK_TICKS)
            if found is not None:
                return found
        # Slots in order of their (lower-bound) tick. A bound goes stale when timers are
        # cancelled; each stale slot is made exact once and pushed back. One O(slots) pass to
        # build the heap, not one ``min(mins)`` per stale slot: with delayed-ACK and RTO timers
        # cancelled on every segment, dozens of slots are stale and the repeated scans cost
        # milliseconds per call (7% of a wrk run's CPU, py-spy).
        order = [(mins[i], i) for i in self._bounded]
        heapq.heapify(order)
        while order:
            tm, i = heapq.heappop(order)
            best: float | None = None
            low = _NO_TICK
            for t in self._slots[i]:
                tk = t.tick
                if tk == tm:
                    if best is None or t.when < best:
                        best = t.when
                elif tk < low:
                    low = tk
            if best is not None:
                # Every stored tick is >= tm; timers stored at a later tick were not clamped
                # (clamping uses the current tick, which is <= tm), so they are due after any
                # deadline stored at tick tm. The minimum over tick tm is therefore exact.
                self._hint = best
                return best
            mins[i] = low  # the bound was stale (cancelled timers): make it exact, look again
            if low == _NO_TICK:
                self._bounded.discard(i)
            else:
                heapq.heappush(order, (low, i))
        return None  # only reachable from a callback, with no timer left in a slot

    def _walk(self, ticks: int) -> float | None:
        """The earliest deadline if a timer is due within ``ticks`` ticks of the current one
        (then cached as the hint), else None. Every stored tick is >= the current tick, so the
        first tick with a timer stored at it holds the earliest deadline; a slot's bound above a
        tick rules the slot out for it, and a stale bound is made exact on the way."""
        n = self._n
        mins = self._mins
        slots = self._slots
        cur = self._tick
        for t in range(cur, cur + min(ticks, n)):
            i = t % n
            if mins[i] > t:
                continue
            best: float | None = None
            low = _NO_TICK
            for timer in slots[i]:
                tk = timer.tick
                if tk == t:
                    if best is None or timer.when < best:
                        best = timer.when
                elif tk < low:
                    low = tk  # a later revolution's (ticks below t in this slot would be < cur)
            if best is not None:
                self._hint = best
                return best
            mins[i] = low
            if low == _NO_TICK:
                self._bounded.discard(i)
        return None

    def __len__(self) -> int:
        """The number of pending (not yet fired, not cancelled) timers."""
        return self._live

    @property
    def now(self) -> float:
        """The latest time the wheel has been advanced to (:meth:`latest`)."""
        return self._now

    def latest(self) -> float:
        """The latest time the wheel has been advanced to (a method: a C call from compiled code,
        where the property is a lookup by name)."""
        return self._now

    @property
    def slots(self) -> int:
        """The number of buckets in one revolution."""
        return self._n

    def __repr__(self) -> str:
        return f"<TimerWheel tick={self.tick} slots={self._n} pending={self._live} now={self._now}>"
