"""The congestion-control interface and the rules every algorithm shares (RFC 5681, RFC 3465).

One :class:`CongestionControl` object per connection holds ``cwnd`` and ``ssthresh`` in **bytes**
and is driven by the connection through a handful of hooks. Sans-I/O: time is the ``now`` argument
(seconds, monotonic), RTTs come in as arguments; nothing reads a clock.

Division of labour with the connection
--------------------------------------

The controller owns the *window*; the connection owns the *events* and everything per-segment:

- the connection detects loss (three duplicate ACKs, SACK/RACK), decides when recovery starts and
  ends (NewReno's ``recover`` point, RFC 6582 §3.2), runs the retransmission timer and applies
  Karn's rule to RTT samples;
- on entering recovery it calls :meth:`~CongestionControl.on_loss`, which sets ``ssthresh`` and the
  post-recovery target ``cwnd = ssthresh``. **During recovery the connection shapes what it
  sends itself**: either RFC 5681 §3.2's inflation (``cwnd = ssthresh + 3·SMSS``, +SMSS per further
  duplicate ACK, RFC 6582 §3.2 step 5's partial-ACK deflation) or PRR (RFC 6937), which sizes each
  transmission from ``ssthresh`` and the bytes delivered. It may write ``cwnd`` directly for that;
  the controller ignores :meth:`~CongestionControl.on_ack` while ``in_recovery`` and does not
  reduce twice for one episode (a second :meth:`~CongestionControl.on_loss` before
  :meth:`~CongestionControl.on_recovery_exit` is ignored);
- on the full ACK it calls :meth:`~CongestionControl.on_recovery_exit`, which deflates ``cwnd``.

Hooks (all times in seconds, sizes in bytes):

- :meth:`~CongestionControl.on_ack` — new data cumulatively acknowledged outside recovery: slow
  start or congestion avoidance (RFC 5681 §3.1). Pass ``app_limited=True`` when the flight did not
  fill ``cwnd`` (the application, or the receive window, held the sender back): the window is
  then not validated by the ACK and does not grow (the spirit of RFC 7661; RFC 9438 §5.8).
- :meth:`~CongestionControl.on_loss` — entering fast recovery (RFC 5681 §3.2 step 2, RFC 6582
  §3.2 step 2).
- :meth:`~CongestionControl.on_recovery_exit` — the full ACK ended recovery (RFC 6582 §3.2 step 3).
- :meth:`~CongestionControl.on_rto` — the retransmission timer expired (RFC 5681 §3.1, RFC 6298
  §5.5): ``cwnd`` = the loss window, 1 SMSS.
- :meth:`~CongestionControl.on_idle` — about to send with nothing in flight; restarts from the
  restart window when the idle period exceeded the RTO (RFC 5681 §4.1).
- :meth:`~CongestionControl.set_mss` — the effective MSS changed (PMTU discovery, or the SYN
  exchange after construction).

Byte counting (RFC 3465, "ABC"): slow start grows ``cwnd`` by the bytes acknowledged, at most
``L·SMSS`` per ACK with L = 2 (RFC 3465 §2.2; RFC 5681 §3.1 allows the byte count, its own
formula is L = 1); so delayed ACKs covering two segments still double ``cwnd`` per RTT, and an ACK
that covers a huge stretch (after a lost ACK burst) cannot cause a line-rate burst.
"""

from __future__ import annotations

__all__ = ["ABC_LIMIT", "INFINITE_SSTHRESH", "INITIAL_WINDOW", "CongestionControl"]

INFINITE_SSTHRESH = 0x7FFFFFFF
"""``ssthresh`` before the first congestion event: "arbitrarily high" (RFC 5681 §3.1); Linux's
``TCP_INFINITE_SSTHRESH``."""

INITIAL_WINDOW = 10
"""Initial window in segments (RFC 6928 §2)."""

ABC_LIMIT = 2
"""L of RFC 3465 §2.2: slow start credits at most ``L·SMSS`` per ACK."""


class CongestionControl:
    """A pluggable congestion controller: ``cwnd`` and ``ssthresh`` in bytes (RFC 5681).

    ``mss`` is the sender's SMSS; ``initial_window`` the initial window in segments (default
    :data:`INITIAL_WINDOW`, RFC 6928). As in Linux, the initial window counts segments: RFC 6928
    §2's byte cap, ``min(10·MSS, max(2·MSS, 14600))``, is not applied (it only bites with
    jumbo-frame MSSs).

    Public state: ``cwnd``, ``ssthresh``, ``mss``, ``initial_window`` (segments), ``in_recovery``
    and the property :attr:`in_slow_start`. Subclasses implement :meth:`_congestion_avoidance`
    and :meth:`_ssthresh_after_loss`, and may extend the hooks, calling the base class's by name
    (``CongestionControl.on_ack(self, …)``: a C call in the compiled build, where ``super()``
    cannot reach a cpdef method).
    """

    __slots__ = ("_in_loss", "_last_event", "cwnd", "in_recovery", "initial_window", "mss", "ssthresh")

    name = ""
    """The name this algorithm is registered under (``ALGORITHMS``)."""

    def __init__(self, mss: int, now: float, *, initial_window: int | None = None) -> None:
        if mss <= 0:
            raise ValueError(f"mss must be positive, got {mss}")
        if initial_window is None:
            initial_window = INITIAL_WINDOW
        elif initial_window < 1:
            raise ValueError(f"initial_window must be at least 1 segment, got {initial_window}")
        self.mss = mss
        self.initial_window = initial_window
        self.cwnd = initial_window * mss
        self.ssthresh = INFINITE_SSTHRESH
        self.in_recovery = False
        self._in_loss = False  # an RTO happened and no new data has been acknowledged since
        self._last_event = now  # time of the last hook call: where an idle period starts

    # -- state --------------------------------------------------------------------------------

    @property
    def in_slow_start(self) -> bool:
        """``cwnd < ssthresh`` (RFC 5681 §3.1; at equality congestion avoidance is used)."""
        return self.cwnd < self.ssthresh

    @property
    def restart_window(self) -> int:
        """RW of RFC 5681 §4.1 before the ``min`` with ``cwnd``: the initial window, in bytes."""
        return self.initial_window * self.mss

    # -- hooks --------------------------------------------------------------------------------

    def on_ack(self, acked: int, now: float, rtt: float | None, in_flight: int, app_limited: bool = False) -> None:
        """``acked`` bytes of new data were cumulatively acknowledged (RFC 5681 §3.1).

        ``rtt`` is this ACK's RTT sample if it produced one (after Karn's rule), else ``None``;
        ``in_flight`` the bytes still outstanding after this ACK. Ignored during recovery (the
        connection owns the window then, see the module docstring). Otherwise:

        - slow start (``cwnd < ssthresh``): ``cwnd += min(acked, L·SMSS)``, L = 2 (RFC 3465 §2.2),
          never past ``ssthresh``; the rest of the ACK goes on to congestion avoidance, as Linux's
          ``tcp_slow_start`` hands it on;
        - congestion avoidance: the algorithm's own rule (:meth:`_congestion_avoidance`).

        With ``app_limited=True`` the window does not grow: the sender was not using all of
        ``cwnd``, so the ACK says nothing about whether a larger window would fit (RFC 7661 §4.3's
        reasoning, RFC 9438 §5.8, Linux's ``tcp_is_cwnd_limited``).
        """
        self._last_event = now
        if acked <= 0:
            return
        self._in_loss = False
        if self.in_recovery or app_limited:
            return
        if self.cwnd < self.ssthresh:
            grow = min(acked, ABC_LIMIT * self.mss)
            room = self.ssthresh - self.cwnd
            if grow <= room:
                self.cwnd += grow
                return
            self.cwnd = self.ssthresh
            acked = grow - room
        self._congestion_avoidance(acked, now)

    def on_loss(self, now: float, in_flight: int) -> None:
        """Fast retransmit / entering fast recovery (RFC 5681 §3.2 step 2, RFC 6582 §3.2 step 2).

        Sets ``ssthresh`` by the algorithm's multiplicative decrease (:meth:`_ssthresh_after_loss`;
        NewReno: RFC 5681 eq. (4), CUBIC: RFC 9438 §4.6) and ``cwnd = ssthresh``, the window to
        return to when recovery ends. The +3·SMSS inflation or PRR during recovery is the
        connection's (module docstring). Ignored while already in recovery: one reduction per
        episode (RFC 6582 §3.2 step 1; RFC 5681 §3.2 note on ``ssthresh``).
        """
        self._last_event = now
        if self.in_recovery:
            return
        self.ssthresh = self._ssthresh_after_loss(now, in_flight)
        self.cwnd = self.ssthresh
        self.in_recovery = True

    def on_recovery_exit(self, now: float, in_flight: int | None = None) -> None:
        """A full ACK ended fast recovery: deflate the window (RFC 6582 §3.2 step 3).

        Without ``in_flight``: ``cwnd = ssthresh`` (RFC 6582's second option; also where PRR,
        RFC 6937 §3, ends). The connection should pace or otherwise avoid the burst this may
        allow, as that section asks. With ``in_flight`` (the FlightSize after the ACK):
        ``cwnd = min(ssthresh, max(in_flight, SMSS) + SMSS)``, the first option, which cannot
        burst. Does nothing outside recovery.
        """
        self._last_event = now
        if not self.in_recovery:
            return
        self.in_recovery = False
        if in_flight is None:
            self.cwnd = self.ssthresh
        else:
            self.cwnd = min(self.ssthresh, max(in_flight, self.mss) + self.mss)

    def on_rto(self, now: float, in_flight: int) -> None:
        """The retransmission timer expired (RFC 5681 §3.1, RFC 6298 §5.5).

        ``ssthresh`` gets the algorithm's decrease (NewReno: ``max(FlightSize/2, 2·SMSS)``,
        RFC 5681 eq. (4)) and ``cwnd`` the loss window, 1 SMSS. Recovery, if any, is over.
        ``ssthresh`` is *held* when this timeout continues an episode that already reduced it:
        a repeated timeout with no new data acknowledged since the last one (RFC 5681 §3.1: "the
        value of ssthresh is held constant" when the segment was already retransmitted by the
        timer), or a timeout during fast recovery, whose ``on_loss`` already reduced it (Linux's
        ``tcp_enter_loss`` does the same) — otherwise the window collapses for one loss.
        """
        self._last_event = now
        if not (self._in_loss or self.in_recovery):
            self.ssthresh = self._ssthresh_after_loss(now, in_flight)
        self.cwnd = self.mss
        self.in_recovery = False
        self._in_loss = True

    def on_idle(self, now: float, rto: float, idle_since: float | None = None) -> None:
        """About to send new data with nothing in flight (RFC 5681 §4.1).

        Call this each time sending resumes from an empty pipe; the controller decides. The idle
        period runs from ``idle_since`` (the last transmission, RFC 5681's measure, if the
        connection tracks it) or else from the controller's last event (normally the ACK that
        emptied the pipe). If it exceeds ``rto``, ``cwnd`` drops to the restart window,
        ``min(IW, cwnd)``; ``ssthresh`` is first raised to ``3/4·cwnd`` if lower, so slow start
        climbs quickly back to the old operating point (RFC 2861 §3's rule, as Linux's
        ``tcp_cwnd_restart``).
        """
        since = self._last_event if idle_since is None else idle_since
        self._last_event = now
        if now - since <= rto:
            return
        restart = self.restart_window
        if self.cwnd > restart:
            self.ssthresh = max(self.ssthresh, self.cwnd * 3 // 4)
            self.cwnd = restart

    def set_mss(self, mss: int) -> None:
        """The sender's MSS changed: keep ``cwnd`` and a finite ``ssthresh`` in *segments*.

        Linux counts its window in segments, so an MSS change rescales the window in bytes; doing
        the same here keeps the initial window at ``initial_window`` segments when the MSS is
        learned after construction, and shrinks the bytes in flight when PMTU discovery lowers
        it. ``cwnd`` stays at least 1 SMSS and ``ssthresh`` at least 2 SMSS (RFC 5681 §3.1).
        """
        if mss <= 0:
            raise ValueError(f"mss must be positive, got {mss}")
        old = self.mss
        if mss == old:
            return
        self.mss = mss
        self.cwnd = max(mss, self.cwnd * mss // old)
        if self.ssthresh != INFINITE_SSTHRESH:
            self.ssthresh = min(INFINITE_SSTHRESH, max(2 * mss, self.ssthresh * mss // old))

    # -- the algorithm ------------------------------------------------------------------------

    def _congestion_avoidance(self, acked: int, now: float) -> None:
        """Grow ``cwnd`` for ``acked`` bytes acknowledged in congestion avoidance (RFC 5681 §3.1)."""
        raise NotImplementedError(f"{type(self).__name__} must define _congestion_avoidance")

    def _ssthresh_after_loss(self, now: float, in_flight: int) -> int:
        """The new ``ssthresh`` in bytes for a congestion event (fast retransmit or first RTO).

        Called before ``cwnd`` changes, so ``self.cwnd`` is the window at the time of loss.
        """
        raise NotImplementedError(f"{type(self).__name__} must define _ssthresh_after_loss")

    def __repr__(self) -> str:
        ssthresh = "inf" if self.ssthresh == INFINITE_SSTHRESH else str(self.ssthresh)
        return (
            f"{type(self).__name__}(cwnd={self.cwnd}, ssthresh={ssthresh}, mss={self.mss}"
            f"{', recovery' if self.in_recovery else ''})"
        )
