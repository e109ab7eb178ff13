"""UDP (RFC 768) endpoints and port demultiplexing, with the host rules of RFC 1122 §4.1.

An :class:`UdpEndpoint` is the sans-I/O half of a UDP socket: a bound address, an optional
connected peer, a receive queue capped in bytes (like SO_RCVBUF) and a pending error slot (like
SO_ERROR, fed by ICMP errors for connected endpoints, as Linux does).
"""

from __future__ import annotations

import errno
import random
import struct
from collections import deque
from collections.abc import Callable

HEADER_LEN = 8
HEADER = struct.Struct("!HHHH")
MAX_PAYLOAD = 65535 - 20 - HEADER_LEN
EPHEMERAL_FIRST = 32768
EPHEMERAL_LAST = 60999
"""Linux's default ip_local_port_range."""

DEFAULT_RCVBUF = 212992
"""Linux's default net.core.rmem_default."""


class UdpEndpoint:
    """One bound UDP port. ``local_addr`` 0 means any address of the stack."""

    __slots__ = (
        "broadcast",
        "closed",
        "error",
        "local_addr",
        "local_port",
        "rcvbuf",
        "remote_addr",
        "remote_port",
        "rx",
        "rx_bytes",
        "ttl",
    )

    def __init__(self, local_addr: int, local_port: int) -> None:
        self.local_addr = local_addr
        self.local_port = local_port
        self.remote_addr = 0
        self.remote_port = 0
        self.rx: deque[tuple[bytes, tuple[int, int]]] = deque()
        self.rx_bytes = 0
        self.rcvbuf = DEFAULT_RCVBUF
        self.error = 0
        self.broadcast = False
        self.ttl = 64
        self.closed = False

    @property
    def connected(self) -> bool:
        return self.remote_port != 0

    def take_error(self) -> int:
        """Return and clear the pending errno (0 when none), as getsockopt(SO_ERROR) does."""
        err, self.error = self.error, 0
        return err


class UdpPortTable:
    """Port → endpoint demultiplexing; allocation of ephemeral ports."""

    def __init__(self, rng: random.Random) -> None:
        self.by_port: dict[int, UdpEndpoint] = {}
        self._rng = rng

    def bind(self, local_addr: int, port: int, *, accept: Callable[[int], bool] | None = None) -> UdpEndpoint:
        """A new endpoint on ``port`` (0 picks an ephemeral one, one ``accept`` takes if given).
        OSError(EADDRINUSE) when taken."""
        if port == 0:
            port = self._ephemeral(accept)
        elif not 0 < port < 65536:
            raise OSError(errno.EINVAL, f"port {port} out of range")
        elif port in self.by_port:
            raise OSError(errno.EADDRINUSE, f"UDP port {port} is already in use")
        ep = UdpEndpoint(local_addr, port)
        self.by_port[port] = ep
        return ep

    def _ephemeral(self, accept: Callable[[int], bool] | None = None) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        start = self._rng.randrange(span)
        for i in range(span):
            port = EPHEMERAL_FIRST + (start + i) % span
            if port not in self.by_port and (accept is None or accept(port)):
                return port
        raise OSError(errno.EADDRNOTAVAIL, "no free ephemeral UDP port")

    def lookup(self, dst_addr: int, dst_port: int, src_addr: int, src_port: int) -> UdpEndpoint | None:
        ep = self.by_port.get(dst_port)
        if ep is None:
            return None
        if ep.local_addr and ep.local_addr != dst_addr:
            return None
        if ep.remote_port and (ep.remote_addr != src_addr or ep.remote_port != src_port):
            return None
        return ep

    def unbind(self, ep: UdpEndpoint) -> None:
        if self.by_port.get(ep.local_port) is ep:
            del self.by_port[ep.local_port]
        ep.closed = True
