"""Packetdrill-style scenario harness: one sans-I/O stack (IPStack + TcpLayer, as
``aiostack.stack.Stack`` builds them, without the reactor) driven on a virtual clock.

A scenario is a script of events, one line each::

    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options=SYN_OPTIONS)                  # the peer's SYN at t=0
    h.expect("S.", seq=0, ack=1, options=dict(mss=1460, ...))  # our SYN-ACK
    h.expect_within(2.0, "S.", seq=0, after=1.0)               # not ACKed: resent after 1 s
    h.inject(".", seq=1, ack=1)
    conn = h.accept()

- **Sequence numbers are relative**, as packetdrill's: in ``inject`` the peer's ``seq`` counts
  from the peer's ISN (:attr:`Scenario.peer_isn`) and ``ack`` from our ISS (:attr:`Scenario.iss`);
  in ``expect`` it is the other way round. ``raw=True`` takes and gives absolute numbers. Our
  ISS is fixed by the harness (it replaces the layer's ISN generator), so a scenario can put it
  anywhere, e.g. just below 2**32 to test wraparound. SACK blocks are relative too.
- **Segments are crafted and checked with dpkt**, independently of ``tcp/segment.py``: options
  are built here from a dict (or a list, for odd layouts) and parsed here from what the stack
  sent, and every transmitted frame's IPv4 and TCP checksums are verified.
- **Time is virtual.** :meth:`Scenario.advance` runs the stack's one timer wheel from deadline to
  deadline (``IPStack.next_deadline``), so a timer fires at exactly its deadline and the time a
  retransmission took is exact (no wall clock anywhere). ``expect_within(bound, ...)`` advances
  until a segment appears and checks how long it took (``after=``).
- **Timestamps**: our TSval clock is ``now`` in milliseconds (the harness sets the secret
  per-peer offset to 0); the peer's clock, :meth:`Scenario.peer_ts`, starts at 5000 ms. Once a
  handshake has negotiated timestamps, ``inject`` adds the peer's TS option (TSval = its clock,
  TSecr = the last TSval we sent) unless the scenario gives options or ``ts`` itself.
"""

from __future__ import annotations

import struct
from typing import Any

import dpkt

from aiostack.drivers.buffers import PacketPool
from aiostack.ip import ipv4
from aiostack.ip.stack import IPStack
from aiostack.tcp.config import TcpConfig
from aiostack.tcp.connection import SYNCHRONIZED, Connection, State
from aiostack.tcp.isn import IsnGenerator
from aiostack.tcp.layer import Listener, TcpLayer

__all__ = [
    "ANY",
    "LOCAL_IP",
    "LOCAL_PORT",
    "MASK",
    "PEER_IP",
    "PEER_PORT",
    "SYNCHRONIZED_STATES",
    "SYN_OPTIONS",
    "T0",
    "Out",
    "Scenario",
    "State",
    "icmp_frame",
    "inject_frame",
    "snd_nxt_in",
    "tcp_frame",
    "to_state",
]

MASK = 0xFFFFFFFF
T0 = 1000.0
"""Virtual time at the start of every scenario; ``Scenario.t`` counts from here."""
LOCAL_IP = "10.0.0.2"
PEER_IP = "10.0.0.1"
LOCAL_MAC = bytes.fromhex("020000000002")
PEER_MAC = bytes.fromhex("020000000001")
LOCAL_PORT = 8080
PEER_PORT = 50000
PEER_TS0 = 5000
"""The peer's TSval clock at T0 (milliseconds)."""


class _Any:
    """Matches anything (packetdrill's ``*``)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()

SYN_OPTIONS: dict[str, Any] = {"mss": 1460, "sack_perm": True, "ts": (PEER_TS0, 0), "wscale": 7}
"""What a Linux peer puts in its SYN: <mss 1460,sackOK,TS val 5000 ecr 0,nop,wscale 7>."""

# Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018) — spelled out here, not imported, so the
# harness checks the stack's encoder against an independent reading of the RFCs.
_EOL, _NOP, _MSS, _WS, _SACK_PERM, _SACK, _TS = 0, 1, 2, 3, 4, 5, 8

_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40, "W": 0x80}


def flags_to_bits(flags: str) -> int:
    bits = 0
    for ch in flags:
        bits |= _FLAG_BITS[ch]
    return bits


def bits_to_flags(bits: int) -> str:
    """tcpdump's order: ``S.``, ``F.``, ``FP.``, ``R.``, ``P.``."""
    return "".join(ch for ch in "FSRPUEW" if bits & _FLAG_BITS[ch]) + ("." if bits & 0x10 else "")


# == options: building (for inject) and parsing (for expect) ======================================
def build_options(options: dict[str, Any] | list[Any] | bytes | None, *, iss: int = 0) -> bytes:
    """Option bytes for a crafted segment, padded with zeros (EOL) to a multiple of 4.

    A dict is laid out the way Linux does (mss; sackOK+TS, or NOP NOP TS, or NOP NOP sackOK;
    NOP wscale; NOP NOP SACK), with keys ``mss``, ``sack_perm``, ``ts`` = (val, ecr), ``wscale``,
    ``sack`` = [(left, right), ...] relative to ``iss``. A list gives the exact layout: items
    ``"nop"``, ``"eol"``, ``("mss", n)``, ``("wscale", n)``, ``"sack_perm"``, ``("ts", v, e)``,
    ``("sack", [(l, r)])``, ``("raw", b"...")``. Bytes are used as they are (padded).
    """
    if options is None:
        return b""
    if isinstance(options, bytes | bytearray):
        out = bytes(options)
    elif isinstance(options, dict):
        items: list[Any] = []
        if "mss" in options:
            items.append(("mss", options["mss"]))
        ts = options.get("ts")
        if options.get("sack_perm") and ts is not None:
            items += ["sack_perm", ("ts", *ts)]
        elif ts is not None:
            items += ["nop", "nop", ("ts", *ts)]
        elif options.get("sack_perm"):
            items += ["nop", "nop", "sack_perm"]
        if "wscale" in options:
            items += ["nop", ("wscale", options["wscale"])]
        if options.get("sack"):
            items += ["nop", "nop", ("sack", options["sack"])]
        unknown = set(options) - {"mss", "ts", "sack_perm", "wscale", "sack"}
        if unknown:
            raise ValueError(f"unknown option keys {unknown}")
        return build_options(items, iss=iss)
    else:
        out = b""
        for item in options:
            if item == "nop":
                out += bytes([_NOP])
            elif item == "eol":
                out += bytes([_EOL])
            elif item == "sack_perm":
                out += bytes([_SACK_PERM, 2])
            elif item[0] == "mss":
                out += struct.pack("!BBH", _MSS, 4, item[1])
            elif item[0] == "wscale":
                out += bytes([_WS, 3, item[1]])
            elif item[0] == "ts":
                out += struct.pack("!BBII", _TS, 10, item[1] & MASK, item[2] & MASK)
            elif item[0] == "sack":
                blocks = item[1]
                out += bytes([_SACK, 2 + 8 * len(blocks)])
                for left, right in blocks:
                    out += struct.pack("!II", (iss + left) & MASK, (iss + right) & MASK)
            elif item[0] == "raw":
                out += item[1]
            else:
                raise ValueError(f"unknown option item {item!r}")
    return out + b"\0" * (-len(out) % 4)


def parse_options(raw: bytes) -> tuple[dict[str, Any], list[int]]:
    """(options by name, the kinds in the order they appear, NOPs included) of what we sent.

    Strict, because the stack must send well-formed options: any malformed layout fails the test.
    """
    opts: dict[str, Any] = {}
    kinds: list[int] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        kinds.append(kind)
        if kind == _EOL:
            assert not any(raw[i:]), f"bytes after EOL in {raw.hex()}"
            break
        if kind == _NOP:
            i += 1
            continue
        length = raw[i + 1]
        body = raw[i + 2 : i + length]
        assert length >= 2 and i + length <= len(raw), f"malformed option at {i} in {raw.hex()}"
        if kind == _MSS:
            assert length == 4
            opts["mss"] = struct.unpack("!H", body)[0]
        elif kind == _WS:
            assert length == 3
            opts["wscale"] = body[0]
        elif kind == _SACK_PERM:
            assert length == 2
            opts["sack_perm"] = True
        elif kind == _TS:
            assert length == 10
            opts["ts"] = struct.unpack("!II", body)
        elif kind == _SACK:
            assert (length - 2) % 8 == 0 and length > 2
            words = struct.unpack(f"!{(length - 2) // 4}I", body)
            opts["sack"] = list(zip(words[::2], words[1::2], strict=True))
        else:
            raise AssertionError(f"the stack sent an unknown option kind {kind}")
        i += length
    return opts, kinds


# == what the stack sent ===========================================================================
class Out:
    """One segment the stack transmitted, parsed with dpkt; numbers relative as in ``expect``."""

    def __init__(self, tcp: dpkt.tcp.TCP, h: Scenario) -> None:
        self.tcp = tcp
        self.flags = bits_to_flags(tcp.flags)
        self.raw_seq = tcp.seq
        self.raw_ack = tcp.ack
        self.seq = (tcp.seq - h.iss) & MASK
        self.ack = (tcp.ack - h.peer_isn) & MASK if tcp.flags & 0x10 else tcp.ack
        """Relative to the peer's ISN when the ACK bit is set; the raw field otherwise."""
        self.win = tcp.win
        self.sport = tcp.sport
        self.dport = tcp.dport
        self.options, self.kinds = parse_options(bytes(tcp.opts))
        self.payload = bytes(tcp.data)
        self.time = h.t
        self.elapsed = 0.0
        """For ``expect_within``: how long the stack took to send it."""
        self.sack = [((a - h.peer_isn) & MASK, (b - h.peer_isn) & MASK) for a, b in self.options.get("sack", [])]

    @property
    def ts(self) -> tuple[int, int] | None:
        return self.options.get("ts")

    def __repr__(self) -> str:
        return (
            f"<Out t={self.time:.3f} {self.sport}>{self.dport} [{self.flags}] seq {self.seq} ack {self.ack}"
            f" win {self.win} len {len(self.payload)} {self.options}>"
        )


def _pseudo_sum(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, 6, length)


# == the harness ===================================================================================
class Scenario:
    """One stack, one interface (10.0.0.2/24), one peer (10.0.0.1, ARP entry static)."""

    def __init__(
        self,
        *,
        iss: int = 1_000_000,
        peer_isn: int = 2_000_000,
        mtu: int = 1500,
        seed: int = 1,
        local_port: int = LOCAL_PORT,
        peer_port: int = PEER_PORT,
        **config: Any,
    ) -> None:
        self.iss = iss & MASK
        self.peer_isn = peer_isn & MASK
        self.local_port = local_port
        self.peer_port = peer_port
        self.now = T0
        self.pool = PacketPool(count=2048)
        self.ip = IPStack(self.pool, self.now, seed=seed)
        self.iface = self.ip.add_interface("scn0", LOCAL_MAC, f"{LOCAL_IP}/24", mtu=mtu)
        self.iface.arp.add_static(ipv4.aton(PEER_IP), PEER_MAC)
        self.config = TcpConfig(**config)
        self.tcp = TcpLayer(self.ip, config=self.config, secret=b"fixed")
        self.tcp.isn = _FixedIsn(self)  # type: ignore[assignment]
        self.listener: Listener | None = None
        self.conn: Connection | None = None
        self.ts_auto = False
        """Add the peer's TS option to every injected segment (set once TS is negotiated)."""
        self.last_tsval = 0
        """The TSval of the last segment we sent: what the peer echoes."""
        self.peer_win = 65535
        """Default window field of injected segments (other than SYNs, which give their own)."""

    # -- time -----------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        """Virtual time since the start of the scenario."""
        return self.now - T0

    def peer_ts(self) -> int:
        """The peer's TSval clock: 1 ms ticks from :data:`PEER_TS0`."""
        return PEER_TS0 + round(self.t * 1000)

    def our_ts(self) -> int:
        """What our TSval is now (our clock is ``now`` in ms, with a zero per-peer offset)."""
        return int(self.now * 1000) & MASK

    def _run(self, target: float, *, stop_on_tx: bool = False) -> bool:
        """Fire every timer due up to ``target``, each at its own deadline; stop early (True) once
        something is transmitted if ``stop_on_tx``."""
        for _ in range(1_000_000):
            if stop_on_tx and self.iface.tx:
                return True
            deadline = self.ip.next_deadline()
            if deadline is None or deadline > target:
                break
            if deadline > self.now:
                self.now = deadline
            self.ip.advance(self.now)
        else:  # pragma: no cover - a timer re-arming itself at the same instant forever
            raise AssertionError("timers never settle")
        if stop_on_tx and self.iface.tx:
            return True
        if target > self.now:
            self.now = target
        self.ip.advance(self.now)
        return bool(stop_on_tx and self.iface.tx)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, firing timers as they fall due."""
        self._run(self.now + seconds)

    def at(self, t: float) -> None:
        """Advance to ``t`` seconds after the start of the scenario (packetdrill's ``+t``)."""
        assert t >= self.t - 1e-9, f"time runs forwards: at({t}) when t={self.t}"
        self._run(T0 + t)

    # -- the peer's segments --------------------------------------------------------------------
    def frame(
        self,
        flags: str,
        *,
        seq: int = 1,
        ack: int | None = None,
        win: int | None = None,
        options: dict[str, Any] | list[Any] | bytes | None = None,
        ts: tuple[int, int] | bool | None = None,
        payload: bytes = b"",
        raw: bool = False,
        doff: int | None = None,
        sport: int | None = None,
        dport: int | None = None,
        urp: int = 0,
        bad_checksum: bool = False,
    ) -> bytes:
        """The Ethernet frame of a segment from the peer (see :meth:`inject`)."""
        bits = flags_to_bits(flags)
        if raw:
            abs_seq = seq & MASK
            abs_ack = (ack or 0) & MASK
        else:
            abs_seq = (self.peer_isn + seq) & MASK
            abs_ack = (self.iss + ack) & MASK if ack is not None else 0
        if ack is None and bits & 0x10:
            raise ValueError("an ACK needs an ack number")
        if isinstance(options, dict) and ts not in (None, False, True):
            options = {**options, "ts": ts}
        elif options is None and ts is not False and (ts is not None or (self.ts_auto and not bits & 0x02)):
            options = {"ts": ts if isinstance(ts, tuple) else (self.peer_ts(), self.last_tsval)}
        opts = build_options(options, iss=self.iss)
        if win is None:
            win = 65535 if bits & 0x02 else self.peer_win
        tcp = dpkt.tcp.TCP(
            sport=self.peer_port if sport is None else sport,
            dport=self.local_port if dport is None else dport,
            seq=abs_seq,
            ack=abs_ack,
            flags=bits,
            win=win,
            urp=urp,
            opts=opts,
            data=payload,
        )
        tcp.off = doff if doff is not None else 5 + len(opts) // 4
        packet = dpkt.ip.IP(
            src=ipv4.aton(PEER_IP).to_bytes(4, "big"),
            dst=ipv4.aton(LOCAL_IP).to_bytes(4, "big"),
            p=6,
            ttl=64,
            id=1,
            data=tcp,
        )
        packet.len = 20 + len(bytes(tcp))
        data = bytes(packet)  # dpkt fills in both checksums
        if bad_checksum:
            data = data[:36] + bytes([data[36] ^ 0xFF]) + data[37:]
        return bytes(dpkt.ethernet.Ethernet(dst=LOCAL_MAC, src=PEER_MAC, type=0x0800, data=data))

    def inject(self, flags: str, *, at: float | None = None, **kw: Any) -> None:
        """The peer sends a segment: ``flags`` as tcpdump prints them ("S", "S.", ".", "P.",
        "F.", "R", "R."); ``seq`` relative to the peer's ISN (default 1), ``ack`` relative to our
        ISS; ``win`` the raw window field; ``options`` a dict/list/bytes (see
        :func:`build_options`); ``ts`` = (val, ecr) or False; ``payload``; ``doff`` overrides the
        data offset (words); ``sport``/``dport``; ``at`` = scenario time to deliver it at."""
        if at is not None:
            self.at(at)
        else:
            self.ip.advance(self.now)
        pkt = self.pool.packet_from(self.frame(flags, **kw))
        self.ip.receive(self.iface, pkt, self.now)
        pkt.free()

    # -- the stack's segments -------------------------------------------------------------------
    def _pop(self) -> Out:
        pkt = self.iface.tx.pop(0)
        frame = pkt.tobytes()
        pkt.free()
        eth = dpkt.ethernet.Ethernet(frame)
        assert eth.type == 0x0800 and eth.dst == PEER_MAC and eth.src == LOCAL_MAC, f"not IPv4 to the peer: {eth!r}"
        ip = eth.data
        assert isinstance(ip, dpkt.ip.IP) and ip.p == 6, f"not TCP: {ip!r}"
        raw_ip = frame[14:]
        hl = ip.hl * 4
        assert dpkt.in_cksum(raw_ip[:hl]) == 0, "bad IPv4 header checksum"
        assert ip.len == len(raw_ip), "IPv4 total length does not match the frame"
        seg = raw_ip[hl:]
        assert dpkt.in_cksum(_pseudo_sum(ip.src, ip.dst, len(seg)) + seg) == 0, "bad TCP checksum"
        assert ip.src == ipv4.aton(LOCAL_IP).to_bytes(4, "big")
        assert ip.dst == ipv4.aton(PEER_IP).to_bytes(4, "big")
        tcp = ip.data
        assert tcp.off >= 5 and tcp.off * 4 <= len(seg)
        out = Out(tcp, self)
        if out.ts is not None:
            self.last_tsval = out.ts[0]
        return out

    def sent(self) -> list[Out]:
        """Everything transmitted and not yet expected, in order (and forget it)."""
        out = []
        while self.iface.tx:
            out.append(self._pop())
        return out

    def expect(
        self,
        flags: str | None = None,
        *,
        seq: int | None = None,
        ack: int | None = None,
        win: int | None = None,
        payload: bytes | None = None,
        payload_len: int | None = None,
        options: dict[str, Any] | None = None,
        ts: tuple[int, int] | None = None,
        sack: list[tuple[int, int]] | None = None,
        kinds: list[int] | None = None,
        sport: int | None = None,
        dport: int | None = None,
        raw: bool = False,
    ) -> Out:
        """Take the next segment the stack sent and check the given fields (omitted = any).

        ``flags`` compares as a set of letters; ``seq`` is relative to our ISS and ``ack`` to the
        peer's ISN (absolute with ``raw``); ``options`` must name exactly the options present
        (values may be :data:`ANY`); ``ts`` checks only the TS option; ``sack`` the SACK blocks
        (relative to the peer's ISN); ``kinds`` the exact option layout; ``payload_len`` the payload
        length."""
        assert self.iface.tx, f"t={self.t:.3f}: expected a segment [{flags}] but the stack sent nothing"
        out = self._pop()
        where = f"t={self.t:.3f}: {out}"
        if flags is not None:
            assert sorted(out.flags) == sorted(flags), f"{where}: flags {out.flags!r}, expected {flags!r}"
        if seq is not None:
            got = out.raw_seq if raw else out.seq
            assert got == (seq & MASK if seq is not ANY else seq), f"{where}: seq {got}, expected {seq}"
        if ack is not None:
            got = out.raw_ack if raw else out.ack
            assert got == (ack & MASK if ack is not ANY else ack), f"{where}: ack {got}, expected {ack}"
        if win is not None:
            assert out.win == win, f"{where}: win {out.win}, expected {win}"
        if payload is not None:
            assert out.payload == payload, f"{where}: payload {out.payload[:40]!r}…, expected {payload[:40]!r}…"
        if payload_len is not None:
            assert len(out.payload) == payload_len, (
                f"{where}: payload length {len(out.payload)}, expected {payload_len}"
            )
        if options is not None:
            assert out.options == options, f"{where}: options {out.options}, expected {options}"
        if ts is not None:
            assert out.ts == ts, f"{where}: TS {out.ts}, expected {ts}"
        if sack is not None:
            assert out.sack == sack, f"{where}: SACK {out.sack}, expected {sack}"
        if kinds is not None:
            assert out.kinds == kinds, f"{where}: option layout {out.kinds}, expected {kinds}"
        if sport is not None:
            assert out.sport == sport, f"{where}: sport {out.sport}, expected {sport}"
        if dport is not None:
            assert out.dport == dport, f"{where}: dport {out.dport}, expected {dport}"
        return out

    def expect_nothing(self) -> None:
        """Nothing is waiting to be sent."""
        assert not self.iface.tx, f"t={self.t:.3f}: expected nothing, the stack sent {self.sent()}"

    def expect_within(self, bound: float, flags: str | None = None, *, after: float | None = None, **kw: Any) -> Out:
        """Advance the clock until the stack sends something (at most ``bound`` seconds; fails
        if it sends nothing), then check it as :meth:`expect` does. ``after`` checks the time it
        took (to the microsecond: the clock is virtual, timers fire at their exact deadlines);
        the result's ``elapsed`` has it too."""
        start = self.now
        assert self._run(start + bound, stop_on_tx=True), (
            f"t={self.t:.3f}: nothing sent within {bound} s (expected [{flags}])"
        )
        elapsed = self.now - start
        out = self.expect(flags, **kw)
        out.elapsed = elapsed
        if after is not None:
            assert abs(elapsed - after) < 1e-6, f"{out}: sent after {elapsed:.6f} s, expected {after} s"
        return out

    def expect_silence(self, seconds: float) -> None:
        """Nothing at all is sent for ``seconds`` (timers run)."""
        start = self.t
        sent = self._run(self.now + seconds, stop_on_tx=True)
        assert not sent, f"expected silence for {seconds} s from t={start:.3f}, got {self.sent()} at t={self.t:.3f}"

    # -- sockets --------------------------------------------------------------------------------
    def listen(self, port: int | None = None, backlog: int | None = None) -> Listener:
        self.listener = self.tcp.listen(0, port or self.local_port, backlog)
        return self.listener

    def accept(self) -> Connection:
        assert self.listener is not None
        conn = self.listener.accept()
        assert conn is not None, "nothing to accept"
        self.conn = conn
        return conn

    def connect(self, port: int | None = None, **kw: Any) -> Connection:
        """Active open from LOCAL_PORT to the peer (our SYN is queued for ``expect``)."""
        self.ip.advance(self.now)
        self.conn = self.tcp.connect(ipv4.aton(PEER_IP), port or self.peer_port, self.now, lport=self.local_port, **kw)
        return self.conn

    def send(self, data: bytes) -> int:
        assert self.conn is not None
        self.ip.advance(self.now)
        return self.conn.send(data, self.now)

    def recv(self, n: int = 1 << 20) -> bytes:
        assert self.conn is not None
        self.ip.advance(self.now)
        return self.conn.recv(n, self.now)

    def close(self) -> None:
        assert self.conn is not None
        self.ip.advance(self.now)
        self.conn.close(self.now)

    def shutdown(self) -> None:
        assert self.conn is not None
        self.ip.advance(self.now)
        self.conn.shutdown_write(self.now)

    def abort(self) -> None:
        assert self.conn is not None
        self.ip.advance(self.now)
        self.conn.abort(self.now)

    @property
    def state(self) -> State:
        assert self.conn is not None
        return self.conn.state

    # -- whole handshakes -----------------------------------------------------------------------
    def passive_open(
        self,
        *,
        options: dict[str, Any] | None = None,
        win: int = 65535,
        rtt: float = 0.0,
        backlog: int | None = None,
    ) -> Connection:
        """listen(); the peer's SYN (with ``options``, Linux's by default); our SYN-ACK; the
        peer's ACK ``rtt`` seconds later; accept(). Leaves the connection ESTABLISHED."""
        options = dict(SYN_OPTIONS) if options is None else options
        if "ts" in options:
            options["ts"] = (self.peer_ts(), 0)
        self.listen(backlog=backlog)
        self.inject("S", seq=0, win=win, options=options)
        synack = self.expect("S.", seq=0, ack=1)
        self.ts_auto = "ts" in options and synack.ts is not None
        self.advance(rtt)
        self.inject(".", seq=1, ack=1, win=win)
        conn = self.accept()
        assert conn.state == State.ESTABLISHED
        return conn

    def active_open(
        self,
        *,
        options: dict[str, Any] | None = None,
        win: int = 65535,
        rtt: float = 0.0,
        **connect_kw: Any,
    ) -> Connection:
        """connect(); our SYN; the peer's SYN-ACK ``rtt`` seconds later (``options``, Linux's by
        default, TS echoing ours); our ACK. Leaves the connection ESTABLISHED."""
        conn = self.connect(**connect_kw)
        syn = self.expect("S", seq=0, ack=0)
        self.advance(rtt)
        options = dict(SYN_OPTIONS) if options is None else options
        if "ts" in options:
            options["ts"] = (self.peer_ts(), syn.ts[0] if syn.ts else 0)
        self.inject("S.", seq=0, ack=1, win=win, options=options)
        ack = self.expect(".", seq=1, ack=1)
        self.ts_auto = ack.ts is not None
        assert conn.state == State.ESTABLISHED
        return conn


class _FixedIsn(IsnGenerator):
    """Stands in for the layer's RFC 6528 generator: the ISS the scenario chose, and a zero
    timestamp offset (our TSval is then ``now`` in milliseconds). A subclass: the layer's field
    is typed in the compiled build."""

    def __init__(self, h: Scenario) -> None:
        super().__init__(b"scenario")
        self.h = h

    def isn(self, now: float, laddr: int, lport: int, raddr: int, rport: int) -> int:
        return self.h.iss

    def ts_offset(self, laddr: int, raddr: int) -> int:
        return 0


# == putting a connection in a given state (issue 13's scenario files) ============================
def to_state(h: Scenario, state: State) -> int:
    """Drive ``h`` (a fresh Scenario) into ``state`` with Linux's SYN options and return RCV.NXT
    relative to the peer's ISN. Nothing is left waiting to be sent; ``h.conn`` is the connection.

    Passive opens for SYN-RECEIVED and the synchronized states (our FIN is SND.NXT = 1 where we
    closed), an active open for SYN-SENT; TIME-WAIT through FIN-WAIT-1, FIN-WAIT-2."""
    if state == State.SYN_SENT:
        h.connect()
        h.expect("S", seq=0)
        return 0
    if state == State.SYN_RECEIVED:
        h.listen()
        options = dict(SYN_OPTIONS)
        options["ts"] = (h.peer_ts(), 0)
        h.inject("S", seq=0, options=options)
        h.expect("S.", seq=0, ack=1)
        h.ts_auto = True
        h.conn = next(iter(h.tcp.connections.values()))
        return 1
    h.passive_open()
    if state == State.ESTABLISHED:
        return 1
    if state in (State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.TIME_WAIT):
        if state == State.FIN_WAIT_2:
            h.shutdown()  # not orphaned: no FIN-WAIT-2 timeout
        else:
            h.close()
        h.expect("F.", seq=1, ack=1)
        if state == State.FIN_WAIT_1:
            return 1
        if state == State.CLOSING:
            h.inject("F.", seq=1, ack=1)
            h.expect(".", seq=2, ack=2)
            return 2
        h.inject(".", seq=1, ack=2)
        if state == State.FIN_WAIT_2:
            return 1
        h.inject("F.", seq=1, ack=2)
        h.expect(".", seq=2, ack=2)
        return 2
    h.inject("F.", seq=1, ack=1)
    h.expect(".", seq=1, ack=2)
    if state == State.CLOSE_WAIT:
        return 2
    assert state == State.LAST_ACK, state
    h.close()
    h.expect("F.", seq=1, ack=2)
    return 2


def snd_nxt_in(state: State) -> int:
    """SND.NXT (relative to our ISS) after :func:`to_state`: 2 once our FIN is sent."""
    if state in (State.SYN_SENT, State.SYN_RECEIVED):
        return 1
    if state in (State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.TIME_WAIT, State.LAST_ACK):
        return 2
    return 1


SYNCHRONIZED_STATES = sorted(SYNCHRONIZED)
"""Every state :func:`to_state` reaches after the handshake."""


# == raw frames (for headers dpkt would not build) =================================================
def tcp_frame(h: Scenario, tcp: bytes) -> bytes:
    """An Ethernet/IPv4 frame from the peer carrying ``tcp`` as its IP payload, whatever those
    bytes are (a truncated header, a bad data offset), with the TCP checksum made right over
    them (so the layer's checksum check passes and its parser is what judges them)."""
    src = ipv4.aton(PEER_IP).to_bytes(4, "big")
    dst = ipv4.aton(LOCAL_IP).to_bytes(4, "big")
    if len(tcp) >= 18:
        tcp = tcp[:16] + b"\0\0" + tcp[18:]
        csum = dpkt.in_cksum(_pseudo_sum(src, dst, len(tcp)) + tcp)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    packet = dpkt.ip.IP(src=src, dst=dst, p=6, ttl=64, id=1, data=tcp)
    packet.len = 20 + len(tcp)
    return bytes(dpkt.ethernet.Ethernet(dst=LOCAL_MAC, src=PEER_MAC, type=0x0800, data=bytes(packet)))


def inject_frame(h: Scenario, frame: bytes) -> None:
    """Deliver a whole Ethernet frame to the stack now (see :func:`tcp_frame`)."""
    h.ip.advance(h.now)
    pkt = h.pool.packet_from(frame)
    h.ip.receive(h.iface, pkt, h.now)
    pkt.free()


def icmp_frame(h: Scenario, itype: int, code: int, seq: int, *, mtu: int = 0, quote_len: int = 8) -> bytes:
    """An ICMP error from the peer's side quoting one of our segments: our IPv4 header (10.0.0.2
    → 10.0.0.1, TCP) and ``quote_len`` bytes of a TCP header with our ports and ``seq`` (relative
    to our ISS). ``mtu`` is the next-hop MTU of a fragmentation-needed message (RFC 1191)."""
    local = ipv4.aton(LOCAL_IP).to_bytes(4, "big")
    peer = ipv4.aton(PEER_IP).to_bytes(4, "big")
    tcp = struct.pack("!HHII", h.local_port, h.peer_port, (h.iss + seq) & MASK, 0) + bytes(12)
    inner = dpkt.ip.IP(src=local, dst=peer, p=6, ttl=64, id=7, data=tcp)
    inner.len = 20 + 1460
    quoted = bytes(inner)[: 20 + quote_len]
    body = struct.pack("!BBHHH", itype, code, 0, 0, mtu) + quoted
    body = body[:2] + struct.pack("!H", dpkt.in_cksum(body)) + body[4:]
    packet = dpkt.ip.IP(src=peer, dst=local, p=1, ttl=64, id=2, data=body)
    packet.len = 20 + len(body)
    return bytes(dpkt.ethernet.Ethernet(dst=LOCAL_MAC, src=PEER_MAC, type=0x0800, data=bytes(packet)))
