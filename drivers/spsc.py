"""Single-producer/single-consumer rings of variable-length messages in shared memory (DPDK's
rte_ring idea), with an eventfd doorbell for consumers that sleep.

Two users: the cross-core channels of :mod:`aiostack.ring` (calls and messages between reactors,
never a TCP flow's packets) and the shared-memory link of :mod:`aiostack.drivers.shared_link`
(the memory driver between processes: Ethernet frames, one ring per pair of queues).

- :class:`SpscRing` — variable-length ``bytes`` messages in a ``multiprocessing.shared_memory``
  segment, lock-free, one producer process and one consumer process;
- a **doorbell** per ring — an ``eventfd`` the producer writes when the ring goes from empty to
  non-empty, so an idle consumer reactor sleeps in its loop (``loop.add_reader``) instead of polling.
  Several rings may ring one eventfd (a consumer that drains them all sleeps on one fd).

Layout of a ring segment (all integers native-endian, i.e. little-endian on the machines we run on)::

    offset   0  line 0: magic u64, capacity u64            (written once by the creator)
    offset  64  line 1: head u64, messages-read u64, sleeping u64   (written only by the consumer)
    offset 128  line 2: tail u64, messages-written u64      (written only by the producer)
    offset 192  data area: ``capacity`` bytes (a power of two)

``head`` and ``tail`` are free-running byte counters (they never wrap: 2**64 bytes is centuries at any
rate); ``tail - head`` is the number of bytes in use, ``counter & (capacity - 1)`` the offset in the
data area. They sit on separate 64-byte cache lines so the producer and the consumer do not
false-share a line. Each side also keeps the other side's counter cached in a local variable and only
re-reads the shared one when its cached view says "full" (producer) or "empty" (consumer), as
rte_ring does.

A record is a u32 length then the payload, padded to 8 bytes, starting 8-byte aligned. A record that
does not fit before the end of the data area is preceded by a padding marker (length ``0xFFFFFFFF``)
that tells the consumer to skip to offset 0, so **a message is always contiguous** — one
``memoryview`` slice, one ``memcpy``. Because a record may have to skip up to ``record - 8`` bytes of
padding, the largest message that is guaranteed to fit an *empty* ring whatever the current offset is
``capacity // 2 - 4`` bytes (:attr:`SpscRing.max_message`): "larger than about half the capacity" is
a ``ValueError``, the 4 bytes being the length prefix.

Memory ordering (why no lock is needed):

- *Producer*: write the record (length prefix and payload) into the data area, **then** store the new
  ``tail``. *Consumer*: load ``tail``, **then** read the records below it, **then** store the new
  ``head``. The producer never writes into bytes below ``head + capacity``, so it only reuses space
  the consumer has published as read.
- x86-64 is TSO: stores are not reordered with other stores, loads are not reordered with other
  loads, and loads are not reordered with later stores. So the consumer that sees a ``tail`` also
  sees the record bytes written before it (store→store on the producer, load→load on the consumer),
  and the producer that sees a ``head`` knows the consumer has finished copying the records below it
  (load→store on the consumer). The string moves ``memcpy`` uses keep this: stores inside one
  ``rep movs`` may be reordered among themselves, but not with later stores; glibc ends its
  non-temporal (``movnt``) path — only used for copies of megabytes — with an ``sfence``.
- CPython: a counter is one aligned 8-byte slot of a ``memoryview`` cast to ``'Q'``; item assignment
  packs the value with a fixed-size ``memcpy`` into the slot, which compiles to one 8-byte ``mov`` —
  a single, untorn store (reads likewise are one 8-byte load). We rely on that, and on the record
  copy and the counter store being separate C calls made by the interpreter in program order (the C
  compiler cannot move stores across such opaque calls). ``struct.pack_into("<Q")`` is *not* used: its
  little-endian standard packer writes byte by byte.
- On weaker architectures (ARM64, POWER) the same program order is not enough: the producer needs a
  release fence between the record and the ``tail`` store, the consumer an acquire fence after the
  ``tail`` load and a release fence before the ``head`` store. The module issues them (a numba-compiled
  ``fence seq_cst``) when ``platform.machine()`` is not x86; on x86 they cost nothing because they are
  not called.

The doorbell is the one place where x86 needs a real fence. Waking a sleeper is Dekker's pattern —
the producer stores ``tail`` then loads ``head`` ("was the ring empty, so the consumer may be
asleep?"); the consumer stores ``head`` then loads ``tail`` ("is there more before I sleep?") — and
TSO *does* let a load pass an earlier store (the store-buffer). Without a fence both sides could read
the old value: the producer decides not to ring, the consumer decides to sleep, and the message waits
forever. So:

- consumer, in its loop callback: clear the ``sleeping`` word (:meth:`SpscRing.disarm_doorbell`),
  **drain** (``get_many`` until short), **clear** the eventfd (one non-blocking ``read``), set
  ``sleeping``, **full fence**, **re-check** ``tail``; return to the loop (sleep) only if still empty,
  else clear ``sleeping`` and drain again (:meth:`SpscRing.arm_doorbell` is clear + set + fence +
  re-check);
- producer, after publishing ``tail``: **full fence**, load ``sleeping`` and ``head``; if the
  consumer is sleeping and ``head`` equals the tail before this publication (it had read
  everything), write the eventfd. One ``write`` syscall per sleep, none while the consumer is awake
  or behind — a busy-polling consumer that never arms the doorbell never costs the producer a
  syscall.

Either the producer's loads see the consumer's last ``head`` and ``sleeping`` stores (and it rings),
or the consumer's re-check sees the new ``tail`` (and it drains) — possibly both, which costs one
spurious wake-up. A bell that arrives after the clear stays set in the eventfd and wakes the loop
again. The full fence is a numba
intrinsic (``fence seq_cst`` → ``mfence``), called with no arguments; rings without a doorbell (busy-
polling consumers) skip it.

Measured on this machine (2-vCPU AMD EPYC VM, CPython 3.11, ``benchmarks/ring.py --micro``; ns per
message in one process, so no cache-line transfers):

    ========================================  ======  ======
    operation                                  16 B    1 KB
    ========================================  ======  ======
    try_put + try_get                           812     967
    put_many + get_many (32), per message       432     564
    try_put + try_get, doorbell armed path      959    1083
    copy: memoryview slice assignment           149     149
    copy: cffi ffi.memmove                      164     168
    copy: numba loop (incl. np.frombuffer)      687    1144
    counter store (memoryview 'Q')               73
    fence (numba intrinsic, no-arg call)         69
    ========================================  ======  ======

(timeit with a lambda around each operation, so ~40-70 ns of each figure is the lambda; a quieter
run measured the numba fence at 29 ns, a bare memoryview store at 32 ns.)

What paid and what did not:

- the copy: a ``memoryview`` slice assignment (``data[a:b] = payload``) is a ``memcpy`` in C; cffi's
  ``ffi.memmove`` and a numba copy cost more per call than they save (numba has to turn the bytes into
  an array at every call), for 16 B and 1 KB alike — kept pure Python;
- the counters: ``memoryview.cast('Q')`` item access (~30 ns) beats ``struct.pack_into`` and any
  foreign call — kept;
- the fence: numba's no-argument call of a ``fence`` intrinsic is ~30 ns; cffi calling libatomic's
  ``atomic_thread_fence`` is ~150 ns and ``threading.Lock`` acquire/release (a locked instruction in
  glibc) ~85 ns — numba kept, compiled lazily on the first doorbell ring (cached on disk), with the
  cffi form as the fallback;
- batching (``put_many``/``get_many``) pays most: one ``tail``/``head`` publication (and one fence)
  per batch instead of per message.

Between two processes pinned to the two CPUs (``benchmarks/ring.py``):

    ==========================  ===========  ===========  =========
    one way, 1 MB ring           16 B msg/s   1 KB msg/s   1 KB MB/s
    ==========================  ===========  ===========  =========
    try_put / try_get               1.91 M       0.35 M        363
    put_many / get_many (64)        3.24 M       3.09 M       3163
    ==========================  ===========  ===========  =========

Passing rings to other processes: the segment is attached by name, but an eventfd is a file
descriptor and has no name. A ring pickles as its name plus a
``multiprocessing.reduction.DupFd`` of the doorbell, so it can be handed to a ``multiprocessing``
``Process`` (spawn, forkserver) as an argument; with ``fork`` the object and the fd are simply
inherited. :meth:`SpscRing.attach` takes the fd explicitly for other transports (``SCM_RIGHTS``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
from collections.abc import Callable, Iterable
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from typing import Any

__all__ = ["SpscRing", "warm_up"]

MAGIC = 0x31474E52_4B415453  # "STAKRNG1" little-endian
HEADER_SIZE = 192
_CAP, _HEAD, _NGET, _SLEEPING, _TAIL, _NPUT = 1, 8, 9, 10, 16, 17  # u64 indexes into the header
_PAD = 0xFFFFFFFF
_MIN_CAPACITY = 64

# -- fences ---------------------------------------------------------------------------------------

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_full_fence: Callable[[], Any] | None = None


def _load_fence() -> Callable[[], Any]:
    """A sequentially consistent fence callable from Python: a numba intrinsic if numba is there,
    else libatomic's ``atomic_thread_fence`` through cffi, else a lock round trip (a locked
    instruction in glibc, a full barrier on x86)."""
    global _full_fence
    if _full_fence is not None:
        return _full_fence
    try:
        import numba
        from numba import types
        from numba.extending import intrinsic

        @intrinsic
        def _fence_intrinsic(typingctx):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
            def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
                builder.fence("seq_cst")
                return context.get_dummy_value()

            return types.void(), codegen

        @numba.njit(cache=True, nogil=True)
        def fence() -> None:  # pragma: no cover - compiled
            _fence_intrinsic()

        fence()
        _full_fence = fence
    except Exception:  # pragma: no cover - numba is a declared dependency
        try:
            from cffi import FFI

            ffi = FFI()
            ffi.cdef("void atomic_thread_fence(int);")
            lib = ffi.dlopen("libatomic.so.1")
            seq_cst = 5
            atomic_fence = lib.atomic_thread_fence
            _full_fence = lambda: atomic_fence(seq_cst)  # noqa: E731
        except Exception:
            import threading

            lock = threading.Lock()

            def lock_fence() -> None:
                lock.acquire()
                lock.release()

            _full_fence = lock_fence
    return _full_fence


def warm_up() -> None:
    """Load (compile or read from the cache) the fence ahead of time, so a reactor's first doorbell
    does not pay for importing numba."""
    _load_fence()


def _order_fence() -> None:
    """Acquire/release ordering: nothing on x86 (TSO gives it), a full fence elsewhere."""
    if not _X86:  # pragma: no cover - exercised on ARM only
        _load_fence()()


# -- shared memory helpers -------------------------------------------------------------------------


def _attach_untracked(name: str) -> SharedMemory:
    """Attach to an existing segment without registering it with this process's resource tracker
    (before Python 3.13 attaching registers too, and the tracker of an unrelated process would
    unlink the creator's segment when it exits)."""
    try:
        return SharedMemory(name, track=False)  # type: ignore[call-arg]  # Python >= 3.13
    except TypeError:
        pass
    register = resource_tracker.register
    resource_tracker.register = lambda *a, **k: None  # type: ignore[assignment]
    try:
        return SharedMemory(name)
    finally:
        resource_tracker.register = register  # type: ignore[assignment]


def _new_doorbell() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def _rebuild_ring(name: str, doorbell: Any) -> SpscRing:
    fd = doorbell.detach() if doorbell is not None else None
    return SpscRing.attach(name, doorbell=fd)


# -- the ring --------------------------------------------------------------------------------------


class SpscRing:
    """A lock-free single-producer/single-consumer ring of ``bytes`` messages in shared memory.

    One process produces (:meth:`try_put`, :meth:`put_many`), one consumes (:meth:`try_get`,
    :meth:`get_many`); each side keeps its own counter and a cached copy of the other's in the
    object, so one object must be used for one role. :meth:`create` makes the segment (and, by
    default, the doorbell eventfd); :meth:`attach` maps an existing one by name.
    """

    __slots__ = (
        "_buf",
        "_creator_pid",
        "_ctr",
        "_data",
        "_doorbell",
        "_doorbell_owned",
        "_head",
        "_head_cache",
        "_mask",
        "_nget",
        "_nput",
        "_owner",
        "_shm",
        "_tail",
        "_tail_cache",
        "_u32",
        "capacity",
        "max_message",
        "name",
    )

    def __init__(self, shm: SharedMemory, *, owner: bool, doorbell: int | None) -> None:
        self._shm = shm
        self._owner = owner
        self._creator_pid = os.getpid()
        self._doorbell = doorbell
        self._doorbell_owned = True
        self.name = shm.name
        self._buf = shm.buf
        ctr = self._buf[:HEADER_SIZE].cast("Q")
        self._ctr = ctr
        if ctr[0] != MAGIC:
            self._release_views()
            raise ValueError(f"shared memory {self.name!r} is not an aiostack ring (bad magic)")
        cap = ctr[_CAP]
        if cap < _MIN_CAPACITY or cap & (cap - 1) or len(self._buf) < HEADER_SIZE + cap:
            self._release_views()
            raise ValueError(f"shared memory {self.name!r} has a corrupt ring header (capacity {cap})")
        self.capacity = cap
        self.max_message = cap // 2 - 4
        self._mask = cap - 1
        self._data = self._buf[HEADER_SIZE : HEADER_SIZE + cap]
        self._u32 = self._data.cast("I")
        # both roles' local state, read from the shared counters (a fresh attach resumes them)
        self._head = self._head_cache = ctr[_HEAD]
        self._tail = self._tail_cache = ctr[_TAIL]
        self._nget = ctr[_NGET]
        self._nput = ctr[_NPUT]

    # construction ---------------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, capacity: int, *, doorbell: bool | int = True) -> SpscRing:
        """Create the segment ``name`` with ``capacity`` bytes of data (a power of two, at least 64).

        ``doorbell``: True makes the ring its own eventfd; an int is an eventfd the caller owns and
        shares with other rings that one consumer drains (closing the ring leaves it open); False,
        none (a busy-polling consumer).

        Raises ``FileExistsError`` if a segment of that name exists (a ring still in use, or left
        by a process that crashed before unlinking it: see :meth:`unlink_name`)."""
        if capacity < _MIN_CAPACITY or capacity & (capacity - 1):
            raise ValueError(f"ring capacity must be a power of two >= {_MIN_CAPACITY}, not {capacity}")
        try:
            shm = SharedMemory(name, create=True, size=HEADER_SIZE + capacity)
        except FileExistsError:
            raise FileExistsError(
                errno.EEXIST,
                f"a shared memory segment named {name!r} already exists (a ring in use, or one left "
                f"behind by a crashed process: remove it with SpscRing.unlink_name({name!r}))",
                name,
            ) from None
        ctr = shm.buf[:HEADER_SIZE].cast("Q")
        ctr[_CAP] = capacity
        ctr[0] = MAGIC
        ctr.release()
        try:
            if doorbell is True:
                return cls(shm, owner=True, doorbell=_new_doorbell())
            ring = cls(shm, owner=True, doorbell=None if doorbell is False else int(doorbell))
            ring._doorbell_owned = False
            return ring
        except BaseException:
            shm.close()
            shm.unlink()
            raise

    @classmethod
    def attach(cls, name: str, *, doorbell: int | None = None) -> SpscRing:
        """Map the existing ring ``name``. ``doorbell`` is the ring's eventfd as received from its
        creator (fork inheritance, ``DupFd``, ``SCM_RIGHTS``); the ring owns it from then on."""
        shm = _attach_untracked(name)
        try:
            return cls(shm, owner=False, doorbell=doorbell)
        except BaseException:
            shm.close()
            raise

    @staticmethod
    def unlink_name(name: str) -> bool:
        """Remove the segment ``name`` if it exists (clean-up of a crashed run); True if removed."""
        try:
            shm = _attach_untracked(name)
        except FileNotFoundError:
            return False
        shm.close()
        resource_tracker.register(shm._name, "shared_memory")  # type: ignore[attr-defined]
        shm.unlink()
        return True

    def __reduce__(self) -> tuple[Any, ...]:
        from multiprocessing.reduction import DupFd

        return _rebuild_ring, (self.name, DupFd(self._doorbell) if self._doorbell is not None else None)

    # producer -------------------------------------------------------------------------------

    def try_put(self, data: bytes | bytearray | memoryview) -> bool:
        """Append one message; False (nothing written) when the ring has no room. Never blocks."""
        n = len(data)
        if n > self.max_message:
            raise ValueError(f"message of {n} bytes exceeds the ring's maximum of {self.max_message}")
        tail = start = self._tail
        cap = self.capacity
        pos = tail & self._mask
        to_end = cap - pos
        rec = (n + 11) & ~7
        need = rec if rec <= to_end else to_end + rec
        if need > cap - (tail - self._head_cache):
            self._head_cache = self._ctr[_HEAD]
            if need > cap - (tail - self._head_cache):
                return False
        u32 = self._u32
        if rec > to_end:
            u32[pos >> 2] = _PAD
            tail += to_end
            pos = 0
        u32[pos >> 2] = n
        self._data[pos + 4 : pos + 4 + n] = data
        self._tail = tail + rec
        self._nput += 1
        self._publish(start)
        return True

    def put_many(self, messages: Iterable[bytes | bytearray | memoryview]) -> int:
        """Append messages in order until one does not fit; returns how many were appended.

        One ``tail`` publication (and at most one doorbell) for the batch. An oversized message
        raises ``ValueError`` after publishing the ones before it."""
        tail = start = self._tail
        cap = self.capacity
        mask = self._mask
        maxm = self.max_message
        u32 = self._u32
        data = self._data
        free = cap - (tail - self._head_cache)
        count = 0
        try:
            for m in messages:
                n = len(m)
                if n > maxm:
                    raise ValueError(f"message of {n} bytes exceeds the ring's maximum of {maxm}")
                pos = tail & mask
                to_end = cap - pos
                rec = (n + 11) & ~7
                need = rec if rec <= to_end else to_end + rec
                if need > free:
                    self._head_cache = self._ctr[_HEAD]
                    free = cap - (tail - self._head_cache)
                    if need > free:
                        break
                if rec > to_end:
                    u32[pos >> 2] = _PAD
                    pos = 0
                u32[pos >> 2] = n
                data[pos + 4 : pos + 4 + n] = m
                tail += need
                free -= need
                count += 1
        finally:
            if count:
                self._tail = tail
                self._nput += count
                self._publish(start)
        return count

    def _publish(self, start: int) -> None:
        _order_fence()  # release: records before tail (no-op on x86)
        ctr = self._ctr
        ctr[_NPUT] = self._nput
        ctr[_TAIL] = self._tail
        if self._doorbell is not None:
            (_full_fence or _load_fence())()  # tail store before the loads below (Dekker)
            if ctr[_SLEEPING]:
                head = self._head_cache = ctr[_HEAD]
                if head == start:  # the consumer had read everything and went to sleep
                    os.eventfd_write(self._doorbell, 1)

    # consumer -------------------------------------------------------------------------------

    def try_get(self) -> bytes | None:
        """Remove and return the oldest message, or None when the ring is empty."""
        head = self._head
        if head == self._tail_cache:
            self._tail_cache = self._ctr[_TAIL]
            if head == self._tail_cache:
                return None
            _order_fence()  # acquire
        pos = head & self._mask
        n = self._u32[pos >> 2]
        if n == _PAD:
            head += self.capacity - pos
            pos = 0
            n = self._u32[0]
        out = bytes(self._data[pos + 4 : pos + 4 + n])
        self._head = head + ((n + 11) & ~7)
        self._nget += 1
        _order_fence()  # release: finished reading before head
        ctr = self._ctr
        ctr[_NGET] = self._nget
        ctr[_HEAD] = self._head
        return out

    def get_many(self, max_count: int = 256) -> list[bytes]:
        """Remove and return up to ``max_count`` messages, oldest first, in one pass (one ``head``
        publication)."""
        head = self._head
        tail = self._tail_cache = self._ctr[_TAIL]
        if head == tail:
            return []
        _order_fence()  # acquire
        mask = self._mask
        cap = self.capacity
        u32 = self._u32
        data = self._data
        out: list[bytes] = []
        append = out.append
        left = max_count
        while head != tail and left:
            pos = head & mask
            n = u32[pos >> 2]
            if n == _PAD:
                head += cap - pos
                continue
            append(bytes(data[pos + 4 : pos + 4 + n]))
            head += (n + 11) & ~7
            left -= 1
        self._head = head
        self._nget += len(out)
        _order_fence()  # release
        ctr = self._ctr
        ctr[_NGET] = self._nget
        ctr[_HEAD] = head
        return out

    def consume(self, max_count: int, sink: Callable[[memoryview], object]) -> int:
        """Pass up to ``max_count`` messages, oldest first, to ``sink`` as views into the ring —
        valid only during the call: the space is published as free once ``consume`` returns — and
        remove them; returns how many. No copy besides the one ``sink`` makes (a driver copies a
        frame straight into a packet buffer)."""
        head = self._head
        tail = self._tail_cache = self._ctr[_TAIL]
        if head == tail:
            return 0
        _order_fence()  # acquire
        mask = self._mask
        cap = self.capacity
        u32 = self._u32
        data = self._data
        count = 0
        try:
            while head != tail and count < max_count:
                pos = head & mask
                n = u32[pos >> 2]
                if n == _PAD:
                    head += cap - pos
                    continue
                head += (n + 11) & ~7
                count += 1
                sink(data[pos + 4 : pos + 4 + n])
        finally:
            self._head = head
            self._nget += count
            _order_fence()  # release
            ctr = self._ctr
            ctr[_NGET] = self._nget
            ctr[_HEAD] = head
        return count

    # doorbell -------------------------------------------------------------------------------

    @property
    def doorbell_fd(self) -> int | None:
        """The eventfd the producer writes on an empty→non-empty transition (None if disabled)."""
        return self._doorbell

    def arm_doorbell(self, *, clear: bool = True) -> bool:
        """Consumer, before going idle: clear the doorbell, say "sleeping", fence, re-check. True
        when the ring is still empty (sleep on :attr:`doorbell_fd` now); False when messages arrived
        meanwhile (the ring is disarmed again: drain and try later). ``clear=False`` when the
        consumer of several rings sharing one eventfd has cleared it once before arming them all
        (clearing it again could swallow a bell an earlier ring's producer just rang)."""
        ctr = self._ctr
        if self._doorbell is not None:
            if clear:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._doorbell)
            ctr[_SLEEPING] = 1
            (_full_fence or _load_fence())()  # the head/sleeping stores before the tail load (Dekker)
        self._tail_cache = ctr[_TAIL]
        if self._tail_cache == self._head:
            return True
        ctr[_SLEEPING] = 0
        return False

    def disarm_doorbell(self) -> None:
        """Consumer, on waking (or when it starts busy-polling): the producer stops ringing."""
        self._ctr[_SLEEPING] = 0

    # state ----------------------------------------------------------------------------------

    def resync(self) -> None:
        """Take both counters from the shared header again. A process forked from the ring's
        creator *after* an earlier holder of its role ran (a restarted reactor) would otherwise
        resume from the creator's stale local copy: a consumer re-reading messages long consumed,
        a producer overwriting unread ones."""
        ctr = self._ctr
        self._head = self._head_cache = ctr[_HEAD]
        self._tail = self._tail_cache = ctr[_TAIL]
        self._nget = ctr[_NGET]
        self._nput = ctr[_NPUT]


    def __len__(self) -> int:
        """Messages in the ring (exact from either side when the other is quiet, else a snapshot)."""
        ctr = self._ctr
        return max(0, ctr[_NPUT] - ctr[_NGET])

    @property
    def empty(self) -> bool:
        ctr = self._ctr
        return ctr[_TAIL] == ctr[_HEAD]

    @property
    def nbytes(self) -> int:
        """Bytes of the data area in use (records, their prefixes and padding)."""
        ctr = self._ctr
        return ctr[_TAIL] - ctr[_HEAD]

    @property
    def closed(self) -> bool:
        return self._shm is None

    def __repr__(self) -> str:
        if self._shm is None:
            return f"<SpscRing {self.name!r} closed>"
        return f"<SpscRing {self.name!r} capacity={self.capacity} messages={len(self)} bytes={self.nbytes}>"

    # clean-up -------------------------------------------------------------------------------

    def _release_views(self) -> None:
        for attr in ("_u32", "_data", "_ctr"):
            view = getattr(self, attr, None)
            if view is not None:
                view.release()
        self._buf = None

    def close(self) -> None:
        """Unmap the segment and close the doorbell (idempotent). The segment stays until unlinked."""
        if self._shm is None:
            return
        self._release_views()
        self._u32 = self._data = self._ctr = None
        self._shm.close()
        self._shm = None
        if self._doorbell is not None:
            if self._doorbell_owned:
                os.close(self._doorbell)
            self._doorbell = None

    def unlink(self) -> None:
        """Remove the segment's name (mappings stay valid until closed). Idempotent."""
        if self._owner:
            self._owner = False
            with contextlib.suppress(FileNotFoundError):
                if self._shm is not None:
                    self._shm.unlink()  # also unregisters from this process's resource tracker
                else:
                    SpscRing.unlink_name(self.name)
        else:
            SpscRing.unlink_name(self.name)

    def __enter__(self) -> SpscRing:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close; the creating process (not a forked child that inherited the object) also unlinks."""
        if self._owner and os.getpid() == self._creator_pid:
            self.unlink()
        self.close()
