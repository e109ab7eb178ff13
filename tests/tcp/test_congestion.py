"""Congestion control: the shared RFC 5681 rules (IW, ABC slow start, recovery, RTO, idle restart,
application-limited ACKs), NewReno's AIMD and CUBIC's curve (RFC 9438) checked against the RFC's
formulas in simulated runs on an explicit clock.

The simulation is ACK clocking in its simplest form: one "round" sends a window and receives ACKs
for all of it, spread evenly over one RTT. A "bottleneck" of fixed capacity turns any window above
it into one loss event, detected one round later; that is enough for the sawtooth."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.tcp.congestion import (
    ALGORITHMS,
    INFINITE_SSTHRESH,
    CongestionControl,
    Cubic,
    NewReno,
    create,
)
from aiostack.tcp.congestion.cubic import ALPHA_CUBIC, BETA_CUBIC, C

MSS = 1000
BOTH = [NewReno, Cubic]


# -- simulation helpers --------------------------------------------------------------------------


def deliver_round(
    cc: CongestionControl, now: float, rtt: float, *, ack_segments: int = 1, app_limited: bool = False
) -> float:
    """Send one window and ACK it in ``ack_segments``-segment ACKs evenly over ``rtt``; returns the
    time at the end of the round."""
    window = cc.cwnd
    per_ack = ack_segments * cc.mss
    count = max(1, -(-window // per_ack))
    acked = 0
    for i in range(count):
        chunk = min(per_ack, window - acked)
        acked += chunk
        cc.on_ack(chunk, now + rtt * (i + 1) / count, rtt, window - acked, app_limited=app_limited)
    return now + rtt


def run_rounds(cc: CongestionControl, now: float, rtt: float, rounds: int, **kw: object) -> tuple[float, list[int]]:
    """``rounds`` rounds; returns the end time and ``cwnd`` at the end of each round."""
    trace = []
    for _ in range(rounds):
        now = deliver_round(cc, now, rtt, **kw)  # type: ignore[arg-type]
        trace.append(cc.cwnd)
    return now, trace


def lose_at(cc: CongestionControl, segments: float, now: float = 0.0) -> None:
    """Put ``cc`` at ``segments`` of window, then a loss with a full flight and an immediate full ACK."""
    cc.cwnd = int(segments * cc.mss)
    cc.on_loss(now, cc.cwnd)
    cc.on_recovery_exit(now)


def sawtooth(cc: CongestionControl, *, capacity: int, rtt: float, rounds: int) -> list[tuple[str, float, int, int]]:
    """Rounds through a bottleneck holding ``capacity`` segments: a round that sends more loses a
    segment, which the next round detects (``on_loss``) and recovers from in one RTT. Returns
    ``(kind, time, window sent or lost at, cwnd after)`` per round."""
    now = 0.0
    trace: list[tuple[str, float, int, int]] = []
    overflow = False
    for _ in range(rounds):
        window = cc.cwnd
        if overflow:
            cc.on_loss(now, window)
            now += rtt
            cc.on_recovery_exit(now)
            trace.append(("loss", now, window, cc.cwnd))
            overflow = False
            continue
        overflow = window > capacity * cc.mss
        now = deliver_round(cc, now, rtt)
        trace.append(("round", now, window, cc.cwnd))
    return trace


def check_sawtooth(trace: list[tuple[str, float, int, int]], *, capacity: int, beta: float) -> list[int]:
    """Sawtooth properties common to AIMD flavours; returns the windows at which losses came."""
    losses = [(i, window, after) for i, (kind, _t, window, after) in enumerate(trace) if kind == "loss"]
    assert len(losses) >= 3, "the run must cycle"
    for i, window, after in losses:
        assert window > capacity * MSS  # only an overfull window loses
        assert after == pytest.approx(window * beta, abs=1)  # multiplicative decrease
        # between this loss and the next, the window only grows (additive/cubic increase)
        j = i + 1
        while j < len(trace) and trace[j][0] == "round":
            assert trace[j][3] >= trace[j][2]
            j += 1
    # once the slow-start overshoot has drained, the teeth repeat: a periodic steady state (period
    # one tooth for NewReno; CUBIC's fast convergence on a fixed bottleneck alternates two teeth)
    steady = [i for i, window, _ in losses if window <= (capacity + 2) * MSS]
    assert steady == [i for i, _, _ in losses[len(losses) - len(steady) :]], "no loss storm after settling"
    gaps = [b - a for a, b in pairwise(steady[1:])]  # the first tooth is a transient
    assert len(gaps) >= 4
    assert all(abs(g - h) <= 1 for g, h in zip(gaps, gaps[2:], strict=False))
    return [window for i, window, _ in losses if i in steady]


# -- shared behaviour ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", BOTH)
def test_initial_window_is_ten_segments(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    assert cc.cwnd == 10 * MSS  # RFC 6928
    assert cc.ssthresh == INFINITE_SSTHRESH and cc.in_slow_start and not cc.in_recovery
    assert cls(MSS, 0.0, initial_window=4).cwnd == 4 * MSS
    with pytest.raises(ValueError):
        cls(MSS, 0.0, initial_window=0)
    with pytest.raises(ValueError):
        cls(0, 0.0)


@pytest.mark.parametrize("cls", BOTH)
def test_per_connection_state_is_slotted(cls: type[CongestionControl]) -> None:
    assert not hasattr(cls(MSS, 0.0), "__dict__")


def test_registry() -> None:
    assert {"newreno": NewReno, "cubic": Cubic} == ALGORITHMS
    cc = create("cubic", MSS, 0.0, initial_window=2, fast_convergence=False)
    assert isinstance(cc, Cubic) and cc.cwnd == 2 * MSS and not cc.fast_convergence
    assert isinstance(create("newreno", MSS, 0.0), NewReno)
    with pytest.raises(ValueError, match=r"'bbr'.*cubic, newreno"):
        create("bbr", MSS, 0.0)


@pytest.mark.parametrize("cls", BOTH)
@pytest.mark.parametrize("ack_segments", [1, 2])
def test_slow_start_doubles_per_rtt(cls: type[CongestionControl], ack_segments: int) -> None:
    """Per-segment and delayed (2-segment) ACKs both double cwnd each RTT: ABC with L = 2."""
    cc = cls(MSS, 0.0)
    _, trace = run_rounds(cc, 0.0, 0.05, 6, ack_segments=ack_segments)
    assert trace == [10 * MSS * 2**n for n in range(1, 7)]


@pytest.mark.parametrize("cls", BOTH)
def test_abc_limits_stretch_acks(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    cc.on_ack(8 * MSS, 0.1, 0.1, 2 * MSS)  # one ACK for 8 segments
    assert cc.cwnd == 12 * MSS  # at most L·SMSS = 2·SMSS (RFC 3465 §2.2)


def test_slow_start_stops_at_ssthresh_and_hands_on_the_rest() -> None:
    cc = NewReno(MSS, 0.0)
    cc.ssthresh = 11 * MSS
    cc.on_ack(2 * MSS, 0.1, None, 0)  # 1 MSS of slow start reaches ssthresh, 1 MSS goes to CA
    assert cc.cwnd == 11 * MSS and not cc.in_slow_start
    for _ in range(10):  # 10 more segments: 11 MSS of CA credit in all = one cwnd → +1 MSS
        cc.on_ack(MSS, 0.1, None, 0)
    assert cc.cwnd == 12 * MSS


@pytest.mark.parametrize("cls", BOTH)
def test_app_limited_acks_do_not_grow_cwnd(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    _, trace = run_rounds(cc, 0.0, 0.05, 5, app_limited=True)
    assert trace == [10 * MSS] * 5  # slow start
    lose_at(cc, 40)
    before = cc.cwnd
    _, trace = run_rounds(cc, 1.0, 0.05, 20, app_limited=True)
    assert trace == [before] * 20  # congestion avoidance


@pytest.mark.parametrize("cls", BOTH)
def test_acks_during_recovery_do_not_grow_cwnd(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    cc.cwnd = 40 * MSS
    cc.on_loss(0.0, 40 * MSS)
    assert cc.in_recovery
    target = cc.ssthresh
    cc.cwnd = target + 3 * MSS  # the connection's RFC 5681 §3.2 inflation
    for i in range(10):
        cc.on_ack(MSS, 0.01 * i, 0.05, 30 * MSS)
    assert cc.cwnd == target + 3 * MSS
    cc.on_loss(0.1, 20 * MSS)  # a second loss in the same episode: no second reduction
    assert cc.ssthresh == target
    cc.on_recovery_exit(0.2)
    assert cc.cwnd == cc.ssthresh == target and not cc.in_recovery  # RFC 6582 §3.2 step 3 (2)
    cc.on_recovery_exit(0.3)  # outside recovery: nothing
    assert cc.cwnd == target


@pytest.mark.parametrize("cls", BOTH)
def test_recovery_exit_without_burst(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    cc.cwnd = 40 * MSS
    cc.on_loss(0.0, 40 * MSS)
    cc.on_recovery_exit(0.1, in_flight=5 * MSS)  # RFC 6582 §3.2 step 3 option (1)
    assert cc.cwnd == 6 * MSS
    assert cc.in_slow_start  # back up to ssthresh in slow start


def test_newreno_loss_halves() -> None:
    cc = NewReno(MSS, 0.0)
    cc.cwnd = 40 * MSS
    cc.on_loss(1.0, 40 * MSS)
    assert cc.ssthresh == cc.cwnd == 20 * MSS  # RFC 5681 eq. (4)
    cc.on_recovery_exit(1.1)
    cc.on_loss(2.0, 3 * MSS)  # FlightSize, not cwnd, and never below 2·SMSS
    assert cc.ssthresh == 2 * MSS


def test_cubic_loss_multiplies_by_beta() -> None:
    cc = Cubic(MSS, 0.0)
    cc.cwnd = 40 * MSS
    cc.on_loss(1.0, 40 * MSS)
    assert cc.ssthresh == cc.cwnd == 28 * MSS  # RFC 9438 §4.6
    assert cc.w_max == 40 and cc.cwnd_prior == 40


@pytest.mark.parametrize("cls", BOTH)
def test_rto_collapses_to_one_segment(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    cc.cwnd = 40 * MSS
    cc.on_rto(1.0, 40 * MSS)
    assert cc.cwnd == MSS  # loss window, RFC 5681 §3.1
    expected = 20 * MSS if cls is NewReno else 28 * MSS  # RFC 5681 eq. (4) / RFC 9438 §4.8
    assert cc.ssthresh == expected
    cc.on_rto(2.0, 40 * MSS)  # the same segment times out again: ssthresh held
    assert cc.ssthresh == expected and cc.cwnd == MSS
    _, trace = run_rounds(cc, 2.0, 0.05, 3)  # slow start from one segment
    assert trace == [2 * MSS, 4 * MSS, 8 * MSS]
    cc.on_rto(3.0, 8 * MSS)  # new data was acknowledged since: a new episode
    assert cc.ssthresh == (4 * MSS if cls is NewReno else int(8 * MSS * 0.7))


@pytest.mark.parametrize("cls", BOTH)
def test_rto_during_recovery_keeps_its_ssthresh(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    cc.cwnd = 40 * MSS
    cc.on_loss(0.0, 40 * MSS)
    ssthresh = cc.ssthresh
    cc.on_rto(1.0, 40 * MSS)
    assert cc.ssthresh == ssthresh and cc.cwnd == MSS and not cc.in_recovery


@pytest.mark.parametrize("cls", BOTH)
def test_idle_restart(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    cc.cwnd = 50 * MSS
    cc.on_ack(MSS, 10.0, 0.05, 0, app_limited=True)  # the ACK that empties the pipe
    cc.on_idle(10.5, 1.0)  # idle 0.5 s < RTO: nothing
    assert cc.cwnd == 50 * MSS
    cc.on_idle(12.0, 1.0)  # idle 1.5 s > RTO (RFC 5681 §4.1)
    assert cc.cwnd == 10 * MSS  # RW = min(IW, cwnd)
    assert cc.ssthresh == INFINITE_SSTHRESH  # max(ssthresh, 3/4·cwnd) leaves infinity alone
    cc.on_idle(20.0, 1.0)  # already at the restart window
    assert cc.cwnd == 10 * MSS


@pytest.mark.parametrize("cls", BOTH)
def test_idle_restart_keeps_memory_in_ssthresh(cls: type[CongestionControl]) -> None:
    cc = cls(MSS, 0.0)
    lose_at(cc, 80)  # ssthresh 40 (NewReno) or 56 (CUBIC) segments
    old_ssthresh = cc.ssthresh
    cc.cwnd = 60 * MSS
    cc.on_ack(MSS, 5.0, 0.05, 0, app_limited=True)
    cc.on_idle(8.0, 1.0)
    assert cc.cwnd == 10 * MSS
    assert cc.ssthresh == max(old_ssthresh, 45 * MSS)  # RFC 2861 §3: at least 3/4 of the old cwnd


def test_idle_measured_from_last_send_when_given() -> None:
    cc = NewReno(MSS, 0.0)
    cc.cwnd = 50 * MSS
    cc.on_ack(MSS, 10.0, 0.05, 0)
    cc.on_idle(10.8, 1.0, idle_since=9.7)  # 0.8 s since the last ACK, 1.1 s since the last send
    assert cc.cwnd == 10 * MSS


@pytest.mark.parametrize("cls", BOTH)
def test_set_mss_keeps_segments(cls: type[CongestionControl]) -> None:
    cc = cls(536, 0.0)  # constructed before the SYN exchange
    cc.set_mss(1460)
    assert cc.cwnd == 14600 and cc.mss == 1460
    lose_at(cc, 40)
    ssthresh = cc.ssthresh
    cc.set_mss(730)  # PMTU halved
    assert cc.cwnd == ssthresh // 2 and cc.ssthresh == ssthresh // 2
    with pytest.raises(ValueError):
        cc.set_mss(0)


# -- NewReno -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ack_segments", [1, 2, 3])
def test_newreno_congestion_avoidance_adds_one_mss_per_rtt(ack_segments: int) -> None:
    cc = NewReno(MSS, 0.0)
    lose_at(cc, 40)
    assert cc.cwnd == 20 * MSS and not cc.in_slow_start
    _, trace = run_rounds(cc, 0.0, 0.05, 30, ack_segments=ack_segments)
    assert trace == [(20 + n) * MSS for n in range(1, 31)]


def test_newreno_sawtooth() -> None:
    capacity = 60
    trace = sawtooth(NewReno(MSS, 0.0), capacity=capacity, rtt=0.05, rounds=400)
    peaks = check_sawtooth(trace, capacity=capacity, beta=0.5)
    # +1 MSS per RTT: the round that overflows does so by at most 1 MSS, and adds one more before
    # the next round sees the loss
    assert all((capacity + 1) * MSS < p <= (capacity + 2) * MSS for p in peaks)
    losses = [i for i, row in enumerate(trace) if row[0] == "loss"]
    # from 30 back to 61 segments at one per round, plus the recovery round
    assert [b - a for a, b in pairwise(losses)][-5:] == [32] * 5


# -- CUBIC ---------------------------------------------------------------------------------------


def rfc_w_cubic(t: float, w_max: float, cwnd_epoch: float) -> float:
    """RFC 9438 §4.2, Figures 1 and 2, computed independently of the implementation."""
    k = math.cbrt((w_max - cwnd_epoch) / C)
    return C * (t - k) ** 3 + w_max


def test_cubic_follows_w_cubic_after_a_loss() -> None:
    rtt = 0.1
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 100)
    epoch_window = 100 * BETA_CUBIC
    k = math.cbrt(100 * (1 - BETA_CUBIC) / C)  # RFC 8312's form; equal here (cwnd_epoch = β·W_max)
    assert cc.cwnd == 70 * MSS
    now = 0.0
    points = []
    while now < k + 1.0:
        now = deliver_round(cc, now, rtt)
        assert cc.epoch_start == 0.0 + rtt / 70  # the first CA ACK started the epoch
        t = now - cc.epoch_start
        points.append((t, cc.cwnd / MSS))
        assert rfc_w_cubic(t, 100, epoch_window) >= cc.w_est  # the cubic region throughout this run
    assert cc.k == pytest.approx(k)
    for t, w in points:
        assert w == pytest.approx(rfc_w_cubic(t, 100, epoch_window), abs=0.5), t
    # the plateau: W_max at t ≈ K, never more than a fraction of a segment above it before
    nearest = min(points, key=lambda p: abs(p[0] - k))
    assert nearest[1] == pytest.approx(100, abs=0.2)
    assert all(w <= 100.1 for t, w in points if t <= k)
    assert points[-1][1] > 100  # convex beyond K
    # concave: growth per round shrinks while approaching W_max
    gains = [b[1] - a[1] for a, b in pairwise(points) if b[0] < k - 0.5]
    assert all(g2 <= g1 + 1e-9 for g1, g2 in pairwise(gains))


def test_cubic_growth_is_capped_at_half_a_window_per_rtt() -> None:
    """Far below W_max, W_cubic(t + RTT) is huge; the §4.4 clamp holds growth to ×1.5 per RTT."""
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 1000)
    cc.cwnd = cc.ssthresh = 20 * MSS  # as if W_max were remembered from long ago
    _, trace = run_rounds(cc, 0.0, 1.0, 4)  # long RTT: the lookahead is far up the curve
    windows = [20 * MSS, *trace]
    for a, b in pairwise(windows):
        assert b <= a * 1.5 + 1
        assert b > a * 1.4


def test_cubic_reno_friendly_region_at_small_rtt() -> None:
    """RTT = 1 ms: Reno's ACK-clocked growth beats the time-based curve; cwnd follows W_est."""
    rtt = 0.001
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 100)
    now, _ = run_rounds(cc, 0.0, rtt, 40)
    t = now - (cc.epoch_start or 0.0)
    assert cc.cwnd / MSS == pytest.approx(70 + ALPHA_CUBIC * 40, abs=0.3)  # α_cubic per RTT
    assert cc.cwnd / MSS == pytest.approx(cc.w_est, abs=0.01)
    assert cc.cwnd / MSS > rfc_w_cubic(t, 100, 70) + 15
    # once W_est regains cwnd_prior, α_cubic becomes 1: Reno's one segment per RTT
    run_rounds(cc, now, rtt, 80)
    before = cc.cwnd
    run_rounds(cc, now + 0.08, rtt, 10)
    assert (cc.cwnd - before) / MSS == pytest.approx(10, abs=0.2)


def test_cubic_fast_convergence() -> None:
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 100)
    assert cc.w_max == 100
    lose_at(cc, 80)  # lost before regaining the old W_max: another flow took bandwidth
    assert cc.w_max == pytest.approx(80 * (1 + BETA_CUBIC) / 2)  # RFC 9438 §4.7
    assert cc.ssthresh == 56 * MSS
    lose_at(cc, 120)  # beyond W_max: plain W_max = cwnd
    assert cc.w_max == 120

    plain = Cubic(MSS, 0.0, fast_convergence=False)
    lose_at(plain, 100)
    lose_at(plain, 80)
    assert plain.w_max == 80


def test_cubic_multiple_losses_in_a_row() -> None:
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 100)
    cc.on_loss(1.0, cc.cwnd)  # a second congestion event before any growth
    assert cc.ssthresh == 49 * MSS
    assert cc.w_max == pytest.approx(70 * 0.85)  # 70 < 100: fast convergence
    cc.on_recovery_exit(1.0)
    # K from the current epoch: W_max = 59.5 segments, cwnd_epoch = 49
    deliver_round(cc, 1.0, 0.1)
    assert cc.k == pytest.approx(math.cbrt((59.5 - 49) / C))


def test_cubic_curve_starts_at_cwnd_epoch_even_above_w_max() -> None:
    """Fast convergence and the 2·SMSS floor can leave cwnd_epoch above W_max: K < 0, and the
    signed cube root keeps W_cubic(0) = cwnd_epoch (RFC 9438 §4.2)."""
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 10)
    lose_at(cc, 2)  # W_max = 2·0.85 = 1.7, ssthresh floored at 2 segments
    cc.on_ack(MSS, 0.1, 0.1, MSS)
    assert cc.k < 0
    assert cc.w_cubic(0.0) == pytest.approx(2.0)


def test_cubic_after_timeout() -> None:
    """RFC 9438 §4.8: the first CA stage after a timeout has K = 0 and W_max = W_est = cwnd_epoch."""
    cc = Cubic(MSS, 0.0)
    cc.cwnd = 100 * MSS
    cc.on_rto(0.0, 100 * MSS)
    assert cc.ssthresh == 70 * MSS and cc.cwnd == MSS
    now, _ = run_rounds(cc, 0.0, 0.1, 6)  # slow start 1 → 64 segments
    assert cc.in_slow_start
    now = deliver_round(cc, now, 0.1)  # reaches ssthresh; the rest of the round is CA
    assert cc.k == 0.0
    assert cc.w_max == pytest.approx(70)
    assert cc.cwnd_prior == 100  # α switches to 1 only when Reno would have regained this


def test_cubic_app_limited_time_does_not_count() -> None:
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 100)
    now = deliver_round(cc, 0.0, 0.1)
    start = cc.epoch_start
    assert start is not None
    now, _ = run_rounds(cc, now, 0.1, 50, app_limited=True)  # 5 s of app-limited ACKs
    assert cc.epoch_start == pytest.approx(start + 5.0)
    assert cc.cwnd == pytest.approx(rfc_w_cubic(0.1, 100, 70) * MSS, abs=0.5 * MSS)


def test_cubic_idle_shifts_epoch_and_restarts() -> None:
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 100)
    now, _ = run_rounds(cc, 0.0, 0.1, 10)
    start = cc.epoch_start
    assert start is not None
    w = cc.cwnd
    cc.on_idle(now + 0.15, 0.3)  # a short pause: the epoch moves, cwnd stays
    assert cc.epoch_start == pytest.approx(start + 0.15)
    assert cc.cwnd == w
    cc.on_idle(now + 10.15, 0.3)  # 10 s idle: restart window, and t does not advance either
    assert cc.epoch_start == pytest.approx(start + 10.15)
    assert cc.cwnd == 10 * MSS
    # back from the restart window, the climb is bounded (slow start, then ≤ ×1.5 per RTT)
    windows = [cc.cwnd]
    now += 10.15
    for _ in range(12):
        now = deliver_round(cc, now, 0.1)
        windows.append(cc.cwnd)
    assert all(b <= 2 * a for a, b in pairwise(windows))


def test_cubic_reno_estimate_does_not_burst_after_restart() -> None:
    """An idle restart leaves W_est far above the new cwnd; regaining it is held to ×1.5 per RTT
    (at most half the acked bytes per ACK) instead of one jump."""
    rtt = 0.001
    cc = Cubic(MSS, 0.0)
    lose_at(cc, 100)
    now, _ = run_rounds(cc, 0.0, rtt, 40)  # Reno-friendly region, W_est ≈ 91
    cc.on_idle(now + 5.0, 0.2)
    assert cc.cwnd == 10 * MSS and cc.ssthresh == 70 * MSS
    now += 5.0
    gap_seen = False
    for i in range(400):
        before = cc.cwnd
        slow_start = cc.in_slow_start
        cc.on_ack(MSS, now + i * 1e-5, rtt, before)
        if not slow_start:
            gap_seen |= cc.w_est * MSS - before > 10 * MSS
            assert cc.cwnd - before <= MSS // 2
    assert gap_seen and cc.cwnd > 85 * MSS


def test_cubic_min_rtt_tracking() -> None:
    cc = Cubic(MSS, 0.0)
    assert cc.min_rtt is None
    cc.on_ack(MSS, 0.1, 0.08, 0)
    cc.on_ack(MSS, 0.2, None, 0)
    cc.on_ack(MSS, 0.3, 0.05, 0, app_limited=True)  # still a valid RTT sample
    cc.on_ack(MSS, 0.4, 0.09, 0)
    assert cc.min_rtt == 0.05


def test_cubic_sawtooth() -> None:
    capacity = 100
    rtt = 0.1
    trace = sawtooth(Cubic(MSS, 0.0), capacity=capacity, rtt=rtt, rounds=600)
    peaks = check_sawtooth(trace, capacity=capacity, beta=BETA_CUBIC)
    # the plateau around W_max makes CUBIC overshoot the capacity only slightly
    assert all(capacity * MSS < p <= (capacity + 2) * MSS for p in peaks)
    # A tooth is never shorter than the cubic curve allows (with W_max at the capacity it comes
    # within 2 segments of the top only at K - ∛(2/C)) and never longer than Reno's α_cubic per RTT
    # needs to climb back from β·capacity (the Reno-friendly guarantee, RFC 9438 §4.3).
    times = [row[1] for row in trace if row[0] == "loss" and row[2] in peaks]
    k = math.cbrt((capacity + 1) * (1 - BETA_CUBIC) / C)
    shortest = k - math.cbrt(2 / C) - rtt
    longest = ((capacity + 1) * (1 - BETA_CUBIC) / ALPHA_CUBIC + 2) * rtt
    tooth = [b - a for a, b in pairwise(times)]
    assert all(shortest <= d <= longest for d in tooth), (shortest, tooth, longest)
    assert max(tooth) - min(tooth) > 1.0  # and fast convergence makes every other tooth longer


# -- invariants over arbitrary event sequences ---------------------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["ack", "ack", "ack", "app", "loss", "exit", "rto", "idle", "mss"]),
        st.floats(min_value=0.0, max_value=1.0),  # time step (seconds) or a fraction
        st.integers(min_value=1, max_value=64),  # segments acked / new MSS choice
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(BOTH), events)
def test_invariants(cls: type[CongestionControl], script: list[tuple[str, float, int]]) -> None:
    cc = cls(MSS, 0.0)
    now = 0.0
    for kind, x, n in script:
        now += x
        mss = cc.mss
        before = cc.cwnd
        if kind in ("ack", "app"):
            acked = n * mss
            cc.on_ack(acked, now, 0.01 + x / 10, max(0, before - acked), app_limited=kind == "app")
            if kind == "app" or cc.in_recovery:
                assert cc.cwnd == before
            else:
                assert before <= cc.cwnd <= before + 2 * mss + acked
        elif kind == "loss":
            cc.on_loss(now, int(before * x))
            assert cc.cwnd <= max(before, 2 * mss)
        elif kind == "exit":
            cc.on_recovery_exit(now)
        elif kind == "rto":
            cc.on_rto(now, int(before * x))
            assert cc.cwnd == mss and not cc.in_recovery
        elif kind == "idle":
            cc.on_idle(now, 0.5)
            assert cc.cwnd <= before
        else:
            cc.set_mss(500 + 20 * n)
        assert cc.cwnd >= cc.mss
        assert cc.ssthresh >= 2 * cc.mss
        assert cc.in_slow_start == (cc.cwnd < cc.ssthresh)
