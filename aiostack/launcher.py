"""``aiostack run [stack options] -- PROGRAM ARGS…``: an existing asyncio program on aiostack.

Like OpenOnload's ``onload app`` for C programs: the program is not changed. Before it runs, the
launcher makes aiostack's loop (:mod:`aiostack.loop`) the one every usual way of getting a loop
returns:

- the asyncio policy is :class:`aiostack.loop.EventLoopPolicy` — ``asyncio.run``,
  ``asyncio.new_event_loop``, ``asyncio.Runner`` (so aiohttp's ``web.run_app``);
- ``uvloop.new_event_loop``, ``uvloop.run``, ``uvloop.install`` and ``uvloop.EventLoopPolicy``
  give aiostack's loop (a ``uvloop.Loop`` subclass) — so uvicorn's default ``--loop auto``,
  which calls ``uvloop.new_event_loop``, runs on it.

PROGRAM is a script path, ``-m module``, or a console script (``uvicorn``: its entry point, or an
executable Python script found on ``PATH``); it runs in this process as ``__main__`` with
``sys.argv`` set to PROGRAM ARGS, as ``python`` would run it.

``--cores N``: the parent opens every queue of the device and forks one reactor process per core
(:func:`aiostack.cores.run_per_core`, the machinery of ``serve(cores=N)``); each runs its own copy
of the program with a loop whose stack owns that core's queue (flows steered by RSS), its own
control socket (``aiostack stat`` lists each), and restarts if it dies.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import runpy
import shutil
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from .config import Options, parse_options
from .devices import DeviceError
from .loop import EventLoopPolicy, StackStarter, configure, new_event_loop

__all__ = ["install", "main", "run_program"]

USAGE = "aiostack run [stack options] -- PROGRAM ARGS...   (PROGRAM: script.py | -m module | console script)"


def install(options: Options, starter: StackStarter | None = None) -> None:
    """Make aiostack's loop, configured by ``options``, what asyncio and uvloop hand out in this
    process (see the module documentation)."""
    import uvloop

    configure(options, starter)
    asyncio.set_event_loop_policy(EventLoopPolicy())
    original_run = getattr(uvloop.run, "__wrapped__", uvloop.run)

    @functools.wraps(original_run)
    def uvloop_run(main: Any, *, loop_factory: Callable[[], Any] = new_event_loop, **kw: Any) -> Any:
        return original_run(main, loop_factory=loop_factory, **kw)

    uvloop.new_event_loop = new_event_loop  # type: ignore[assignment]
    uvloop.run = uvloop_run  # type: ignore[assignment]
    uvloop.install = lambda: asyncio.set_event_loop_policy(EventLoopPolicy())  # type: ignore[assignment]
    uvloop.EventLoopPolicy = EventLoopPolicy  # type: ignore[assignment,misc]


def _console_script(name: str) -> Callable[[], Any] | None:
    for ep in metadata.entry_points(group="console_scripts"):
        if ep.name == name:
            return ep.load()  # type: ignore[no-any-return]
    return None


def run_program(argv: Sequence[str]) -> int:
    """Run PROGRAM ARGS (``argv``) as ``__main__`` in this process; its exit status."""
    if not argv:
        raise SystemExit(f"usage: {USAGE}")
    try:
        if argv[0] == "-m":
            if len(argv) < 2:
                raise SystemExit("aiostack run: -m needs a module name")
            sys.argv = [argv[1], *argv[2:]]
            sys.path.insert(0, os.getcwd())
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
            return 0
        program = argv[0]
        sys.argv = list(argv)
        if os.path.exists(program):
            sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
            runpy.run_path(program, run_name="__main__")
            return 0
        entry = _console_script(program)
        if entry is not None:
            result = entry()
            return result if isinstance(result, int) else 0
        found = shutil.which(program)
        if found is not None and _is_python_script(found):
            sys.argv[0] = found
            runpy.run_path(found, run_name="__main__")
            return 0
        raise SystemExit(f"aiostack run: {program!r} is neither a file, a console script nor a Python script on PATH")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1


def _is_python_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            first = f.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _reactor(k: int, device: Any, channels: dict[int, Any], options: Options, program: Sequence[str]) -> int:
    """Reactor k of ``--cores N``: the program with a loop on this core's own stack."""
    from .cores import build_reactor_stack, start_reactor_stack

    stack, handlers = build_reactor_stack(k, device, options, channels)
    used = False

    async def starter(opts: Options) -> tuple[Any, Callable[[], None]]:
        nonlocal used
        if used:
            raise RuntimeError("this reactor's stack already ran on a loop (one loop per reactor process)")
        used = True
        control = await start_reactor_stack(k, stack, opts, channels, handlers)

        def close() -> None:
            if control is not None:
                control.close()
            stack.close()

        return stack, close

    install(options, starter)
    return run_program(program)


def main(argv: Sequence[str]) -> int:
    """``aiostack run``: ``argv`` is everything after ``run``."""
    argv = list(argv)
    if "--" not in argv:
        if argv and argv[0] in ("-h", "--help"):
            argv = [*argv, "--"]
        else:
            print(f"usage: {USAGE}\naiostack run: put -- between the stack options and the program", file=sys.stderr)
            return 2
    cut = argv.index("--")
    stack_args, program = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="aiostack run", usage=USAGE,
        description="Run an unmodified asyncio program with aiostack's event loop installed.",
    )
    options = parse_options(stack_args, parser)
    if not program:
        parser.error("no PROGRAM after --")
    if options.stack == "kernel":
        parser.error("--stack kernel: run the program directly, it is already on the kernel's sockets")
    if options.driver == "memory":
        parser.error("--driver memory has no device to open by name: aiostack run needs --driver tap or packet")
    try:
        if options.cores == 1:
            install(options)
            return run_program(program)
        from .cores import make_channels, run_per_core

        with make_channels(options.cores) as channels:
            return run_per_core(options, lambda k, dev, ch: _reactor(k, dev, ch, options, program), channels)
    except DeviceError as exc:
        print(f"aiostack: {exc}", file=sys.stderr)
        return 2
