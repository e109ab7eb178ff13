"""Shared helpers of the live TCP attack tests (tests/attacks/test_tcp_*.py).

Two halves:

- **test side** (runs in pytest, outside the namespace): start the HTTP example on a TAP inside
  the test's namespace (:func:`start_server`), check that a legitimate client is served — curl
  200 and a 10 MB download with the right SHA-256 (:func:`legit_client_served`) — run an attack
  inside the namespace (:func:`run_attack`), read the server's RSS and CPU time, and stop it
  for its counters (:func:`stop_server`).
- **attacker side** (``python tcp_attack_helpers.py ATTACK ...``, run by :func:`run_attack`
  with ``ip netns exec`` inside the test's namespace): :class:`RawPeer` crafts Ethernet frames
  with dpkt and sends them on the kernel's end of the TAP through an ``AF_PACKET`` socket,
  from an address of its own in the TAP's subnet (it answers ARP for it), so it knows every
  sequence number of the connections it opens. Every attack is bounded in frames and time and
  prints one JSON line of what it saw.

Traffic stays inside the namespace: the TAP's two ends and the addresses of its /24.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "10.77.0.1"
STACK = "10.77.0.2"
ATTACKER = "10.77.0.50"
ATTACKER_MAC = bytes.fromhex("02000000a050")
IFACE = "aiostack0"
PORT = 8080
TAP_ARGS = ["--driver", "tap", "--iface", IFACE, "--addr", f"{STACK}/24", "--host-addr", f"{HOST}/24"]
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent.parent
BIG = 10_000_000
"""The legitimate download: 10 MB of the HTTP example's /bytes/N pattern."""


def body_sha256(n: int) -> str:
    """SHA-256 of the HTTP example's /bytes/N body (bytes 0..255 repeated)."""
    pattern = bytes(range(256)) * 256
    h = hashlib.sha256()
    left = n
    while left:
        chunk = pattern[: min(left, len(pattern))]
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


# == test side =====================================================================================
def start_server(ns: Any, *extra: str) -> subprocess.Popen[bytes]:
    """examples/http_server.py on a TAP in ``ns``, counters printed on exit."""
    from conftest import PYTHON, example, wait_line

    proc = ns.popen(
        [PYTHON, example("http_server.py"), *TAP_ARGS, "--port", str(PORT), "--stats", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_line(proc, "serving on")
    # The attacker's frames leave on the kernel's end of the TAP with a MAC of their own.
    ns.run(["ip", "link", "set", IFACE, "promisc", "on"])
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """SIGTERM the server; its counters (the JSON line --stats prints)."""
    from conftest import stop

    return json.loads(stop(proc).strip().splitlines()[-1])


def legit_client_served(ns: Any) -> None:
    """curl gets 200 for / and a 10 MB body whose SHA-256 is right."""
    from conftest import need_tool

    curl = need_tool("curl", "curl")
    res = ns.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", f"http://{STACK}:{PORT}/"],
                 timeout=30, check=False)
    assert res.stdout == "200", (res.stdout, res.stderr)
    res = ns.run(["sh", "-c", f"{curl} -sS --max-time 30 http://{STACK}:{PORT}/bytes/{BIG} | sha256sum"],
                 timeout=60, check=False)
    assert res.stdout.split()[0] == body_sha256(BIG), (res.stdout, res.stderr)


def run_attack(ns: Any, attack: str, *args: str, timeout: float = 30) -> dict[str, Any]:
    """Run ``attack`` inside ``ns`` (this file as a script); its JSON result."""
    from conftest import PYTHON

    res = ns.run([PYTHON, str(HERE), attack, *args], timeout=timeout, check=False)
    assert res.returncode == 0, (res.stdout, res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def start_attack(ns: Any, attack: str, *args: str) -> subprocess.Popen[bytes]:
    """Start ``attack`` inside ``ns`` in the background (end it with :func:`finish_attack`)."""
    from conftest import PYTHON

    return ns.popen([PYTHON, str(HERE), attack, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_attack(proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (out.decode(), err.decode())
    return json.loads(out.decode().strip().splitlines()[-1])


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def assert_no_internal_error(counters: dict[str, Any]) -> None:
    assert "internal_error" not in counters.get("drops", {}), counters.get("drops")
    assert counters["reactor"]["internal_errors"] == 0


# == attacker side =================================================================================
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MASK = 0xFFFFFFFF


def _opts(*items: tuple[int, bytes] | bytes) -> bytes:
    """Option bytes: (kind, body) pairs laid out as kind, length, body; raw bytes as given;
    padded with NOPs... no: with EOL zeros to a multiple of 4."""
    out = b""
    for item in items:
        if isinstance(item, bytes):
            out += item
        else:
            kind, body = item
            out += bytes([kind, 2 + len(body)]) + body
    return out + b"\0" * (-len(out) % 4)


MSS = lambda n: (2, struct.pack("!H", n))  # noqa: E731
WSCALE = lambda n: (3, bytes([n]))  # noqa: E731
SACK_PERM = (4, b"")


def SACK(blocks: list[tuple[int, int]]) -> tuple[int, bytes]:
    return (5, b"".join(struct.pack("!II", a & MASK, b & MASK) for a, b in blocks))


class RawConn:
    """One connection the raw peer opened: its port and both sides' next sequence numbers."""

    def __init__(self, sport: int, snd_nxt: int, rcv_nxt: int, peer_wscale: int | None) -> None:
        self.sport = sport
        self.snd_nxt = snd_nxt
        self.rcv_nxt = rcv_nxt
        self.server_snd_una = rcv_nxt  # what we acknowledged last
        self.peer_wscale = peer_wscale


class RawPeer:
    """A hand-made TCP peer on the kernel's end of the TAP (see the module docstring)."""

    def __init__(self, ip: str = ATTACKER, mac: bytes = ATTACKER_MAC) -> None:
        import dpkt

        self.dpkt = dpkt
        self.ip = socket.inet_aton(ip)
        self.mac = mac
        self.server_ip = socket.inet_aton(STACK)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((IFACE, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.server_mac = self._resolve()
        self.backlog: list[Any] = []

    # -- frames --------------------------------------------------------------------------------
    def _send_frame(self, frame: bytes) -> None:
        self.sock.send(frame)

    def _recv_frame(self, timeout: float) -> bytes | None:
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            frame, addr = self.sock.recvfrom(1 << 17)
        except TimeoutError:
            return None
        if addr[2] == PACKET_OUTGOING:
            return b""
        return frame

    def _resolve(self) -> bytes:
        dpkt = self.dpkt
        arp = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=self.mac, spa=self.ip, tha=b"\0" * 6, tpa=self.server_ip)
        frame = bytes(dpkt.ethernet.Ethernet(dst=b"\xff" * 6, src=self.mac, type=0x0806, data=arp))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self._send_frame(frame)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                got = self._recv_frame(end - time.monotonic())
                if not got:
                    continue
                eth = dpkt.ethernet.Ethernet(got)
                if eth.type == 0x0806 and eth.data.op == dpkt.arp.ARP_OP_REPLY and eth.data.spa == self.server_ip:
                    return eth.data.sha
        raise SystemExit("the stack did not answer ARP")

    def _answer_arp(self, eth: Any) -> None:
        dpkt = self.dpkt
        a = eth.data
        if a.op == dpkt.arp.ARP_OP_REQUEST and a.tpa == self.ip:
            reply = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REPLY, sha=self.mac, spa=self.ip, tha=a.sha, tpa=a.spa)
            self._send_frame(bytes(dpkt.ethernet.Ethernet(dst=a.sha, src=self.mac, type=0x0806, data=reply)))

    def send(
        self,
        sport: int,
        seq: int,
        ack: int,
        flags: int,
        *,
        win: int = 65535,
        options: bytes = b"",
        payload: bytes = b"",
        doff: int | None = None,
        dport: int = PORT,
    ) -> None:
        dpkt = self.dpkt
        tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq & MASK, ack=ack & MASK, flags=flags, win=win,
                           opts=options, data=payload)
        tcp.off = doff if doff is not None else 5 + len(options) // 4
        ip = dpkt.ip.IP(src=self.ip, dst=self.server_ip, p=6, ttl=64, id=random.randrange(65536), data=tcp)
        ip.len = 20 + len(bytes(tcp))
        raw = bytes(ip)  # dpkt fills both checksums (the TCP one over the segment as laid out)
        if doff is not None:
            # A lying data offset: dpkt's checksum covered the bytes it serialised; recompute it
            # over the wire bytes so only the offset is wrong.
            seg = bytearray(raw[20:])
            seg[16:18] = b"\0\0"
            pseudo = self.ip + self.server_ip + struct.pack("!BBH", 0, 6, len(seg))
            seg[16:18] = struct.pack("!H", dpkt.in_cksum(pseudo + bytes(seg)))
            raw = raw[:20] + bytes(seg)
        self._send_frame(bytes(dpkt.ethernet.Ethernet(dst=self.server_mac, src=self.mac, type=0x0800)) + raw)

    def recv(self, sport: int | None = None, timeout: float = 1.0) -> Any:
        """The next TCP segment from the server to us (to ``sport`` if given), or None."""
        dpkt = self.dpkt
        for i, seg in enumerate(self.backlog):
            if sport is None or seg.dport == sport:
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            frame = self._recv_frame(left)
            if not frame:
                continue
            eth = dpkt.ethernet.Ethernet(frame)
            if eth.type == 0x0806:
                self._answer_arp(eth)
                continue
            if eth.type != 0x0800 or eth.dst != self.mac:
                continue
            ip = eth.data
            if ip.p != 6 or ip.dst != self.ip:
                continue
            seg = ip.data
            if not isinstance(seg, dpkt.tcp.TCP):
                continue
            if sport is None or seg.dport == sport:
                return seg
            if len(self.backlog) < 10000:
                self.backlog.append(seg)

    def connect(self, sport: int, options: bytes | None = None, win: int = 65535) -> RawConn:
        """Three-way handshake from ``sport``; default options: MSS 1460, SACK-permitted, WS 7."""
        isn = random.randrange(1 << 32)
        opts = options if options is not None else _opts(MSS(1460), SACK_PERM, WSCALE(7))
        for _ in range(3):
            self.send(sport, isn, 0, SYN, win=win, options=opts)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                seg = self.recv(sport, deadline - time.monotonic())
                if seg is not None and seg.flags & (SYN | ACK) == SYN | ACK and seg.ack == (isn + 1) & MASK:
                    conn = RawConn(sport, (isn + 1) & MASK, (seg.seq + 1) & MASK, None)
                    self.send(sport, conn.snd_nxt, conn.rcv_nxt, ACK, win=win)
                    return conn
        raise SystemExit(f"no SYN-ACK for port {sport}")

    def ack(self, c: RawConn, *, win: int = 65535, options: bytes = b"") -> None:
        self.send(c.sport, c.snd_nxt, c.rcv_nxt, ACK, win=win, options=options)

    def request(self, c: RawConn, path: str, *, ack: int | None = None) -> None:
        data = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        self.send(c.sport, c.snd_nxt, c.rcv_nxt if ack is None else ack, ACK | PSH, payload=data)

    def response_head(self, c: RawConn, timeout: float = 3.0) -> bytes:
        """Collect in-order data until a blank line; ACK what arrives."""
        got = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in got and time.monotonic() < deadline:
            seg = self.recv(c.sport, deadline - time.monotonic())
            if seg is None:
                break
            if seg.data and seg.seq == c.rcv_nxt:
                got += bytes(seg.data)
                c.rcv_nxt = (c.rcv_nxt + len(seg.data)) & MASK
                self.ack(c)
        return got


def _rfc5961() -> dict[str, Any]:
    """RFC 5961 §3 (RST), §4 (SYN), §5 (ACK) against one established connection."""
    p = RawPeer()
    c = p.connect(41000)
    out: dict[str, Any] = {}

    def challenge_ack(timeout: float = 1.5) -> bool:
        seg = p.recv(c.sport, timeout)
        return seg is not None and seg.flags & (ACK | RST) == ACK and seg.ack == c.snd_nxt and not seg.data

    # §3.2: an in-window RST that is not exactly at RCV.NXT: a challenge ACK, no reset.
    p.send(c.sport, c.snd_nxt + 1000, 0, RST)
    out["rst_in_window_challenged"] = challenge_ack()
    # §4.2: a SYN on an established connection, any sequence number: a challenge ACK.
    p.send(c.sport, c.snd_nxt + 10, 0, SYN, options=_opts(MSS(1460)))
    out["syn_challenged"] = challenge_ack()
    # §5.2: data whose ACK acknowledges what was never sent: dropped (an ACK answers it).
    p.request(c, "/", ack=c.rcv_nxt + 1_000_000)
    head = p.response_head(c, timeout=1.5)
    out["unacceptable_ack_dropped"] = head == b""
    # ... and one acknowledging data from before the window (SND.UNA - MAX.SND.WND): dropped too.
    p.request(c, "/", ack=c.rcv_nxt - (1 << 30))
    head = p.response_head(c, timeout=1.5)
    out["old_ack_dropped"] = head == b""
    # The connection survived all that: the same request, acceptable now, is answered.
    p.request(c, "/")
    head = p.response_head(c, timeout=3)
    c.snd_nxt = (c.snd_nxt + len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")) & MASK
    out["served_after"] = head.startswith(b"HTTP/1.1 200 OK")
    # Let the body arrive, then the exact RST (SEG.SEQ = RCV.NXT) resets (§3.2).
    while (seg := p.recv(c.sport, 0.3)) is not None:
        if seg.data and seg.seq == c.rcv_nxt:
            c.rcv_nxt = (c.rcv_nxt + len(seg.data)) & MASK
    p.ack(c)
    p.send(c.sport, c.snd_nxt, 0, RST)
    time.sleep(0.2)
    p.send(c.sport, c.snd_nxt, c.rcv_nxt, ACK | PSH, payload=b"GET / HTTP/1.1\r\n\r\n")
    seg = p.recv(c.sport, 1.5)
    out["exact_rst_reset"] = seg is not None and bool(seg.flags & RST)
    return out


def _malformed_options() -> dict[str, Any]:
    """Malformed TCP options on SYNs and on an established connection's data, WS > 14, and data
    offsets below 5 words or beyond the segment (RFC 9293 §3.1, RFC 7323 §2.3)."""
    p = RawPeer()
    layouts = {
        "length_0": bytes([2, 0, 5, 0xB4]),
        "length_1": bytes([3, 1, 7, 0]),
        "overrun": bytes([2, 40, 5, 0xB4]),
        "kind_without_length": bytes([1, 1, 1, 8]),
        "sack_odd_length": _opts((5, b"\0" * 5)),
        "ts_wrong_length": _opts((8, b"\0" * 4)),
        "repeated_mss": _opts(MSS(1460), MSS(100), MSS(9000), SACK_PERM, SACK_PERM),
        "ws_255": _opts(WSCALE(255)),
    }
    answered = []
    for i, opts in enumerate(layouts.values()):
        sport = 42000 + i
        isn = random.randrange(1 << 32)
        p.send(sport, isn, 0, SYN, options=opts)
        seg = p.recv(sport, 1.5)
        answered.append(seg is not None and seg.flags & (SYN | ACK) == SYN | ACK)
        p.send(sport, isn + 1, 0, RST)  # leave no half-open connection behind
    out: dict[str, Any] = {"layouts": len(layouts), "synacks": sum(answered)}
    # WS 15 is used as 14 (RFC 7323 §2.3): a window field of 1 then allows 16 KiB, not 32 KiB.
    c = p.connect(42100, options=_opts(MSS(1460), WSCALE(15)))
    p.request(c, "/bytes/1000000")
    c.snd_nxt = (c.snd_nxt + len(b"GET /bytes/1000000 HTTP/1.1\r\nHost: x\r\n\r\n")) & MASK
    # Slow start first (every segment ACKed, window field 2048 = 64 MiB at either shift) until
    # cwnd is far above 32 KiB; then, once the last flight is in, one ACK with a window field of
    # 1: only the window — 1 << 14 = 16 KiB, or 32 KiB if 15 were used — limits what follows.
    got = 0
    while got < 60000 and (seg := p.recv(c.sport, 1.0)) is not None:
        if seg.data and seg.seq == c.rcv_nxt:
            c.rcv_nxt = (c.rcv_nxt + len(seg.data)) & MASK
            got += len(seg.data)
            p.send(c.sport, c.snd_nxt, c.rcv_nxt, ACK, win=2048)
    while (seg := p.recv(c.sport, 0.1)) is not None:
        if seg.data and seg.seq == c.rcv_nxt:
            c.rcv_nxt = (c.rcv_nxt + len(seg.data)) & MASK
    acked = c.rcv_nxt
    p.send(c.sport, c.snd_nxt, acked, ACK, win=1)
    inflight = 0
    while (seg := p.recv(c.sport, 1.0)) is not None:
        if seg.data:
            inflight = max(inflight, (seg.seq + len(seg.data) - acked) & MASK)
    out["ws15_inflight"] = inflight
    p.send(c.sport, c.snd_nxt, 0, RST)
    # Data offsets that lie: below 5 words, and beyond the segment. Dropped before any state.
    c = p.connect(42101)
    p.send(c.sport, c.snd_nxt, c.rcv_nxt, ACK | PSH, payload=b"GET / HTTP/1.1\r\n\r\n", doff=3)
    p.send(c.sport, c.snd_nxt, c.rcv_nxt, ACK | PSH, payload=b"GET / HTTP/1.1\r\n\r\n", doff=15)
    out["bad_offset_ignored"] = p.response_head(c, timeout=1.0) == b""
    # Malformed options on an established connection's request: parsed up to the bad option,
    # the segment itself is kept (tcp/segment.py notes) and answered.
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    p.send(c.sport, c.snd_nxt, c.rcv_nxt, ACK | PSH, payload=data, options=bytes([8, 0, 0, 0]))
    out["served_with_bad_options"] = p.response_head(c).startswith(b"HTTP/1.1 200 OK")
    c.snd_nxt = (c.snd_nxt + len(data)) & MASK
    p.send(c.sport, c.snd_nxt, 0, RST)
    return out


def _tiny_mss_sack(mss: str, nbytes: str) -> dict[str, Any]:
    """A download with a tiny MSS (raised to the stack's floor, TcpConfig.min_mss) whose every
    ACK carries four malicious SACK blocks: below SND.UNA, beyond SND.NXT, inverted, and far
    out of range (CVE-2019-11477/11478/11479 shapes)."""
    p = RawPeer()
    c = p.connect(43000 + int(mss), options=_opts(MSS(int(mss)), SACK_PERM, WSCALE(7)))
    total = int(nbytes)
    request = f"GET /bytes/{total} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    p.send(c.sport, c.snd_nxt, c.rcv_nxt, ACK | PSH, payload=request)
    c.snd_nxt = (c.snd_nxt + len(request)) & MASK
    start = c.rcv_nxt
    body = hashlib.sha256()
    head = b""
    largest = 0
    acks = 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        seg = p.recv(c.sport, 2.0)
        if seg is None:
            break
        if not seg.data or seg.seq != c.rcv_nxt:
            continue
        data = bytes(seg.data)
        c.rcv_nxt = (c.rcv_nxt + len(data)) & MASK
        if len(head) < 4096 and b"\r\n\r\n" not in head:
            head += data
            if b"\r\n\r\n" in head:
                body.update(head.split(b"\r\n\r\n", 1)[1])
        else:
            body.update(data)
        largest = max(largest, len(data))
        n = c.rcv_nxt
        blocks = [(n - 100_000, n - 50_000), (n + (1 << 30), n + (1 << 30) + 1000), (n + 5000, n + 100),
                  (n + 3_000_000, n + 3_100_000)]
        p.send(c.sport, c.snd_nxt, n, ACK, win=4096, options=_opts(b"\1\1", SACK(blocks)))
        acks += 1
        if ((c.rcv_nxt - start) & MASK) >= len(head.split(b"\r\n\r\n", 1)[0]) + 4 + total:
            break
    p.send(c.sport, c.snd_nxt, 0, RST)
    return {
        "received": (c.rcv_nxt - start) & MASK,
        "status_ok": head.startswith(b"HTTP/1.1 200 OK"),
        "body_sha256": body.hexdigest(),
        "acks_with_bad_sack": acks,
        "largest_frame_payload": largest,
    }


def _slowloris(n_slow: str, n_stall: str, seconds: str) -> dict[str, Any]:
    """Kernel sockets from inside the namespace: ``n_slow`` connections that send a request's
    first line and then one header line a second, never finishing (slowloris), and ``n_stall``
    that request 10 MB with a 4 KiB receive buffer and never read (zero window). Reports how
    many of each the server closed within ``seconds``."""
    import resource
    import select

    need = int(n_slow) + int(n_stall) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, soft), max(need, hard)))
    slow: list[socket.socket] = []
    stall: list[socket.socket] = []
    for _ in range(int(n_stall)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect((STACK, PORT))
        s.sendall(f"GET /bytes/{BIG} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        stall.append(s)
    for _ in range(int(n_slow)):
        s = socket.create_connection((STACK, PORT), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    print("attacking", flush=True)

    def closed(s: socket.socket) -> bool:
        poller = select.poll()
        poller.register(s, select.POLLERR | select.POLLHUP | select.POLLRDHUP)
        return any(ev & (select.POLLERR | select.POLLHUP | select.POLLRDHUP) for _fd, ev in poller.poll(0))

    deadline = time.monotonic() + float(seconds)
    trickled = 0
    while time.monotonic() < deadline:
        for s in slow:
            if not closed(s):
                try:
                    s.send(b"X-a: b\r\n")
                    trickled += 1
                except OSError:
                    pass
        time.sleep(1.0)
    out = {
        "slow": len(slow),
        "stall": len(stall),
        "slow_closed": sum(closed(s) for s in slow),
        "stall_closed": sum(closed(s) for s in stall),
        "trickled_lines": trickled,
    }
    for s in slow + stall:
        s.close()
    return out


def main(argv: list[str]) -> int:
    attacks = {"rfc5961": _rfc5961, "options": _malformed_options, "tiny_mss_sack": _tiny_mss_sack,
               "slowloris": _slowloris}
    result = attacks[argv[0]](*argv[1:])
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
