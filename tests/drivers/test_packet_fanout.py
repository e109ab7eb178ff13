"""AF_PACKET deterministic steering (``fanout="steer"``): a PACKET_FANOUT_EBPF group whose program
is the steering hash, and queues taken over by forked processes (``take_queue``/``close_others``).

Like tests/drivers/test_packet.py (whose helpers these tests use): a veth pair in a namespace made
by the ``netns`` fixture, ``pk0`` the driver's end (no address), ``pk1`` the kernel's
(10.77.0.1/24); the driver's sockets are opened inside the namespace, kernel sockets too, and
traffic only goes to 10.77.0.0/24 there. Every wait is bounded; nothing asserts a duration.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import time
import traceback
from collections.abc import Callable, Iterator

import dpkt
import pytest
from test_packet import DRV, HOST, PEER, STACK, kernel_socket, mac_of, make_veth, neighbour, recv_all, udp_to_kernel

from aiostack.drivers.packet import PacketDriver, in_netns
from aiostack.drivers.steering import (
    ETH_HLEN,
    SK_BUFF_PROTOCOL,
    SteeringProgram,
    frame_hash,
    queue_for,
    steering_instructions,
)
from aiostack.netns import NetNS
from conftest import need

HOST_IP = int.from_bytes(socket.inet_aton(HOST), "big")
STACK_IP = int.from_bytes(socket.inet_aton(STACK), "big")
DPORT = 7000


# -- the program (no kernel needed) ---------------------------------------------------------------
def test_fanout_program_differs_from_the_tap_one_only_where_it_must() -> None:
    """Same length, same jumps and arithmetic; only the IPv4 test (skb->protocol from the context
    instead of the ethertype with LD_ABS) and the packet offsets (14 less) differ."""
    tap, fan = steering_instructions(ETH_HLEN), steering_instructions(0)
    assert tap == steering_instructions()  # the TAP program is the default, unchanged
    assert len(tap) == len(fan)
    insn = struct.Struct("<BBhi")
    tap_i = [insn.unpack_from(tap, i) for i in range(0, len(tap), 8)]
    fan_i = [insn.unpack_from(fan, i) for i in range(0, len(fan), 8)]
    ld_abs, ld_ind, ldx_mem_w = 0x20, 0x40, 0x61
    differing = []
    for n, (t, f) in enumerate(zip(tap_i, fan_i, strict=True)):
        if t == f:
            continue
        differing.append(n)
        if t[0] & 0xE7 in (ld_abs, ld_ind) and f[0] == t[0] and n > 1:  # a packet load (W/H/B)
            assert (f[1], f[2], f[3]) == (t[1], t[2], t[3] - ETH_HLEN)
    assert tap_i[1] == (ld_abs | 0x08, 0, 0, 12)  # LD_ABS|H: the ethertype
    assert fan_i[1] == (ldx_mem_w, 0x10, SK_BUFF_PROTOCOL, 0)  # LDX|MEM|W r0 = *(u32 *)(r1 + 16)
    assert (tap_i[2][3], fan_i[2][3]) == (0x0800, socket.htons(0x0800))
    assert tap_i[2][:3] == fan_i[2][:3]  # the same jump to "return 0"
    loads = [n for n, t in enumerate(tap_i) if n > 1 and t[0] & 0xE7 in (ld_abs, ld_ind)]
    assert differing == [1, 2, *loads]
    with pytest.raises(ValueError):
        steering_instructions(1)


# -- kernel ---------------------------------------------------------------------------------------
def _need_root() -> None:
    need(None if os.geteuid() == 0 else "needs root (loading a BPF program)")


def test_program_kinds_are_not_interchangeable() -> None:
    _need_root()
    with SteeringProgram(fanout=True) as fan, SteeringProgram() as tap:
        assert (fan.net_offset, tap.net_offset) == (0, ETH_HLEN)
        with pytest.raises(ValueError):
            fan.attach(0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s, pytest.raises(ValueError):
            tap.attach_fanout(s)


@pytest.fixture
def veth(netns: NetNS) -> NetNS:
    make_veth(netns)
    return netns


def expected_queue(frame: bytes, queues: int) -> tuple[str, int]:
    """The kind of ``frame`` and its queue, read from its fields with dpkt (independently of
    frame_hash, which is checked against it)."""
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    if not isinstance(ip, dpkt.ip.IP):
        return ("arp" if eth.type == dpkt.ethernet.ETH_TYPE_ARP else "other"), 0
    src, dst = int.from_bytes(ip.src, "big"), int.from_bytes(ip.dst, "big")
    if ip.p in (6, 17) and not (ip.mf or ip.offset):
        return {6: "tcp", 17: "udp"}[ip.p], queue_for(queues, src, dst, ip.data.sport, ip.data.dport)
    return ("icmp" if ip.p == 1 else "ip"), queue_for(queues, src, dst)


def drain_all(d: PacketDriver) -> list[tuple[int, bytes]]:
    out = []
    for q in range(d.num_queues):
        while pkts := d.rx_burst(q, 64):
            for p in pkts:
                out.append((q, p.tobytes()))
                p.free()
    return out


def icmp_echo(seq: int) -> bytes:
    return bytes(dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, data=dpkt.icmp.ICMP.Echo(id=0x51, seq=seq, data=b"ping")))


def send_kernel_mix(ns: NetNS, udp_ports: range, tcp_ports: range, pings: int) -> None:
    """UDP datagrams and TCP SYNs from chosen ports, ICMP echo requests to STACK, and one to an
    address nobody has (the kernel asks for it with an ARP request first)."""
    for port in udp_ports:
        u = kernel_socket(ns)
        u.bind((HOST, port))
        u.sendto(b"u%d" % port, (STACK, DPORT))
        u.close()
    for port in tcp_ports:
        t = kernel_socket(ns, socket.SOCK_STREAM)
        t.setblocking(False)
        t.bind((HOST, port))
        with contextlib.suppress(BlockingIOError):
            t.connect((STACK, 80))
        t.close()  # in SYN_SENT: gone without a RST
    raw = in_netns(ns.name, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    with raw:
        for seq in range(pings):
            raw.sendto(icmp_echo(seq), (STACK, 0))
        raw.sendto(icmp_echo(99), ("10.77.0.99", 0))


def collect_mix(d: PacketDriver, *, udp: int, tcp: int, icmp: int, timeout: float = 10.0) -> dict[str, object]:
    """Every frame from every queue until the mix is in (bounded); where each landed."""
    queues = d.num_queues
    per_queue = [0] * queues
    kinds: dict[str, set[object]] = {"udp": set(), "tcp": set(), "icmp": set(), "arp": set()}
    wrong: list[tuple[str, int, int]] = []
    hash_disagrees = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = drain_all(d)
        for q, frame in got:
            kind, want = expected_queue(frame, queues)
            hash_disagrees += frame_hash(frame) % queues != want
            if want != q:
                wrong.append((kind, q, want))
            per_queue[q] += 1
            e = dpkt.ethernet.Ethernet(frame)
            key = (e.data.data.sport if kind in ("udp", "tcp") else e.data.data.data.seq if kind == "icmp" else 0)
            kinds.setdefault(kind, set()).add(key)
        if all(len(kinds[k]) >= n for k, n in (("udp", udp), ("tcp", tcp), ("icmp", icmp), ("arp", 1))):
            break
        if not got:
            time.sleep(0.002)
    return {"wrong": wrong, "per_queue": per_queue, "hash_disagrees": hash_disagrees,
            "counts": {k: len(v) for k, v in kinds.items()}}


@pytest.mark.parametrize("queues", [2, 4])
def test_kernel_frames_land_on_the_queue_the_hash_names(veth: NetNS, queues: int) -> None:
    with PacketDriver(DRV, netns=veth.name, queues=queues, fanout="steer") as d:
        assert d.fanout == "steer" and d.num_queues == queues
        neighbour(veth, d.mac)
        drain_all(d)  # whatever the link said while the group was being built
        send_kernel_mix(veth, range(20000, 20200), range(30000, 30050), pings=3)
        out = collect_mix(d, udp=200, tcp=50, icmp=3)
        assert out["wrong"] == []
        assert out["hash_disagrees"] == 0
        assert out["counts"] == {"udp": 200, "tcp": 50, "icmp": 3, "arp": 1}
        assert all(out["per_queue"]), out["per_queue"]  # every queue got flows
        assert d.counters(0).drops == {}


def test_member_order_survives_the_link_going_down_and_up(veth: NetNS) -> None:
    """NETDEV_DOWN unlinks every member, NETDEV_UP relinks them in socket-creation order — queue
    order: steering stays exact."""
    with PacketDriver(DRV, netns=veth.name, queues=4, fanout="steer") as d:
        veth.run(["ip", "link", "set", DRV, "down"])
        veth.run(["ip", "link", "set", DRV, "up"])
        deadline = time.monotonic() + 10
        while "LOWER_UP" not in veth.run(["ip", "-o", "link", "show", DRV]).stdout and time.monotonic() < deadline:
            time.sleep(0.01)
        neighbour(veth, d.mac)
        drain_all(d)
        send_kernel_mix(veth, range(21000, 21100), range(31000, 31020), pings=2)
        out = collect_mix(d, udp=100, tcp=20, icmp=2)
        assert out["wrong"] == [] and out["counts"] == {"udp": 100, "tcp": 20, "icmp": 2, "arp": 1}
        assert all(out["per_queue"])


# -- one queue per process ------------------------------------------------------------------------------
class Child:
    """``body(ready)`` in a forked process; ``ready()`` tells the parent it may go on, and what
    ``body`` returns comes back as JSON. Ended by its pid if the test fails first."""

    def __init__(self, body: Callable[[Callable[[], None]], dict[str, object]]) -> None:
        ready_r, ready_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(ready_r)
                os.close(out_r)

                def ready() -> None:
                    os.write(ready_w, b"r")

                result = body(ready)
                os.write(out_w, json.dumps(result).encode())
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(ready_w)
        os.close(out_w)
        self.pid, self._ready, self._out = pid, ready_r, out_r

    def wait_ready(self, timeout: float = 20) -> None:
        r, _, _ = select.select([self._ready], [], [], timeout)
        assert r and os.read(self._ready, 1) == b"r", "the child did not get ready"

    def result(self, timeout: float = 30) -> dict[str, object]:
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self._out], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._out, 65536) if r else b""
            if not chunk:
                break
            data += chunk
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        assert status == 0, f"the child failed ({status:#x})"
        return json.loads(data)  # type: ignore[no-any-return]

    def end(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0
        for fd in (self._ready, self._out):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def child(body: Callable[[Callable[[], None]], dict[str, object]]) -> Iterator[Child]:
    c = Child(body)
    try:
        yield c
    finally:
        c.end()


def ports_for(queue: int, queues: int, count: int, start: int) -> list[int]:
    ports = [p for p in range(start, start + 2000) if queue_for(queues, HOST_IP, STACK_IP, p, DPORT) == queue]
    return ports[:count]


def serve_queue(d: PacketDriver, queue: int, want: int, peer: bytes, tag: bytes) -> Callable[..., dict[str, object]]:
    """A child's body: take ``queue``, close the rest, read ``want`` frames, send one datagram."""

    def body(ready: Callable[[], None]) -> dict[str, object]:
        t = d.take_queue(queue)
        t.close_others()
        frames: list[bytes] = []

        def read() -> bool:
            pkts = t.rx_burst(0, 64)
            for p in pkts:
                frames.append(p.tobytes())
                p.free()
            return bool(pkts)

        read()  # resync now: a ring full of stale frames is dropped before the parent sends more
        ready()
        deadline = time.monotonic() + 15
        while len(frames) < want and time.monotonic() < deadline:
            if not read():
                time.sleep(0.001)
        sent = t.tx_burst(0, [t.pool.packet_from(udp_to_kernel(t.mac, peer, tag))])
        return {
            "payloads": [f[42:].decode() for f in frames],
            "hash_ok": all(frame_hash(f) % d.num_queues == queue for f in frames),
            "sent": sent,
            "drops": t.counters(0).drops,
            "queue_index": t.queue_index,
            "num_queues": t.num_queues,
        }

    return body


@pytest.mark.parametrize("ring", ["v2", "v3"])
def test_forked_process_takes_a_queue_and_its_successor_resumes(veth: NetNS, ring: str) -> None:
    """A child owns queue 1 of 3 after close_others: it receives that queue's flows and transmits;
    the parent's other queues keep receiving; a second child (a restart, forked from the same
    stale parent objects) receives at once, past its predecessor's position in the ring — and,
    with V2, past a ring left full of stale frames."""
    Q, K = 3, 1
    # Small rings (V2: 8 slots; V3: 4 blocks of 4 KB), so the ring's position matters.
    with PacketDriver(DRV, netns=veth.name, queues=Q, fanout="steer", rx_ring=ring, rx_frames=8, block_size=4096,
                      offloads=()) as d:
        assert (d._rx[K].nframes, d._rx[K].nblocks) == (8, 4)
        neighbour(veth, d.mac)
        peer = mac_of(veth, PEER)
        drain_all(d)
        sink = kernel_socket(veth)
        sink.bind((HOST, 9000))
        senders: dict[int, socket.socket] = {}

        def send(ports: list[int], label: str) -> list[str]:
            sent = []
            for p in ports:
                if p not in senders:
                    senders[p] = kernel_socket(veth)
                    senders[p].bind((HOST, p))
                payload = f"{label}:{p}"
                senders[p].sendto(payload.encode(), (STACK, DPORT))
                sent.append(payload)
            return sent

        mine = ports_for(K, Q, 6, 22000)
        others = {q: ports_for(q, Q, 3, 22000) for q in range(Q) if q != K}

        def parent_reads(expected: dict[int, list[str]]) -> None:
            got: dict[int, list[str]] = {q: [] for q in expected}
            deadline = time.monotonic() + 10
            while any(len(got[q]) < len(v) for q, v in expected.items()) and time.monotonic() < deadline:
                for q in expected:
                    for p in d.rx_burst(q, 64):
                        got[q].append(p.tobytes()[42:].decode())
                        p.free()
                time.sleep(0.001)
            assert got == expected

        try:
            with child(serve_queue(d, K, len(mine), peer, b"first")) as first:
                first.wait_ready()
                sent_first = send(mine, "a")
                sent_others = {q: send(ports, "a") for q, ports in others.items()}
                res = first.result()
            assert res["payloads"] == sent_first and res["hash_ok"]
            assert (res["queue_index"], res["num_queues"], res["sent"], res["drops"]) == (K, 1, 1, {})
            assert recv_all(sink, 1) == [b"first"]
            parent_reads(sent_others)  # the child's close_others closed nothing of the parent's

            drops = {}
            if ring == "v2":  # nobody reads queue K for a while: its 8 slots fill, the rest is lost
                send(mine * 3, "stale")
                drops = {"stale": 8, "ring_full": 10}
                time.sleep(0.05)  # (only lets the kernel finish: the counts are checked, not times)

            with child(serve_queue(d, K, len(mine), peer, b"second")) as second:
                second.wait_ready()
                sent_second = send(mine, "b")
                sent_others = {q: send(ports, "b") for q, ports in others.items()}
                res = second.result()
            assert res["payloads"] == sent_second and res["hash_ok"]
            assert res["drops"] == drops
            assert recv_all(sink, 1) == [b"second"]
            parent_reads(sent_others)
        finally:
            for s in (sink, *senders.values()):
                s.close()


def test_take_queue_checks(veth: NetNS) -> None:
    with PacketDriver(DRV, netns=veth.name, queues=2, fanout="steer") as d:
        with pytest.raises(ValueError):
            d.take_queue(2)
        assert d.queue_index is None
    with pytest.raises(OSError):
        d.take_queue(0)
