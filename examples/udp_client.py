#!/usr/bin/env python3
"""A UDP client that checks an echo server: sends datagrams of many sizes and verifies that each
comes back with equal content. Uses the kernel's sockets (run it inside the namespace that holds
the TAP's kernel side), so it is an independent peer for aiostack.

    python examples/udp_client.py 10.77.0.2 7 --count 10000 --max-size 8000

A window of datagrams is in flight at once; a datagram whose echo does not come back within
``--timeout`` is sent again (UDP may drop), at most ``--retries`` times. Exit status 0 when every
datagram came back intact. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import selectors
import socket
import struct
import sys
import time

HEADER = struct.Struct("!I32s")  # sequence number, SHA-256 of the payload


def payload_for(seq: int, size: int) -> bytes:
    body_len = max(0, size - HEADER.size)
    pattern = bytes((seq * 31 + i) & 0xFF for i in range(min(body_len, 251)))
    body = (pattern * (body_len // 251 + 1))[:body_len] if pattern else b""
    return HEADER.pack(seq, hashlib.sha256(body).digest()) + body


def sizes(count: int, min_size: int, max_size: int) -> list[int]:
    """Every size from ``min_size`` up, cycling, so both tiny and fragmented datagrams are sent."""
    span = max_size - min_size + 1
    return [min_size + (i * 7919) % span for i in range(count)]


def run(host: str, port: int, count: int, min_size: int, max_size: int, window: int, timeout: float,
        retries: int, deadline: float) -> dict[str, object]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    sock.connect((host, port))
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    plan = sizes(count, min_size, max_size)
    # Datagrams shorter than the header carry only a prefix of it; they are matched by content.
    expected = {seq: payload_for(seq, max(plan[seq], HEADER.size))[: plan[seq]] for seq in range(count)}
    in_flight: dict[int, tuple[float, int]] = {}
    small_in_flight: dict[bytes, list[int]] = {}
    small_done: set[bytes] = set()
    done = 0
    resent = 0
    mismatched = 0
    lost: list[int] = []
    next_seq = 0
    start = time.monotonic()

    def send(seq: int, tries: int) -> None:
        data = expected[seq]
        sock.send(data)
        in_flight[seq] = (time.monotonic() + timeout, tries)
        if len(data) < HEADER.size:
            small_in_flight.setdefault(data, []).append(seq)

    while (next_seq < count or in_flight) and time.monotonic() < deadline:
        while next_seq < count and len(in_flight) < window:
            send(next_seq, 0)
            next_seq += 1
        for _key, _ in sel.select(timeout=0.05):
            while True:
                try:
                    data = sock.recv(65535)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    continue
                if len(data) >= HEADER.size:
                    seq = HEADER.unpack_from(data)[0]
                    if seq in in_flight and data == expected.get(seq):
                        del in_flight[seq]
                        done += 1
                    elif seq in in_flight:
                        mismatched += 1
                else:
                    seqs = small_in_flight.get(data)
                    if seqs:
                        seq = seqs.pop(0)
                        if seq in in_flight:
                            del in_flight[seq]
                            done += 1
                    elif data not in small_done:
                        mismatched += 1
                    # else: a late second echo of a short datagram that was resent
                    if len(data) < HEADER.size:
                        small_done.add(data)
        now = time.monotonic()
        for seq, (due, tries) in list(in_flight.items()):
            if now >= due:
                del in_flight[seq]
                data = expected[seq]
                if len(data) < HEADER.size and seq in small_in_flight.get(data, []):
                    small_in_flight[data].remove(seq)
                if tries >= retries:
                    lost.append(seq)
                else:
                    resent += 1
                    send(seq, tries + 1)
    elapsed = time.monotonic() - start
    return {
        "sent": count,
        "echoed_intact": done,
        "resent": resent,
        "lost": len(lost) + len(in_flight) + (count - next_seq),
        "mismatched": mismatched,
        "bytes": sum(plan),
        "seconds": round(elapsed, 3),
        "datagrams_per_second": round(done / elapsed) if elapsed else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--min-size", type=int, default=1)
    p.add_argument("--max-size", type=int, default=8000)
    p.add_argument("--window", type=int, default=32, help="datagrams in flight at once")
    p.add_argument("--timeout", type=float, default=0.5, help="seconds before a datagram is sent again")
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--max-seconds", type=float, default=120, help="give up after this long")
    a = p.parse_args(argv)
    if not 1 <= a.min_size <= a.max_size <= 65507:
        p.error("need 1 <= --min-size <= --max-size <= 65507")
    result = run(a.host, a.port, a.count, a.min_size, a.max_size, a.window, a.timeout, a.retries,
                 time.monotonic() + a.max_seconds)
    print(json.dumps(result), flush=True)
    return 0 if result["echoed_intact"] == a.count and not result["mismatched"] else 1


if __name__ == "__main__":
    sys.exit(main())
