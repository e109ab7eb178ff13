"""Pluggable TCP congestion control: NewReno (RFC 5681, RFC 6582) and CUBIC (RFC 9438).

Every algorithm is a :class:`CongestionControl` — one small object per connection holding ``cwnd``
and ``ssthresh`` in bytes, driven by the connection's hooks (``on_ack``, ``on_loss``,
``on_recovery_exit``, ``on_rto``, ``on_idle``, ``set_mss``); :mod:`.base` documents the contract
and the split of work with the connection. Pick one by name::

    cc = create("cubic", mss=1460, now=now)
"""

from __future__ import annotations

from typing import Any

from .base import INFINITE_SSTHRESH, INITIAL_WINDOW, CongestionControl
from .cubic import Cubic
from .newreno import NewReno

__all__ = ["ALGORITHMS", "INFINITE_SSTHRESH", "INITIAL_WINDOW", "CongestionControl", "Cubic", "NewReno", "create"]

ALGORITHMS: dict[str, type[CongestionControl]] = {"newreno": NewReno, "cubic": Cubic}
"""The algorithms :func:`create` knows, by name."""


def create(name: str, mss: int, now: float, **kw: Any) -> CongestionControl:
    """A new controller of algorithm ``name`` (``ALGORITHMS``); ``kw`` goes to its constructor
    (``initial_window``, and e.g. ``fast_convergence`` for CUBIC).

    Raises :class:`ValueError` naming the known algorithms when ``name`` is not one of them.
    """
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise ValueError(f"unknown congestion control algorithm {name!r}; known: {known}") from None
    return cls(mss, now, **kw)
