"""Which build of aiostack runs: compiled or pure.

The per-segment hot path has two builds from one source: the ``.py`` modules themselves (the pure
build, which always works) and the same modules compiled by Cython in pure-Python mode, typed by
the ``.pxd`` files beside them (the compiled build; ``setup.py`` lists the modules). Where both are
installed, Python's import prefers the compiled one; ``AIOSTACK_NO_EXTENSIONS=1`` in the
environment selects the pure build at run time without reinstalling: this module, imported first
by the ``aiostack`` package, then puts a finder in front that loads every ``aiostack.*`` module
from its ``.py`` file. Child processes inherit the variable, so a whole multi-core run is of one
build.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

COMPILED = (
    "aiostack.counts",
    "aiostack.tcp.seq",
    "aiostack.tcp.isn",
    "aiostack.tcp.drop_totals",
    "aiostack.tcp.time_wait",
    "aiostack.tcp.segment",
    "aiostack.tcp.send_buffer",
    "aiostack.tcp.receive_buffer",
    "aiostack.tcp.rtt",
    "aiostack.tcp.memory",
    "aiostack.tcp.rack",
    "aiostack.tcp.sack",
    "aiostack.tcp.connection",
    "aiostack.tcp.layer",
    "aiostack.tcp.congestion.base",
    "aiostack.tcp.congestion.cubic",
    "aiostack.tcp.congestion.newreno",
    "aiostack.ip.checksum",
    "aiostack.ip.ethernet",
    "aiostack.ip.datagram",
    "aiostack.ip.ipv4",
    "aiostack.ip.arp",
    "aiostack.ip.icmp_layer",
    "aiostack.ip.udp",
    "aiostack.ip.timers",
    "aiostack.ip.flow",
    "aiostack.ip.fragments",
    "aiostack.ip.filter",
    "aiostack.ip.martians",
    "aiostack.ip.stack",
    "aiostack.drivers.base",
    "aiostack.drivers.buffers",
    "aiostack.drivers.rss",
    "aiostack.drivers.memory",
    "aiostack.drivers.vnet",
    "aiostack.drivers.tap",
    "aiostack.drivers.packet",
    "aiostack.drivers.xdp_rings",
    "aiostack.reactor",
    "aiostack.protocols",
    "aiostack.tcp_socket",
)
"""The modules that have a compiled build (``setup.py`` compiles this list)."""


def pure_requested() -> bool:
    return os.environ.get("AIOSTACK_NO_EXTENSIONS", "") not in ("", "0")


class _PureFinder(importlib.abc.MetaPathFinder):
    """Finds ``aiostack.*`` modules as the other finders do, but from their ``.py`` source when
    what they found is an extension module."""

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None) -> object:
        if not fullname.startswith("aiostack."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if isinstance(spec.loader, importlib.machinery.ExtensionFileLoader) and spec.origin:
                origin = Path(spec.origin)
                source = origin.with_name(origin.name.split(".", 1)[0] + ".py")
                if source.exists():
                    return importlib.util.spec_from_file_location(fullname, source)
            return spec
        return None


def _install() -> None:
    if pure_requested() and not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())


def is_compiled(module: ModuleType) -> bool:
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def compiled_modules() -> list[str]:
    """The modules of :data:`COMPILED` that this process runs compiled (imports them)."""
    out = []
    for name in COMPILED:
        module = importlib.import_module(name)
        if is_compiled(module):
            out.append(name)
    return out


def build_name() -> str:
    """``"compiled"`` when every hot-path module runs compiled, ``"pure"`` when none does,
    ``"partial (k/n compiled)"`` otherwise (a failed or stale build)."""
    done = len(compiled_modules())
    if done == len(COMPILED):
        return "compiled"
    if done == 0:
        return "pure"
    return f"partial ({done}/{len(COMPILED)} compiled)"


def stale_extensions() -> list[str]:
    """Compiled modules older than their ``.py`` or ``.pxd``: edits the compiled build does not
    have yet (``make build`` recompiles)."""
    stale = []
    for name in COMPILED:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".so"):
            continue
        so = Path(spec.origin)
        stem = so.name.split(".", 1)[0]
        built = so.stat().st_mtime
        for suffix in (".py", ".pxd"):
            src = so.with_name(stem + suffix)
            if src.exists() and src.stat().st_mtime > built:
                stale.append(name)
                break
    return stale


_install()
