"""Pooled packet buffers with headroom (Snabb's ``packet``, DPDK's mbuf/mempool).

Every buffer is allocated once, when the pool is made. A packet's bytes live at
``buf[start:end]``; the space in front of ``start`` is headroom, so each layer on the transmit
path writes its header in place by moving ``start`` back (``prepend``) instead of building a new
bytes object. Drivers receive straight into a packet's buffer at the headroom offset.

Ownership is linear: whoever holds a packet last returns it with ``free()``. A driver's
``rx_burst`` hands its packets to the caller; ``tx_burst`` takes ownership of what it is given.
"""

from __future__ import annotations

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

DEFAULT_HEADROOM = 192
"""Room for virtio_net_hdr (12) + Ethernet (14) + IPv4 (≤ 60) + TCP (≤ 60), rounded up."""

DEFAULT_BUFFER_SIZE = 2048 + DEFAULT_HEADROOM


class PoolExhausted(Exception):
    """Raised by :meth:`PacketPool.alloc` when every buffer is in use."""


class Packet:
    """One frame in a pooled buffer.

    Offload metadata rides along with the bytes, in the device-neutral form of virtio_net_hdr:

    - ``csum_valid`` (receive): the device vouches for the L4 checksum (DATA_VALID or
      NEEDS_CSUM on receive), so the stack skips verifying it.
    - ``csum_start``/``csum_offset`` (transmit, ``csum_start >= 0``): the L4 checksum is partial
      (pseudo-header sum, not inverted) and the device must finish it, counting from
      ``csum_start`` bytes into the frame and storing at ``csum_start + csum_offset``.
    - ``gso_type``/``gso_size``/``hdr_len``: segmentation offload (virtio GSO constants).
    """

    __slots__ = (
        "buf",
        "csum_offset",
        "csum_start",
        "csum_valid",
        "end",
        "gso_size",
        "gso_type",
        "hdr_len",
        "in_use",
        "pool",
        "queue",
        "rss_hash",
        "start",
        "view",
    )

    def __init__(self, pool: PacketPool | None, size: int, headroom: int) -> None:
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.pool = pool
        self.start = headroom
        self.end = headroom
        self.in_use = False
        self.csum_valid = False
        self.csum_start = -1
        self.csum_offset = 0
        self.gso_type = 0
        self.gso_size = 0
        self.hdr_len = 0
        self.queue = 0
        self.rss_hash = 0

    # -- contents ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.end - self.start

    def data(self) -> memoryview:
        """The frame's bytes, without copying."""
        return self.view[self.start : self.end]

    def tobytes(self) -> bytes:
        return bytes(self.view[self.start : self.end])

    @property
    def headroom(self) -> int:
        return self.start

    @property
    def tailroom(self) -> int:
        return len(self.buf) - self.end

    def prepend(self, n: int) -> int:
        """Grow the packet by ``n`` bytes at the front; returns the new ``start`` offset."""
        start = self.start - n
        if start < 0:
            raise ValueError(f"headroom exhausted: need {n}, have {self.start}")
        self.start = start
        return start

    def trim_front(self, n: int) -> None:
        """Drop ``n`` bytes from the front (a header that has been consumed)."""
        if n > self.end - self.start:
            raise ValueError("trim beyond packet end")
        self.start += n

    def append(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        end = self.end + n
        if end > len(self.buf):
            raise ValueError(f"tailroom exhausted: need {n}, have {len(self.buf) - self.end}")
        self.buf[self.end : end] = data
        self.end = end

    def set_data(self, data: bytes | bytearray | memoryview, headroom: int | None = None) -> None:
        """Replace the contents with ``data``, placed after ``headroom`` bytes."""
        start = self.pool.headroom if headroom is None and self.pool is not None else (headroom or 0)
        end = start + len(data)
        if end > len(self.buf):
            raise ValueError(f"frame of {len(data)} bytes does not fit a {len(self.buf)}-byte buffer")
        self.buf[start:end] = data
        self.start = start
        self.end = end

    def copy_from(self, src: Packet) -> None:
        """Replace the contents with a copy of ``src``'s frame, placed after the pool's headroom
        (a wire carries bytes, not buffers: the memory link). ValueError if it does not fit."""
        n = src.end - src.start
        if n < 0 or src.start < 0 or src.end > len(src.buf):
            raise ValueError(f"bad packet bounds {src.start}:{src.end} of {len(src.buf)}")
        start = self.pool.headroom if self.pool is not None else 0
        end = start + n
        if end > len(self.buf):
            raise ValueError(f"frame of {n} bytes does not fit a {len(self.buf)}-byte buffer")
        if _COMPILED:
            _copy_bytes(self.buf, start, src.buf, src.start, n)  # noqa: F821 - C inline, buffers.pxd
        else:
            self.buf[start:end] = src.view[src.start : src.end]
        self.start = start
        self.end = end

    def reset(self, headroom: int) -> None:
        self.start = headroom
        self.end = headroom
        self.csum_valid = False
        self.csum_start = -1
        self.csum_offset = 0
        self.gso_type = 0
        self.gso_size = 0
        self.hdr_len = 0
        self.queue = 0
        self.rss_hash = 0

    def free(self) -> None:
        if self.pool is not None:
            self.pool.free(self)

    def __repr__(self) -> str:
        return f"<Packet {self.end - self.start} bytes at {self.start}>"


DEFAULT_POOL_BUFFERS = 4096
"""Buffers a default pool makes up front: what a reactor holds at idle (9.2 MB of 2,240-byte
buffers), enough for a burst of 64 frames on each of dozens of busy connections."""

DEFAULT_POOL_MAX = 65536
"""The most buffers a default pool grows to (147 MB of 2,240-byte buffers). Growth starts when
every buffer is in flight at once — packets built in one reactor iteration wait for the flush, so
10,000 connections each sending 16 KB in the same iteration need ~12,000 more than the 4,096 made
up front (tests/soak/soak_churn.py at 10,000 connections). Beyond the cap, an allocation fails
and the caller counts the drop (``tcp_tx_pool_exhausted`` ...), as before."""

DEFAULT_GROW_BY = 512
"""Buffers made at once when a growable pool runs dry (1.1 MB of 2,240-byte buffers): one growth
step per 512 allocations instead of one per allocation."""


class PacketPool:
    """Preallocated packets and a free list (LIFO, so hot buffers stay in cache).

    ``initial`` buffers are made up front; when every one of them is in use, the pool grows by
    ``grow_by`` at a time up to ``count`` (the cap: at most ``count`` buffers ever exist), on the
    allocation's slow path — the fast path (pop from the free list) is unchanged. ``grows``
    counts the growth steps and ``made`` the buffers that exist, so growth is visible in the
    stack's counters (``pool``). Buffers made by growth stay in the pool (the free list keeps
    them) until :meth:`trim` lets go of free ones beyond ``initial`` — called off the hot path,
    when the reactor's buffer memory has fallen well below its peak (``aiostack/malloc.py``).
    """

    __slots__ = ("_free", "_made", "allocs", "count", "failures", "grow_by", "grows", "headroom", "initial",
                 "size")

    def __init__(
        self,
        count: int = DEFAULT_POOL_MAX,
        size: int = DEFAULT_BUFFER_SIZE,
        headroom: int = DEFAULT_HEADROOM,
        *,
        lazy: bool = False,
        initial: int | None = None,
        grow_by: int = DEFAULT_GROW_BY,
    ) -> None:
        """At most ``count`` buffers of ``size`` bytes; ``initial`` of them made now (default:
        ``min(count, DEFAULT_POOL_BUFFERS)``, so an explicit ``count`` up to 4,096 is a fixed
        pool), the rest ``grow_by`` at a time when the pool runs dry.

        ``lazy``: none made now (``initial`` 0) and one at a time — for large buffers a process
        may never use, such as a TAP's 64 KB segmentation-offload pool (33 MB of RSS otherwise).
        Measured (issue 13, HTTP example on a TAP with TSO/GRO): a first 10 MB download adds 3.4
        MB of RSS and a 100 MB one 0.3 MB more, since the lazy pool only grows to the buffers in
        flight at once; the ~140 MB a process gains on its first fragmented (≥ 1473-byte)
        datagram was numba and LLVM loading for the first long software checksum
        (``ip/checksum.py``), not this pool."""
        if headroom >= size:
            raise ValueError("headroom must be smaller than the buffer size")
        if lazy:
            initial, grow_by = 0, 1
        elif initial is None:
            initial = min(count, DEFAULT_POOL_BUFFERS)
        if not 0 <= initial <= count:
            raise ValueError(f"initial buffers ({initial}) must be between 0 and count ({count})")
        if grow_by < 1:
            raise ValueError("grow_by must be at least 1")
        self.count = count
        self.size = size
        self.headroom = headroom
        self.initial = initial
        self.grow_by = grow_by
        self._made = initial
        self._free = [Packet(self, size, headroom) for _ in range(initial)]
        self.allocs = 0
        self.failures = 0
        self.grows = 0

    @property
    def available(self) -> int:
        """Buffers an allocation may still take: free ones and those the pool may still make."""
        return len(self._free) + self.count - self._made

    @property
    def made(self) -> int:
        """Buffers that exist now (each holds ``size`` bytes of memory)."""
        return self._made

    def _grow(self) -> bool:
        """The slow path of an allocation from an empty free list: make up to ``grow_by``
        buffers (never more than ``count`` in all); False at the cap."""
        n = min(self.grow_by, self.count - self._made)
        if n <= 0:
            return False
        self._made += n
        self.grows += 1
        free = self._free
        size = self.size
        headroom = self.headroom
        for _ in range(n):
            free.append(Packet(self, size, headroom))
        return True

    def trim(self) -> int:
        """Let go of free buffers beyond ``initial`` (the coldest first: the free list is LIFO,
        so its bottom holds the buffers used least recently); returns how many. Off the hot path:
        the caller decides when (``aiostack/malloc.py``)."""
        n = min(self._made - self.initial, len(self._free))
        if n <= 0:
            return 0
        del self._free[:n]
        self._made -= n
        return n

    @property
    def mtu_capacity(self) -> int:
        """The largest frame a buffer holds after the headroom (:meth:`frame_capacity`)."""
        return self.frame_capacity()

    def frame_capacity(self) -> int:
        """The largest frame a buffer holds after the headroom (a method: a C call from compiled
        code, where the property is a lookup by name)."""
        return self.size - self.headroom

    def alloc(self) -> Packet:
        try:
            pkt = self._free.pop()
        except IndexError:
            if self._grow():
                return self.alloc()
            self.failures += 1
            raise PoolExhausted(f"all {self.count} packet buffers are in use") from None
        pkt.in_use = True
        self.allocs += 1
        return pkt

    def try_alloc(self) -> Packet | None:
        """Like :meth:`alloc` but returns None when empty (the caller counts the drop)."""
        free = self._free
        if not free and not self._grow():
            self.failures += 1
            return None
        pkt = free.pop()
        pkt.in_use = True
        self.allocs += 1
        return pkt

    def free(self, pkt: Packet) -> None:
        if not pkt.in_use:
            raise RuntimeError("double free of a pooled packet")
        pkt.in_use = False
        pkt.reset(self.headroom)
        self._free.append(pkt)

    def packet_from(self, data: bytes | bytearray | memoryview) -> Packet:
        """A pooled packet holding a copy of ``data`` (tests and wrappers)."""
        pkt = self.alloc()
        try:
            pkt.set_data(data)
        except ValueError:
            pkt.free()
            raise
        return pkt
