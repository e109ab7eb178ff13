"""Receive-side sanity checks of an IPv4 header beyond its syntax: martian sources, TTL 0 and
malformed options (Linux's ``ip_route_input_slow`` martian checks and ``ip_options_compile``).

:func:`check` returns the drop reason (a counter name) or None; :mod:`aiostack.ip.stack` calls it
once per received datagram, after :func:`aiostack.ip.ipv4.parse_into` validated the lengths and
the checksum. The common case — no options, TTL > 0, an ordinary unicast source — costs a few
comparisons.

Reasons:

- ``ipv4_bad_source``: a source no host may use (RFC 1122 §3.2.1.3, RFC 5735): 0.0.0.0/8
  ("this network", only while bootstrapping, which we do not accept), loopback 127/8 (RFC 1122
  §3.2.1.3 (g): must not appear outside a host), multicast 224/4 and reserved 240/4 including the
  limited broadcast (RFC 1112 §4, RFC 919), or the receiving subnet's directed broadcast.
- ``ipv4_land_source``: a source that is one of our own addresses arriving from the link — the
  LAND attack (CVE-1999-0016) makes a SYN from the victim to itself; Linux drops it as a martian
  (``fib_validate_source``: a local address is not a valid source on a non-loopback device).
- TTL 0 is **counted, not dropped** (``ipv4_rx_ttl_zero`` in stats): no conforming sender emits
  it (RFC 1122 §3.2.1.7 forbids sending it) and no router forwards it (RFC 1812 §5.3.1), so only a
  crafted frame carries one — but the same section says a host "MUST NOT discard a datagram just
  because it was received with TTL less than 2", Linux delivers it too, and it is harmless to a
  host (TTL matters to forwarding only). The counter shows the attack without breaking the rule.
- ``ipv4_bad_options``: options that do not parse (RFC 791 §3.1: an option other than EOL/NOP
  has a length byte ≥ 2 that stays inside the header) — Linux answers a parameter problem and
  drops (``ip_options_compile``); we drop, counted.
- ``ipv4_source_route``: loose or strict source routing (options 131, 137): Linux's
  ``accept_source_route=0`` default, since RFC 7126 §4.3/4.4 recommends dropping them (they let a
  spoofer steer our replies back to itself).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from .ipv4 import is_unicast_source

if TYPE_CHECKING:
    from .datagram import Datagram

OPT_EOL = 0
OPT_NOP = 1
OPT_LSRR = 131
OPT_SSRR = 137
HEADER_LEN = 20


def check(
    hdr: Datagram,
    buf: bytes | bytearray | memoryview,
    off: int,
    broadcast: int,
    local_addrs: list[int],
    stats: Counter[str],
) -> str | None:
    """The drop reason for the datagram whose header ``hdr`` starts at ``buf[off]``, received
    on an interface whose directed broadcast address is ``broadcast``, by a stack whose own
    addresses are ``local_addrs``; None when it may be delivered (``stats`` counts what is noted
    but delivered)."""
    src = hdr.src
    if not is_unicast_source(src) or src == broadcast:
        return "ipv4_bad_source"
    for addr in local_addrs:
        if src == addr:
            return "ipv4_land_source"
    if hdr.ttl == 0:
        stats["ipv4_rx_ttl_zero"] += 1
    if hdr.header_len > HEADER_LEN:
        return options_problem(buf, off + HEADER_LEN, off + hdr.header_len)
    return None


def options_problem(buf: bytes | bytearray | memoryview, pos: int, end: int) -> str | None:
    """Walk the options in ``buf[pos:end]`` (RFC 791 §3.1): the drop reason, or None when they
    parse and none asks for source routing. Options we do not act on are ignored once they parse
    (RFC 1122 §3.2.1.8)."""
    while pos < end:
        kind = buf[pos]
        if kind == OPT_EOL:
            return None
        if kind == OPT_NOP:
            pos += 1
            continue
        if pos + 1 >= end:
            return "ipv4_bad_options"
        length = buf[pos + 1]
        if length < 2 or pos + length > end:
            return "ipv4_bad_options"
        if kind in (OPT_LSRR, OPT_SSRR):
            return "ipv4_source_route"
        pos += length
    return None
