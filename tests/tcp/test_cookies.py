"""SYN cookies (RFC 4987 §3.6, the Bernstein/Linux scheme) and their timestamp-option encoding."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.tcp.cookies import MSS_TABLE, PERIOD, TS_OPT_SACK, TS_OPT_WSCALE_MASK, SynCookies
from aiostack.tcp.seq import seq_le, seq_sub

MASK = 0xFFFFFFFF
TUPLE = (0x0A000001, 80, 0x0A000002, 40000)
PEER_ISN = 0x12345678
u32 = st.integers(0, MASK)
u16 = st.integers(0, 0xFFFF)


@pytest.fixture
def sc() -> SynCookies:
    return SynCookies(b"cookie-secret-0123456789abcdef")


def test_round_trip(sc: SynCookies) -> None:
    now = 1000.0
    cookie, mss = sc.make(now, *TUPLE, PEER_ISN, 1460)
    assert mss == 1460 and 0 <= cookie <= MASK
    assert sc.check(now, *TUPLE, PEER_ISN, cookie) == 1460
    assert sc.check(now + 30.0, *TUPLE, PEER_ISN, cookie) == 1460
    # Deterministic for one secret; another instance with the same secret agrees.
    assert SynCookies(b"cookie-secret-0123456789abcdef").check(now, *TUPLE, PEER_ISN, cookie) == 1460


@settings(max_examples=300)
@given(
    st.floats(0, 1e7, allow_nan=False),
    st.floats(0, PERIOD, exclude_max=True),
    u32,
    u16,
    u32,
    u16,
    u32,
    st.integers(0, 0xFFFF),
)
def test_round_trip_any_tuple_and_age(
    now: float, age: float, laddr: int, lport: int, raddr: int, rport: int, peer_isn: int, mss: int
) -> None:
    sc = SynCookies(b"k" * 32)
    cookie, encoded = sc.make(now, laddr, lport, raddr, rport, peer_isn, mss)
    assert encoded in MSS_TABLE
    assert sc.check(now + age, laddr, lport, raddr, rport, peer_isn, cookie) == encoded
    assert sc.check(now + PERIOD + age, laddr, lport, raddr, rport, peer_isn, cookie) in (encoded, None)
    assert sc.check(now + 2 * PERIOD + age, laddr, lport, raddr, rport, peer_isn, cookie) is None


def test_lifetime_is_current_and_previous_period(sc: SynCookies) -> None:
    made = 10 * PERIOD + 5.0  # 5 s into period 10
    cookie, _ = sc.make(made, *TUPLE, PEER_ISN, 1460)
    assert sc.check(11 * PERIOD + 63.9, *TUPLE, PEER_ISN, cookie) == 1460  # ~123 s old: still the previous period
    assert sc.check(12 * PERIOD, *TUPLE, PEER_ISN, cookie) is None  # two periods on
    assert sc.check(12 * PERIOD + 32 * PERIOD, *TUPLE, PEER_ISN, cookie) is None
    # The 5-bit counter wraps every 32 periods; a wrapped cookie is rejected by H2 (other counter).
    assert sc.check(made + 32 * PERIOD, *TUPLE, PEER_ISN, cookie) is None
    assert sc.check(made - PERIOD, *TUPLE, PEER_ISN, cookie) is None  # from the future
    assert sc.check(made, *TUPLE, PEER_ISN, cookie) == 1460


def test_wrong_tuple_isn_or_secret_rejected(sc: SynCookies) -> None:
    now = 500.0
    cookie, _ = sc.make(now, *TUPLE, PEER_ISN, 1440)
    laddr, lport, raddr, rport = TUPLE
    for bad in (
        (laddr + 1, lport, raddr, rport),
        (laddr, lport + 1, raddr, rport),
        (laddr, lport, raddr + 1, rport),
        (laddr, lport, raddr, rport + 1),
        (raddr, rport, laddr, lport),
    ):
        assert sc.check(now, *bad, PEER_ISN, cookie) is None, bad
    for isn in (PEER_ISN + 1, PEER_ISN - 1, PEER_ISN ^ 0x80000000, PEER_ISN + 4):
        assert sc.check(now, *TUPLE, isn & MASK, cookie) is None
    assert SynCookies(b"another-secret-0123456789abcdef").check(now, *TUPLE, PEER_ISN, cookie) is None
    assert sc.check(now, *TUPLE, PEER_ISN, cookie) == 1440


def test_bit_flips_above_the_mss_index_rejected(sc: SynCookies) -> None:
    now = 500.0
    cookie, _ = sc.make(now, *TUPLE, PEER_ISN, 1460)
    for bit in range(2, 32):
        assert sc.check(now, *TUPLE, PEER_ISN, cookie ^ (1 << bit)) is None, bit
    assert sc.check(now, *TUPLE, PEER_ISN, (cookie + 64) & MASK) is None


@pytest.mark.parametrize(
    ("mss", "expect"),
    [(0, 536), (100, 536), (535, 536), (536, 536), (1299, 536), (1300, 1300), (1439, 1300), (1440, 1440),
     (1459, 1440), (1460, 1460), (1500, 1460), (8960, 1460), (65535, 1460)],
)  # fmt: skip
def test_mss_rounds_down_to_table(sc: SynCookies, mss: int, expect: int) -> None:
    cookie, encoded = sc.make(77.0, *TUPLE, PEER_ISN, mss)
    assert encoded == expect
    assert sc.check(77.0, *TUPLE, PEER_ISN, cookie) == expect


def test_table() -> None:
    assert MSS_TABLE == (536, 1300, 1440, 1460)
    assert [SynCookies.mss_index(m) for m in MSS_TABLE] == [0, 1, 2, 3]


def test_random_cookies_are_not_accepted(sc: SynCookies) -> None:
    """Forgery by guessing: 2**-29 per attempt, so 0 of 20,000 (p of any success ≈ 4e-5)."""
    rng = random.Random(6528)
    now = 5000.0
    accepted = 0
    for _ in range(10_000):
        if sc.check(now, *TUPLE, PEER_ISN, rng.getrandbits(32)) is not None:
            accepted += 1
    # Blind guesses for random tuples and ISNs too.
    for _ in range(10_000):
        tup = (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(16))
        if sc.check(now, *tup, rng.getrandbits(32), rng.getrandbits(32)) is not None:
            accepted += 1
    assert accepted == 0


@settings(max_examples=500)
@given(u32, u32, st.floats(0, 1e7, allow_nan=False))
def test_forgery_attempts(peer_isn: int, guess: int, now: float) -> None:
    sc = SynCookies(b"k" * 32)
    valid, _ = sc.make(now, *TUPLE, peer_isn, 1460)
    # A guess accepted must be one of the 4 cookies differing only in the MSS index.
    if sc.check(now, *TUPLE, peer_isn, guess) is not None:
        assert (guess - valid) & MASK in (0, 1, 2, 3, MASK, MASK - 1, MASK - 2)


def test_secret_validation() -> None:
    with pytest.raises(ValueError):
        SynCookies(b"")
    long = SynCookies(b"s" * 100)
    cookie, mss = long.make(1.0, *TUPLE, PEER_ISN, 1300)
    assert long.check(1.0, *TUPLE, PEER_ISN, cookie) == mss == 1300


# --- timestamp option encoding --------------------------------------------------------------------


@pytest.mark.parametrize("wscale", [None, 0, 1, 7, 14])
@pytest.mark.parametrize("sack_ok", [False, True])
def test_ts_round_trip(wscale: int | None, sack_ok: bool) -> None:
    for now in (0, 1, 63, 64, 100_000, 123_456_789, MASK - 5, MASK):
        ts = SynCookies.encode_ts(now, wscale, sack_ok)
        assert SynCookies.decode_ts(ts) == (wscale, sack_ok)
        assert 0 <= ts <= MASK
        assert seq_le(ts, now) and 0 <= seq_sub(now, ts) <= 64  # never ahead of the clock


@given(u32, st.one_of(st.none(), st.integers(0, 14)), st.booleans())
def test_ts_never_ahead_and_round_trips(now: int, wscale: int | None, sack_ok: bool) -> None:
    ts = SynCookies.encode_ts(now, wscale, sack_ok)
    assert SynCookies.decode_ts(ts) == (wscale, sack_ok)
    assert 0 <= seq_sub(now, ts) <= 64
    assert ts >> 6 in ((now >> 6), ((now >> 6) - 1) & (MASK >> 6))


def test_ts_layout() -> None:
    # Low nibble: wscale (0xF for none), bit 4: SACK; the clock's bits above 6 are kept.
    assert SynCookies.encode_ts(0x1000, 7, True) == 0x1000 - 64 + (0x10 | 7)
    assert SynCookies.encode_ts(0x103F, 7, True) == 0x1000 | 0x17
    assert SynCookies.encode_ts(0x103F, None, False) == 0x1000 | TS_OPT_WSCALE_MASK
    assert SynCookies.encode_ts(5, None, False) == (0 - 64 + 15) & MASK  # wraps below zero
    assert SynCookies.decode_ts(0xABCDEF00 | TS_OPT_SACK | 3) == (3, True)
    assert SynCookies.decode_ts(0xFFFFFFEF) == (None, False)
    with pytest.raises(ValueError):
        SynCookies.encode_ts(1000, 15, False)
