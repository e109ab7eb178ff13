"""Seeded network impairment around any driver: loss, duplication, corruption, reordering, delay.

This stands in for ``tc qdisc ... netem`` (absent from this kernel) and, unlike netem, is exactly
reproducible: every decision comes from a ``random.Random`` seeded per direction, and time comes
from an injectable clock, so a test on a virtual clock replays the same impairment every run.

Each direction (``rx``: frames coming up from the device, ``tx``: frames going down to it) has
its own :class:`FaultProfile` and runs every frame through the same pipeline, in this order:

1. **loss** — the frame is freed (``<dir>_loss``);
2. **duplicate** — a copy is made in a buffer from the frame's pool and follows the original
   through the remaining stages independently (``<dir>_duplicate``; ``<dir>_duplicate_failed``
   when the pool is empty);
3. **corrupt** — one random bit of one random byte is flipped, headers included, so checksum
   verification upstream is exercised (``<dir>_corrupt``). As on a wire, after the sender's
   checksums and before the receiver's: a partial checksum the device was to finish is finished
   first, a received frame loses the device's "verified" mark; segmentation-offload frames to
   send (checksummed per segment, after the wrapper) are left intact (``tx_corrupt_skipped_gso``);
4. **delay/jitter** — the frame is held until ``now + delay + uniform(-jitter, jitter)``
   (``<dir>_delay``); with no jitter the order is kept, with jitter frames may overtake;
5. **reorder** — a frame leaving the delay stage is held back and released right after the next
   one (or, if none comes, ``reorder_hold`` seconds later): ``<dir>_reorder``.

Delay is counted from the moment the wrapper sees a frame: for ``rx``, when ``rx_burst`` takes it
from the inner driver; for ``tx``, when ``tx_burst`` is called. Held frames are released by later
``rx_burst``/``tx_burst`` calls on the same queue (held transmit frames also by ``rx_burst``, which
an idle reactor keeps calling); :meth:`FaultWrapper.next_deadline` tells the reactor when to poll
even if the device stays quiet.

Bookkeeping, per direction: ``<dir>_frames`` entered, ``<dir>_delivered`` left the wrapper, and
once nothing is held, ``delivered + loss == frames + duplicate``. Frames still held at
:meth:`~FaultWrapper.close` are freed and counted as ``<dir>_discarded``.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from heapq import heappop, heappush

from . import vnet
from .base import Driver, DriverWrapper
from .buffers import Packet

__all__ = ["FaultProfile", "FaultWrapper"]


@dataclass(frozen=True, slots=True)
class FaultProfile:
    """The impairment of one direction. Probabilities are per frame, in [0, 1]; times in seconds."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    reorder_hold: float = 0.001
    """How long a reordered frame waits for a successor before it is released anyway."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"FaultProfile.{f.name} must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"FaultProfile.{f.name} must not be negative, got {value!r}")
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            if getattr(self, name) > 1:
                raise ValueError(f"FaultProfile.{name} is a probability (0..1), got {getattr(self, name)!r}")

    @property
    def active(self) -> bool:
        """Whether this profile changes anything at all."""
        return bool(self.loss or self.duplicate or self.reorder or self.corrupt or self.delay or self.jitter)


class _Lane:
    """Frames held for one queue in one direction."""

    __slots__ = ("backlog", "held", "reorder_due", "reorder_pkt", "seq")

    def __init__(self) -> None:
        self.held: list[tuple[float, int, Packet]] = []  # heap of (due, arrival seq, frame)
        self.seq = 0
        self.reorder_pkt: Packet | None = None
        self.reorder_due = 0.0
        self.backlog: deque[Packet] = deque()  # rx only: released frames beyond max_count

    @property
    def idle(self) -> bool:
        return not self.held and self.reorder_pkt is None and not self.backlog


class _Direction:
    __slots__ = (
        "k_corrupt",
        "k_corrupt_skipped",
        "k_delay",
        "k_delivered",
        "k_discarded",
        "k_dup",
        "k_dup_failed",
        "k_frames",
        "k_loss",
        "k_reorder",
        "lanes",
        "profile",
        "rng",
    )

    def __init__(self, name: str, profile: FaultProfile, seed: int, num_queues: int) -> None:
        self.profile = profile
        # str seeds go through SHA-512: reproducible across runs, independent of PYTHONHASHSEED.
        self.rng = random.Random(f"aiostack.fault/{seed}/{name}")
        self.lanes = [_Lane() for _ in range(num_queues)]
        self.k_frames = f"{name}_frames"
        self.k_delivered = f"{name}_delivered"
        self.k_loss = f"{name}_loss"
        self.k_dup = f"{name}_duplicate"
        self.k_dup_failed = f"{name}_duplicate_failed"
        self.k_corrupt = f"{name}_corrupt"
        self.k_corrupt_skipped = f"{name}_corrupt_skipped_gso"
        self.k_delay = f"{name}_delay"
        self.k_reorder = f"{name}_reorder"
        self.k_discarded = f"{name}_discarded"


class FaultWrapper(DriverWrapper):
    """Impair the frames of ``inner`` per direction, reproducibly for a given ``seed``.

    ``clock`` is a monotonic clock in seconds (pass a virtual clock in tests); it is read once per
    burst. ``tx_burst`` returns the number of frames handed to the inner driver during that call,
    which under delay or loss differs from the number given.
    """

    def __init__(
        self,
        inner: Driver,
        rx: FaultProfile | None = None,
        tx: FaultProfile | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(inner)
        self.seed = seed
        self._clock = clock
        self._rx = _Direction("rx", rx if rx is not None else FaultProfile(), seed, inner.num_queues)
        self._tx = _Direction("tx", tx if tx is not None else FaultProfile(), seed, inner.num_queues)
        self.fault_counters: Counter[str] = Counter()
        self.closed = False

    @property
    def rx_profile(self) -> FaultProfile:
        return self._rx.profile

    @property
    def tx_profile(self) -> FaultProfile:
        return self._tx.profile

    def set_profile(self, rx: FaultProfile | None = None, tx: FaultProfile | None = None) -> None:
        """Change the impairment (e.g. heal a partition). Applies to frames arriving from now on;
        frames already held are released as scheduled."""
        if rx is not None:
            self._rx.profile = rx
        if tx is not None:
            self._tx.profile = tx

    # -- Driver -----------------------------------------------------------------------------
    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        d = self._rx
        lane = d.lanes[queue]
        tx_lane = self._tx.lanes[queue]
        if lane.idle and tx_lane.idle and not d.profile.active:  # nothing to do: pass through
            packets = self.inner.rx_burst(queue, max_count)
            if packets:
                fc = self.fault_counters
                fc[d.k_frames] += len(packets)
                fc[d.k_delivered] += len(packets)
            return packets
        now = self._clock()
        if not tx_lane.idle:
            self._release_tx(queue, tx_lane, now)
        backlog = lane.backlog
        want = max_count - len(backlog)
        fresh = self.inner.rx_burst(queue, want) if want > 0 else []
        released = self._process(d, lane, fresh, now)
        if backlog or len(released) > max_count:
            backlog.extend(released)
            popleft = backlog.popleft
            out = [popleft() for _ in range(min(max_count, len(backlog)))]
        else:
            out = released
        if out:
            self.fault_counters[d.k_delivered] += len(out)
        return out

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        d = self._tx
        lane = d.lanes[queue]
        if lane.idle and not d.profile.active:
            released = packets
            self.fault_counters[d.k_frames] += len(packets)
        else:
            released = self._process(d, lane, packets, self._clock())
        if not released:
            return 0
        self.fault_counters[d.k_delivered] += len(released)
        return self.inner.tx_burst(queue, released)

    def next_deadline(self) -> float | None:
        """The earliest time a held frame is due (now, if released frames await ``rx_burst``),
        or the inner driver's deadline if sooner; None when nothing is held."""
        best = self.inner.next_deadline()
        for d in (self._rx, self._tx):
            for lane in d.lanes:
                if lane.backlog:
                    t = self._clock()
                elif lane.held:
                    t = lane.held[0][0]
                    if lane.reorder_pkt is not None and lane.reorder_due < t:
                        t = lane.reorder_due
                elif lane.reorder_pkt is not None:
                    t = lane.reorder_due
                else:
                    continue
                if best is None or t < best:
                    best = t
        return best

    def pending(self) -> int:
        """Frames held by the wrapper (delayed, reordered or awaiting ``rx_burst``)."""
        return sum(
            len(lane.held) + (lane.reorder_pkt is not None) + len(lane.backlog)
            for d in (self._rx, self._tx)
            for lane in d.lanes
        )

    def close(self) -> None:
        """Free every held frame (counted as ``<dir>_discarded``), then close the inner driver."""
        if not self.closed:
            self.closed = True
            fc = self.fault_counters
            for d in (self._rx, self._tx):
                for lane in d.lanes:
                    doomed = [p for _, _, p in lane.held]
                    doomed.extend(lane.backlog)
                    if lane.reorder_pkt is not None:
                        doomed.append(lane.reorder_pkt)
                    lane.held.clear()
                    lane.backlog.clear()
                    lane.reorder_pkt = None
                    for pkt in doomed:
                        pkt.free()
                    if doomed:
                        fc[d.k_discarded] += len(doomed)
        self.inner.close()

    def stats(self) -> dict[str, object]:
        stats = self.inner.stats()
        stats["fault"] = dict(self.fault_counters)
        return stats

    # -- the pipeline -------------------------------------------------------------------------
    def _release_tx(self, queue: int, lane: _Lane, now: float) -> None:
        released = self._process(self._tx, lane, [], now)
        if released:
            self.fault_counters[self._tx.k_delivered] += len(released)
            self.inner.tx_burst(queue, released)

    def _corrupt(self, d: _Direction, p: Packet, rng: random.Random) -> bool:
        """Flip one bit as the wire would: after the sender's checksums, before the receiver's.
        A frame whose checksum the device was to finish gets it finished first (else the device
        would checksum the damage and the receiver accept it); a received frame loses the
        device's "checksum verified" mark (a coalesced one too: its partial checksum then fails
        verification, as the damaged segment would have). A segmentation-offload frame to send
        is left alone (its checksums are made per segment, after the wrapper): False, counted
        as skipped."""
        if p.gso_type and d is self._tx:
            return False
        if p.csum_start >= 0:
            vnet.complete_csum(p.buf, p.start, p.end, p.csum_start, p.csum_offset)
            p.csum_start = -1
            p.csum_offset = 0
        p.csum_valid = False
        p.buf[p.start + rng.randrange(p.end - p.start)] ^= 1 << rng.randrange(8)
        return True

    def _process(self, d: _Direction, lane: _Lane, packets: list[Packet], now: float) -> list[Packet]:
        """Impair ``packets`` and return, in order, every frame that leaves the wrapper now."""
        prof = d.profile
        rng = d.rng
        fc = self.fault_counters
        immediate: list[Packet] = []
        if packets:
            fc[d.k_frames] += len(packets)
            loss = prof.loss
            duplicate = prof.duplicate
            corrupt = prof.corrupt
            delaying = prof.delay > 0 or prof.jitter > 0
            for pkt in packets:
                if loss and rng.random() < loss:
                    fc[d.k_loss] += 1
                    pkt.free()
                    continue
                dup = None
                if duplicate and rng.random() < duplicate:
                    dup = self._copy(pkt)
                    fc[d.k_dup if dup is not None else d.k_dup_failed] += 1
                for p in (pkt, dup):
                    if p is None:
                        continue
                    if corrupt and p.end > p.start and rng.random() < corrupt:
                        if self._corrupt(d, p, rng):
                            fc[d.k_corrupt] += 1
                        else:
                            fc[d.k_corrupt_skipped] += 1
                    if delaying:
                        due = now + prof.delay
                        if prof.jitter:
                            due += rng.uniform(-prof.jitter, prof.jitter)
                        heappush(lane.held, (due, lane.seq, p))
                        lane.seq += 1
                        fc[d.k_delay] += 1
                    else:
                        immediate.append(p)
        held = lane.held
        if held and held[0][0] <= now:
            ready: list[Packet] = []
            while held and held[0][0] <= now:
                ready.append(heappop(held)[2])
            ready.extend(immediate)  # the held frames were sent earlier
        else:
            ready = immediate
        reorder = prof.reorder
        if not reorder and lane.reorder_pkt is None:
            return ready
        out: list[Packet] = []
        for p in ready:
            if lane.reorder_pkt is not None:
                out.append(p)
                out.append(lane.reorder_pkt)
                lane.reorder_pkt = None
            elif reorder and rng.random() < reorder:
                lane.reorder_pkt = p
                lane.reorder_due = now + prof.reorder_hold
                fc[d.k_reorder] += 1
            else:
                out.append(p)
        if lane.reorder_pkt is not None and lane.reorder_due <= now:
            out.append(lane.reorder_pkt)
            lane.reorder_pkt = None
        return out

    def _copy(self, pkt: Packet) -> Packet | None:
        """A duplicate of ``pkt`` in a buffer of the same pool (same layout and metadata)."""
        pool = pkt.pool if pkt.pool is not None else self.pool
        dup = pool.try_alloc()
        if dup is None:
            return None
        try:
            dup.set_data(pkt.data(), headroom=pkt.start if pkt.pool is pool else None)
        except ValueError:
            dup.free()
            return None
        dup.csum_valid = pkt.csum_valid
        dup.csum_start = pkt.csum_start
        dup.csum_offset = pkt.csum_offset
        dup.gso_type = pkt.gso_type
        dup.gso_size = pkt.gso_size
        dup.hdr_len = pkt.hdr_len
        dup.queue = pkt.queue
        dup.rss_hash = pkt.rss_hash
        return dup
