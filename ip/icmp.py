"""ICMP for IPv4 (RFC 792) with the host rules of RFC 1122 §3.2.2 and a token-bucket rate limit
on the errors we generate (RFC 1812 §4.3.2.8; Linux's icmp_ratelimit works the same way)."""

from __future__ import annotations

import struct

from .ipv4 import OFFSET_MASK

ECHO_REPLY = 0
DEST_UNREACHABLE = 3
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12

# Destination Unreachable codes (RFC 792)
CODE_NET_UNREACHABLE = 0
CODE_HOST_UNREACHABLE = 1
CODE_PROTOCOL_UNREACHABLE = 2
CODE_PORT_UNREACHABLE = 3
CODE_FRAG_NEEDED = 4
# Time Exceeded codes
CODE_TTL_EXCEEDED = 0
CODE_REASSEMBLY_EXCEEDED = 1

ERROR_TYPES = frozenset({DEST_UNREACHABLE, 4, 5, TIME_EXCEEDED, PARAMETER_PROBLEM})
"""Types that are errors (RFC 1122 §3.2.2: never answer one of these with another error)."""

HEADER_LEN = 8
HEADER = struct.Struct("!BBHI")
ECHO = struct.Struct("!BBHHH")

MAX_QUOTE = 576 - 20 - HEADER_LEN
"""Quote as much of the offending datagram as fits a 576-byte reply (RFC 1812 §4.3.2.3)."""


PMTU_FLOOR = 552
"""The smallest path MTU a Fragmentation Needed message can set (Linux's ``min_pmtu``; RFC 1191
§3 leaves the floor to the host, RFC 8201 and RFC 5927 §7 warn that forged messages announcing
tiny MTUs are an attack): an MTU of 68, or 0 from a pre-RFC 1191 router, is raised to this, so a
forged message cannot shrink segments to nothing."""


def next_hop_mtu(view: bytes | bytearray | memoryview, l4: int) -> int:
    """The Next-Hop MTU of a Destination Unreachable, Fragmentation Needed (RFC 1191 §4: the low
    16 bits of the header's second word) whose ICMP header is at ``view[l4]``."""
    return (view[l4 + 6] << 8) | view[l4 + 7]


def path_mtu(reported: int, current: int, floor: int = PMTU_FLOOR) -> int:
    """The path MTU after a validated Fragmentation Needed announcing ``reported`` on a path of
    ``current``: never larger than ``current`` (RFC 1191 §6.3: an increase is only learnt by
    probing), never below ``floor`` (a reported 0 — RFC 1191 §5's old routers — or anything
    under the floor becomes the floor, as Linux's ``__ip_rt_update_pmtu`` does)."""
    return min(current, max(reported, floor))


def may_answer_with_error(quoted: bytes | bytearray | memoryview, link_broadcast: bool) -> bool:
    """RFC 1122 §3.2.2: no error about an ICMP error, a broadcast or multicast, a non-initial
    fragment, or a datagram whose source is not a unicast host. ``quoted`` starts at the IP header;
    the caller rules out the subnet's directed broadcast (it knows the prefix)."""
    if link_broadcast or len(quoted) < 20:
        return False
    frag = (quoted[6] << 8) | quoted[7]
    if frag & OFFSET_MASK:
        return False
    src_first = quoted[12]
    dst_first = quoted[16]
    if src_first == 0 or src_first == 127 or src_first >= 224 or dst_first >= 224:
        return False
    if quoted[9] == 1:  # ICMP: only errors about queries are allowed
        ihl = (quoted[0] & 0x0F) * 4
        if len(quoted) >= ihl + 1 and quoted[ihl] in ERROR_TYPES:
            return False
    return True


class RateLimiter:
    """A token bucket: ``rate`` tokens a second up to ``burst``. Time comes from the caller."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float = 1000.0, burst: float = 50.0) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = 0.0

    def allow(self, now: float) -> bool:
        elapsed = now - self.last
        self.last = now
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
