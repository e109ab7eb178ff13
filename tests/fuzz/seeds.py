"""Seed inputs for the fuzz targets: one well-formed example of each kind of input the harness
can shape, so the fuzzer starts from frames that reach deep (a data segment in the window, a SYN
to the listener, SACK blocks, an ICMP error quoting the connection ...) instead of from nothing.

    python tests/fuzz/seeds.py            # writes tests/fuzz/corpus/<target>/seed-*
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fuzz_harness import ISS, LOCAL_IP, PEER_IP, PEER_ISN, ipv4_packet  # noqa: E402

ACK, PSH, SYN, FIN, RST, URG = 0x10, 0x08, 0x02, 0x01, 0x04, 0x20


def _tcp_body(flags: int, options: bytes = b"", payload: bytes = b"", win: int = 1024) -> bytes:
    """A TCP header + payload for the frame target's TCP mode (ports, numbers, checksum are put
    right by the harness when the selector asks; here they are zero)."""
    options += b"\0" * (-len(options) % 4)
    hdr = struct.pack("!HHIIBBHHH", 0, 0, 0, 0, (5 + len(options) // 4) << 4, flags, win, 0, 0)
    return hdr + options + payload


def frame_seeds() -> dict[str, bytes]:
    ts = b"\x01\x01\x08\x0a" + struct.pack("!II", 6000, 1000000)
    sack = b"\x01\x01\x05\x0a" + struct.pack("!II", ISS + 1001, ISS + 2001)
    syn_opts = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + struct.pack("!II", 7000, 0) + b"\x01\x03\x03\x07"
    udp = struct.pack("!HHHH", 5000, 7, 13, 0) + b"hello"
    echo = bytes([8, 0, 0, 0]) + struct.pack("!HH", 0x1234, 1) + b"ping"
    frag = ipv4_packet(17, b"f" * 64, frag=0x2000)  # MF set, offset 0
    tail = ipv4_packet(17, b"g" * 64, frag=8)  # offset 64
    arp = struct.pack("!HHBBH6sI6sI", 1, 0x0800, 6, 4, 1, bytes.fromhex("020000000001"), PEER_IP, b"\0" * 6, LOCAL_IP)
    full = bytes.fromhex("020000000002020000000001") + b"\x08\x00" + ipv4_packet(17, udp)
    sel_conn = 1 | 2 | 4  # to the connection, numbers near its own, plausible data offset
    return {
        "raw-udp": bytes([0, 0]) + full,
        "arp-request": bytes([1, 0]) + b"\x08\x06" + arp,
        "ipv4-fragment-first": bytes([2, 0]) + frag,
        "ipv4-fragment-last": bytes([2, 0]) + tail,
        "tcp-data": bytes([3, sel_conn]) + _tcp_body(ACK | PSH, ts, b"data" * 10),
        "tcp-ack-sack": bytes([3, sel_conn]) + _tcp_body(ACK, ts + sack),
        "tcp-fin": bytes([3, sel_conn]) + _tcp_body(ACK | FIN, ts),
        "tcp-rst": bytes([3, sel_conn]) + _tcp_body(RST, ts),
        "tcp-syn-established": bytes([3, sel_conn]) + _tcp_body(SYN, syn_opts),
        "tcp-urgent": bytes([3, sel_conn]) + _tcp_body(ACK | URG, ts, b"!"),
        "tcp-syn-listener": bytes([3, 0x30 | 4]) + _tcp_body(SYN, syn_opts, win=65535),
        "udp-echo": bytes([4, 3]) + udp,
        "icmp-echo": bytes([5, 64]) + echo,
        "icmp-frag-needed": bytes([6, 1]) + bytes([3, 4]) + struct.pack("!HH", 0, 576) + b"\0" * 24,
        "icmp-frag-needed-mtu68": bytes([6, 1]) + bytes([3, 4]) + struct.pack("!HH", 0, 68) + b"\0" * 24,
        "icmp-port-unreachable": bytes([6, 1]) + bytes([3, 3]) + b"\0" * 28,
        "icmp-redirect": bytes([6, 1]) + bytes([5, 1]) + struct.pack("!I", PEER_IP + 5) + b"\0" * 24,
    }


def _op_segment(
    flags: int, *, dseq: int = 0, dack: int = 0, win: int = 1024, payload: int = 0, ts_step: int = 1
) -> bytes:
    """One 'segment' operation of the sequence target, near RCV.NXT/SND.UNA, TS option on."""
    return (
        bytes([0, 0, flags])
        + struct.pack("!hhH", dseq, dack, win)
        + bytes([0])  # options: the TS option with the peer's clock
        + struct.pack("!H", payload)
        + bytes([ts_step])
    )


def _op_time(centiseconds: int) -> bytes:
    return bytes([6]) + struct.pack("!H", centiseconds)


def sequence_seeds() -> dict[str, bytes]:
    acked = _op_segment(ACK, dack=3000)
    return {
        "data-in-order": _op_segment(ACK | PSH, payload=100) + _op_segment(ACK | PSH, dseq=100, payload=100),
        "data-out-of-order": _op_segment(ACK | PSH, dseq=1000, payload=500) + _op_segment(ACK | PSH, payload=1000),
        "ack-all-then-send": acked + bytes([8]) + struct.pack("!H", 20000) + _op_time(50) + acked,
        "dupacks-and-sack": b"".join(_op_segment(ACK, dack=0) for _ in range(4)) + _op_time(300),
        "fin-then-close": _op_segment(ACK | FIN) + bytes([10, 1]) + _op_segment(ACK, dseq=1, dack=3001),
        "close-first": bytes([10, 1]) + _op_time(100) + _op_segment(ACK | FIN, dack=3001) + bytes([7, 61]),
        "rst-in-window": _op_segment(RST, dseq=10),
        "syn-on-established": _op_segment(SYN),
        "zero-window-persist": _op_segment(ACK, dack=3000, win=0)
        + bytes([8])
        + struct.pack("!H", 5000)
        + _op_time(1500)
        + _op_time(1500),
        "rto-give-up": bytes([7, 200]) + bytes([7, 200]),
        "recv-and-shutdown": _op_segment(ACK | PSH, payload=300) + bytes([9]) + struct.pack("!H", 100) + bytes([10, 0]),
        "icmp-frame": bytes([11, 30]) + bytes([6, 1, 3, 4]) + struct.pack("!HH", 0, 296) + b"\0" * 24,
        "listener-syn": bytes([0, 0x32, SYN, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 0, 0, 0]),
        "abort": bytes([10, 2]) + _op_time(10),
    }


def main() -> None:
    for target, seeds in (("frame", frame_seeds()), ("segments", sequence_seeds())):
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (out / f"seed-{name}").write_bytes(data)
        print(f"{len(seeds)} seeds in {out}")


assert PEER_ISN and ISS  # the seeds assume the harness's fixed numbers
if __name__ == "__main__":
    main()
