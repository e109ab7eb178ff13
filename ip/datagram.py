"""The received IPv4 datagram as the transports above the network layer see it.

One :class:`Datagram` per :class:`~aiostack.ip.stack.IPStack`, **reused for every datagram**:
the stack parses each IPv4 header straight into it (:func:`aiostack.ip.ipv4.parse_into`), adds
where the datagram lies and how it arrived, and hands it to the transport registered for its
protocol (``transport.input(dgram, now)``). No object is made per datagram, and a transport's
``input`` takes two arguments instead of ten.

The object and the buffer under :attr:`Datagram.view` are only valid during that call: the next
datagram overwrites both (the driver reuses the packet once the burst is handled). A transport
that keeps anything copies it — the addresses and ports are ints, which are values; bytes are
taken with ``bytes(view[a:b])`` (UDP's receive queue, ICMP's echo replies and quotes, the frames
handed to another reactor, reassembly's header copy all do). TCP keeps only ints from it (the
connection key); the segment's payload view is consumed by the receive buffer within the call.
Between datagrams the object still refers to the last one's view (for a datagram reassembled from
fragments, its own bytes, at most 64 KB, until the next datagram replaces them).

Re-entrancy: nothing a transport does within ``input`` feeds a frame to the same stack (frames
sent go to the interfaces' ``tx`` lists, frames for other reactors through a callback that queues
them), so one object per stack suffices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stack import Interface


class Datagram:
    """The fields of one received datagram that a transport, ICMP's error quoting and the
    martian checks need. ``offset`` is the fragment offset in bytes (×8 applied); ``l4`` and
    ``end`` delimit the transport header and payload in ``view``, the IPv4 header starts at
    ``ip_off`` (0 for a datagram reassembled from fragments, whose ``view`` is then its own)."""

    __slots__ = (
        "csum_valid",
        "dst",
        "dst_bcast",
        "end",
        "flags",
        "header_len",
        "ident",
        "iface",
        "ip_off",
        "l4",
        "link_bcast",
        "offset",
        "proto",
        "src",
        "tos",
        "total_length",
        "ttl",
        "view",
    )

    def __init__(self) -> None:
        # IPv4 header fields (RFC 791 §3.1), filled by ipv4.parse_into
        self.header_len = 0
        self.tos = 0
        self.total_length = 0
        self.ident = 0
        self.flags = 0
        self.offset = 0
        self.ttl = 0
        self.proto = 0
        self.src = 0
        self.dst = 0
        # where it lies and how it came, filled by IPStack
        self.iface: Interface | None = None
        self.view: memoryview = memoryview(b"")
        self.ip_off = 0
        self.l4 = 0
        self.end = 0
        self.csum_valid = False
        """The device vouched for the transport checksum."""
        self.link_bcast = False
        """It came in a link-layer broadcast frame."""
        self.dst_bcast = False
        """Its destination is a broadcast address (limited or the interface's subnet)."""

    def quoted(self) -> memoryview:
        """The datagram from its IP header on, as an ICMP error about it quotes it (a view: the
        ICMP layer copies what it sends)."""
        return self.view[self.ip_off : self.end]

    def __repr__(self) -> str:
        from .ipv4 import ntoa

        return (f"<Datagram proto {self.proto} {ntoa(self.src)} -> {ntoa(self.dst)}"
                f" [{self.ip_off}:{self.l4}:{self.end}]>")


class Transport:
    """What a protocol above IPv4 offers the network layer, registered in
    ``IPStack.transports`` under its protocol number (TCP, UDP and ICMP all are).

    A base class rather than a protocol: in the compiled build a subclass's :meth:`input` is a
    C method, which the stack calls through the class's vtable instead of looking ``input`` up by
    name on every datagram (issue #10). Any other object with these two methods may be registered
    too (the stack then calls it by name)."""

    __slots__ = ()

    def input(self, d: Datagram, now: float) -> None:
        """A datagram for this protocol (the stack's reused :class:`Datagram`: copy what is kept)."""
        raise NotImplementedError

    def icmp_error(
        self, itype: int, code: int, local: int, remote: int, view: memoryview, l4: int, end: int, mtu: int
    ) -> None:
        """An ICMP error (RFC 792, RFC 1122 §3.2.2) quoting one of our datagrams, from ``local``
        to ``remote``: its transport header at ``view[l4:end]`` (at least 8 bytes of it, RFC 792);
        ``mtu`` is the Next-Hop MTU field (meaningful for Fragmentation Needed, RFC 1191 §4)."""
        raise NotImplementedError
