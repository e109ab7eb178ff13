"""The memory driver between processes: a point-to-point link whose ends live in different
processes (reactors forked by :mod:`aiostack.cores`, a client stack in a test), carrying Ethernet
frames on shared-memory rings — DPDK's ``memif``/ring PMD idea, on :class:`~aiostack.drivers.spsc.SpscRing`.

Shape. The link has two ends, 0 and 1, each with its own number of queues and its own MAC. Every
(transmit queue of one end, receive queue of the other) pair has its own ring, so every ring has
exactly one producer process and one consumer process — no locks, as the rings need. Each receive
queue has one eventfd doorbell that all rings into it share: an idle reactor sleeps on that one fd.

Software RSS. The *sending* end picks the receiving queue, by
:func:`~aiostack.drivers.steering.frame_hash` modulo the far end's queue count — the hash the TAP
and AF_PACKET steering programs compute and :meth:`IPStack.steer_to` inverts, so a reactor's
outgoing connections get their replies on its own queue, as over a TAP. Frames without a flow
(ARP, anything not IPv4) go to queue 0; the stack layer spreads what every core needs
(:mod:`aiostack.cores`). ``rx_burst`` records the ``queue`` on each packet, as the TAP driver does.

Lifetime. :meth:`SharedMemoryLink.create` makes every ring and eventfd in one process, before the
processes that use it fork; they inherit the mappings and fds. A process serving one queue takes
it with :meth:`SharedMemoryPort.take_queue` (which re-reads the rings' shared counters: a restarted
reactor resumes where the dead one stopped) and may :meth:`~SharedMemoryPort.close_others`. The
creator unlinks the segments (:meth:`SharedMemoryLink.close`); a crashed creator leaves them in
``/dev/shm`` under the link's name.

Drops, counted on the queue they concern: ``ring_full`` (the far queue's ring had no room: its
reactor is behind, or gone), ``frame_too_big`` (longer than the MTU + 14 on transmit; or than the
receiving pool's buffers), ``pool_exhausted``. Nothing is offloaded (:class:`Offloads` ()): the
stacks checksum in software, as on the in-process link (:mod:`aiostack.drivers.memory`).
"""

from __future__ import annotations

import contextlib
import itertools
import os

from .base import Driver, Offloads, QueueCounters
from .buffers import Packet, PacketPool
from .mac import random_mac
from .spsc import SpscRing
from .steering import frame_hash

__all__ = ["DEFAULT_RING_BYTES", "SharedMemoryLink", "SharedMemoryPort"]

ETH_HLEN = 14
DEFAULT_RING_BYTES = 1 << 21
"""Bytes of one ring (≈ 1,300 full-size frames): a receive queue's depth per sending queue."""

_names = itertools.count()


class SharedMemoryLink:
    """The rings, doorbells and MACs of one link; :meth:`end` gives a driver for either end."""

    def __init__(
        self,
        name: str,
        queues: tuple[int, int],
        macs: tuple[bytes, bytes],
        mtu: int,
        rings: dict[tuple[int, int, int], SpscRing],
        doorbells: tuple[list[int], list[int]],
    ) -> None:
        self.name = name
        self.queues = queues
        self.macs = macs
        self.mtu = mtu
        self.rings = rings
        """(sending end, its tx queue, the other end's rx queue) → ring."""
        self.doorbells = doorbells
        """doorbells[end][q]: the eventfd of ``end``'s receive queue q."""
        self._creator = os.getpid()
        self.closed = False

    @classmethod
    def create(
        cls,
        queues: tuple[int, int] = (1, 1),
        *,
        mtu: int = 1500,
        ring_bytes: int = DEFAULT_RING_BYTES,
        macs: tuple[bytes, bytes] | None = None,
        name: str | None = None,
    ) -> SharedMemoryLink:
        """A link whose end 0 has ``queues[0]`` queue pairs and end 1 ``queues[1]``."""
        if len(queues) != 2 or min(queues) < 1:
            raise ValueError(f"queues must be two counts of at least 1, not {queues!r}")
        if mtu < 68:  # RFC 791: every IPv4 link carries at least 68-byte datagrams
            raise ValueError("mtu must be at least 68")
        if macs is None:
            macs = (random_mac(), random_mac())
        if len(macs) != 2 or any(len(m) != 6 for m in macs):
            raise ValueError("macs must be two 6-byte addresses")
        if name is None:
            name = f"aiostack-link-{os.getpid()}-{next(_names)}"
        rings: dict[tuple[int, int, int], SpscRing] = {}
        doorbells: tuple[list[int], list[int]] = ([], [])
        try:
            for end in (0, 1):
                for _ in range(queues[end]):
                    doorbells[end].append(os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC))
            for end in (0, 1):
                other = 1 - end
                for txq in range(queues[end]):
                    for rxq in range(queues[other]):
                        ring = SpscRing.create(f"{name}-{end}.{txq}-{rxq}", ring_bytes, doorbell=doorbells[other][rxq])
                        rings[end, txq, rxq] = ring
                        if ring.max_message < mtu + ETH_HLEN:
                            raise ValueError(f"ring_bytes {ring_bytes} cannot hold a {mtu + ETH_HLEN}-byte frame")
        except BaseException:
            for ring in rings.values():
                ring.unlink()
                ring.close()
            for fd in doorbells[0] + doorbells[1]:
                os.close(fd)
            raise
        return cls(name, (queues[0], queues[1]), (bytes(macs[0]), bytes(macs[1])), mtu, rings, doorbells)

    def end(self, side: int, pool: PacketPool | None = None) -> SharedMemoryPort:
        """A driver for every queue of end ``side`` (0 or 1), in this process."""
        if side not in (0, 1):
            raise ValueError(f"a link has ends 0 and 1, not {side!r}")
        if self.closed:
            raise ValueError(f"link {self.name} is closed")
        return SharedMemoryPort(self, side, list(range(self.queues[side])), pool)

    def close(self) -> None:
        """Unmap every ring and close the doorbells in this process; the creating process also
        removes the segments' names. Idempotent. Drivers made from the link stop working."""
        if self.closed:
            return
        self.closed = True
        for ring in self.rings.values():
            if os.getpid() == self._creator:
                ring.unlink()
            ring.close()
        for fd in self.doorbells[0] + self.doorbells[1]:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> SharedMemoryLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SharedMemoryLink {self.name} queues={self.queues} mtu={self.mtu}>"


class SharedMemoryPort(Driver):
    """One end of a :class:`SharedMemoryLink` as a driver: the end's queues listed in ``owned``
    (all of them, or the one :meth:`take_queue` kept), numbered 0.. in this driver."""

    def __init__(self, link: SharedMemoryLink, side: int, owned: list[int], pool: PacketPool | None) -> None:
        self.link = link
        self.side = side
        self.owned = owned
        self.queue_index = owned[0] if len(owned) == 1 else None
        self.num_queues = len(owned)
        self.mac = link.macs[side]
        self.mtu = link.mtu
        self.name = f"{link.name}.{side}"
        self.pool = pool if pool is not None else PacketPool()
        self.offloads = Offloads()
        other = 1 - side
        self._peer_queues = link.queues[other]
        self._rx = [[link.rings[other, txq, q] for txq in range(link.queues[other])] for q in owned]
        self._tx = [[link.rings[side, q, rxq] for rxq in range(self._peer_queues)] for q in owned]
        self._efds = [link.doorbells[side][q] for q in owned]
        self._armed = [False] * len(owned)
        self._counters = [QueueCounters() for _ in owned]
        self._max_tx = link.mtu + ETH_HLEN
        self._max_rx = min(link.mtu + ETH_HLEN, self.pool.mtu_capacity)
        self._burst: list[Packet] = []
        self._rxq = 0
        self._closed = False

    # -- Driver -----------------------------------------------------------------------------
    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        rings = self._rx[queue]
        self._burst = out = []
        self._rxq = queue
        take = self._take
        for ring in rings:
            if len(out) >= max_count:
                break
            ring.consume(max_count - len(out), take)
        if out:
            if self._armed[queue]:  # awake: producers need not ring while we poll
                for ring in rings:
                    ring.disarm_doorbell()
                self._armed[queue] = False
            c = self._counters[queue]
            c.rx_packets += len(out)
            c.rx_bytes += sum([p.end - p.start for p in out])
        elif not self._armed[queue]:
            self._arm(queue)
        return out

    def _take(self, frame: memoryview) -> None:
        n = len(frame)
        q = self._rxq
        if n > self._max_rx:
            self._counters[q].drop("frame_too_big")
            return
        pkt = self.pool.try_alloc()
        if pkt is None:
            self._counters[q].drop("pool_exhausted")
            return
        pkt.set_data(frame)
        pkt.queue = self.owned[q]
        self._burst.append(pkt)

    def _arm(self, queue: int) -> None:
        """Going idle: clear the shared doorbell once, then arm every ring into this queue
        (drivers/spsc.py: clear, say sleeping, fence, re-check). If one got a frame meanwhile,
        ring our own bell so the reactor polls again instead of sleeping on it."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._efds[queue])
        self._armed[queue] = True
        for ring in self._rx[queue]:
            if not ring.arm_doorbell(clear=False):
                os.eventfd_write(self._efds[queue], 1)
                return

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        c = self._counters[queue]
        rings = self._tx[queue]
        nq = self._peer_queues
        max_tx = self._max_tx
        sent = nbytes = 0
        for pkt in packets:
            n = pkt.end - pkt.start
            if n > max_tx:
                c.drop("frame_too_big")
            else:
                frame = pkt.view[pkt.start : pkt.end]
                ring = rings[frame_hash(frame) % nq] if nq > 1 else rings[0]
                if ring.try_put(frame):
                    sent += 1
                    nbytes += n
                else:
                    c.drop("ring_full")
            pkt.free()
        c.tx_packets += sent
        c.tx_bytes += nbytes
        return sent

    def fileno(self, queue: int) -> int:
        if self._closed:
            raise ValueError(f"{self.name} is closed")
        return self._efds[queue]

    def counters(self, queue: int) -> QueueCounters:
        return self._counters[queue]

    # -- per-process queues -----------------------------------------------------------------
    def take_queue(self, queue: int, pool: PacketPool | None = None) -> SharedMemoryPort:
        """A driver owning only ``queue`` of this end, for the process serving it (forked after
        the link was made): same MAC and MTU, its own pool and counters; the rings' positions are
        re-read from shared memory (:meth:`SpscRing.resync`), so a restarted reactor neither
        replays frames its predecessor took nor overwrites frames it sent."""
        if queue not in self.owned:
            raise ValueError(f"queue {queue} is not one of {self.name}'s {self.owned}")
        d = SharedMemoryPort(self.link, self.side, [queue], pool)
        for ring in d._rx[0] + d._tx[0]:
            ring.resync()
        return d

    def close_others(self) -> None:
        """Unmap (in this process only) the rings and doorbells of the link this driver does not
        use; the creator's mappings and names are untouched."""
        mine = {id(r) for rings in self._rx + self._tx for r in rings}
        link = self.link
        for ring in link.rings.values():
            if id(ring) not in mine:
                ring.close()
        keep = set(self._efds) | {r.doorbell_fd for rings in self._tx for r in rings}  # ours, the peer's we ring
        for fds in link.doorbells:
            for i, fd in enumerate(fds):
                if fd >= 0 and fd not in keep:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                    fds[i] = -1  # this process's copy of the link must not close the number again

    def close(self) -> None:
        """Stop using the link (the link's owner closes the rings). Idempotent."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<SharedMemoryPort {self.name} queues={self.owned} mtu={self.mtu}>"
