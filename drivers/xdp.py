"""AF_XDP poll-mode driver: frames through an XDP program and shared-memory rings on an existing
interface (one end of a veth pair in the tests and the benchmark).

Kernel interface (Documentation/networking/af_xdp.rst, include/uapi/linux/if_xdp.h,
net/xdp/xsk.c; behaviour below measured on this machine, kernel 6.18):

- **one AF_XDP socket per queue**, each over a UMEM of its own (share-nothing: a reactor per queue
  never touches another's memory): ``frame_count`` chunks of ``frame_size`` bytes (2048 or 4096,
  aligned mode), registered with ``XDP_UMEM_REG``; the first half of the chunks receive (they
  circulate through the fill ring), the second half transmit (a free list; back through the
  completion ring). Fill, completion, RX and TX rings (``ring_size`` entries) are mapped from the
  socket at the ``XDP_PGOFF_*`` offsets, their layout read with ``XDP_MMAP_OFFSETS``. The socket is
  bound with ``XDP_USE_NEED_WAKEUP``: the kernel asks for a syscall only when it needs one
  (``XDP_RING_NEED_WAKEUP`` in a ring's flags).
- **the program** (:mod:`.xdp_filter`: the ingress filter's rules, then ``bpf_redirect_map`` into
  an ``XSKMAP`` indexed by ``rx_queue_index``) is loaded with the bpf() syscall and attached by a
  BPF link (:mod:`.bpf`), native XDP first (``XDP_FLAGS_DRV_MODE``), generic (skb) XDP when the
  device has none; ``mode=`` forces either. The link detaches the program when its last fd closes
  — on :meth:`close`, and when the process dies, SIGKILL included (the kernel closes its fds). A
  program of ours left by netlink (not a link) is removed at the next start, which says so on
  stderr; a foreign program is an error naming it.
- **copy or zero-copy**: ``bind="auto"`` asks for ``XDP_ZEROCOPY`` and falls back to ``XDP_COPY``
  where the device cannot (veth: EOPNOTSUPP, measured); :attr:`modes` reports what was chosen, and
  ``aiostack stat`` shows it. In copy mode the kernel copies each frame into a UMEM chunk at
  receive and out of it at transmit; the driver copies between chunks and pooled
  :class:`~aiostack.drivers.buffers.Packet` buffers (:mod:`.xdp_rings`), so a chunk goes back to
  the fill ring as soon as it is read.
- **preferred busy polling** (native XDP): the sockets ask for ``SO_PREFER_BUSY_POLL`` and every
  ``rx_burst`` makes one non-blocking ``recv``, which runs the queue's NAPI poll — the XDP program
  and the copy into the RX ring — in the reactor's own time on its own core; the interface's
  ``napi_defer_hard_irqs``/``gro_flush_timeout`` keep the kernel from also running it in softirq
  while the reactor polls (set while the driver is open; see ``_defer_napi`` for what it measured).
- **transmit** in copy mode is a ``sendto`` that sends at most 32 descriptors (``TX_BATCH_SIZE`` in
  ``__xsk_generic_xmit``) and answers EAGAIN while more wait: the driver kicks until the ring is
  drained, taking completions back in between (a full completion ring is EAGAIN too).
- **offloads**: none. A veth with an XDP program passes no GSO frames (``veth_fix_features`` turns
  GSO off on the peer), and the frames carry the checksums they had: the stack computes and
  verifies every checksum itself. A frame the kernel sent with a partial checksum
  (``CHECKSUM_PARTIAL``: a kernel TCP/UDP socket on the other end of a veth that offers checksum
  offload) arrives with the pseudo-header sum only and fails verification (a counted drop): turn
  checksum offload off on the kernel's end (``ethtool -K PEER tx off``, or
  :func:`~aiostack.drivers.packet.set_offload` ``(PEER, "tx-csum", False)``) — frames from a wire
  are always complete.
- **queues**: ``queues=N`` binds a socket to each of queues 0..N-1 (a veth needs
  ``numrxqueues N`` on the driver's end and ``numtxqueues N`` on the peer's). Which queue a frame
  reaches is the device's choice: an XDP program cannot move a frame to another queue's socket
  (``xsk_rcv_check`` refuses it). A veth delivers on the receive queue numbered like the peer's
  transmit queue, which the kernel picks by its own hash of the sending socket — unless
  ``steer_peer`` names the peer: then a TCX egress program there makes the pick
  :func:`~aiostack.drivers.steering.flow_hash` ``% N`` (:func:`~.steering.veth_peer_instructions`),
  the steering every other multi-queue driver has (the peer is the veth's "NIC" side: what RSS
  configured with the stack's hash is on real hardware).

Counted drops (per queue): ``pool_exhausted``, ``frame_too_big``, ``tx_ring_full`` (no free chunk
or TX slot), transmit errors by errno name, and the kernel's own ``XDP_STATISTICS``:
``rx_dropped``, ``rx_ring_full``, ``rx_fill_ring_empty``, ``rx_invalid_descs``, ``tx_invalid_descs``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os
import socket
import struct
import sys
import time
from collections.abc import Sequence

from . import bpf
from .base import Driver, Offloads, QueueCounters, check_ifname, errno_reason
from .buffers import Packet, PacketPool
from .packet import in_netns
from .steering import veth_peer_instructions
from .xdp_filter import COUNTER, FilterRule, xdp_program
from .xdp_rings import pending, reclaim, rx_copy, tx_copy

__all__ = ["PROGRAM_NAME", "XdpDriver"]

AF_XDP = 44
SOL_XDP = 283
XDP_MMAP_OFFSETS = 1
XDP_RX_RING = 2
XDP_TX_RING = 3
XDP_UMEM_REG = 4
XDP_UMEM_FILL_RING = 5
XDP_UMEM_COMPLETION_RING = 6
XDP_STATISTICS = 7
XDP_OPTIONS = 8
XDP_OPTIONS_ZEROCOPY = 1
XDP_COPY = 1 << 1
XDP_ZEROCOPY = 1 << 2
XDP_USE_NEED_WAKEUP = 1 << 3
XDP_RING_NEED_WAKEUP = 1
XDP_PGOFF_RX_RING = 0
XDP_PGOFF_TX_RING = 0x80000000
XDP_UMEM_PGOFF_FILL_RING = 0x100000000
XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000
SO_BUSY_POLL = 46
SO_PREFER_BUSY_POLL = 69
SO_BUSY_POLL_BUDGET = 70
BUSY_POLL_US = 20
BUSY_POLL_BUDGET = 64
XDP_PACKET_HEADROOM = 256
"""Copy mode puts a received frame this far into its chunk (the desc's addr includes it)."""

PROGRAM_NAME = "aiostack_xdp"
"""The name the program is loaded under: how a later start recognises one left behind."""
MAX_QUEUES = 64
ETH_HLEN = 14
VLAN_HLEN = 4
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFHWADDR = 0x8927
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
IFF_UP = 0x1
_IFREQ_FLAGS = struct.Struct("16sH22x")
_IFREQ_INT = struct.Struct("16si20x")
_OFFSETS = struct.Struct("=16Q")  # struct xdp_mmap_offsets: rx, tx, fr, cr × (producer, consumer, desc, flags)
_STATS = struct.Struct("=6Q")
_STAT_NAMES = ("rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full", "rx_fill_ring_empty",
               "tx_ring_empty_descs")
_COUNTED_STATS = frozenset(_STAT_NAMES) - {"tx_ring_empty_descs"}  # that one only says TX had nothing to do
_SOCKADDR_XDP = struct.Struct("=HHIII")
_UMEM_REG = struct.Struct("=QQIIII")  # addr, len, chunk_size, headroom, flags, tx_metadata_len

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class _Ring:
    """One mapped ring: ``w`` (u32 words) with the producer/consumer/flags word indexes, ``q`` (the
    descriptors as u64 words), ``mask``."""

    __slots__ = ("cons", "flags", "mask", "mm", "prod", "q", "w")

    def __init__(self, fd: int, pgoff: int, offsets: tuple[int, int, int, int], entries: int, desc_size: int) -> None:
        prod, cons, desc, flags = offsets
        self.mm = mmap.mmap(fd, desc + entries * desc_size, mmap.MAP_SHARED | mmap.MAP_POPULATE,
                            mmap.PROT_READ | mmap.PROT_WRITE, offset=pgoff)
        whole = memoryview(self.mm)
        self.w = whole.cast("I")
        self.q = whole[desc : desc + entries * desc_size].cast("Q")
        whole.release()
        self.prod, self.cons, self.flags = prod // 4, cons // 4, flags // 4
        self.mask = entries - 1

    def close(self) -> None:
        for v in (self.w, self.q):
            v.release()
        self.mm.close()


class _Xsk:
    """One queue: the AF_XDP socket, its UMEM and four rings, the TX chunks' free list."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.fd = -1
        self.umem_mm: mmap.mmap | None = None
        self.umem: memoryview | None = None
        self._umem_addr: ctypes.c_char | None = None
        self.rings: list[_Ring] = []
        self.rx: _Ring
        self.tx: _Ring
        self.fill: _Ring
        self.comp: _Ring
        self.free: list[int] = []
        self.owned = bytearray()
        self.frame_shift = 0
        self.tx_frames: range = range(0)
        self.zerocopy = False
        self.busy_poll = False
        self.stats_seen = [0] * len(_STAT_NAMES)

    def open(self, ifindex: int, queue: int, frame_size: int, frame_count: int, ring_size: int, bind: str,
             busy_poll: bool) -> None:
        try:
            s = self.sock = socket.socket(AF_XDP, socket.SOCK_RAW, 0)
        except PermissionError as e:
            raise PermissionError(e.errno, f"AF_XDP sockets need root (CAP_NET_RAW): {e.strerror}") from None
        except OSError as e:
            if e.errno == errno.EAFNOSUPPORT:
                raise OSError(e.errno, "this kernel has no AF_XDP (CONFIG_XDP_SOCKETS)") from None
            raise
        self.fd = s.fileno()
        size = frame_size * frame_count
        self.umem_mm = mmap.mmap(-1, size, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
        self.umem = memoryview(self.umem_mm)
        self._umem_addr = ctypes.c_char.from_buffer(self.umem_mm)
        s.setsockopt(SOL_XDP, XDP_UMEM_REG,
                     _UMEM_REG.pack(ctypes.addressof(self._umem_addr), size, frame_size, 0, 0, 0))
        for opt in (XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING):
            s.setsockopt(SOL_XDP, opt, ring_size)
        off = _OFFSETS.unpack(s.getsockopt(SOL_XDP, XDP_MMAP_OFFSETS, _OFFSETS.size))
        rx_off, tx_off, fr_off, cr_off = off[0:4], off[4:8], off[8:12], off[12:16]
        self.rx = _Ring(self.fd, XDP_PGOFF_RX_RING, rx_off, ring_size, 16)
        self.tx = _Ring(self.fd, XDP_PGOFF_TX_RING, tx_off, ring_size, 16)
        self.fill = _Ring(self.fd, XDP_UMEM_PGOFF_FILL_RING, fr_off, ring_size, 8)
        self.comp = _Ring(self.fd, XDP_UMEM_PGOFF_COMPLETION_RING, cr_off, ring_size, 8)
        self.rings = [self.rx, self.tx, self.fill, self.comp]
        # First half of the chunks receive, second half transmit; the fill ring gets them all.
        half = frame_count // 2
        fill = self.fill
        for i in range(half):
            fill.q[i & fill.mask] = i * frame_size
        fill.w[fill.prod] = half
        self.frame_shift = frame_size.bit_length() - 1
        self.tx_frames = range(half * frame_size, frame_count * frame_size, frame_size)
        self.owned = bytearray(frame_count)
        self.free = list(reversed(self.tx_frames))
        for addr in self.tx_frames:
            self.owned[addr >> self.frame_shift] = 1
        modes = {"zerocopy": [XDP_ZEROCOPY], "copy": [XDP_COPY], "auto": [XDP_ZEROCOPY, XDP_COPY]}[bind]
        for i, mode in enumerate(modes):
            addr = _SOCKADDR_XDP.pack(AF_XDP, mode | XDP_USE_NEED_WAKEUP, ifindex, queue, 0)
            buf = ctypes.create_string_buffer(addr, len(addr))
            if _libc.bind(self.fd, buf, len(addr)) == 0:
                break
            err = ctypes.get_errno()
            if i + 1 == len(modes) or err not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EPROTONOSUPPORT):
                hint = " (does the device have that many queues?)" if err == errno.EINVAL else ""
                raise OSError(err, f"binding the AF_XDP socket to queue {queue}: {os.strerror(err)}{hint}")
        if busy_poll:
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_PREFER_BUSY_POLL, 1)
                s.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, BUSY_POLL_US)
                s.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL_BUDGET, BUSY_POLL_BUDGET)
                self.busy_poll = True
            except OSError:  # before 5.11: the kernel's NAPI runs in softirq as usual
                self.busy_poll = False
        (opts,) = struct.unpack("=I", s.getsockopt(SOL_XDP, XDP_OPTIONS, 4))
        self.zerocopy = bool(opts & XDP_OPTIONS_ZEROCOPY)

    def kernel_stats(self) -> dict[str, int]:
        """What the kernel counted since the last call (its counters only grow)."""
        if self.sock is None:
            return {}
        try:
            now = _STATS.unpack(self.sock.getsockopt(SOL_XDP, XDP_STATISTICS, _STATS.size))
        except OSError:
            return {}
        out = {}
        for i, name in enumerate(_STAT_NAMES):
            delta = now[i] - self.stats_seen[i]
            if delta and name in _COUNTED_STATS:
                out[name] = delta
        self.stats_seen = list(now)
        return out

    def resync_tx(self) -> None:
        """For a process taking over this queue from one that died: every TX chunk not waiting in
        the TX ring is free. Completions already posted are taken (and dropped); one posted later
        for a chunk counted free here is ignored (``owned``). In copy mode the kernel copied a
        chunk's frame while taking its descriptor, so a chunk is reusable once it left the ring."""
        comp = self.comp
        comp.w[comp.cons] = comp.w[comp.prod]
        tx = self.tx
        busy = set()
        cons, prod = tx.w[tx.cons], tx.w[tx.prod]
        while cons != prod:
            busy.add(tx.q[(cons & tx.mask) << 1])
            cons = (cons + 1) & 0xFFFFFFFF
        self.free = [a for a in reversed(self.tx_frames) if a not in busy]
        for addr in self.tx_frames:
            self.owned[addr >> self.frame_shift] = 0 if addr in busy else 1

    def close(self) -> None:
        for ring in self.rings:
            with contextlib.suppress(BufferError, ValueError):
                ring.close()
        self.rings = []
        if self.umem is not None:
            self.umem.release()
            self.umem = None
        self._umem_addr = None
        if self.umem_mm is not None:
            with contextlib.suppress(BufferError):
                self.umem_mm.close()
            self.umem_mm = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class XdpDriver(Driver):
    """An existing interface driven through AF_XDP sockets, one per queue (see the module docstring)."""

    name = "xdp"

    def __init__(
        self,
        iface: str,
        *,
        queues: int = 1,
        pool: PacketPool | None = None,
        mtu: int | None = None,
        frame_size: int = 2048,
        frame_count: int = 4096,
        ring_size: int = 2048,
        mode: str = "auto",
        bind: str = "auto",
        filter_rules: Sequence[FilterRule] = (),
        rule_names: Sequence[str] | None = None,
        steer_peer: str | None = None,
        peer_netns: str | None = None,
        netns: str | None = None,
    ) -> None:
        """Open ``queues`` AF_XDP sockets on ``iface`` (queues 0..N-1), load and attach the program.

        ``frame_size`` (2048 or 4096) and ``frame_count`` (a power of two, half for receive and
        half for transmit) size each queue's UMEM; ``ring_size`` (a power of two) each ring.
        ``mode``: ``auto`` (native XDP, else generic), ``native`` or ``generic``; ``bind``:
        ``auto`` (zero-copy, else copy), ``zerocopy`` or ``copy``. ``filter_rules`` run in the
        program (``rule_names`` label their counters). ``steer_peer``: the kernel's end of the
        veth (in ``peer_netns``, else in the driver's namespace), whose transmit queue — hence this
        end's receive queue — the flow hash then picks (:func:`~.steering.veth_peer_instructions`),
        with more than one queue. ``netns`` opens everything inside that network namespace (a
        name in /run/netns)."""
        self._closed = False
        self._xsks: list[_Xsk] = []
        self._link_fd = -1
        self._prog_fd = -1
        self._peer_link_fd = -1
        self._napi_was: dict[str, str] = {}
        self._maps: list[bpf.Map] = []
        self._counter_map: bpf.Map | None = None
        self._others: list[object] = []
        self.queue_index: int | None = None
        check_ifname(iface)
        if not 1 <= queues <= MAX_QUEUES:
            raise ValueError(f"queues must be in 1..{MAX_QUEUES}, not {queues}")
        if frame_size not in (2048, 4096):
            raise ValueError(f"frame_size must be 2048 or 4096, not {frame_size}")
        if frame_count < 16 or frame_count & (frame_count - 1):
            raise ValueError(f"frame_count must be a power of two >= 16, not {frame_count}")
        if ring_size < 8 or ring_size & (ring_size - 1):
            raise ValueError(f"ring_size must be a power of two >= 8, not {ring_size}")
        if mode not in ("auto", "native", "generic"):
            raise ValueError(f"mode must be auto, native or generic, not {mode!r}")
        if bind not in ("auto", "copy", "zerocopy"):
            raise ValueError(f"bind must be auto, copy or zerocopy, not {bind!r}")
        if mtu is not None and not 68 <= mtu <= 65535:
            raise ValueError(f"mtu {mtu} is out of range 68..65535")
        self.rules = list(filter_rules)
        self.rule_names = list(rule_names) if rule_names is not None else [f"rule{i}" for i in range(len(self.rules))]
        if len(self.rule_names) != len(self.rules):
            raise ValueError("rule_names must name every rule")
        self.pool = pool if pool is not None else PacketPool()
        self.iface = iface
        self.name = f"xdp({iface})"
        self.num_queues = queues
        self.netns = netns
        self.frame_size = frame_size
        self.frame_count = frame_count
        self.ring_size = ring_size
        # the largest frame a chunk holds: copy-mode receive starts XDP_PACKET_HEADROOM in
        self.frame_cap = frame_size - XDP_PACKET_HEADROOM
        self.modes: dict[str, object] = {}
        self._counters = [QueueCounters() for _ in range(queues)]
        self.removed_leftover: str | None = None
        if steer_peer is not None:
            check_ifname(steer_peer)
        try:
            in_netns(netns, lambda: self._open(iface, queues, mtu, mode, bind))
            if steer_peer is not None and queues > 1:
                self._steer_peer(steer_peer, peer_netns if peer_netns is not None else netns, queues)
            if self.modes.get("napi") == "preferred busy polling":
                self._defer_napi(iface, netns)
        except BaseException:
            self.close()
            raise
        self.offloads = Offloads()

    # -- setup --------------------------------------------------------------------------------
    def _open(self, iface: str, queues: int, mtu: int | None, mode: str, bind: str) -> None:
        name = iface.encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
            fd = ctl.fileno()
            try:
                self.ifindex = socket.if_nametoindex(iface)
                hw = fcntl.ioctl(fd, SIOCGIFHWADDR, struct.pack("16s16x", name))
            except OSError as e:
                raise OSError(errno.ENODEV, f"interface {iface!r} does not exist (in this network namespace)",
                              iface) from e
            if struct.unpack_from("H", hw, 16)[0] != 1:  # ARPHRD_ETHER
                raise OSError(errno.EINVAL, f"interface {iface!r} is not an Ethernet device")
            self.mac = bytes(hw[18:24])
            cur = _IFREQ_INT.unpack(fcntl.ioctl(fd, SIOCGIFMTU, _IFREQ_INT.pack(name, 0)))[1]
            self.mtu = mtu if mtu is not None else cur
            need = self.mtu + ETH_HLEN + VLAN_HLEN
            if need > self.frame_cap:  # checked before the interface is touched
                raise ValueError(f"mtu {self.mtu} needs {need}-byte frames; a {self.frame_size}-byte UMEM chunk "
                                 f"holds {self.frame_cap} (use 4096-byte chunks, --xdp-frame-size 4096, or a smaller "
                                 f"MTU)")
            if need > self.pool.mtu_capacity:
                raise ValueError(f"mtu {self.mtu} needs {need}-byte frames but the pool's buffers hold "
                                 f"{self.pool.mtu_capacity} after the headroom")
            if self.mtu != cur:
                fcntl.ioctl(fd, SIOCSIFMTU, _IFREQ_INT.pack(name, self.mtu))
            flags = _IFREQ_FLAGS.unpack(fcntl.ioctl(fd, SIOCGIFFLAGS, _IFREQ_FLAGS.pack(name, 0)))[1]
            if not flags & IFF_UP:
                fcntl.ioctl(fd, SIOCSIFFLAGS, _IFREQ_FLAGS.pack(name, flags | IFF_UP))
        self._remove_leftover(iface)
        xsks = bpf.Map(bpf.BPF_MAP_TYPE_XSKMAP, 4, 4, queues, "aiostack_xsks")
        self._maps.append(xsks)
        if self.rules:
            self._counter_map = bpf.Map(bpf.BPF_MAP_TYPE_ARRAY, 4, COUNTER.size, queues * len(self.rules),
                                        "aiostack_rules")
            self._maps.append(self._counter_map)
        code = xdp_program(xsks.fd, self._counter_map.fd if self._counter_map else None, self.rules, queues)
        self._prog_fd = bpf.load_program(code, PROGRAM_NAME)
        attach = {"auto": ["native", "generic"], "native": ["native"], "generic": ["generic"]}[mode]
        for i, how in enumerate(attach):
            flag = bpf.XDP_FLAGS_DRV_MODE if how == "native" else bpf.XDP_FLAGS_SKB_MODE
            try:
                self._link_fd = bpf.link_create_xdp(self._prog_fd, self.ifindex, flag)
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise OSError(e.errno, f"interface {iface!r} already has an XDP program attached "
                                           f"(another driver or tool holds it)") from None
                if i + 1 == len(attach):
                    raise OSError(e.errno, f"attaching the XDP program to {iface!r} ({how}): {e.strerror}") from None
                continue
            self.modes["xdp"] = how
            break
        for q in range(queues):
            x = _Xsk()
            self._xsks.append(x)
            x.open(self.ifindex, q, self.frame_size, self.frame_count, self.ring_size, bind,
                   self.modes["xdp"] == "native")
            xsks.update(q, struct.pack("=I", x.fd))
        self.modes["bind"] = "zerocopy" if all(x.zerocopy for x in self._xsks) else "copy"
        self.modes["need_wakeup"] = True
        self.modes["queues"] = queues
        self.modes["steering"] = "device"
        if all(x.busy_poll for x in self._xsks):
            self.modes["napi"] = "preferred busy polling"

    def _defer_napi(self, iface: str, netns: str | None) -> None:
        """The interface's NAPI settings for preferred busy polling (restored on close):
        ``napi_defer_hard_irqs`` 2 and ``gro_flush_timeout`` 20 µs, so that while a reactor polls
        its queue the kernel leaves the queue's NAPI to it instead of also running it in softirq
        (Documentation/networking/napi.rst, "preferred busy polling").

        Why: a veth running native XDP receives in NAPI, which otherwise runs in softirq on the
        CPU that scheduled it — the sending client's — and under load a queue's receive work stays
        on one CPU, in front of the reactor pinned there. Measured, 2 reactors on 2 cores, wrk -t2
        -c100 (machine shared with other work), the reactors' shares of the requests: softirq
        88/12, 86/14, 74/26, 61/39; threaded NAPI, each thread on its reactor's core 42/58, 47/53,
        68/32, 61/39, 76/24; busy polling without the deferral 72/28, 52/48, 47/53, 60/40; with
        a 200 µs deferral 49/51, 57/43, 60/40, 50/50, 48/52, 60/40, 40/60; with 20 µs 53/47,
        44/56, 49/51, 54/46, 68/32. 20 µs, because while the reactor sleeps the deferral is how
        long a veth's queued frames wait (a veth does not wake a deferred NAPI): at 200 µs a
        kernel UDP client sending bursts of 8000-byte datagrams filled its socket buffer (EAGAIN)."""
        base = f"/sys/class/net/{iface}"
        wanted = {"napi_defer_hard_irqs": "2", "gro_flush_timeout": "20000"}
        try:
            # only when this process's /sys shows the driver's namespace (ip netns exec remounts it)
            with open(f"{base}/ifindex") as f:
                if netns is not None or int(f.read()) != self.ifindex:
                    raise OSError(errno.EXDEV, "sysfs shows another network namespace")
            for name, value in wanted.items():
                with open(f"{base}/{name}") as f:
                    was = f.read().strip()
                if was != value:
                    with open(f"{base}/{name}", "w") as f:
                        f.write(value)
                    self._napi_was[name] = was
        except OSError as e:
            self.modes["napi"] = f"preferred busy polling, NAPI settings unchanged ({e.strerror or e})"

    def _steer_peer(self, peer: str, netns: str | None, queues: int) -> None:
        """Attach the flow-hash program to the veth peer's TCX egress hook, by a BPF link this
        driver holds (it goes when the driver closes or its process dies)."""
        fd = bpf.load_program(veth_peer_instructions(queues), "aiostack_peer", bpf.BPF_PROG_TYPE_SCHED_CLS,
                              bpf.BPF_TCX_EGRESS)
        try:
            def attach() -> int:
                try:
                    index = socket.if_nametoindex(peer)
                except OSError:
                    raise OSError(errno.ENODEV, f"veth peer {peer!r} does not exist (in its namespace)") from None
                return bpf.link_create(fd, index, bpf.BPF_TCX_EGRESS)

            self._peer_link_fd = in_netns(netns, attach)
        finally:
            os.close(fd)
        self.modes["steering"] = f"flow hash (TCX egress program on {peer})"

    def _remove_leftover(self, iface: str) -> None:
        mode, prog_id = bpf.xdp_attached(self.ifindex)
        if mode is None:
            return
        prog = bpf.prog_name_by_id(prog_id) or "?"
        if prog != PROGRAM_NAME:
            raise OSError(errno.EBUSY, f"interface {iface!r} already has an XDP program ({prog!r}, id {prog_id}, "
                                       f"{mode}); remove it first (ip link set dev {iface} xdp off)")
        try:
            bpf.detach_xdp(self.ifindex, mode)
        except OSError as e:
            raise OSError(e.errno, f"interface {iface!r} is in use by another aiostack (its XDP program, id "
                                   f"{prog_id}, is held by a live link)") from None
        self.removed_leftover = f"{PROGRAM_NAME} id {prog_id} ({mode})"
        print(f"aiostack: removed a leftover XDP program from {iface} ({self.removed_leftover}); "
              f"a stack that drove it must have died without detaching", file=sys.stderr, flush=True)

    # -- data path ----------------------------------------------------------------------------
    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        """Up to ``max_count`` frames from ``queue``'s RX ring; never blocks."""
        if self._closed:
            raise OSError(errno.EBADF, f"xdp driver on {self.iface!r} is closed")
        x = self._xsks[queue]
        rx, fill = x.rx, x.fill
        out: list[Packet] = []
        c = self._counters[queue]
        if x.busy_poll:
            # preferred busy polling: this call runs the queue's NAPI poll (the XDP program and
            # the copy into the RX ring) here, in the reactor's own time on its own core
            with contextlib.suppress(OSError):
                x.sock.recv(0, socket.MSG_DONTWAIT)  # type: ignore[union-attr]
        nbytes = rx_copy(rx.w, rx.prod, rx.cons, rx.q, rx.mask, fill.w, fill.prod, fill.q, fill.mask,
                         x.umem, self.pool, queue, max_count, c, out)  # type: ignore[arg-type]
        if out:
            c.rx_packets += len(out)
            c.rx_bytes += nbytes
        if not x.busy_poll and fill.w[fill.flags] & XDP_RING_NEED_WAKEUP:
            # the device went to sleep on an empty fill ring (zero-copy): a receive call wakes it
            with contextlib.suppress(OSError):
                x.sock.recv(0, socket.MSG_DONTWAIT)  # type: ignore[union-attr]
        return out

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        """Copy ``packets`` into free UMEM chunks, post them on ``queue``'s TX ring and kick the
        kernel until it has taken them; frees every packet, returns how many were posted."""
        if self._closed:
            for pkt in packets:
                pkt.free()
            raise OSError(errno.EBADF, f"xdp driver on {self.iface!r} is closed")
        x = self._xsks[queue]
        tx, comp = x.tx, x.comp
        c = self._counters[queue]
        reclaim(comp.w, comp.prod, comp.cons, comp.q, comp.mask, x.free, x.owned, x.frame_shift)
        posted = tx_copy(tx.w, tx.prod, tx.cons, tx.q, tx.mask, x.umem, x.free, x.owned,  # type: ignore[arg-type]
                         x.frame_shift, self.frame_cap, packets, c)
        if posted:
            self._kick(x, c)
        return posted

    def _kick(self, x: _Xsk, c: QueueCounters) -> None:
        """``sendto`` until the kernel took every posted descriptor (copy mode takes 32 a call); a
        call that moves nothing (the completion ring is full) is retried after taking completions,
        a bounded number of times — what is left goes with the next burst's kick."""
        tx, comp = x.tx, x.comp
        send = x.sock.send  # type: ignore[union-attr]
        stalls = 0
        while pending(tx.w, tx.prod, tx.cons):
            if x.zerocopy and not tx.w[tx.flags] & XDP_RING_NEED_WAKEUP:
                return
            before = tx.w[tx.cons]
            try:
                send(b"", socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                if e.errno != errno.EBUSY:  # EBUSY: the device dropped one frame; go on
                    c.drop(errno_reason(e))
                    return
                c.drop("ebusy")
            if tx.w[tx.cons] == before:
                reclaim(comp.w, comp.prod, comp.cons, comp.q, comp.mask, x.free, x.owned, x.frame_shift)
                stalls += 1
                if stalls > 8:
                    return

    def fileno(self, queue: int) -> int:
        return self._xsks[queue].fd

    def counters(self, queue: int) -> QueueCounters:
        c = self._counters[queue]
        if not self._closed:
            for reason, n in self._xsks[queue].kernel_stats().items():
                c.drop(reason, n)
        return c

    def rule_counters(self) -> dict[str, dict[str, int]]:
        """Packets and bytes each rule matched on this driver's queues, by rule name."""
        out = {name: {"packets": 0, "bytes": 0} for name in self.rule_names}
        m = self._counter_map
        if m is None or m.fd < 0:
            return out
        n = len(self.rules)
        queues = [self.queue_index] if self.queue_index is not None else range(self.num_queues)
        for q in queues:
            for i, name in enumerate(self.rule_names):
                packets, nbytes = COUNTER.unpack(m.lookup(q * n + i))
                out[name]["packets"] += packets
                out[name]["bytes"] += nbytes
        return out

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = super().stats()  # a reactor's own queue is its queue0, as elsewhere
        out["mode"] = {k: v for k, v in self.modes.items() if k != "queues"}
        if self.rules:
            out["filter"] = self.rule_counters()
        return out

    # -- per-process queues -----------------------------------------------------------------
    def take_queue(self, queue: int, pool: PacketPool | None = None) -> XdpDriver:
        """A driver owning only ``queue`` of this one, for the reactor process serving it (forked
        after this driver opened every queue): the same socket, UMEM and rings (shared memory —
        the ring indexes live there, so a restarted reactor goes on where its predecessor
        stopped), its own pool and counters; TX chunks re-counted (:meth:`_Xsk.resync_tx`)."""
        if self._closed:
            raise OSError(errno.EBADF, f"xdp driver on {self.iface!r} is closed")
        if not 0 <= queue < len(self._xsks):
            raise ValueError(f"queue {queue} is not one of {len(self._xsks)}")
        d = XdpDriver.__new__(XdpDriver)
        d.__dict__.update(self.__dict__)
        d.pool = pool if pool is not None else PacketPool()
        x = self._xsks[queue]
        x.resync_tx()
        d._xsks = [x]
        d._others = [
            *(o for i, o in enumerate(self._xsks) if i != queue),
            *self._maps,
        ]
        d._link_fd = -1
        d._prog_fd = -1
        d._maps = []
        d._counter_map = self._counter_map  # read-only use: each reactor reads its queue's rules
        d._extra_fds = [self._link_fd, self._prog_fd, self._peer_link_fd]
        d._peer_link_fd = -1
        d._napi_was = {}  # the parent restores them
        d._closed = False
        d.num_queues = 1
        d.queue_index = queue
        d._counters = [QueueCounters()]
        d.modes = dict(self.modes)
        return d

    def close_others(self) -> None:
        """Close, in this process only, what :meth:`take_queue` left out: the other queues'
        sockets and mappings, the link and the program fds — so only the parent holds the link,
        and the program goes when the parent does, whatever becomes of the reactors."""
        others, self._others = self._others, []
        for o in others:
            if isinstance(o, _Xsk):
                o.close()
        for fd in getattr(self, "_extra_fds", []):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._extra_fds = []

    def close(self) -> None:
        """Detach the program (its link closed), close the sockets, unmap the rings and UMEMs, free
        the maps. Idempotent. The interface stays up with its MTU."""
        if self._closed:
            return
        self._closed = True
        for name, was in self._napi_was.items():
            with contextlib.suppress(OSError), open(f"/sys/class/net/{self.iface}/{name}", "w") as f:
                f.write(was)
        self._napi_was = {}
        if self._peer_link_fd >= 0:
            os.close(self._peer_link_fd)
            self._peer_link_fd = -1
        if self._link_fd >= 0:
            os.close(self._link_fd)
            self._link_fd = -1
        if self._prog_fd >= 0:
            os.close(self._prog_fd)
            self._prog_fd = -1
        for x in self._xsks:
            x.close()
        self._xsks = []
        for m in self._maps:
            m.close()
        self._maps = []
        self._counter_map = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<XdpDriver {getattr(self, 'iface', '?')} queues={self.num_queues} modes={getattr(self, 'modes', {})}>"


def wait_detached(ifindex: int, timeout: float = 5.0) -> bool:
    """True once interface ``ifindex`` has no XDP program (tests: a killed process's link goes
    with its fds, which the kernel closes as the process exits)."""
    deadline = time.monotonic() + timeout
    while True:
        if bpf.xdp_attached(ifindex)[0] is None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
