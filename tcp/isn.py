"""Initial sequence numbers per RFC 6528 (RFC 9293 §3.4.1), and per-host timestamp offsets.

RFC 6528 §3 generates the ISN as ``ISN = M + F(localip, localport, remoteip, remoteport,
secretkey)``, where M is a clock ticking every 4 µs and F a keyed pseudorandom function. Why both
halves:

- **M** keeps successive ISNs of one 4-tuple increasing at about the rate data could be sent, so
  a new incarnation of a connection starts beyond the sequence numbers of the last one and old
  duplicates still in the network fall outside its window (RFC 9293 §3.4.1, the "quiet time"
  reasoning; 2**32 / 250,000 per second wraps in ~4.77 hours, far beyond the MSL).
- **F** gives every 4-tuple its own secret offset, so an off-path attacker who opens a
  connection of its own learns nothing about the ISN of someone else's 4-tuple and cannot
  guess it to spoof or inject segments (RFC 6528 §1-§3, the attack of Morris 1985 and
  Bellovin 1989). F must not be computable from outside (RFC 6528 §3): here it is SipHash-2-4
  (Aumasson & Bernstein 2012, a keyed pseudorandom function made for short inputs), truncated
  to 32 bits, as Linux's ``secure_tcp_seq`` does (with a clock in 64 ns units). Its key is
  derived from the secret with BLAKE2s once; the secret is passed in (the stack draws it once
  from the OS at start-up, RFC 6528 §3 "secretkey"), so this module stays sans-I/O and tests
  are deterministic.

The clock M is derived from the ``now`` argument (seconds, float): ``int(now * 250000)``.

Cost, paid once per connection, never per segment: the compiled build computes the hash in C
(one 12-byte message, a few hundred instructions); a keyed BLAKE2s through ``hashlib`` measured
~7,000 instructions per ISN (callgrind), most of it the hash itself.
"""

from __future__ import annotations

import hashlib

__all__ = ["CLOCK_HZ", "IsnGenerator", "derive_key", "siphash24"]

CLOCK_HZ = 250_000
"""RFC 6528 §3: M is "a timer that is incremented every 4 microseconds"."""

MASK = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
_SIP_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)
"""SipHash's initial state, "somepseudorandomlygeneratedbytes", XORed with the key."""
_LEN_12 = 12 << 56  # the length byte of a 12-byte message (the ISN's 4-tuple)
_LEN_8 = 8 << 56  # ... of an 8-byte one (the timestamp offset's address pair)


def derive_key(secret: bytes) -> bytes:
    """``secret`` as a BLAKE2s key: as is up to 32 bytes, hashed down when longer.

    An empty secret is a ValueError. Nothing checks the secret's quality: give 16 or more
    random bytes (RFC 6528 §3 asks for a key that is not guessable; RFC 4086 for how to get one).
    """
    if not secret:
        raise ValueError("the secret must not be empty")
    if len(secret) > hashlib.blake2s.MAX_KEY_SIZE:
        return hashlib.blake2s(secret).digest()
    return bytes(secret)


def siphash24(v0: int, v1: int, v2: int, v3: int, m0: int, m1: int) -> int:
    """SipHash-2-4 (the reference's ``siphash``) of a message of 8 to 15 bytes, as 64-bit
    little-endian words: ``m0`` its first 8 bytes, ``m1`` the last block (the remaining bytes,
    and the message length in the top byte). ``v0..v3`` is the keyed initial state (the key's
    words k0, k1 XORed into :data:`_SIP_INIT`: k0, k1, k0, k1)."""
    for block in range(3):
        if block < 2:  # compression: each message word, with c = 2 rounds
            m = m0 if block == 0 else m1
            v3 ^= m
            rounds = 2
        else:  # finalization: d = 4 rounds
            m = 0
            v2 ^= 0xFF
            rounds = 4
        for _r in range(rounds):  # SipRound (the rotations spelled out: calls cost the pure build 3x)
            v0 = (v0 + v1) & M64
            v1 = (((v1 << 13) & M64) | (v1 >> 51)) ^ v0
            v0 = ((v0 << 32) & M64) | (v0 >> 32)
            v2 = (v2 + v3) & M64
            v3 = (((v3 << 16) & M64) | (v3 >> 48)) ^ v2
            v0 = (v0 + v3) & M64
            v3 = (((v3 << 21) & M64) | (v3 >> 43)) ^ v0
            v2 = (v2 + v1) & M64
            v1 = (((v1 << 17) & M64) | (v1 >> 47)) ^ v2
            v2 = ((v2 << 32) & M64) | (v2 >> 32)
        v0 ^= m
    return v0 ^ v1 ^ v2 ^ v3


class IsnGenerator:
    """ISNs for active and passive opens (RFC 6528 §3) and timestamp offsets, from one secret."""

    __slots__ = ("_isn_v0", "_isn_v1", "_isn_v2", "_isn_v3", "_ts_v0", "_ts_v1", "_ts_v2", "_ts_v3")

    def __init__(self, secret: bytes) -> None:
        key = derive_key(secret)
        # Two SipHash keys drawn from the secret; ``person`` separates the two uses.
        isn_key = hashlib.blake2s(key=key, digest_size=16, person=b"tcp-isn").digest()
        ts_key = hashlib.blake2s(key=key, digest_size=16, person=b"tcp-tsof").digest()
        self._isn_v0, self._isn_v1, self._isn_v2, self._isn_v3 = _sip_state(isn_key)
        self._ts_v0, self._ts_v1, self._ts_v2, self._ts_v3 = _sip_state(ts_key)

    def isn(self, now: float, laddr: int, lport: int, raddr: int, rport: int) -> int:
        """The ISN for this 4-tuple at time ``now`` (seconds): ``(M + F(4-tuple, secret)) mod 2**32``."""
        # The 12 bytes laddr, raddr, lport, rport (little-endian words; length 12 in the top byte)
        ticks = int(now * CLOCK_HZ)
        f = siphash24(
            self._isn_v0, self._isn_v1, self._isn_v2, self._isn_v3,
            laddr | (raddr << 32), lport | (rport << 16) | _LEN_12,
        )
        return (ticks + f) & MASK

    def ts_offset(self, laddr: int, raddr: int) -> int:
        """A secret offset to add to the timestamp clock for peers at ``raddr`` (RFC 7323).

        The TSval clock then reveals neither the host's uptime nor a clock shared across peers
        (RFC 7323's security considerations). It is keyed by the address pair, not the
        4-tuple, as Linux's ``secure_tcp_ts_off`` is: all connections to one host then see one
        monotonic clock, which PAWS (RFC 7323 §5) needs when a new connection reuses a 4-tuple
        in TIME-WAIT.
        """
        # The 8 bytes laddr, raddr; the last block holds only the length
        return siphash24(self._ts_v0, self._ts_v1, self._ts_v2, self._ts_v3, laddr | (raddr << 32), _LEN_8) & MASK


def _sip_state(key: bytes) -> tuple[int, int, int, int]:
    """SipHash's initial state for a 16-byte key."""
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    return k0 ^ _SIP_INIT[0], k1 ^ _SIP_INIT[1], k0 ^ _SIP_INIT[2], k1 ^ _SIP_INIT[3]
