"""The send side's byte queue of one connection: what the application wrote and the peer has not
yet acknowledged, addressed by offset from SND.UNA (RFC 9293 §3.3.1, the "send sequence space").

The bytes are kept as a list of chunks with a head offset into the first. What is taken of a
``bytes`` write (or of a view of a ``bytes`` object) of at least ``_BY_REFERENCE`` bytes, or of any
such write into an empty queue (a reply), is kept as it is or as a view of it (it cannot change: no
copy); anything else (smaller or mutable) is copied into an own ``bytearray`` tail, which later
small writes extend until it reaches ``_TAIL_MAX`` (so a stream of small writes costs a few chunks,
not one each, and no chunk grows without bound while it is being acknowledged from its front).
``ack`` moves the head and drops chunks it passes (no copy, no compaction); ``copy_into`` copies a
range straight into a packet buffer. A bulk sender's bytes are thus copied once on their way to the
device instead of three times (into one growing ``bytearray``, again when it was reallocated as it
grew, and again when its acknowledged front was compacted away).

An empty queue holds no list (the shared empty tuple stands in): one is made by the first ``write``
and let go when everything is acknowledged or the queue is cleared, so an idle connection's send
side costs this object alone.
"""

from __future__ import annotations

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

DEFAULT_SNDBUF = 1 << 20
_NONE: tuple[bytes, ...] = ()  # the chunks of an empty queue
_BY_REFERENCE = 4096
"""A ``bytes`` write this large is queued by reference; smaller ones are cheaper to copy into the
tail than to keep as chunks of their own."""
_TAIL_MAX = 65536
"""An own tail this large takes no more writes (a new one starts)."""


class SendBuffer:
    __slots__ = ("_chunks", "_head", "_held", "capacity", "mem")

    def __init__(self, capacity: int = DEFAULT_SNDBUF, mem: object = None) -> None:
        self._chunks: list[bytes | bytearray | memoryview] = _NONE  # type: ignore[assignment]
        self._head = 0  # bytes of the first chunk already acknowledged
        self._held = 0  # bytes queued: the chunks' total less _head
        self.capacity = capacity
        self.mem = mem
        """The reactor's :class:`~aiostack.tcp.memory.TcpMemory` (None: not accounted)."""

    def __len__(self) -> int:
        """Bytes queued: unacknowledged (in flight) and not yet sent."""
        return self._held

    def free_space(self) -> int:
        """Bytes :meth:`write` would take now: the buffer's free room, within the reactor's total
        (:class:`~aiostack.tcp.memory.TcpMemory`). The established path calls this; :attr:`space`
        is the same for readers (a method of a typed object is a C call in the compiled build)."""
        held = self._held
        space = self.capacity - held
        mem = self.mem
        if mem is not None:
            space = min(space, mem.snd_room(held))
        return max(0, space)

    @property
    def space(self) -> int:
        """:meth:`free_space`."""
        return self.free_space()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue as much of ``data`` as fits; returns how many bytes were taken."""
        held = self._held
        n = min(len(data), self.capacity - held)
        if n <= 0:
            return 0
        mem = self.mem
        if mem is not None:
            if n > mem.sndbuf_total - mem.snd_used:
                room = mem.snd_room(held)  # the reactor's send total (tcp/memory.py)
                if room < n:
                    n = room
                    mem.stats["snd_limited"] += 1
                    if n <= 0:
                        return 0
            mem.snd_used += n
            mem.note_used()
        chunks = self._chunks
        if chunks is _NONE:
            self._chunks = chunks = []
        kept = None
        if n >= _BY_REFERENCE or not chunks:
            if type(data) is bytes:
                kept = data if n == len(data) else memoryview(data)[:n]
            elif type(data) is memoryview and type(data.obj) is bytes and data.c_contiguous and data.itemsize == 1:
                kept = data[:n]  # a view of its own: the caller may release its view
        if kept is not None:
            chunks.append(kept)  # immutable bytes: kept as they are (a reply into an idle queue too)
        else:
            tail = chunks[-1] if chunks else None
            if type(tail) is bytearray and len(tail) < _TAIL_MAX:
                if n == len(data):
                    tail += data  # type: ignore[operator]
                else:
                    tail += memoryview(data)[:n]  # type: ignore[operator]
            elif n == len(data):
                chunks.append(bytearray(data))
            else:
                chunks.append(bytearray(memoryview(data)[:n]))
        self._held = held + n
        return n

    def ack(self, n: int) -> None:
        """Drop ``n`` acknowledged bytes from the front."""
        if n <= 0:
            return
        held = self._held
        if n > held:
            n = held
        mem = self.mem
        if mem is not None:
            mem.snd_used -= n
        if n == held:
            self._chunks = _NONE  # all acknowledged: let the chunks go
            self._head = 0
            self._held = 0
            return
        self._held = held - n
        i, head = self._chunk_at(self._head + n)
        if i:
            del self._chunks[:i]
        self._head = head

    def copy_into(self, dest: bytearray, dest_off: int, offset: int, n: int) -> int:
        """Copy up to ``n`` bytes starting ``offset`` bytes past SND.UNA into ``dest``; returns the
        count copied (less than ``n`` at the end of the queue)."""
        if offset < 0 or n <= 0 or offset >= self._held:
            return 0
        if n > self._held - offset:
            n = self._held - offset
        chunks = self._chunks
        i, pos = self._chunk_at(self._head + offset)
        count = 0
        while count < n:
            chunk = chunks[i]
            piece = min(len(chunk) - pos, n - count)
            if _COMPILED:
                # one memcpy per chunk piece (send_buffer.pxd); a slice would copy twice
                _copy_piece(dest, dest_off + count, chunk, pos, piece)  # noqa: F821 (send_buffer.pxd)
            else:
                # A slice is a copy, but a memoryview (to avoid it) costs more than copying a
                # segment's worth twice.
                dest[dest_off + count : dest_off + count + piece] = chunk[pos : pos + piece]
            count += piece
            pos = 0
            i += 1
        return count

    def _chunk_at(self, pos: int) -> tuple[int, int]:
        """(i, offset in chunks[i]) of the byte ``pos`` bytes from the start of chunks[0] (which
        the queue holds)."""
        chunks = self._chunks
        i = 0
        size = len(chunks[0])
        while pos >= size:
            pos -= size
            i += 1
            size = len(chunks[i])
        return i, pos

    def peek(self, offset: int, n: int) -> bytes:
        """A copy of up to ``n`` bytes starting ``offset`` bytes past SND.UNA."""
        if offset < 0 or n <= 0 or offset >= self._held:
            return b""
        out = bytearray(min(n, self._held - offset))
        self.copy_into(out, 0, offset, len(out))
        return bytes(out)

    def clear(self) -> None:
        mem = self.mem
        if mem is not None:
            mem.snd_used -= self._held
        self._chunks = _NONE
        self._head = 0
        self._held = 0
