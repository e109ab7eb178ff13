"""The seeded frame generator: random and mutated frames, as a hostile or broken peer sends them.

Each frame starts from a valid one (a SYN, data segment, ACK with SACK blocks, FIN or RST to the
live connection or the listener; UDP to an open or closed port; ICMP echo and errors; ARP; IPv4
fragments) and is then broken in one of the ways frames get broken: truncation, flipped bits,
IHL < 5, lying lengths, garbage IP options, random fragment offsets (overlaps, oversize), the
last fragment offset, UDP length lies, random protocol numbers, addresses, versions, random bytes
after a valid Ethernet header; or it is random bytes altogether. Segments to the connection carry
correct checksums before they are broken (so most reach TCP) and sequence numbers near its own.

``tests/test_fuzz_frames.py`` pushes 100,000 of them through a running reactor and checks every
one is counted; this module's runner pushes millions through the sans-I/O stack of the fuzz
harness (``fuzz_harness.World``: a listener and an established connection), in several processes:

    python tests/fuzz/frames.py --frames 10000000 --procs 2

Every process rebuilds its world every ``--rebuild`` frames, which also checks that no packet
buffer leaked. Any exception, malformed transmitted frame or leak is a failure (exit status 1,
with the seed and frame index that reproduce it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import struct
import sys
import time
from pathlib import Path

import dpkt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from aiostack.ip.checksum import internet_checksum  # noqa: E402
from framecraft import arp_frame, eth, fragments, icmp_echo_frame, ip4, udp_frame  # noqa: E402

SEED = 20261122


def fix_ip_checksum(frame: bytearray) -> None:
    ihl = (frame[14] & 0x0F) * 4
    if ihl < 20 or 14 + ihl > len(frame):
        return
    frame[24:26] = b"\0\0"
    struct.pack_into("!H", frame, 24, internet_checksum(frame[14 : 14 + ihl]))


def bases(rng: random.Random, conn: tuple[int, int] | None = None) -> list[bytes]:
    """Valid frames to mutate. With ``conn`` = (RCV.NXT, SND.UNA) of the harness's connection,
    also segments to it (and SYNs to its listener) with numbers near its own."""
    payload = rng.randbytes(rng.randrange(0, 1400))
    u = dpkt.udp.UDP(sport=rng.randrange(1, 65536), dport=7, data=b"q" * 3000)
    u.ulen = 3008
    big = ip4(u, proto=17, ident=rng.randrange(65536))
    syn = dpkt.tcp.TCP(
        sport=rng.randrange(1024, 65536),
        dport=80,
        seq=rng.randrange(1 << 32),
        flags=dpkt.tcp.TH_SYN,
        win=65535,
        opts=b"\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02\x00\x00",
    )
    ack = dpkt.tcp.TCP(
        sport=rng.randrange(1024, 65536),
        dport=80,
        seq=rng.randrange(1 << 32),
        ack=rng.randrange(1 << 32),
        flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
        win=512,
        data=payload[:100],
    )
    out = [
        eth(ip4(syn, proto=6)),
        eth(ip4(ack, proto=6)),
        udp_frame(payload, dport=7),
        udp_frame(payload, dport=rng.randrange(1, 65536)),
        icmp_echo_frame(payload[:500]),
        arp_frame(rng.choice((1, 2))),
        *(eth(f) for f in fragments(big, 1480)),
    ]
    if conn is not None:
        out += _connection_bases(rng, *conn, payload)
    return out


def _connection_bases(rng: random.Random, rcv_nxt: int, snd_una: int, payload: bytes) -> list[bytes]:
    from fuzz_harness import LOCAL_PORT, PEER_PORT, ts_option

    def seg(
        flags: int,
        *,
        dseq: int = 0,
        dack: int = 0,
        data: bytes = b"",
        opts: bytes = b"",
        sport: int = PEER_PORT,
        win: int = 1024,
    ) -> bytes:
        tcp = dpkt.tcp.TCP(
            sport=sport,
            dport=LOCAL_PORT,
            seq=(rcv_nxt + dseq) & 0xFFFFFFFF,
            ack=(snd_una + dack) & 0xFFFFFFFF,
            flags=flags,
            win=win,
            opts=opts + b"\0" * (-len(opts) % 4),
            data=data,
        )
        tcp.off = 5 + len(tcp.opts) // 4
        return eth(ip4(tcp, proto=6))

    ts = ts_option(rng.randrange(1 << 32), rng.randrange(1 << 32))
    near = rng.randrange(-3000, 3000)
    left = (snd_una + rng.randrange(-2000, 4000)) & 0xFFFFFFFF
    sack = b"\x01\x01\x05\x0a" + struct.pack("!II", left, (left + rng.randrange(0, 3000)) & 0xFFFFFFFF)
    four = b"\x05\x22" + b"".join(struct.pack("!II", rng.randrange(1 << 32), rng.randrange(1 << 32)) for _ in range(4))
    A, P, S, F, R = 0x10, 0x08, 0x02, 0x01, 0x04
    return [
        seg(A | P, data=payload[:1000], opts=ts),
        seg(A | P, dseq=near, data=payload[:500], opts=ts),
        seg(A, dack=rng.randrange(-100, 3100), opts=ts + sack),
        seg(A, dack=rng.randrange(-100, 3100), opts=four),
        seg(A | F, dseq=rng.randrange(-10, 10), opts=ts),
        seg(R, dseq=rng.randrange(-5, 70000)),
        seg(S, dseq=near, opts=b"\x02\x04\x05\xb4\x04\x02\x01\x03\x03\x0e"),
        seg(S, sport=rng.randrange(1024, 65536), opts=b"\x02\x04\x00\x30"),
        seg(A, dack=3000, win=0, opts=ts),
    ]


def mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    kind = rng.randrange(12)
    if kind == 0:  # truncation anywhere
        return bytes(b[: rng.randrange(0, len(b) + 1)])
    if kind == 1:  # flip a few random bytes (checksums break)
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= rng.randrange(1, 256)
        return bytes(b)
    if len(b) < 34 or b[12:14] != b"\x08\x00":
        return rng.randbytes(rng.randrange(0, 200)) if kind == 2 else bytes(b)
    if kind == 2:  # IHL < 5 with the checksum recomputed so the IHL check itself is reached
        b[14] = 0x40 | rng.randrange(0, 5)
        fix_ip_checksum(b)
    elif kind == 3:  # total length lies, either way
        struct.pack_into("!H", b, 16, rng.choice((0, 19, 21, len(b) - 14 + rng.randrange(1, 3000), 65535)))
        fix_ip_checksum(b)
    elif kind == 4:  # garbage options inside a valid header
        n = rng.randrange(1, 11) * 4
        ihl = (b[14] & 0x0F) * 4
        b[14 + ihl : 14 + ihl] = rng.randbytes(n)
        b[14] = 0x40 | ((ihl + n) // 4)
        struct.pack_into("!H", b, 16, struct.unpack_from("!H", b, 16)[0] + n)
        fix_ip_checksum(b)
    elif kind == 5:  # fragment with a random offset / MF (overlaps and oversize follow)
        struct.pack_into("!H", b, 20, rng.randrange(0, 0x4000))
        fix_ip_checksum(b)
    elif kind == 6:  # the last possible fragment offset: datagram larger than 65535
        struct.pack_into("!H", b, 20, 0x1FFF)
        fix_ip_checksum(b)
    elif kind == 7:  # UDP length field lies
        ihl = (b[14] & 0x0F) * 4
        if 14 + ihl + 6 <= len(b):
            struct.pack_into("!H", b, 14 + ihl + 4, rng.randrange(0, 65536))
    elif kind == 8:  # random protocol number
        b[23] = rng.randrange(256)
        fix_ip_checksum(b)
    elif kind == 9:  # random source / destination address
        b[26 + 4 * rng.randrange(2) + rng.randrange(4)] = rng.randrange(256)
        fix_ip_checksum(b)
    elif kind == 10:  # random version
        b[14] = (rng.randrange(16) << 4) | (b[14] & 0x0F)
        fix_ip_checksum(b)
    else:  # random bytes after a valid Ethernet header
        return bytes(b[:14]) + rng.randbytes(rng.randrange(0, 1600))
    return bytes(b)


def next_frame(rng: random.Random, frames: list[bytes]) -> bytes:
    """One frame: mostly a mutated base (untouched 10% of the time, so states move on), else
    random bytes; 95% addressed to the stack's MAC."""
    from fuzz_harness import LOCAL_MAC, PEER_MAC

    r = rng.random()
    if r < 0.1:
        frame = rng.choice(frames)
    elif r < 0.9:
        frame = mutate(rng, rng.choice(frames))
    else:
        frame = rng.randbytes(rng.randrange(0, 1600))
    if len(frame) >= 12 and rng.random() < 0.95:
        frame = LOCAL_MAC + PEER_MAC + frame[12:]
    return frame


# == the runner ===================================================================================
def run_worker(args: tuple[int, int, int, int]) -> tuple[int, int, str | None]:
    """Push ``count`` frames (seeded by ``seed`` and the worker index) through fresh worlds;
    (frames done, frames the stack sent, the first failure or None)."""
    seed, index, count, rebuild = args
    import fuzz_harness as harness

    rng = random.Random(f"{seed}/{index}")
    done = sent = 0
    world = None
    try:
        while done < count:
            world = harness.World()
            conn = world.conn
            assert conn is not None and conn.rcvbuf is not None
            frames = bases(rng, (conn.rcvbuf.rcv_nxt, conn.snd_una))
            for i in range(min(rebuild, count - done)):
                if i % 500 == 499:
                    world.advance(rng.choice((0.01, 0.2, 1.5, 40.0)))
                    rb = conn.rcvbuf
                    frames = bases(rng, (rb.rcv_nxt if rb is not None else 0, conn.snd_una))
                frame = next_frame(rng, frames)
                try:
                    world.inject(frame)
                except Exception as exc:
                    return done, sent, f"seed {seed} worker {index} frame {done}: {exc!r}; frame {frame.hex()}"
                done += 1
            world.advance(100.0)
            sent += world.sent
            w, world = world, None
            w.close()  # raises on a leaked buffer
    except Exception as exc:
        return done, sent, f"seed {seed} worker {index} after frame {done}: {exc!r}"
    return done, sent, None


def run(frames: int, procs: int, seed: int = SEED, rebuild: int = 20_000) -> int:
    per = -(-frames // procs)
    jobs = [(seed, i, min(per, frames - i * per), rebuild) for i in range(procs) if frames - i * per > 0]
    start = time.perf_counter()
    if procs == 1:
        results = [run_worker(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            results = pool.map(run_worker, jobs)
    elapsed = time.perf_counter() - start
    done = sum(r[0] for r in results)
    sent = sum(r[1] for r in results)
    failures = [r[2] for r in results if r[2]]
    from aiostack.build import build_name

    print(
        f"{done:,} frames through the {build_name()} build in {elapsed:.1f} s ({done / elapsed:,.0f} frames/s, "
        f"{procs} processes, seed {seed}); the stack sent {sent:,} frames; {len(failures)} failure(s)"
    )
    for f in failures:
        print("FAILURE:", f)
    return 1 if failures or done < frames else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Push seeded random and mutated frames through the stack.")
    ap.add_argument("--frames", type=int, default=10_000_000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--rebuild", type=int, default=20_000, help="frames per world (then a leak check)")
    args = ap.parse_args(argv)
    return run(args.frames, args.procs, args.seed, args.rebuild)


if __name__ == "__main__":
    sys.exit(main())
