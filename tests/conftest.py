"""Shared fixtures. Network tests (root, TAP, namespaces) skip with a reason on a user's machine and
fail instead when AIOSTACK_REQUIRE_NET=1 (CI), so they can never pass in CI by not running."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiostack.netns import NetNS, net_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _require_net() -> bool:
    return os.environ.get("AIOSTACK_REQUIRE_NET", "") not in ("", "0")


def need(reason: str | None) -> None:
    """Skip (or, under AIOSTACK_REQUIRE_NET=1, fail) when ``reason`` is not None."""
    if reason is None:
        return
    if _require_net():
        pytest.fail(f"AIOSTACK_REQUIRE_NET=1 but {reason}")
    pytest.skip(reason)


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    need(None if path else f"'{name}' not installed (Debian package {package}; `make setup` installs it)")
    assert path is not None
    return path


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A fresh network namespace, deleted after the test."""
    need(net_unavailable_reason())
    with NetNS() as ns:
        yield ns


# Hypothesis explores new examples on every run on a developer's machine (that is how it finds
# bugs); in CI it replays a fixed sequence, so a red CI always means a change broke something.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hyp_settings.register_profile("dev", deadline=None, print_blob=True)
    _hyp_settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass
