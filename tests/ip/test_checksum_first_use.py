"""First-use memory (issue #13): a long checksum on a fresh process does not load numba by itself
(~157 MB of RSS and seconds of stall in the pure build); only :func:`warm_up` does, which a stack
calls when one of its devices does not checksum in hardware. The compiled build never loads it."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
from aiostack.ip import checksum
data = bytes(range(256)) * 16  # 4096 bytes, above NUMBA_THRESHOLD
first = checksum.ones_sum(data)
print("numba" in sys.modules, first == checksum.ones_sum_bigint(data))
checksum.warm_up()
print("numba" in sys.modules, checksum.ones_sum(data) == first)
"""


def _probe(**env: str) -> list[str]:
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env}, check=True)
    return res.stdout.split("\n")[:2]


def test_pure_build_loads_numba_only_when_warmed_up() -> None:
    assert _probe(AIOSTACK_NO_EXTENSIONS="1") == ["False True", "True True"]


def test_aiostack_numba_0_keeps_it_out() -> None:
    assert _probe(AIOSTACK_NO_EXTENSIONS="1", AIOSTACK_NUMBA="0") == ["False True", "False True"]


def test_this_build() -> None:
    """This process's build, inherited: the compiled one's C loop never needs numba."""
    from aiostack.build import build_name

    warmed = "True True" if build_name() == "pure" else "False True"
    assert _probe() == ["False True", warmed]
