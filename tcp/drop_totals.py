"""Per-connection counters summed for the layer's stats: a connection, its receive buffer and
its SACK scoreboard count what they discard in their own ``drops`` and a connection its events in
``stats`` (made on first use), which die with them; the layer folds them into one Counter when a
connection closes and adds the live ones when asked, so an attack's segments show up by name in
``TcpLayer.counters()``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

__all__ = ["connection_drops", "connection_stats", "retire", "retire_stats"]


def _add(total: Counter[str], owner: object, attr: str) -> None:
    counter = getattr(owner, attr, None)  # the private field: reading .drops would make one
    if counter:
        # Counter.update's own sum, spelled with dict's get: update() is interpreted Python
        # (~5,000 instructions for the one or two counts a connection usually has, callgrind).
        for name, n in counter.items():
            total[name] = dict.get(total, name, 0) + n


def retire(total: Counter[str], conn: object) -> None:
    """Fold one closing connection's drops (and its buffers' and scoreboard's) into ``total``."""
    _add(total, conn, "_drops")
    rb = getattr(conn, "rcvbuf", None)
    if rb is not None:
        _add(total, rb, "_drops")
    sb = getattr(conn, "_scoreboard", None)
    if sb is not None:
        _add(total, sb, "_drops")


def connection_drops(connections: Iterable[object], retired: Counter[str]) -> dict[str, int]:
    """Drops of every live connection plus those already retired."""
    return _live_plus_retired(connections, retired, retire)


def retire_stats(total: Counter[str], conn: object) -> None:
    """Fold one closing connection's event counts (challenge ACKs, clamped MSS, probes …) and its
    SACK scoreboard's (``sack_reneging``, ``dsack``, ``sack_stale``) into ``total``."""
    _add(total, conn, "_stats")
    received = getattr(conn, "_bytes_received", 0)  # not folded into _stats yet (Connection.stats)
    if received:
        total["bytes_received"] += received
    sb = getattr(conn, "_scoreboard", None)
    if sb is not None:
        _add(total, sb, "_stats")


def connection_stats(connections: Iterable[object], retired: Counter[str]) -> dict[str, int]:
    """Event counts of every live connection plus those already retired."""
    return _live_plus_retired(connections, retired, retire_stats)


def _live_plus_retired(
    connections: Iterable[object], retired: Counter[str], fold: Callable[[Counter[str], object], None]
) -> dict[str, int]:
    total: Counter[str] = Counter(retired)
    for conn in connections:
        fold(total, conn)
    return dict(total)
