"""The fuzz corpus and every crash reproducer replay cleanly, and a short coverage-guided run finds
nothing (issue #13 part 3). ``make fuzz`` runs the long form (``tests/fuzz/run.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fuzz_harness as harness  # noqa: E402

TARGETS = sorted(harness.TARGETS)
SHORT_RUNS = 150
"""Inputs of the in-suite atheris run, per target (bounded by count, not time: ~3-6 s each)."""


def _inputs(target: str) -> list[Path]:
    corpus = sorted((HERE / "corpus" / target).glob("*"))
    crashes = sorted((HERE / "crashes").glob(f"{target}-*"))
    return corpus + crashes


@pytest.mark.parametrize("target", TARGETS)
def test_corpus_and_reproducers_replay(target: str) -> None:
    """Every committed input (the corpus, and the reproducers of crashes fixed since) runs
    through the target on this build without an exception or a broken invariant."""
    inputs = _inputs(target)
    assert len(inputs) >= 10, f"the {target} corpus is missing (python tests/fuzz/seeds.py writes its seeds)"
    run = harness.TARGETS[target]
    for path in inputs:
        try:
            run(path.read_bytes())
        except Exception as exc:
            raise AssertionError(f"{path.relative_to(HERE)}: {exc!r}") from exc


@pytest.mark.parametrize("target", TARGETS)
def test_short_coverage_guided_run(target: str, tmp_path: Path) -> None:
    """atheris loads the committed corpus and tries SHORT_RUNS mutations of it on this build (the subprocess
    inherits AIOSTACK_NO_EXTENSIONS) and finds no crash; the repository's corpus is untouched."""
    pytest.importorskip("atheris", reason="atheris (the 'test' extra) is not installed on this platform")
    corpus = tmp_path / "corpus"
    shutil.copytree(HERE / "corpus" / target, corpus)
    crashes = tmp_path / "crashes"
    # libFuzzer counts the corpus it loads (and one empty input) as runs: mutations come after.
    runs = len(list(corpus.iterdir())) + 1 + SHORT_RUNS
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "run.py"),
            target,
            "--runs",
            str(runs),
            "--corpus",
            str(corpus),
            "--crashes",
            str(crashes),
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    out = proc.stdout + proc.stderr
    found = sorted(p.name for p in crashes.glob("*")) if crashes.exists() else []
    assert proc.returncode == 0 and not found, f"fuzzing found {found}:\n{out[-4000:]}"
    assert f"Done {runs} runs" in out, out[-2000:]


def test_harness_reports_a_leaked_buffer() -> None:
    """The teardown check that makes a pool leak a fuzzing failure: a buffer taken during an
    input and never freed fails that input (and the pool is renewed for the next one)."""
    world = harness.World()
    leaked = harness.POOL.alloc()
    with pytest.raises(harness.FuzzDefect, match="1 packet buffer"):
        world.close()
    assert leaked is not None
    assert harness.POOL.available == harness.POOL.count  # a fresh pool for the next input
    harness.one_frame(bytes([3, 7]) + b"\0" * 20)  # and the next input runs clean


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f[:40], "IPv4 total length"),
        (lambda f: f[:24] + bytes([f[24] ^ 1]) + f[25:], "IPv4 header checksum"),
        (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "TCP checksum"),
        (lambda f: f[:46] + bytes([0x40]) + f[47:], "TCP header"),
    ],
)
def test_harness_reports_a_malformed_frame_sent(damage, message: str) -> None:  # type: ignore[no-untyped-def]
    """The output check: a well-formed segment passes, each kind of damage is reported."""
    seg = harness.tcp_segment(seq=1, ack=2, flags=0x18, payload=b"data", sport=8080, dport=50000)
    frame = harness.ethernet(harness.ipv4_packet(6, seg, src=harness.LOCAL_IP, dst=harness.PEER_IP))
    harness.check_frame(frame)
    with pytest.raises(harness.FuzzDefect, match=message):
        harness.check_frame(damage(frame))
