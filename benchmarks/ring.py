#!/usr/bin/env python3
"""Cross-core rings (``aiostack/ring.py``) measured. Run: ``.venv/bin/python benchmarks/ring.py``.

- one way: messages/s from a producer process to a consumer process, pinned to two CPUs with
  ``os.sched_setaffinity``, for 16 B and 1 KB messages, one message per call (``try_put``/
  ``try_get``) and in batches (``put_many``/``get_many``), both sides busy-polling;
- round trip: the latency of ``await Channel.call("echo", x)`` between two uvloop reactors whose
  receive side sleeps on the doorbell (so each call includes two eventfd wake-ups);
- ``--micro``: ns per operation in one process, and the copy/fence alternatives (cffi, numba) that
  the module docstring compares.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import time
import timeit
import uuid

from aiostack.ring import Channel, SpscRing, warm_up


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _cpus() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


# -- one way ---------------------------------------------------------------------------------------


def _producer(ring: SpscRing, cpu: int | None, size: int, count: int, batch: int, go: mp.Event) -> None:
    _pin(cpu)
    warm_up()
    msg = bytes(size)
    go.wait()
    if batch == 1:
        put = ring.try_put
        for _ in range(count):
            while not put(msg):
                pass
    else:
        chunk = [msg] * batch
        left = count
        while left:
            left -= ring.put_many(chunk if left >= batch else chunk[:left])
    ring.close()


def _one_way(size: int, count: int, batch: int) -> float:
    c0, c1 = _cpus()
    ctx = mp.get_context("spawn")
    ring = SpscRing.create(f"aiostack-bench-{uuid.uuid4().hex[:8]}", 1 << 20, doorbell=True)
    go = ctx.Event()
    proc = ctx.Process(target=_producer, args=(ring, c0, size, count, batch, go))
    try:
        proc.start()
        own = os.sched_getaffinity(0)
        _pin(c1)
        time.sleep(0.5)  # let the child import and warm up
        got = 0
        get = ring.get_many
        go.set()
        t0 = time.perf_counter()
        if batch == 1:
            one = ring.try_get
            while got < count:
                if one() is not None:
                    got += 1
        else:
            while got < count:
                got += len(get(batch))
        elapsed = time.perf_counter() - t0
        os.sched_setaffinity(0, own)
        proc.join(30)
        return count / elapsed
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        ring.unlink()
        ring.close()


# -- round trip ------------------------------------------------------------------------------------


def _server(ch: Channel, cpu: int | None, ready: mp.Event) -> None:
    import uvloop

    _pin(cpu)
    warm_up()

    async def main() -> None:
        stop = asyncio.Event()
        ch.serve({"echo": lambda x: x, "stop": stop.set})
        ready.set()
        await stop.wait()
        await asyncio.sleep(0.05)  # let the reply to "stop" go out

    uvloop.run(main())
    ch.close()


def _round_trip(calls: int) -> tuple[float, float, float]:
    import uvloop

    c0, c1 = _cpus()
    ctx = mp.get_context("spawn")
    a = Channel.create(f"aiostack-bench-{uuid.uuid4().hex[:8]}", 1 << 16)
    ready = ctx.Event()
    proc = ctx.Process(target=_server, args=(a.peer(), c0, ready))
    samples: list[float] = []
    try:
        proc.start()
        own = os.sched_getaffinity(0)
        _pin(c1)
        warm_up()
        ready.wait(30)

        async def main() -> None:
            for i in range(calls):
                t = time.perf_counter()
                await a.call("echo", i)
                samples.append(time.perf_counter() - t)
            await a.call("stop")

        uvloop.run(main())
        os.sched_setaffinity(0, own)
        proc.join(30)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        a.close()
    samples = samples[calls // 10 :]  # skip the warm-up
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6, statistics.mean(samples) * 1e6


# -- in one process --------------------------------------------------------------------------------


def micro() -> None:
    import numba
    import numpy as np
    from cffi import FFI

    from aiostack.drivers.spsc import _load_fence

    def ns(fn, n=200_000) -> float:  # type: ignore[no-untyped-def]
        return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e9

    print("| operation | 16 B | 1 KB |")
    print("|---|---:|---:|")
    for label, doorbell in (("try_put + try_get", False), ("try_put + try_get, doorbell", True)):
        ring = SpscRing.create(f"aiostack-micro-{uuid.uuid4().hex[:8]}", 1 << 16, doorbell=doorbell)
        try:
            row = []
            for size in (16, 1024):
                m = bytes(size)
                put, get = ring.try_put, ring.try_get
                get()
                row.append(ns(lambda put=put, get=get, m=m: (put(m), get())))
            print(f"| {label} | {row[0]:.0f} | {row[1]:.0f} |")
            if not doorbell:
                row = []
                for size in (16, 1024):
                    batch = [bytes(size)] * 32
                    row.append(ns(lambda b=batch, r=ring: (r.put_many(b), r.get_many(32)), 5000) / 32)
                print(f"| put_many + get_many (32), per message | {row[0]:.0f} | {row[1]:.0f} |")
        finally:
            ring.unlink()
            ring.close()

    buf = bytearray(1 << 16)
    mv = memoryview(buf)
    ffi = FFI()
    dst = ffi.from_buffer(buf)

    @numba.njit(cache=False)
    def nb_copy(dst, off, src):  # type: ignore[no-untyped-def]
        for i in range(src.shape[0]):
            dst[off + i] = src[i]

    arr = np.frombuffer(buf, dtype=np.uint8)
    nb_copy(arr, 0, np.frombuffer(bytes(16), dtype=np.uint8))
    rows = {"copy: memoryview slice assignment": [], "copy: cffi ffi.memmove": [], "copy: numba loop": []}
    for size in (16, 1024):
        m = bytes(size)
        rows["copy: memoryview slice assignment"].append(ns(lambda m=m, n=size: mv.__setitem__(slice(64, 64 + n), m)))
        rows["copy: cffi ffi.memmove"].append(ns(lambda m=m, n=size: ffi.memmove(dst + 64, m, n)))
        rows["copy: numba loop"].append(ns(lambda m=m: nb_copy(arr, 64, np.frombuffer(m, dtype=np.uint8)), 50_000))
    for k, (a, b) in rows.items():
        print(f"| {k} | {a:.0f} | {b:.0f} |")
    q = mv[:64].cast("Q")
    fence = _load_fence()
    print(f"| counter store (memoryview 'Q') | {ns(lambda: q.__setitem__(1, 5)):.0f} | |")
    print(f"| fence (numba intrinsic) | {ns(fence):.0f} | |")
    q.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="messages per one-way run")
    ap.add_argument("--calls", type=int, default=20_000, help="Channel.call round trips")
    ap.add_argument("--micro", action="store_true", help="in-process ns per operation instead")
    args = ap.parse_args()
    if args.micro:
        micro()
        return
    c0, c1 = _cpus()
    print(f"producer on CPU {c0}, consumer on CPU {c1}" if c0 is not None else "one CPU: not pinned")
    print("| one way | 16 B msg/s | 1 KB msg/s | 1 KB MB/s |")
    print("|---|---:|---:|---:|")
    for label, batch in (("try_put / try_get", 1), ("put_many / get_many (64)", 64)):
        r16 = _one_way(16, args.count, batch)
        r1k = _one_way(1024, args.count, batch)
        print(f"| {label} | {r16 / 1e6:.2f} M | {r1k / 1e6:.2f} M | {r1k * 1024 / 1e6:.0f} |")
    med, p99, mean = _round_trip(args.calls)
    print(f"\nChannel.call round trip (idle peer, doorbell wake-ups), {args.calls} calls:")
    print(f"median {med:.1f} µs, p99 {p99:.1f} µs, mean {mean:.1f} µs")


if __name__ == "__main__":
    main()
