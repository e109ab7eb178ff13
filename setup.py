"""The build of aiostack: the pure-Python package, plus — where Cython and a C compiler are there —
the compiled build of the per-segment hot path, made from the same ``.py`` sources in Cython's
pure-Python mode (the ``.pxd`` files beside them carry the C types).

Everything else (names, packages, dependencies) is in ``pyproject.toml``. A machine without
Cython or a compiler gets the pure build and a warning; ``AIOSTACK_NO_EXTENSIONS=1`` at build
time asks for the pure build, and at run time selects it even where the extensions are built
(see ``aiostack/build.py``).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent

PACKAGE_DIRS = {"aiostack": "aiostack", "aiostack.tcp": "tcp", "aiostack.tcp.congestion": "tcp/congestion",
                "aiostack.ip": "ip", "aiostack.drivers": "drivers"}

# One list of the compiled modules, read from the module that reports the build at run time.
COMPILED = runpy.run_path(str(ROOT / "aiostack" / "build.py"))["COMPILED"]


def source_of(module: str) -> str:
    package, _, name = module.rpartition(".")
    return f"{PACKAGE_DIRS[package]}/{name}.py"


def pxd_tree() -> str:
    """A directory where the sources appear under their installed names (``aiostack/tcp/...``):
    Cython finds the ``.pxd`` of ``from aiostack.tcp.segment cimport ...`` (and of relative
    cimports) by the full module name, while the repository keeps ``tcp/``, ``ip/`` and
    ``drivers/`` at the top level."""
    tree = ROOT / "build" / "cython-include"
    top = tree / "aiostack"
    top.mkdir(parents=True, exist_ok=True)
    links = {name: ROOT / path for name, path in PACKAGE_DIRS.items() if name.count(".") == 1}
    for entry in (ROOT / "aiostack").iterdir():
        if entry.suffix in (".pxd", ".py"):
            links[f"aiostack.{entry.stem}"] = entry
    for name, target in links.items():
        link = top / (name.split(".", 1)[1] + (target.suffix if target.is_file() else ""))
        if link.is_symlink() or link.exists():
            if link.resolve() == target.resolve():
                continue
            link.unlink()
        link.symlink_to(target)
    return str(tree)


def extensions() -> list[Extension]:
    if os.environ.get("AIOSTACK_NO_EXTENSIONS", "") not in ("", "0"):
        print("aiostack: AIOSTACK_NO_EXTENSIONS is set: building the pure-Python package only", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("WARNING: aiostack: Cython is not installed: the pure-Python build (much slower) is installed",
              file=sys.stderr)
        return []
    exts = [Extension(m, [source_of(m)], optional=True) for m in COMPILED]
    return cythonize(
        exts,
        include_path=[pxd_tree()],
        compiler_directives={
            "language_level": 3,
            # Types come from the .pxd files; annotations stay documentation (``now: float`` must
            # not turn into a C double that rejects None, nor ``list[...]`` into an exact-type check).
            "annotation_typing": False,
            "embedsignature": True,
        },
        build_dir="build/cython",
        quiet=True,
        nthreads=os.cpu_count() or 1,
    )


class BuildExt(build_ext):
    """Extensions are optional: a missing compiler means the pure build, said loudly."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # distutils' PlatformError/CompileError on a machine without gcc
            print(f"WARNING: aiostack: the compiled build failed ({exc}); the pure-Python build is installed",
                  file=sys.stderr)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
