"""A stateless TCP handshake generator (masscan-style), for the idle-connections benchmark.

It writes SYNs from many (source address, source port) pairs to one server, answers every
SYN-ACK it sees with the ACK that completes the handshake (ack = the server's ISN + 1, the
timestamp echoed), and keeps nothing per connection but one byte of a bitmap (SYN-ACK seen).
So a million connections cost the client side a megabyte, not a million sockets.

Frames are built from templates with incremental checksums (RFC 1071 §2(4): the sum of the
constant words is computed once; per frame only the varying words are added), one
``struct.pack`` per frame. Connection ``i`` uses source address ``src_base + i // ports`` and
source port ``port_base + i % ports``; its initial sequence number is a hash of ``i``.

The options mirror a Linux client's SYN (MSS 1460, SACK-permitted, timestamps, window scale 7)
so that the server negotiates what it would with a real peer.

The caller moves the bytes (an AF_PACKET socket on the kernel's side of a TAP, or a memory-link
port): :meth:`HandshakeGen.syn` gives the frame for connection ``i``, :meth:`HandshakeGen.reply`
turns one received frame into the frame to send back (an ACK for a SYN-ACK, an ARP reply for an
ARP request for ``arp_addr``), or None.
"""

from __future__ import annotations

import socket
import struct

MASK = 0xFFFFFFFF

ETH_IP = 0x0800
ETH_ARP = 0x0806
SYN = 0x02
RST = 0x04
ACK = 0x10

TS_VAL = 1
"""Our timestamp value (constant: the server's PAWS check only needs it not to go backwards)."""

# eth(14) + IPv4 header up to the checksum (10): one constant prefix
_FRAME = struct.Struct("!24sHIIHHIIHHHH")
_SYN_OPTS_TAIL = struct.pack("!BB", 1, 3) + bytes((3, 7))  # NOP, WS 7
_ARP = struct.Struct("!6s6sHHHBBH6sI6sI")


def _aton(addr: str) -> int:
    return int.from_bytes(socket.inet_aton(addr), "big")


def _ntoa(addr: int) -> str:
    return socket.inet_ntoa(addr.to_bytes(4, "big"))


def _words(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    return sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, bytes):
        return mac
    return bytes.fromhex(mac.replace(":", ""))


class HandshakeGen:
    """Frames for ``count`` connections to ``server:port`` (see the module docstring)."""

    def __init__(
        self,
        *,
        count: int,
        server: str,
        port: int,
        server_mac: str | bytes,
        client_mac: str | bytes,
        src_base: str = "10.78.0.1",
        port_base: int = 1024,
        ports: int = 60000,
        arp_addr: str | None = None,
    ) -> None:
        if not 0 < ports <= 65536 - port_base:
            raise ValueError("source ports out of range")
        self.count = count
        self.server = _aton(server)
        self.port = port
        self.server_mac = mac_bytes(server_mac)
        self.client_mac = mac_bytes(client_mac)
        self.src_base = _aton(src_base)
        self.port_base = port_base
        self.ports = ports
        self.arp_addr = _aton(arp_addr) if arp_addr else None
        self.seen = bytearray(count)
        """1 once connection i's SYN-ACK was answered."""
        self.synacks = 0
        self.dup_synacks = 0
        self.resets = 0
        self.other = 0
        eth = self.server_mac + self.client_mac + struct.pack("!H", ETH_IP)
        # SYN: 20-byte IP header + 40-byte TCP header (MSS, SACK-permitted + TS, NOP + WS).
        self._syn_opts = struct.pack("!BBHBBBBII", 2, 4, 1460, 4, 2, 8, 10, TS_VAL, 0) + _SYN_OPTS_TAIL
        self._syn_len = 20 + 20 + len(self._syn_opts)
        self._syn_prefix = eth + struct.pack("!BBHHHBB", 0x45, 0, self._syn_len, 0, 0x4000, 64, 6)
        # ACK: 20-byte TCP header + NOP NOP TS.
        self._ack_len = 20 + 32
        self._ack_prefix = eth + struct.pack("!BBHHHBB", 0x45, 0, self._ack_len, 0, 0x4000, 64, 6)
        self._syn_struct = struct.Struct(_FRAME.format + f"{len(self._syn_opts)}s")
        self._ack_struct = struct.Struct(_FRAME.format + "4sII")
        # Constant parts of the sums (everything but source address, source port, seq, ack, TS ecr).
        ip_const = 0x4500 + 0x4000 + (64 << 8 | 6) + (self.server >> 16) + (self.server & 0xFFFF)
        self._ip_syn = ip_const + self._syn_len
        self._ip_ack = ip_const + self._ack_len
        tcp_const = (self.server >> 16) + (self.server & 0xFFFF) + 6 + port
        self._tcp_syn = tcp_const + (40 - 0) + ((10 << 12) | SYN) + 0xFFFF + _words(self._syn_opts)
        self._tcp_ack = tcp_const + 32 + ((8 << 12) | ACK) + 0xFFFF + _words(struct.pack("!BBBBI", 1, 1, 8, 10, TS_VAL))
        self._ack_opt_head = struct.pack("!BBBB", 1, 1, 8, 10)

    # -- addressing --------------------------------------------------------------------------
    def endpoint(self, i: int) -> tuple[int, int]:
        q, r = divmod(i, self.ports)
        return self.src_base + q, self.port_base + r

    def index(self, addr: int, port: int) -> int:
        return (addr - self.src_base) * self.ports + (port - self.port_base)

    @staticmethod
    def isn(i: int) -> int:
        return (i * 0x9E3779B1 + 12345) & MASK

    @property
    def source_network(self) -> str:
        last = self.src_base + (self.count - 1) // self.ports
        return f"{_ntoa(self.src_base)}..{_ntoa(last)}"

    # -- frames ------------------------------------------------------------------------------
    def syn(self, i: int) -> bytes:
        src, sport = self.endpoint(i)
        seq = self.isn(i)
        s_ip = self._ip_syn + (src >> 16) + (src & 0xFFFF)
        ip_csum = ~_fold(s_ip) & 0xFFFF
        s = self._tcp_syn + (src >> 16) + (src & 0xFFFF) + sport + (seq >> 16) + (seq & 0xFFFF)
        tcp_csum = ~_fold(s) & 0xFFFF
        return self._syn_struct.pack(
            self._syn_prefix, ip_csum, src, self.server, sport, self.port, seq, 0,
            (10 << 12) | SYN, 0xFFFF, tcp_csum, 0, self._syn_opts,
        )

    def ack(self, i: int, server_seq: int, ts_ecr: int) -> bytes:
        src, sport = self.endpoint(i)
        seq = (self.isn(i) + 1) & MASK
        ack = (server_seq + 1) & MASK
        s_ip = self._ip_ack + (src >> 16) + (src & 0xFFFF)
        ip_csum = ~_fold(s_ip) & 0xFFFF
        s = (
            self._tcp_ack + (src >> 16) + (src & 0xFFFF) + sport + (seq >> 16) + (seq & 0xFFFF)
            + (ack >> 16) + (ack & 0xFFFF) + (ts_ecr >> 16) + (ts_ecr & 0xFFFF)
        )
        tcp_csum = ~_fold(s) & 0xFFFF
        return self._ack_struct.pack(
            self._ack_prefix, ip_csum, src, self.server, sport, self.port, seq, ack,
            (8 << 12) | ACK, 0xFFFF, tcp_csum, 0, self._ack_opt_head, TS_VAL, ts_ecr,
        )

    def reply(self, frame: bytes | bytearray | memoryview) -> bytes | None:
        """The frame answering ``frame`` (see the module docstring), or None."""
        if len(frame) < 54:
            if len(frame) >= 42 and frame[12] == 8 and frame[13] == 6:
                return self._arp_reply(frame)
            self.other += 1
            return None
        if frame[12] != 8 or frame[13] != 0 or frame[23] != 6:
            if frame[12] == 8 and frame[13] == 6:
                return self._arp_reply(frame)
            self.other += 1
            return None
        ihl = (frame[14] & 0x0F) * 4
        t = 14 + ihl
        flags = frame[t + 13]
        if flags & RST:
            self.resets += 1
            return None
        if flags & (SYN | ACK) != SYN | ACK:
            self.other += 1
            return None
        dst = int.from_bytes(frame[30:34], "big")
        dport = (frame[t + 2] << 8) | frame[t + 3]
        i = self.index(dst, dport)
        if not 0 <= i < self.count:
            self.other += 1
            return None
        server_seq = int.from_bytes(frame[t + 4 : t + 8], "big")
        ts_val = 0
        hlen = (frame[t + 12] >> 4) * 4
        o = t + 20
        end = t + hlen
        while o < end:  # find the timestamps option
            kind = frame[o]
            if kind == 0:
                break
            if kind == 1:
                o += 1
                continue
            if o + 1 >= end:
                break
            length = frame[o + 1]
            if length < 2:
                break
            if kind == 8 and length == 10:
                ts_val = int.from_bytes(frame[o + 2 : o + 6], "big")
                break
            o += length
        if self.seen[i]:
            self.dup_synacks += 1
        else:
            self.seen[i] = 1
            self.synacks += 1
        return self.ack(i, server_seq, ts_val)

    def _arp_reply(self, frame: bytes | bytearray | memoryview) -> bytes | None:
        if self.arp_addr is None or len(frame) < 42:
            return None
        (_d, _s, _t, htype, ptype, hlen, plen, op, sha, spa, _tha, tpa) = _ARP.unpack_from(frame, 0)
        if op != 1 or tpa != self.arp_addr or ptype != ETH_IP:
            return None
        return _ARP.pack(sha, self.client_mac, ETH_ARP, htype, ptype, hlen, plen, 2,
                         self.client_mac, tpa, sha, spa)


class Pacer:
    """Which SYNs to send next for connections ``[first, last)`` of ``gen``: at most ``window``
    unanswered at once; once all went out, SYNs still unanswered after ``stall`` seconds without
    progress are sent again (a new sweep), as is the window when it stays full that long. The
    default stall (2 s) rides out the server's garbage-collection pauses; a lost ACK needs no
    resend from here: the server retransmits its SYN-ACK and that is answered again."""

    def __init__(self, gen: HandshakeGen, first: int, last: int, window: int, stall: float = 2.0) -> None:
        self.gen = gen
        self.first = first
        self.last = last
        self.window = window
        self.stall = stall
        self.nxt = first
        self.outstanding = 0
        self.sweeps = 0
        self.sent = 0
        self.resent = 0
        self.answered = 0
        self.last_progress: float | None = None

    @property
    def complete(self) -> bool:
        return self.answered >= self.last - self.first

    def due(self, now: float, limit: int = 1 << 30) -> list[int]:
        if self.last_progress is None:
            self.last_progress = now
        if now - self.last_progress > self.stall and not self.complete:
            if self.nxt >= self.last:
                self.sweeps += 1
                self.nxt = self.first
                self.outstanding = 0
            elif self.outstanding >= self.window:
                self.outstanding = 0
            self.last_progress = now
        out: list[int] = []
        seen = self.gen.seen
        nxt = self.nxt
        last = self.last
        room = min(self.window - self.outstanding, limit)
        while room > 0 and nxt < last:
            if not seen[nxt]:
                out.append(nxt)
                room -= 1
            nxt += 1
        self.nxt = nxt
        self.outstanding += len(out)
        if self.sweeps:
            self.resent += len(out)
        else:
            self.sent += len(out)
        return out

    def answered_new(self, n: int, now: float) -> None:
        """``n`` SYN-ACKs (first ones for their connections) came back."""
        if n:
            self.answered += n
            self.outstanding = max(0, self.outstanding - n)
            self.last_progress = now
