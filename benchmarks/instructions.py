"""User-space instructions per request/response round trip, counted by callgrind: a figure that
does not move with this machine's noise.

Two stacks on the memory link in one process (so the stack dominates, and both ends are counted):
an ``asyncio.Protocol`` echo server on one, a client protocol on the other that sends a 64-byte
request, waits for the echo and sends the next. The program runs under ``valgrind
--tool=callgrind`` twice, with ``WARM`` + ``SHORT`` and ``WARM`` + ``LONG`` round trips; the
difference of the two totals divided by ``LONG - SHORT`` is the cost of one round trip without
the start-up (interpreter, imports, the handshake). Both builds are measured in one run
(``AIOSTACK_NO_EXTENSIONS=1`` selects the pure one).

The stacks run on a clock that moves only when a round trip completes (by ``RTT``): under
callgrind the program runs ~50 times slower than natively, and on the wall clock delayed-ACK
and retransmission timers would fire in some runs and not others, adding segments; with the
stepped clock, the same segments cross the link in every run, whatever the machine's load.

    python -m benchmarks.instructions [--json FILE]
    python -m benchmarks.instructions --child N     # the workload itself (what callgrind runs)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WARM = 100
ROUNDS = 400
REQUEST = b"x" * 64
RTT = 20e-6
"""How far the stacks' clock moves per round trip (about a native round trip on the memory link)."""


class _SteppedClock:
    """A clock for the stacks that moves only when :meth:`step` is called. The stacks call
    :attr:`read`, a C-level callable (no Python frame), so the clock adds nothing to the count."""

    def __init__(self, start: float) -> None:
        self._now = [start]
        self.read: Callable[[], float] = functools.partial(operator.getitem, self._now, 0)

    def step(self) -> None:
        self._now[0] += RTT


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


def _toggle_collect() -> Callable[[], None]:
    """callgrind's CALLGRIND_TOGGLE_COLLECT as a Python call (a no-op outside valgrind)."""
    from cffi import FFI

    ffi = FFI()
    ffi.cdef("void toggle_collect(void);")
    ffi.set_source(
        "_aiostack_cg", "#include <valgrind/callgrind.h>\nvoid toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }"
    )
    build = tempfile.mkdtemp(prefix="aiostack-cg-build-")
    ffi.compile(tmpdir=build, verbose=False)
    sys.path.insert(0, build)
    import _aiostack_cg  # type: ignore[import-not-found]

    return _aiostack_cg.lib.toggle_collect  # type: ignore[no-any-return]


class _Client(asyncio.Protocol):
    def __init__(
        self, rounds: int, done: asyncio.Future[None], toggle: Callable[[], None] | None, clock: _SteppedClock
    ) -> None:
        self.clock = clock
        self.rounds = rounds
        self.done = done
        self.pending = 0
        self.toggle = toggle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.pending = len(REQUEST)
        self.transport.write(REQUEST)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending > 0:
            return
        self.rounds -= 1
        self.clock.step()
        if self.toggle is not None and self.rounds in (ROUNDS, 0):
            self.toggle()  # on after the warm-up, off after the measured round trips
        if self.rounds > 0:
            self._send()
        elif not self.done.done():
            self.done.set_result(None)


async def _workload(rounds: int, toggle: Callable[[], None] | None) -> None:
    from aiostack.drivers.memory import MemoryLink
    from aiostack.protocols import create_connection, create_server
    from aiostack.stack import Stack

    link = MemoryLink()
    # No busy polling: under callgrind the wall clock runs ~50x slower, and idle iterations
    # counted by time would make the count depend on it.
    clock = _SteppedClock(time.monotonic())
    server = Stack(seed=2, busy_poll=0, clock=clock.read)
    server.attach(link.port(name="server"), "10.8.0.2/24")
    client = Stack(seed=1, busy_poll=0, clock=clock.read)
    client.attach(link.port(name="client"), "10.8.0.1/24")
    await server.start()
    await client.start()
    srv = await create_server(_Echo, "10.8.0.2", 7, stack=server)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    transport, _ = await create_connection(lambda: _Client(rounds, done, toggle, clock), "10.8.0.2", 7, stack=client)
    await asyncio.wait_for(done, 600)
    transport.close()
    srv.close()
    client.close()
    server.close()


def _child(rounds: int) -> None:
    import uvloop

    toggle = _toggle_collect() if os.environ.get("AIOSTACK_CALLGRIND") else None
    uvloop.run(_workload(rounds, toggle))


def _count(pure: bool) -> int:
    """User-space instructions (callgrind's Ir) of ``ROUNDS`` round trips after the warm-up."""
    env = dict(os.environ)
    env.pop("AIOSTACK_NO_EXTENSIONS", None)
    if pure:
        env["AIOSTACK_NO_EXTENSIONS"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["AIOSTACK_CALLGRIND"] = "1"
    with tempfile.TemporaryDirectory(prefix="aiostack-cg-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, "-m", "benchmarks.instructions", "--child", str(WARM + ROUNDS)],
            env=env, check=True, capture_output=True, timeout=1200,
        )
        m = re.search(rb"^totals:\s+(\d+)", out.read_bytes(), re.M) or re.search(rb"^summary:\s+(\d+)",
                                                                               out.read_bytes(), re.M)
        if m is None:
            raise RuntimeError("no totals line in callgrind's output")
        return int(m.group(1))


def measure() -> dict[str, object]:
    """Instructions per round trip for both builds, and their ratio."""
    from aiostack import build

    result: dict[str, object] = {"workload": f"asyncio.Protocol echo, {len(REQUEST)}-byte requests, memory link",
                                 "round_trips": ROUNDS}
    for name, pure in (("pure", True), ("compiled", False)):
        if not pure and not build.compiled_modules():
            result[name] = None
            continue
        result[name] = round(_count(pure) / ROUNDS)
    if result.get("compiled") and result.get("pure"):
        result["compiled_over_pure"] = round(result["compiled"] / result["pure"], 3)  # type: ignore[operator]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", type=int, metavar="N", help="run the workload with N round trips (for callgrind)")
    parser.add_argument("--json", metavar="FILE", help="also write the result here")
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind; make benchdeps installs it)", file=sys.stderr)
        return 1
    result = measure()
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
