"""AF_PACKET poll-mode driver: frames through mmap'ed TPACKET rings on an existing interface.

The driver binds to an interface that already exists — typically one end of a veth pair inside a
network namespace — and from then on the stack owns that end: the kernel must hold no IP address
on it (it would answer ARP and reset TCP connections for that address itself). Frames are copied
between the kernel's rings and pooled :class:`~aiostack.drivers.buffers.Packet` buffers (headroom
kept); nothing else is allocated per frame.

Kernel interface (``Documentation/networking/packet_mmap.rst``, ``include/uapi/linux/if_packet.h``,
``net/packet/af_packet.c``; behaviour below measured on this machine, kernel 6.18):

- **receive**: one ``SOCK_RAW``/``ETH_P_ALL`` socket per queue with an RX ring, either
  ``TPACKET_V2`` (fixed slots, one ``tp_status`` per frame; the default) or ``TPACKET_V3``
  (variable-size frames packed into blocks, handed over a block at a time, walked with
  ``tp_next_offset``; ``rx_ring="v3"``). Each slot (V2) or block (V3) goes back to the kernel
  (``TP_STATUS_KERNEL``) as soon as its frames are copied out. ``fileno(q)`` is the RX socket: it
  polls readable while a slot or block is ours.

  *Why V2 is the default*: the kernel hands a V3 block to user space only when the block is full
  or its retire timer fires (``tp_retire_blk_tov``, at least 1 ms), and only then wakes
  ``poll()``. Measured: one UDP datagram from the kernel became visible after 0.90–1.05 ms,
  busy-polling or sleeping alike (block status ``USER|BLK_TMO``); a ping-pong through two drivers
  takes 13 µs with V2 and 1000 µs with V3; HTTP over the stack with ``wrk -c1``: 8.5k req/s on V2
  vs 0.98k on V3 (at ``-c10`` 11.8k vs 9.9k, at ``-c50`` 16.1k vs 15.6k — the batching never wins
  it back). Every request/response turn pays the millisecond, so V3 suits capture-like bulk
  receive; V2 shows each frame the moment it is written (libpcap's "immediate mode" makes the
  same choice).
- **transmit**: a second socket per queue with a ``TPACKET_V2`` TX ring (one ``PACKET_VERSION``
  per socket; V3 has no fixed TX slots). Frames are copied into free slots (``TP_STATUS_AVAILABLE``
  → ``TP_STATUS_SEND_REQUEST``) and one ``send(b"", MSG_DONTWAIT)`` per ``tx_burst`` makes the
  kernel send them all. The TX socket is bound with protocol 0, so it receives nothing;
  ``PACKET_LOSS`` makes the kernel skip a malformed frame instead of wedging the ring. If the
  ``send`` fails (the link is down), the frames it did not take are still ``SEND_REQUEST`` at the
  ring's tail: they are taken back and counted, so they cannot go out late.
  ``qdisc_bypass=True`` (``PACKET_QDISC_BYPASS``) skips the qdisc and the packet taps — it
  measured the same CPU per frame here (veth has no qdisc), and without it ``tcpdump`` on the
  interface sees what the driver sends, so it is off by default.
- **own transmissions**: a packet socket sees the frames other sockets send on its interface
  (``dev_queue_xmit_nit``), so the RX socket would receive everything this driver transmits,
  marked ``sll_pkttype == PACKET_OUTGOING``. ``PACKET_IGNORE_OUTGOING`` (setsockopt 23, since
  4.20) stops them before they are copied into the ring — measured: with it, 0 of 2000
  transmitted frames reached the RX ring, without it all 2000 did. In a fanout group the sockets'
  hooks are replaced by the group's, where a per-socket setting has no effect (measured: 500 of
  500 came back); ``PACKET_FANOUT_FLAG_IGNORE_OUTGOING`` on the group does the job there. The
  ``sll_pkttype`` of every frame is checked as well (it comes with the header unpack): anything
  outgoing that still arrives is skipped and counted (``outgoing``).
- **checksums on receive**: ``tp_status`` carries the kernel's verdict:

  * ``TP_STATUS_CSUMNOTREADY`` — the skb is ``CHECKSUM_PARTIAL``: generated on this host (veth
    passes the kernel's TCP/UDP frames with partial checksums, veth advertising checksum offload)
    with an L4 checksum field holding only the pseudo-header sum. It cannot be verified and need
    not be: the bytes never left the machine. Measured: kernel UDP and TCP frames arrive with it,
    kernel ICMP (checksummed in software) without;
  * ``TP_STATUS_CSUM_VALID`` — the skb is ``CHECKSUM_UNNECESSARY`` (a device or the kernel checked
    the L4 checksum) or ``CHECKSUM_COMPLETE`` (a device summed the packet; the kernel counts that
    as valid too, by its definition of the flag).

  Either bit sets ``pkt.csum_valid``, so the stack skips verifying exactly what the kernel's own
  sockets would skip; ``rx_csum`` is always advertised.
- **offloads** (``offloads=``, all three by default; ``PACKET_VNET_HDR`` puts a virtio_net_hdr,
  :mod:`.vnet`, in front of every frame of a socket that asks for it):

  * ``csum`` (``tx_csum``): frames with ``pkt.csum_start >= 0`` go out with NEEDS_CSUM and the
    partial checksum, as ``CHECKSUM_PARTIAL`` skbs. Proven (tests/drivers/test_packet.py): with
    checksumming off on the driver's interface the kernel finishes them (``skb_checksum_help``;
    the checksum on the wire is exactly the one dpkt computes), and a kernel receiver behind veth
    accepts them as it accepts its own local traffic. Without ``csum`` the driver finishes such
    checksums itself (:func:`~aiostack.drivers.vnet.complete_csum`), at half the transmit rate.
  * ``tso``: TCP segments of up to 64 KB (``gso_type`` set, from :attr:`large_pool`) are written
    one ``write`` each on a third, ring-less socket, after the ring is flushed so the order on the
    wire is kept; the kernel cuts them (or hands them whole to a local receiver, as its own TCP
    does through veth).
  * ``gro``: a packet socket receives GSO skbs unsegmented — the kernel's TCP through veth with
    TSO on (the default) sends frames of up to 64 KB. With ``gro`` the RX ring frames carry a
    virtio_net_hdr (``gso_type``/``gso_size`` copied to the packet), and with
    ``PACKET_COPY_THRESH`` a frame larger than its V2 slot is cut to the slot, marked
    ``TP_STATUS_COPY`` and queued whole on the socket, where it is read (``recv``, in ring order)
    into a :attr:`large_pool` buffer; V3 blocks are made large enough to hold such frames.
    Without ``gro`` those frames are counted drops (``truncated``/``frame_too_big``): turn TSO off
    on the *kernel's* end of the link then (:func:`set_offload` ``(PEER, "tso", False)``, or
    ``ethtool -K PEER tso off``) and the kernel cuts segments before veth.
- **queues**: ``queues=N`` opens N RX sockets joined in one ``PACKET_FANOUT`` group (type
  ``hash`` — the kernel's symmetric flow hash — by default; ``cpu``, ``lb`` and ``rollover`` also
  accepted; the group id is picked by the kernel, ``PACKET_FANOUT_FLAG_UNIQUEID``) and N TX
  sockets.
- **deterministic steering** (``fanout="steer"``): the group is ``PACKET_FANOUT_EBPF`` and its
  program is :class:`~aiostack.drivers.steering.SteeringProgram` ``(fanout=True)``, so a frame
  lands on queue ``frame_hash(frame) % N`` — the queue :func:`~aiostack.drivers.steering.queue_for`
  names, the one whose stack owns the flow (:meth:`IPStack.steer_to` picks its ports so). Why
  the queue number is the member index (net/packet/af_packet.c): ``fanout_demux_bpf`` returns the
  program's value ``% num_members`` and ``packet_rcv_fanout`` delivers to ``f->arr[idx]``;
  ``__fanout_link`` appends a joining socket at ``arr[num_members]``, so joining in queue order
  makes member k queue k. ``__fanout_unlink`` (a member's socket released, or its hook
  unregistered) moves the *last* member into the leaving one's slot, which would renumber the
  queues — it never happens while the driver is open: every RX socket stays open in the process
  that opened the driver, and a reactor that takes a queue (:meth:`PacketDriver.take_queue`)
  holds only another reference to the same socket, so its exit or its ``close_others`` releases
  nothing. A link going down unlinks every member and coming up relinks them in socket-creation
  order (``packet_notifier`` walks ``net->packet.sklist``, to which ``packet_create`` appends),
  which is queue order again (tests/drivers/test_packet_fanout.py checks it). Frames that
  arrive while the driver is opening may land on any of its queues (the group exists, with its
  program, from the first socket on, but counts only the members that joined so far).
- **one queue per process** (:meth:`PacketDriver.take_queue`, :meth:`~PacketDriver.close_others`):
  a reactor forked after the driver opened takes its queue. Its RX socket is the parent's (the
  fanout slot must stay), but the kernel keeps the ring's position to itself — a restarted
  reactor cannot know where its predecessor stopped — so the taken ring first *resyncs*: V2, at
  the start of the run of slots the kernel filled (the first ``TP_STATUS_USER`` slot after a
  ``TP_STATUS_KERNEL`` one; a ring entirely full of frames nobody read for a whole ring's worth
  is dropped as ``stale`` and the next frame shows where the kernel is); V3, at the filled block
  with the lowest ``seq_num`` (a block the predecessor was half-way through is read again). The
  TX ring has no such mark (a sent slot is just ``TP_STATUS_AVAILABLE`` again, and
  ``tpacket_snd`` only sends from its own head: measured, a restarted reactor's frame written
  into the inherited ring at the parent's stale position never left), so the taken queue
  transmits on a TX socket and ring of its own, opened by ``take_queue``.
- **setup**: the link is brought up (``SIOCSIFFLAGS`` on the driver's own socket, so it acts in
  the namespace the sockets live in), the MTU read or set (``SIOCGIFMTU``/``SIOCSIFMTU``), the MAC
  taken from the bound socket's address unless given — a different MAC puts the interface into
  promiscuous mode (``PACKET_MR_PROMISC``) while the driver is open. ``netns=NAME`` opens the
  sockets inside another network namespace from a short-lived thread (:func:`in_netns`), so a
  process in one namespace can drive an interface in another.

Counted drops (per queue, ``QueueCounters.drop``): ``pool_exhausted`` (the frame stays in the ring
until a buffer is free), ``ring_full`` (frames the kernel could not put into the RX ring, read
from ``PACKET_STATISTICS`` whenever a frame or block carries ``TP_STATUS_LOSING`` and whenever
the counters are read), ``truncated`` (``tp_snaplen < tp_len``, or ``TP_STATUS_COPY`` without
``gro``), ``frame_too_big`` (longer than a pooled buffer; on transmit, longer than MTU + 18
without being a TSO segment), ``vlan`` (the kernel stripped an 802.1Q tag, which the stack does
not handle), ``outgoing`` (see above), ``gso_unsupported`` (a segment to cut without ``tso``),
``tx_ring_full`` (no free slot even after sending what the burst queued so far),
``tx_queue_full`` (a TSO write met a full socket buffer), ``no_headroom`` (no room for the
virtio_net_hdr in front of a TSO segment), and transmit errors by errno name (``enetdown``, ...).

Measured (``benchmarks/packet_driver.py``: a veth pair in a throw-away namespace, two drivers in
one process; frames per second of the thread's CPU time, user + system, median of 7 rounds;
2-core VM shared with other work)::

    rx drain, V2 ring, 60 / 1514-byte frames                 1.42M / 1.18M frames/s
    rx drain, V2 ring with virtio_net_hdr (gro)               1.26M / 1.02M
    rx drain, V3 ring                                         1.66M / 1.18M
    tx, 60 / 1514-byte frames, one send per 64 (qdisc or not) 366k / 342k frames/s
    tx, 1514-byte, partial checksum finished in software      160k
    tx, 1514-byte, partial checksum as NEEDS_CSUM (csum)      335k
    ping-pong through both rings, busy-polling                13 us (V2), 1000 us (V3)

The whole stack (examples/, kernel clients in the namespace; TAP for comparison, same machine,
same hour): ``wrk -t1`` against examples/http_server.py — 8.5k / 11.8k / 16.1k req/s at 1 / 10 /
50 connections (TAP 8.1k / 10.7k / 16.6k; measured before the offloads existed, which matter
little for small requests: with them, on a busier machine, the two stayed within the noise of
each other); examples/bulk.py, 1 GB over one connection — stack→kernel 5.7 Gbit/s,
kernel→stack 3.9 Gbit/s with the offloads (TAP 5.4 / 4.2), 0.56 / 0.59 without (kernel TSO off).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from . import vnet
from .base import Driver, Offloads, QueueCounters, check_ifname, errno_reason
from .buffers import Packet, PacketPool
from .mac import parse_unicast_mac
from .steering import SteeringProgram
from .vnet import pack_into

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

__all__ = ["SUPPORTED_OFFLOADS", "PacketDriver", "in_netns", "set_offload"]

# -- <linux/if_packet.h> -------------------------------------------------------------------------
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_COPY_THRESH = 7
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_LOSS = 14
PACKET_VNET_HDR = 15
PACKET_FANOUT = 18
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23

PACKET_MR_PROMISC = 1

TPACKET_V2 = 1
TPACKET_V3 = 2

PACKET_FANOUT_HASH = 0
PACKET_FANOUT_LB = 1
PACKET_FANOUT_CPU = 2
PACKET_FANOUT_ROLLOVER = 3
PACKET_FANOUT_EBPF = 7
PACKET_FANOUT_FLAG_UNIQUEID = 0x2000
PACKET_FANOUT_FLAG_IGNORE_OUTGOING = 0x4000
FANOUT_TYPES = {
    "hash": PACKET_FANOUT_HASH,
    "lb": PACKET_FANOUT_LB,
    "cpu": PACKET_FANOUT_CPU,
    "rollover": PACKET_FANOUT_ROLLOVER,
    "steer": PACKET_FANOUT_EBPF,  # with the steering program (drivers/steering.py)
}

# tp_status, receive
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TP_STATUS_COPY = 1 << 1
TP_STATUS_LOSING = 1 << 2
TP_STATUS_CSUMNOTREADY = 1 << 3
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_BLK_TMO = 1 << 5
TP_STATUS_CSUM_VALID = 1 << 7
# tp_status, transmit
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1 << 0
TP_STATUS_SENDING = 1 << 1
TP_STATUS_WRONG_FORMAT = 1 << 2

_CSUM_OK = TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID
_RX_ODD = TP_STATUS_COPY | TP_STATUS_VLAN_VALID | TP_STATUS_LOSING

PACKET_OUTGOING = 4  # sll_pkttype
ETH_P_ALL = 0x0003
ETH_HLEN = 14
VLAN_HLEN = 4
TPACKET_ALIGNMENT = 16
PAGE_SIZE = mmap.PAGESIZE
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

# struct tpacket2_hdr (32 bytes) + struct sockaddr_ll: status, len, snaplen, mac, .., sll_pkttype
_V2_RX = struct.Struct("<IIIH28xB")
_V2_TX = struct.Struct("<II")  # tp_status, tp_len
TPACKET2_HDRLEN = 32 + 20  # TPACKET_ALIGN(sizeof(tpacket2_hdr)) + sizeof(sockaddr_ll)
_V2_TX_DATA = TPACKET2_HDRLEN - 20  # where tpacket_snd reads a V2 frame (no PACKET_TX_HAS_OFF)
# struct tpacket3_hdr (48 bytes) + sockaddr_ll: next_offset, snaplen, len, status, mac, .., pkttype
_V3_RX = struct.Struct("<I8xIIIH32xB")
TPACKET3_HDRLEN = 48 + 20
# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1: block_status, num_pkts,
# offset_to_first_pkt
_V3_BLOCK = struct.Struct("<8xIII")
_BLOCK_STATUS = 8
_V3_BLOCK_SEQ = struct.Struct("<8xI12xQ")  # block_status, seq_num (tpacket_hdr_v1)
_U32 = struct.Struct("<I")
_STATS = struct.Struct("II")  # struct tpacket_stats: tp_packets, tp_drops (the V3 form adds one)
_VNET_GSO = struct.Struct("<xBHH")  # virtio_net_hdr: gso_type, hdr_len, gso_size (flags skipped)
VNET_HDR_LEN = vnet.HDR_SIZE  # what PACKET_VNET_HDR puts in front of a frame (10 bytes)

# Private copies of the constants the burst loops use (C integers in the compiled build).
_TP_STATUS_USER = TP_STATUS_USER
_TP_STATUS_KERNEL = TP_STATUS_KERNEL
_TP_STATUS_AVAILABLE = TP_STATUS_AVAILABLE
_TP_STATUS_SEND_REQUEST = TP_STATUS_SEND_REQUEST
_TP_STATUS_LOSING = TP_STATUS_LOSING
_TP_STATUS_COPY = TP_STATUS_COPY
_PACKET_OUTGOING = PACKET_OUTGOING
_ETH_HLEN = ETH_HLEN
_VLAN_HLEN = VLAN_HLEN
_VNET_HDR_LEN = VNET_HDR_LEN

LARGE_FRAME = ETH_HLEN + 65535
"""The largest frame a GSO send or a coalesced receive holds: Ethernet + a 64 KB IP datagram."""
LARGE_POOL_COUNT = 512
"""Buffers of the driver's large pool (as the TAP driver's): a receive burst plus the TSO
segments of one flush."""

SUPPORTED_OFFLOADS = ("csum", "tso", "gro")
"""Offload names (``PACKET_VNET_HDR``; see the module docstring): ``csum`` — frames are sent with
partial checksums marked NEEDS_CSUM; ``tso`` — TCP segments of up to 64 KB are sent and the kernel
cuts them; ``gro`` — GSO frames the kernel hands over unsegmented are received whole."""

# -- ioctls (<linux/sockios.h>, <linux/ethtool.h>) -----------------------------------------------
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
SIOCETHTOOL = 0x8946
IFF_UP = 0x1
_IFREQ_FLAGS = struct.Struct("16sH22x")
_IFREQ_INT = struct.Struct("16si20x")
_IFREQ_PTR = struct.Struct("16sP16x")
ETHTOOL_FEATURES = {  # name: (get, set) of the legacy ethtool_value commands
    "tx-csum": (0x16, 0x17),  # ETHTOOL_GTXCSUM / STXCSUM
    "tso": (0x1E, 0x1F),  # ETHTOOL_GTSO / STSO
    "gso": (0x23, 0x24),  # ETHTOOL_GGSO / SGSO
    "gro": (0x2B, 0x2C),  # ETHTOOL_GGRO / SGRO
}

MAX_QUEUES = 256
CLONE_NEWNET = 0x40000000

_PERM_MSG = "AF_PACKET sockets need root or CAP_NET_RAW"

T = TypeVar("T")


def _align(n: int, a: int) -> int:
    return (n + a - 1) & ~(a - 1)


def _pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


def in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` in network namespace ``netns`` (a name under /run/netns, or a path) and return
    its result; None runs it right here.

    Namespaces belong to threads: a short-lived thread joins the namespace (``setns``) and runs
    ``fn`` there, so sockets ``fn`` opens live in that namespace for good, while the calling
    thread and the rest of the process stay where they are."""
    if netns is None:
        return fn()
    path = netns if "/" in netns else f"/run/netns/{netns}"
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({path}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as e:  # re-raised in the caller's thread
            failure.append(e)

    t = threading.Thread(target=run, name=f"netns:{netns}")
    t.start()
    t.join()
    if failure:
        raise failure[0]
    return result[0]  # type: ignore[no-any-return]


def _ethtool_value(sock: socket.socket, name: str, cmd: int, value: int = 0) -> int:
    """A legacy ``SIOCETHTOOL`` get/set of one ``struct ethtool_value`` (cmd, data)."""
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, value), 8)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, _IFREQ_PTR.pack(name.encode(), ctypes.addressof(buf)))
    return int(struct.unpack("II", buf.raw)[1])


def set_offload(name: str, feature: str, on: bool, *, netns: str | None = None) -> bool:
    """Switch an offload of interface ``name`` on or off, as ``ethtool -K name FEATURE on|off``
    does; returns the previous setting. ``feature``: ``tso``, ``gso``, ``gro`` or ``tx-csum``.

    Without ``gro`` in this driver's offloads, use it to turn ``tso`` off on the *kernel's* end of
    the veth pair whose other end the driver owns, so the kernel's TCP hands over MTU-sized frames
    (see the module docstring)."""
    check_ifname(name)
    if feature not in ETHTOOL_FEATURES:
        raise ValueError(f"feature must be one of {sorted(ETHTOOL_FEATURES)}, not {feature!r}")
    get, put = ETHTOOL_FEATURES[feature]

    def run() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                old = _ethtool_value(s, name, get)
                _ethtool_value(s, name, put, int(on))
            except OSError as e:
                if e.errno == errno.ENODEV:
                    raise OSError(e.errno, f"interface {name!r} does not exist", name) from None
                raise
            return bool(old)

    return in_netns(netns, run)


class _RxRing:
    """One queue's RX socket and its mapped ring (V2 slots or V3 blocks), and the read position."""

    __slots__ = (
        "block_size",
        "fd",
        "frame_size",
        "mm",
        "nblocks",
        "nframes",
        "offsets",
        "pos",
        "recv_into",
        "remaining",
        "sock",
        "synced",
        "version",
        "view",
        "where",
    )

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.fd = -1
        self.mm: mmap.mmap | None = None
        self.view: memoryview | None = None
        self.version = TPACKET_V2
        self.frame_size = 0
        self.block_size = 0
        self.nframes = 0
        self.nblocks = 0
        self.offsets: tuple[int, ...] = ()
        self.pos = 0  # V2: next slot; V3: current block
        self.remaining = 0  # V3: frames left in the current block (0: not opened yet)
        self.where = 0  # V3: offset of the next frame in the ring
        self.recv_into: Callable[..., int] | None = None
        self.synced = True  # False: pos is not known to follow the kernel's head (a taken queue)

    def close(self) -> None:
        if self.view is not None:
            self.view.release()
            self.view = None
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _TxRing:
    """One queue's TX socket and its mapped V2 ring, the next slot to fill, and (with ``tso``) the
    ring-less socket that sends frames larger than a slot."""

    __slots__ = ("big", "big_fd", "fd", "frame_size", "mm", "nframes", "offsets", "pos", "send", "sock", "view")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.fd = -1
        self.mm: mmap.mmap | None = None
        self.view: memoryview | None = None
        self.frame_size = 0
        self.nframes = 0
        self.offsets: tuple[int, ...] = ()
        self.pos = 0
        self.send: Callable[..., int] | None = None
        self.big: socket.socket | None = None
        self.big_fd = -1

    def close(self) -> None:
        if self.view is not None:
            self.view.release()
            self.view = None
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        for s in (self.sock, self.big):
            if s is not None:
                s.close()
        self.sock = self.big = None


_COPIED_FIELDS = (
    "_ignore_outgoing", "_rx_vnet", "_tso", "_tx_frames", "_tx_vnet", "fanout", "iface", "ifindex", "kernel_mac",
    "large_pool", "mac", "mtu", "name", "netns", "offloads", "qdisc_bypass", "rx_version",
)
"""What :meth:`PacketDriver.take_queue` copies from the driver it splits (the rest is its own)."""


class PacketDriver(Driver):
    """An existing interface driven through AF_PACKET rings, ``queues`` queue pairs.

    See the module docstring for the kernel interface, the choices made and what they measured.

    In the compiled build the driver and its rings are ``cdef class``es (``packet.pxd``): typed
    fields and counters, and the V2 rings' headers are read and written and frames copied
    between ring and packet with C loads, stores and ``memcpy`` on the mapped memory, where the
    pure build uses ``struct`` and memoryview slices.
    """

    def __init__(
        self,
        iface: str,
        *,
        queues: int = 1,
        pool: PacketPool | None = None,
        mtu: int | None = None,
        mac: bytes | str | None = None,
        offloads: Iterable[str] = SUPPORTED_OFFLOADS,
        rx_ring: str = "v2",
        rx_frames: int = 2048,
        tx_frames: int = 1024,
        block_size: int = 1 << 16,
        block_timeout_ms: int = 1,
        fanout: str = "hash",
        qdisc_bypass: bool = False,
        netns: str | None = None,
    ) -> None:
        """Open ``queues`` RX/TX socket pairs on interface ``iface`` and bring the link up.

        ``mtu`` None takes the interface's MTU; a different value is set on the interface.
        ``mac`` None uses the interface's own MAC; another one puts the interface into promiscuous
        mode (``PACKET_MR_PROMISC``, for as long as the driver is open) so frames sent to it are
        delivered. ``offloads``: any of :data:`SUPPORTED_OFFLOADS` (``tso`` needs ``csum``).
        ``rx_ring`` is ``"v2"`` or ``"v3"``; ``rx_frames``/``tx_frames`` size the rings (slots of
        MTU-sized frames; V3 packs ``rx_frames`` worth of them into ``block_size`` blocks that
        the kernel retires after ``block_timeout_ms``). ``netns`` opens the sockets inside that
        network namespace (a name in /run/netns); the process itself stays where it is.
        """
        self._closed = False
        self._rx: list[_RxRing] = []
        self._tx: list[_TxRing] = []
        self._steering: SteeringProgram | None = None
        self._others: tuple[list[_RxRing], list[_TxRing], list[SteeringProgram]] = ([], [], [])
        self.queue_index: int | None = None
        """The device queue a driver made by :meth:`take_queue` serves (its queue 0); None otherwise."""
        check_ifname(iface)
        if not 1 <= queues <= MAX_QUEUES:
            raise ValueError(f"queues must be in 1..{MAX_QUEUES}, not {queues}")
        if rx_ring not in ("v2", "v3"):
            raise ValueError(f"rx_ring must be 'v2' or 'v3', not {rx_ring!r}")
        if fanout not in FANOUT_TYPES:
            raise ValueError(f"fanout must be one of {sorted(FANOUT_TYPES)}, not {fanout!r}")
        if rx_frames < 8 or tx_frames < 8:
            raise ValueError("rx_frames and tx_frames must be at least 8")
        if block_size < PAGE_SIZE or block_size & (block_size - 1):
            raise ValueError(f"block_size must be a power of two >= {PAGE_SIZE}, not {block_size}")
        if not 1 <= block_timeout_ms <= 60_000:
            raise ValueError(f"block_timeout_ms must be in 1..60000, not {block_timeout_ms}")
        if mtu is not None and not 68 <= mtu <= 65535:
            raise ValueError(f"mtu {mtu} is out of range 68..65535")
        offloads = tuple(offloads)
        unknown = [o for o in offloads if o not in SUPPORTED_OFFLOADS]
        if unknown:
            raise ValueError(f"unsupported offloads {unknown}; supported: {list(SUPPORTED_OFFLOADS)}")
        if "tso" in offloads and "csum" not in offloads:
            raise ValueError("offload 'tso' needs 'csum' (segments carry partial checksums)")
        self.pool = pool if pool is not None else PacketPool()
        if mtu is not None:
            self._check_pool(mtu)
        self.iface = iface
        self.name = f"packet({iface})"
        self.num_queues = queues
        self.netns = netns
        self.rx_version = TPACKET_V3 if rx_ring == "v3" else TPACKET_V2
        self.qdisc_bypass = qdisc_bypass
        self.fanout = fanout if queues > 1 else None
        self._tx_frames = tx_frames
        self._rx_vnet = VNET_HDR_LEN if "gro" in offloads else 0
        self._tx_vnet = VNET_HDR_LEN if "csum" in offloads else 0
        self._tso = "tso" in offloads
        self.large_pool: PacketPool | None = None
        if "tso" in offloads or "gro" in offloads:
            if self.pool.headroom < VNET_HDR_LEN:  # TSO writes and GRO reads put the header there
                raise ValueError(f"pool headroom {self.pool.headroom} < virtio_net_hdr size {VNET_HDR_LEN}")
            self.large_pool = PacketPool(
                count=LARGE_POOL_COUNT, size=self.pool.headroom + LARGE_FRAME + 64, headroom=self.pool.headroom,
                lazy=True,
            )
        self._counters = [QueueCounters() for _ in range(queues)]
        self._ignore_outgoing = False
        try:
            in_netns(
                netns,
                lambda: self._open(
                    iface, queues, mtu, mac, rx_frames, tx_frames, block_size, block_timeout_ms, fanout
                ),
            )
        except BaseException:
            self.close()
            raise
        self.offloads = Offloads(
            rx_csum=True,  # every received frame carries the kernel's checksum verdict
            tx_csum=bool(self._tx_vnet),
            tso=self._tso,
            gro=bool(self._rx_vnet),
        )

    def _check_pool(self, mtu: int) -> None:
        need = mtu + ETH_HLEN + VLAN_HLEN
        if need > self.pool.mtu_capacity:
            raise ValueError(
                f"mtu {mtu} needs {need}-byte frames but the pool's buffers hold "
                f"{self.pool.mtu_capacity} after the headroom"
            )

    # -- setup --------------------------------------------------------------------------------
    def _open(
        self,
        iface: str,
        queues: int,
        mtu: int | None,
        mac: bytes | str | None,
        rx_frames: int,
        tx_frames: int,
        block_size: int,
        block_timeout_ms: int,
        fanout: str,
    ) -> None:
        ctl = self._socket()
        name = iface.encode()
        try:
            try:
                ctl.bind((iface, 0))
            except OSError as e:
                if e.errno == errno.ENODEV:
                    raise OSError(
                        errno.ENODEV, f"interface {iface!r} does not exist (in this network namespace)", iface
                    ) from None
                raise
            # getsockname of a bound packet socket: (ifname, proto, pkttype, hatype, hwaddr)
            _, _, _, hatype, hwaddr = ctl.getsockname()
            if hatype != 1 or len(hwaddr) != 6:  # ARPHRD_ETHER
                raise OSError(errno.EINVAL, f"interface {iface!r} is not an Ethernet device (hatype {hatype})")
            self.ifindex = socket.if_nametoindex(iface)  # asks in this thread's namespace
            self.kernel_mac = bytes(hwaddr)
            self.mac = parse_unicast_mac(mac) if mac is not None else self.kernel_mac
            fd = ctl.fileno()
            cur_mtu = _IFREQ_INT.unpack(fcntl.ioctl(fd, SIOCGIFMTU, _IFREQ_INT.pack(name, 0)))[1]
            if mtu is None:
                mtu = cur_mtu
                self._check_pool(mtu)
            elif mtu != cur_mtu:
                fcntl.ioctl(fd, SIOCSIFMTU, _IFREQ_INT.pack(name, mtu))
            self.mtu = mtu
            flags = _IFREQ_FLAGS.unpack(fcntl.ioctl(fd, SIOCGIFFLAGS, _IFREQ_FLAGS.pack(name, 0)))[1]
            if not flags & IFF_UP:
                fcntl.ioctl(fd, SIOCSIFFLAGS, _IFREQ_FLAGS.pack(name, flags | IFF_UP))
        finally:
            ctl.close()

        frame_len = mtu + ETH_HLEN + VLAN_HLEN
        fanout_arg = 0
        for _ in range(queues):
            rx = _RxRing()
            self._rx.append(rx)
            self._open_rx(rx, iface, frame_len, rx_frames, block_size, block_timeout_ms)
            if queues > 1:
                fanout_arg = self._join_fanout(rx, fanout, fanout_arg)
            tx = _TxRing()
            self._tx.append(tx)
            self._open_tx(tx, iface, frame_len, tx_frames)

    @staticmethod
    def _socket() -> socket.socket:
        # Protocol 0: the socket hears nothing until it is bound with a protocol.
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as e:
            raise PermissionError(e.errno, f"{_PERM_MSG}: {e.strerror}") from None
        s.setblocking(False)
        return s

    @staticmethod
    def _force_buffer(s: socket.socket, force: int, plain: int, size: int) -> None:
        try:
            s.setsockopt(socket.SOL_SOCKET, force, size)  # CAP_NET_ADMIN: above the sysctl limit
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, size)

    def _open_rx(
        self, rx: _RxRing, iface: str, frame_len: int, nframes: int, block_size: int, timeout_ms: int
    ) -> None:
        s = rx.sock = self._socket()
        s.setsockopt(SOL_PACKET, PACKET_VERSION, self.rx_version)
        try:
            s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self._ignore_outgoing = True
        except OSError:  # before 4.20: the sll_pkttype check in rx_burst still skips them
            self._ignore_outgoing = False
        vh = self._rx_vnet
        if vh:
            s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        rx.version = self.rx_version
        if self.rx_version == TPACKET_V2:
            # tpacket_rcv puts the MAC header at TPACKET_ALIGN(hdrlen + 16) (+ vnet header) - 14
            fsz = _pow2_at_least(_align(TPACKET2_HDRLEN + 16, TPACKET_ALIGNMENT) + vh + frame_len)
            bsz = max(PAGE_SIZE, fsz)
            per_block = bsz // fsz
            nblocks = (nframes + per_block - 1) // per_block
            nframes = nblocks * per_block
            s.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("IIII", bsz, nblocks, fsz, nframes))
            rx.offsets = tuple((i // per_block) * bsz + (i % per_block) * fsz for i in range(nframes))
            if vh:
                # A frame larger than a slot (a GSO frame) is cut to the slot, marked
                # TP_STATUS_COPY, and queued whole on the socket for recv (the slot keeps its place
                # in the order).
                s.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, 1)
                self._force_buffer(s, SO_RCVBUFFORCE, socket.SO_RCVBUF, 16 << 20)
        else:
            fsz = _pow2_at_least(_align(TPACKET3_HDRLEN + 16, TPACKET_ALIGNMENT) + vh + frame_len)
            bsz = max(block_size, _pow2_at_least(fsz * 2))
            if vh:  # whole GSO frames live in the blocks
                bsz = max(bsz, _pow2_at_least(LARGE_FRAME + 256))
            nblocks = max(2, (nframes * fsz + bsz - 1) // bsz)
            nframes = nblocks * (bsz // fsz)
            s.setsockopt(
                SOL_PACKET, PACKET_RX_RING, struct.pack("IIIIIII", bsz, nblocks, fsz, nframes, timeout_ms, 0, 0)
            )
        rx.frame_size, rx.block_size, rx.nframes, rx.nblocks = fsz, bsz, nframes, nblocks
        rx.mm = mmap.mmap(s.fileno(), bsz * nblocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        rx.view = memoryview(rx.mm)
        s.bind((iface, ETH_P_ALL))
        if self.mac != self.kernel_mac:
            mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
            s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        rx.fd = s.fileno()
        rx.recv_into = s.recv_into

    def _join_fanout(self, rx: _RxRing, fanout: str, arg: int) -> int:
        """Join the queue's RX socket to the driver's fanout group; the first socket makes a group
        with an id the kernel picks (``PACKET_FANOUT_FLAG_UNIQUEID``), the others join it — in
        queue order, which makes the member index the queue number. The group's own
        IGNORE_OUTGOING flag is needed: in a group, the sockets' settings are unused (and for
        ``steer`` it keeps the frames this host sends, whose data starts at the Ethernet header,
        away from a program that reads from the network header)."""
        assert rx.sock is not None
        if arg == 0:
            kind = FANOUT_TYPES[fanout] | PACKET_FANOUT_FLAG_IGNORE_OUTGOING
            rx.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, (kind | PACKET_FANOUT_FLAG_UNIQUEID) << 16)
            if fanout == "steer":
                # Without a program the group sends everything to member 0 (fanout_demux_bpf):
                # attach it before the other queues join.
                self._steering = SteeringProgram(fanout=True)
                self._steering.attach_fanout(rx.sock)
            return int(_U32.unpack(rx.sock.getsockopt(SOL_PACKET, PACKET_FANOUT, 4))[0])
        rx.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, arg)
        return arg

    def _open_tx(self, tx: _TxRing, iface: str, frame_len: int, nframes: int) -> None:
        s = tx.sock = self._socket()
        s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        s.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
        if self.qdisc_bypass:
            s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        vh = self._tx_vnet
        if vh:
            s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        fsz = _pow2_at_least(_V2_TX_DATA + vh + frame_len)
        bsz = max(PAGE_SIZE, fsz)
        per_block = bsz // fsz
        nblocks = (nframes + per_block - 1) // per_block
        nframes = nblocks * per_block
        # Frames in flight are charged to the socket's send buffer until the receiver frees them;
        # make room for a whole ring so a burst never fails half-way for want of it.
        self._force_buffer(s, SO_SNDBUFFORCE, socket.SO_SNDBUF, nframes * (fsz + 1024))
        s.setsockopt(SOL_PACKET, PACKET_TX_RING, struct.pack("IIII", bsz, nblocks, fsz, nframes))
        tx.frame_size, tx.nframes = fsz, nframes
        tx.offsets = tuple((i // per_block) * bsz + (i % per_block) * fsz for i in range(nframes))
        tx.mm = mmap.mmap(s.fileno(), bsz * nblocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        tx.view = memoryview(tx.mm)
        s.bind((iface, 0))  # protocol 0: sends, never receives
        tx.fd = s.fileno()
        tx.send = s.send
        if self._tso:
            # TSO segments (up to 64 KB) go out one write each through a ring-less socket: one
            # syscall per ~44 MTU-sized frames, and no 64 KB ring slots.
            b = tx.big = self._socket()
            b.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            if self.qdisc_bypass:
                b.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            self._force_buffer(b, SO_SNDBUFFORCE, socket.SO_SNDBUF, 8 << 20)
            b.bind((iface, 0))
            tx.big_fd = b.fileno()

    # -- data path ----------------------------------------------------------------------------
    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        """Up to ``max_count`` frames from ``queue``'s ring; never blocks."""
        if self._closed:
            raise OSError(errno.EBADF, f"packet driver on {self.iface!r} is closed")
        rx = self._rx[queue]
        if not rx.synced and not self._resync(rx, queue):
            return []
        if rx.version == TPACKET_V2:
            return self._rx_v2(rx, queue, max_count)
        return self._rx_v3(rx, queue, max_count)

    def _resync(self, rx: _RxRing, queue: int) -> bool:
        """Find where the kernel's RX head is, for a ring another process read before this one
        (see "one queue per process" in the module docstring); True once ``rx.pos`` is the
        oldest frame the kernel filled. False: nothing to read yet — the next call looks again."""
        view = rx.view
        assert view is not None
        if rx.version == TPACKET_V3:
            # Blocks are opened in ring order, each with the next seq_num (prb_open_block), and
            # handed over in that order: the oldest filled block is where reading goes on.
            oldest = None
            for b in range(rx.nblocks):
                status, seq = _V3_BLOCK_SEQ.unpack_from(view, b * rx.block_size)
                if status & TP_STATUS_USER and (oldest is None or seq < oldest[0]):
                    oldest = (seq, b)
            if oldest is None:
                return False
            rx.pos, rx.remaining, rx.where = oldest[1], 0, 0
            rx.synced = True
            return True
        # V2: tpacket_rcv fills the slot at its head only, and only if it is TP_STATUS_KERNEL;
        # the slots it filled and nobody released are one run, ending just before the head.
        # (Slots lie back to back: blocks are whole multiples of the power-of-two slot size.)
        words = view.cast("I")
        every = words[:: rx.frame_size // 4]
        try:
            filled = [s & TP_STATUS_USER for s in every.tolist()]
        finally:
            every.release()
            words.release()
        n = len(filled)
        count = sum(filled)
        if count == 0:
            return False
        if count == n:
            # The kernel is stuck at a head we cannot see (every slot is ours): these frames
            # waited for a whole ring's worth of traffic and are dropped; the next frame the
            # kernel writes then starts a run that shows the head.
            for off in rx.offsets:
                _U32.pack_into(view, off, TP_STATUS_KERNEL)
            self._counters[queue].drop("stale", n)
            return False
        for i in range(n):
            # The run's start: filled, after an empty slot that is still empty now. (A slot seen
            # empty in the snapshot and filled since was the kernel's head moving on while the
            # snapshot was taken: not a start.)
            if filled[i] and not filled[i - 1] and not _U32.unpack_from(view, rx.offsets[i - 1])[0] & TP_STATUS_USER:
                rx.pos = i
                rx.synced = True
                return True
        return False

    def _rx_v2(self, rx: _RxRing, queue: int, max_count: int) -> list[Packet]:
        view = rx.view
        offsets = rx.offsets
        nframes = rx.nframes
        i = rx.pos
        pool = self.pool
        large = self.large_pool
        head = pool.headroom
        cap = pool.size - head
        vh = self._rx_vnet
        # A slot can hold a little more than MTU + 18 (slots are powers of two): a short GSO frame
        # may land there whole, and goes to a large buffer when there are any.
        big_cap = large.size - head if vh and large is not None else cap
        unpack = _V2_RX.unpack_from
        gso_of = _VNET_GSO.unpack_from
        release = _U32.pack_into
        compiled = _COMPILED
        c: QueueCounters = self._counters[queue]
        out: list[Packet] = []
        nbytes = 0
        for _ in range(max_count):
            off = offsets[i]
            if compiled:  # C loads from the mapped ring (packet.pxd)
                status, tp_len, snap, mac, pkttype = _v2_rx_header(view, off)  # noqa: F821
            else:
                status, tp_len, snap, mac, pkttype = unpack(view, off)
            if not status & _TP_STATUS_USER:
                break
            if status & _RX_ODD or snap < tp_len or snap > cap or pkttype == _PACKET_OUTGOING:
                if status & _TP_STATUS_LOSING:
                    self._collect_kernel_drops(queue)
                if vh and status & _TP_STATUS_COPY and pkttype != _PACKET_OUTGOING:
                    pkt = self._recv_copy(rx, queue, c)
                    if pkt is not None:
                        out.append(pkt)
                        nbytes += len(pkt)
                    release(view, off, _TP_STATUS_KERNEL)
                    i = i + 1 if i + 1 < nframes else 0
                    continue
                reason = self._rx_reject(status, tp_len, snap, big_cap, pkttype)
                if reason:
                    c.drop(reason)
                    release(view, off, _TP_STATUS_KERNEL)
                    i = i + 1 if i + 1 < nframes else 0
                    continue
            pkt = pool.try_alloc() if snap <= cap else large.try_alloc()  # type: ignore[union-attr]
            if pkt is None:
                c.drop("pool_exhausted")
                break  # the frame stays in the ring
            a = off + mac
            end = head + snap
            if compiled:  # one memcpy from the ring into the packet's buffer
                if not _ring_to_packet(view, a, pkt.buf, head, snap):  # noqa: F821 - outside the ring
                    pkt.free()
                    c.drop("truncated")
                    release(view, off, _TP_STATUS_KERNEL)
                    i = i + 1 if i + 1 < nframes else 0
                    continue
            else:
                pkt.view[head:end] = view[a : a + snap]
            pkt.end = end
            pkt.queue = queue
            if status & _CSUM_OK:
                pkt.csum_valid = True
            if vh:
                if compiled:
                    gso_type, hdr_len, gso_size = _vnet_gso(view, a - vh)  # noqa: F821
                else:
                    gso_type, hdr_len, gso_size = gso_of(view, a - vh)
                if gso_type:
                    pkt.gso_type = gso_type
                    pkt.gso_size = gso_size
                    pkt.hdr_len = hdr_len
            out.append(pkt)
            nbytes += snap
            if compiled:
                _ring_store32(view, off, _TP_STATUS_KERNEL)  # noqa: F821
            else:
                release(view, off, _TP_STATUS_KERNEL)
            i = i + 1 if i + 1 < nframes else 0
        rx.pos = i
        if out:
            c.rx_packets += len(out)
            c.rx_bytes += nbytes
        return out

    def _recv_copy(self, rx: _RxRing, queue: int, c: QueueCounters) -> Packet | None:
        """The whole of a frame too large for its ring slot, from the socket's queue (with
        PACKET_COPY_THRESH the kernel queued it there, in ring order), into a large buffer."""
        pool = self.large_pool
        assert pool is not None and rx.recv_into is not None
        pkt = pool.try_alloc()
        if pkt is None:
            c.drop("pool_exhausted")
            # the copy must leave the queue anyway, or the next one would be read in its place
            with contextlib.suppress(OSError):
                rx.recv_into(bytearray(1), 1, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
            return None
        vh = VNET_HDR_LEN
        at = pkt.start - vh  # the header lands in the headroom, the frame exactly at start
        room = pool.size - at
        try:
            n = rx.recv_into(pkt.view[at:], room, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
        except OSError as e:  # EAGAIN: the copy was not queued after all (cannot happen)
            pkt.free()
            c.drop(errno_reason(e))
            return None
        if n > room or n <= vh:
            pkt.free()
            c.drop("frame_too_big" if n > room else "truncated")
            return None
        flags, gso_type, hdr_len, gso_size, _cs, _co = vnet.HDR.unpack_from(pkt.buf, at)
        pkt.end = at + n
        pkt.queue = queue
        if flags & 3:  # NEEDS_CSUM | DATA_VALID
            pkt.csum_valid = True
        if gso_type:
            pkt.gso_type = gso_type
            pkt.gso_size = gso_size
            pkt.hdr_len = hdr_len
        return pkt

    def _rx_v3(self, rx: _RxRing, queue: int, max_count: int) -> list[Packet]:
        view = rx.view
        bsz = rx.block_size
        nblocks = rx.nblocks
        blk = rx.pos
        remaining = rx.remaining
        where = rx.where
        pool = self.pool
        large = self.large_pool
        head = pool.headroom
        cap = pool.size - head
        vh = self._rx_vnet
        big_cap = large.size - head if vh and large is not None else cap
        unpack = _V3_RX.unpack_from
        gso_of = _VNET_GSO.unpack_from
        c = self._counters[queue]
        out: list[Packet] = []
        nbytes = 0
        count = 0
        while count < max_count:
            if remaining == 0:
                boff = blk * bsz
                bstatus, npkts, first = _V3_BLOCK.unpack_from(view, boff)
                if not bstatus & TP_STATUS_USER:
                    break
                if bstatus & TP_STATUS_LOSING:
                    self._collect_kernel_drops(queue)
                if npkts == 0:  # not expected (the kernel closes no empty block), but harmless
                    _U32.pack_into(view, boff + _BLOCK_STATUS, TP_STATUS_KERNEL)
                    blk = blk + 1 if blk + 1 < nblocks else 0
                    continue
                remaining = npkts
                where = boff + first
            nxt, snap, tp_len, status, mac, pkttype = unpack(view, where)
            reason = None
            if status & _RX_ODD or snap < tp_len or snap > cap or pkttype == PACKET_OUTGOING:
                reason = self._rx_reject(status, tp_len, snap, big_cap, pkttype)
            if reason:
                c.drop(reason)
            else:
                pkt = pool.try_alloc() if snap <= cap else large.try_alloc()  # type: ignore[union-attr]
                if pkt is None:
                    c.drop("pool_exhausted")
                    break  # resume at this frame next time
                a = where + mac
                end = head + snap
                pkt.view[head:end] = view[a : a + snap]
                pkt.end = end
                pkt.queue = queue
                if status & _CSUM_OK:
                    pkt.csum_valid = True
                if vh:
                    gso_type, hdr_len, gso_size = gso_of(view, a - vh)
                    if gso_type:
                        pkt.gso_type = gso_type
                        pkt.gso_size = gso_size
                        pkt.hdr_len = hdr_len
                out.append(pkt)
                nbytes += snap
                count += 1
            remaining -= 1
            if remaining == 0:
                _U32.pack_into(view, blk * bsz + _BLOCK_STATUS, TP_STATUS_KERNEL)
                blk = blk + 1 if blk + 1 < nblocks else 0
            else:
                where += nxt
        rx.pos = blk
        rx.remaining = remaining
        rx.where = where
        if out:
            c.rx_packets += len(out)
            c.rx_bytes += nbytes
        return out

    @staticmethod
    def _rx_reject(status: int, tp_len: int, snap: int, cap: int, pkttype: int) -> str | None:
        """Why a frame flagged on the fast path is dropped (None: deliver it after all)."""
        if pkttype == PACKET_OUTGOING:
            return "outgoing"
        if snap < tp_len or status & TP_STATUS_COPY:
            return "truncated"
        if snap > cap:
            return "frame_too_big"
        if status & TP_STATUS_VLAN_VALID:
            return "vlan"
        return None  # only TP_STATUS_LOSING: handled by the caller

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        """Copy every packet into ``queue``'s TX ring, free them all, and flush the ring with one
        ``send``; returns how many the kernel took. A burst larger than the free slots flushes
        early and goes on with the slots that frees. With ``tso``, a frame larger than a slot (a
        TCP segment up to 64 KB) is written on its own, after the ring is flushed, so the order
        on the wire is the order of ``packets``."""
        if self._closed:
            for pkt in packets:
                pkt.free()
            raise OSError(errno.EBADF, f"packet driver on {self.iface!r} is closed")
        tx = self._tx[queue]
        c: QueueCounters = self._counters[queue]
        view = tx.view
        offsets = tx.offsets
        nframes = tx.nframes
        i = tx.pos
        vh = self._tx_vnet
        max_len = self.mtu + _ETH_HLEN + _VLAN_HLEN
        status_of = _U32.unpack_from
        put_hdr = _V2_TX.pack_into
        complete = vnet.complete_csum
        compiled = _COMPILED
        sent = 0
        pending = 0
        nbytes = 0
        full = False
        for pkt in packets:
            start = pkt.start
            end = pkt.end
            n = end - start
            if n <= max_len:
                if full:
                    c.drop("tx_ring_full")
                else:
                    off = offsets[i]
                    if compiled:  # noqa: SIM108 - C loads/stores on the mapped ring (packet.pxd), typed
                        slot = _ring_load32(view, off)  # noqa: F821
                    else:
                        slot = status_of(view, off)[0]
                    if slot != _TP_STATUS_AVAILABLE and pending:
                        # The slot is still in the kernel's hands: send what is queued (which
                        # usually frees slots at once on veth), then look again.
                        tx.pos = i
                        taken, lost_bytes = self._flush(tx, c, pending)
                        sent += taken
                        nbytes -= lost_bytes
                        i = tx.pos
                        off = offsets[i]
                        pending = 0
                        if compiled:  # noqa: SIM108 - as above
                            slot = _ring_load32(view, off)  # noqa: F821
                        else:
                            slot = status_of(view, off)[0]
                    if slot != _TP_STATUS_AVAILABLE:
                        full = True
                        c.drop("tx_ring_full")
                    else:
                        d = off + _V2_TX_DATA
                        # Compiled, the virtio_net_hdr goes into the packet's headroom and header
                        # + frame into the slot with one memcpy (the slot holds MTU + 18 + vh).
                        whole = compiled and start >= vh
                        if vh:
                            pack_into(pkt.buf if whole else view, start - vh if whole else d, pkt)
                        elif pkt.csum_start >= 0:
                            # No device to finish it: do what the kernel's skb_checksum_help does.
                            complete(pkt.buf, start, end, pkt.csum_start, pkt.csum_offset)
                        if whole:
                            if not _packet_to_ring(pkt.buf, start - vh, view, d, n + vh):  # noqa: F821
                                c.drop("frame_too_big")  # outside the packet's buffer: a bad packet
                                pkt.free()
                                continue
                            _ring_store32(view, off + 4, n + vh)  # tp_len, then tp_status  # noqa: F821
                            _ring_store32(view, off, _TP_STATUS_SEND_REQUEST)  # noqa: F821
                        else:
                            view[d + vh : d + vh + n] = pkt.view[start:end]
                            put_hdr(view, off, _TP_STATUS_SEND_REQUEST, n + vh)
                        i = i + 1 if i + 1 < nframes else 0
                        pending += 1
                        nbytes += n
            elif pkt.gso_type and tx.big_fd >= 0:
                if pending:
                    tx.pos = i
                    taken, lost_bytes = self._flush(tx, c, pending)
                    sent += taken
                    nbytes -= lost_bytes
                    i = tx.pos
                    pending = 0
                hstart = start - _VNET_HDR_LEN  # the header goes into the headroom
                if hstart < 0:
                    c.drop("no_headroom")
                else:
                    pack_into(pkt.buf, hstart, pkt)
                    try:
                        os.write(tx.big_fd, pkt.view[hstart:end])
                    except BlockingIOError:
                        c.drop("tx_queue_full")
                    except OSError as e:
                        c.drop(errno_reason(e))
                    else:
                        sent += 1
                        nbytes += n
            else:
                c.drop("gso_unsupported" if pkt.gso_type else "frame_too_big")
            pkt.free()
        tx.pos = i
        if pending:
            taken, lost_bytes = self._flush(tx, c, pending)
            sent += taken
            nbytes -= lost_bytes
        if sent:
            c.tx_packets += sent
            c.tx_bytes += nbytes
        return sent

    def _flush(self, tx: _TxRing, c: QueueCounters, pending: int) -> tuple[int, int]:
        """One ``send`` for the ``pending`` frames just put in the ring; returns how many the
        kernel took and the frame bytes of those it did not. Those are still SEND_REQUEST at the
        tail: they are taken back (the kernel's head stays at the first of them) and counted by
        errno."""
        try:
            tx.send(b"", socket.MSG_DONTWAIT)  # type: ignore[misc]
        except OSError as e:
            back, back_bytes = self._reclaim(tx, pending)
            if back:
                c.drop(errno_reason(e), back)
                return pending - back, back_bytes - back * self._tx_vnet
        return pending, 0

    @staticmethod
    def _reclaim(tx: _TxRing, pending: int) -> tuple[int, int]:
        """Take back the frames at the end of the ring that are still SEND_REQUEST (at most
        ``pending``); returns how many and their ``tp_len`` total."""
        view = tx.view
        offsets = tx.offsets
        nframes = tx.nframes
        back = nbytes = 0
        i = tx.pos
        while back < pending:
            j = i - 1 if i > 0 else nframes - 1
            off = offsets[j]
            status, n = _V2_TX.unpack_from(view, off)
            if status != TP_STATUS_SEND_REQUEST:
                break
            _U32.pack_into(view, off, TP_STATUS_AVAILABLE)
            i = j
            back += 1
            nbytes += n
        tx.pos = i
        return back, nbytes

    def _collect_kernel_drops(self, queue: int) -> None:
        """Add the kernel's count of frames it could not put into the RX ring (clear-on-read)."""
        rx = self._rx[queue]
        if rx.sock is None:
            return
        try:
            raw = rx.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        except OSError:
            return
        drops = _STATS.unpack_from(raw)[1]
        if drops:
            self._counters[queue].drop("ring_full", drops)

    # -- per-process queues -----------------------------------------------------------------
    def take_queue(self, queue: int, pool: PacketPool | None = None) -> PacketDriver:
        """A driver owning only ``queue`` of this one, for the process that serves it (a reactor
        forked after this driver opened every queue; call it in that process): same interface,
        MAC, MTU and offloads, its own pools and counters, ``queue_index`` = ``queue``. It reads
        the queue's RX socket and ring — the parent keeps them all open, so the queue keeps its
        fanout slot (and its number) while its reactor restarts — from the kernel's current
        position (resynced on the first :meth:`rx_burst`), and transmits on a TX socket and ring
        of its own, opened here (in ``netns``, as the driver was). The other queues' sockets and
        rings stay open in this process until :meth:`close_others`."""
        if self._closed:
            raise OSError(errno.EBADF, f"packet driver on {self.iface!r} is closed")
        if not 0 <= queue < len(self._rx):
            raise ValueError(f"queue {queue} is not one of {len(self._rx)}")
        d = PacketDriver.__new__(PacketDriver)
        for field in _COPIED_FIELDS:
            setattr(d, field, getattr(self, field))
        d.pool = pool if pool is not None else PacketPool()
        d._check_pool(self.mtu)
        if self.large_pool is not None:
            if d.pool.headroom < VNET_HDR_LEN:
                raise ValueError(f"pool headroom {d.pool.headroom} < virtio_net_hdr size {VNET_HDR_LEN}")
            d.large_pool = PacketPool(count=LARGE_POOL_COUNT, size=self.large_pool.size,
                                      headroom=d.pool.headroom, lazy=True)
        rx = self._rx[queue]
        rx.synced = False
        tx = _TxRing()
        frame_len = self.mtu + ETH_HLEN + VLAN_HLEN
        try:
            in_netns(self.netns, lambda: d._open_tx(tx, self.iface, frame_len, self._tx_frames))
        except BaseException:
            tx.close()
            raise
        d._rx = [rx]
        d._tx = [tx]
        d._others = (
            [r for i, r in enumerate(self._rx) if i != queue],
            list(self._tx),  # queue's own TX ring too: the new driver sends on its own
            [self._steering] if self._steering is not None else [],
        )
        d._steering = None  # the group holds the program; the parent closes its fd
        d._closed = False
        d.num_queues = 1
        d.queue_index = queue
        d._counters = [QueueCounters()]
        return d

    def close_others(self) -> None:
        """Close, in this process only, what :meth:`take_queue` left out: the other queues' RX
        sockets, every inherited TX socket and the steering program's fd. Unmapping a ring here
        removes this process's mapping only (after fork it is a copy of the parent's;
        ``packet_mm_close`` just drops the socket's map count), and closing an fd drops one
        reference to a socket the parent still holds — nothing is released, no fanout member
        leaves."""
        rxs, txs, progs = self._others
        self._others = ([], [], [])
        for ring in (*rxs, *txs):
            with contextlib.suppress(OSError, BufferError):
                ring.close()
        for prog in progs:
            with contextlib.suppress(OSError):
                prog.close()

    def fileno(self, queue: int) -> int:
        return self._rx[queue].fd

    def counters(self, queue: int) -> QueueCounters:
        if not self._closed:
            self._collect_kernel_drops(queue)
        return self._counters[queue]

    @property
    def ignores_outgoing(self) -> bool:
        """Whether the kernel filters this driver's own transmissions out of the RX rings."""
        return self._ignore_outgoing

    def close(self) -> None:
        """Unmap the rings and close the sockets (idempotent). Leaves the interface as it is
        (up, its MTU), except promiscuous mode, which ends with the socket that asked for it."""
        if self._closed:
            return
        self._closed = True
        for q, rx in enumerate(self._rx):
            with contextlib.suppress(OSError, IndexError):
                self._collect_kernel_drops(q)
            with contextlib.suppress(OSError, BufferError):
                rx.close()
        for tx in self._tx:
            with contextlib.suppress(OSError, BufferError):
                tx.close()
        self._rx = []
        self._tx = []
        if self._steering is not None:
            self._steering.close()
            self._steering = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        ring = "v3" if getattr(self, "rx_version", TPACKET_V2) == TPACKET_V3 else "v2"
        return (
            f"<PacketDriver {getattr(self, 'iface', '?')} queues={self.num_queues} rx={ring} "
            f"offloads={getattr(self, 'offloads', None)}>"
        )
