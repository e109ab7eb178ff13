#!/usr/bin/env python3
"""The Internet checksum's forms side by side (``ip/checksum.py``): the big-integer form, the
loop compiled by numba, and what the stack calls (``ones_sum``: in the compiled build the loop
compiled by Cython, in the pure build big-int or numba by length). Run it in both builds::

    .venv/bin/python benchmarks/checksum.py
    AIOSTACK_NO_EXTENSIONS=1 .venv/bin/python benchmarks/checksum.py

Prints ns per call for sizes from an IPv4 header to a 64 KB datagram; the numba form pays for its
``np.frombuffer`` view, as it does in the stack. numba compiles the pure build's loop only, so its
column is empty in the compiled build (where the C loop serves every length).
"""

from __future__ import annotations

import os
import timeit

from aiostack import build
from aiostack.ip.checksum import NUMBA_THRESHOLD, _load_long_sum, ones_sum, ones_sum_bigint


def _ns(fn, data: bytes) -> float:
    n = max(1000, 2_000_000 // max(len(data), 200))
    return min(timeit.repeat(lambda: fn(data), number=n, repeat=5)) / n * 1e9


def main() -> None:
    ones_sum_numba = _load_long_sum()
    print(f"build: {build.build_name()}")
    print(f"{'bytes':>7} {'big-int ns':>11} {'numba ns':>9} {'stack ns':>9}  fastest")
    if ones_sum_numba is not None:
        print(f"(the pure build's ones_sum uses numba from {NUMBA_THRESHOLD} bytes)")
    for size in (20, 64, 256, 400, 576, 1500, 8000, 65535):
        data = os.urandom(size)
        assert ones_sum_bigint(data) == ones_sum(data)
        big = _ns(ones_sum_bigint, data)
        st = _ns(ones_sum, data)
        times = {"big-int": big, "stack": st}
        nb_text = "-"
        if ones_sum_numba is not None:
            assert ones_sum_numba(data, 0) == ones_sum(data)
            times["numba"] = _ns(lambda d: ones_sum_numba(d, 0), data)
            nb_text = f"{times['numba']:.0f}"
        print(f"{size:>7} {big:>11.0f} {nb_text:>9} {st:>9.0f}  {min(times, key=times.__getitem__)}")


if __name__ == "__main__":
    main()
