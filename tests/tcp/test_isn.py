"""RFC 6528 initial sequence numbers: M (a 4 µs clock from `now`) + F (a keyed hash of the 4-tuple)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiostack.tcp.isn import CLOCK_HZ, IsnGenerator, derive_key

MASK = 0xFFFFFFFF
TUPLE = (0x0A000001, 80, 0x0A000002, 40000)
u32 = st.integers(0, MASK)
u16 = st.integers(0, 0xFFFF)


def test_deterministic_for_same_inputs() -> None:
    a, b = IsnGenerator(b"k" * 32), IsnGenerator(b"k" * 32)
    assert a.isn(12.5, *TUPLE) == a.isn(12.5, *TUPLE) == b.isn(12.5, *TUPLE)
    assert 0 <= a.isn(12.5, *TUPLE) <= MASK


@given(st.integers(0, 10**6), st.integers(0, 10**4))
def test_advances_at_250k_per_second(start: int, seconds: int) -> None:
    gen = IsnGenerator(b"secret-secret-secret")
    t0 = start / 4  # quarter seconds are exact in binary floating point
    first = gen.isn(t0, *TUPLE)
    later = gen.isn(t0 + seconds, *TUPLE)
    assert (later - first) & MASK == (seconds * CLOCK_HZ) & MASK
    # One tick every 4 µs (offsets clear of tick edges, so float rounding cannot matter).
    assert gen.isn(t0 + 3e-6, *TUPLE) == first
    assert (gen.isn(t0 + 5e-6, *TUPLE) - first) & MASK == 1
    assert CLOCK_HZ == 250_000


def test_wraps_modulo_2_32() -> None:
    gen = IsnGenerator(b"x" * 16)
    period = (1 << 32) / CLOCK_HZ  # ~4.77 hours
    assert gen.isn(0.0, *TUPLE) == gen.isn(period, *TUPLE)


def test_different_tuples_and_secrets_differ() -> None:
    gen = IsnGenerator(b"k" * 32)
    base = gen.isn(1.0, *TUPLE)
    laddr, lport, raddr, rport = TUPLE
    variants = [
        (laddr + 1, lport, raddr, rport),
        (laddr, lport + 1, raddr, rport),
        (laddr, lport, raddr + 1, rport),
        (laddr, lport, raddr, rport + 1),
        (raddr, rport, laddr, lport),  # the reverse direction is another tuple
        (laddr, rport, raddr, lport),  # ports swapped
    ]
    values = {gen.isn(1.0, *v) for v in variants}
    assert base not in values and len(values) == len(variants)
    assert IsnGenerator(b"j" * 32).isn(1.0, *TUPLE) != base


@given(u32, u16, u32, u16)
def test_f_spreads_over_32_bits(laddr: int, lport: int, raddr: int, rport: int) -> None:
    gen = IsnGenerator(b"k" * 32)
    assert 0 <= gen.isn(0.0, laddr, lport, raddr, rport) <= MASK


def test_offsets_look_uniform() -> None:
    # Consecutive source ports (what an attacker controls) give unrelated ISNs: the top byte of
    # F over 4096 ports hits most of its 256 values and never repeats a run.
    gen = IsnGenerator(b"k" * 32)
    values = [gen.isn(0.0, 0x0A000001, 80, 0x0A000002, p) for p in range(30000, 34096)]
    assert len(set(values)) == len(values)
    assert len({v >> 24 for v in values}) > 240
    diffs = {(b - a) & MASK for a, b in itertools.pairwise(values)}
    assert len(diffs) > 4000


def test_ts_offset() -> None:
    gen = IsnGenerator(b"k" * 32)
    off = gen.ts_offset(0x0A000001, 0x0A000002)
    assert off == gen.ts_offset(0x0A000001, 0x0A000002) and 0 <= off <= MASK
    assert off != gen.ts_offset(0x0A000001, 0x0A000003)
    assert off != IsnGenerator(b"j" * 32).ts_offset(0x0A000001, 0x0A000002)
    # Not the ISN's F: the two uses of the key are separated.
    assert off != gen.isn(0.0, 0x0A000001, 0, 0x0A000002, 0)


def test_secret_handling() -> None:
    with pytest.raises(ValueError):
        IsnGenerator(b"")
    assert derive_key(b"a" * 32) == b"a" * 32
    assert len(derive_key(b"a" * 100)) == 32
    long_a, long_b = IsnGenerator(b"a" * 64), IsnGenerator(b"a" * 63 + b"b")
    assert long_a.isn(0.0, *TUPLE) != long_b.isn(0.0, *TUPLE)  # every byte of a long secret counts


def test_siphash_matches_the_reference() -> None:
    # SipHash paper (Aumasson & Bernstein 2012), appendix A: key 00..0f, message 00..0e; the
    # reference's vectors.h lists the same output as the bytes e5 45 be 49 61 ca 29 a1.
    from aiostack.tcp.isn import _sip_state, siphash24

    v = _sip_state(bytes(range(16)))
    m0 = int.from_bytes(bytes(range(8)), "little")
    m1 = int.from_bytes(bytes(range(8, 15)) + bytes([15]), "little")
    assert siphash24(*v, m0, m1) == 0xA129CA6149BE45E5
