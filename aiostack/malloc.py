"""glibc malloc settings for a data-plane process (what Seastar does by owning its memory).

A reactor moves large buffers through the heap all the time: 64 KB segments copied out of the
device's buffers, megabyte reads handed to the application, buffers grown and cleared. With
glibc's defaults every allocation above the (dynamic) mmap threshold is a fresh ``mmap`` and
every free at the top of the heap above the trim threshold gives memory back — so the same
pages are faulted in and zeroed again and again. Measured here (kernel→stack bulk over TAP with
GRO, 3 GB): 454,000 minor faults and 1.68 CPU s/GB with the defaults, 33,000 faults and
1.32 CPU s/GB with the settings below.

Set ``AIOSTACK_MALLOC_TUNING=0`` to leave the allocator alone.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from collections.abc import Callable, Iterable
from typing import Any

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20
"""glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE/2): larger values are refused."""
TRIM_THRESHOLD = 256 << 20
TOP_PAD = 16 << 20

_done = False


def tune_allocator() -> bool:
    """Apply the settings once per process; returns whether glibc took them."""
    global _done
    if _done:
        return True
    if os.environ.get("AIOSTACK_MALLOC_TUNING", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(param, value) == 1
        for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                             (M_TOP_PAD, TOP_PAD))
    )
    _done = ok
    return ok


# -- giving memory back after pressure -----------------------------------------------------------
# The settings above keep freed memory in the process on purpose (no trim churn while traffic
# flows). After pressure — a thousand stalled 10 MB downloads holding their 1 MiB send buffers,
# a burst that grew the packet pool — that memory would stay resident for good: issue #13 saw a
# server stay at 2.29 GB after its stalled peers were gone. glibc's malloc_trim(0) hands every
# free page in every arena back to the kernel (madvise(MADV_DONTNEED) inside the heap, not only at
# its top). It walks the heap, so it runs off the hot path, rarely: from a once-a-second check of
# the reactor's buffer bytes (O(1) counters), only when they have fallen well below their peak.

TRIM_INTERVAL = 1.0
"""Seconds between checks of the buffer bytes (one loop timer per stack, not per connection)."""
TRIM_MIN_DROP = 32 << 20
"""Buffer bytes that must have been let go since the peak before a trim is worth its walk."""
TRIM_FRACTION = 0.5
"""... and the bytes held now must be at most this fraction of the peak."""
TRIM_MIN_GAP = 5.0
"""Seconds between two trims at least (a trim of a 400 MB heap costs a few ms)."""

_malloc_trim: Callable[[int], int] | None = None
_malloc_trim_loaded = False


def _load_malloc_trim() -> Callable[[int], int] | None:
    global _malloc_trim, _malloc_trim_loaded
    _malloc_trim_loaded = True
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return None
    fn.argtypes = (ctypes.c_size_t,)
    fn.restype = ctypes.c_int
    _malloc_trim = fn
    return fn


def malloc_trim() -> bool:
    """glibc ``malloc_trim(0)``: free pages of every arena back to the kernel. False when the C
    library has no such call (musl) or nothing could be released."""
    fn = _malloc_trim if _malloc_trim_loaded else _load_malloc_trim()
    return bool(fn(0)) if fn is not None else False


class MemoryReturn:
    """Trims the heap (and lets growable packet pools shrink back) once the bytes a stack holds in
    buffers (``measure()``: TCP send/receive/out-of-order bytes and pooled packet buffers; their
    peak also from ``high_water()``, the most held since its last call, so pressure that came and
    went between two looks counts) have fallen to ``fraction`` of their peak and by at least
    ``min_drop`` bytes, at most once every ``min_gap`` seconds. :meth:`check` is the whole policy
    (no clock read: ``now`` is passed in); :meth:`start` runs it every ``interval`` seconds on an
    event loop.

    Measured (``benchmarks/memory_return.py``, pure build, 200 stalled 3 MB downloads between two
    stacks on the memory link): RSS 224 MB at start, 723 at the peak; after the connections were
    gone 723 MB with ``AIOSTACK_MALLOC_TRIM=0``, 233 MB with this. The issue's own shape
    (``--tap``: the HTTP example, 1,000 kernel clients stalled on 10 MB downloads, closed by the
    5-second timeouts; compiled build): 62.7 -> 381.0 MB at the peak -> 73.3 MB once they were
    gone (379.4 MB without), 64 large-pool buffers released.
    """

    def __init__(
        self,
        measure: Callable[[], int],
        high_water: Callable[[], int] | None = None,
        *,
        pools: Iterable[Any] = (),
        trim: Callable[[], bool] = malloc_trim,
        min_drop: int = TRIM_MIN_DROP,
        fraction: float = TRIM_FRACTION,
        min_gap: float = TRIM_MIN_GAP,
        interval: float = TRIM_INTERVAL,
    ) -> None:
        self.measure = measure
        self.high_water = high_water
        """The most bytes held since its last call, if known (the peak between two looks)."""
        self.pools = list(pools)
        self._trim = trim
        self.min_drop = min_drop
        self.fraction = fraction
        self.min_gap = min_gap
        self.interval = interval
        self.peak = 0
        self.last_trim = -float("inf")
        self.trims = 0
        self.buffers_released = 0
        self.peak_bytes = 0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def check(self, now: float) -> bool:
        """One look at the buffer bytes; True when it trimmed."""
        held = self.measure()
        top = held if self.high_water is None else max(held, self.high_water())
        if top > self.peak:
            self.peak = top
            self.peak_bytes = max(self.peak_bytes, top)
        if self.peak - held < self.min_drop or held > self.peak * self.fraction or now - self.last_trim < self.min_gap:
            return False
        for pool in self.pools:
            self.buffers_released += pool.trim()
        self._trim()
        self.trims += 1
        self.last_trim = now
        self.peak = self.measure()
        return True

    def start(self, loop: asyncio.AbstractEventLoop) -> MemoryReturn:
        """Check every ``interval`` seconds on ``loop`` until :meth:`stop` (not at all with
        ``AIOSTACK_MALLOC_TRIM=0`` in the environment)."""
        if os.environ.get("AIOSTACK_MALLOC_TRIM", "1") == "0":
            return self
        self._loop = loop
        self._handle = loop.call_later(self.interval, self._tick)
        return self

    def _tick(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._handle = loop.call_later(self.interval, self._tick)
        self.check(loop.time())

    def stop(self) -> None:
        self._loop = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def counters(self) -> dict[str, int]:
        return {"trims": self.trims, "buffers_released": self.buffers_released, "peak_buffer_bytes": self.peak_bytes}
