"""Coverage-guided fuzzing of the stack with atheris (libFuzzer for Python).

    python tests/fuzz/run.py frame --time 60          # fuzz target (a) for 60 s
    python tests/fuzz/run.py segments --runs 500      # target (b), 500 inputs
    python tests/fuzz/run.py frame --replay FILE ...  # run inputs once (a reproducer)

The targets are in ``fuzz_harness.py``. New inputs that reach new coverage go to the corpus,
``tests/fuzz/corpus/<target>/`` unless ``--corpus`` names another directory; an input that
raises, hangs (``--timeout``) or breaks an invariant is written to
``tests/fuzz/crashes/<target>-crash-<sha1>`` (libFuzzer's artifact), which the suite replays
(``test_fuzz_corpus.py``): once fixed, a reproducer stays as a regression test.

**What coverage means on each build.** atheris instruments Python bytecode as it is imported.
On the pure build (``AIOSTACK_NO_EXTENSIONS=1``) every module of the stack is Python, so the
fuzzer is guided by the branches of the whole stack: IPv4, ARP, ICMP, UDP, TCP's layer and
connection state machine. On the compiled build the hot-path modules (``aiostack.build.COMPILED``:
segment parsing, the connection, the TCP layer, IPStack, ...) are C extensions atheris cannot see
into; it is guided by the branches of the remaining Python (the harness's crafting, ICMP,
fragments, congestion control's Python parts, SACK scoreboard if not compiled ...), while every
input still runs through the compiled code, so a crash, a hang or a broken invariant there is
found all the same — with less guidance. Fuzz the pure build to grow the corpus; replay the
corpus on both (``make fuzz`` does both).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"


def _instrument_stack(atheris: types.ModuleType) -> int:
    """Add coverage instrumentation to every Python function of aiostack (but its checksum
    kernels) and of the harness; how many. Compiled functions are not Python functions: they
    are left as they are."""
    count = 0
    for obj in gc.get_objects():
        if not isinstance(obj, types.FunctionType):
            continue
        module = getattr(obj, "__module__", None) or ""
        if not (module == "fuzz_harness" or module == "aiostack" or module.startswith("aiostack.")):
            continue
        if module == "aiostack.ip.checksum":
            continue
        atheris.instrument_func(obj)
        count += 1
    return count


def _minimize(target: str, corpus: Path) -> int:
    """Move the corpus aside, keep its seeds, merge the rest back (a subprocess: libFuzzer's
    merge ends the process that runs it)."""
    before = len(list(corpus.iterdir()))
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        old = Path(tmp) / "old"
        shutil.move(str(corpus), old)
        corpus.mkdir()
        for seed in old.glob("seed-*"):
            shutil.copy(seed, corpus / seed.name)
        env = {**os.environ, "AIOSTACK_NO_EXTENSIONS": "1"}
        cmd = [sys.executable, str(Path(__file__).resolve()), target, "--corpus", str(corpus), "--merge", str(old)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(corpus)
            shutil.move(str(old), corpus)
            print(proc.stdout[-2000:], proc.stderr[-4000:], sep="\n")
            return proc.returncode
    print(f"{target} corpus minimized: {before} -> {len(list(corpus.iterdir()))} inputs")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", choices=("frame", "segments"))
    ap.add_argument("--time", type=int, default=0, help="stop after this many seconds (libFuzzer -max_total_time)")
    ap.add_argument("--runs", type=int, default=-1, help="stop after this many inputs (libFuzzer -runs)")
    ap.add_argument("--corpus", type=Path, default=None, help="corpus directory (default tests/fuzz/corpus/TARGET)")
    ap.add_argument("--crashes", type=Path, default=CRASHES, help="where reproducers are written")
    ap.add_argument("--timeout", type=int, default=30, help="seconds one input may take before it is a hang")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (reproducible runs)")
    ap.add_argument("--replay", nargs="+", type=Path, help="run these inputs once each and exit")
    ap.add_argument(
        "--merge",
        type=Path,
        help="minimize: copy into the corpus only the inputs of this directory that add coverage (libFuzzer -merge=1)",
    )
    ap.add_argument(
        "--minimize",
        action="store_true",
        help="shrink the corpus to the seeds and the fewest inputs "
        "that cover every edge they covered (on the pure build)",
    )
    argv = sys.argv[1:] if argv is None else argv
    # libFuzzer's merge re-runs this script as "python run.py TARGET <its own flags and dirs>":
    # then everything after the target goes to libFuzzer as it is.
    inner = any(a.startswith("-merge_inner") for a in argv)
    args = ap.parse_args(argv[:1] if inner else argv)

    if args.minimize:
        return _minimize(args.target, args.corpus or CORPUS / args.target)

    import atheris

    sys.path.insert(0, str(HERE))
    # Import the harness (and with it the stack), compile the checksum kernel now rather than in
    # the first input that sends a long segment, then instrument every Python function of the
    # stack and the harness. Not with atheris.instrument_imports: the pure build loads the
    # hot-path modules through aiostack.build's own finder, which that hook does not see. The
    # checksum module stays as it is: numba compiles its kernel from the bytecode.
    import fuzz_harness as harness

    from aiostack.ip import checksum

    checksum.warm_up()
    instrumented = _instrument_stack(atheris)
    from aiostack.build import build_name

    target = harness.TARGETS[args.target]
    if args.replay:
        for path in args.replay:
            target(path.read_bytes())
            print(f"{path}: ok")
        return 0

    corpus = args.corpus or CORPUS / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    args.crashes.mkdir(parents=True, exist_ok=True)
    print(
        f"fuzzing {args.target} on the {build_name()} build ({instrumented} Python functions instrumented);"
        f" corpus {corpus}",
        flush=True,
    )
    flags = [
        f"{sys.executable} {Path(__file__).resolve()} {args.target}",
        str(corpus),
        f"-artifact_prefix={args.crashes}{os.sep}{args.target}-",
        f"-timeout={args.timeout}",
        f"-seed={args.seed}",
        "-max_len=1600",
        "-len_control=0",  # frames of any length from the start, not grown slowly from 4 bytes
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]
    if inner:
        flags = [flags[0], *argv[1:]]
    elif args.merge:
        # edges only (no hit-count buckets): the smallest set of inputs that covers every edge
        flags = [*flags[:1], "-merge=1", "-use_counters=0", *flags[1:2], str(args.merge), *flags[2:]]
    if args.time:
        flags.append(f"-max_total_time={args.time}")
    if args.runs >= 0:
        flags.append(f"-runs={args.runs}")
    atheris.Setup(flags, target)
    atheris.Fuzz()  # exits the process: 0 when the time or run count is reached, else a crash
    return 0


if __name__ == "__main__":
    sys.exit(main())
