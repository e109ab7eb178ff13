"""The TCP connection state machine (RFC 9293), sans-I/O.

A :class:`Connection` takes segments (``segment_arrives``), application calls (``send``,
``recv``, ``close`` …) and time (its timers live on the reactor's one :class:`TimerWheel`), and
answers through its :class:`Host`: segments to transmit and "something changed" notifications for
the socket layer. It never reads a clock or touches a device.

Structure follows RFC 9293 §3.10 (event processing) section by section; the extensions are:
MSS/window scale/SACK-permitted/timestamps negotiation (RFC 9293 §3.7.1, RFC 7323, RFC 2018),
RTO per RFC 6298 with Karn's rule and backoff, NewReno fast recovery (RFC 6582) or SACK-based
recovery (RFC 6675) with RACK-TLP loss detection (RFC 8985, :mod:`.rack`), pluggable congestion
control (RFC 5681, RFC 9438), delayed ACKs
(RFC 9293 §3.8.6.3), Nagle (§3.7.4), receiver and sender SWS avoidance (§3.8.6.2), the persist
timer (§3.8.6.1), keep-alives (§3.8.4), TIME-WAIT with RFC 1337 protection, PAWS (RFC 7323 §5)
and RFC 5961's challenge ACKs.
"""

from __future__ import annotations

import enum
import errno
from collections import Counter
from typing import TYPE_CHECKING

from ..counts import Counts, fold
from . import segment as wire
from .config import TcpConfig
from .congestion import create as create_congestion
from .rack import Rack, pto
from .readiness import POLLERR, POLLHUP, POLLRDHUP, READABLE, WRITABLE
from .receive_buffer import ReceiveBuffer
from .rtt import RttEstimator
from .sack import Scoreboard
from .send_buffer import SendBuffer
from .seq import HALF, MASK, seq_ge, seq_gt, seq_le, seq_lt

if TYPE_CHECKING:
    from ..ip.timers import Timer, TimerWheel
    from .congestion.base import CongestionControl
    from .segment import Segment

FIN = wire.FIN
SYN = wire.SYN
RST = wire.RST
PSH = wire.PSH
ACK = wire.ACK

DEFAULT_PEER_MSS = 536
"""RFC 9293 §3.7.1: without an MSS option, assume 536 (IPv4)."""
TS_HEADER = 12
"""A timestamps option costs 12 bytes of every segment (NOP, NOP, TS)."""
SACK_OPTION_MAX = 36
"""The most a SACK option takes from a segment's payload room (NOP, NOP, kind, length and four
blocks; three with timestamps)."""
PAWS_IDLE = 24 * 24 * 3600.0
"""RFC 7323 §5.5: TS.Recent older than 24 days is no longer trusted."""

_SHARED_INTS: dict[int, int] = {}


def _shared(value: int) -> int:
    """One int object per distinct MSS value (a few hundred at most), shared by every connection
    that negotiated it, instead of one per connection."""
    return _SHARED_INTS.setdefault(value, value)


class State(enum.IntEnum):
    CLOSED = 0
    LISTEN = 1
    SYN_SENT = 2
    SYN_RECEIVED = 3
    ESTABLISHED = 4
    FIN_WAIT_1 = 5
    FIN_WAIT_2 = 6
    CLOSE_WAIT = 7
    CLOSING = 8
    LAST_ACK = 9
    TIME_WAIT = 10


# The states by name, as the control bits above: in Python 3.11 a member read off its class
# (``State.ESTABLISHED``) goes through EnumType's __getattr__ hook, ~700 instructions each time,
# and the established path tests the state several times per segment.
(CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK,
 TIME_WAIT) = State

_NOT_PREDICTED = FIN | SYN | RST | ACK | wire.URG
"""Flags header prediction looks at: of these, only ACK may be set (PSH may be anything)."""
# Copies the compiled build holds as C constants (connection.pxd): a module attribute is a lookup
# by name, and arithmetic on it boxes.
_ACK = ACK
_TS_HEADER = TS_HEADER
_SACK_OPTION_MAX = SACK_OPTION_MAX

SYNCHRONIZED = frozenset(
    {
        ESTABLISHED,
        FIN_WAIT_1,
        FIN_WAIT_2,
        CLOSE_WAIT,
        CLOSING,
        LAST_ACK,
        TIME_WAIT,
    }
)
CAN_RECEIVE_DATA = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})
CAN_SEND = frozenset({ESTABLISHED, CLOSE_WAIT})
_MAY_QUEUE = CAN_SEND | {SYN_SENT, SYN_RECEIVED}
"""States in which the application may queue data (it goes out once established)."""
CAN_PROBE = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK})
"""States that may have data or a FIN outstanding: where a tail loss probe makes sense."""
KEEP_SACKS_ON_RTO = False
"""RFC 6675 §5.1 / RFC 2018 §8: after an RTO the SACK information is expunged (the receiver may
have reneged) unless this is set (RFC 6675 Errata 1610: keep it given robust reneging tests)."""


class Host:
    """What a connection needs from the TCP layer around it (:class:`~aiostack.tcp.layer.TcpLayer`
    subclasses it). A base class rather than a protocol so that, in the compiled build, a
    connection reaches its host's methods through a C vtable, not a Python attribute lookup."""

    __slots__ = ("_header_predicted", "_stats")

    def __init__(self) -> None:
        self._stats: Counter[str] = Counts()
        self._header_predicted = 0  # per segment: a C field, folded into stats on read

    @property
    def stats(self) -> Counter[str]:
        """The layer's counters: a connection adds the events worth seeing across connections
        (retransmitted segments, tail loss probes) besides its own ``stats``."""
        self._fold_counts()
        return self._stats

    def _fold_counts(self) -> None:
        """Add the events counted in integer fields to ``_stats`` (aiostack/counts.py's fold)."""
        fold(self._stats, "header_predicted", self._header_predicted)
        self._header_predicted = 0

    def transmit(
        self,
        conn: Connection,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        options: bytes,
        offset: int,
        length: int,
        ts_val: int = -1,
        ts_ecr: int = 0,
    ) -> None:
        """Send a segment; its payload is ``length`` bytes of the send buffer from ``offset``
        (relative to the buffer's first byte) — 0 and 0 for none. ``ts_val`` ≥ 0: the header
        carries the timestamp option (``ts_val``, ``ts_ecr``) before ``options``
        (:func:`~aiostack.tcp.segment.write_header`)."""
        raise NotImplementedError

    def notify(self, conn: Connection) -> None:
        """The connection has something for its application (data, space, state, error)."""
        raise NotImplementedError

    def ack_later(self, conn: Connection) -> bool:
        """The connection owes an ACK after a segment arrived: True if the host will have it
        call :meth:`Connection.ack_if_owed` once the current receive burst is processed (one
        ACK for several coalesced segments, or none when the application's reply carries it);
        False to send it now."""
        raise NotImplementedError

    def ack_soon(self, conn: Connection) -> bool:
        """The application read and the window update is worth sending: True if the host will
        have it call :meth:`Connection.ack_if_owed` at the end of its next iteration (after
        the application had a chance to reply, which carries the update); False to send now."""
        raise NotImplementedError

    def established(self, conn: Connection) -> None:
        """A passive connection completed its handshake (it goes to the listener's accept queue)."""
        raise NotImplementedError

    def closed(self, conn: Connection) -> None:
        """The connection reached CLOSED: forget it."""
        raise NotImplementedError


class Connection:
    """One TCP connection. Addresses are 32-bit integers.

    Memory: a reactor may hold a million of these, so ``__slots__`` (in the compiled build, the
    C struct that ``connection.pxd`` declares), and the parts an idle connection never uses — the
    congestion controller, the SACK scoreboard, RACK's records, the ``stats``/``drops``
    counters — are made on first use by their properties.
    """

    __slots__ = (
        "__weakref__", "_bytes_received", "_cc", "_challenge_time", "_challenge_tokens", "_delack_deadline",
        "_delack_timer", "_drops",
        "_fin_processed", "_idle_timer", "_rack", "_reo_deadline", "_rtx_deadline", "_rtx_is_pto", "_rtx_timer",
        "_scoreboard", "_stats", "ack_now", "ack_pending", "config", "data_seq", "dupacks", "error", "fin_queued",
        "fin_seq", "gso_max", "high_rxt", "host", "in_recovery", "irs", "iss", "keepalive", "keepalive_probes",
        "last_ack_sent", "last_rtt", "last_rx", "last_tx", "listener", "local_addr", "local_mss", "local_port",
        "max_snd_wnd", "nodelay", "orphaned", "peer_mss", "persist_backoff", "persist_probes", "rcv_adv", "rcv_wscale",
        "rcvbuf", "read_closed", "recover", "recovery_inflation", "remote_addr", "remote_port", "rescue_rxt", "retries",
        "rto_recovery", "rtt", "rtt_seq", "rtt_time", "rtt_time_syn", "sack_ok", "segs_in", "segs_out", "snd_max",
        "snd_mss", "snd_nxt", "snd_una", "snd_wl1", "snd_wl2", "snd_wnd", "snd_wscale", "sndbuf", "soft_error", "state",
        "timers", "tlp_end", "tlp_in_recovery", "tlp_is_retrans", "ts_offset", "ts_ok", "ts_recent", "ts_recent_time",
        "tx_route", "user", "wscale_ok"
    )

    def __init__(
        self,
        host: Host,
        timers: TimerWheel,
        config: TcpConfig,
        local_addr: int,
        local_port: int,
        remote_addr: int,
        remote_port: int,
        *,
        iss: int,
        now: float,
        mss: int,
        ts_offset: int = 0,
    ) -> None:
        self.host = host
        self.timers = timers
        self.config = config
        self.local_addr = local_addr
        self.local_port = local_port
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.state = CLOSED
        self.segs_in = 0
        self.segs_out = 0
        """Segments received and sent (Linux's tcpi_segs_in/out); other events count in ``stats``."""
        self._cc: CongestionControl | None = None
        self._scoreboard: Scoreboard | None = None
        self._rack: Rack | None = None
        self._stats: Counter[str] | None = None
        self._bytes_received = 0  # per data segment: a C field, folded into stats on read
        self._drops: Counter[str] | None = None

        # -- send sequence space (RFC 9293 §3.3.1)
        self.iss = iss
        self.snd_una = iss
        self.snd_nxt = iss
        self.snd_max = iss
        """The highest sequence number sent so far (SND.NXT rewinds on a timeout; this does not)."""
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.sndbuf = SendBuffer(config.sndbuf, getattr(host, "memory", None))  # tcp/memory.py
        self.data_seq = (iss + 1) & MASK
        """Sequence number of the first byte in ``sndbuf``."""
        self.fin_queued = False
        self.fin_seq = 0
        """Sequence number our FIN takes, once queued (after the last byte of data)."""

        # -- receive sequence space
        self.irs = 0
        self.rcvbuf: ReceiveBuffer | None = None
        self.rcv_adv = 0
        """The right edge of the window we last advertised (never moved left: RFC 9293 §3.8.6.2.2)."""
        self.read_closed = False

        # -- options
        self.local_mss = mss
        """The MSS we announce: our MTU minus IPv4 and TCP headers."""
        self.peer_mss = DEFAULT_PEER_MSS
        self.snd_mss = min(mss, DEFAULT_PEER_MSS)
        """Payload bytes per segment we send: the smaller MSS, less the timestamp option."""
        self.tx_route: tuple | None = None
        """The host's cached route for this connection's segments (see TcpLayer.transmit)."""
        self.gso_max = 0
        """With segmentation offload, the most payload one segment handed to the device may
        carry (it cuts it into ``snd_mss`` pieces); 0 without (set by the host)."""
        self.rcv_wscale = self._choose_wscale(config.rcvbuf) if config.window_scaling else 0
        self.snd_wscale = 0
        self.wscale_ok = False
        self.sack_ok = False
        self.ts_ok = False
        self.ts_offset = ts_offset
        self.ts_recent = 0
        self.ts_recent_time = 0.0
        self.last_ack_sent = 0

        # -- timers and estimators
        self.rtt = RttEstimator(initial_rto=config.initial_rto, min_rto=config.min_rto, max_rto=config.max_rto)
        self.rtt_seq: int | None = None
        self.rtt_time = 0.0
        self.rtt_time_syn = now
        self.last_rtt: float | None = None
        """When our SYN (or SYN-ACK) first went out: the handshake's RTT sample (Karn: only if
        it was not retransmitted)."""
        self._fin_processed = False
        self._rtx_timer: Timer | None = None
        """The one wheel timer behind the retransmission timer, the TLP probe timer and RACK's
        reordering timer: aimed lazily at the earliest of their deadlines."""
        self._rtx_deadline = 0.0
        self._rtx_is_pto = False
        """The retransmission deadline is a TLP probe timeout (RFC 8985 §7.2: the PTO stands in
        for the RTO while a probe is allowed), not an RTO."""
        self._reo_deadline = 0.0
        """RACK's reordering timer (RFC 8985 §6.2 step 5), 0 when not armed."""
        self._delack_timer: Timer | None = None
        self._delack_deadline = 0.0
        """When the owed ACK must go, 0 when none is owed. The wheel timer is left running when
        an ACK goes out early (the usual case: the reply carries it) and re-aimed when it fires,
        so a request/response stream does not schedule and cancel a timer per segment."""
        self._idle_timer: Timer | None = None
        """Persist, keep-alive, FIN-WAIT-2 and TIME-WAIT share this one (they never overlap)."""
        self.retries = 0
        self.persist_backoff = 0
        self.persist_probes = 0
        """Zero-window probes sent with no ACK from the peer since (Linux icsk_probes_out)."""
        self.keepalive_probes = 0
        self.last_rx = now
        self.last_tx = now

        # -- recovery (RFC 6582 / RFC 6675)
        self.dupacks = 0
        self.in_recovery = False
        self.recover = iss
        self.high_rxt = iss
        self.rescue_rxt: int | None = None
        """RFC 6675 RescueRxt: RecoveryPoint of the recovery that sent a rule (4) rescue."""
        self.recovery_inflation = 0
        self.rto_recovery = False
        """After an RTO with SACK: retransmitting what RACK marked lost until SND.UNA passes the
        RecoveryPoint; no fast recovery starts meanwhile (RFC 6675 §5.1)."""
        self.tlp_end: int | None = None
        """TLP.end_seq (RFC 8985 §7): SND.NXT when the outstanding probe went, None if none."""
        self.tlp_is_retrans = False
        self.tlp_in_recovery = False
        """The outstanding probe went during a recovery, whose own reduction covers what it finds."""

        # -- ACK policy
        self.ack_pending = 0
        """Full-sized segments received since our last ACK (RFC 9293 §3.8.6.3: ACK every second)."""
        self.ack_now = False

        # -- RFC 5961 challenge ACK rate limit (token bucket, per connection)
        self._challenge_tokens = config.challenge_ack_per_second
        self._challenge_time = now

        # -- application-facing
        self.nodelay = config.nodelay
        self.keepalive = False
        self.error = 0
        """Pending errno for the application (ECONNRESET, ETIMEDOUT, ECONNREFUSED …)."""
        self.soft_error = 0
        """The last ICMP-reported problem (RFC 1122 §4.2.3.9): reported if the connection times out."""
        self.orphaned = False
        """The application closed the socket; the connection lives on only to finish the close."""
        self.listener: object | None = None
        self.user: object | None = None

    # == sub-objects made on first use =============================================================
    # An idle connection never needs these; each is made by its property at first use and let go
    # again on entering TIME-WAIT (a million idle connections are the sizing case).

    @property
    def cc(self) -> CongestionControl:
        """The congestion controller, started from the current SMSS and the connection's
        creation time: the state an eagerly made one would be in (its ``set_mss`` calls rescale
        the initial window exactly; no other hook runs before the first use)."""
        return self._congestion()

    def _congestion(self) -> CongestionControl:
        """:attr:`cc`, as the established path reads it (a C call in the compiled build, where
        a property is a lookup by name)."""
        cc = self._cc
        if cc is None:
            cfg = self.config
            cc = self._cc = create_congestion(
                cfg.congestion, self.snd_mss, self.rtt_time_syn, initial_window=cfg.initial_window
            )
        return cc

    @property
    def scoreboard(self) -> Scoreboard:
        """The RFC 6675 scoreboard of SACKed ranges; used when SACK is on."""
        return self._sack_board()

    def _sack_board(self) -> Scoreboard:
        """:attr:`scoreboard`, as the established path reads it (a C call in the compiled build)."""
        sb = self._scoreboard
        if sb is None:
            sb = self._scoreboard = Scoreboard()
        return sb

    @property
    def rack(self) -> Rack:
        """RACK-TLP (RFC 8985): transmit records and loss detection; used when SACK is on."""
        return self._loss_detection()

    def _loss_detection(self) -> Rack:
        """:attr:`rack`, as the established path reads it (see :meth:`_congestion`)."""
        rack = self._rack
        if rack is None:
            rack = self._rack = Rack()
        return rack

    @property
    def stats(self) -> Counter[str]:
        """Events of this connection worth counting (retransmissions, probes, cuts …)."""
        stats = self._event_counts()
        fold(stats, "bytes_received", self._bytes_received)
        self._bytes_received = 0
        return stats

    def _event_counts(self) -> Counter[str]:
        """:attr:`stats`, made on first use; a method: a C call from the established path."""
        stats = self._stats
        if stats is None:
            stats = self._stats = Counts()
        return stats

    @property
    def drops(self) -> Counter[str]:
        """Segments this connection discarded, by reason."""
        drops = self._drops
        if drops is None:
            drops = self._drops = Counts()
        return drops

    def _cc_mss_changed(self) -> None:
        """SMSS changed: tell the congestion controller, if it has been made yet."""
        if self._cc is not None:
            self._cc.set_mss(self.snd_mss)

    # == helpers ==============================================================================
    @staticmethod
    def _choose_wscale(rcvbuf: int) -> int:
        shift = 0
        while (rcvbuf >> shift) > 0xFFFF and shift < 14:
            shift += 1
        return shift

    def _ts_now(self, now: float) -> int:
        """TSval: a millisecond clock (RFC 7323 §5.4) plus this connection's offset (§7.1)."""
        ms = int(now * 1000)
        return (ms + self.ts_offset) & MASK

    def _flight(self) -> int:
        return (self.snd_nxt - self.snd_una) & MASK

    def _data_end(self) -> int:
        return (self.data_seq + len(self.sndbuf)) & MASK

    @property
    def established_like(self) -> bool:
        return self.state in SYNCHRONIZED

    def __repr__(self) -> str:
        from ..ip.ipv4 import ntoa

        return (
            f"<Connection {ntoa(self.local_addr)}:{self.local_port} -> "
            f"{ntoa(self.remote_addr)}:{self.remote_port} {self.state.name}>"
        )

    # == options ===============================================================================
    def _syn_options(self, now: float, *, synack: bool) -> bytes:
        cfg = self.config
        if synack:
            return wire.encode_options(
                mss=self.local_mss,
                wscale=self.rcv_wscale if self.wscale_ok else None,
                sack_permitted=self.sack_ok,
                timestamps=(self._ts_now(now), self.ts_recent) if self.ts_ok else None,
            )
        return wire.encode_options(
            mss=self.local_mss,
            wscale=self.rcv_wscale if cfg.window_scaling else None,
            sack_permitted=cfg.sack,
            timestamps=(self._ts_now(now), 0) if cfg.timestamps else None,
        )

    def _options(self) -> bytes:
        """The options of a segment other than a SYN, besides the timestamps (which the host
        writes straight into the header, ``ts_val`` of :meth:`Host.transmit`): SACK blocks while
        out-of-order data waits (RFC 2018 §4), as many as fit beside the timestamps (3) or
        alone (4); none otherwise."""
        rb = self.rcvbuf
        if self.sack_ok and rb is not None and rb.holds_ooo():
            return wire.encode_options(sack_blocks=tuple(rb.sack_blocks(3 if self.ts_ok else 4)))
        return b""

    def _negotiate(self, seg: Segment) -> None:
        """Adopt what the peer's SYN offers (RFC 9293 §3.7.1, RFC 7323 §1.3, RFC 2018 §2)."""
        cfg = self.config
        if seg.mss is not None:
            self.peer_mss = _shared(max(seg.mss, cfg.min_mss))
            if seg.mss < cfg.min_mss:
                self.stats["tcp_mss_clamped_to_floor"] += 1
        self.wscale_ok = cfg.window_scaling and seg.wscale is not None
        if self.wscale_ok:
            self.snd_wscale = seg.wscale or 0
        else:
            self.snd_wscale = 0
            self.rcv_wscale = 0
        self.sack_ok = cfg.sack and seg.sack_permitted
        self.ts_ok = cfg.timestamps and seg.ts_val is not None
        self.snd_mss = _shared(min(self.peer_mss, self.local_mss) - (TS_HEADER if self.ts_ok else 0))
        self._cc_mss_changed()

    def _open_receive(self, irs: int) -> None:
        self.irs = irs
        self.rcvbuf = ReceiveBuffer(
            (irs + 1) & MASK, self.config.rcvbuf, max_ooo_segments=self.config.ooo_max_segments
        )
        self.rcvbuf.mem = self.sndbuf.mem  # the reactor's buffer bounds (tcp/memory.py)
        self.rcv_adv = (irs + 1) & MASK

    # == window advertisement =================================================================
    def _window_field(self, syn: bool = False) -> int:
        """The window to put in a segment, with receiver SWS avoidance (RFC 9293 §3.8.6.2.2):
        the right edge moves right only by at least min(rcvbuf/2, MSS), and never left."""
        rb = self.rcvbuf
        if rb is None:
            return min(self.config.rcvbuf, 0xFFFF)
        rcv_nxt = rb.rcv_nxt
        available = rb.free_window()
        new_edge = (rcv_nxt + available) & MASK
        old_edge = self.rcv_adv
        threshold = min(rb.capacity // 2, self.local_mss)  # the buffer's size (config.rcvbuf), typed
        if seq_lt(new_edge, old_edge) or ((new_edge - old_edge) & MASK) < threshold:
            available = (old_edge - rcv_nxt) & MASK if seq_gt(old_edge, rcv_nxt) else 0
        if syn:
            field = min(available, 0xFFFF)  # RFC 7323 §2.2: a SYN's window is never scaled
            self.rcv_adv = (rcv_nxt + field) & MASK
            return field
        shift = self.rcv_wscale
        field = min(available >> shift, 0xFFFF)
        edge = (rcv_nxt + (field << shift)) & MASK
        if seq_gt(edge, self.rcv_adv):
            self.rcv_adv = edge
        return field

    # == transmitting =========================================================================
    def _emit(self, seq: int, flags: int, now: float, offset: int = 0, length: int = 0) -> None:
        rb = self.rcvbuf
        ack = rb.rcv_nxt if rb is not None else 0
        if rb is not None:
            flags |= ACK
        syn = bool(flags & SYN)
        ts_val = -1  # a SYN's timestamps are among its options
        if syn:
            window = self._window_field(syn=True)
            options = self._syn_options(now, synack=bool(flags & ACK))
        else:
            window = self._window_field()
            options = self._options()
            if self.ts_ok:
                ts_val = self._ts_now(now)
        self.host.transmit(self, seq, ack, flags, window, options, offset, length, ts_val, self.ts_recent)
        self.segs_out += 1
        self.last_tx = now
        if flags & ACK:
            self.last_ack_sent = ack
            self.ack_pending = 0
            self.ack_now = False
            self._delack_deadline = 0.0

    def send_ack(self, now: float) -> None:
        self._emit(self.snd_nxt, ACK, now)

    def _send_rst(self, now: float) -> None:
        # RFC 9293 §3.10.5 says <SEQ=SND.NXT>; a peer whose window is shut (or smaller than what
        # is in flight) drops a RST beyond its window silently (RFC 5961 §3.2), so, as Linux's
        # tcp_acceptable_seq, never send it beyond the right edge of the peer's window.
        seq = self.snd_nxt
        edge = (self.snd_una + self.snd_wnd) & MASK
        if self.rcvbuf is not None and seq_gt(seq, edge):
            seq = edge
        self._emit(seq, RST | (ACK if self.rcvbuf is not None else 0), now)

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §3.2/§4.2/§5.2: answer a suspicious segment with an ACK, rate-limited."""
        rate = self.config.challenge_ack_per_second
        self._challenge_tokens = min(rate, self._challenge_tokens + (now - self._challenge_time) * rate)
        self._challenge_time = now
        if self._challenge_tokens >= 1.0:
            self._challenge_tokens -= 1.0
            self.stats["challenge_acks"] += 1
            self.send_ack(now)
        else:
            self.stats["challenge_acks_rate_limited"] += 1

    def _cur_mss(self) -> int:
        """Payload bytes that fit in a segment sent now: SMSS less the SACK blocks our options
        carry while we hold out-of-order data (RFC 6691: the MSS bounds data *and* options
        beyond the fixed header; Linux's tcp_current_mss). In a two-way transfer with loss the
        data segments carry those blocks, and a full SMSS of payload would make the frame
        larger than the MTU."""
        rb = self.rcvbuf
        if rb is None or not self.sack_ok or not rb.holds_ooo():
            return self.snd_mss
        blocks = len(rb.sack_blocks(3 if self.ts_ok else 4))
        if not blocks:
            return self.snd_mss
        return max(self.snd_mss - (4 + 8 * blocks), 1)

    def _send_segment(self, seq: int, length: int, now: float, fin: bool = False, arm: bool = True) -> int:
        """Send ``length`` bytes of data starting at ``seq`` (and the FIN after them if ``fin``);
        returns the sequence number after what was sent. ``length`` is cut to :meth:`_cur_mss`
        (the FIN then waits) should a caller have offered more. ``arm=False`` leaves the
        retransmission timer to the caller (a burst arms it once, after its last segment)."""
        rb = self.rcvbuf
        if length > self.snd_mss or (rb is not None and rb.holds_ooo() and self.sack_ok):
            cur = self._cur_mss()
            if cur == self.snd_mss and self.gso_max > cur:
                cur = self.gso_max // cur * cur  # TSO: the device cuts it into snd_mss pieces
            if length > cur:
                length = cur
                fin = False
                self.stats["segments_cut_to_mss"] += 1
        flags = ACK | (PSH if length and ((seq + length) & MASK) == self._data_end() else 0) | (FIN if fin else 0)
        offset = (seq - self.data_seq) & MASK
        self._emit(seq, flags, now, offset, length)
        end = (seq + length + (1 if fin else 0)) & MASK
        if self.sack_ok:
            self._loss_detection().on_transmit(seq, end, now)
        if seq_gt(end, self.snd_max):
            self.snd_max = end
            if self.rtt_seq is None and not self.ts_ok:
                self.rtt_seq = seq
                self.rtt_time = now
        else:
            self.stats["retransmitted_segments"] += 1
            self.host.stats["retransmitted_segments"] += 1
            if self.rtt_seq is not None and seq_le(seq, self.rtt_seq):
                self.rtt_seq = None  # Karn's rule (RFC 6298 §3): no sample from a retransmission
        if arm:
            self._arm_rtx(now)
        return end

    def output(self, now: float, arriving: bool = False) -> None:
        """Send what the windows allow (the heart of tcp_output): new data, the FIN, and an ACK
        if one is owed and nothing else carried it. ``arriving``: called at the end of segment
        processing — the host may take over an owed ACK (:meth:`Host.ack_later`)."""
        state = self.state
        if state not in SYNCHRONIZED and state != SYN_RECEIVED:
            return
        sent = False
        if state in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK):
            sent = self._output_data(now)
        if not sent and (self.ack_now or self.ack_pending >= 2):
            if arriving and self.host.ack_later(self):
                return
            self.send_ack(now)

    def ack_if_owed(self, now: float) -> None:
        """Send the ACK the host took over with :meth:`Host.ack_later`, unless something sent
        since carried it."""
        if (self.ack_now or self.ack_pending >= 2) and self.state in SYNCHRONIZED and self.rcvbuf is not None:
            self.send_ack(now)

    def _send_window(self) -> int:
        """Bytes we may still put in flight: min(peer window, congestion window) − in flight.
        During SACK recovery (fast or after an RTO) "in flight" is RFC 6675's pipe, counted with
        RACK's lost marks (:attr:`.rack.Rack.pipe`)."""
        if self.sack_ok and (self.in_recovery or self.rto_recovery):
            return max(0, min(self.snd_wnd, self._congestion().cwnd) - self._loss_detection().pipe)
        cwnd = self._congestion().cwnd + self.recovery_inflation
        return max(0, min(self.snd_wnd, cwnd) - self._flight())

    def _output_data(self, now: float) -> bool:
        recovering = self.sack_ok and (self.in_recovery or self.rto_recovery)
        if not recovering and not self.fin_queued and self.snd_nxt == (self.data_seq + len(self.sndbuf)) & MASK:
            return False  # nothing unsent (every ACK that only acknowledges comes here)
        sent = burst = False
        mss = self._cur_mss()
        if recovering:
            sent = self._sack_retransmit(now)
        # TSO: segments of up to gso_max (whole MSS multiples) for the device to cut, outside
        # recovery and while our SACK blocks leave the MSS whole (every piece repeats the header).
        seg_max = mss
        if self.gso_max > mss and mss == self.snd_mss and not recovering:
            seg_max = self.gso_max // mss * mss
        while True:
            data_end = self._data_end()
            unsent = (data_end - self.snd_nxt) & MASK if seq_lt(self.snd_nxt, data_end) else 0
            window = self._send_window()
            if recovering:
                # The pipe may be far below the flight: new data must still fit the peer's window.
                window = min(window, self._rwnd_room())
            fin_due = self.fin_queued and seq_le(self.snd_nxt, self.fin_seq) and unsent <= seg_max
            if unsent == 0:
                if fin_due and self.snd_nxt == self.fin_seq and (window > 0 or self._flight() == 0):
                    self._send_segment(self.snd_nxt, 0, now, fin=True)
                    self.snd_nxt = (self.snd_nxt + 1) & MASK
                    sent = True
                break
            length = min(unsent, seg_max, window)
            if length <= 0:
                if self.snd_wnd == 0 and self._flight() == 0:
                    self._arm_persist(now)
                break
            if length < mss and not self._may_send_short(length, unsent, now):
                if self._flight() == 0:
                    # Nothing in flight, so no ACK will come to open the window: RFC 9293
                    # §3.8.6.2.1 (4)'s override timeout, on the persist timer as it suggests.
                    self._arm_persist(now)
                break
            fin = fin_due and length == unsent and ((self.snd_nxt + length) & MASK) == self.fin_seq
            self.snd_nxt = self._send_segment(self.snd_nxt, length, now, fin=fin, arm=False)
            burst = sent = True
            if fin:
                break
        if burst:
            self._arm_rtx(now)
        return sent

    def _rwnd_room(self) -> int:
        """Bytes of new data the peer's window still has room for (right edge − SND.NXT)."""
        room = (self.snd_una + self.snd_wnd - self.snd_nxt) & MASK
        return 0 if room >= HALF else room

    def _may_send_short(self, length: int, unsent: int, now: float) -> bool:
        """Sender SWS avoidance and Nagle (RFC 9293 §3.8.6.2.1, §3.7.4): a less-than-full segment
        goes out only if it carries all queued data and either Nagle is off or nothing is
        unacknowledged, or if it is at least half the largest window the peer offered."""
        if length == unsent and (self.nodelay or self._flight() == 0 or self.fin_queued):
            return True
        return bool(self.max_snd_wnd and length >= self.max_snd_wnd // 2)

    def _sack_retransmit(self, now: float) -> bool:
        """RFC 6675 §5 step (C): while the pipe has room, send what NextSeg names, with RACK's
        lost marks (RFC 8985) as rule (1)'s IsLost:

        1. the lowest segment RACK (or IsLost) marked lost and not yet retransmitted — this
           includes lost retransmissions, which RFC 6675 alone never resends;
        2. new data, if there is any and the peer's window has room: left to the caller
           (:meth:`_output_data`), so rule (3) yields to it (``next_seg(new_data=...)``);
        3. an unSACKed hole below the highest SACKed byte that is not deemed lost;
        4. the rescue retransmission: one segment holding the highest unSACKed byte, once per
           recovery (RescueRxt), when rules (1)-(3) have nothing.

        Each retransmission is at most one SMSS."""
        sent = False
        mss = self._cur_mss()
        rack = self._loss_detection()
        board = self.scoreboard
        # At most cwnd/SMSS segments per call, as Linux's packet-counted pipe: a receiver that
        # SACKs 1-byte pieces leaves 1-byte holes, and a byte-counted pipe would let hundreds
        # of them out per ACK (CVE-2019-11478's amplification; measured 152 per ACK before).
        budget = max(1, self._send_window() // mss)
        for _ in range(256):
            window = self._send_window()
            if window <= 0 or (sent and window < mss):
                break
            if budget <= 0:
                self.stats["sack_rxt_segment_budget"] += 1
                self.host.stats["sack_rxt_segment_budget"] += 1  # in the stack's counters too
                break
            budget -= 1
            lost = rack.next_lost()
            if lost is not None:
                self._retransmit(lost[0], lost[1], now)
                self.stats["rack_retransmits"] += 1
                sent = True
                continue
            data_end = self._data_end()
            new_data = seq_lt(self.snd_nxt, data_end) and self._rwnd_room() > 0
            nxt = board.next_seg(self.snd_una, self.snd_max, self.high_rxt, mss, new_data=new_data)
            if nxt is not None:
                seq, length = nxt
                if seq_ge(seq, data_end):
                    break
                length = min(length, (data_end - seq) & MASK, mss)
                end = (seq + length) & MASK
                self.high_rxt = end
                if rack.retransmitted(seq):
                    continue  # RACK already resent it (or it arrived): HighRxt just moves past
                if board.is_lost(seq, mss):
                    rack.mark_lost(seq, end)  # rule (1): the original no longer counts in pipe
                self._send_segment(seq, length, now)
                sent = True
                continue
            if new_data:
                break  # rule (2): new data, sent by the caller
            # Rule (4): once per recovery (HighACK > RescueRxt), the highest unSACKed segment.
            if self.rescue_rxt is None or seq_gt(self.snd_una, self.rescue_rxt):
                rescue = board.rescue_seg(self.snd_una, self.snd_max, mss)
                if rescue is not None:
                    seq, length = rescue
                    if seq_lt(seq, data_end):
                        length = min(length, (data_end - seq) & MASK)
                        if seq_gt((seq + length) & MASK, self.high_rxt) and not rack.retransmitted(seq):
                            self.rescue_rxt = self.recover
                            self.stats["rescue_retransmits"] += 1
                            self._send_segment(seq, length, now)
                            sent = True
            break
        return sent

    def _retransmit(self, seq: int, end: int, now: float) -> None:
        """Send ``[seq, end)`` again, in segments of at most SMSS (the FIN too if it lies inside)."""
        data_end = self._data_end()
        mss = self._cur_mss()
        while seq_lt(seq, end):
            if seq_ge(seq, data_end):
                if self.fin_queued and seq == self.fin_seq:
                    self._send_segment(seq, 0, now, fin=True)
                break
            length = min((end - seq) & MASK, (data_end - seq) & MASK, mss)
            fin = self.fin_queued and ((seq + length) & MASK) == self.fin_seq and seq_gt(end, self.fin_seq)
            seq = self._send_segment(seq, length, now, fin=fin)

    # == timers ===============================================================================
    def _arm_rtx(self, now: float) -> None:
        """(Re)start the retransmission timer (RFC 6298 §5.1, §5.3) — or, while a tail loss probe
        is allowed, the probe timer in its place (RFC 8985 §7.2), when it comes before the RTO.

        A probe is allowed with SACK, no probe outstanding (§7.3: one at a time), a window open,
        and an SRTT to size the PTO from that Karn's rule still trusts (no backed-off RTO waiting
        for a fresh sample). PTO = 2·SRTT, + WCDelAckT with one segment in flight, at least
        :data:`.rack.PTO_MIN` (:func:`.rack.pto`); when it would not come before the RTO the RTO
        stays (a probe then would only postpone the timeout by a full RTO).

        RFC 8985 §7.2 also excludes recovery (fast or after an RTO) and flights with SACKed
        segments. This stack probes there too (as QUIC's PTO does, RFC 9002 §6.2): with a small
        window under steady loss most of the time is spent in recovery, and a recovery flight
        lost whole (the retransmissions and the new data with them) otherwise costs a full RTO
        — 200 ms at least, against sub-millisecond round trips on a LAN. The probe draws an ACK
        whose SACK lets RACK mark everything sent before it lost; the RTO stays the last resort.
        """
        rtt = self.rtt
        rto = rtt.timeout()
        deadline = now + rto
        is_pto = False
        if (
            self.sack_ok
            and self.tlp_end is None
            and self.snd_wnd > 0
            and not rtt.backoffs
            and rtt.sampled()
            and self.state in CAN_PROBE
        ):
            # FlightSize from SND.MAX: SND.NXT may not have moved on yet.
            timeout = pto(rtt.smoothed(), (self.snd_max - self.snd_una) & MASK, self.snd_mss, rto)
            if timeout < rto:
                deadline = now + timeout
                is_pto = True
        self._rtx_deadline = deadline
        self._rtx_is_pto = is_pto
        t = self._rtx_timer
        if t is None or not t.pending() or t.when > deadline:
            self._aim_timer(deadline)

    def _aim_timer(self, deadline: float) -> None:
        """Make the wheel timer fire no later than ``deadline``. Lazily: an earlier wheel timer is
        kept and, when it fires, re-aimed at the deadlines then pending, so an ACK stream does not
        allocate a timer per ACK."""
        t = self._rtx_timer
        if t is None or not t.pending() or t.when > deadline:
            if t is not None:
                t.cancel()
            self._rtx_timer = self.timers.schedule_args(deadline, _ON_RTX_TIMER, (self,))

    def _stop_rtx(self) -> None:
        # The wheel timer stays (lazily): an ACK of everything is followed by new data soon in
        # most conversations, and _on_rtx_timer finds nothing pending if none came.
        self._rtx_deadline = 0.0
        self._reo_deadline = 0.0

    def _on_rtx_timer(self, now: float | None = None) -> None:
        now = self.timers.latest() if now is None else now
        self._rtx_timer = None
        reo = self._reo_deadline
        if reo and now >= reo:
            self._reo_deadline = 0.0
            self._on_reo_timeout(now)
        deadline = self._rtx_deadline
        if deadline and now >= deadline:
            if self._rtx_is_pto:
                self._on_pto(now)
            else:
                self._retransmission_timeout(now)
        pending = [d for d in (self._rtx_deadline, self._reo_deadline) if d]
        if pending and self.state != CLOSED:
            self._aim_timer(min(pending))

    def _on_reo_timeout(self, now: float) -> None:
        """RACK's reordering timer (RFC 8985 §6.2 step 5 / §6.3 RACK_detect_loss_and_arm_timer)."""
        if not self.sack_ok or self.snd_una == self.snd_max or self.state not in SYNCHRONIZED:
            return
        self.stats["rack_reo_timeouts"] += 1
        self._rack_detect(now)
        self.output(now)

    def _rack_detect(self, now: float) -> None:
        """Run RACK's loss detection; start recovery if it found a loss, arm its timer if a
        segment is not yet due."""
        rack = self._loss_detection()
        lost, timeout = rack.detect_loss(now, self.in_recovery or self.rto_recovery, self.rtt.srtt)
        if lost:
            self.stats["rack_lost_segments"] += lost
            if not self.in_recovery and not self.rto_recovery:
                self._enter_recovery(now)
        if timeout is not None:
            self._reo_deadline = now + timeout
            self._aim_timer(self._reo_deadline)
        else:
            self._reo_deadline = 0.0

    def _enter_recovery(self, now: float) -> None:
        """RFC 6582 §3.2 step 2 / RFC 6675 §5 step (4): reduce the window once for this episode,
        remember the RecoveryPoint and fast-retransmit the first lost segment at once."""
        self.in_recovery = True
        self.recover = self.snd_max
        self._congestion().on_loss(now, self._flight())
        self.stats["fast_retransmits"] += 1
        self.high_rxt = self.snd_una
        self.rescue_rxt = None
        self.tlp_end = None  # this recovery's reduction covers whatever a probe revealed
        if self.sack_ok:
            lost = self._loss_detection().next_lost()
            if lost is None:
                length = min(self._cur_mss(), (self._data_end() - self.snd_una) & MASK)
                lost = (self.snd_una, (self.snd_una + max(length, 1)) & MASK)
                self._loss_detection().mark_lost(*lost)
            self._retransmit(lost[0], lost[1], now)
            return
        length = min(self._cur_mss(), (self._data_end() - self.snd_una) & MASK)
        if length:
            self.high_rxt = self._send_segment(self.snd_una, length, now)
        self.recovery_inflation = 3 * self.snd_mss

    def _on_pto(self, now: float) -> None:
        """RFC 8985 §7.3 TLP_send_probe: the probe timer expired with no ACK; send one segment
        to draw an ACK that RACK can act on — new data if there is any and the peer's window
        takes it (cwnd notwithstanding), else the last segment again — and fall back to the RTO.
        """
        if self.snd_una == self.snd_max:
            self._rtx_deadline = 0.0  # nothing outstanding (an ACK stopped timers already)
            return
        if self.state not in CAN_PROBE:
            self._rtx_is_pto = False
            self._retransmission_timeout(now)
            return
        self.stats["tlp_probes"] += 1
        self.host.stats["tlp_probes"] += 1
        self.tlp_in_recovery = self.in_recovery or self.rto_recovery
        data_end = self._data_end()
        unsent = (data_end - self.snd_nxt) & MASK if seq_lt(self.snd_nxt, data_end) else 0
        room = self._rwnd_room()
        if unsent and room:
            length = min(unsent, self._cur_mss(), room)
            fin = self.fin_queued and length == unsent and ((self.snd_nxt + length) & MASK) == self.fin_seq
            self.tlp_is_retrans = False
            self.tlp_end = (self.snd_nxt + length + (1 if fin else 0)) & MASK
            self.snd_nxt = self._send_segment(self.snd_nxt, length, now, fin=fin)
        else:
            last = self._loss_detection().last()
            if last is None:
                self._rtx_is_pto = False
                self._retransmission_timeout(now)
                return
            seq, end = last
            mss = self._cur_mss()
            if ((end - seq) & MASK) > mss:
                seq = (end - mss) & MASK  # a TSO record: its last SMSS only (one segment, §7.3)
            self.tlp_is_retrans = True
            self.tlp_end = self.snd_max
            self.stats["tlp_retransmits"] += 1
            self._retransmit(seq, end, now)
        self._arm_rtx(now)  # the probe is out: the RTO again (no second probe, §7.3)

    def _tlp_on_ack(self, seg: Segment, ack: int, dsack: bool, now: float) -> None:
        """RFC 8985 §7.4 TLP_process_ack: end the probe episode, and if the probe (a
        retransmission) repaired a lost tail, respond as to a loss (enter and leave recovery)."""
        end = self.tlp_end
        if end is None or seq_lt(ack, end):
            return
        if not self.tlp_is_retrans:
            self.tlp_end = None  # the probe was new data: delivered
        elif dsack:
            self.tlp_end = None  # the original arrived too: nothing was lost
            self.stats["tlp_spurious"] += 1
        elif seq_gt(ack, end):
            self.tlp_end = None
            self.stats["tlp_recoveries"] += 1
            if not (self.in_recovery or self.rto_recovery or self.tlp_in_recovery):
                self._congestion().on_loss(now, self._flight())
                self._congestion().on_recovery_exit(now)
        elif ack == self.snd_una and not seg.sack_blocks and not seg.payload:
            self.tlp_end = None  # a plain duplicate ACK: both copies arrived

    def _retransmission_timeout(self, now: float) -> None:
        """RFC 6298 §5.4–5.7 and RFC 5681 §3.1: back off, collapse the window, go back to SND.UNA.
        With SACK, RACK marks what is lost (RFC 8985 §6.3) and the retransmissions go out as the
        window allows, in order, until SND.UNA passes the RecoveryPoint (RFC 6675 §5.1)."""
        state = self.state
        self.retries += 1
        limit = (
            self.config.syn_retries
            if state == SYN_SENT
            else self.config.synack_retries
            if state == SYN_RECEIVED
            else self.config.data_retries
        )
        if self.retries > limit:
            self.stats["timeouts"] += 1
            self._fail(self.soft_error or errno.ETIMEDOUT, now, send_rst=state != SYN_SENT)
            return
        self.rtt.backoff()
        self.stats["rto_expired"] += 1
        if state == SYN_SENT:
            self._emit(self.iss, SYN, now)
            self._arm_rtx(now)
            return
        if state == SYN_RECEIVED:
            self._emit(self.iss, SYN | ACK, now)
            self._arm_rtx(now)
            return
        if self.snd_una == self.snd_max:
            self._stop_rtx()
            return
        self._congestion().on_rto(now, self._flight())
        self.in_recovery = False
        self.recovery_inflation = 0
        self.dupacks = 0
        # RFC 2018 §8: SACK marks are expunged on RTO; kept (Errata 1610) only while no renege
        # was seen, and then by RACK's records too, or a reneging receiver stalls the sender.
        keep_sacks = KEEP_SACKS_ON_RTO and not self.scoreboard.reneged
        self.scoreboard.reset(keep_sacks=keep_sacks)
        self.recover = self.snd_max  # RFC 6675 §5.1: no new recovery before this is ACKed
        self.high_rxt = self.snd_una
        self.rescue_rxt = None
        self.rtt_seq = None
        self.tlp_end = None
        self._reo_deadline = 0.0
        if self.sack_ok:
            rack = self._loss_detection()
            self.rto_recovery = True
            rack.on_rto(now, rack.reo_wnd(True, self.rtt.srtt), keep_sacks=keep_sacks)
            # The loss window: the first lost segment now, the rest as ACKs open cwnd.
            lost = rack.next_lost()
            if lost is not None:
                self._retransmit(lost[0], lost[1], now)
            self._arm_rtx(now)
            return
        self.snd_nxt = self.snd_una
        # Go back to SND.UNA: one segment now (the loss window), the rest as ACKs open cwnd.
        data_end = self._data_end()
        if seq_lt(self.snd_una, data_end):
            length = min((data_end - self.snd_una) & MASK, self._cur_mss())
            fin = (
                self.fin_queued
                and ((self.snd_una + length) & MASK) == self.fin_seq
                and seq_lt(self.fin_seq, self.snd_max)
            )
            self.snd_nxt = self._send_segment(self.snd_una, length, now, fin=fin)
        elif self.fin_queued and self.snd_una == self.fin_seq:
            self._send_segment(self.snd_una, 0, now, fin=True)
            self.snd_nxt = (self.snd_una + 1) & MASK
        self._arm_rtx(now)

    def _arm_delack(self, now: float) -> None:
        if self._delack_deadline:
            return
        self._delack_deadline = deadline = now + self.config.delack_timeout
        t = self._delack_timer
        if t is None or not t.pending():
            self._delack_timer = self.timers.schedule_args(deadline, _ON_DELACK, (self,))

    def _on_delack(self, *_: object) -> None:
        self._delack_timer = None
        deadline = self._delack_deadline
        if not deadline:
            return  # the ACK went out with something else
        now = self.timers.latest()
        if now < deadline:
            self._delack_timer = self.timers.schedule_args(deadline, _ON_DELACK, (self,))
            return
        self._delack_deadline = 0.0
        if self.rcvbuf is not None and self.state in SYNCHRONIZED:
            self.send_ack(now)

    def _set_idle_timer(self, when: float, callback: object) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = self.timers.schedule(when, callback)  # type: ignore[arg-type]

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _arm_persist(self, now: float) -> None:
        """RFC 9293 §3.8.6.1: with a zero window and data to send, probe so a lost window update
        cannot deadlock the connection. Backs off like the RTO, capped at ``max_persist``."""
        if self._persist_pending():
            return
        # Keep-alives share the idle timer but never run while there is data to send (RFC 9293
        # §3.8.4): the persist timer takes it over.
        delay = min(self.rtt.timeout() * (1 << min(self.persist_backoff, 10)), self.config.max_persist)
        self._set_idle_timer(now + max(delay, self.config.min_rto), self._on_persist)

    def _persist_pending(self) -> bool:
        t = self._idle_timer
        return t is not None and t.active and t.callback == self._on_persist

    def _on_persist(self, *_: object) -> None:
        now = self.timers.latest()
        self._idle_timer = None
        if self.state not in SYNCHRONIZED:
            return
        if self.snd_wnd:
            # The override timeout (RFC 9293 §3.8.6.2.1 (4)): the window stayed smaller than a
            # segment with nothing in flight; send what it allows rather than wait forever.
            unsent = (self._data_end() - self.snd_nxt) & MASK if seq_lt(self.snd_nxt, self._data_end()) else 0
            length = min(unsent, self._send_window(), self._cur_mss())
            if self._flight() == 0 and length > 0:
                self.stats["sws_override"] += 1
                self.snd_nxt = self._send_segment(self.snd_nxt, length, now)
            return
        if not seq_lt(self.snd_una, self._data_end()) and not self.fin_queued:
            return
        if self.persist_probes >= self.config.data_retries:
            # Linux's tcp_probe_timer: as many unanswered probes as retransmissions allowed
            # (tcp_retries2), with no ACK at all in between: the peer is gone.
            self.stats["persist_timeouts"] += 1
            self._fail(self.soft_error or errno.ETIMEDOUT, now, send_rst=True)
            return
        # A zero-window probe: one byte at SND.UNA (the peer may accept it) — RFC 9293 §3.8.6.1.
        # While the window stays shut, later probes resend that same byte (RFC 1122 §4.2.2.17):
        # a byte beyond it would lie outside the window too.
        if seq_lt(self.snd_una, self._data_end()):
            self._send_segment(self.snd_una, 1, self.timers.latest())
            if seq_lt(self.snd_nxt, (self.snd_una + 1) & MASK):
                self.snd_nxt = (self.snd_una + 1) & MASK
            self._stop_rtx()  # the persist timer, not the RTO, governs probes
        self.stats["zero_window_probes"] += 1
        self.persist_probes += 1
        self.persist_backoff += 1
        self._arm_persist(now)

    def _arm_keepalive(self, now: float) -> None:
        if self.keepalive and self.state in SYNCHRONIZED:
            self._set_idle_timer(now + self.config.keepalive_idle, self._on_keepalive)

    def _on_keepalive(self, *_: object) -> None:
        now = self.timers.latest()
        self._idle_timer = None
        if not self.keepalive or self.state not in (ESTABLISHED, CLOSE_WAIT):
            return
        idle = now - self.last_rx
        cfg = self.config
        if self.snd_una != self.snd_max:
            # RFC 9293 §3.8.4 MUST-26: keep-alives only when no sent data is outstanding; the
            # retransmission timer watches the peer meanwhile (Linux's tcp_keepalive_timer too).
            self._set_idle_timer(now + cfg.keepalive_idle, self._on_keepalive)
            return
        if idle < cfg.keepalive_idle and self.keepalive_probes == 0:
            self._set_idle_timer(self.last_rx + cfg.keepalive_idle, self._on_keepalive)
            return
        if self.keepalive_probes >= cfg.keepalive_count:
            self.stats["keepalive_timeouts"] += 1
            self._fail(errno.ETIMEDOUT, now, send_rst=True)
            return
        # RFC 9293 §3.8.4: SEG.SEQ = SND.NXT − 1 with no data elicits an ACK from a live peer.
        self._emit((self.snd_nxt - 1) & MASK, ACK, now)
        self.keepalive_probes += 1
        self.stats["keepalive_probes"] += 1
        self._set_idle_timer(now + cfg.keepalive_interval, self._on_keepalive)

    def _enter_time_wait(self, now: float) -> None:
        self.state = TIME_WAIT
        self._stop_rtx()
        # 2·MSL of answering a retransmitted FIN (or taking a new SYN, RFC 6191) needs sequence
        # numbers and timestamps, not the sender's machinery: let the congestion controller,
        # the SACK scoreboard and RACK's transmit records go now (made again on first use).
        self._cc = None
        self._scoreboard = None
        self._rack = None
        self._set_idle_timer(now + 2 * self.config.msl, self._on_time_wait_done)
        self.host.notify(self)

    def _on_time_wait_done(self, *_: object) -> None:
        self._idle_timer = None
        self._to_closed()

    def _on_fin_wait2_timeout(self, *_: object) -> None:
        self._idle_timer = None
        if self.state == FIN_WAIT_2:
            self.stats["fin_wait2_timeouts"] += 1
            self._to_closed()

    # == state changes ========================================================================
    def _to_closed(self) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self._stop_rtx()
        if self._rtx_timer is not None:
            self._rtx_timer.cancel()
            self._rtx_timer = None
        self._cancel_idle_timer()
        self._delack_deadline = 0.0
        if self._delack_timer is not None:
            self._delack_timer.cancel()
            self._delack_timer = None
        self.host.notify(self)
        self.host.closed(self)

    def _fail(self, err: int, now: float, *, send_rst: bool) -> None:
        if send_rst and self.state in SYNCHRONIZED | {SYN_RECEIVED}:
            self._send_rst(now)
        self.error = err
        self.sndbuf.clear()
        self._to_closed()

    def _established(self, now: float) -> None:
        if self.retries:
            # Our SYN (or SYN-ACK) had to be retransmitted. RFC 6298 §5.7: without an RTT sample
            # (Karn's rule excludes the handshake's), data starts with an RTO of 3 s. RFC 5681
            # §3.1 as relaxed by RFC 6928 §2: after more than one retransmission, the initial
            # window is one segment.
            if self.rtt.srtt is None:
                self.rtt.initial_rto = max(self.rtt.initial_rto, 3.0)
            if self.retries > 1:
                self._congestion().cwnd = self.snd_mss
        self.state = ESTABLISHED
        self.retries = 0
        self.rtt.reset_backoff()
        self._stop_rtx()
        self._arm_keepalive(now)
        self.host.notify(self)

    # == application calls (RFC 9293 §3.10.1–§3.10.6) =========================================
    def connect(self, now: float) -> None:
        """Active OPEN: send a SYN (SYN-SENT)."""
        if self.state != CLOSED:
            raise OSError(errno.EISCONN, "connection already in progress or established")
        self.state = SYN_SENT
        self.snd_nxt = self.data_seq  # ISS + 1 on a fresh connection; sharing the int saves 32 bytes
        self.snd_max = self.snd_nxt
        self._emit(self.iss, SYN, now)
        self._arm_rtx(now)

    def accept_syn(self, seg: Segment, now: float) -> None:
        """Passive OPEN completed by a SYN (LISTEN → SYN-RECEIVED): negotiate and answer SYN-ACK."""
        self.state = SYN_RECEIVED
        self._negotiate(seg)
        self._open_receive(seg.seq)
        if self.ts_ok:
            self.ts_recent = seg.ts_val or 0
            self.ts_recent_time = now
        self.snd_wnd = seg.window  # unscaled on a SYN (RFC 7323 §2.2)
        self.max_snd_wnd = self.snd_wnd
        self.snd_wl1 = seg.seq
        self.snd_nxt = self.data_seq  # ISS + 1 on a fresh connection; sharing the int saves 32 bytes
        self.snd_max = self.snd_nxt
        self._emit(self.iss, SYN | ACK, now)
        self._arm_rtx(now)

    def accept_cookie(self, seg: Segment, now: float, *, mss: int, wscale: int | None, sack_ok: bool) -> None:
        """A handshake completed by a valid SYN cookie (the SYN itself left no state): rebuild
        what the SYN-ACK promised from the cookie and go straight to ESTABLISHED."""
        cfg = self.config
        self.peer_mss = _shared(max(mss, cfg.min_mss))
        self.wscale_ok = wscale is not None
        self.snd_wscale = wscale or 0
        if not self.wscale_ok:
            self.rcv_wscale = 0
        self.sack_ok = sack_ok
        self.ts_ok = cfg.timestamps and seg.ts_val is not None and seg.ts_ecr is not None
        if self.ts_ok:
            self.ts_recent = seg.ts_val or 0
            self.ts_recent_time = now
        self.snd_mss = _shared(min(self.peer_mss, self.local_mss) - (TS_HEADER if self.ts_ok else 0))
        self._cc_mss_changed()
        self._open_receive((seg.seq - 1) & MASK)
        # The window our cookie SYN-ACK announced (TcpLayer._send_cookie_synack): without it the
        # receive window looked shut and data on this very ACK was refused.
        self.rcv_adv = (self.rcv_adv + min(cfg.rcvbuf, 0xFFFF)) & MASK
        self.snd_una = self.snd_nxt = self.snd_max = seg.ack
        self.data_seq = seg.ack
        self.snd_wnd = seg.window << self.snd_wscale
        self.max_snd_wnd = self.snd_wnd
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        self._established(now)
        if seg.payload or seg.flags & FIN:
            self.segment_arrives(seg, now)

    def send(self, data: bytes | bytearray | memoryview, now: float) -> int:
        """Queue data (SEND call); returns bytes accepted (0 when the buffer is full)."""
        if self.error:
            self.raise_error()
        state = self.state
        if self.fin_queued or state not in _MAY_QUEUE:
            raise OSError(errno.EPIPE, "Broken pipe: the connection is closing or closed")
        sndbuf = self.sndbuf
        snd_nxt = self.snd_nxt
        all_sent = snd_nxt == (self.data_seq + len(sndbuf)) & MASK
        n = sndbuf.write(data)
        if n and state in CAN_SEND:
            flight = (snd_nxt - self.snd_una) & MASK
            if flight == 0:
                # RFC 5681 §4.1 restart window after an idle period longer than the RTO; CUBIC
                # also keeps shorter idle gaps out of its curve's clock (RFC 9438 §5.8).
                self._congestion().on_idle(now, self.rtt.timeout(), idle_since=self.last_tx)
            if (
                all_sent
                and n <= self.snd_mss
                and state is ESTABLISHED
                and (self.nodelay or flight == 0)
                and snd_nxt == self.snd_max
                and not self.in_recovery
                and not self.rto_recovery
                and n <= min(self.snd_wnd, self._congestion().cwnd) - flight
                and not (self.sack_ok and self.rcvbuf is not None and self.rcvbuf.holds_ooo())
            ):
                # The request/response case: all of it fits one segment the windows allow and
                # Nagle lets go (what _output_data would decide, without its general loop).
                self.snd_nxt = self._send_segment(snd_nxt, n, now)
            else:
                self.output(now)
        return n

    def recv(self, n: int, now: float) -> bytes:
        """Take up to ``n`` received bytes; b"" means end of stream (FIN received)."""
        rb = self.rcvbuf
        if rb is None:
            self.raise_error()
            raise BlockingIOError(errno.EAGAIN, "no data yet")
        before = rb.free_window()
        data = rb.read(n)
        if data:
            # Open the window the application just made room in, if this read moved its right edge
            # far enough past the last advertisement for the peer to notice (RFC 9293 §3.8.6.2.2:
            # at least 2·MSS, or half the buffer). An edge already that far out before the read
            # is not this read's doing: only the SYN-ACK's unscaled 64 KB leaves one (RFC 7323
            # §2.2), and the peer, 64 KB from blocked, learns the real window from our next
            # segment — the reply, not a pure ACK sent ahead of it.
            grown = rb.free_window() - before
            rcv_nxt = rb.rcv_nxt
            edge_gap = (rcv_nxt + rb.free_window() - self.rcv_adv) & MASK
            gap_before = (rcv_nxt + before - self.rcv_adv) & MASK
            enough = min(2 * self.local_mss, self.config.rcvbuf // 2)
            if grown and edge_gap >= enough and not (gap_before >= enough and gap_before < HALF) and (
                self.state in CAN_RECEIVE_DATA
            ):
                if self.host.ack_soon(self):
                    self.ack_now = True  # a reply the application is about to write carries it
                else:
                    self.send_ack(now)
            return data
        if rb.fin_received:
            return b""
        self.raise_error()
        raise BlockingIOError(errno.EAGAIN, "no data yet")

    def raise_error(self) -> None:
        """Report the pending error once, as a kernel socket does (a reset is ECONNRESET to the
        first call that sees it; later sends then fail with EPIPE)."""
        err = self.error
        if err:
            self.error = 0
            raise OSError(err, errno.errorcode.get(err, "error"))

    @property
    def readable(self) -> bool:
        rb = self.rcvbuf
        return bool(self.error) or (rb is not None and (rb.ready_bytes() > 0 or rb.fin_received))

    @property
    def writable(self) -> bool:
        return self.state in CAN_SEND and self.sndbuf.free_space() > 0 and not self.fin_queued

    def shutdown_write(self, now: float) -> None:
        """Half-close: our FIN after the queued data (CLOSE in ESTABLISHED/CLOSE-WAIT, §3.10.4)."""
        state = self.state
        if self.fin_queued:
            return
        if state in (SYN_SENT, CLOSED, LISTEN):
            self._to_closed()
            return
        if state not in (ESTABLISHED, CLOSE_WAIT, SYN_RECEIVED):
            return
        self.fin_queued = True
        self.fin_seq = self._data_end()
        if state == CLOSE_WAIT:
            self.state = LAST_ACK
        else:
            self.state = FIN_WAIT_1
        self.output(now)

    def close(self, now: float) -> None:
        """The application is done with the connection (close(2)): data it never read means a
        reset (RFC 9293 §3.10.4 allows it; RFC 2525 §2.17 asks for it), else an orderly FIN."""
        self.orphaned = True
        rb = self.rcvbuf
        if rb is not None and rb.ready_bytes() and self.state in SYNCHRONIZED:
            self.stats["reset_unread_data"] += 1
            self.abort(now)
            return
        self.read_closed = True
        self.shutdown_write(now)
        if self.state == FIN_WAIT_2:
            self._set_idle_timer(now + self.config.fin_wait2_timeout, self._on_fin_wait2_timeout)

    def abort(self, now: float) -> None:
        """ABORT (§3.10.5): a RST to the peer if it knows us, then CLOSED."""
        if self.state in SYNCHRONIZED | {SYN_RECEIVED} and self.state != TIME_WAIT:
            self._send_rst(now)
        self.sndbuf.clear()
        self._to_closed()

    # == segment arrival (RFC 9293 §3.10.7) ===================================================
    def segment_arrives(self, seg: Segment, now: float) -> None:
        self.segs_in += 1
        state = self.state
        if state is ESTABLISHED and self.config.header_prediction and self._predicted(seg, now):
            self.host._header_predicted += 1  # Linux's TCPHPHits
            return
        if state == SYN_SENT:
            self._syn_sent(seg, now)
            return
        if state == CLOSED:
            return
        self._synchronized(seg, now)

    def _syn_sent(self, seg: Segment, now: float) -> None:
        """RFC 9293 §3.10.7.3."""
        flags = seg.flags
        if flags & ACK and (seq_le(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max)):
            if not flags & RST:
                self.host.transmit(self, seg.ack, 0, RST, 0, b"", 0, 0)
            self.drops["tcp_syn_sent_bad_ack"] += 1
            return
        if flags & RST:
            if flags & ACK:
                self._fail(errno.ECONNREFUSED, now, send_rst=False)
            else:
                self.drops["tcp_syn_sent_rst_without_ack"] += 1
            return
        if not flags & SYN:
            self.drops["tcp_syn_sent_no_syn"] += 1
            return
        self.last_rx = now
        self._negotiate(seg)
        self._open_receive(seg.seq)
        if self.ts_ok:
            self.ts_recent = seg.ts_val or 0
            self.ts_recent_time = now
        self.snd_wnd = seg.window
        self.max_snd_wnd = self.snd_wnd
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        if flags & ACK:
            self.snd_una = seg.ack
            self._take_rtt_sample(seg, now, syn=True)
            self._established(now)
            self.send_ack(now)
            self.output(now)
            return
        # Simultaneous open (§3.10.7.3 fourth): SYN-RECEIVED, answer SYN-ACK with the same ISS.
        self.state = SYN_RECEIVED
        self._emit(self.iss, SYN | ACK, now)
        self._arm_rtx(now)

    def _acceptable(self, seg: Segment) -> bool:
        """The sequence number test of §3.10.7.4 (first), with the zero-window cases."""
        rb = self.rcvbuf
        assert rb is not None
        rcv_nxt = rb.rcv_nxt
        wnd = (self.rcv_adv - rcv_nxt) & MASK
        if seq_lt(self.rcv_adv, rcv_nxt):
            wnd = 0
        seq = seg.seq
        length = seg.seg_len
        if length == 0:
            if wnd == 0:
                return seq == rcv_nxt
            return seq_le(rcv_nxt, seq) and seq_lt(seq, (rcv_nxt + wnd) & MASK)
        if wnd == 0:
            return False
        end = (seq + length - 1) & MASK
        right = (rcv_nxt + wnd) & MASK
        return (seq_le(rcv_nxt, seq) and seq_lt(seq, right)) or (seq_le(rcv_nxt, end) and seq_lt(end, right))

    def _synchronized(self, seg: Segment, now: float) -> None:
        flags = seg.flags
        rb = self.rcvbuf
        assert rb is not None
        # PAWS (RFC 7323 §5.3 R1): an old timestamp marks an old duplicate; RSTs are exempt.
        if (
            self.ts_ok
            and seg.ts_val is not None
            and not flags & RST
            and seq_lt(seg.ts_val, self.ts_recent)
            and now - self.ts_recent_time < PAWS_IDLE
        ):
            self.drops["tcp_paws_rejected"] += 1
            self.send_ack(now)
            return
        if self.state == TIME_WAIT:
            self._time_wait_segment(seg, now)
            return
        if self.state == SYN_RECEIVED and flags & SYN and not flags & RST and seg.seq == self.irs:
            # The peer's SYN again, or (simultaneous open) its SYN-ACK: both have SEG.SEQ = IRS,
            # before RCV.NXT, so the sequence test below would answer them with a bare ACK that
            # a peer in SYN-SENT drops (§3.10.7.3), stalling the handshake until our RTO.
            if not flags & ACK:
                # A retransmitted SYN: our SYN-ACK was lost; send it again (as Linux does).
                self._emit(self.iss, SYN | ACK, now)
                return
            if self.listener is None and seg.ack == self.snd_max:
                self._simultaneous_open_synack(seg, now)
                return
        # first: sequence number
        if not self._acceptable(seg):
            if flags & RST:
                self.drops["tcp_rst_out_of_window"] += 1
                return
            self.drops["tcp_out_of_window"] += 1
            self.send_ack(now)
            return
        # An acceptable segment: the peer is alive. Only now — a segment that failed PAWS or the
        # sequence test (an old duplicate, or a blind attacker's guess) must not keep a dead
        # connection's keep-alive or zero-window probing from giving up.
        self.last_rx = now
        self.keepalive_probes = 0
        if flags & ACK:
            self.persist_probes = 0
        # RFC 7323 §4.3: remember the timestamp of the segment that covers Last.ACK.sent.
        if (
            self.ts_ok
            and seg.ts_val is not None
            and seq_le(seg.seq, self.last_ack_sent)
            and (seq_ge(seg.ts_val, self.ts_recent) or now - self.ts_recent_time >= PAWS_IDLE)
        ):
            self.ts_recent = seg.ts_val
            self.ts_recent_time = now
        # second: RST (RFC 5961 §3.2: only an exact match resets; in-window gets a challenge ACK)
        if flags & RST:
            if seg.seq == rb.rcv_nxt:
                self.stats["resets_received"] += 1
                if self.state == SYN_RECEIVED and self.listener is not None and not self.orphaned:
                    self._to_closed()  # §3.10.7.4: a passive open returns to LISTEN
                    return
                err = errno.ECONNREFUSED if self.state == SYN_RECEIVED else errno.ECONNRESET
                if self.state in (CLOSING, LAST_ACK):
                    err = 0
                self.error = err or self.error
                self.sndbuf.clear()
                self._to_closed()
            else:
                self._challenge_ack(now)
            return
        # fourth: SYN in a synchronized state (RFC 5961 §4: challenge ACK, never reset)
        if flags & SYN:
            self._challenge_ack(now)
            return
        # fifth: ACK
        if not flags & ACK:
            self.drops["tcp_no_ack"] += 1
            return
        if not self._process_ack(seg, now):
            return
        # seventh: segment text
        payload = seg.payload
        if payload and self.state in CAN_RECEIVE_DATA:
            if self.read_closed:
                # Data after close(): the application will never read it (RFC 9293 §3.10.7.4).
                self.drops["tcp_data_after_close"] += 1
                self.stats["reset_data_after_close"] += 1
                self.abort(now)
                return
            self._receive_data(seg, now)
        elif payload:
            self.drops["tcp_data_in_closing_state"] += 1
        # eighth: FIN
        if flags & FIN and self.state not in (CLOSED, LISTEN, SYN_SENT):
            rb.fin((seg.seq + len(payload)) & MASK)
            self.ack_now = True
        if rb.fin_received and not self._fin_processed:
            # Also when this segment has no FIN: it filled the gap before a FIN that arrived out
            # of order, and the receive buffer consumed that FIN (§3.10.7.4 eighth applies to
            # the FIN once all before it is in: RCV.NXT has just passed it).
            self._fin_processed = True
            self._peer_fin(now)
        self.output(now, arriving=True)
        if self.ack_pending:
            self._arm_delack(now)

    def _predicted(self, seg: Segment, now: float) -> bool:
        """Header prediction (Van Jacobson's; Linux's tcp_rcv_established fast path): in
        ESTABLISHED, a segment with only ACK (and PSH) set, exactly at RCV.NXT, passing PAWS,
        acknowledging nothing or something new within what we sent, with the same window, while
        no recovery, probe, SACK state or out-of-order data is in play, takes the short way —
        the same bookkeeping as §3.10.7.4's checks, without the checks it cannot fail. Returns
        False (touching nothing) for everything else, which the full state machine handles."""
        if seg.flags & _NOT_PREDICTED != _ACK:
            return False
        rb = self.rcvbuf
        assert rb is not None
        seq = seg.seq
        if seq != rb.rcv_nxt or seg.sack_blocks:
            return False
        payload = seg.payload
        ack = seg.ack
        una = self.snd_una
        if ack == una:
            if not payload:
                return False  # a duplicate ACK (or a window update): RFC 5681 counting
        elif ((ack - una) & MASK) > ((self.snd_max - una) & MASK):
            return False
        if self.ts_ok:
            ts_val = seg.ts_val
            if ts_val is None or seq_lt(ts_val, self.ts_recent):  # PAWS (RFC 7323 §5.3)
                return False
        if (
            self.in_recovery
            or self.rto_recovery
            or self.tlp_end is not None
            or self.read_closed
            or rb.holds_ooo()
            or rb.fin_received
            or (self.sack_ok and self._sack_board().holds_sacks())
        ):
            return False
        window = seg.window << self.snd_wscale
        if not window or not self.snd_wnd:
            return False  # zero windows: the persist machinery
        if payload and not 0 < ((self.rcv_adv - seq) & MASK) < HALF:
            return False  # no receive window: the sequence test would refuse it
        self.last_rx = now
        self.keepalive_probes = 0
        self.persist_probes = 0
        if self.ts_ok and ((self.last_ack_sent - seq) & MASK) < HALF:
            self.ts_recent = seg.ts_val
            self.ts_recent_time = now
        if ack != una:
            self._new_ack(seg, ack, now)
        wl1 = self.snd_wl1
        if 0 < ((seq - wl1) & MASK) < HALF or (wl1 == seq and ((ack - self.snd_wl2) & MASK) < HALF):
            # RFC 9293 §3.10.7.4: the window from the newest segment (SND.WL1 < SEG.SEQ, or
            # SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK); both windows non-zero here.
            self.snd_wnd = window
            if window > self.max_snd_wnd:
                self.max_snd_wnd = window
            self.snd_wl1 = seq
            self.snd_wl2 = ack
        if payload:
            self._receive_data(seg, now)
        self.output(now, arriving=True)
        if self.ack_pending:
            self._arm_delack(now)
        return True

    def _simultaneous_open_synack(self, seg: Segment, now: float) -> None:
        """RFC 9293 §3.5 Figure 8 line 6: in a simultaneous open, SYN-RECEIVED gets the peer's
        SYN-ACK acknowledging our SYN and is ESTABLISHED (our own SYN-ACK, in flight, completes
        the peer's side, so no ACK is sent)."""
        if self.ts_ok and seg.ts_val is not None:
            self.ts_recent = seg.ts_val
            self.ts_recent_time = now
        self.snd_una = seg.ack
        self.snd_wnd = seg.window  # a SYN's window is never scaled (RFC 7323 §2.2)
        self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        self._take_rtt_sample(seg, now, syn=True)
        self._established(now)
        self.output(now)

    def _peer_fin(self, now: float) -> None:
        state = self.state
        self.host.notify(self)
        if state in (SYN_RECEIVED, ESTABLISHED):
            self.state = CLOSE_WAIT
        elif state == FIN_WAIT_1:
            if seq_ge(self.snd_una, (self.fin_seq + 1) & MASK):
                self.send_ack(now)
                self._enter_time_wait(now)
            else:
                self.state = CLOSING
        elif state == FIN_WAIT_2:
            self.send_ack(now)
            self._enter_time_wait(now)

    def _time_wait_segment(self, seg: Segment, now: float) -> None:
        """TIME-WAIT: a retransmitted FIN is acknowledged and restarts 2·MSL; RSTs are ignored
        (RFC 1337: TIME-WAIT assassination hazards); anything else gets an ACK."""
        if seg.flags & RST:
            self.drops["tcp_time_wait_rst_ignored"] += 1
            return
        if seg.flags & FIN:
            self.send_ack(now)
            self._set_idle_timer(now + 2 * self.config.msl, self._on_time_wait_done)
            return
        if seg.seg_len:
            self.send_ack(now)

    def _take_rtt_sample(self, seg: Segment, now: float, syn: bool = False) -> None:
        sample = None
        if self.ts_ok and seg.ts_ecr:
            ecr = seg.ts_ecr
            rtt = ((self._ts_now(now) - ecr) & MASK) / 1000.0
            if rtt < 60.0:
                sample = max(rtt, 0.0)
        elif syn:
            if self.retries == 0:
                sample = max(now - self.rtt_time_syn, 0.0)
        elif self.rtt_seq is not None and seq_gt(seg.ack, self.rtt_seq):
            sample = max(now - self.rtt_time, 0.0)
            self.rtt_seq = None
        if sample is not None:
            self.rtt.sample(sample)
            self.last_rtt = sample

    def _process_ack(self, seg: Segment, now: float) -> bool:
        """§3.10.7.4 fifth, with RFC 5961 §5.2 ACK validation, RTT, congestion control, window
        updates and loss recovery. Returns False when the segment is to be dropped."""
        ack = seg.ack
        state = self.state
        if state == SYN_RECEIVED:
            if seq_le(self.snd_una, ack) and seq_le(ack, self.snd_max) and ack != self.iss:
                self.snd_una = ack
                self.snd_wnd = seg.window << self.snd_wscale
                self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
                self.snd_wl1 = seg.seq
                self.snd_wl2 = ack
                self._take_rtt_sample(seg, now, syn=True)
                self._established(now)
                if self.listener is not None:
                    self.host.established(self)
                state = self.state
            else:
                self.host.transmit(self, ack, 0, RST, 0, b"", 0, 0)
                self.drops["tcp_syn_received_bad_ack"] += 1
                return False
        if seq_gt(ack, self.snd_max):
            self.drops["tcp_ack_for_unsent"] += 1
            self.send_ack(now)
            return False
        if seq_lt(ack, (self.snd_una - self.max_snd_wnd) & MASK):
            self.drops["tcp_ack_too_old"] += 1
            self._challenge_ack(now)
            return False
        window = seg.window << self.snd_wscale
        if seq_gt(ack, self.snd_una):
            self._new_ack(seg, ack, now)
        elif ack == self.snd_una:
            self._duplicate_ack(seg, window, now)
        # RFC 9293 §3.10.7.4: update the send window from the newest segment only.
        if seq_lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq and seq_le(self.snd_wl2, ack)):
            if window and self.snd_wnd == 0:
                self.persist_backoff = 0
                if self._persist_pending():
                    self._cancel_idle_timer()
                    self._arm_keepalive(now)  # the idle timer is the keep-alive's again
                if ((self.snd_max - self.snd_una) & MASK) == 1 and seq_lt(self.snd_una, self._data_end()):
                    # The one byte outstanding is our last zero-window probe, which a receiver
                    # with no room dropped: send it again with the data that follows rather
                    # than leave a hole for the RTO to find.
                    self.snd_nxt = self.snd_una
            self.snd_wnd = window
            self.max_snd_wnd = max(self.max_snd_wnd, window)
            self.snd_wl1 = seg.seq
            self.snd_wl2 = ack
        # Our FIN acknowledged?
        if self.fin_queued and seq_ge(self.snd_una, (self.fin_seq + 1) & MASK):
            if state == FIN_WAIT_1:
                self.state = FIN_WAIT_2
                self.host.notify(self)
                if self.orphaned:
                    self._set_idle_timer(now + self.config.fin_wait2_timeout, self._on_fin_wait2_timeout)
            elif state == CLOSING:
                self._enter_time_wait(now)
                return False
            elif state == LAST_ACK:
                self._to_closed()
                return False
        return True

    def _new_ack(self, seg: Segment, ack: int, now: float) -> None:
        acked = (ack - self.snd_una) & MASK
        # Bytes of data (not SYN/FIN) this ACK covers.
        data_end = self._data_end()
        data_acked_to = ack if seq_le(ack, data_end) else data_end
        data_acked = (data_acked_to - self.data_seq) & MASK if seq_gt(data_acked_to, self.data_seq) else 0
        if data_acked:
            self.sndbuf.ack(data_acked)
            self.data_seq = (self.data_seq + data_acked) & MASK
        self.snd_una = ack
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        self.retries = 0
        # Karn's algorithm (RFC 6298 §5, last paragraph; RFC 1122 §4.2.3.1): a backed-off RTO
        # stays until a valid RTT sample ends it (RttEstimator.sample does); an ACK that may be
        # for a retransmission gives none.
        self._take_rtt_sample(seg, now)
        flight = self._flight()
        dsack = False
        if self.sack_ok:
            dsack = self._sack_update(seg, ack, now)
            if self.tlp_end is not None:
                self._tlp_on_ack(seg, ack, dsack, now)
        if self.in_recovery:
            if seq_ge(ack, self.recover):
                # Full ACK: recovery ends (RFC 6582 §3.2 step 3, RFC 6675 §5).
                self.in_recovery = False
                self.recovery_inflation = 0
                self.dupacks = 0
                self._congestion().on_recovery_exit(now)
                self._loss_detection().on_recovery_exit()
                self.stats["recoveries"] += 1
            elif not self.sack_ok:
                # Partial ACK (RFC 6582 §3.2 step 5): retransmit the next hole, deflate.
                self.recovery_inflation = max(0, self.recovery_inflation - acked) + self.snd_mss
                length = min(self._cur_mss(), (self._data_end() - ack) & MASK)
                if length:
                    self._send_segment(ack, length, now)
        else:
            if self.rto_recovery and seq_ge(ack, self.recover):
                self.rto_recovery = False  # RFC 6675 §5.1: a new recovery may start again
                self._loss_detection().on_recovery_exit()
            self.dupacks = 0
            app_limited = flight + acked < self._congestion().cwnd and not seq_lt(self.snd_nxt, self._data_end())
            self._congestion().on_ack(acked, now, self.last_rtt, flight, app_limited=app_limited)
        if self.snd_una == self.snd_max:
            self._stop_rtx()
            if self.keepalive:
                self._arm_keepalive(now)
        else:
            if self.sack_ok:
                self._rack_detect(now)
            self._arm_rtx(now)
        if data_acked and self.sndbuf.free_space():
            self.host.notify(self)

    def _sack_update(self, seg: Segment, ack: int, now: float) -> bool:
        """Feed one ACK's SACK information to the RFC 6675 scoreboard and to RACK; returns
        whether it carried a D-SACK (RFC 2883)."""
        blocks = seg.sack_blocks
        board = self._sack_board()
        rack = self._loss_detection()
        if not blocks and not board.holds_sacks():
            # The common case, no SACK information at all: only the cumulative ACK for RACK.
            if rack.holds_records():
                rack.on_ack(ack, (), now, False, self.snd_max, seg.ts_ecr if self.ts_ok else None, self.ts_offset)
            return False
        dsacks = board.stats["dsack"]
        newly = board.update(ack, blocks, self.snd_max)
        dsack = board.stats["dsack"] != dsacks
        if dsack:
            blocks = blocks[1:]
        if not newly:
            blocks = ()  # nothing newly SACKed: RACK need not walk the blocks again
        if not rack.holds_records() and not dsack:
            return dsack
        rack.on_ack(ack, blocks, now, dsack, self.snd_max, seg.ts_ecr if self.ts_ok else None, self.ts_offset)
        return dsack

    def _duplicate_ack(self, seg: Segment, window: int, now: float) -> None:
        """An ACK that acknowledges nothing new. With SACK, RACK looks at every one of them (data
        or not: in a two-way transfer the SACKs ride on data) and decides about loss. RFC 5681 §2
        duplicate ACKs — no data, no window change, data outstanding — are counted: without
        SACK information three start fast retransmit (RFC 5681 §3.2, RFC 6582)."""
        if self.snd_una == self.snd_max:
            return
        if self.sack_ok:
            dsack = False
            if seg.sack_blocks:
                dsack = self._sack_update(seg, self.snd_una, now)
            if self.tlp_end is not None:
                self._tlp_on_ack(seg, self.snd_una, dsack, now)
            if seg.sack_blocks:
                self._rack_detect(now)
        if seg.payload or seg.flags & (SYN | FIN) or window != self.snd_wnd:
            return
        if window == 0:
            # Answers to zero-window probes, not signs of loss: the only data outstanding is the
            # probe, which the persist timer resends (RFC 1122 §4.2.2.17; BSD's tcp_input also
            # counts no duplicate ACKs while persisting).
            return
        self.dupacks += 1
        self.stats["dupacks"] += 1
        if self.in_recovery or self.rto_recovery:
            if not self.sack_ok:
                self.recovery_inflation += self.snd_mss  # RFC 6582 §3.2 step 4
            return
        if self.dupacks < 3:
            return
        if self.sack_ok:
            if self.scoreboard.has_sacks:
                # RACK decides (RFC 8985 replaces DupThresh; its reordering window is zero once
                # DupThresh segments are SACKed and no reordering was seen, which is the same
                # rule in time): counting duplicate ACKs would defeat its reordering tolerance.
                return
            # A peer that agreed to SACK but sends duplicate ACKs without blocks: RFC 5681.
            length = min(self.snd_mss, (self._data_end() - self.snd_una) & MASK)
            self._loss_detection().mark_lost(self.snd_una, (self.snd_una + max(length, 1)) & MASK)
        # Enter recovery (RFC 6582 §3.2 step 2 / RFC 6675 §5 step 4).
        self._enter_recovery(now)

    def _receive_data(self, seg: Segment, now: float) -> None:
        rb = self.rcvbuf
        assert rb is not None
        had_ooo = rb.holds_ooo()
        had_fin = rb.fin_received
        advanced = rb.add(seg.seq, seg.payload)
        if advanced:
            # add() counts a held FIN it consumed as one more sequence number, not a byte.
            self._bytes_received += advanced - (1 if rb.fin_received and not had_fin else 0)
            self.host.notify(self)
        in_order = advanced > 0 and seg.seq == ((rb.rcv_nxt - advanced) & MASK) and not rb.holds_ooo()
        if not in_order or had_ooo:
            # Out of order, or filling a hole: ACK at once (RFC 5681 §4.2, RFC 9293 §3.8.6.3).
            self.ack_now = True
        elif len(seg.payload) >= min(self.snd_mss, self.local_mss - _TS_HEADER) - _SACK_OPTION_MAX:
            # Full-sized (RFC 9293 §3.8.6.3: ACK at least every second one), allowing for the SACK
            # blocks a peer's data segments carry while it holds out-of-order data of ours. A
            # segment the device coalesced (GRO) stands for several: ACK it at once, as Linux's
            # __tcp_ack_snd_check does for more than one full-sized segment.
            self.ack_pending += 1 if len(seg.payload) <= self.local_mss else 2
        else:
            self.ack_pending = max(self.ack_pending, 1)

    def poll(self) -> int:
        """The connection's readiness as one ``poll()``-style mask (:mod:`.readiness`: Linux's
        bits, smoltcp's can/may send/recv): the one definition the socket layer, ``aiostack.epoll``
        and the asyncio transports read."""
        state = self.state
        rb = self.rcvbuf
        closed = state is CLOSED
        rd_shut = closed or self.read_closed or (rb is not None and rb.fin_received)  # not may_recv
        wr_shut = closed or self.fin_queued  # not may_send
        mask = POLLERR if self.error else 0
        if rd_shut:
            mask |= READABLE | POLLRDHUP
            if wr_shut:
                mask |= POLLHUP
        elif rb is not None and rb.ready_bytes():  # can_recv
            mask |= READABLE
        # can_send, or a send would fail at once; never while the handshake is under way
        if (wr_shut or (state in CAN_SEND and self.sndbuf.free_space() > 0)) and state not in _HANDSHAKING:
            mask |= WRITABLE
        return mask


_HANDSHAKING = frozenset({SYN_SENT, SYN_RECEIVED})

# The timer callbacks the established path arms, unbound: the wheel calls them with ``(conn,)``.
# ``self._on_rtx_timer`` would make a bound method per schedule (a lookup by name and an
# allocation), and keeping one per connection would cost an idle connection 64 bytes.
_ON_RTX_TIMER = Connection._on_rtx_timer
_ON_DELACK = Connection._on_delack
