"""Round-trip time estimation and the retransmission timeout (RFC 6298).

:class:`RttEstimator` keeps SRTT and RTTVAR and derives the RTO from them, one per connection.
Sans-I/O: RTT samples come in as floats (seconds) measured by the caller; nothing here reads a
clock or arms a timer — the connection schedules its retransmission timer for :attr:`rto`.

The computation (RFC 6298 §2):

- before any sample, RTO = ``initial_rto`` (§2.1: 1 s);
- the first sample R sets SRTT = R, RTTVAR = R/2 (§2.2);
- later samples R' update RTTVAR = (1 - β)·RTTVAR + β·|SRTT - R'| and *then*
  SRTT = (1 - α)·SRTT + α·R', with α = 1/8, β = 1/4 (§2.3; RTTVAR uses the old SRTT);
- RTO = SRTT + max(G, K·RTTVAR), K = 4, G the clock granularity (§2.2, §2.3), raised to at least
  ``min_rto`` (§2.4) and capped at ``max_rto`` (§2.5: a cap, if any, must be at least 60 s);
- each expiry of the timer doubles RTO (§5.5, "back off the timer"), still capped at ``max_rto``.

Choices:

- **min_rto = 0.2 s, as Linux** (``TCP_RTO_MIN``). RFC 6298 §2.4 says the RTO SHOULD be rounded up
  to 1 s; it is a SHOULD, not a MUST, and on the short paths this stack serves (veth, TAP, a LAN)
  a 1 s floor turns every tail loss into a second of stall. Pass ``min_rto=1.0`` for the RFC value.
- **A valid sample ends the backoff.** Karn's algorithm keeps the backed-off RTO until an ACK
  for a segment that was *not* retransmitted yields an RTT sample; :meth:`RttEstimator.sample`
  therefore resets :attr:`~RttEstimator.backoffs` (Linux does the same in
  ``tcp_ack_update_rtt``). :meth:`~RttEstimator.reset_backoff` is there for callers that want to
  end it on other evidence.

**Karn's rule is the caller's job** (RFC 6298 §3): an ACK that covers a retransmitted segment is
ambiguous — it may acknowledge the original or the retransmission — so the connection must not call
:meth:`~RttEstimator.sample` for it, and must keep the backed-off RTO until a sample from a segment
sent only once arrives. The exception is an RTT taken from a timestamp echo (RFC 7323 §4.1–§4.2):
``now - TSecr`` names the transmission that was actually acknowledged, so it is a valid sample even
for retransmitted data. In short: sample ``now - send_time`` only for never-retransmitted segments,
or ``now - TSecr`` whenever timestamps are in use.

:attr:`~RttEstimator.min_rtt` is the plain minimum of all samples, for CUBIC's ``t + RTT`` lookahead
and a future HyStart; a windowed minimum (as BBR needs) is not kept.
"""

from __future__ import annotations

__all__ = ["RttEstimator"]

ALPHA = 1 / 8
"""Gain of the SRTT update (RFC 6298 §2.3)."""
BETA = 1 / 4
"""Gain of the RTTVAR update (RFC 6298 §2.3)."""
K = 4
"""Weight of RTTVAR in the RTO (RFC 6298 §2.2)."""

# Copies the compiled build holds as C constants (rtt.pxd): a module attribute is a lookup by name.
_ALPHA = ALPHA
_BETA = BETA
_K = K

_NONE = -1.0
"""SRTT, RTTVAR and the minimum before the first sample (an RTT is never negative): C doubles in
the compiled build, with no float object of their own per connection; the properties give None."""

_MAX_SHIFT = 64
"""Backoffs beyond this no longer change anything (2**64 times any sane RTO exceeds any cap); the
count keeps going but the multiplier stops, so ``2.0 ** backoffs`` never overflows."""


class RttEstimator:
    """SRTT, RTTVAR and the RTO of one connection (RFC 6298), with exponential backoff.

    All times are seconds. ``initial_rto`` is the RTO before the first sample (§2.1),
    ``min_rto``/``max_rto`` bound every RTO this returns, ``clock_granularity`` is G (§2.2).
    """

    __slots__ = ("_min_rtt", "_rttvar", "_srtt", "backoffs", "clock_granularity", "initial_rto", "max_rto", "min_rto")

    def __init__(
        self,
        *,
        initial_rto: float = 1.0,
        min_rto: float = 0.2,
        max_rto: float = 120.0,
        clock_granularity: float = 0.001,
    ) -> None:
        if not 0 <= min_rto <= max_rto:
            raise ValueError(f"need 0 <= min_rto <= max_rto, got {min_rto} and {max_rto}")
        if initial_rto <= 0 or clock_granularity < 0:
            raise ValueError("initial_rto must be positive and clock_granularity not negative")
        self.initial_rto = initial_rto
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.clock_granularity = clock_granularity
        self.backoffs = 0
        """Consecutive :meth:`backoff` calls since the last valid sample or :meth:`reset_backoff`;
        the connection compares it with its retry limit (Linux's ``tcp_retries2``)."""
        self._srtt = _NONE
        self._rttvar = _NONE
        self._min_rtt = _NONE

    @property
    def srtt(self) -> float | None:
        """Smoothed RTT in seconds, ``None`` until the first sample."""
        return self._srtt if self._srtt >= 0 else None

    @property
    def rttvar(self) -> float | None:
        """RTT variation in seconds, ``None`` until the first sample."""
        return self._rttvar if self._rttvar >= 0 else None

    @property
    def min_rtt(self) -> float | None:
        """The smallest sample seen (not windowed), ``None`` until the first sample."""
        return self._min_rtt if self._min_rtt >= 0 else None

    def sampled(self) -> bool:
        """Whether a sample came yet (SRTT exists). This and :meth:`smoothed` are what the
        connection calls: methods of a typed object are C calls, properties lookups by name."""
        return self._srtt >= 0

    def smoothed(self) -> float:
        """SRTT in seconds; meaningful once :meth:`sampled`."""
        return self._srtt

    @property
    def rto(self) -> float:
        """:meth:`timeout`."""
        return self.timeout()

    def timeout(self) -> float:
        """The current retransmission timeout in seconds, backoff included (RFC 6298 §2, §5.5).

        Always within ``[min_rto, max_rto]``. (The connection calls this; :attr:`rto` is the same
        for readers: a method of a typed object is a C call in the compiled build.)
        """
        base = self.initial_rto if self._srtt < 0 else self._srtt + max(self.clock_granularity, _K * self._rttvar)
        base = min(max(base, self.min_rto), self.max_rto)
        if self.backoffs:
            base = min(base * 2.0 ** min(self.backoffs, _MAX_SHIFT), self.max_rto)
        return base

    def sample(self, rtt: float) -> None:
        """Feed one RTT measurement (seconds) and end any backoff (RFC 6298 §2.2–§2.3, §5 Karn).

        The caller applies Karn's rule (see the module docstring): no samples from ACKs of
        retransmitted segments unless the RTT comes from a timestamp echo.
        """
        if rtt < 0:
            raise ValueError(f"negative RTT sample {rtt}")
        srtt = self._srtt
        if srtt < 0:
            self._srtt = rtt
            self._rttvar = rtt / 2
        else:
            self._rttvar = (1 - _BETA) * self._rttvar + _BETA * abs(srtt - rtt)
            self._srtt = (1 - _ALPHA) * srtt + _ALPHA * rtt
        if self._min_rtt < 0 or rtt < self._min_rtt:
            self._min_rtt = rtt
        self.backoffs = 0

    def backoff(self) -> float:
        """The retransmission timer expired: double the RTO (RFC 6298 §5.5), capped at ``max_rto``.

        Returns the new :attr:`rto`, for re-arming the timer (§5.6).
        """
        self.backoffs += 1
        return self.rto

    def reset_backoff(self) -> None:
        """Drop the backoff multiplier, e.g. when new data is acknowledged without a sample."""
        self.backoffs = 0

    def __repr__(self) -> str:
        return (
            f"RttEstimator(srtt={self.srtt}, rttvar={self.rttvar}, min_rtt={self.min_rtt}, "
            f"rto={self.rto}, backoffs={self.backoffs})"
        )
