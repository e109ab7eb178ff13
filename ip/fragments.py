"""IPv4 fragmentation and reassembly (RFC 791 §3.2, RFC 815), hardened against hostile fragments.

Reassembly state is keyed by (source, destination, protocol, identification), the tuple RFC 791
§3.2 names. Hardening, each drop counted in :attr:`Reassembler.drops` and never raised:

- **Overlaps poison the datagram** (RFC 5722 §4 for IPv6: "the entire datagram (and any
  constituent fragments, including those not yet received) MUST be silently discarded"; Linux
  drops overlapping IPv4 datagrams too since 4.19): overlapping fragments are the vehicle of the
  teardrop and "overlapping fragment" IDS evasion attacks, and no honest sender produces them. The
  datagram is dropped and the key keeps dropping fragments until the datagram's original timeout,
  so a late fragment cannot start a new, different reassembly. An *exact* duplicate (same offset
  and length) is what a duplicating network produces; it is ignored without harm (RFC 8200 §4.5
  allows exactly this exception).
- **Hole tracking.** RFC 815 keeps a list of holes so that overlapping fragments can be trimmed.
  Overlaps are refused here, so the held pieces never overlap and the hole list degenerates to a
  count: the datagram is complete exactly when its total length is known (the final fragment came)
  and the bytes held equal it. The pieces sit in a list sorted by offset; a new fragment is
  checked against its two neighbours found by bisection.
- **Bounded memory.** Memory is charged like Linux's ``skb->truesize``: payload bytes plus
  :data:`FRAGMENT_OVERHEAD` per fragment (the Python objects holding it, measured with
  tracemalloc), so a flood of 8-byte fragments cannot hold ten times the cap. When a new fragment
  would exceed ``max_bytes`` or open more than ``max_datagrams`` reassemblies, the **oldest**
  reassemblies are evicted (count ``frag_memory_cap`` per evicted datagram). Why evict rather than
  drop the newcomer: an honest datagram completes within about one round trip, so the oldest
  entries are the lost or hostile ones; refusing newcomers would let a flood of never-completing
  fragments lock out all reassembly for the whole 30 s timeout. Arrival order is kept anyway for
  the timeout, so eviction is O(1). A fragment that completes its datagram is assembled without
  being charged, so it never evicts anything.
- **Timeout** (RFC 791 §3.2, RFC 1122 §3.3.2: 60-120 s suggested; Linux uses 30 s): every datagram
  expires ``timeout`` seconds after its first fragment arrived. All share one timeout, so arrival
  order is expiry order and :meth:`Reassembler.expire` pops from the front: O(expired). A datagram
  whose fragment zero had arrived yields the quote for an ICMP Time Exceeded, code 1 (RFC 792: the
  internet header plus the first 64 bits of data; RFC 1122 §3.3.2: send it only if fragment zero
  is available).

Sans-I/O: time is passed in (``now``, seconds, monotonic).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, OrderedDict

from ..counts import Counts

__all__ = ["FRAGMENT_OVERHEAD", "MAX_PAYLOAD", "Reassembler", "fragment_ranges"]

MAX_PAYLOAD = 65535 - 20
"""The largest payload an IPv4 datagram can carry: total length is 16 bits, the header >= 20 bytes."""

FRAGMENT_OVERHEAD = 88
"""Bytes charged per held fragment on top of its payload: a ``bytes`` object header (33), an
``int`` offset (28), two list slots (16) plus list over-allocation; tracemalloc on CPython 3.11
measured 82-86 bytes per fragment beyond the payload."""

_Key = tuple[int, int, int, int]


class _Datagram:
    """One reassembly in progress (or, once ``poisoned``, a tombstone that drops its key)."""

    __slots__ = ("deadline", "memory", "pieces", "poisoned", "quote", "received", "starts", "total")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.starts: list[int] = []  # offsets of the held pieces, sorted, never overlapping
        self.pieces: list[bytes] = []  # the held pieces, in the same order
        self.received = 0  # payload bytes held
        self.memory = 0  # bytes charged (payload + per-fragment overhead)
        self.total: int | None = None  # datagram payload length, once the final fragment came
        self.quote: bytes | None = None  # fragment zero's header + 8 payload bytes
        self.poisoned = False


class Reassembler:
    """Reassembles IPv4 datagrams from fragments; see the module docstring for the policy.

    ``memory`` is the number of bytes charged for held fragments, ``len()`` the number of
    reassemblies in progress (poisoned keys not included), ``drops`` the per-reason drop counts.
    """

    __slots__ = (
        "_datagrams",
        "_pending",
        "_pending_deadline",
        "_poisoned",
        "drops",
        "max_bytes",
        "max_datagrams",
        "memory",
        "timeout",
    )

    def __init__(self, timeout: float = 30.0, max_bytes: int = 4 * 1024 * 1024, max_datagrams: int = 4096):
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if max_bytes <= 0 or max_datagrams <= 0:
            raise ValueError("max_bytes and max_datagrams must be positive")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.memory = 0
        self.drops: Counter[str] = Counts()
        # OrderedDict, not dict: popping the front of a plain dict repeatedly is O(n) per pop
        # (iteration skips the deleted entries left at the front until the next resize).
        self._datagrams: OrderedDict[_Key, _Datagram] = OrderedDict()
        self._poisoned = 0
        self._pending: list[bytes] = []  # quotes of datagrams found expired inside add()
        self._pending_deadline: float | None = None

    def __len__(self) -> int:
        return len(self._datagrams) - self._poisoned

    def add(
        self,
        src: int,
        dst: int,
        proto: int,
        ident: int,
        offset: int,
        more: bool,
        payload: bytes | bytearray | memoryview,
        now: float,
        header: bytes | bytearray | memoryview = b"",
    ) -> bytes | None:
        """Add one fragment; return the whole datagram's payload once complete, else None.

        ``offset`` is in bytes (the header's fragment offset times 8), ``more`` the MF flag,
        ``header`` the fragment's raw IP header (kept from fragment zero for the ICMP quote).
        What is kept is copied, so the caller may reuse its buffer.
        """
        length = len(payload)
        end = offset + length
        drops = self.drops
        if offset < 0 or offset & 7 or (more and (length == 0 or length & 7)):
            # RFC 791 §3.2: every fragment but the last carries a multiple of 8 octets.
            drops["frag_bad_length"] += 1
            return None
        key = (src, dst, proto, ident)
        datagrams = self._datagrams
        d = datagrams.get(key)
        if d is not None and d.deadline <= now:
            # Stale state nobody expired yet: never merge it with a fragment from a later datagram
            # reusing the ident. Expire it (and everything older) now; quotes wait for expire().
            self._expire_into(now, self._pending, pending=True)
            d = datagrams.get(key)
        if end > MAX_PAYLOAD:
            drops["frag_too_big"] += 1  # the "ping of death"
            if d is not None and not d.poisoned:
                self._discard(key, d)
            return None
        if d is not None and d.poisoned:
            drops["frag_overlap"] += 1
            return None

        index = 0
        if d is not None:
            total = d.total
            if total is not None:
                if end > total or (not more and end != total):
                    drops["frag_after_last"] += 1  # data past the end, or a second, different end
                    self._discard(key, d)
                    return None
            elif not more and d.starts and d.starts[-1] + len(d.pieces[-1]) > end:
                drops["frag_after_last"] += 1  # a final fragment ending before data already held
                self._discard(key, d)
                return None
            starts = d.starts
            index = bisect_right(starts, offset)
            if length == 0:  # an empty final fragment: only sets the total
                if total == end:
                    drops["frag_duplicate"] += 1
                    return None
            else:
                if index and starts[index - 1] == offset:
                    if len(d.pieces[index - 1]) == length:
                        drops["frag_duplicate"] += 1  # RFC 8200 §4.5: exact duplicates are harmless
                        return None
                    self._poison(key, d)
                    return None
                if (index and starts[index - 1] + len(d.pieces[index - 1]) > offset) or (
                    index < len(starts) and starts[index] < end
                ):
                    self._poison(key, d)
                    return None

        total_after = end if not more else (d.total if d is not None else None)
        if total_after is not None and total_after == (d.received if d is not None else 0) + length:
            # This fragment completes the datagram (or is a whole one): assemble at once, charging
            # nothing, so a finishing datagram never evicts another under the memory cap.
            if d is None:
                return bytes(payload)
            del datagrams[key]
            self.memory -= d.memory
            pieces: list[bytes | bytearray | memoryview] = list(d.pieces)
            pieces.insert(index, payload)
            return b"".join(pieces)

        cost = length + FRAGMENT_OVERHEAD if length else 0
        if cost > self.max_bytes:
            drops["frag_memory_cap"] += 1  # can never fit: drop the fragment itself
            return None
        if d is None:
            while len(datagrams) >= self.max_datagrams:
                self._evict_oldest()
            d = _Datagram(now + self.timeout)
            datagrams[key] = d
        while self.memory + cost > self.max_bytes:
            if next(iter(datagrams)) == key:
                # Only this datagram is left and it cannot grow within the cap: it cannot complete.
                drops["frag_memory_cap"] += 1
                self._discard(key, d)
                return None
            self._evict_oldest()

        if length:
            d.starts.insert(index, offset)
            d.pieces.insert(index, bytes(payload))
            d.received += length
            d.memory += cost
            self.memory += cost
            if offset == 0:
                d.quote = bytes(header) + bytes(payload[:8])
        if not more:
            d.total = end
        return None

    def expire(self, now: float) -> list[bytes]:
        """Drop reassemblies whose timeout has passed; count ``frag_timeout`` for each.

        Returns, for each expired datagram whose fragment zero had arrived, the bytes to quote in
        an ICMP Time Exceeded (code 1, "fragment reassembly time exceeded"): that fragment's IP
        header and the first 8 bytes of its payload. O(expired).
        """
        out = self._pending
        self._pending = []
        self._pending_deadline = None
        self._expire_into(now, out, pending=False)
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has work: the oldest reassembly's deadline (O(1)), or None."""
        pending = self._pending_deadline
        datagrams = self._datagrams
        if not datagrams:  # the common case, asked once per reactor iteration: no iterator made
            return pending
        for d in datagrams.values():  # the front entry only
            return d.deadline if pending is None else min(pending, d.deadline)
        return pending

    # -- internals -------------------------------------------------------------------------------

    def _expire_into(self, now: float, out: list[bytes], pending: bool) -> None:
        datagrams = self._datagrams
        while datagrams:
            d = datagrams[next(iter(datagrams))]
            if d.deadline > now:
                break
            datagrams.popitem(last=False)
            if d.poisoned:
                self._poisoned -= 1
                continue
            self.memory -= d.memory
            self.drops["frag_timeout"] += 1
            if d.quote is not None:
                out.append(d.quote)
                if pending and (self._pending_deadline is None or d.deadline < self._pending_deadline):
                    self._pending_deadline = d.deadline  # so the reactor collects the quote soon

    def _discard(self, key: _Key, d: _Datagram) -> None:
        del self._datagrams[key]
        self.memory -= d.memory

    def _poison(self, key: _Key, d: _Datagram) -> None:
        """Drop the datagram's data but keep the key until its original deadline (RFC 5722 §4)."""
        self.drops["frag_overlap"] += 1
        self.memory -= d.memory
        d.starts = []
        d.pieces = []
        d.memory = d.received = 0
        d.quote = None
        d.poisoned = True
        self._poisoned += 1

    def _evict_oldest(self) -> None:
        _, d = self._datagrams.popitem(last=False)
        if d.poisoned:
            self._poisoned -= 1  # a tombstone holds no data; evicting it drops nothing
        else:
            self.memory -= d.memory
            self.drops["frag_memory_cap"] += 1


def fragment_ranges(payload_len: int, mtu: int, header_len: int = 20) -> list[tuple[int, int, bool]]:
    """Cut a payload for sending: ``(offset, length, more_fragments)`` pieces, offsets in bytes.

    Every piece plus ``header_len`` fits in ``mtu``; every piece but the last is a multiple of 8
    bytes (RFC 791 §3.2: the offset field counts 8-octet units). A payload that fits is one piece
    with MF clear. All pieces assume the same header length (options that are not copied into
    later fragments would only make those smaller, so this is safe).
    """
    if not 20 <= header_len <= 60 or header_len & 3:
        raise ValueError(f"IPv4 header length must be 20..60 and a multiple of 4, not {header_len}")
    if payload_len < 0 or payload_len > 65535 - header_len:
        raise ValueError(f"payload of {payload_len} bytes does not fit an IPv4 datagram")
    if mtu < header_len + 8:
        raise ValueError(f"MTU {mtu} is too small for a {header_len}-byte header and 8 bytes of data")
    if payload_len + header_len <= mtu:
        return [(0, payload_len, False)]
    step = (mtu - header_len) & ~7
    pieces = []
    for offset in range(0, payload_len, step):
        length = min(step, payload_len - offset)
        pieces.append((offset, length, offset + length < payload_len))
    return pieces
