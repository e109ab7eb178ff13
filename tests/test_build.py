"""The two builds of one source: which one runs, and that AIOSTACK_NO_EXTENSIONS selects the pure one
at run time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aiostack import build


def _report(env_extra: dict[str, str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "AIOSTACK_NO_EXTENSIONS"} | env_extra
    code = (
        "import json, aiostack, aiostack.tcp.connection as c; from aiostack import build; "
        "print(json.dumps({'build': build.build_name(), 'file': c.__file__}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_no_extensions_selects_the_pure_build_at_run_time() -> None:
    report = _report({"AIOSTACK_NO_EXTENSIONS": "1"})
    assert report["build"] == "pure"
    assert str(report["file"]).endswith("connection.py")


def test_the_build_this_suite_runs_is_the_one_asked_for() -> None:
    """CI runs the suite twice: compiled (AIOSTACK_REQUIRE_COMPILED=1: it must really be compiled)
    and pure (AIOSTACK_NO_EXTENSIONS=1)."""
    name = build.build_name()
    if build.pure_requested():
        assert name == "pure"
    elif os.environ.get("AIOSTACK_REQUIRE_COMPILED", "") not in ("", "0"):
        assert name == "compiled", f"the compiled build was required, this is {name}"
        assert build.stale_extensions() == [], "compiled modules older than their sources: run make build"
    else:
        assert name in ("compiled", "pure") or name.startswith("partial")


def test_compiled_modules_are_the_listed_ones() -> None:
    names = build.compiled_modules()
    assert set(names) <= set(build.COMPILED)
    if not build.pure_requested() and names:
        # a compiled build without the variable: the variable is what turns it off
        assert _report({"AIOSTACK_NO_EXTENSIONS": "0"})["build"] == build.build_name()


def test_without_the_variable_the_compiled_build_is_imported_where_built() -> None:
    report = _report({})
    source_dir = Path(str(_report({"AIOSTACK_NO_EXTENSIONS": "1"})["file"])).parent
    built = list(source_dir.glob("connection.*.so"))
    assert str(report["file"]).endswith(".so" if built else ".py")
