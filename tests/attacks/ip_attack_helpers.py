"""Live IP-layer attacks against examples/http_server.py over a TAP, inside a test-made namespace.

Two halves:

- :class:`Target` (used by the tests): starts the HTTP example on a TAP in the namespace with a
  /16 subnet (room for many spoofed on-link sources) and the host as gateway (so off-link
  sources resolve through one cached neighbour), reads its counters mid-attack through the
  control socket, checks a legitimate client (curl: a 200 and a 10 MB download intact) and the
  server's RSS.
- ``python ip_attack_helpers.py inject KIND ...`` (run *inside* the namespace by the tests): an
  AF_PACKET socket on the namespace's side of the TAP, writing crafted frames at a bounded rate
  for a bounded count, printing one JSON line of what it sent. Frames leave only through that
  TAP, into the stack under test; the namespace has no other link.
"""

from __future__ import annotations

import argparse
import asyncio
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
HOST = "10.78.0.1"
STACK = "10.78.0.2"
IFACE = "aiostack0"
PORT = 8080
TEN_MB = 10_000_000

# == frame crafting (the injector) ===============================================================


def _csum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def aton(text: str) -> int:
    return int.from_bytes(socket.inet_aton(text), "big")


def ipv4_header(src: int, dst: int, proto: int, payload_len: int, *, ident: int = 0, ttl: int = 64,
                frag: int = 0, options: bytes = b"", ihl: int | None = None, total: int | None = None) -> bytes:
    hl = 20 + len(options)
    vihl = 0x40 | (ihl if ihl is not None else hl // 4)
    hdr = struct.pack("!BBHHHBBHII", vihl, 0, total if total is not None else hl + payload_len, ident, frag, ttl,
                      proto, 0, src, dst) + options
    c = _csum(hdr)
    return hdr[:10] + struct.pack("!H", c) + hdr[12:]


def tcp_syn(src: int, dst: int, sport: int, dport: int, seq: int) -> bytes:
    opts = struct.pack("!BBH", 2, 4, 1460) + b"\x01\x03\x03\x07"  # MSS 1460, NOP, WS 7
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
    pseudo = struct.pack("!IIBBH", src, dst, 0, 6, len(hdr))
    c = _csum(pseudo + hdr)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:]


def udp(src: int, dst: int, sport: int, dport: int, payload: bytes) -> bytes:
    hdr = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    pseudo = struct.pack("!IIBBH", src, dst, 0, 17, 8 + len(payload))
    c = _csum(pseudo + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", c) + payload


def eth(dst_mac: bytes, src_mac: bytes, payload: bytes, etype: int = 0x0800) -> bytes:
    return dst_mac + src_mac + etype.to_bytes(2, "big") + payload


def _frames(kind: str, count: int, stack_mac: bytes, seed: int) -> Any:
    """Yield ``count`` attack frames of ``kind``."""
    rng = random.Random(seed)
    dst = aton(STACK)
    host_mac = bytes.fromhex("02aa00000001")
    for i in range(count):
        mac = bytes([2, 0xBB]) + i.to_bytes(4, "big")
        if kind == "syn-onlink":  # spoofed on-link sources that never answer ARP
            src = aton("10.78.0.0") | rng.randrange(256, 65534)
            seg = tcp_syn(src, dst, rng.randrange(1024, 65535), PORT, rng.getrandbits(32))
            yield eth(stack_mac, mac, ipv4_header(src, dst, 6, len(seg), ident=i & 0xFFFF, frag=0x4000) + seg)
        elif kind == "syn-offlink":  # spoofed off-link sources: one cached next hop, the gateway
            src = aton("198.18.0.0") | rng.randrange(1, 1 << 17)
            seg = tcp_syn(src, dst, rng.randrange(1024, 65535), PORT, rng.getrandbits(32))
            yield eth(stack_mac, host_mac, ipv4_header(src, dst, 6, len(seg), ident=i & 0xFFFF, frag=0x4000) + seg)
        elif kind == "arp-requests":  # who-has STACK from many in-subnet senders
            spa = aton("10.78.0.0") | rng.randrange(256, 65534)
            arp = struct.pack("!HHBBH6sI6sI", 1, 0x0800, 6, 4, 1, mac, spa, b"\0" * 6, dst)
            yield eth(b"\xff" * 6, mac, arp + bytes(18), 0x0806)
        elif kind == "arp-replies":  # unsolicited is-at for addresses we never asked about
            spa = aton("10.78.0.0") | rng.randrange(256, 65534)
            arp = struct.pack("!HHBBH6sI6sI", 1, 0x0800, 6, 4, 2, mac, spa, stack_mac, dst)
            yield eth(stack_mac, mac, arp + bytes(18), 0x0806)
        elif kind == "martians":
            yield _martian(i, rng, stack_mac, dst)
        elif kind == "fragments":
            yield _fragment(i, rng, stack_mac, dst)
        else:
            raise SystemExit(f"unknown kind {kind}")


MARTIAN_KINDS = ("land", "loopback", "multicast", "broadcast", "zero", "directed", "ttl0", "ihl", "length",
                 "options", "srcroute")


def _martian(i: int, rng: random.Random, stack_mac: bytes, dst: int) -> bytes:
    kind = MARTIAN_KINDS[i % len(MARTIAN_KINDS)]
    host_mac = bytes.fromhex("02aa00000001")
    src = aton(HOST)
    seg_src = src
    options = b""
    ttl = 64
    ihl = None
    total = None
    if kind == "land":
        src = seg_src = dst
    elif kind == "loopback":
        src = seg_src = aton("127.0.0.1")
    elif kind == "multicast":
        src = seg_src = aton("224.0.0.9")
    elif kind == "broadcast":
        src = seg_src = 0xFFFFFFFF
    elif kind == "zero":
        src = seg_src = 0
    elif kind == "directed":
        src = seg_src = aton("10.78.255.255")
    elif kind == "ttl0":
        # counted (ipv4_rx_ttl_zero) and delivered: a SYN to a closed port, answered by a RST
        ttl = 0
    elif kind == "ihl":
        ihl = rng.choice((0, 1, 2, 3, 4))
    elif kind == "length":
        total = rng.choice((0, 10, 19))
    elif kind == "options":
        options = rng.choice((b"\x07\x00\x00\x00", b"\x07\x01\x00\x00", b"\x44\x28\x05\x00", b"\x07\x07\x04\x00"))
    elif kind == "srcroute":
        options = b"\x83\x07\x04" + struct.pack("!I", aton(HOST)) + b"\x00"
    if kind == "land":
        seg = tcp_syn(seg_src, dst, PORT, PORT, rng.getrandbits(32))
    else:
        seg = tcp_syn(seg_src, dst, rng.randrange(1024, 65535), PORT if kind != "ttl0" else 9, rng.getrandbits(32))
    ip = ipv4_header(src, dst, 6, len(seg), ident=i & 0xFFFF, ttl=ttl, options=options, ihl=ihl, total=total)
    return eth(stack_mac, host_mac, ip + seg)


FRAGMENT_KINDS = ("teardrop", "tiny", "incomplete", "beyond")


def _fragment(i: int, rng: random.Random, stack_mac: bytes, dst: int) -> bytes:
    """Fragments of UDP datagrams to port 9 (closed): overlapping pairs (teardrop), tiny 8-byte
    pieces, sets that never complete (a 1480-byte first fragment), and pieces whose offset plus
    length passes 65535."""
    kind = FRAGMENT_KINDS[i % len(FRAGMENT_KINDS)]
    host_mac = bytes.fromhex("02aa00000001")
    src = aton(HOST)
    ident = (i // 2) & 0xFFFF
    if kind == "teardrop":
        # the pair: [0, 40) with MF, then [24, 32) inside it (teardrop's overlap)
        if (i // len(FRAGMENT_KINDS)) & 1 == 0:
            payload = udp(src, dst, 5000, 9, b"T" * 32)
            frag = 0x2000
        else:
            payload = b"t" * 8
            frag = 0x2000 | 24 >> 3
        ident = (i // (2 * len(FRAGMENT_KINDS))) & 0xFFFF
    elif kind == "tiny":
        payload = b"x" * 8
        frag = 0x2000 | rng.randrange(1, 8000)
    elif kind == "incomplete":
        payload = b"i" * 1480
        frag = 0x2000 | (rng.randrange(0, 40) * 185)
        ident = rng.getrandbits(16)
    else:  # beyond: offset 65528 + 16 bytes
        payload = b"b" * 16
        frag = 65528 >> 3
        ident = rng.getrandbits(16)
    ip = ipv4_header(src, dst, 17, len(payload), ident=ident, frag=frag)
    return eth(stack_mac, host_mac, ip + payload)


def inject(kind: str, count: int, rate: float, stack_mac: str, seed: int) -> dict[str, Any]:
    """Send ``count`` frames of ``kind`` through the TAP at about ``rate`` frames a second."""
    mac = bytes.fromhex(stack_mac.replace(":", ""))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((IFACE, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sent = 0
    errors = 0
    start = time.monotonic()
    burst = 64
    batch: list[bytes] = []
    for frame in _frames(kind, count, mac, seed):
        batch.append(frame)
        if len(batch) < burst:
            continue
        sent, errors = _flush(sock, batch, sent, errors)
        batch.clear()
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    sent, errors = _flush(sock, batch, sent, errors)
    sock.close()
    return {"kind": kind, "sent": sent, "errors": errors, "seconds": round(time.monotonic() - start, 3)}


PACKET_VNET_HDR = 15
SOL_PACKET = 263


def _data_segments(sock: socket.socket, seconds: float) -> Any:
    """(IPv4 packet, segment size) of the data segments the stack sends from PORT, for
    ``seconds``; the size is the GSO size when the device is to cut the segment (read from the
    virtio_net_hdr PACKET_VNET_HDR puts in front of each frame), else the payload length."""
    stack = aton(STACK)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            raw = sock.recv(70000)
        except TimeoutError:
            continue
        _flags, gso_type, _hl, gso_size = struct.unpack_from("<BBHH", raw, 0)
        ip = raw[10 + 14 :]
        if len(ip) < 40 or ip[9] != 6 or int.from_bytes(ip[12:16], "big") != stack:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport = int.from_bytes(ip[ihl : ihl + 2], "big")
        payload = int.from_bytes(ip[2:4], "big") - ihl - (ip[ihl + 12] >> 4) * 4
        if sport == PORT and payload > 0:
            yield bytes(ip), (gso_size if gso_type else payload)


def icmp_live(stack_mac: str, repeat: int) -> dict[str, Any]:
    """ICMP attacks on a live connection: sniff one data segment the stack sends from port
    PORT, then send, as the host (a router on the path), ``repeat`` times each: Fragmentation
    Needed with MTU 68 and with MTU 0 quoting a wrong sequence number (SND.UNA + 2**31), the
    same quoting the segment's own (right) sequence number, Port Unreachable quoting it, and a
    Redirect quoting it; then report the sizes of the segments sent after them."""
    mac = bytes.fromhex(stack_mac.replace(":", ""))
    host_mac = bytes.fromhex("02aa00000001")
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sniff.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sniff.bind((IFACE, 0))
    sniff.settimeout(0.2)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((IFACE, 0))
    quoted = None
    sizes_before = []
    for ip, size in _data_segments(sniff, 15):
        quoted = ip[: (ip[0] & 0x0F) * 4 + 8]
        sizes_before.append(size)
        break
    if quoted is None:
        return {"error": "no data segment seen"}
    ihl = (quoted[0] & 0x0F) * 4
    seq = int.from_bytes(quoted[ihl + 4 : ihl + 8], "big")
    wrong = quoted[: ihl + 4] + ((seq + (1 << 31)) & 0xFFFFFFFF).to_bytes(4, "big")
    src = aton(HOST)
    stack = aton(STACK)
    sent = 0

    def send(itype: int, code: int, mtu: int, quote: bytes) -> None:
        nonlocal sent
        rest = mtu.to_bytes(4, "big") if itype == 3 else socket.inet_aton(HOST)
        body = bytes([itype, code, 0, 0]) + rest + quote
        body = body[:2] + _csum(body).to_bytes(2, "big") + body[4:]
        sock.send(eth(mac, host_mac, ipv4_header(src, stack, 1, len(body)) + body))
        sent += 1

    for _ in range(repeat):
        send(3, 4, 68, wrong)
        send(3, 4, 0, wrong)
    # the right sequence number: quote segments as they go by (one of them is in flight)
    for n, (ip, _size) in enumerate(_data_segments(sniff, 10)):
        quoted = ip[: (ip[0] & 0x0F) * 4 + 8]
        send(3, 4, 68, quoted)
        if n + 1 == repeat:
            break
    for _ in range(repeat):
        send(3, 3, 0, quoted)
        send(5, 1, 0, quoted)
    sizes_after = sorted({size for _ip, size in _data_segments(sniff, 2.0)})
    sock.close()
    sniff.close()
    return {"kind": "icmp-live", "sent": sent, "seq": seq, "sizes_before": sizes_before, "sizes_after": sizes_after}


def _flush(sock: socket.socket, batch: list[bytes], sent: int, errors: int) -> tuple[int, int]:
    for frame in batch:
        try:
            sock.send(frame)
            sent += 1
        except OSError:  # ENOBUFS when the TAP's queue is full: counted, the attack goes on
            errors += 1
    return sent, errors


# == the target (the tests' side) ================================================================


class Target:
    """The HTTP example on a TAP in ``ns``: 10.78.0.2/16, host 10.78.0.1/16 as gateway."""

    def __init__(self, ns: Any, python: str, control_dir: Path) -> None:
        self.ns = ns
        self.python = python
        self.control = control_dir / f"ipattack-{os.getpid()}-{time.monotonic_ns()}.sock"
        control_dir.mkdir(parents=True, exist_ok=True)
        self.proc = ns.popen(
            [python, str(ROOT / "examples" / "http_server.py"), "--driver", "tap", "--iface", IFACE,
             "--addr", f"{STACK}/16", "--host-addr", f"{HOST}/16", "--gateway", HOST, "--port", str(PORT),
             "--stats", "--control", str(self.control)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        from conftest import wait_line

        wait_line(self.proc, "serving on")
        # a deeper kernel-side queue toward the stack: bursts of the injector wait, not drop
        self.ns.run(["ip", "link", "set", IFACE, "txqueuelen", "10000"])
        self.ns.run(["ping", "-c", "1", "-W", "2", STACK], check=False)
        neigh = self.ns.run(["ip", "neigh", "show", STACK, "dev", IFACE]).stdout.split()
        self.mac = neigh[neigh.index("lladdr") + 1]

    def stat(self) -> dict[str, Any]:
        """The server's counters now (control socket)."""
        from aiostack.control import query

        return asyncio.run(query(self.control, "stat"))["counters"]  # type: ignore[no-any-return]

    def rss_kib(self) -> int:
        """The server's resident set (the Python process under ``ip netns exec``)."""
        pid = self.server_pid()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def server_pid(self) -> int:
        # ip netns exec execs the command in place: the Popen's pid is the server's
        return int(self.proc.pid)

    def inject(self, kind: str, count: int, rate: float, seed: int = 1) -> subprocess.Popen[bytes]:
        return self.ns.popen(  # type: ignore[no-any-return]
            [self.python, str(Path(__file__)), "inject", kind, str(count), str(rate), self.mac, str(seed)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def legit_client(self, curl: str) -> list[str]:
        """What a legitimate client sees: curl / (status) and a 10 MB download (status, size);
        returns the problems, empty when served."""
        problems = []
        res = self.ns.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                           f"http://{STACK}:{PORT}/"], check=False, timeout=30)
        if res.stdout != "200":
            problems.append(f"GET /: {res.stdout!r} {res.stderr.strip()!r}")
        res = self.ns.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time",
                           "20", f"http://{STACK}:{PORT}/bytes/{TEN_MB}"], check=False, timeout=40)
        if res.stdout != f"200 {TEN_MB}":
            problems.append(f"GET 10 MB: {res.stdout!r} {res.stderr.strip()!r}")
        return problems

    def finish(self) -> dict[str, Any]:
        from conftest import stop

        return json.loads(stop(self.proc).strip().splitlines()[-1])  # type: ignore[no-any-return]


def wait_injector(proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("inject")
    i.add_argument("kind")
    i.add_argument("count", type=int)
    i.add_argument("rate", type=float)
    i.add_argument("mac")
    i.add_argument("seed", type=int)
    a = p.parse_args(argv)
    if a.kind == "icmp-live":
        print(json.dumps(icmp_live(a.mac, a.count)), flush=True)
    else:
        print(json.dumps(inject(a.kind, a.count, a.rate, a.mac, a.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
