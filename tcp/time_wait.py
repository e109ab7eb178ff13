"""Whether a SYN may reopen a connection that is in TIME-WAIT (RFC 6191 §2, RFC 9293 §3.10.7.4
note): a pure decision over the old incarnation's last sequence number and timestamp and the new
SYN's."""

from __future__ import annotations

from .seq import HALF, MASK

__all__ = ["syn_may_reopen"]


def syn_may_reopen(
    *,
    old_ts_ok: bool,
    old_ts_recent: int,
    old_rcv_nxt: int | None,
    syn_seq: int,
    syn_ts_val: int | None,
    timestamps_enabled: bool,
) -> bool:
    """RFC 6191 §2: decide on whether timestamps are in use by *both* incarnations.

    - The old incarnation used timestamps and the new one will (the SYN carries TSval and we
      offer timestamps): accept when TSval is greater than the last one seen (TS.Recent).
    - Otherwise (the old one had none, or the new SYN has none — a NAT mixing clients): accept
      when the SYN's sequence number is greater than the last one seen on the old incarnation,
      i.e. at or beyond its RCV.NXT.

    Anything else is an old duplicate SYN: the caller leaves TIME-WAIT alone (which answers it
    with an ACK, RFC 9293 §3.10.7.4, and the peer's RST then is ignored, RFC 1337).
    """
    new_ts = timestamps_enabled and syn_ts_val is not None
    if old_ts_ok and new_ts:
        return 0 < ((syn_ts_val - old_ts_recent) & MASK) < HALF  # type: ignore[operator]
    if old_rcv_nxt is None:
        return False
    return ((syn_seq - old_rcv_nxt) & MASK) < HALF
