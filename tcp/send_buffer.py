"""The send side's byte queue of one connection: what the application wrote and the peer has not
yet acknowledged, addressed by offset from SND.UNA (RFC 9293 §3.3.1, the "send sequence space").

One ``bytearray`` with a head offset: ``write`` appends (one copy), ``ack`` moves the head (no copy),
and the consumed prefix is compacted away only once it is larger than what remains, so the
amortised cost per byte is constant. ``copy_into`` copies a range straight into a packet buffer.

An empty queue holds no ``bytearray`` (the shared empty ``bytes`` stands in): one is made by the
first ``write`` and let go when everything is acknowledged or the queue is cleared, so an idle
connection's send side costs this object alone.
"""

from __future__ import annotations

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

DEFAULT_SNDBUF = 1 << 20
_EMPTY = b""


class SendBuffer:
    __slots__ = ("_buf", "_head", "capacity", "mem")

    def __init__(self, capacity: int = DEFAULT_SNDBUF, mem: object = None) -> None:
        self._buf: bytearray | bytes = _EMPTY
        self._head = 0
        self.capacity = capacity
        self.mem = mem
        """The reactor's :class:`~aiostack.tcp.memory.TcpMemory` (None: not accounted)."""

    def __len__(self) -> int:
        """Bytes queued: unacknowledged (in flight) and not yet sent."""
        return len(self._buf) - self._head

    def free_space(self) -> int:
        """Bytes :meth:`write` would take now: the buffer's free room, within the reactor's total
        (:class:`~aiostack.tcp.memory.TcpMemory`). The established path calls this; :attr:`space`
        is the same for readers (a method of a typed object is a C call in the compiled build)."""
        held = len(self._buf) - self._head
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
        held = len(self._buf) - self._head
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
        buf = self._buf
        if buf is _EMPTY:
            self._buf = buf = bytearray()
        if n == len(data):
            buf += data  # type: ignore[operator]
        else:
            buf += memoryview(data)[:n]  # type: ignore[operator]
        return n

    def ack(self, n: int) -> None:
        """Drop ``n`` acknowledged bytes from the front."""
        if n <= 0:
            return
        head = self._head + n
        buf = self._buf
        mem = self.mem
        if mem is not None:
            mem.snd_used -= min(head, len(buf)) - self._head
        if head >= len(buf):
            self._buf = _EMPTY  # all acknowledged: let the bytearray go
            self._head = 0
            return
        if head > len(buf) - head and head > 65536:
            del buf[:head]  # type: ignore[union-attr]
            head = 0
        self._head = head

    def copy_into(self, dest: bytearray, dest_off: int, offset: int, n: int) -> int:
        """Copy up to ``n`` bytes starting ``offset`` bytes past SND.UNA into ``dest``; returns the
        count copied (less than ``n`` at the end of the queue)."""
        start = self._head + offset
        end = min(start + n, len(self._buf))
        if end <= start:
            return 0
        count = end - start
        if _COMPILED:
            # one memcpy (ip/speedups.pxd); the slice below copies the bytes twice, which a
            # bulk sender feels (~4% of its CPU)
            copy_bytes(dest, dest_off, self._buf, start, count)  # noqa: F821 (cimported from speedups.pxd)
        else:
            # A slice of the bytearray is a copy, but a memoryview (to avoid it) costs more than
            # copying a segment's worth twice, and would pin the buffer's size while it lives.
            dest[dest_off : dest_off + count] = self._buf[start:end]
        return count

    def peek(self, offset: int, n: int) -> bytes:
        start = self._head + offset
        return bytes(self._buf[start : start + n])

    def clear(self) -> None:
        mem = self.mem
        if mem is not None:
            mem.snd_used -= len(self._buf) - self._head
        self._buf = _EMPTY
        self._head = 0
