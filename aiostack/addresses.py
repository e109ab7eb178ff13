"""Socket addresses as the socket API takes them: ``(host, port)`` tuples of dotted-quad text."""

from __future__ import annotations

import errno

from .ip import ipv4

Address = tuple[str, int]


def parse_address(address: object, *, allow_any: bool) -> tuple[int, int]:
    if not (isinstance(address, tuple) and len(address) == 2):
        raise TypeError("AF_INET address must be a (host, port) tuple")
    host, port = address
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise OverflowError("port must be 0-65535")
    if host in ("", "0.0.0.0") and allow_any:
        return 0, port
    if host == "<broadcast>":
        return ipv4.LIMITED_BROADCAST, port
    if not isinstance(host, str):
        raise TypeError("host must be a string")
    try:
        return ipv4.aton(host), port
    except ValueError:
        raise OSError(errno.EINVAL, f"not an IPv4 address: {host!r} (name lookup is not supported)") from None


def format_address(addr: int, port: int) -> Address:
    return (ipv4.ntoa(addr), port)
