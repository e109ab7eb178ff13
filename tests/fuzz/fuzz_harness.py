"""The fuzz targets: one sans-I/O stack (IPStack + TcpLayer, as ``tests/scenario.py`` builds it)
with a UDP echo port, a TCP listener and one ESTABLISHED connection, fed what a fuzzer chose.

Two targets, each a function of one input (``bytes``) that raises on a defect and returns
otherwise; the state is built afresh for every input, so an input that fails always fails again
(a reproducer in ``tests/fuzz/crashes/`` is a complete test case):

- :func:`one_frame` — one frame enters the stack. The first byte picks how much of the frame the
  fuzzer writes: the raw frame; a payload behind our Ethernet header; an IPv4 packet whose header
  checksum is fixed; a TCP segment to the live connection or the listener (ports, and optionally
  sequence and acknowledgment numbers near the connection's, put right; checksums fixed); a UDP
  datagram or ICMP message (checksums fixed); an ICMP error quoting the live connection (RFC 5927).
  Without the fixing modes a fuzzer spends its time failing checksums.
- :func:`segment_sequence` — a sequence of up to 48 operations against the listener and the live
  connection: crafted segments (any flags, sequence and acknowledgment numbers near or far from
  the connection's, windows, raw option bytes, payloads), the passing of virtual time (timers
  fire), and the application's calls (send, recv, shutdown, close, abort, accept).

What counts as a defect (beyond any exception escaping the stack):

- a transmitted frame that is malformed: a bad IPv4 header checksum or length, a bad TCP
  checksum, a data offset outside the segment (the stack must only send well-formed frames);
- a packet buffer not back in the pool once the stack is closed (a leak: under attack, leaked
  buffers are an outage, see issue #13's "ARP queues drain the packet pool");
- an ESTABLISHED connection whose SND.UNA is beyond SND.NXT, or SND.NXT beyond SND.MAX.

Both targets run on whichever build is loaded (``AIOSTACK_NO_EXTENSIONS=1`` selects the pure one).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from aiostack.drivers.buffers import PacketPool
from aiostack.ip import ipv4
from aiostack.ip.checksum import internet_checksum, ones_sum, pseudo_header_sum
from aiostack.ip.stack import Interface, IPStack
from aiostack.ip.timers import TimerWheel
from aiostack.tcp.config import TcpConfig
from aiostack.tcp.connection import Connection, State
from aiostack.tcp.isn import IsnGenerator
from aiostack.tcp.layer import Listener, TcpLayer

__all__ = ["TARGETS", "FuzzDefect", "World", "one_frame", "segment_sequence"]

T0 = 1000.0
LOCAL_IP = ipv4.aton("10.0.0.2")
PEER_IP = ipv4.aton("10.0.0.1")
OTHER_IP = ipv4.aton("10.0.0.77")
LOCAL_MAC = bytes.fromhex("020000000002")
PEER_MAC = bytes.fromhex("020000000001")
LOCAL_PORT = 8080
PEER_PORT = 50000
UDP_PORT = 7
ISS = 1_000_000
PEER_ISN = 2_000_000
MASK = 0xFFFFFFFF
PEER_TS0 = 5000
MAX_FRAME = 1514

POOL = PacketPool(count=1024)
"""One pool for every input: building 1,024 buffers per input would dominate the run, and a
shared pool is how a leak shows (after each input every buffer must be back)."""


class FuzzDefect(AssertionError):
    """An invariant the stack broke (not an exception it raised)."""


class _FixedIsn(IsnGenerator):
    """The layer's RFC 6528 generator, fixed: our ISS is ISS and our TSval is ``now`` in ms (a
    subclass: the layer's field is typed in the compiled build)."""

    def __init__(self) -> None:
        super().__init__(b"fuzz")

    def isn(self, now: float, laddr: int, lport: int, raddr: int, rport: int) -> int:
        return ISS

    def ts_offset(self, laddr: int, raddr: int) -> int:
        return 0


# == frame crafting (checksums computed here, so the fuzzer gets past them) ======================
def ethernet(payload: bytes, ethertype: int = 0x0800, src: bytes = PEER_MAC) -> bytes:
    return LOCAL_MAC + src + struct.pack("!H", ethertype) + payload


def ipv4_packet(
    proto: int, l4: bytes, *, src: int = PEER_IP, dst: int = LOCAL_IP, ttl: int = 64, frag: int = 0, ident: int = 1
) -> bytes:
    hdr = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(l4), ident, frag, ttl, proto, 0, src, dst))
    struct.pack_into("!H", hdr, 10, internet_checksum(hdr))
    return bytes(hdr) + l4


def with_l4_checksum(proto: int, l4: bytearray, src: int = PEER_IP, dst: int = LOCAL_IP) -> bytes:
    """``l4`` with its TCP (offset 16) or UDP (offset 6) checksum filled in."""
    at = 16 if proto == 6 else 6
    if len(l4) < at + 2:
        return bytes(l4)
    l4[at : at + 2] = b"\0\0"
    csum = internet_checksum(l4, pseudo_header_sum(src, dst, proto, len(l4)))
    if proto == 17 and csum == 0:
        csum = 0xFFFF  # RFC 768: zero means "no checksum"
    struct.pack_into("!H", l4, at, csum)
    return bytes(l4)


def tcp_segment(
    *,
    seq: int,
    ack: int,
    flags: int,
    win: int = 65535,
    options: bytes = b"",
    payload: bytes = b"",
    sport: int = PEER_PORT,
    dport: int = LOCAL_PORT,
    doff: int | None = None,
    urp: int = 0,
) -> bytes:
    options += b"\0" * (-len(options) % 4)
    off = doff if doff is not None else 5 + len(options) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & MASK, ack & MASK, (off & 0xF) << 4, flags & 0xFF, win, 0, urp)
    return with_l4_checksum(6, bytearray(hdr + options + payload))


def ts_option(val: int, ecr: int) -> bytes:
    return b"\x01\x01" + struct.pack("!BBII", 8, 10, val & MASK, ecr & MASK)


SYN_OPTIONS = b"\x02\x04\x05\xb4\x04\x02" + struct.pack("!BBII", 8, 10, PEER_TS0, 0) + b"\x01\x03\x03\x07"
"""<mss 1460,sackOK,TS val 5000 ecr 0,nop,wscale 7>, as a Linux peer sends."""


# == checks on what the stack sent ===============================================================
def check_frame(frame: bytes) -> None:
    """Raise :class:`FuzzDefect` unless ``frame`` is a well-formed frame to send."""
    if len(frame) < 14:
        raise FuzzDefect(f"runt frame sent: {frame.hex()}")
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0806:
        if len(frame) < 42:
            raise FuzzDefect(f"short ARP frame sent: {frame.hex()}")
        return
    if ethertype != 0x0800:
        raise FuzzDefect(f"frame of EtherType {ethertype:#06x} sent")
    ip = frame[14:]
    if len(ip) < 20 or ip[0] >> 4 != 4 or (ip[0] & 0xF) < 5:
        raise FuzzDefect(f"bad IPv4 header sent: {frame.hex()}")
    ihl = (ip[0] & 0xF) * 4
    total = struct.unpack_from("!H", ip, 2)[0]
    if total != len(ip) or ihl > total:
        raise FuzzDefect(f"IPv4 total length {total} for {len(ip)} bytes sent: {frame[:64].hex()}")
    if ones_sum(ip[:ihl]) != 0xFFFF:
        raise FuzzDefect(f"bad IPv4 header checksum sent: {frame[:64].hex()}")
    proto = ip[9]
    frag = struct.unpack_from("!H", ip, 6)[0]
    if proto == 6 and frag & 0x3FFF == 0:
        seg = ip[ihl:]
        src, dst = struct.unpack_from("!II", ip, 12)
        if len(seg) < 20 or seg[12] >> 4 < 5 or (seg[12] >> 4) * 4 > len(seg):
            raise FuzzDefect(f"bad TCP header sent: {frame[:80].hex()}")
        if ones_sum(seg, pseudo_header_sum(src, dst, 6, len(seg))) != 0xFFFF:
            raise FuzzDefect(f"bad TCP checksum sent: {frame[:80].hex()}")


# == the world one input runs in =================================================================
class World:
    """A stack with a UDP port, a listener and one ESTABLISHED connection (accepted, with our
    data in flight and timestamps, SACK and window scaling negotiated), at virtual time T0."""

    def __init__(self, config: TcpConfig | None = None) -> None:
        self.now = T0
        self.sent = 0
        # A small wheel: same semantics (deadlines are exact whatever the slot count), and building
        # the default 4,096 slots cost more than the rest of an input.
        self.ip = IPStack(POOL, self.now, seed=1, timers=TimerWheel(self.now, slots=64))
        self.iface: Interface = self.ip.add_interface("fz0", LOCAL_MAC, "10.0.0.2/24", mtu=1500)
        self.iface.arp.add_static(PEER_IP, PEER_MAC)
        self.tcp = TcpLayer(self.ip, config=config or TcpConfig(), secret=b"fuzz")
        self.tcp.isn = _FixedIsn()  # type: ignore[assignment]
        self.udp = self.ip.udp_bind(0, UDP_PORT)
        self.listener: Listener = self.tcp.listen(0, LOCAL_PORT, backlog=4)
        self.peer_ts = PEER_TS0
        self.conn: Connection | None = None
        self.inject(ethernet(ipv4_packet(6, tcp_segment(seq=PEER_ISN, ack=0, flags=0x02, options=SYN_OPTIONS))))
        self.inject(self._peer_ack(PEER_ISN + 1, ISS + 1, 0x10))
        conn = self.listener.accept()
        if conn is None or conn.state != State.ESTABLISHED:
            raise RuntimeError(f"the fuzz world's handshake failed: {conn!r}")
        self.conn = conn
        conn.send(b"d" * 3000, self.now)  # data in flight: ACKs have something to acknowledge
        self.drain()

    def _peer_ack(self, seq: int, ack: int, flags: int, payload: bytes = b"", win: int = 1024) -> bytes:
        self.peer_ts += 1
        tsecr = int(self.now * 1000) & MASK
        seg = tcp_segment(
            seq=seq, ack=ack, flags=flags, win=win, options=ts_option(self.peer_ts, tsecr), payload=payload
        )
        return ethernet(ipv4_packet(6, seg))

    # -- input ------------------------------------------------------------------------------
    def inject(self, frame: bytes) -> None:
        """Deliver one frame (cut to 1,514 bytes: a driver with MTU 1500 delivers no longer one)."""
        pkt = POOL.packet_from(frame[:MAX_FRAME])
        try:
            self.ip.receive(self.iface, pkt, self.now)
        finally:
            pkt.free()
        self.drain()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing each timer at its deadline (at most 10,000 of them)."""
        target = self.now + seconds
        for _ in range(10_000):
            deadline = self.ip.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            self.ip.advance(self.now)
            self.drain()
        self.now = target
        self.ip.advance(self.now)
        self.drain()

    def drain(self) -> None:
        """Check and free everything the stack queued for transmission."""
        tx = self.iface.tx
        while tx:
            pkt = tx.pop(0)
            try:
                check_frame(pkt.tobytes())
            finally:
                pkt.free()
            self.sent += 1
        self.udp.rx.clear()
        self.udp.rx_bytes = 0
        self.tcp.take_ready()
        self.tcp.take_ready_listeners()
        self.check_connection()

    def check_connection(self) -> None:
        c = self.conn
        if c is not None and c.state == State.ESTABLISHED:
            if (c.snd_nxt - c.snd_una) & MASK >= 0x80000000:
                raise FuzzDefect(f"SND.UNA {c.snd_una} beyond SND.NXT {c.snd_nxt}")
            if (c.snd_max - c.snd_nxt) & MASK >= 0x80000000:
                raise FuzzDefect(f"SND.NXT {c.snd_nxt} beyond SND.MAX {c.snd_max}")

    # -- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close everything and check that every packet buffer is back in the pool."""
        for conn in list(self.listener.accept_queue):
            conn.abort(self.now)
        self.tcp.close()
        self.ip.close()
        self.drain()
        if POOL.available != POOL.count:
            leaked = POOL.count - POOL.available
            reset_pool()  # so one leak does not fail every later input too
            raise FuzzDefect(f"{leaked} packet buffer(s) not returned to the pool")


def reset_pool() -> None:
    """A fresh shared pool (after a leak was reported)."""
    global POOL
    POOL = PacketPool(count=1024)


def _run(world_input: Callable[[World], None], config: TcpConfig | None = None) -> None:
    world = World(config)
    try:
        world_input(world)
    finally:
        world.close()


# == target (a): one frame ========================================================================
def _frame_from(data: bytes, world: World) -> bytes:
    data = data.ljust(2, b"\0")
    mode = data[0] % 7
    sel = data[1]
    body = data[2:]
    conn = world.conn
    rcv_nxt = conn.rcvbuf.rcv_nxt if conn.rcvbuf is not None else PEER_ISN + 1
    if mode == 0:  # the raw frame
        return body
    if mode == 1:  # any payload and EtherType behind a frame addressed to us
        return LOCAL_MAC + PEER_MAC + body
    if mode == 2:  # an IPv4 packet: header checksum fixed when the header length allows it
        b = bytearray(body)
        ihl = (b[0] & 0xF) * 4 if b else 0
        if 20 <= ihl <= len(b):
            b[10:12] = b"\0\0"
            struct.pack_into("!H", b, 10, internet_checksum(b[:ihl]))
        return ethernet(bytes(b))
    if mode == 3:  # a TCP segment from the peer: ports (and maybe numbers) put right, checksum fixed
        b = bytearray(body.ljust(20, b"\0"))
        to_conn = sel & 1
        struct.pack_into("!HH", b, 0, PEER_PORT if to_conn else 40000 + (sel >> 4), LOCAL_PORT)
        if sel & 2:  # sequence number near RCV.NXT, acknowledgment near SND.UNA
            dseq, dack = struct.unpack_from("!hh", b, 4)
            struct.pack_into("!II", b, 4, (rcv_nxt + dseq) & MASK, (conn.snd_una + dack) & MASK)
        if sel & 4:  # a plausible data offset
            b[12] = (b[12] & 0x0F) | (min(15, max(5, b[12] >> 4)) << 4)
        return ethernet(ipv4_packet(6, with_l4_checksum(6, b)))
    if mode == 4:  # UDP to the echo port or anywhere, checksum fixed
        b = bytearray(body.ljust(8, b"\0"))
        if sel & 1:
            struct.pack_into("!H", b, 2, UDP_PORT)
        if sel & 2:
            struct.pack_into("!H", b, 4, len(b))
        return ethernet(ipv4_packet(17, with_l4_checksum(17, b)))
    if mode == 5:  # an ICMP message, checksum fixed
        b = bytearray(body.ljust(4, b"\0"))
        b[2:4] = b"\0\0"
        struct.pack_into("!H", b, 2, internet_checksum(b))
        return ethernet(ipv4_packet(1, bytes(b), ttl=sel))
    # mode 6: an ICMP error (type, code, 4 bytes from the input) quoting the live connection,
    # its sequence number SND.UNA or from the input (RFC 5927 §4.1: only in-flight data counts)
    b = body.ljust(10, b"\0")
    itype, code = b[0] % 20, b[1]
    seq = conn.snd_una if sel & 1 else struct.unpack_from("!I", b, 6)[0]
    quoted_tcp = struct.pack("!HHI", LOCAL_PORT, PEER_PORT, seq)
    quoted = ipv4_packet(6, quoted_tcp + b[10:30], src=LOCAL_IP, dst=PEER_IP)[: 28 + (sel >> 3)]
    msg = bytearray(bytes([itype, code, 0, 0]) + b[2:6] + quoted)
    struct.pack_into("!H", msg, 2, internet_checksum(msg))
    return ethernet(ipv4_packet(1, bytes(msg)))


def one_frame(data: bytes) -> None:
    """Target (a): one frame (shaped by ``data``) enters the stack; then 0.3 s, 3 s and 70 s pass."""
    if len(data) < 2:
        return

    def go(world: World) -> None:
        world.inject(_frame_from(data, world))
        for dt in (0.3, 3.0, 70.0):
            world.advance(dt)

    _run(go)


# == target (b): a sequence of segments and calls ================================================
class _Reader:
    """Draws small integers from the input (a FuzzedDataProvider of our own: the same bytes give
    the same operations on every build and without atheris installed)."""

    __slots__ = ("data", "i")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def left(self) -> int:
        return len(self.data) - self.i

    def take(self, n: int) -> bytes:
        out = self.data[self.i : self.i + n]
        self.i += len(out)
        return out

    def u8(self) -> int:
        b = self.take(1)
        return b[0] if b else 0

    def u16(self) -> int:
        return int.from_bytes(self.take(2).ljust(2, b"\0"), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4).ljust(4, b"\0"), "big")

    def s16(self) -> int:
        v = self.u16()
        return v - 0x10000 if v & 0x8000 else v


_OPTION_PIECES = (
    b"",
    b"\x01",
    b"\x00",
    b"\x02\x04\x00\x01",  # MSS 1
    b"\x02\x04\x05\xb4",
    b"\x03\x03\x0e",  # WS 14
    b"\x03\x03\xff",  # WS 255
    b"\x04\x02",
    b"\x08\x0a",  # TS, body follows from the input
    b"\x05\x0a",  # SACK, one block follows
    b"\x05\x22",  # SACK, four blocks follow
    b"\x02\x00",  # length 0
    b"\x02\x01",  # length 1
    b"\x02\xff",  # length beyond the header
    b"\x13\x12",  # MD5 signature (RFC 2385), unknown here
    b"\x1e\x04",  # MPTCP, unknown here
)


def _options(r: _Reader, world: World) -> bytes:
    """Option bytes: TS (the peer's clock, echoing our clock) by default, or pieces the input
    picks, some with numbers near the connection's (SACK blocks around SND.UNA)."""
    n = r.u8() % 6
    if n == 0:
        return ts_option(world.peer_ts, int(world.now * 1000))
    out = b""
    una = world.conn.snd_una
    for _ in range(n):
        piece = _OPTION_PIECES[r.u8() % len(_OPTION_PIECES)]
        out += piece
        if piece == b"\x08\x0a":
            out += struct.pack("!II", (world.peer_ts + r.s16()) & MASK, (int(world.now * 1000) + r.s16()) & MASK)
        elif piece[:1] == b"\x05" and len(piece) == 2:
            for _ in range((piece[1] - 2) // 8):
                left = (una + r.s16() * 16) & MASK
                out += struct.pack("!II", left, (left + r.u16()) & MASK)
    return out[:40]


def _segment(r: _Reader, world: World) -> bytes:
    conn = world.conn
    rcv_nxt = conn.rcvbuf.rcv_nxt if conn.rcvbuf is not None else PEER_ISN + 1
    how = r.u8()
    flags = r.u8()
    if how & 1:  # anywhere in sequence space
        seq, ack = r.u32(), r.u32()
    else:  # near RCV.NXT and SND.UNA (windows of ±32 KB, in 1-byte steps)
        seq = (rcv_nxt + r.s16()) & MASK
        ack = (conn.snd_una + r.s16()) & MASK
    win = r.u16()
    options = _options(r, world)
    payload = b"p" * (r.u16() % 1400)
    sport = PEER_PORT if not how & 2 else 40000 + (how >> 4)
    doff = None if not how & 4 else r.u8() % 16
    world.peer_ts += r.u8()
    seg = tcp_segment(
        seq=seq,
        ack=ack,
        flags=flags,
        win=win,
        options=options,
        payload=payload,
        sport=sport,
        doff=doff,
        urp=r.u16() if flags & 0x20 else 0,
    )
    return ethernet(ipv4_packet(6, seg))


def _call(r: _Reader, world: World, op: int) -> None:
    """The application's side. OSError (EPIPE, EAGAIN, ECONNRESET ...) is the API's documented
    answer in the wrong state, not a defect."""
    conn = world.conn
    try:
        if op == 8:
            conn.send(b"w" * (r.u16() % 70000), world.now)
        elif op == 9:
            conn.recv(r.u16() + 1, world.now)
        else:
            what = r.u8() % 4
            if what == 0:
                conn.shutdown_write(world.now)
            elif what == 1:
                conn.close(world.now)
            elif what == 2:
                conn.abort(world.now)
            else:
                world.listener.accept()
    except OSError:
        pass


def segment_sequence(data: bytes) -> None:
    """Target (b): up to 48 operations (segments to the connection or the listener, time, calls)."""

    def go(world: World) -> None:
        r = _Reader(data)
        for _ in range(48):
            if r.left() <= 0:
                break
            op = r.u8() % 12
            if op <= 5:
                world.inject(_segment(r, world))
            elif op == 6:
                world.advance((r.u16() % 2000) / 100.0)  # 0..20 s
            elif op == 7:
                world.advance(r.u8() * 2.0)  # 0..510 s: retransmission give-up, TIME-WAIT end
            elif op in (8, 9, 10):
                _call(r, world, op)
            else:
                world.inject(_frame_from(r.take(r.u8() % 64 + 2), world))
            world.drain()

    _run(go)


TARGETS: dict[str, Callable[[bytes], None]] = {"frame": one_frame, "segments": segment_sequence}
"""The fuzz targets by name (the corpus and crash directories are named after them)."""
