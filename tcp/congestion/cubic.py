"""CUBIC congestion control (RFC 9438), byte-counted and driven by explicit time.

After a congestion event the window follows a cubic function of the time since congestion
avoidance began (§4.2), in segments and seconds::

    W_cubic(t) = C·(t - K)³ + W_max,    K = ∛((W_max - cwnd_epoch) / C)

with C = 0.4 and β_cubic = 0.7. ``cwnd_epoch`` is ``cwnd`` when the congestion-avoidance stage
starts (the first ACK after recovery ends and slow start, if any, is over), so ``W_cubic(0) =
cwnd_epoch``; when ``cwnd_epoch = β·W_max`` (a loss without fast convergence) K reduces to RFC 8312's
``∛(W_max·(1-β)/C)``. A signed cube root is used, so a window that starts above ``W_max`` (after fast
convergence lowered it) is already on the convex side. The curve is *concave* below ``W_max`` (fast
return towards the last saturation point, then a plateau, §4.4) and *convex* above it (slow, then
accelerating probing, §4.5). Per ACK of ``acked`` bytes::

    target = clamp(W_cubic(t + RTT), cwnd, 1.5·cwnd)          (§4.4; at most ×1.5 per RTT)
    cwnd  += acked · (target - cwnd) / cwnd                    (bytes; (target-cwnd)/cwnd per segment)

RTT here is the *minimum* RTT seen, as Linux's ``delay_min``: the lookahead should not shrink
and swell with queueing delay. Fractions of a byte carry over in an accumulator.

**Reno-friendly region (§4.3).** Alongside, CUBIC estimates what Reno would have:
``W_est += α_cubic · segments_acked / cwnd`` from ``W_est = cwnd_epoch``, where
``α_cubic = 3(1-β)/(1+β)`` gives the same average rate as AIMD(1, 0.5), and becomes 1 once
``W_est`` reaches ``cwnd_prior`` (the window when ``ssthresh`` was last set). Whenever
``W_cubic(t) < W_est``, ``cwnd = W_est``: on short-RTT paths, where time-based growth is slow next to
ACK-clocked growth, CUBIC is never less aggressive than Reno. (Should ``cwnd`` have been cut below
``W_est`` by an idle restart, the climb back is held to the same ×1.5 per RTT as the cubic region.)

**Congestion events.** Fast retransmit (§4.6): ``ssthresh = max(cwnd·β, 2·SMSS)`` and
``cwnd = ssthresh``. ``cwnd`` (not FlightSize) is multiplied, as in Linux; §4.6 allows it provided the
window cannot grow while unused, which the ``app_limited`` flag of ``on_ack`` ensures. ``W_max`` is
the window at the loss, lowered to ``cwnd·(1+β)/2`` by fast convergence (§4.7) when the loss came
before the window regained the previous ``W_max`` — a new flow is taking bandwidth, so yield some.
Every event — including several in a row — recomputes from the window at that moment.
Timeout (§4.8): ``ssthresh`` from β as above (RFC 9438 departs from Reno's FlightSize/2 here),
``cwnd`` = 1 SMSS, and the first congestion-avoidance stage afterwards uses ``K = 0`` and
``W_max = W_est = cwnd_epoch``.

**Time that does not count (§5.8).** ``t`` excludes periods when the flow was not using its window:
an idle period (:meth:`Cubic.on_idle` moves the epoch forward by it, as Linux's ``bictcp_cwnd_event``
on ``CA_EVENT_TX_START``) and application-limited ACKs (each moves the epoch forward by the time since
the previous event). Otherwise ``W_cubic(t)`` would be far ahead when the flow resumes.

Internal window state (``W_max``, ``W_est``, ``cwnd_prior``) is kept in segments (floats), like
RFC 9438's pseudo-code, so an MSS change rescales nothing there.
"""

from __future__ import annotations

import math

from .base import CongestionControl

__all__ = ["ALPHA_CUBIC", "BETA_CUBIC", "C", "Cubic"]

C = 0.4
"""CUBIC's scaling constant, segments/second³ (RFC 9438 §5)."""
BETA_CUBIC = 0.7
"""Multiplicative decrease factor (RFC 9438 §4.6)."""
ALPHA_CUBIC = 3 * (1 - BETA_CUBIC) / (1 + BETA_CUBIC)
"""Additive increase of the Reno estimate, segments per RTT (RFC 9438 §4.3): ≈ 0.529."""
MAX_GROWTH = 1.5
"""``target`` is at most this times ``cwnd`` (RFC 9438 §4.4)."""


class Cubic(CongestionControl):
    """RFC 9438 CUBIC. ``fast_convergence`` (§4.7) is on by default, as in Linux."""

    __slots__ = (
        "_acc",
        "_after_timeout",
        "_cwnd_prior",
        "_epoch_start",
        "_k",
        "_min_rtt",
        "_w_est",
        "_w_max",
        "fast_convergence",
    )

    name = "cubic"

    def __init__(
        self, mss: int, now: float, *, initial_window: int | None = None, fast_convergence: bool = True
    ) -> None:
        super().__init__(mss, now, initial_window=initial_window)
        self.fast_convergence = fast_convergence
        self._w_max = 0.0  # segments; 0 until the first congestion event
        self._cwnd_prior = 0.0  # segments: cwnd when ssthresh was last set
        self._k = 0.0  # seconds
        self._epoch_start: float | None = None  # start of the current CA stage, None outside one
        self._w_est = 0.0  # segments: the Reno-friendly estimate
        self._acc = 0.0  # bytes of growth earned but not yet added to cwnd (< 1)
        self._min_rtt: float | None = None
        self._after_timeout = False  # the next CA stage is the first after a timeout (§4.8)

    # -- read-only view of the curve (diagnostics, tests) -------------------------------------

    @property
    def w_max(self) -> float:
        """W_max in segments (RFC 9438 §4.2), 0 before the first congestion event."""
        return self._w_max

    @property
    def k(self) -> float:
        """K in seconds: when ``W_cubic`` reaches ``W_max`` (RFC 9438 §4.2)."""
        return self._k

    @property
    def epoch_start(self) -> float | None:
        """When the current congestion-avoidance stage began (shifted past idle and app-limited
        time), or ``None`` outside one."""
        return self._epoch_start

    @property
    def w_est(self) -> float:
        """The Reno-friendly estimate W_est in segments (RFC 9438 §4.3)."""
        return self._w_est

    @property
    def cwnd_prior(self) -> float:
        """``cwnd`` in segments when ``ssthresh`` was last set (RFC 9438 §4.6)."""
        return self._cwnd_prior

    @property
    def min_rtt(self) -> float | None:
        """The smallest RTT sample passed to :meth:`on_ack`, used as the ``t + RTT`` lookahead."""
        return self._min_rtt

    def w_cubic(self, t: float) -> float:
        """``W_cubic(t) = C·(t - K)³ + W_max`` in segments, ``t`` seconds into the epoch (§4.2)."""
        d = t - self._k
        return C * d * d * d + self._w_max

    # -- hooks --------------------------------------------------------------------------------

    def on_ack(self, acked: int, now: float, rtt: float | None, in_flight: int, app_limited: bool = False) -> None:
        """As :meth:`CongestionControl.on_ack`; also records ``rtt`` for the minimum RTT, and an
        application-limited ACK moves the epoch forward by the time since the last event so that
        ``t`` counts only window-limited time (RFC 9438 §5.8)."""
        if rtt is not None and rtt >= 0 and (self._min_rtt is None or rtt < self._min_rtt):
            self._min_rtt = rtt
        if app_limited and self._epoch_start is not None and not self.in_recovery:
            self._epoch_start += max(0.0, now - self._last_event)
        CongestionControl.on_ack(self, acked, now, rtt, in_flight, app_limited=app_limited)

    def on_rto(self, now: float, in_flight: int) -> None:
        """Timeout (RFC 9438 §4.8): ``ssthresh`` by β (unless held, see the base class),
        ``cwnd`` = 1 SMSS, and the next congestion-avoidance stage starts with ``K = 0`` and
        ``W_max = W_est = cwnd_epoch``."""
        CongestionControl.on_rto(self, now, in_flight)
        self._epoch_start = None
        self._acc = 0.0
        self._after_timeout = True

    def on_idle(self, now: float, rto: float, idle_since: float | None = None) -> None:
        """As :meth:`CongestionControl.on_idle`; the idle time since the last event is also taken
        out of the epoch, so ``t`` does not advance while the flow sends nothing (RFC 9438 §5.8)."""
        if self._epoch_start is not None:
            self._epoch_start += max(0.0, now - self._last_event)
        CongestionControl.on_idle(self, now, rto, idle_since=idle_since)

    def set_mss(self, mss: int) -> None:
        self._acc = 0.0
        CongestionControl.set_mss(self, mss)

    # -- the algorithm ------------------------------------------------------------------------

    def _ssthresh_after_loss(self, now: float, in_flight: int) -> int:
        w = self.cwnd / self.mss
        if self.fast_convergence and w < self._w_max:
            self._w_max = w * (1 + BETA_CUBIC) / 2  # §4.7
        else:
            self._w_max = w
        self._cwnd_prior = w
        self._epoch_start = None
        self._acc = 0.0
        self._after_timeout = False
        return max(int(self.cwnd * BETA_CUBIC), 2 * self.mss)  # §4.6

    def _begin_epoch(self, now: float, w: float) -> float:
        """The first ACK of a congestion-avoidance stage (§4.2; §4.8 after a timeout); returns
        the epoch start."""
        self._epoch_start = now
        self._acc = 0.0
        self._w_est = w
        if self._after_timeout or self._w_max <= 0.0:
            self._w_max = w
            self._k = 0.0
            self._after_timeout = False
        else:
            self._k = math.cbrt((self._w_max - w) / C)
        return now

    def _congestion_avoidance(self, acked: int, now: float) -> None:
        mss = self.mss
        w = self.cwnd / mss
        start = self._epoch_start
        if start is None:
            start = self._begin_epoch(now, w)
        t = now - start

        # §4.3: the Reno estimate, α_cubic until it regains cwnd_prior, then Reno's 1.
        alpha = 1.0 if self._w_est >= self._cwnd_prior else ALPHA_CUBIC
        self._w_est += alpha * (acked / mss) / w
        if self.w_cubic(t) < self._w_est:
            # cwnd = W_est; W_est moves by α·acked/cwnd per ACK so this is normally that exact
            # assignment, but after a discontinuity (an idle restart cut cwnd below an old W_est)
            # the §4.4 bound of ×1.5 per RTT (half the acked bytes per ACK) keeps it from bursting.
            est = min(int(self._w_est * mss), self.cwnd + acked // 2)
            if est > self.cwnd:
                self.cwnd = est
            return

        # §4.4 (concave) / §4.5 (convex): head for W_cubic one RTT ahead, at most ×1.5 per RTT.
        target = self.w_cubic(t + (self._min_rtt or 0.0))
        if target <= w:
            return
        target = min(target, MAX_GROWTH * w)
        self._acc += acked * (target - w) / w
        grow = int(self._acc)
        if grow:
            self._acc -= grow
            self.cwnd += grow
