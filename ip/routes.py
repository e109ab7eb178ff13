"""The routing table: longest-prefix match over on-link subnets and gateways (RFC 1812 §5.2.4.3,
as a host uses it: pick the interface and the next hop, never forward)."""

from __future__ import annotations

import errno
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    network: int
    prefix_len: int
    iface: int
    """Index of the interface the route leaves by."""
    gateway: int = 0
    """0 for an on-link route: the destination itself is the next hop."""

    @property
    def mask(self) -> int:
        return (0xFFFFFFFF << (32 - self.prefix_len)) & 0xFFFFFFFF if self.prefix_len else 0

    def matches(self, addr: int) -> bool:
        return (addr & self.mask) == self.network


class RouteTable:
    """Routes sorted longest prefix first; a one-entry cache serves repeated lookups of one peer."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._cache: dict[int, tuple[int, int]] = {}
        self.version = 0
        """Bumped on every change, so users caching a lookup (a TCP connection's route) know."""

    def add(self, network: int, prefix_len: int, iface: int, gateway: int = 0) -> Route:
        if not 0 <= prefix_len <= 32:
            raise ValueError(f"bad prefix length {prefix_len}")
        mask = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF if prefix_len else 0
        route = Route(network & mask, prefix_len, iface, gateway)
        self.routes = [r for r in self.routes if (r.network, r.prefix_len) != (route.network, prefix_len)]
        self.routes.append(route)
        self.routes.sort(key=lambda r: -r.prefix_len)
        self._cache.clear()
        self.version += 1
        return route

    def remove(self, network: int, prefix_len: int) -> None:
        self.routes = [r for r in self.routes if (r.network, r.prefix_len) != (network, prefix_len)]
        self._cache.clear()
        self.version += 1

    def lookup(self, dst: int) -> tuple[int, int]:
        """(interface index, next-hop address) for ``dst``; OSError(ENETUNREACH) when none."""
        hit = self._cache.get(dst)
        if hit is not None:
            return hit
        for r in self.routes:
            if r.matches(dst):
                hit = (r.iface, r.gateway or dst)
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[dst] = hit
                return hit
        raise OSError(errno.ENETUNREACH, "network is unreachable: no route")
