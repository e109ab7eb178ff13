"""In-process links between stacks: a point-to-point cable and a small learning switch.

Two (or more) stacks in one process exchange Ethernet frames through :class:`MemoryPort` objects, the
way the design's integration tests run: no kernel, no root, fully deterministic. A port behaves
like a multi-queue NIC:

- transmitting *copies* the frame into a buffer of the receiving port's own pool (a wire carries
  bytes, not buffers; the sender's packet is freed at once), so the two stacks never share a
  buffer and ownership stays linear;
- the receiving port picks the RX queue by software RSS — the Toeplitz hash of the flow
  (:func:`~aiostack.drivers.rss.flow_hash`) modulo its queue count — and records ``rss_hash`` and
  ``queue`` on the packet, as a NIC fills the mbuf's RSS fields;
- frames with no flow (ARP, anything not IPv4) land on queue 0. Spreading such traffic to the
  other reactors (ARP answers every core needs) is the stack layer's job, not the device's;
- every RX queue has an eventfd that polls readable while frames are waiting, so an idle reactor
  sleeps on ``fileno(q)`` (``loop.add_reader``/selectors) and wakes when a frame arrives.

Nothing is offloaded (``Offloads()``): the stack computes and verifies checksums in software.

Ports are not thread-safe: the whole topology is meant to be driven from one thread (one event
loop), as every test and example does.

In the compiled build the ports and media are ``cdef class``es (``memory.pxd``): a burst is C
calls from the reactor's ``rx_burst``/``tx_burst`` down to the receiving port's copy, with typed
fields, list RX queues and the frame copied with one ``memcpy``.
"""

from __future__ import annotations

import os
from typing import TypedDict, Unpack

from .base import Driver, Offloads, QueueCounters
from .buffers import Packet, PacketPool
from .mac import random_mac
from .rss import Toeplitz, default_toeplitz, flow_hash_in

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

__all__ = ["DEFAULT_RX_QUEUE_CAP", "MemoryLink", "MemoryPort", "MemorySwitch", "PortOptions"]

ETH_HLEN = 14
_eventfd_read = os.eventfd_read
_eventfd_write = os.eventfd_write
DEFAULT_RX_QUEUE_CAP = 4096
"""Frames an RX queue holds before it drops (a NIC's RX ring size)."""


class PortOptions(TypedDict, total=False):
    """Keyword arguments of :class:`MemoryPort` (for ``link.port(**kw)`` and ``switch.port(**kw)``)."""

    num_queues: int
    mac: bytes | None
    mtu: int
    pool: PacketPool | None
    name: str | None
    rx_queue_cap: int
    toeplitz: Toeplitz | None


class _Medium:
    """What a port is plugged into: something that carries a frame to other ports."""

    __slots__ = ()

    def _carry(self, sender: MemoryPort, pkt: Packet) -> bool:
        """Deliver the frame of ``pkt`` from ``sender`` (copied; ``pkt`` stays the sender's);
        False when there is nowhere it could go (no link)."""
        raise NotImplementedError

    def _detach(self, port: MemoryPort) -> None:
        raise NotImplementedError


class MemoryPort(Driver):
    """One in-process NIC with ``num_queues`` queue pairs.

    Drop reasons counted on the queue they concern: ``no_link`` (transmit while unplugged or the
    peer has gone), ``frame_too_big`` (longer than ``mtu`` + 14 bytes of Ethernet header, on either
    side; or larger than the receiving pool's buffers), ``rx_queue_full`` (the RX queue holds
    ``rx_queue_cap`` frames), ``pool_exhausted`` (no free buffer in the receiving pool).
    ``rx_packets``/``rx_bytes`` count frames handed to the stack by ``rx_burst``; ``tx_*`` count
    frames put on the wire (including ones the far side then drops, as with a real cable).
    """

    def __init__(
        self,
        *,
        num_queues: int = 1,
        mac: bytes | None = None,
        mtu: int = 1500,
        pool: PacketPool | None = None,
        name: str | None = None,
        rx_queue_cap: int = DEFAULT_RX_QUEUE_CAP,
        toeplitz: Toeplitz | None = None,
    ) -> None:
        if num_queues < 1:
            raise ValueError("num_queues must be at least 1")
        if mac is None:
            mac = random_mac()
        elif len(mac) != 6:
            raise ValueError("a MAC address is 6 bytes")
        if mtu < 68:  # RFC 791: every IPv4 link carries at least 68-byte datagrams
            raise ValueError("mtu must be at least 68")
        if rx_queue_cap < 1:
            raise ValueError("rx_queue_cap must be at least 1")
        self.num_queues = num_queues
        self.mac = bytes(mac)
        self.mtu = mtu
        self.pool = pool if pool is not None else PacketPool()
        self.name = name if name is not None else f"mem-{self.mac.hex(':')}"
        self.offloads = Offloads()
        self.rx_queue_cap = rx_queue_cap
        self.toeplitz = toeplitz if toeplitz is not None else default_toeplitz()
        self._max_tx = mtu + ETH_HLEN
        self._max_rx = min(mtu + ETH_HLEN, self.pool.mtu_capacity)
        self.large_pool = None
        # Lists, not deques: a burst that takes the whole queue takes the list itself.
        self._rxq: list[list[Packet]] = [[] for _ in range(num_queues)]
        self._counters = [QueueCounters() for _ in range(num_queues)]
        self._efds: list[int] = []
        try:
            for _ in range(num_queues):
                self._efds.append(os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC))
        except BaseException:
            for fd in self._efds:
                os.close(fd)
            raise
        # Whether queue q's eventfd holds a count: lets an empty poll skip the read() syscall.
        self._signaled = [False] * num_queues
        self._medium: MemoryLink | MemorySwitch | None = None
        self.closed = False

    # -- Driver -----------------------------------------------------------------------------
    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        rxq = self._rxq[queue]
        n = len(rxq)
        if n == 0:
            if self._signaled[queue]:
                self._unsignal(queue)
            return []
        if n <= max_count:
            out = rxq
            self._rxq[queue] = []
        elif max_count <= 0:
            return []
        else:
            n = max_count
            out = rxq[:n]
            del rxq[:n]
        c: QueueCounters = self._counters[queue]
        c.rx_packets += n
        nbytes = 0
        for pkt in out:
            nbytes += pkt.end - pkt.start
        c.rx_bytes += nbytes
        if not self._rxq[queue] and self._signaled[queue]:
            self._unsignal(queue)
        return out

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        c: QueueCounters = self._counters[queue]
        medium = self._medium
        max_tx = self._max_tx
        sent = 0
        nbytes = 0
        for pkt in packets:
            n = pkt.end - pkt.start
            if medium is None:
                c.drop("no_link")
            elif n > max_tx:
                c.drop("frame_too_big")
            elif medium._carry(self, pkt):
                sent += 1
                nbytes += n
            else:
                c.drop("no_link")
            pkt.free()
        c.tx_packets += sent
        c.tx_bytes += nbytes
        return sent

    def fileno(self, queue: int) -> int:
        if self.closed:
            raise ValueError(f"{self.name} is closed")
        return self._efds[queue]

    def counters(self, queue: int) -> QueueCounters:
        return self._counters[queue]

    def close(self) -> None:
        """Unplug, free every frame still queued, close the eventfds. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._medium is not None:
            self._medium._detach(self)
            self._medium = None
        for rxq in self._rxq:
            for pkt in rxq:
                pkt.free()
            rxq.clear()
        efds, self._efds = self._efds, []
        self._signaled = [False] * self.num_queues
        for fd in efds:
            os.close(fd)

    # -- wire side ----------------------------------------------------------------------------
    @property
    def link(self) -> MemoryLink | MemorySwitch | None:
        """What this port is plugged into, if anything."""
        return self._medium

    def pending(self, queue: int) -> int:
        """Frames waiting in RX queue ``queue``."""
        return len(self._rxq[queue])

    def _receive(self, src: Packet) -> None:
        """A frame arrives from the wire (``src``, another port's packet): steer it to a queue and
        copy it into our pool."""
        if self.closed:
            return
        n = src.end - src.start
        h = flow_hash_in(src.buf, src.start, src.end, self.toeplitz)
        q = 0 if h < 0 else h % self.num_queues
        c: QueueCounters = self._counters[q]
        if n > self._max_rx:
            c.drop("frame_too_big")
            return
        rxq = self._rxq[q]
        if len(rxq) >= self.rx_queue_cap:
            c.drop("rx_queue_full")
            return
        pkt = self.pool.try_alloc()
        if pkt is None:
            c.drop("pool_exhausted")
            return
        pkt.copy_from(src)
        pkt.rss_hash = 0 if h < 0 else h
        pkt.queue = q
        rxq.append(pkt)
        if not self._signaled[q]:
            if _COMPILED:
                _efd_post(self._efds[q])  # noqa: F821 - C inline, memory.pxd
            else:
                _eventfd_write(self._efds[q], 1)
            self._signaled[q] = True

    def _unsignal(self, queue: int) -> None:
        if _COMPILED:
            _efd_drain(self._efds[queue])  # noqa: F821 - C inline, memory.pxd
        else:
            # try/except, not contextlib.suppress: suppress is a Python-level context manager,
            # and this runs once per received burst (SIM105 prefers the slower spelling).
            try:  # noqa: SIM105
                _eventfd_read(self._efds[queue])
            except BlockingIOError:  # already drained
                pass
        self._signaled[queue] = False

    def _plug(self, medium: MemoryLink | MemorySwitch) -> None:
        if self.closed:
            raise ValueError(f"{self.name} is closed")
        if self._medium is not None:
            raise ValueError(f"{self.name} is already attached")
        self._medium = medium

    def __repr__(self) -> str:
        return f"<MemoryPort {self.name} queues={self.num_queues} mtu={self.mtu}>"


class MemoryLink(_Medium):
    """A point-to-point cable between two ports. The ends may differ (queue counts, MTU, pools).

    >>> a, b = MemoryLink.pair(num_queues=2)          # identical ends
    >>> link = MemoryLink()                            # or ends of different shapes
    >>> c = link.port(num_queues=1); d = link.port(num_queues=4)
    """

    __slots__ = ("_ends",)

    def __init__(self) -> None:
        self._ends: list[MemoryPort] = []

    @classmethod
    def pair(cls, **port_kwargs: Unpack[PortOptions]) -> tuple[MemoryPort, MemoryPort]:
        """Two new ports made with the same ``port_kwargs``, linked to each other. A ``mac`` or
        ``pool`` argument is not accepted here (the ends would share it); use :meth:`port`."""
        if "mac" in port_kwargs or "pool" in port_kwargs or "name" in port_kwargs:
            raise TypeError("pair() makes both ends alike; pass mac/pool/name to link.port() instead")
        link = cls()
        return link.port(**port_kwargs), link.port(**port_kwargs)

    def port(self, **port_kwargs: Unpack[PortOptions]) -> MemoryPort:
        """A new :class:`MemoryPort` (``MemoryPort(**port_kwargs)``) plugged into this link."""
        if len(self._ends) >= 2:
            raise ValueError("a point-to-point link has two ends")
        port = MemoryPort(**port_kwargs)
        self.attach(port)
        return port

    def attach(self, port: MemoryPort) -> None:
        """Plug an existing port into a free end."""
        if len(self._ends) >= 2:
            raise ValueError("a point-to-point link has two ends")
        port._plug(self)
        self._ends.append(port)

    @property
    def ends(self) -> tuple[MemoryPort, ...]:
        return tuple(self._ends)

    def _carry(self, sender: MemoryPort, pkt: Packet) -> bool:
        for port in self._ends:
            if port is not sender:
                port._receive(pkt)
                return True
        return False

    def _detach(self, port: MemoryPort) -> None:
        self._ends.remove(port)


class MemorySwitch(_Medium):
    """A learning Ethernet switch (IEEE 802.1D transparent bridging, without aging or STP).

    Every frame teaches it source MAC → port. A unicast frame to a learned MAC goes out that port
    only (and is filtered if that is the port it came in on); broadcast, multicast and unknown
    unicast flood to every other port. Counters: ``flooded``, ``forwarded``, ``learned``,
    ``filtered``, ``dropped`` (runt frames without a full Ethernet header).
    """

    __slots__ = ("_ports", "_table", "dropped", "filtered", "flooded", "forwarded", "learned")

    def __init__(self) -> None:
        self._ports: list[MemoryPort] = []
        self._table: dict[bytes, MemoryPort] = {}
        self.flooded = 0
        self.forwarded = 0
        self.learned = 0
        self.filtered = 0
        self.dropped = 0

    def port(self, **port_kwargs: Unpack[PortOptions]) -> MemoryPort:
        """A new :class:`MemoryPort` (``MemoryPort(**port_kwargs)``) plugged into the switch."""
        port = MemoryPort(**port_kwargs)
        self.attach(port)
        return port

    def attach(self, port: MemoryPort) -> None:
        port._plug(self)
        self._ports.append(port)

    @property
    def ports(self) -> tuple[MemoryPort, ...]:
        return tuple(self._ports)

    def lookup(self, mac: bytes) -> MemoryPort | None:
        """The port a MAC was learned on."""
        return self._table.get(bytes(mac))

    def stats(self) -> dict[str, int]:
        return {
            "ports": len(self._ports),
            "macs": len(self._table),
            "flooded": self.flooded,
            "forwarded": self.forwarded,
            "learned": self.learned,
            "filtered": self.filtered,
            "dropped": self.dropped,
        }

    def _carry(self, sender: MemoryPort, pkt: Packet) -> bool:
        start = pkt.start
        if pkt.end - start < ETH_HLEN:
            self.dropped += 1
            return True  # it did leave the port; the switch discards it
        table = self._table
        buf = pkt.buf
        src = bytes(buf[start + 6 : start + 12])
        if not src[0] & 1 and table.get(src) is not sender:  # never learn a group address
            table[src] = sender
            self.learned += 1
        if not buf[start] & 1:
            out = table.get(bytes(buf[start : start + 6]))
            if out is not None:
                if out is sender:
                    self.filtered += 1
                else:
                    self.forwarded += 1
                    out._receive(pkt)
                return True
        self.flooded += 1
        for port in self._ports:
            if port is not sender:
                port._receive(pkt)
        return True

    def _detach(self, port: MemoryPort) -> None:
        self._ports.remove(port)
        for mac in [m for m, p in self._table.items() if p is port]:
            del self._table[mac]
