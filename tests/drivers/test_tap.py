"""TAP driver: virtio_net_hdr packing, and interop with the real kernel through a TAP device.

Every TAP lives in a namespace made by the ``netns`` fixture: the driver runs in a child process
inside it (tests/drivers/tap_probe.py answers ARP, ICMP echo and UDP echo with hand-made frames),
and the kernel clients (ping, UDP sockets) run in the same namespace. Addresses are 10.77.0.0/24,
inside the namespace only. Every wait is bounded.
"""

from __future__ import annotations

import json
import select
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dpkt
import pytest

from aiostack.drivers import tap as tap_module
from aiostack.drivers import vnet
from aiostack.drivers.buffers import PacketPool
from aiostack.drivers.mac import parse_unicast_mac as parse_mac
from aiostack.drivers.mac import random_mac
from aiostack.drivers.tap import TapDriver
from aiostack.netns import NetNS
from conftest import need_tool

PROBE = Path(__file__).with_name("tap_probe.py")
HOST = "10.77.0.1"
STACK = "10.77.0.2"
TAP = "aiotap0"


# -- virtio_net_hdr (no privileges needed) -----------------------------------------------------
def test_vnet_pack_parse_roundtrip() -> None:
    pool = PacketPool(count=2)
    pkt = pool.alloc()
    pkt.csum_start, pkt.csum_offset = 34, 6
    pkt.gso_type, pkt.gso_size, pkt.hdr_len = vnet.VIRTIO_NET_HDR_GSO_TCPV4, 1448, 66
    buf = bytearray(b"\xee" * 16)
    vnet.pack_into(buf, 2, pkt)
    assert vnet.parse(buf, 2) == (vnet.VIRTIO_NET_HDR_F_NEEDS_CSUM, 1, 66, 1448, 34, 6)
    assert buf[:2] == b"\xee\xee" and buf[12:] == b"\xee" * 4  # exactly 10 bytes written
    assert bytes(buf[2:12]) == struct.pack("<BBHHHH", 1, 1, 66, 1448, 34, 6)

    buf = bytearray(b"\xee" * 12)
    vnet.pack_into(buf, 0, pkt, vnet.HDR_SIZE_MRG)
    assert buf[10:12] == b"\x00\x00"  # num_buffers zeroed, not left stale
    pkt.free()


def test_vnet_pack_plain_packet_is_all_zero() -> None:
    pool = PacketPool(count=1)
    pkt = pool.alloc()
    pkt.gso_size = 1000  # stale without a gso_type: must not reach the kernel
    buf = bytearray(b"\xff" * 10)
    vnet.pack_into(buf, 0, pkt)
    assert buf == bytearray(10)
    assert not vnet.needs_no_verify(0)
    assert vnet.needs_no_verify(vnet.VIRTIO_NET_HDR_F_DATA_VALID)
    assert vnet.needs_no_verify(vnet.VIRTIO_NET_HDR_F_NEEDS_CSUM)
    pkt.free()


def test_vnet_header_size_checked() -> None:
    assert vnet.check_size(10) == 10 and vnet.check_size(12) == 12
    with pytest.raises(ValueError):
        vnet.check_size(11)


@pytest.mark.parametrize("payload", [b"", b"x", b"hello world!", bytes(range(256)) * 3])
def test_complete_csum_matches_dpkt(payload: bytes) -> None:
    """The software fallback for NEEDS_CSUM gives the checksum dpkt computes for the datagram."""
    src, dst = bytes([10, 77, 0, 2]), bytes([10, 77, 0, 1])
    udp = dpkt.udp.UDP(sport=7, dport=4000, data=payload)
    udp.ulen = 8 + len(payload)
    ip = dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_UDP, data=udp)
    expected = bytes(dpkt.ethernet.Ethernet(dst=b"\x02" * 6, src=b"\x04" * 6, data=ip))
    # the partial form: checksum field = folded pseudo-header sum, not inverted
    frame = bytearray(expected)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp.ulen)
    s = int.from_bytes(pseudo, "big") % 0xFFFF or 0xFFFF
    struct.pack_into("!H", frame, 40, s)
    vnet.complete_csum(frame, 0, len(frame), 34, 6)
    assert bytes(frame) == expected


# -- constructor checks that fail before touching /dev/net/tun --------------------------------
def test_mac_helpers() -> None:
    for _ in range(50):
        mac = random_mac()
        assert len(mac) == 6 and mac[0] & 0x02 and not mac[0] & 0x01
    assert parse_mac("02:00:00:00:00:01") == b"\x02\x00\x00\x00\x00\x01"
    with pytest.raises(ValueError):
        parse_mac("01:00:5e:00:00:01")  # multicast
    with pytest.raises(ValueError):
        parse_mac(b"\x02\x00")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "x" * 16},
        {"name": "a/b"},
        {"name": "a:b"},
        {"name": "a b"},
        {"host_addr": "10.77.0.300/24"},
        {"queues": 0},
        {"queues": 257},
        {"offloads": ("tso4",)},
        {"mtu": 9000},
        {"mtu": 67},
        {"vnet_hdr_size": 11},
        {"pool": PacketPool(count=1, size=1600, headroom=192)},
    ],
)
def test_bad_arguments_rejected(kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # This test runs in the root namespace: should validation ever let a call through, it must
    # fail to open anything rather than create a TAP here.
    monkeypatch.setattr(tap_module, "TUN_PATH", "/nonexistent/aiostack-test/tun")
    with pytest.raises(ValueError):
        TapDriver(**kwargs)


# -- through the kernel, inside a namespace -------------------------------------------------
class ProbeProc:
    """The probe child: JSON lines on stdout, stopped by closing its stdin."""

    def __init__(self, ns: NetNS, *args: str) -> None:
        self.proc = ns.popen(
            [sys.executable, str(PROBE), "--name", TAP, "--host-addr", f"{HOST}/24", "--addr", STACK,
             "--seconds", "60", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.ready = self.read_event("ready", timeout=20)

    def read_event(self, event: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if msg.get("event") == event:
                return msg
        self.proc.kill()
        _, err = self.proc.communicate(timeout=10)
        pytest.fail(f"probe gave no {event!r} event within {timeout}s; stderr:\n{err.decode()}")

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        stats = self.read_event("stats", timeout=15)
        self.proc.wait(timeout=10)
        assert self.proc.returncode == 0
        return stats


@contextmanager
def probe(ns: NetNS, *args: str) -> Iterator[ProbeProc]:
    p = ProbeProc(ns, *args)
    try:
        yield p
    finally:
        if p.proc.poll() is None:
            p.proc.terminate()
            try:
                p.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait(timeout=5)


def udp_snmp(ns: NetNS) -> dict[str, int]:
    """The namespace's Udp counters from /proc/net/snmp (per network namespace)."""
    snmp = ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    lines = [ln.split() for ln in snmp if ln.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))


UDP_CLIENT = textwrap.dedent(
    """
    import json, socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 0))
    s.settimeout(0.5)
    got = []
    deadline = time.monotonic() + 10
    for msg in sys.argv[3:]:
        s.sendto(msg.encode(), (sys.argv[2], 7))
    want = {m for m in sys.argv[3:] if not m.startswith("bad")}
    while want - set(got) and time.monotonic() < deadline:
        try:
            got.append(s.recv(2048).decode())
        except TimeoutError:
            for m in want - set(got):  # UDP may be lost before ARP settles: resend, bounded
                s.sendto(m.encode(), (sys.argv[2], 7))
    try:  # give a wrongly accepted "bad" echo a moment to show up
        s.settimeout(0.3)
        while True:
            got.append(s.recv(2048).decode())
    except TimeoutError:
        pass
    print(json.dumps(got))
    """
)


def run_udp_client(ns: NetNS, *messages: str) -> list[str]:
    res = ns.run([sys.executable, "-c", UDP_CLIENT, HOST, STACK, *messages], timeout=30)
    return json.loads(res.stdout)


def test_ping_through_tap(netns: NetNS) -> None:
    """The kernel pings the probe: ARP and ICMP echo round-trip through rx_burst/tx_burst."""
    need_tool("ping", "iputils-ping")
    with probe(netns) as p:
        assert p.ready["name"] == TAP
        assert p.ready["offloads"] == {"rx_csum": True, "tx_csum": True}
        # the stack's MAC is its own, not the kernel TAP interface's
        kernel_mac = netns.run(["cat", f"/sys/class/net/{TAP}/address"]).stdout.strip()
        assert p.ready["mac"] != kernel_mac
        assert int(p.ready["mac"][:2], 16) & 0x03 == 0x02  # locally administered unicast
        link = netns.run(["ip", "-o", "addr", "show", "dev", TAP]).stdout
        assert f"inet {HOST}/24" in link
        assert "UP" in netns.run(["ip", "-o", "link", "show", "dev", TAP]).stdout

        res = netns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", STACK], check=False, timeout=30)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "3 received" in res.stdout
        stats = p.finish()

    seen = stats["seen"]
    assert seen["arp_replies"] >= 1
    assert seen["icmp_replies"] >= 3
    assert seen["csum_bad"] == 0
    c = stats["counters"][0]
    assert c["rx_packets"] >= 4 and c["tx_packets"] >= 4  # ARP + 3 echoes each way (+ gratuitous ARP)
    assert c["rx_bytes"] >= 4 * 42 and c["tx_bytes"] >= 4 * 42
    assert c["rx_packets"] == seen["frames"]
    assert c["drops"] == {}
    assert stats["pool_available"] == stats["pool_count"]  # every packet went back to the pool


@pytest.mark.parametrize(
    "args",
    [(), ("--vnet-hdr-size", "12"), ("--no-vnet-hdr",)],
    ids=["vnet10", "vnet12", "no-vnet-hdr"],
)
def test_udp_checksum_offload(netns: NetNS, args: tuple[str, ...]) -> None:
    """The probe echoes UDP with a partial checksum (csum_start/csum_offset): with a vnet header the
    kernel finishes it (NEEDS_CSUM), without one the driver does it in software. A kernel socket
    drops bad-checksum UDP, so receipt proves the checksum came out right; the ``bad`` datagram
    (partial sum, no NEEDS_CSUM) must be dropped and counted in InCsumErrors, which shows the
    kernel really verified. Frames from the kernel arrive csum_valid (partial, NEEDS_CSUM) with
    offloads on, and with a correct checksum otherwise."""
    with probe(netns, *args) as p:
        before = udp_snmp(netns)
        got = run_udp_client(netns, "bad-1", "good-1", "good-2")
        assert "good-1" in got and "good-2" in got
        assert "bad-1" not in got

        deadline = time.monotonic() + 5
        while udp_snmp(netns)["InCsumErrors"] <= before["InCsumErrors"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert udp_snmp(netns)["InCsumErrors"] > before["InCsumErrors"]
        stats = p.finish()

    seen = stats["seen"]
    assert seen["udp_echoed"] >= 2 and seen["udp_bad_sent"] >= 1
    assert seen["csum_bad"] == 0  # every frame was csum_valid or verified correct
    if "--no-vnet-hdr" in args:
        assert p.ready["offloads"] == {"rx_csum": False, "tx_csum": False}
        assert seen["csum_valid"] == 0 and seen["csum_ok"] >= 3
    else:
        assert p.ready["hdr_size"] == (int(args[1]) if args else 10)
        # the kernel's UDP datagrams leave it with a partial checksum (TUN_F_CSUM negotiated)
        assert seen["csum_valid_udp"] >= 3
    assert stats["counters"][0]["drops"] == {}


def test_multi_queue(netns: NetNS) -> None:
    """queues=2 opens two distinct fds on one multi-queue TAP, and traffic flows on them."""
    need_tool("ping", "iputils-ping")
    with probe(netns, "--queues", "2") as p:
        fds = p.ready["fds"]
        assert len(fds) == 2 and fds[0] != fds[1]
        flags = int(netns.run(["cat", f"/sys/class/net/{TAP}/tun_flags"]).stdout, 16)
        assert flags & 0x0100  # IFF_MULTI_QUEUE
        assert flags & 0x4000  # IFF_VNET_HDR
        res = netns.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", STACK], check=False, timeout=30)
        assert res.returncode == 0, res.stdout + res.stderr
        got = run_udp_client(netns, "mq-1", "mq-2")
        assert {"mq-1", "mq-2"} <= set(got)
        stats = p.finish()
    counters = stats["counters"]
    assert len(counters) == 2
    assert sum(c["rx_packets"] for c in counters) == stats["seen"]["frames"]
    assert sum(c["tx_packets"] for c in counters) >= 5  # gratuitous ARP, ARP, 2 echo, 2 UDP
    # the TAP disappears with its last fd (non-persistent)
    assert netns.run(["ip", "link", "show", TAP], check=False).returncode != 0


def test_frame_too_big_counted(netns: NetNS) -> None:
    """A frame larger than a pool buffer is dropped and counted, not delivered truncated (without
    GRO: with it, reads go to 64 KB buffers)."""
    need_tool("ping", "iputils-ping")
    with probe(netns, "--offloads", "csum") as p:
        res = netns.run(["ping", "-c", "1", "-W", "2", STACK], check=False, timeout=30)
        assert res.returncode == 0, res.stdout + res.stderr
        # behind the driver's back: a kernel MTU above what the pool's 2 KB buffers hold
        netns.run(["ip", "link", "set", TAP, "mtu", "4000"])
        res = netns.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "-s", "3000", STACK],
                        check=False, timeout=30)
        assert res.returncode != 0  # never answered: the frames were too big to receive
        stats = p.finish()
    assert stats["counters"][0]["drops"].get("frame_too_big", 0) >= 2
    assert stats["seen"]["big_frames"] == 0
    assert stats["pool_available"] == stats["pool_count"]


CLOSE_SCRIPT = textwrap.dedent(
    """
    import json, os
    from aiostack.drivers.tap import TapDriver
    d = TapDriver("aiotap1", queues=3, mtu=1400)
    out = {"fds": [d.fileno(q) for q in range(3)], "exists": os.path.exists("/sys/class/net/aiotap1"),
           "mtu": int(open("/sys/class/net/aiotap1/mtu").read()),
           "up": int(open("/sys/class/net/aiotap1/flags").read(), 16) & 1,
           "empty": d.rx_burst(0, 8) == [] and d.rx_burst(2, 8) == []}
    d.close(); d.close()
    out["gone"] = not os.path.exists("/sys/class/net/aiotap1")
    try:
        d.rx_burst(0, 1)
    except OSError as e:
        out["closed_errno"] = e.errno
    print(json.dumps(out))
    """
)


def test_open_configure_close(netns: NetNS) -> None:
    """Without host_addr the link still comes up with the MTU set; close() is idempotent and
    removes the (non-persistent) device; a closed driver raises EBADF."""
    res = netns.run([sys.executable, "-c", CLOSE_SCRIPT], timeout=30)
    out = json.loads(res.stdout)
    assert len(set(out["fds"])) == 3
    assert out["exists"] and out["mtu"] == 1400 and out["up"] == 1 and out["empty"]
    assert out["gone"]
    assert out["closed_errno"] == 9  # EBADF


def test_missing_cap_net_admin_message(netns: NetNS) -> None:
    """Without CAP_NET_ADMIN the error says what is needed."""
    setpriv = need_tool("setpriv", "util-linux")
    script = "from aiostack.drivers.tap import TapDriver\nTapDriver('aiotap2')"
    res = netns.run(
        [setpriv, "--bounding-set", "-net_admin", "--inh-caps", "-net_admin", sys.executable, "-c", script],
        check=False, timeout=30,
    )
    assert res.returncode != 0
    assert "PermissionError" in res.stderr
    assert "needs root or CAP_NET_ADMIN" in res.stderr
