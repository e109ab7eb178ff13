"""NewReno: the standard AIMD window (RFC 5681 §3, with RFC 6582's recovery rules).

- Slow start and the shared hooks are :class:`~.base.CongestionControl`'s.
- Congestion avoidance, additive increase: RFC 5681 §3.1's ``cwnd += SMSS·SMSS/cwnd`` per ACK,
  done by byte counting (RFC 5681 §3.1's alternative, RFC 3465 §2.1): acknowledged bytes
  accumulate, and each time they reach ``cwnd`` the window grows by exactly one SMSS and ``cwnd``
  bytes leave the accumulator. So a window's worth of ACKs adds one segment per RTT whatever the
  ACK size (delayed, stretch or per-segment ACKs), with no rounding drift.
- Multiplicative decrease on loss and on the first timeout: ``ssthresh = max(FlightSize/2,
  2·SMSS)``, RFC 5681 eq. (4). FlightSize is the ``in_flight`` the connection passes, not
  ``cwnd``: an application-limited flight must not keep an inflated window.
"""

from __future__ import annotations

from .base import CongestionControl

__all__ = ["NewReno"]


class NewReno(CongestionControl):
    """RFC 5681 / RFC 6582 congestion control, byte-counted (RFC 3465)."""

    __slots__ = ("_acked",)

    name = "newreno"

    def __init__(self, mss: int, now: float, *, initial_window: int | None = None) -> None:
        super().__init__(mss, now, initial_window=initial_window)
        self._acked = 0  # bytes acknowledged in congestion avoidance since cwnd last grew

    def _congestion_avoidance(self, acked: int, now: float) -> None:
        # RFC 3465 §2.1: "bytes_acked" reaching cwnd grows cwnd by SMSS. The loop runs more than
        # once only for an ACK larger than cwnd, which the connection's flight makes rare.
        self._acked += acked
        while self._acked >= self.cwnd:
            self._acked -= self.cwnd
            self.cwnd += self.mss

    def _ssthresh_after_loss(self, now: float, in_flight: int) -> int:
        return max(in_flight // 2, 2 * self.mss)  # RFC 5681 eq. (4)

    def on_loss(self, now: float, in_flight: int) -> None:
        """Fast recovery begins: ``ssthresh = cwnd = max(FlightSize/2, 2·SMSS)`` (RFC 5681 eq. (4))."""
        if not self.in_recovery:
            self._acked = 0
        CongestionControl.on_loss(self, now, in_flight)

    def on_rto(self, now: float, in_flight: int) -> None:
        """Timeout: ``ssthresh = max(FlightSize/2, 2·SMSS)`` unless held, ``cwnd = 1·SMSS`` (RFC 5681 §3.1)."""
        self._acked = 0
        CongestionControl.on_rto(self, now, in_flight)

    def set_mss(self, mss: int) -> None:
        self._acked = 0
        CongestionControl.set_mss(self, mss)
