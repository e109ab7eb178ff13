"""The ingress filter: match-action rules on IPv4 frames, checked before any protocol work.

Rule syntax (``--filter RULE``, repeatable, or ``filter = [...]`` in the TOML file)::

    RULE    := ACTION MATCH*
    ACTION  := drop | pass | count
    MATCH   := src PREFIX | dst PREFIX | proto PROTO | sport PORTS | dport PORTS | flags FLAGS
    PREFIX  := A.B.C.D[/LEN]                       (no /LEN: the one address)
    PROTO   := tcp | udp | icmp | 0..255
    PORTS   := N | N-M                             (inclusive; TCP and UDP only)
    FLAGS   := FLAG[,FLAG]...   FLAG := [!]fin|syn|rst|psh|ack|urg|ece|cwr   (TCP only)

    drop src 10.99.0.0/16                  everything from that prefix
    drop proto tcp dport 8080 flags syn,!ack   new connections to port 8080 (SYN without ACK)
    count proto udp dport 5000-5999        count, and go on to the next rule
    pass src 10.77.0.7                     stop here, deliver

Every field a rule names must match (``!flag``: that flag clear). Rules are checked in order: the
first ``drop`` or ``pass`` that matches decides, a matching ``count`` counts and goes on; a frame
no deciding rule matched is delivered. Every matching rule counts the frame's packets and bytes
(bytes: 14 + the IPv4 total length, what the XDP program can count too). Only IPv4 frames can
match (ARP and the rest always pass); a later fragment carries no ports or flags, so a rule naming
them does not match it (the first fragment, which does, is enough: without it the datagram never
reassembles).

On the AF_XDP driver the rules are compiled into the XDP program (drivers/xdp_filter.py), so a
dropped frame never reaches user space; on every other driver :class:`FilterWrapper` runs the same
rules on each received burst, before the stack sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

from ..drivers.base import Driver, DriverWrapper
from ..drivers.buffers import Packet

__all__ = ["FilterWrapper", "Rule", "RuleSet", "parse_rule", "parse_rules"]

ACTIONS = ("drop", "pass", "count")
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20, "ece": 0x40,
             "cwr": 0x80}


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule (the fields :class:`aiostack.drivers.xdp_filter.FilterRule` names)."""

    text: str
    action: str
    src: tuple[int, int] | None = None
    dst: tuple[int, int] | None = None
    proto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    flags_set: int = 0
    flags_clear: int = 0


def _prefix(word: str) -> tuple[int, int]:
    try:
        net = IPv4Network(word, strict=False)
    except ValueError as e:
        raise ValueError(f"{word!r} is not an IPv4 address or prefix ({e})") from None
    return int(net.network_address), net.prefixlen


def _ports(word: str) -> tuple[int, int]:
    lo_s, sep, hi_s = word.partition("-")
    try:
        lo = int(lo_s, 10)
        hi = int(hi_s, 10) if sep else lo
    except ValueError:
        raise ValueError(f"{word!r} is not a port or port range (N or N-M)") from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or lo > hi:
        raise ValueError(f"{word!r} is not a port range within 0-65535, low to high")
    return lo, hi


def _proto(word: str) -> int:
    if word in PROTOCOLS:
        return PROTOCOLS[word]
    try:
        n = int(word, 10)
    except ValueError:
        raise ValueError(f"{word!r} is not a protocol (tcp, udp, icmp or 0-255)") from None
    if not 0 <= n <= 255:
        raise ValueError(f"protocol {n} is out of range 0-255")
    return n


def _flags(word: str) -> tuple[int, int]:
    set_, clear = 0, 0
    for item in word.split(","):
        neg = item.startswith("!")
        name = item[1:] if neg else item
        bit = TCP_FLAGS.get(name.lower())
        if bit is None:
            raise ValueError(f"{item!r} is not a TCP flag ({', '.join(TCP_FLAGS)}, each may start with '!')")
        if bit & (set_ | clear):
            raise ValueError(f"flag {name!r} is given twice")
        if neg:
            clear |= bit
        else:
            set_ |= bit
    return set_, clear


def parse_rule(text: str) -> Rule:
    """Parse one rule; ``ValueError`` naming the rule and what is wrong with it."""
    try:
        return _parse(text)
    except ValueError as e:
        raise ValueError(f"filter rule {text!r}: {e}") from None


def _parse(text: str) -> Rule:
    words = text.split()
    if not words:
        raise ValueError("empty rule (expected ACTION [MATCH...], e.g. 'drop src 10.0.0.0/8')")
    action = words[0].lower()
    if action not in ACTIONS:
        raise ValueError(f"{words[0]!r} is not an action ({', '.join(ACTIONS)})")
    fields: dict[str, object] = {}
    i = 1
    parsers = {"src": _prefix, "dst": _prefix, "proto": _proto, "sport": _ports, "dport": _ports, "flags": _flags}
    while i < len(words):
        key = words[i].lower()
        if key not in parsers:
            raise ValueError(f"{words[i]!r} is not a match (src, dst, proto, sport, dport, flags)")
        if key in fields:
            raise ValueError(f"{key!r} is given twice")
        if i + 1 >= len(words):
            raise ValueError(f"{key!r} needs a value")
        fields[key] = parsers[key](words[i + 1])
        i += 2
    proto = fields.get("proto")
    if ("sport" in fields or "dport" in fields) and proto not in (None, 6, 17):
        raise ValueError("ports match only TCP and UDP (proto tcp or udp)")
    if "flags" in fields and proto not in (None, 6):
        raise ValueError("flags match only TCP (proto tcp)")
    flags_set, flags_clear = fields.pop("flags", (0, 0))  # type: ignore[misc]
    return Rule(text=" ".join(words), action=action, flags_set=flags_set, flags_clear=flags_clear,
                **fields)  # type: ignore[arg-type]


def parse_rules(texts: Sequence[str]) -> list[Rule]:
    return [parse_rule(t) for t in texts]


class RuleSet:
    """Rules with their counters, matched in software (:meth:`drops`)."""

    __slots__ = ("_compiled", "bytes", "packets", "rules")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self.packets = [0] * len(self.rules)
        self.bytes = [0] * len(self.rules)
        # (action code, src net, src mask, dst net, dst mask, proto, sport lo, hi, dport lo, hi,
        #  flag mask, flags wanted, needs ports, needs flags); -1: field not matched
        self._compiled = []
        for r in self.rules:
            smask = (0xFFFFFFFF << (32 - r.src[1])) & 0xFFFFFFFF if r.src else 0
            dmask = (0xFFFFFFFF << (32 - r.dst[1])) & 0xFFFFFFFF if r.dst else 0
            self._compiled.append((
                ACTIONS.index(r.action),
                r.src[0] & smask if r.src else 0, smask,
                r.dst[0] & dmask if r.dst else 0, dmask,
                r.proto if r.proto is not None else -1,
                *(r.sport or (-1, -1)), *(r.dport or (-1, -1)),
                r.flags_set | r.flags_clear, r.flags_set,
                r.sport is not None or r.dport is not None, bool(r.flags_set | r.flags_clear),
            ))

    def drops(self, buf: bytearray, start: int, end: int) -> bool:
        """Whether the frame ``buf[start:end]`` is dropped; counts every rule it matches."""
        if end - start < 34 or buf[start + 12] != 0x08 or buf[start + 13] != 0:
            return False
        ip = start + 14
        ihl = (buf[ip] & 0x0F) << 2
        if ihl < 20:
            return False
        saddr = int.from_bytes(buf[ip + 12 : ip + 16], "big")
        daddr = int.from_bytes(buf[ip + 16 : ip + 20], "big")
        proto = buf[ip + 9]
        length = 14 + ((buf[ip + 2] << 8) | buf[ip + 3])
        sport = dport = tflags = 0
        has_ports = has_flags = False
        if not ((buf[ip + 6] & 0x1F) or buf[ip + 7]) and proto in (6, 17):
            l4 = ip + ihl
            if l4 + 4 <= end:
                sport = (buf[l4] << 8) | buf[l4 + 1]
                dport = (buf[l4 + 2] << 8) | buf[l4 + 3]
                has_ports = True
                if proto == 6 and l4 + 14 <= end:
                    tflags = buf[l4 + 13]
                    has_flags = True
        for i, (act, snet, smask, dnet, dmask, rproto, slo, shi, dlo, dhi, fmask, fwant, need_ports,
                need_flags) in enumerate(self._compiled):
            if saddr & smask != snet or daddr & dmask != dnet:
                continue
            if rproto >= 0 and proto != rproto:
                continue
            if need_ports and (
                not has_ports or (slo >= 0 and not slo <= sport <= shi) or (dlo >= 0 and not dlo <= dport <= dhi)
            ):
                continue
            if need_flags and (not has_flags or tflags & fmask != fwant):
                continue
            self.packets[i] += 1
            self.bytes[i] += length
            if act == 0:
                return True
            if act == 1:
                return False
        return False

    def counters(self) -> dict[str, dict[str, int]]:
        return {r.text: {"packets": self.packets[i], "bytes": self.bytes[i]} for i, r in enumerate(self.rules)}


class FilterWrapper(DriverWrapper):
    """Runs a :class:`RuleSet` on every frame a driver receives, before the stack sees it: a
    dropped frame is freed at once and counted (``filtered`` in the queue's drops, and in its
    rule's counters, shown under ``filter`` in the driver's stats)."""

    def __init__(self, inner: Driver, rules: Sequence[Rule]) -> None:
        super().__init__(inner)
        self.name = inner.name  # the same device, seen through the filter
        self.ruleset = RuleSet(rules)

    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        pkts = self.inner.rx_burst(queue, max_count)
        if not pkts:
            return pkts
        drops = self.ruleset.drops
        kept: list[Packet] = []
        dropped = 0
        for pkt in pkts:
            if drops(pkt.buf, pkt.start, pkt.end):
                pkt.free()
                dropped += 1
            else:
                kept.append(pkt)
        if dropped:
            self.inner.counters(queue).drop("filtered", dropped)
        return kept

    def stats(self) -> dict[str, object]:
        out = self.inner.stats()
        out["filter"] = self.ruleset.counters()
        return out

    def __getattr__(self, name: str) -> object:
        # take_queue, close_others, queue_index, iface ...: the wrapped driver's
        return getattr(self.inner, name)
