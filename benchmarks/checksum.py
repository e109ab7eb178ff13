#!/usr/bin/env python3
"""The Internet checksum two ways, side by side: aiostack's big-integer form (``ip/checksum.py``)
and a numba-compiled loop over the bytes. Run: ``.venv/bin/python benchmarks/checksum.py``.

Prints ns per call for sizes from an IPv4 header to a 64 KB datagram, for each form alone and for
what the stack calls (``ones_sum``, which picks by length); the numba form pays for its
``np.frombuffer`` view, as it does in the stack.
"""

from __future__ import annotations

import os
import timeit

from aiostack.ip.checksum import NUMBA_THRESHOLD, _load_long_sum, ones_sum, ones_sum_bigint


def main() -> None:
    ones_sum_numba = _load_long_sum()
    assert ones_sum_numba is not None
    print(f"{'bytes':>7} {'big-int ns':>11} {'numba ns':>9} {'stack ns':>9}  winner")
    print(f"(the stack's ones_sum uses numba from {NUMBA_THRESHOLD} bytes)")
    for size in (20, 64, 256, 400, 576, 1500, 8000, 65535):
        data = os.urandom(size)
        assert ones_sum_bigint(data) == ones_sum_numba(data, 0) == ones_sum(data)
        n = max(1000, 2_000_000 // max(size, 200))
        big = min(timeit.repeat(lambda d=data: ones_sum_bigint(d), number=n, repeat=5)) / n * 1e9
        nb = min(timeit.repeat(lambda d=data: ones_sum_numba(d, 0), number=n, repeat=5)) / n * 1e9
        st = min(timeit.repeat(lambda d=data: ones_sum(d), number=n, repeat=5)) / n * 1e9
        print(f"{size:>7} {big:>11.0f} {nb:>9.0f} {st:>9.0f}  {'big-int' if big <= nb else 'numba'}")


if __name__ == "__main__":
    main()
