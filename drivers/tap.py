"""TAP poll-mode driver: Ethernet frames through /dev/net/tun with virtio_net_hdr offloads.

Kernel interface (Documentation/networking/tuntap.rst, include/uapi/linux/if_tun.h; ioctl numbers
measured on this machine; docs/architecture.md):

- each open of /dev/net/tun plus ``TUNSETIFF`` with the same name attaches one queue
  (``IFF_MULTI_QUEUE`` for more than one); closing every fd removes a non-persistent device;
- ``IFF_VNET_HDR`` puts a virtio_net_hdr (:mod:`.vnet`) in front of every frame read or written;
  ``TUNSETVNETHDRSZ`` sets its size; ``TUNSETOFFLOAD`` tells the kernel which offloads *we* accept
  on frames it hands us (``TUN_F_CSUM``: it may send partial checksums, marked NEEDS_CSUM).
  Writing frames with NEEDS_CSUM (or GSO) needs only ``IFF_VNET_HDR``.

The stack's own MAC (``self.mac``) is the address the stack answers to on the wire, a random
locally-administered one unless given; the kernel's side of the TAP keeps its own MAC, so the
kernel sees the stack as a neighbour on the link.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

from . import vnet
from .base import Driver, Offloads, QueueCounters, check_ifname, errno_reason
from .buffers import Packet, PacketPool
from .mac import parse_unicast_mac, random_mac
from .vnet import complete_csum, pack_into, parse_into

try:
    import cython

    _COMPILED = cython.compiled  # a compile-time constant in the compiled build
except ImportError:  # the pure build runs without Cython installed
    _COMPILED = False

TUN_PATH = "/dev/net/tun"

_EAGAIN = errno.EAGAIN
_EBADF = errno.EBADF
_EIO = errno.EIO

# ioctls (x86-64; linux/if_tun.h)
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNGETFEATURES = 0x800454CF
TUNSETVNETHDRSZ = 0x400454D8
TUNSETQUEUE = 0x400454D9

# TUNSETIFF flags
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_MULTI_QUEUE = 0x0100
IFF_VNET_HDR = 0x4000

# TUNSETOFFLOAD flags
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_UFO = 0x10
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

MAX_TAP_QUEUES = 256
"""``MAX_TAP_QUEUES`` in drivers/net/tun.c."""
ETH_HLEN = 14
VLAN_HLEN = 4

_IFREQ = struct.Struct("16sH22x")
"""``struct ifreq`` as TUNSETIFF uses it: the name and ``ifr_flags``, padded to 40 bytes."""

SUPPORTED_OFFLOADS = ("csum", "tso", "gro")
"""Offload names this driver negotiates:

- ``csum``: checksums both ways (``TUN_F_CSUM``; frames we write carry NEEDS_CSUM);
- ``tso``: we write TCP segments of up to 64 KB with a GSO header and the kernel cuts them
  (needs only ``IFF_VNET_HDR`` and ``csum``);
- ``gro``: the kernel may hand us coalesced TCP frames of up to 64 KB (``TUN_F_TSO4``), which
  it would otherwise cut to the MTU before writing them to us.

Measured with examples/bulk.py against a kernel socket through the TAP (one connection, one
core each, this machine): stack→kernel 0.5 Gbit/s with csum only vs 9–12 Gbit/s with tso;
kernel→stack 0.5 vs 3–4 Gbit/s with gro (see benchmarks/ for the current numbers)."""

LARGE_FRAME = 14 + 65535
"""The largest frame a GSO write or a coalesced read can hold: Ethernet + a 64 KB IP datagram."""
LARGE_POOL_COUNT = 512
"""Buffers of the driver's large pool: a receive burst (64) plus the stack's segments in flight
to the device in one flush (each TSO segment is one of these until ``tx_burst`` frees it)."""

_FLAG_NAMES = {IFF_TAP: "IFF_TAP", IFF_NO_PI: "IFF_NO_PI", IFF_VNET_HDR: "IFF_VNET_HDR",
               IFF_MULTI_QUEUE: "IFF_MULTI_QUEUE"}

_PERM_MSG = "opening /dev/net/tun needs root or CAP_NET_ADMIN"


class TapDriver(Driver):
    """A TAP device with ``queues`` queues, frames carried with a virtio_net_hdr.

    Receive path choice (measured on this machine, kernel 6.18, Python 3.11: 1514-byte UDP frames
    queued into the TAP by a kernel socket, then drained back-to-back; CPU time per frame including
    pool alloc/free and the header unpack; three runs of 50 rounds x 2000 frames, variants
    interleaved)::

        readv(fd, [pkt.view[headroom - hdrsize:]])          in place   2.40 / 2.06 / 2.23 us
        readv(fd, [hdr_buf, pkt.view[headroom:]])           scatter    2.41 / 2.11 / 2.32 us
        readv(fd, [hdr_buf, pkt.view[headroom:], spill1])   scatter+1  2.43 / 2.11 / 2.28 us
        os.read(fd, 4096) + copy into the buffer            (earlier)  2.23 to 2.39 us

    The syscall dominates. The single-iovec in-place read won 4 of 5 paired runs (two earlier
    shorter runs included) by 0.5 to 4 percent, and it is the simpler one, so it is used: the
    header is read into the headroom right in front of the frame and parsed there. A frame larger
    than the buffer is detected by the read filling it completely (tun truncates and discards the
    rest); the pool is checked at construction to hold MTU-sized frames with room to spare, so a
    legitimate frame never fills it.

    ``rx_burst`` marks ``pkt.csum_valid`` when the header says NEEDS_CSUM or DATA_VALID (the frame
    needs no checksum verification; with NEEDS_CSUM the checksum field is only partial), and copies
    the gso fields. ``tx_burst`` writes the header into the packet's headroom right in front of the
    frame and hands header + frame to one ``write`` — one syscall per frame, no copy.

    In the compiled build the driver is a ``cdef class`` (``tap.pxd``): typed fields, and each
    frame is one libc ``read``/``write`` straight into/out of the packet's buffer (:func:`_read`,
    :func:`_write`) where the pure build calls ``os.readv``/``os.write`` on a memoryview slice.
    """

    def __init__(
        self,
        name: str = "aiostack0",
        *,
        queues: int = 1,
        pool: PacketPool | None = None,
        mtu: int = 1500,
        mac: bytes | str | None = None,
        vnet_hdr: bool = True,
        offloads: Iterable[str] = ("csum", "tso", "gro"),
        host_addr: str | None = None,
        create: bool = True,
        vnet_hdr_size: int = vnet.HDR_SIZE,
    ) -> None:
        """Open (creating if needed) TAP ``name`` with ``queues`` queues and configure its kernel
        side: MTU, link up and, if given, ``host_addr`` (CIDR, e.g. ``"10.77.0.1/24"``).

        ``create=False`` requires the device to exist already (a persistent TAP made by
        ``ip tuntap add``) instead of creating it. ``vnet_hdr_size`` is 10 or 12.
        """
        self._fds: list[int] = []
        self._others: list[int] = []
        self._closed = False
        self.queue_index: int | None = None
        """The TAP queue a driver made by :meth:`take_queue` serves (its queue 0); None otherwise."""
        if not 1 <= queues <= MAX_TAP_QUEUES:
            raise ValueError(f"queues must be in 1..{MAX_TAP_QUEUES}, not {queues}")
        check_ifname(name)
        host_iface = ipaddress.ip_interface(host_addr) if host_addr is not None else None
        offloads = tuple(offloads)
        unknown = [o for o in offloads if o not in SUPPORTED_OFFLOADS]
        if unknown:
            raise ValueError(f"unsupported offloads {unknown}; supported: {list(SUPPORTED_OFFLOADS)}")
        if ("tso" in offloads or "gro" in offloads) and "csum" not in offloads:
            raise ValueError("offloads 'tso' and 'gro' need 'csum' (segments carry partial checksums)")
        if not vnet_hdr:
            offloads = ()
        self.pool = pool if pool is not None else PacketPool()
        if mtu < 68:
            raise ValueError(f"mtu {mtu} is below the IPv4 minimum of 68")
        if mtu + ETH_HLEN + VLAN_HLEN > self.pool.mtu_capacity:
            raise ValueError(
                f"mtu {mtu} needs {mtu + ETH_HLEN + VLAN_HLEN}-byte frames but the pool's buffers hold "
                f"{self.pool.mtu_capacity} after the headroom"
            )
        self.vnet_hdr = vnet_hdr
        self.hdr_size = vnet.check_size(vnet_hdr_size) if vnet_hdr else 0
        if self.pool.headroom < self.hdr_size:
            raise ValueError(f"pool headroom {self.pool.headroom} < virtio_net_hdr size {self.hdr_size}")
        if not create and not Path("/sys/class/net", name).exists():
            raise FileNotFoundError(f"TAP device {name!r} does not exist (create=False)")

        self.mtu = mtu
        self.mac = parse_unicast_mac(mac) if mac is not None else random_mac()
        self.num_queues = queues
        self.host_addr = host_addr
        self._counters = [QueueCounters() for _ in range(queues)]

        flags = IFF_TAP | IFF_NO_PI
        if vnet_hdr:
            flags |= IFF_VNET_HDR
        if queues > 1:
            flags |= IFF_MULTI_QUEUE
        tun_offloads = TUN_F_CSUM if "csum" in offloads else 0
        if "gro" in offloads:
            tun_offloads |= TUN_F_TSO4
        self.large_pool: PacketPool | None = None
        if "tso" in offloads or "gro" in offloads:
            self.large_pool = PacketPool(
                count=LARGE_POOL_COUNT, size=self.pool.headroom + LARGE_FRAME + 64, headroom=self.pool.headroom,
                lazy=True,
            )
        try:
            for _ in range(queues):
                fd, name = self._open_queue(name, flags)  # "tap%d" comes back as the real name
                self._fds.append(fd)
                if vnet_hdr:
                    fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", self.hdr_size))
                    # An int argument (not a pointer): tun.c reads it as the flags themselves.
                    fcntl.ioctl(fd, TUNSETOFFLOAD, tun_offloads)
            self.name = name
            self.ifindex = self._configure_kernel_side(name, mtu, host_iface)
        except BaseException:
            self.close()
            raise
        csum = bool(tun_offloads & TUN_F_CSUM)
        self.offloads = Offloads(
            rx_csum=csum, tx_csum=csum, tso="tso" in offloads, gro=bool(tun_offloads & TUN_F_TSO4)
        )
        self._gro = self.offloads.gro  # read once per receive burst

    # -- setup ------------------------------------------------------------------------------
    @staticmethod
    def _open_queue(name: str, flags: int) -> tuple[int, str]:
        """Open one queue: a non-blocking fd attached to TAP ``name``; returns (fd, actual name)."""
        try:
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except PermissionError as e:
            raise PermissionError(e.errno, f"{_PERM_MSG}: {e.strerror}", TUN_PATH) from None
        except FileNotFoundError as e:
            raise FileNotFoundError(e.errno, f"{TUN_PATH} is missing (modprobe tun)", TUN_PATH) from None
        try:
            features = struct.unpack("I", fcntl.ioctl(fd, TUNGETFEATURES, b"\0" * 4))[0]
            missing = [n for f, n in _FLAG_NAMES.items() if flags & f and not features & f]
            if missing:
                raise OSError(
                    errno.EOPNOTSUPP,
                    f"the kernel's tun driver lacks {', '.join(missing)} (TUNGETFEATURES={features:#x})",
                )
            try:
                res = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), flags))
            except PermissionError as e:
                raise PermissionError(e.errno, f"{_PERM_MSG}: TUNSETIFF {name!r}: {e.strerror}") from None
            except OSError as e:
                if e.errno == errno.EINVAL:
                    raise OSError(
                        e.errno,
                        f"TUNSETIFF {name!r} flags {flags:#x}: {e.strerror} (is {name!r} an existing "
                        "device of another kind or opened with different flags?)",
                    ) from None
                if e.errno == errno.EBUSY:
                    raise OSError(e.errno, f"TUNSETIFF {name!r}: {e.strerror} (already attached)") from None
                raise
        except BaseException:
            os.close(fd)
            raise
        return fd, _IFREQ.unpack(res)[0].rstrip(b"\0").decode()

    @classmethod
    def _configure_kernel_side(
        cls, name: str, mtu: int, host_iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None
    ) -> int:
        """Run :meth:`_netlink_configure`; from a thread of its own when this thread is already running
        an event loop, because pyroute2's synchronous API drives an asyncio loop of its own and refuses
        to start one inside a running loop (a driver opened from a coroutine)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return cls._netlink_configure(name, mtu, host_iface)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(cls._netlink_configure, name, mtu, host_iface).result()

    @staticmethod
    def _netlink_configure(
        name: str, mtu: int, host_iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None
    ) -> int:
        """MTU, link up and the host address, through rtnetlink (pyroute2). Returns the ifindex.

        pyroute2 is imported here, not at module level: only opening a device needs it, and its
        import takes ~220 ms here (``python -X importtime``), which importers of this module that
        never open a device need not pay."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise OSError(errno.ENODEV, f"TAP {name!r} vanished before it could be configured")
            idx = int(found[0])
            ipr.link("set", index=idx, mtu=mtu)
            if host_iface is not None:
                family = socket.AF_INET6 if host_iface.version == 6 else socket.AF_INET
                try:
                    ipr.addr(
                        "add", index=idx, address=str(host_iface.ip), prefixlen=host_iface.network.prefixlen,
                        family=family,
                    )
                except NetlinkError as e:
                    if e.code != errno.EEXIST:
                        raise
            ipr.link("set", index=idx, state="up")
        return idx

    # -- data path --------------------------------------------------------------------------
    def rx_burst(self, queue: int, max_count: int) -> list[Packet]:
        """Up to ``max_count`` frames from ``queue``; never blocks. Counted drops:
        ``pool_exhausted``, ``frame_too_big`` (filled the whole buffer, so possibly truncated: tun
        discards what does not fit), other read errors by errno name."""
        if self._closed:
            raise OSError(errno.EBADF, f"TAP {self.name!r} is closed")
        fd = self._fds[queue]
        c: QueueCounters = self._counters[queue]
        # With GRO a frame may be up to 64 KB and its size is unknown before the read.
        pool = self.large_pool if self._gro and self.large_pool is not None else self.pool
        headroom = pool.headroom
        hsz = self.hdr_size
        at = headroom - hsz  # the header lands in the headroom, the frame exactly at headroom
        full = pool.size - at  # a read this long may have been cut short
        compiled = _COMPILED
        readv = os.readv
        unpack = vnet.HDR.unpack_from
        out: list[Packet] = []
        nbytes = 0
        for _ in range(max_count):
            pkt = pool.try_alloc()
            if pkt is None:
                c.drop("pool_exhausted")
                break
            # One read(2) straight into the buffer: libc's in the compiled build (tap.pxd),
            # os.readv on a memoryview slice in the pure one. n < 0 is -errno.
            if compiled:
                n = _c_read(fd, pkt.buf, at)  # noqa: F821 - C inline, tap.pxd
            else:
                try:
                    n = readv(fd, [pkt.view[at:]])
                except OSError as e:
                    n = -(e.errno or _EIO)
            if n < 0:
                pkt.free()
                if n == -_EAGAIN:
                    break
                if n == -_EBADF:
                    raise OSError(_EBADF, os.strerror(_EBADF))
                c.drop(errno_reason(OSError(-n, os.strerror(-n))))
                break
            if n >= full or n <= hsz:
                pkt.free()
                c.drop("frame_too_big" if n >= full else "short_read")
                continue
            pkt.end = at + n
            pkt.queue = queue
            if hsz:
                if compiled:
                    parse_into(pkt, at)  # byte reads, a C call
                else:  # the same, where one struct call is the cheapest spelling
                    flags, gso_type, hdr_len, gso_size, _cs, _co = unpack(pkt.buf, at)
                    if flags & 3:  # NEEDS_CSUM | DATA_VALID: nothing to verify
                        pkt.csum_valid = True
                    if gso_type:
                        pkt.gso_type = gso_type
                        pkt.gso_size = gso_size
                        pkt.hdr_len = hdr_len
            nbytes += n - hsz
            out.append(pkt)
        if out:
            c.rx_packets += len(out)
            c.rx_bytes += nbytes
        return out

    def tx_burst(self, queue: int, packets: list[Packet]) -> int:
        """Write every packet to ``queue`` (one ``write`` each) and free them all; returns how many
        the kernel took. Counted drops: ``tx_queue_full`` (EAGAIN), ``no_headroom`` (no room for
        the virtio_net_hdr in front of the frame), other errors by errno name (``eio``, ...)."""
        if self._closed:
            for pkt in packets:
                pkt.free()
            raise OSError(errno.EBADF, f"TAP {self.name!r} is closed")
        fd = self._fds[queue]
        c: QueueCounters = self._counters[queue]
        hsz = self.hdr_size
        compiled = _COMPILED
        write = os.write
        sent = 0
        nbytes = 0
        for pkt in packets:
            start = pkt.start
            end = pkt.end
            if hsz:
                # The header goes into the headroom right in front of the frame (what
                # pkt.prepend(hsz) would do, without moving start: the packet is freed next).
                hstart = start - hsz
                if hstart < 0:
                    c.drop("no_headroom")
                    pkt.free()
                    continue
                pack_into(pkt.buf, hstart, pkt, hsz)
            else:
                hstart = start
                if pkt.csum_start >= 0:
                    # No device to finish it: do what the kernel's skb_checksum_help does.
                    complete_csum(pkt.buf, start, end, pkt.csum_start, pkt.csum_offset)
            # One write(2) of header + frame: libc's in the compiled build (tap.pxd), os.write
            # on a memoryview slice in the pure one. tun takes a frame whole or not at all.
            if compiled:
                err = _c_write(fd, pkt.buf, hstart, end)  # noqa: F821 - C inline, tap.pxd
            else:
                try:
                    write(fd, pkt.view[hstart:end])
                    err = 0
                except OSError as e:
                    err = e.errno or _EIO
            if err == 0:
                sent += 1
                nbytes += end - start
            elif err == _EAGAIN:
                c.drop("tx_queue_full")
            else:
                c.drop(errno_reason(OSError(err, os.strerror(err))))
            pkt.free()
        c.tx_packets += sent
        c.tx_bytes += nbytes
        return sent

    def take_queue(self, queue: int, pool: PacketPool | None = None) -> TapDriver:
        """A driver owning only ``queue`` of this TAP, for the process that serves it (a reactor
        forked after the parent opened every queue): same name, MAC, MTU and offloads, its own
        pools and counters. The fds of the other queues are closed in the new driver's process
        only if it calls :meth:`close_others` — the parent keeps them all, so a queue stays
        attached while its reactor restarts."""
        if not 0 <= queue < len(self._fds):
            raise ValueError(f"queue {queue} is not one of {len(self._fds)}")
        d = TapDriver.__new__(TapDriver)
        d.name = self.name
        d.mac = self.mac
        d.mtu = self.mtu
        d.offloads = self.offloads
        d._gro = self._gro
        d.vnet_hdr = self.vnet_hdr
        d.hdr_size = self.hdr_size
        d.host_addr = self.host_addr
        d.ifindex = self.ifindex
        d.pool = pool if pool is not None else PacketPool()
        d.large_pool = None
        if self.large_pool is not None:
            d.large_pool = PacketPool(count=LARGE_POOL_COUNT, size=self.large_pool.size,
                                      headroom=d.pool.headroom, lazy=True)
        d._fds = [self._fds[queue]]
        d._others = [fd for i, fd in enumerate(self._fds) if i != queue]
        d._closed = False
        d.num_queues = 1
        d.queue_index = queue
        d._counters = [QueueCounters()]
        return d

    def close_others(self) -> None:
        """Close (in this process) the fds of the queues :meth:`take_queue` left out."""
        for fd in self._others:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._others = []

    def fileno(self, queue: int) -> int:
        return self._fds[queue]

    def counters(self, queue: int) -> QueueCounters:
        return self._counters[queue]

    def close(self) -> None:
        """Close every queue fd (idempotent). A non-persistent TAP disappears with its last fd."""
        fds, self._fds = self._fds, []
        self._closed = True
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<TapDriver {getattr(self, 'name', '?')} queues={self.num_queues} offloads={self.offloads}>"
