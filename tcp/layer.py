"""The TCP layer of one reactor, sans-I/O: demultiplexing to connections and listeners, segment
output into pooled packets, resets for segments nobody owns, and the events the socket layer
waits on.

It registers itself as the IPv4 stack's transport for protocol 6 and is every connection's
:class:`~aiostack.tcp.connection.Host`.
"""

from __future__ import annotations

import errno
import os
from collections import Counter, deque
from collections.abc import Callable

from ..counts import Counts, fold
from ..drivers.buffers import Packet
from ..drivers.vnet import VIRTIO_NET_HDR_GSO_TCPV4 as GSO_TCPV4
from ..ip import ethernet, icmp, ipv4
from ..ip.checksum import ones_sum_at, pseudo_header_sum
from ..ip.datagram import Datagram
from ..ip.flow import HEADERS_LEN
from ..ip.ipv4 import PROTO_TCP
from ..ip.stack import Interface, IPStack
from . import segment as wire
from .config import TcpConfig
from .connection import SYN_SENT, TIME_WAIT, TS_HEADER, Connection, Host
from .cookies import SynCookies
from .drop_totals import connection_drops, connection_stats, retire, retire_stats
from .isn import IsnGenerator
from .memory import TcpMemory
from .segment import ACK, CHECKSUM_OFFSET, HEADER_LEN, RST, SYN, TS_OPTION_LEN, Segment, parse, write_header
from .seq import MASK
from .time_wait import syn_may_reopen

_MSS_OF_MTU: dict[int, int] = {}
_ETH_HLEN = ethernet.HEADER_LEN
_ETHERTYPE_IPV4 = ethernet.ETHERTYPE_IPV4.to_bytes(2, "big")
_SYN_ACK = wire.SYN | wire.ACK
EPHEMERAL_FIRST = 32768
EPHEMERAL_LAST = 60999

Key = tuple[int, int, int, int]
"""(local address, local port, remote address, remote port)."""


def _offload(pkt: Packet, csum_start: int, hlen: int, length: int, gso_size: int) -> None:
    """Mark a segment whose checksum field holds the pseudo-header sum for the device to finish
    (the TCP header starts ``csum_start`` bytes into the frame), and, when its payload is longer
    than ``gso_size``, for the device to cut (TSO)."""
    pkt.csum_start = csum_start
    pkt.csum_offset = CHECKSUM_OFFSET
    if gso_size and length > gso_size:
        pkt.gso_type = GSO_TCPV4
        pkt.gso_size = gso_size
        pkt.hdr_len = csum_start + hlen


def _mss_of(iface: Interface) -> int:
    """The MSS we announce on ``iface``: its MTU less the IPv4 and TCP headers."""
    mtu = iface.mtu
    mss = _MSS_OF_MTU.get(mtu)
    if mss is None:
        # One int object per MTU, not one per connection (every connection keeps its MSS).
        mss = _MSS_OF_MTU[mtu] = mtu - 40
    return mss


class Listener:
    """A listening socket's TCP state: the SYN queue (half-open connections, SYN-RECEIVED) and the
    accept queue (established, not yet accepted), each bounded by the backlog. When the SYN queue
    is full the listener answers with SYN cookies (RFC 4987 §3.6) instead of state."""

    def __init__(self, layer: TcpLayer, addr: int, port: int, backlog: int, config: TcpConfig) -> None:
        self.layer = layer
        self.config = config
        """Settings for the connections this listener accepts (the listening socket's options)."""
        self.addr = addr
        self.port = port
        self.backlog = max(1, backlog)
        self.syn_queue: dict[Key, Connection] = {}
        self.accept_queue: deque[Connection] = deque()
        self.closed = False
        self.user: object | None = None

    def __repr__(self) -> str:
        return f"<Listener {ipv4.ntoa(self.addr)}:{self.port} backlog {self.backlog}>"

    def accept(self) -> Connection | None:
        return self.accept_queue.popleft() if self.accept_queue else None


class TcpLayer(Host):
    def __init__(self, ip: IPStack, *, config: TcpConfig | None = None, secret: bytes | None = None) -> None:
        super().__init__()
        self.ip = ip
        self.config = config if config is not None else TcpConfig()
        secret = secret if secret is not None else os.urandom(32)
        self.isn = IsnGenerator(secret)
        self.cookies = SynCookies(secret[::-1])
        self.connections: dict[Key, Connection] = {}
        self.listeners: dict[tuple[int, int], Listener] = {}
        self.ready: set[Connection] = set()
        self.defer_acks = False
        """When set (by a reactor that calls :meth:`send_owed_acks` after each receive burst and
        after waking the applications), ACKs owed for arriving segments wait until then: one
        ACK per connection per burst of coalesced frames, none when a reply carries it. Off by
        default, so a caller driving segments one at a time sees each ACK at once."""
        self.acks_owed: list[Connection] = []
        self.acks_soon: list[Connection] = []
        self.ready_listeners: set[Listener] = set()
        self.drops: Counter[str] = Counts()
        self.memory = TcpMemory.from_config(self.config)
        """Per-reactor buffer bounds (tcp/memory.py); every connection's buffers charge it."""
        self.retired_drops: Counter[str] = Counts()
        """Drops counted by connections that are gone (tcp/drop_totals.py)."""
        self.retired_stats: Counter[str] = Counts()
        """Events counted by connections that are gone (tcp/drop_totals.py)."""
        self._segments_in = 0  # per segment: C fields, folded into stats on read
        self._segments_out = 0
        self._rng = ip.rng
        self._ts_laddr = -1  # the pair whose timestamp offset _ts_offset() holds: none yet
        self._ts_raddr = -1
        self._ts_off = 0
        self.on_stray: Callable[[bytes], bool] | None = None
        """Set by a reactor of several whose device, not the flow hash, picks the queue of every
        frame (aiostack/cores.py): called with the frame (Ethernet header included) of a segment
        that matches no connection here and would be answered with a reset or dropped at a
        listener, before that happens; True when it took the frame (to offer it to the other
        reactors, one of which may own the connection). None: the segment is a stray, as on one
        reactor."""
        ip.transports[ipv4.PROTO_TCP] = self

    # == addresses and ports ==================================================================
    def _mss_for(self, remote: int) -> tuple[Interface, int, int]:
        iface, hop = self.ip.route(remote)
        return iface, hop, _mss_of(iface)

    def _ts_offset(self, laddr: int, raddr: int) -> int:
        """The timestamp offset of an address pair (:meth:`IsnGenerator.ts_offset`), kept for
        the last pair asked about: a keyed hash per new connection otherwise, and the
        connections a server accepts mostly come from the peer of the previous one."""
        if laddr != self._ts_laddr or raddr != self._ts_raddr:
            self._ts_off = self.isn.ts_offset(laddr, raddr)
            self._ts_laddr = laddr
            self._ts_raddr = raddr
        return self._ts_off

    def listen(
        self, addr: int, port: int, backlog: int | None = None, *, config: TcpConfig | None = None
    ) -> Listener:
        if not 0 < port < 65536:
            raise OSError(errno.EINVAL, f"port {port} out of range")
        if addr and not any(i.addr == addr for i in self.ip.interfaces):
            raise OSError(errno.EADDRNOTAVAIL, f"{ipv4.ntoa(addr)} is not an address of this stack")
        if (addr, port) in self.listeners or (addr and (0, port) in self.listeners):
            raise OSError(errno.EADDRINUSE, f"TCP port {port} is already listening")
        if not addr and any(p == port for (_, p) in self.listeners):
            raise OSError(errno.EADDRINUSE, f"TCP port {port} is already listening")
        cfg = config if config is not None else self.config
        lst = Listener(self, addr, port, backlog if backlog is not None else cfg.backlog, cfg)
        self.listeners[(addr, port)] = lst
        return lst

    def close_listener(self, lst: Listener, now: float) -> None:
        """Stop listening; half-open and unaccepted connections are reset (as Linux does)."""
        lst.closed = True
        self.listeners.pop((lst.addr, lst.port), None)
        for conn in list(lst.syn_queue.values()) + list(lst.accept_queue):
            conn.abort(now)
        lst.syn_queue.clear()
        lst.accept_queue.clear()
        self.ready_listeners.discard(lst)

    def port_in_use(self, port: int) -> bool:
        return any(p == port for (_, p) in self.listeners) or any(k[1] == port for k in self.connections)

    def _ephemeral(self, laddr: int, raddr: int, rport: int) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        start = self._rng.randrange(span)
        steers_here = self.ip.steers_here  # one reactor of several: replies must come back here
        for i in range(span):
            port = EPHEMERAL_FIRST + (start + i) % span
            if not steers_here(laddr, raddr, port, rport):
                continue
            if (laddr, port, raddr, rport) not in self.connections and (0, port) not in self.listeners:
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no free ephemeral TCP port for this destination")

    def connect(
        self,
        raddr: int,
        rport: int,
        now: float,
        *,
        laddr: int = 0,
        lport: int = 0,
        config: TcpConfig | None = None,
    ) -> Connection:
        """Active open: a new connection in SYN-SENT."""
        if not 0 < rport < 65536:
            raise OSError(errno.EINVAL, f"bad destination port {rport}")
        if raddr == 0 or ipv4.is_multicast(raddr) or raddr == ipv4.LIMITED_BROADCAST:
            raise OSError(errno.ENETUNREACH, "cannot connect to that address")
        iface, _hop, mss = self._mss_for(raddr)
        if raddr == iface.broadcast:
            raise OSError(errno.ENETUNREACH, "cannot connect to a broadcast address")
        laddr = laddr or iface.addr
        lport = lport or self._ephemeral(laddr, raddr, rport)
        key = (laddr, lport, raddr, rport)
        if key in self.connections:
            raise OSError(errno.EADDRINUSE, "that connection already exists")
        if self.memory.over_hard_limit:
            self.drops["tcp_mem_refused"] += 1
            raise OSError(errno.ENOBUFS, "TCP buffer memory above its hard limit (tcp/memory.py)")
        conn = self._new_connection(key, now, iface, mss, config)
        self.connections[key] = conn
        conn.connect(now)
        self._stats["active_opens"] += 1
        return conn

    def _new_connection(
        self, key: Key, now: float, iface: Interface, mss: int, config: TcpConfig | None = None,
        iss: int | None = None,
    ) -> Connection:
        """A connection of ``key`` whose segments leave through ``iface`` (its route: the
        caller looked it up for the MSS)."""
        laddr, lport, raddr, rport = key
        if iss is None:
            iss = self.isn.isn(now, laddr, lport, raddr, rport)
        conn = Connection(
            self, self.ip.timers, config or self.config, laddr, lport, raddr, rport,
            iss=iss, now=now, mss=mss, ts_offset=self._ts_offset(laddr, raddr),
        )
        conn.gso_max = iface.gso_max
        return conn

    # == input ================================================================================
    def input(self, d: Datagram, now: float) -> None:
        """A datagram for TCP from the network layer (its reused :class:`~aiostack.ip.datagram.Datagram`:
        only ints are kept from it; the segment's payload view is consumed within this call)."""
        if d.dst_bcast or d.link_bcast:
            self.drops["tcp_broadcast"] += 1  # RFC 9293 §3.9.1.2: TCP is unicast only
            return
        view = d.view
        l4 = d.l4
        end = d.end
        if not d.csum_valid and ones_sum_at(view, l4, end, pseudo_header_sum(d.src, d.dst, 6, end - l4)) != 0xFFFF:
            self.drops["tcp_bad_checksum"] += 1
            return
        # The header read from the bytes under the view (C loads in the compiled build): the
        # stack's view is of the whole frame buffer, or of a reassembled datagram's bytes.
        parsed = parse(view.obj, l4, end, view)
        if isinstance(parsed, str):
            self.drops[parsed] += 1
            return
        seg = parsed
        if seg.src_port == 0 or seg.dst_port == 0:
            self.drops["tcp_port_zero"] += 1
            return
        if seg.bad_options:
            self._stats["tcp_bad_options"] += 1  # parsed up to the bad one (tcp/segment.py notes)
        self._segments_in += 1
        key = (d.dst, seg.dst_port, d.src, seg.src_port)
        conn = self.connections.get(key)
        if (
            conn is not None
            and conn.state == TIME_WAIT
            and seg.flags & SYN
            and not seg.flags & ACK
            and self._time_wait_reuse(conn, seg, now)
        ):
            conn = None
        if conn is not None:
            conn.segment_arrives(seg, now)
            return
        lst = self.listeners.get((d.dst, seg.dst_port)) or self.listeners.get((0, seg.dst_port))
        if lst is not None:
            self._listen_input(lst, key, seg, now)
            return
        if self._offer_stray():
            return
        self.drops["tcp_no_socket"] += 1
        self._reset_for(key, seg, now)

    def _offer_stray(self) -> bool:
        """Whether :attr:`on_stray` took the segment being received (the network layer's one
        :class:`~aiostack.ip.datagram.Datagram` describes it). Only ever called where the
        segment matched no connection, so the established path never pays for it."""
        on_stray = self.on_stray
        if on_stray is None:
            return False
        d = self.ip.dgram
        view = d.view
        ip_off = d.ip_off
        if ip_off >= _ETH_HLEN:  # a frame's own buffer: its Ethernet header is in front
            frame = bytes(view[ip_off - _ETH_HLEN : d.end])
        else:  # a datagram reassembled from fragments has none: ours (every reactor has our MAC)
            mac = d.iface.mac
            frame = mac + mac + _ETHERTYPE_IPV4 + bytes(view[ip_off : d.end])
        return bool(on_stray(frame))

    def _time_wait_reuse(self, conn: Connection, seg: Segment, now: float) -> bool:
        """A new SYN for a TIME-WAIT connection may start a new incarnation (RFC 6191 §2, decided
        on whether the *new* SYN carries timestamps: tcp/time_wait.py)."""
        rb = conn.rcvbuf
        if not syn_may_reopen(
            old_ts_ok=conn.ts_ok,
            old_ts_recent=conn.ts_recent,
            old_rcv_nxt=None if rb is None else rb.rcv_nxt,
            syn_seq=seg.seq,
            syn_ts_val=seg.ts_val,
            timestamps_enabled=conn.config.timestamps,
        ):
            return False
        conn._to_closed()
        self._stats["time_wait_reused"] += 1
        return True

    def _reset_for(self, key: Key, seg: Segment, now: float) -> None:
        """RFC 9293 §3.10.7.1: a segment for no connection is answered with a reset (unless it
        is one): <SEQ=SEG.ACK><CTL=RST> for an ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
        if seg.flags & wire.RST:
            return
        if seg.flags & wire.ACK:
            self._send_raw(key, seg.ack, 0, wire.RST, now)
        else:
            self._send_raw(key, 0, (seg.seq + seg.seg_len) & MASK, wire.RST | wire.ACK, now)
        self._stats["resets_sent"] += 1

    def _listen_input(self, lst: Listener, key: Key, seg: Segment, now: float) -> None:
        """RFC 9293 §3.10.7.2 (LISTEN), with SYN cookies when the SYN queue is full."""
        flags = seg.flags
        if flags & RST:
            if self._offer_stray():  # it may reset another reactor's connection
                return
            self.drops["tcp_listen_rst"] += 1
            return
        if flags & ACK:
            if not flags & SYN and self._cookie_ack(lst, key, seg, now):
                return
            if self._offer_stray():
                return
            self.drops["tcp_listen_bad_ack"] += 1
            self._reset_for(key, seg, now)
            return
        if not flags & SYN:
            if self._offer_stray():
                return
            self.drops["tcp_listen_no_syn"] += 1
            return
        if len(lst.accept_queue) >= lst.backlog:
            self.drops["tcp_accept_queue_full"] += 1  # like Linux: the peer's SYN retry comes back later
            return
        if self.memory.over_hard_limit:
            self.drops["tcp_mem_refused"] += 1  # tcp/memory.py: no new buffers above the hard total
            return
        # The flow's cached route (ip/flow.py) gives the interface for the MSS and becomes the
        # connection's transmit route: one dict lookup instead of two route lookups per open.
        rt = self.ip.flow_route(key[0], key[2], PROTO_TCP)
        if rt is not None:
            iface = rt.iface
            mss = _mss_of(iface)
        else:  # no route, or a broadcast peer: as for any address
            try:
                iface, _hop, mss = self._mss_for(key[2])
            except OSError:
                self.drops["tcp_syn_no_route"] += 1
                return
        if len(lst.syn_queue) >= lst.backlog:
            if not lst.config.syncookies:
                self.drops["tcp_syn_queue_full"] += 1
                return
            self._send_cookie_synack(lst, key, seg, mss, now)
            return
        key = self._passive_key(lst, key)
        conn = self._new_connection(key, now, iface, mss, lst.config)
        conn.tx_route = rt
        conn.listener = lst
        lst.syn_queue[key] = conn
        self.connections[key] = conn
        conn.accept_syn(seg, now)
        self._stats["passive_opens"] += 1

    def _passive_key(self, lst: Listener, key: Key) -> Key:
        """``key`` for a connection the listener keeps, with the local address and port as the
        listener's (or the interface's) own int objects rather than the ones parsed from this
        segment: a connection's key and addresses are held as long as it lives, and with a
        million connections two private ints each are 60 MB."""
        laddr = key[0]
        if laddr == lst.addr:
            laddr = lst.addr
        else:
            for iface in self.ip.interfaces:
                if iface.addr == laddr:
                    laddr = iface.addr
                    break
        return (laddr, lst.port, key[2], key[3])

    def _send_cookie_synack(self, lst: Listener, key: Key, seg: Segment, mss: int, now: float) -> None:
        laddr, lport, raddr, rport = key
        cfg = lst.config
        peer_mss = max(seg.mss or 536, cfg.min_mss)
        iss, mss_used = self.cookies.make(now, laddr, lport, raddr, rport, seg.seq, min(peer_mss, mss))
        ts = None
        wscale = None
        sack = False
        if seg.ts_val is not None and cfg.timestamps:
            sack = seg.sack_permitted and cfg.sack
            ws = seg.wscale if (seg.wscale is not None and cfg.window_scaling) else None
            if ws is not None:
                wscale = Connection._choose_wscale(cfg.rcvbuf)
            ts_now = (int(now * 1000) + self._ts_offset(laddr, raddr)) & MASK
            ts = (self.cookies.encode_ts(ts_now, ws, sack), seg.ts_val)
        options = wire.encode_options(mss=mss_used, wscale=wscale, sack_permitted=sack, timestamps=ts)
        self._send_raw(key, iss, (seg.seq + 1) & MASK, wire.SYN | wire.ACK, now, options=options,
                       window=min(cfg.rcvbuf, 0xFFFF))
        self._stats["syncookies_sent"] += 1

    def _cookie_ack(self, lst: Listener, key: Key, seg: Segment, now: float) -> bool:
        """The ACK completing a cookie handshake: rebuild the connection from the cookie."""
        if not lst.config.syncookies:
            return False
        laddr, lport, raddr, rport = key
        peer_isn = (seg.seq - 1) & MASK
        mss = self.cookies.check(now, laddr, lport, raddr, rport, peer_isn, (seg.ack - 1) & MASK)
        if mss is None:
            return False
        if len(lst.accept_queue) >= lst.backlog:
            self.drops["tcp_accept_queue_full"] += 1
            return True
        wscale: int | None = None
        sack = False
        if seg.ts_ecr is not None and lst.config.timestamps:
            wscale, sack = self.cookies.decode_ts(seg.ts_ecr)
        try:
            iface, _hop, local_mss = self._mss_for(raddr)
        except OSError:
            return False
        key = self._passive_key(lst, key)
        conn = self._new_connection(key, now, iface, local_mss, lst.config, (seg.ack - 1) & MASK)
        conn.listener = lst
        self.connections[key] = conn
        conn.accept_cookie(seg, now, mss=mss, wscale=wscale, sack_ok=sack)
        self._stats["syncookies_accepted"] += 1
        lst.accept_queue.append(conn)
        self.ready_listeners.add(lst)
        return True

    def icmp_error(
        self, itype: int, code: int, local: int, remote: int, view: memoryview, l4: int, end: int, mtu: int = 0
    ) -> None:
        """RFC 1122 §4.2.3.9 / RFC 5927: hard errors (protocol/port unreachable) abort a
        connection still in SYN-SENT; others are recorded as soft errors. The quoted sequence
        number must lie in SND.UNA..SND.MAX (RFC 5927 §4.1) or the message is ignored.
        Fragmentation Needed lowers the connection's MSS to the path MTU (RFC 1191 §6.3, floor
        :data:`~aiostack.ip.icmp.PMTU_FLOOR`: :func:`_path_mtu_changed`).
        ``local``/``remote`` are the quoted datagram's addresses (read by the network layer),
        its TCP header starts at ``view[l4]``."""
        quoted = wire.parse_quoted(view, l4, end)
        if quoted is None:
            return
        sport, dport, seq = quoted
        conn = self.connections.get((local, sport, remote, dport))
        if conn is None:
            self._stats["icmp_error_no_connection"] += 1
            return
        if ((seq - conn.snd_una) & MASK) >= ((conn.snd_max - conn.snd_una) & MASK):  # SEQ < SND.NXT
            self.drops["tcp_icmp_error_bad_seq"] += 1
            return
        self._stats["icmp_errors"] += 1
        hard = itype == icmp.DEST_UNREACHABLE and code in (
            icmp.CODE_PROTOCOL_UNREACHABLE,
            icmp.CODE_PORT_UNREACHABLE,
        )
        if itype == icmp.DEST_UNREACHABLE and code == icmp.CODE_FRAG_NEEDED:
            _path_mtu_changed(self, conn, mtu)
        elif conn.state == SYN_SENT and hard:
            conn.error = errno.ECONNREFUSED
            conn._to_closed()
        elif itype == icmp.DEST_UNREACHABLE:
            conn.soft_error = errno.EHOSTUNREACH if code != icmp.CODE_NET_UNREACHABLE else errno.ENETUNREACH

    # == output (the connections' Host) ========================================================
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
        """A connection's segment, built in one pass: the TCP header and payload written into the
        packet, then the network layer's headers in front of them from the connection's cached
        :class:`~aiostack.ip.flow.FlowRoute` (interface, next hop, the constant parts of both
        checksums). Without a route, or while the next hop's MAC is unknown (ARP queues the
        packet), :meth:`_send_raw`."""
        ip = self.ip
        gso_size = conn.snd_mss if length > conn.snd_mss else 0
        rt = conn.tx_route
        if rt is None or rt.version != ip.routes.version:
            rt = conn.tx_route = ip.flow_route(conn.local_addr, conn.remote_addr, PROTO_TCP)
        now = ip.timers.latest()
        mac = rt.next_hop_mac(now) if rt is not None else None
        if rt is None or mac is None:
            key = (conn.local_addr, conn.local_port, conn.remote_addr, conn.remote_port)
            self._send_raw(key, seq, ack, flags, now, options=options, window=window,
                           payload_from=conn if length else None, offset=offset, length=length,
                           gso_size=gso_size, ts_val=ts_val, ts_ecr=ts_ecr)
            return
        iface = rt.iface
        pool = ip.pool
        large = iface.large_pool
        if large is not None and (gso_size or length + 200 > pool.frame_capacity()):
            pool = large
        pkt = pool.try_alloc()
        if pkt is None:
            self.drops["tcp_tx_pool_exhausted"] += 1
            return
        buf = pkt.buf
        start = pkt.start
        if length:
            length = conn.sndbuf.copy_into(buf, start, offset, length)
        hlen = HEADER_LEN + len(options)
        if ts_val >= 0:
            hlen += TS_OPTION_LEN
        tcp_off = start - hlen
        tcp_len = hlen + length
        write_header(
            buf, tcp_off, conn.local_port, conn.remote_port, seq, ack, flags, window, options, 0, ts_val, ts_ecr
        )
        offload = iface.offloads.tx_csum
        if offload:  # the pseudo-header sum, for the device to finish
            csum = rt.pseudo_header_sum(tcp_len)
        else:
            csum = ~ones_sum_at(buf, tcp_off, start + length, rt.pseudo_sum + tcp_len) & 0xFFFF
        co = tcp_off + CHECKSUM_OFFSET
        buf[co] = csum >> 8
        buf[co + 1] = csum & 0xFF
        ip.flow_output(rt, pkt, tcp_off, tcp_len, mac)
        if offload:
            _offload(pkt, tcp_off - pkt.start, hlen, length, gso_size)
        self._segments_out += 1

    def _send_raw(
        self,
        key: Key,
        seq: int,
        ack: int,
        flags: int,
        now: float,
        *,
        options: bytes = b"",
        window: int = 0,
        payload_from: Connection | None = None,
        offset: int = 0,
        length: int = 0,
        gso_size: int = 0,
        ts_val: int = -1,
        ts_ecr: int = 0,
    ) -> None:
        """One segment out (``ts_val`` ≥ 0: with the timestamp option, as in :meth:`transmit`).
        ``gso_size`` > 0: ``length`` may exceed the MTU and the device cuts
        the segment into pieces of ``gso_size`` payload bytes (TSO; the connection sends such
        segments only on an interface with ``gso_max``)."""
        laddr, lport, raddr, rport = key
        try:
            iface, hop = self.ip.route(raddr)
        except OSError:
            self.drops["tcp_tx_no_route"] += 1
            return
        if flags & _SYN_ACK == _SYN_ACK and not iface.arp.may_queue_remakeable(hop, now):
            self.drops["tcp_synack_unresolved"] += 1  # re-made on the SYN's retry (ip/arp.py)
            return
        pool = self.ip.pool
        if iface.large_pool is not None and (gso_size or length + 200 > pool.frame_capacity()):
            pool = iface.large_pool
        pkt: Packet | None = pool.try_alloc()
        if pkt is None:
            self.drops["tcp_tx_pool_exhausted"] += 1
            return
        buf = pkt.buf
        start = pkt.start
        if payload_from is not None:
            length = payload_from.sndbuf.copy_into(buf, start, offset, length)
        pkt.end = start + length
        hlen = HEADER_LEN + len(options)
        if ts_val >= 0:
            hlen += TS_OPTION_LEN
        off = pkt.prepend(hlen)
        write_header(buf, off, lport, rport, seq, ack, flags, window, options, 0, ts_val, ts_ecr)
        tcp_len = hlen + length
        phs = pseudo_header_sum(laddr, raddr, ipv4.PROTO_TCP, tcp_len)
        co = off + wire.CHECKSUM_OFFSET
        if iface.offloads.tx_csum:
            buf[co] = phs >> 8
            buf[co + 1] = phs & 0xFF
            _offload(pkt, HEADERS_LEN, hlen, length, gso_size)  # ip_output writes no IPv4 options
        else:
            csum = ~ones_sum_at(buf, off, pkt.end, phs) & 0xFFFF
            buf[co] = csum >> 8
            buf[co + 1] = csum & 0xFF
        self.ip.ip_output(iface, hop, pkt, laddr, raddr, ipv4.PROTO_TCP, 64, 0, ipv4.FLAG_DF, 0, now)
        self._segments_out += 1

    def notify(self, conn: Connection) -> None:
        self.ready.add(conn)

    def ack_later(self, conn: Connection) -> bool:
        if not self.defer_acks:
            return False
        self.acks_owed.append(conn)
        return True

    def ack_soon(self, conn: Connection) -> bool:
        if not self.defer_acks:
            return False
        self.acks_soon.append(conn)
        return True

    def take_acks_soon(self) -> list[Connection]:
        """Connections whose window update waits for the end of the coming iteration."""
        soon = self.acks_soon
        self.acks_soon = []
        return soon

    def send_owed_acks(self, now: float) -> None:
        """The ACKs connections left to the end of the receive burst (see ``defer_acks``)."""
        owed = self.acks_owed
        if owed:
            self.acks_owed = []
            for conn in owed:
                conn.ack_if_owed(now)

    def established(self, conn: Connection) -> None:
        lst = conn.listener
        if not isinstance(lst, Listener):
            return
        key = (conn.local_addr, conn.local_port, conn.remote_addr, conn.remote_port)
        lst.syn_queue.pop(key, None)
        if lst.closed:
            conn.abort(self.ip.timers.now)
            return
        lst.accept_queue.append(conn)
        self.ready_listeners.add(lst)

    def closed(self, conn: Connection) -> None:
        key = (conn.local_addr, conn.local_port, conn.remote_addr, conn.remote_port)
        if self.connections.get(key) is conn:
            del self.connections[key]
        lst = conn.listener
        if isinstance(lst, Listener):
            lst.syn_queue.pop(key, None)
        self.memory.release(conn.sndbuf, conn.rcvbuf)
        retire(self.retired_drops, conn)
        retire_stats(self.retired_stats, conn)
        self.ready.add(conn)

    # == for the reactor ======================================================================
    def take_ready(self) -> set[Connection]:
        ready = self.ready
        self.ready = set()
        return ready

    def take_ready_listeners(self) -> set[Listener]:
        ready = self.ready_listeners
        self.ready_listeners = set()
        return ready

    def _fold_counts(self) -> None:
        Host._fold_counts(self)
        stats = self._stats
        fold(stats, "segments_in", self._segments_in)
        fold(stats, "segments_out", self._segments_out)
        self._segments_in = self._segments_out = 0

    def counters(self) -> dict[str, object]:
        states: Counter[str] = Counter(c.state.name for c in self.connections.values())
        return {
            "stats": dict(self.stats),
            "drops": dict(self.drops),
            "states": dict(states),
            "memory": self.memory.snapshot(),
            "connection_drops": connection_drops(self.connections.values(), self.retired_drops),
            "connection_stats": connection_stats(self.connections.values(), self.retired_stats),
        }

    def close(self) -> None:
        now = self.ip.timers.now
        for conn in list(self.connections.values()):
            if conn.state != TIME_WAIT:
                conn.abort(now)


def _path_mtu_changed(layer: TcpLayer, conn: Connection, reported: int) -> None:
    """A validated Fragmentation Needed (RFC 1191 §6.3, RFC 5927 §7): the connection's segments
    shrink to the path MTU, floored (:func:`~aiostack.ip.icmp.path_mtu`) so a forged MTU of 68
    or 0 leaves 512-byte segments, never less; the flow's :class:`~aiostack.ip.flow.FlowRoute`
    remembers it (RFC 1191 §5: per destination) for the connections that share it. Lost
    segments go again at the new size through the ordinary loss recovery."""
    rt = conn.tx_route
    current = rt.pmtu if rt is not None else 0
    if not current:
        current = layer._mss_for(conn.remote_addr)[0].mtu
    mtu = icmp.path_mtu(reported, current)
    if rt is not None:
        rt.pmtu = mtu
    mss = mtu - 40 - (TS_HEADER if conn.ts_ok else 0)
    if mss < conn.snd_mss:
        conn.snd_mss = mss
        conn._cc_mss_changed()
        layer.stats["pmtu_lowered"] += 1
    else:
        layer.stats["pmtu_unchanged"] += 1
