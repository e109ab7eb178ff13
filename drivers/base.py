"""The poll-mode driver interface every device and wrapper implements.

A driver moves frames and nothing else: burst receive into pooled buffers, burst transmit, a
readiness fd per queue for idle waits, per-queue counters, and a statement of what the device
offloads. It knows its own device header (virtio_net_hdr, ring descriptors) and nothing of IP.

Frames cross this interface as Ethernet frames starting at ``Packet.start``; offload metadata
travels in the packet's fields (see :class:`~aiostack.drivers.buffers.Packet`).
"""

from __future__ import annotations

import errno
from collections import Counter
from dataclasses import dataclass

from ..counts import Counts
from .buffers import Packet

IFNAMSIZ = 16
"""Linux's interface-name buffer, terminating NUL included."""


def check_ifname(name: str) -> bytes:
    """``name`` encoded, if the kernel's dev_valid_name() would take it (1..15 bytes, not "." or
    "..", no '/', ':' or whitespace); ValueError otherwise."""
    encoded = name.encode()
    if (
        not encoded
        or len(encoded) >= IFNAMSIZ
        or name in (".", "..")
        or any(ch in "/:" or ch.isspace() for ch in name)
    ):
        raise ValueError(f"bad interface name {name!r} (1..{IFNAMSIZ - 1} bytes, no '/', ':' or spaces)")
    return encoded


def errno_reason(exc: OSError) -> str:
    """A drop reason for a failed syscall: its errno's name in lower case (``eagain``, ``eio``)."""
    return errno.errorcode.get(exc.errno or 0, f"errno{exc.errno}").lower()


@dataclass(frozen=True, slots=True)
class Offloads:
    """What the device does for the stack (negotiated, not merely supported)."""

    rx_csum: bool = False
    """Received frames may carry ``csum_valid``; the stack skips verifying those."""
    tx_csum: bool = False
    """The device completes L4 checksums of frames marked with ``csum_start``."""
    tso: bool = False
    """The device cuts TCP segments larger than the MTU (GSO on transmit)."""
    gro: bool = False
    """The device may deliver coalesced frames larger than the MTU."""
    ufo: bool = False
    """The device cuts UDP datagrams (USO)."""


class QueueCounters:
    """Counters of one device queue. ``drops`` counts by reason (a short snake_case string).

    A ``cdef class`` in the compiled build (``base.pxd``): the drivers' burst paths add to the
    counters as C fields."""

    __slots__ = ("drops", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets")

    def __init__(self) -> None:
        self.rx_packets = 0
        self.rx_bytes = 0
        self.tx_packets = 0
        self.tx_bytes = 0
        self.drops: Counter[str] = Counts()

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] += n

    def as_dict(self) -> dict[str, object]:
        return {
            "rx_packets": self.rx_packets,
            "rx_bytes": self.rx_bytes,
            "tx_packets": self.tx_packets,
            "tx_bytes": self.tx_bytes,
            "drops": dict(self.drops),
        }


class Driver:
    """A network device with one or more queues, driven by polling.

    Contract:

    - ``rx_burst(q, n)`` returns a list of up to ``n`` packets allocated from the driver's pool;
      the caller owns them and must ``free()`` each. It never blocks; an empty list means nothing
      is there. A full pool is a counted drop (``pool_exhausted``), not an exception.
    - ``tx_burst(q, pkts)`` takes ownership of every packet in the list ``pkts`` (sent or not) and
      frees them; it returns how many were handed to the device. What could not be sent is
      counted.
    - ``fileno(q)`` is an fd that polls readable when queue ``q`` may have frames; the reactor
      sleeps on it when idle.

    A plain base whose hooks raise ``NotImplementedError`` (not an ``abc.ABC``): in the compiled
    build it is a ``cdef class`` (``base.pxd``) with ``cpdef`` ``rx_burst``/``tx_burst``, so the
    reactor calls the compiled drivers' bursts (memory, TAP, AF_PACKET) as C calls, while
    drivers written in Python (the wrappers, AF_XDP) subclass it and override them as before.

    Attributes every driver has: ``name`` (str), ``pool`` (:class:`PacketPool`), ``mac`` (6
    bytes), ``mtu`` (int), ``num_queues`` (int), ``offloads`` (:class:`Offloads`) and
    ``large_pool`` (a :class:`PacketPool` for frames above the MTU — TSO writes, GRO reads — when
    the device offloads those, else None).
    """

    # Defaults for drivers that do not set them: class attributes without annotations (to Cython
    # an annotation here would declare a C field; the compiled drivers declare typed fields of
    # the same names in their .pxd).
    name = "driver"
    num_queues = 1
    offloads = Offloads()
    large_pool = None

    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        raise NotImplementedError

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        raise NotImplementedError

    def fileno(self, queue: int) -> int:
        raise NotImplementedError

    def counters(self, queue: int) -> QueueCounters:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device. Idempotent."""

    def next_deadline(self) -> float | None:
        """When a driver holds frames for later (the fault wrapper's delay), the monotonic time at
        which ``rx_burst``/``tx_burst`` should be polled again even if ``fileno`` stays quiet."""
        return None

    def stats(self) -> dict[str, object]:
        """Counters of every queue, for display."""
        return {f"queue{q}": self.counters(q).as_dict() for q in range(self.num_queues)}

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DriverWrapper(Driver):
    """A driver around another driver (pcap, fault): forwards everything it does not change."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name = f"{type(self).__name__.lower()}({inner.name})"
        self.pool = inner.pool
        self.mac = inner.mac
        self.mtu = inner.mtu
        self.num_queues = inner.num_queues
        self.offloads = inner.offloads
        self.large_pool = inner.large_pool

    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        return self.inner.rx_burst(queue, max_count)

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        return self.inner.tx_burst(queue, packets)

    def fileno(self, queue: int) -> int:
        return self.inner.fileno(queue)

    def counters(self, queue: int) -> QueueCounters:
        return self.inner.counters(queue)

    def close(self) -> None:
        self.inner.close()

    def next_deadline(self) -> float | None:
        return self.inner.next_deadline()
