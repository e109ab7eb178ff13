"""Per-reactor bounds on TCP buffer memory: Linux's ``tcp_mem``/``tcp_wmem``/``tcp_rmem`` for one
stack instance (one reactor), so that thousands of peers that never read, or that send only
out-of-order data, cannot grow the process without limit (issue #13).

Sans-I/O bookkeeping only: the send and receive buffers of every connection the
:class:`~aiostack.tcp.layer.TcpLayer` makes carry a reference to its one :class:`TcpMemory` and
charge each byte they take and release each byte they let go. The limits act where the bytes
enter:

- **send** (``sndbuf_total``): :meth:`SendBuffer.write` takes at most :meth:`TcpMemory.snd_room`
  bytes — what is left under the total, but never less than ``min_per_connection`` minus what the
  connection already holds (Linux's ``tcp_wmem[0]``: every connection can make progress). A
  writer that gets less than it offered sees backpressure: ``send()`` returns a short count, the
  asyncio transport keeps the rest under its high-water mark and pauses the protocol. Counted as
  ``snd_limited`` (writes cut short by the total).
- **receive** (``rcvbuf_total``): a connection's advertised window is clamped to what is left
  under the total (at least ``min_per_connection`` minus what it holds), so conforming senders
  slow down; data beyond an advertised window is already refused by RFC 9293's acceptability
  test. Counted as ``rcv_window_clamped``.
- **out of order** (``ooo_total``): a segment that would take the reactor's out-of-order bytes
  over the total is dropped (``tcp_ooo_mem_limit``, in the receive buffer's drops), the
  newcomer rather than data already SACKed (RFC 2018 §8: reneging stalls the sender).
- **new connections** (``hard_total``): while send plus receive bytes exceed it, SYNs to a
  listener and connect() are refused (``tcp_mem_refused`` in the layer's drops; connect() raises
  ENOBUFS), as Linux refuses to grow sockets above ``tcp_mem[2]``.

Bound: send bytes stay under ``sndbuf_total + connections · min_per_connection``; receive bytes
under ``rcvbuf_total`` plus the windows already advertised when the clamp began (a window is
never taken back, RFC 9293 §3.8.6.2.2), and out-of-order bytes under ``ooo_total``.
"""

from __future__ import annotations

from collections import Counter

from ..counts import Counts

__all__ = ["TcpMemory"]


class TcpMemory:
    """Byte totals and limits of one reactor's TCP buffers (see the module docstring)."""

    __slots__ = (
        "hard_total",
        "min_per_connection",
        "ooo_total",
        "ooo_used",
        "peak_used",
        "rcv_used",
        "rcvbuf_total",
        "snd_used",
        "sndbuf_total",
        "stats",
    )

    def __init__(
        self,
        *,
        sndbuf_total: int,
        rcvbuf_total: int,
        ooo_total: int,
        hard_total: int,
        min_per_connection: int,
    ) -> None:
        self.sndbuf_total = sndbuf_total
        self.rcvbuf_total = rcvbuf_total
        self.ooo_total = ooo_total
        self.hard_total = hard_total
        self.min_per_connection = min_per_connection
        self.snd_used = 0
        self.rcv_used = 0
        self.ooo_used = 0
        self.peak_used = 0
        """The most send + receive bytes held since :meth:`take_peak` last looked."""
        self.stats: Counter[str] = Counts()

    def note_used(self) -> None:
        """Called after the send or receive bytes grew: keeps :attr:`peak_used`, so a burst of
        pressure between two looks of :class:`~aiostack.malloc.MemoryReturn` still counts."""
        used = self.snd_used + self.rcv_used
        if used > self.peak_used:
            self.peak_used = used

    def take_peak(self) -> int:
        """:attr:`peak_used`, then start again from what is held now."""
        peak = self.peak_used
        self.peak_used = self.snd_used + self.rcv_used
        return peak

    @classmethod
    def from_config(cls, config: object) -> TcpMemory:
        """The limits of a :class:`~aiostack.tcp.config.TcpConfig`."""
        return cls(
            sndbuf_total=config.mem_sndbuf_total,  # type: ignore[attr-defined]
            rcvbuf_total=config.mem_rcvbuf_total,  # type: ignore[attr-defined]
            ooo_total=config.mem_ooo_total,  # type: ignore[attr-defined]
            hard_total=config.mem_hard_total,  # type: ignore[attr-defined]
            min_per_connection=config.mem_min_per_connection,  # type: ignore[attr-defined]
        )

    def snd_room(self, held: int) -> int:
        """Bytes a connection holding ``held`` send bytes may add now."""
        room = self.sndbuf_total - self.snd_used
        floor = self.min_per_connection - held
        return max(room, floor, 0)

    def rcv_window(self, window: int, held: int) -> int:
        """Clamp a connection's free receive space ``window`` (it holds ``held`` bytes) to what
        is left under the reactor's receive total."""
        room = self.rcvbuf_total - self.rcv_used
        if window <= room:
            return window
        room = max(room, self.min_per_connection - held, 0)
        if window <= room:
            return window
        self.stats["rcv_window_clamped"] += 1
        return room

    @property
    def over_hard_limit(self) -> bool:
        """Whether new connections are refused (send + receive bytes above ``hard_total``)."""
        return self.snd_used + self.rcv_used > self.hard_total

    def release(self, sndbuf: object, rcvbuf: object) -> None:
        """A connection is gone: give back what its buffers still hold and detach them (the
        application may still read what is left; that is no longer charged)."""
        if sndbuf is not None and getattr(sndbuf, "mem", None) is self:
            self.snd_used -= len(sndbuf)  # type: ignore[arg-type]
            sndbuf.mem = None  # type: ignore[attr-defined]
        if rcvbuf is not None and getattr(rcvbuf, "mem", None) is self:
            self.rcv_used -= rcvbuf.readable + rcvbuf.ooo_bytes  # type: ignore[attr-defined]
            self.ooo_used -= rcvbuf.ooo_bytes  # type: ignore[attr-defined]
            rcvbuf.mem = None  # type: ignore[attr-defined]

    def snapshot(self) -> dict[str, int]:
        """Totals and limits for the layer's counters."""
        return {
            "snd_bytes": self.snd_used,
            "rcv_bytes": self.rcv_used,
            "ooo_bytes": self.ooo_used,
            "sndbuf_total": self.sndbuf_total,
            "rcvbuf_total": self.rcvbuf_total,
            "ooo_total": self.ooo_total,
            "hard_total": self.hard_total,
            **self.stats,
        }
