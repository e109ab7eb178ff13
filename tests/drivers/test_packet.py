"""AF_PACKET driver: rings, offloads and counters against the real kernel through a veth pair.

Every veth pair lives in a namespace made by the ``netns`` fixture: ``pk0`` is the driver's end (no
IP address: the driver owns it), ``pk1`` the kernel's (10.77.0.1/24). The driver runs in this test
process with ``netns=`` (its sockets are opened inside the namespace by a short-lived thread; the
process stays in its own), and the kernel-side sockets are opened there the same way
(:func:`~aiostack.drivers.packet.in_netns`). Traffic only goes to 10.77.0.0/24 inside the
namespace. Every wait is bounded.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable

import dpkt
import pytest

from aiostack.drivers import vnet
from aiostack.drivers.buffers import Packet, PacketPool
from aiostack.drivers.packet import PacketDriver, in_netns, set_offload
from aiostack.netns import NetNS

HOST = "10.77.0.1"
STACK = "10.77.0.2"
DRV = "pk0"
PEER = "pk1"
NO_OFFLOADS: tuple[str, ...] = ()
RINGS = ["v2", "v3"]
OFFLOAD_SETS = {"offloads": ("csum", "tso", "gro"), "plain": NO_OFFLOADS}


# -- helpers ---------------------------------------------------------------------------------
def mac_of(ns: NetNS, name: str) -> bytes:
    return bytes.fromhex(ns.run(["cat", f"/sys/class/net/{name}/address"]).stdout.strip().replace(":", ""))


def make_veth(ns: NetNS, *, peer_tso: bool = True) -> None:
    ns.run(["ip", "link", "add", DRV, "type", "veth", "peer", "name", PEER])
    ns.run(["ip", "link", "set", PEER, "up"])
    ns.run(["ip", "addr", "add", f"{HOST}/24", "dev", PEER])
    if not peer_tso:
        set_offload(PEER, "tso", False, netns=ns.name)


@pytest.fixture
def veth(netns: NetNS) -> NetNS:
    make_veth(netns)
    return netns


def open_driver(ns: NetNS, **kw: object) -> PacketDriver:
    return PacketDriver(DRV, netns=ns.name, **kw)  # type: ignore[arg-type]


def kernel_socket(ns: NetNS, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    return in_netns(ns.name, lambda: socket.socket(socket.AF_INET, kind))


def neighbour(ns: NetNS, mac: bytes) -> None:
    """Tell the kernel where STACK is, so it sends without asking (nobody answers its ARP)."""
    ns.run(["ip", "neigh", "replace", STACK, "lladdr", mac.hex(":"), "dev", PEER, "nud", "permanent"])


def collect(d: PacketDriver, want: int, *, queue: int = 0, timeout: float = 5.0) -> list[bytes]:
    """Frames from ``queue`` until ``want`` arrived or ``timeout``; the packets are freed."""
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        pkts = d.rx_burst(queue, 64)
        for p in pkts:
            out.append(p.tobytes())
            p.free()
        if not pkts:
            time.sleep(0.0005)
    return out


def collect_pkts(d: PacketDriver, want: int, timeout: float = 5.0) -> list[Packet]:
    out: list[Packet] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        got = d.rx_burst(0, 64)
        out += got
        if not got:
            time.sleep(0.0005)
    return out


def until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


def udp_to_kernel(src_mac: bytes, dst_mac: bytes, payload: bytes, sport: int = 4000, dport: int = 9000) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = 8 + len(payload)
    ip = dpkt.ip.IP(src=socket.inet_aton(STACK), dst=socket.inet_aton(HOST), p=17, ttl=64, data=u)
    ip.len = 20 + u.ulen
    return bytes(dpkt.ethernet.Ethernet(dst=dst_mac, src=src_mac, data=ip))


def partial_udp(d: PacketDriver, frame: bytes) -> Packet:
    """A pooled copy of ``frame`` whose UDP checksum is left partial (the pseudo-header sum, as the
    stack writes it with tx_csum) and marked for the device to finish."""
    pkt = d.pool.packet_from(frame)
    buf = pkt.buf
    s = pkt.start
    ulen = struct.unpack_from("!H", buf, s + 38)[0]
    pseudo = bytes(buf[s + 26 : s + 34]) + struct.pack("!BBH", 0, 17, ulen)
    folded = int.from_bytes(pseudo, "big") % 0xFFFF or 0xFFFF
    struct.pack_into("!H", buf, s + 40, folded)
    pkt.csum_start, pkt.csum_offset = 34, 6
    return pkt


def udp_checksum_ok(frame: bytes) -> bool:
    ip = dpkt.ethernet.Ethernet(frame).data
    udp = bytes(ip.data)
    pseudo = ip.src + ip.dst + struct.pack("!BBH", 0, 17, len(udp))
    data = pseudo + udp + (b"\0" if len(udp) & 1 else b"")
    return int.from_bytes(data, "big") % 0xFFFF == 0


def recv_all(s: socket.socket, n: int, timeout: float = 5.0) -> list[bytes]:
    s.settimeout(timeout)
    got = []
    try:
        while len(got) < n:
            got.append(s.recv(65536))
    except TimeoutError:
        pass
    return got


# -- argument checks (no privileges, nothing opened) ------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"iface": ""},
        {"iface": "x" * 16},
        {"iface": "a/b"},
        {"iface": "a b"},
        {"queues": 0},
        {"queues": 257},
        {"rx_ring": "v1"},
        {"fanout": "random"},
        {"offloads": ("tso",)},
        {"offloads": ("lro",)},
        {"mtu": 67},
        {"rx_frames": 4},
        {"block_size": 5000},
        {"block_timeout_ms": 0},
        {"mtu": 9000, "pool": PacketPool(count=1)},
        {"pool": PacketPool(count=1, size=2048, headroom=4)},
    ],
)
def test_bad_arguments_rejected(kwargs: dict[str, object]) -> None:
    kwargs = {"iface": DRV, **kwargs}
    with pytest.raises(ValueError):
        PacketDriver(**kwargs)  # type: ignore[arg-type]


def test_not_root_is_a_clear_permission_error() -> None:
    code = (  # import first: an unprivileged user may not be able to read the interpreter's files
        "import os\n"
        "from aiostack.drivers.packet import PacketDriver\n"
        "if os.geteuid() == 0:\n"
        "    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    PacketDriver('lo')\n"
        "except PermissionError as e:\n"
        "    print('PermissionError', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.startswith("PermissionError"), res.stdout + res.stderr
    assert "CAP_NET_RAW" in res.stdout


# -- errors from the kernel ---------------------------------------------------------------------
def test_missing_interface_names_it(netns: NetNS) -> None:
    with pytest.raises(OSError) as info:
        PacketDriver("nosuch0", netns=netns.name)
    assert info.value.errno == errno.ENODEV
    assert "nosuch0" in str(info.value)


def test_non_ethernet_interface_refused(netns: NetNS) -> None:
    with pytest.raises(OSError) as info:
        PacketDriver("lo", netns=netns.name)
    assert "not an Ethernet device" in str(info.value)


def test_missing_namespace(netns: NetNS) -> None:
    with pytest.raises(OSError):
        PacketDriver(DRV, netns=netns.name + "-gone")


# -- setup: link state, MTU, MAC ---------------------------------------------------------------
def test_brings_link_up_reads_mac_and_mtu(veth: NetNS) -> None:
    veth.run(["ip", "link", "set", DRV, "down"])
    veth.run(["ip", "link", "set", DRV, "mtu", "1400"])
    with open_driver(veth) as d:
        assert "UP" in veth.run(["ip", "-o", "link", "show", DRV]).stdout.split(">")[0]
        assert d.mac == mac_of(veth, DRV)
        assert d.mtu == 1400
        assert d.num_queues == 1
        assert d.ignores_outgoing
        assert d.offloads.rx_csum and d.offloads.tx_csum and d.offloads.tso and d.offloads.gro
        assert d.large_pool is not None
    with open_driver(veth, mtu=1500, offloads=NO_OFFLOADS) as d:
        assert d.mtu == 1500
        assert "mtu 1500" in veth.run(["ip", "-o", "link", "show", DRV]).stdout
        assert not (d.offloads.tx_csum or d.offloads.tso or d.offloads.gro) and d.offloads.rx_csum
        assert d.large_pool is None


def test_own_mac_puts_interface_in_promiscuous_mode(veth: NetNS) -> None:
    def promisc() -> bool:
        return bool(int(veth.run(["cat", f"/sys/class/net/{DRV}/flags"]).stdout, 16) & 0x100)

    assert not promisc()
    mac = bytes.fromhex("02aa00000002")
    d = open_driver(veth, mac=mac)
    try:
        assert d.mac == mac and d.kernel_mac == mac_of(veth, DRV)
        assert promisc()
        neighbour(veth, mac)
        k = kernel_socket(veth)
        k.sendto(b"to a foreign MAC", (STACK, 7))
        frames = collect(d, 1)
        assert frames and frames[0][:6] == mac and frames[0].endswith(b"to a foreign MAC")
        k.close()
    finally:
        d.close()
    assert not promisc()


# -- frames both ways ---------------------------------------------------------------------------
@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("offloads", OFFLOAD_SETS.values(), ids=OFFLOAD_SETS.keys())
def test_arp_and_ping_answered_by_kernel(veth: NetNS, ring: str, offloads: tuple[str, ...]) -> None:
    with open_driver(veth, rx_ring=ring, offloads=offloads) as d:
        peer = mac_of(veth, PEER)
        arp = dpkt.arp.ARP(
            op=dpkt.arp.ARP_OP_REQUEST, sha=d.mac, spa=socket.inet_aton(STACK), tha=b"\0" * 6,
            tpa=socket.inet_aton(HOST),
        )
        req = dpkt.ethernet.Ethernet(dst=b"\xff" * 6, src=d.mac, type=dpkt.ethernet.ETH_TYPE_ARP, data=arp)
        assert d.tx_burst(0, [d.pool.packet_from(bytes(req))]) == 1
        frames = collect(d, 1)
        assert len(frames) == 1, frames
        reply = dpkt.ethernet.Ethernet(frames[0])
        assert reply.dst == d.mac and reply.src == peer
        assert reply.data.op == dpkt.arp.ARP_OP_REPLY and reply.data.spa == socket.inet_aton(HOST)

        pings = []
        for seq in range(5):
            echo = dpkt.icmp.ICMP.Echo(id=0x77, seq=seq, data=bytes(range(seq, seq + 56)))
            icmp = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, data=echo)
            ip = dpkt.ip.IP(src=socket.inet_aton(STACK), dst=socket.inet_aton(HOST), p=1, ttl=64, id=seq, data=icmp)
            ip.len = 20 + len(bytes(icmp))
            pings.append(d.pool.packet_from(bytes(dpkt.ethernet.Ethernet(dst=peer, src=d.mac, data=ip))))
        assert d.tx_burst(0, pings) == 5
        pkts = collect_pkts(d, 5)
        assert len(pkts) == 5
        for seq, p in enumerate(pkts):
            e = dpkt.ethernet.Ethernet(p.tobytes())
            ip = e.data
            assert ip.src == socket.inet_aton(HOST) and ip.dst == socket.inet_aton(STACK)
            assert ip.data.type == dpkt.icmp.ICMP_ECHOREPLY
            assert ip.data.data.seq == seq and ip.data.data.data == bytes(range(seq, seq + 56))
            raw = bytes(ip.data)
            assert int.from_bytes(raw + b"\0" * (len(raw) & 1), "big") % 0xFFFF == 0  # ICMP checksum
            assert not p.csum_valid  # the kernel computes ICMP checksums in software: no flag
            p.free()
        c = d.counters(0)
        assert (c.tx_packets, c.rx_packets) == (6, 6)
        assert c.tx_bytes == 42 + 5 * 98 and c.rx_bytes == 42 + 5 * 98
        assert c.drops == {}


@pytest.mark.parametrize("ring", RINGS)
def test_kernel_udp_received_exactly(veth: NetNS, ring: str) -> None:
    """Datagrams from a kernel socket arrive byte for byte, with the kernel's partial-checksum
    verdict (CSUMNOTREADY) as csum_valid; an 8000-byte one arrives as IP fragments."""
    with open_driver(veth, rx_ring=ring) as d:
        neighbour(veth, d.mac)
        k = kernel_socket(veth)
        k.bind((HOST, 5555))
        sizes = [0, 1, 100, 1472, 700]
        for i, n in enumerate(sizes):
            k.sendto(bytes([i]) * n, (STACK, 7000 + i))
        pkts = collect_pkts(d, len(sizes))
        assert len(pkts) == len(sizes)
        for i, (n, p) in enumerate(zip(sizes, pkts, strict=True)):
            e = dpkt.ethernet.Ethernet(p.tobytes())
            assert e.dst == d.mac and e.src == mac_of(veth, PEER)
            ip = e.data
            assert ip.src == socket.inet_aton(HOST) and ip.dst == socket.inet_aton(STACK)
            assert (ip.data.sport, ip.data.dport) == (5555, 7000 + i)
            assert ip.data.data == bytes([i]) * n
            assert len(p) == 42 + n  # veth pads nothing to the Ethernet minimum
            assert p.csum_valid
            assert p.start == d.pool.headroom  # headroom kept for the stack
            p.free()

        k.sendto(b"F" * 8000, (STACK, 7100))
        frags = collect_pkts(d, 6)
        total = b""
        for p in frags:
            ip = dpkt.ethernet.Ethernet(p.tobytes()).data
            assert len(p) <= 14 + 1500
            total += bytes(ip.data) if isinstance(ip.data, dpkt.Packet) else ip.data
            p.free()
        assert len(frags) == 6 and total.endswith(b"F" * 7000)
        k.close()
        assert d.pool.available == d.pool.count


@pytest.mark.parametrize("ring", RINGS)
@pytest.mark.parametrize("offloads", OFFLOAD_SETS.values(), ids=OFFLOAD_SETS.keys())
def test_driver_udp_received_by_kernel(veth: NetNS, ring: str, offloads: tuple[str, ...]) -> None:
    """Frames with complete checksums and frames with partial ones (finished in software, or
    handed to the kernel as NEEDS_CSUM with the csum offload) all reach a kernel socket intact."""
    with open_driver(veth, rx_ring=ring, offloads=offloads) as d:
        k = kernel_socket(veth)
        k.bind((HOST, 9000))
        peer = mac_of(veth, PEER)
        payloads = [bytes([i]) * (i * 97 % 1473) for i in range(40)]
        pkts = []
        for i, pl in enumerate(payloads):
            frame = udp_to_kernel(d.mac, peer, pl)
            pkts.append(partial_udp(d, frame) if i % 2 else d.pool.packet_from(frame))
        assert d.tx_burst(0, pkts) == len(payloads)
        got = recv_all(k, len(payloads))
        assert got == payloads
        k.close()
        assert d.counters(0).drops == {}
        assert d.pool.available == d.pool.count


def test_csum_offload_is_finished_by_the_kernel(veth: NetNS) -> None:
    """Proof for ``tx_csum``: a frame sent with a partial checksum leaves the kernel with the full
    one when the device cannot checksum (tx-csum off on the driver's end: the kernel runs
    skb_checksum_help), and as a CHECKSUM_PARTIAL frame the receiver trusts when it can."""
    with open_driver(veth) as d, PacketDriver(PEER, netns=veth.name, offloads=NO_OFFLOADS) as sniff:
        peer = sniff.mac
        for tx_csum in (False, True):
            set_offload(DRV, "tx-csum", tx_csum, netns=veth.name)
            frame = udp_to_kernel(d.mac, peer, b"checksum me" * 50)
            assert d.tx_burst(0, [partial_udp(d, frame)]) == 1
            pkts = collect_pkts(sniff, 1)
            assert len(pkts) == 1
            seen = pkts[0].tobytes()
            if tx_csum:
                assert pkts[0].csum_valid  # CSUMNOTREADY: partial, vouched for by the kernel
                assert not udp_checksum_ok(seen)
            else:
                assert udp_checksum_ok(seen)
                assert seen == frame  # exactly the checksum dpkt computed
            pkts[0].free()


def test_udp_gso_both_ways(veth: NetNS) -> None:
    """The large-frame paths: a 10000-byte UDP GSO datagram from the kernel arrives whole (GRO:
    queued beside the V2 ring with TP_STATUS_COPY), and one sent as a GSO frame is cut by the
    kernel into 10 datagrams a kernel socket receives."""
    UDP_SEGMENT = 103
    with open_driver(veth) as d:
        neighbour(veth, d.mac)
        k = kernel_socket(veth)
        k.bind((HOST, 9000))
        k.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1000)
        k.sendto(bytes(range(250)) * 40, (STACK, 7000))
        pkts = collect_pkts(d, 1)
        assert len(pkts) == 1
        p = pkts[0]
        assert len(p) == 14 + 20 + 8 + 10000
        assert p.gso_type == vnet.VIRTIO_NET_HDR_GSO_UDP_L4 and p.gso_size == 1000
        assert p.csum_valid
        assert p.tobytes()[42:] == bytes(range(250)) * 40
        assert p.pool is d.large_pool
        p.free()

        payload = os.urandom(10000)
        frame = udp_to_kernel(d.mac, mac_of(veth, PEER), payload)
        pkt = d.large_pool.packet_from(frame)  # type: ignore[union-attr]
        pkt = _as_partial(pkt)
        pkt.gso_type, pkt.gso_size, pkt.hdr_len = vnet.VIRTIO_NET_HDR_GSO_UDP_L4, 1000, 42
        assert d.tx_burst(0, [pkt]) == 1
        got = recv_all(k, 10)
        assert got == [payload[i : i + 1000] for i in range(0, 10000, 1000)]
        k.close()
        c = d.counters(0)
        assert c.drops == {} and c.rx_bytes == 10042 and c.tx_bytes == 10042
        assert d.large_pool.available == d.large_pool.count  # type: ignore[union-attr]


def _as_partial(pkt: Packet) -> Packet:
    buf, s = pkt.buf, pkt.start
    pseudo = bytes(buf[s + 26 : s + 34]) + struct.pack("!BBH", 0, 17, struct.unpack_from("!H", buf, s + 38)[0])
    struct.pack_into("!H", buf, s + 40, int.from_bytes(pseudo, "big") % 0xFFFF or 0xFFFF)
    pkt.csum_start, pkt.csum_offset = 34, 6
    return pkt


@pytest.mark.parametrize("ring", RINGS)
def test_gso_frames_without_gro_are_counted_drops(veth: NetNS, ring: str) -> None:
    UDP_SEGMENT = 103
    with open_driver(veth, rx_ring=ring, offloads=NO_OFFLOADS, block_size=4096) as d:
        neighbour(veth, d.mac)
        k = kernel_socket(veth)
        k.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1000)
        k.sendto(b"x" * 10000, (STACK, 7000))
        k.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 0)
        k.sendto(b"after", (STACK, 7000))
        frames = collect(d, 1)
        assert len(frames) == 1 and frames[0].endswith(b"after")
        assert until(lambda: sum(d.counters(0).drops.values()) == 1)
        assert set(d.counters(0).drops) <= {"truncated", "frame_too_big"}
        k.close()


@pytest.mark.parametrize("offloads", OFFLOAD_SETS.values(), ids=OFFLOAD_SETS.keys())
def test_short_gso_frame_larger_than_a_buffer(veth: NetNS, offloads: tuple[str, ...]) -> None:
    """A GSO frame that fits a V2 slot (slots are rounded up to 2048 bytes) but not a pooled
    buffer of 1600: a large buffer with gro, a counted drop without — never an overflow."""
    UDP_SEGMENT = 103
    pool = PacketPool(count=64, size=192 + 1600)
    with open_driver(veth, pool=pool, offloads=offloads) as d:
        neighbour(veth, d.mac)
        k = kernel_socket(veth)
        k.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 900)
        k.sendto(b"s" * 1700, (STACK, 7000))
        k.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 0)
        k.sendto(b"after", (STACK, 7000))
        pkts = collect_pkts(d, 2 if offloads else 1)
        if offloads:
            assert [len(p) for p in pkts] == [42 + 1700, 42 + 5]
            assert pkts[0].pool is d.large_pool and pkts[0].gso_size == 900
        else:
            assert [p.tobytes()[42:] for p in pkts] == [b"after"]
            assert d.counters(0).drops == {"frame_too_big": 1}
        for p in pkts:
            p.free()
        k.close()


# -- rings: wrap-around, overflow, counters -------------------------------------------------------
@pytest.mark.parametrize("ring", RINGS)
def test_rx_ring_wraps_around(veth: NetNS, ring: str) -> None:
    """Many more frames than the ring has slots (V2) or blocks (V3), over many bursts, in order."""
    # (without gro: with it, V3 blocks are large enough for a 64 KB frame)
    with open_driver(veth, rx_ring=ring, rx_frames=8, block_size=4096, offloads=NO_OFFLOADS) as d:
        assert (d._rx[0].nframes, d._rx[0].nblocks) == (8, 4)  # V2: 2 slots a block; V3: 4 KB blocks
        neighbour(veth, d.mac)
        k = kernel_socket(veth)
        seen: list[int] = []
        for burst in range(40):
            for j in range(6):
                k.sendto(struct.pack("!I", burst * 6 + j), (STACK, 7000))
            for f in collect(d, 6):
                seen.append(struct.unpack("!I", f[42:46])[0])
        assert seen == list(range(240))
        c = d.counters(0)
        assert c.rx_packets == 240 and c.drops == {}
        k.close()


@pytest.mark.parametrize("ring", RINGS)
def test_rx_ring_overflow_counted(veth: NetNS, ring: str) -> None:
    with open_driver(veth, rx_ring=ring, rx_frames=8, block_size=4096, offloads=NO_OFFLOADS) as d:
        neighbour(veth, d.mac)
        k = kernel_socket(veth)
        for i in range(60):
            k.sendto(b"%04d" % i + b"." * 1400, (STACK, 7000))  # 2 frames per 4 KB block in V3
        time.sleep(0.05)
        got = collect(d, 60, timeout=0.5)
        c = d.counters(0)
        assert 0 < len(got) < 60
        assert c.drops["ring_full"] == 60 - len(got)
        assert c.rx_packets == len(got)
        k.close()


@pytest.mark.parametrize("offloads", OFFLOAD_SETS.values(), ids=OFFLOAD_SETS.keys())
def test_tx_ring_wraps_and_fills(veth: NetNS, offloads: tuple[str, ...]) -> None:
    with open_driver(veth, tx_frames=8, offloads=offloads) as d:
        k = kernel_socket(veth)
        k.bind((HOST, 9000))
        peer = mac_of(veth, PEER)
        sent = 0
        for burst in range(30):
            pkts = [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"%d" % (burst * 3 + j))) for j in range(3)]
            sent += d.tx_burst(0, pkts)
        assert sent == 90
        assert recv_all(k, 90) == [b"%d" % i for i in range(90)]
        # one burst larger than the ring: sent in parts as the kernel hands slots back
        pkts = [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"big%d" % i)) for i in range(20)]
        assert d.tx_burst(0, pkts) == 20
        assert recv_all(k, 20) == [b"big%d" % i for i in range(20)]
        # slots the kernel still holds (as while it sends them): what does not fit is counted
        tx = d._tx[0]
        held = [tx.offsets[(tx.pos + 3 + j) % tx.nframes] for j in range(5)]
        for off in held:
            struct.pack_into("<I", tx.view, off, 2)  # TP_STATUS_SENDING
        pkts = [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"held%d" % i)) for i in range(6)]
        assert d.tx_burst(0, pkts) == 3
        assert recv_all(k, 3) == [b"held%d" % i for i in range(3)]
        for off in held:
            struct.pack_into("<I", tx.view, off, 0)  # the kernel's "done": TP_STATUS_AVAILABLE
        c = d.counters(0)
        assert c.drops == {"tx_ring_full": 3}
        assert c.tx_packets == 90 + 20 + 3
        assert d.pool.available == d.pool.count
        assert d.tx_burst(0, [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"again"))]) == 1
        assert recv_all(k, 1) == [b"again"]
        # oversized frames are counted, not sent
        too_big = d.pool.packet_from(udp_to_kernel(d.mac, peer, b"x" * 1600))
        assert d.tx_burst(0, [too_big]) == 0
        assert d.counters(0).drops["frame_too_big"] == 1
        k.close()


def test_tx_on_link_down_counted_and_reclaimed(veth: NetNS) -> None:
    with open_driver(veth) as d:
        peer = mac_of(veth, PEER)
        veth.run(["ip", "link", "set", DRV, "down"])
        pkts = [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"lost")) for _ in range(3)]
        assert d.tx_burst(0, pkts) == 0
        assert d.counters(0).drops == {"enetdown": 3}
        veth.run(["ip", "link", "set", DRV, "up"])
        k = kernel_socket(veth)
        k.bind((HOST, 9000))
        until(lambda: "LOWER_UP" in veth.run(["ip", "-o", "link", "show", DRV]).stdout)
        assert d.tx_burst(0, [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"fresh"))]) == 1
        assert recv_all(k, 1) == [b"fresh"]  # the reclaimed frames were not sent late
        assert recv_all(k, 1, timeout=0.2) == []
        k.close()


def test_pool_exhaustion_leaves_frames_in_the_ring(veth: NetNS) -> None:
    pool = PacketPool(count=4)
    with open_driver(veth, pool=pool, offloads=NO_OFFLOADS) as d:
        neighbour(veth, d.mac)
        k = kernel_socket(veth)
        for i in range(6):
            k.sendto(b"%d" % i, (STACK, 7000))
        time.sleep(0.05)
        held = d.rx_burst(0, 64)
        assert len(held) == 4
        assert d.counters(0).drops == {"pool_exhausted": 1}
        for p in held:
            p.free()
        rest = collect(d, 2)
        assert [f[42:] for f in rest] == [b"4", b"5"]
        k.close()


def test_outgoing_frames_are_not_received(veth: NetNS) -> None:
    """Own transmissions never come back, with or without the qdisc (and its packet taps)."""
    k = kernel_socket(veth)
    k.bind((HOST, 9000))  # so the kernel answers nothing (no ICMP port unreachable, no ARP)
    for bypass in (True, False):
        with open_driver(veth, qdisc_bypass=bypass) as d:
            neighbour(veth, d.mac)
            peer = mac_of(veth, PEER)
            pkts = [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"mine")) for _ in range(50)]
            assert d.tx_burst(0, pkts) == 50
            assert len(recv_all(k, 50)) == 50
            time.sleep(0.05)
            assert d.rx_burst(0, 64) == []
            assert d.counters(0).drops == {}
    k.close()


def test_fileno_polls_readable(veth: NetNS) -> None:
    import select

    with open_driver(veth) as d:
        neighbour(veth, d.mac)
        poller = select.poll()
        poller.register(d.fileno(0), select.POLLIN)
        assert poller.poll(0) == []
        k = kernel_socket(veth)
        k.sendto(b"wake", (STACK, 7000))
        assert poller.poll(2000)
        assert collect(d, 1)[0].endswith(b"wake")
        assert poller.poll(0) == []
        k.close()


def test_close_is_idempotent(veth: NetNS) -> None:
    d = open_driver(veth)
    pkt = d.pool.packet_from(b"\xff" * 60)
    d.close()
    d.close()
    assert d.closed
    with pytest.raises(OSError):
        d.rx_burst(0, 1)
    with pytest.raises(OSError):
        d.tx_burst(0, [pkt])
    assert d.pool.available == d.pool.count  # tx_burst freed it anyway
    # the interface is free again for a new driver
    with open_driver(veth) as d2:
        assert d2.mac == d.mac


# -- several queues ---------------------------------------------------------------------------------
def test_fanout_spreads_flows_over_queues(veth: NetNS) -> None:
    with open_driver(veth, queues=2) as d:
        assert d.num_queues == 2 and d.fileno(0) != d.fileno(1)
        neighbour(veth, d.mac)
        socks = [kernel_socket(veth) for _ in range(24)]
        for rnd in range(3):
            for i, s in enumerate(socks):
                s.sendto(b"%d:%d" % (i, rnd), (STACK, 7000))
        time.sleep(0.05)
        by_queue: dict[int, list[bytes]] = {0: [], 1: []}
        deadline = time.monotonic() + 5
        while sum(map(len, by_queue.values())) < 72 and time.monotonic() < deadline:
            for q in (0, 1):
                for p in d.rx_burst(q, 64):
                    assert p.queue == q
                    by_queue[q].append(p.tobytes()[42:])
                    p.free()
        assert sum(map(len, by_queue.values())) == 72
        assert by_queue[0] and by_queue[1]  # 24 flows: all on one queue has odds 2**-23
        for q, payloads in by_queue.items():  # each flow stays on its queue
            flows = {x.split(b":")[0] for x in payloads}
            other = {x.split(b":")[0] for x in by_queue[1 - q]}
            assert not flows & other
        # both queues transmit; own transmissions reach no queue
        peer = mac_of(veth, PEER)
        k = kernel_socket(veth)
        k.bind((HOST, 9000))
        for q in (0, 1):
            assert d.tx_burst(q, [d.pool.packet_from(udp_to_kernel(d.mac, peer, b"q%d" % q))]) == 1
        assert sorted(recv_all(k, 2)) == [b"q0", b"q1"]
        assert d.rx_burst(0, 8) == [] and d.rx_burst(1, 8) == []
        for s in [*socks, k]:
            s.close()


# -- the namespace helper -------------------------------------------------------------------------------
def test_in_netns_runs_there(veth: NetNS) -> None:
    names = in_netns(veth.name, lambda: [n for _, n in socket.if_nameindex()])
    assert DRV in names and PEER in names
    assert DRV not in [n for _, n in socket.if_nameindex()]  # this thread never moved
