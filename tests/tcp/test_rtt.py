"""RFC 6298 RTO computation: first and later samples, the RTO formula and its bounds, exponential
backoff and its cap, Karn's reset, and invariants over arbitrary sample streams."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiostack.tcp.rtt import RttEstimator


def test_before_any_sample_rto_is_initial() -> None:
    est = RttEstimator()
    assert est.srtt is None and est.rttvar is None and est.min_rtt is None
    assert est.rto == 1.0  # RFC 6298 §2.1
    assert RttEstimator(initial_rto=3.0).rto == 3.0


def test_first_sample() -> None:
    est = RttEstimator()
    est.sample(0.1)
    assert est.srtt == pytest.approx(0.1)  # RFC 6298 §2.2
    assert est.rttvar == pytest.approx(0.05)
    assert est.rto == pytest.approx(0.1 + 4 * 0.05)  # 0.3, above min_rto
    assert est.min_rtt == pytest.approx(0.1)


def test_second_sample_uses_old_srtt_for_rttvar() -> None:
    est = RttEstimator(min_rto=0.0)
    est.sample(0.1)
    est.sample(0.3)
    # RFC 6298 §2.3: RTTVAR first, with the old SRTT.
    rttvar = 0.75 * 0.05 + 0.25 * abs(0.1 - 0.3)
    srtt = 0.875 * 0.1 + 0.125 * 0.3
    assert est.rttvar == pytest.approx(rttvar)
    assert est.srtt == pytest.approx(srtt)
    assert est.rto == pytest.approx(srtt + 4 * rttvar)
    assert est.min_rtt == pytest.approx(0.1)


def test_min_rto_floor() -> None:
    est = RttEstimator()
    est.sample(0.001)  # 1 ms LAN: SRTT + 4·RTTVAR = 3 ms
    assert est.rto == 0.2  # Linux's floor
    rfc = RttEstimator(min_rto=1.0)
    rfc.sample(0.001)
    assert rfc.rto == 1.0  # RFC 6298 §2.4's SHOULD


def test_clock_granularity_term_when_variance_vanishes() -> None:
    est = RttEstimator(min_rto=0.0, clock_granularity=0.01)
    for _ in range(200):
        est.sample(0.05)
    assert est.rttvar is not None and est.rttvar < 1e-6
    assert est.rto == pytest.approx(0.05 + 0.01)  # SRTT + max(G, 4·RTTVAR), RFC 6298 §2.3


def test_max_rto_cap() -> None:
    est = RttEstimator(max_rto=60.0)
    est.sample(100.0)
    assert est.rto == 60.0  # RFC 6298 §2.5


def test_backoff_doubles_and_caps() -> None:
    est = RttEstimator()
    est.sample(0.5)  # RTO = 0.5 + 4·0.25 = 1.5
    assert est.rto == pytest.approx(1.5)
    assert est.backoff() == pytest.approx(3.0)  # RFC 6298 §5.5
    assert est.backoff() == pytest.approx(6.0)
    assert est.backoffs == 2
    for _ in range(10):
        est.backoff()
    assert est.rto == 120.0
    assert est.backoffs == 12
    for _ in range(1000):  # no overflow however long the count runs
        est.backoff()
    assert est.rto == 120.0
    est.reset_backoff()
    assert est.backoffs == 0 and est.rto == pytest.approx(1.5)


def test_backoff_before_first_sample() -> None:
    est = RttEstimator()
    est.backoff()
    est.backoff()
    assert est.rto == pytest.approx(4.0)  # SYN retransmissions: 1, 2, 4 s ...


def test_valid_sample_ends_backoff() -> None:
    """Karn: the backed-off RTO stays until a valid sample; the sample recomputes RTO from SRTT."""
    est = RttEstimator()
    est.sample(0.1)
    est.backoff()
    est.backoff()
    assert est.rto == pytest.approx(1.2)
    est.sample(0.1)
    assert est.backoffs == 0
    assert est.rto == pytest.approx(est.srtt + 4 * est.rttvar)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RttEstimator().sample(-0.001)
    with pytest.raises(ValueError):
        RttEstimator(min_rto=2.0, max_rto=1.0)
    with pytest.raises(ValueError):
        RttEstimator(initial_rto=0.0)


def test_zero_rtt_sample_is_accepted() -> None:
    est = RttEstimator()
    est.sample(0.0)  # a coarse clock can measure 0
    assert est.srtt == 0.0 and est.rto == 0.2


def test_estimator_is_small() -> None:
    assert not hasattr(RttEstimator(), "__dict__")


samples = st.lists(st.floats(min_value=0.0, max_value=30.0, allow_nan=False), min_size=1, max_size=60)


@given(samples, st.integers(min_value=0, max_value=40))
def test_invariants(rtts: list[float], backoffs: int) -> None:
    est = RttEstimator()
    for r in rtts:
        est.sample(r)
        assert est.min_rto <= est.rto <= est.max_rto
        assert est.rttvar is not None and est.rttvar >= 0
    assert est.srtt is not None
    lo, hi = min(rtts), max(rtts)
    assert lo - 1e-9 <= est.srtt <= hi + 1e-9  # an EWMA stays within the samples
    assert est.min_rtt == lo
    previous = est.rto
    for _ in range(backoffs):
        rto = est.backoff()
        assert previous <= rto <= est.max_rto
        assert math.isclose(rto, min(est.max_rto, previous * 2))
        previous = rto
