"""Reactors whose device, not the flow hash, picks the queue of every frame (AF_XDP without
``--xdp-peer``): a TCP segment that reaches a reactor without its connection is offered to the
others (aiostack/cores.py ``offer_strays``, TcpLayer.on_stray) before anyone answers it with a
reset. Sans-I/O stacks on a virtual clock, wired as cores.py wires the reactors, the channels
replaced by queues delivered in order."""

from __future__ import annotations

from collections import deque
from typing import Any

import dpkt
import pytest

from aiostack.config import options_from_mapping
from aiostack.cores import STRAY_BACKLOG, device_steers, offer_strays
from aiostack.tcp.layer import TcpLayer
from framecraft import PEER_IP, STACK_IP, Harness, eth, ip4

SECRET = bytes(range(32))  # one host secret for every reactor, as cores.host_secret() gives them
PORT = 80


class Post:
    """Every channel's messages, delivered in the order sent when :meth:`run` is called."""

    def __init__(self) -> None:
        self.queue: deque[tuple[int, str, tuple[Any, ...]]] = deque()
        self.handlers: dict[int, dict[str, Any]] = {}

    def run(self) -> int:
        n = 0
        while self.queue:
            core, name, args = self.queue.popleft()
            self.handlers[core][name](*args)
            n += 1
        return n


class End:
    """One core's end of the channel to ``core`` (what cores.py uses of ring.Channel)."""

    def __init__(self, post: Post, core: int) -> None:
        self.post = post
        self.core = core
        self.backlog = 0

    def send(self, name: str, *args: Any) -> None:
        self.post.queue.append((self.core, name, args))


class Reactor:
    def __init__(self, k: int, n: int, post: Post) -> None:
        self.h = Harness(seed=k + 1)
        self.h.learn_peer()
        self.h.ip.steer_to(k, n)
        self.tcp = TcpLayer(self.h.ip, secret=SECRET)
        self.lst = self.tcp.listen(0, PORT)
        self.out: list[dpkt.tcp.TCP] = []
        self.channels = {j: End(post, j) for j in range(n) if j != k}
        post.handlers[k] = {"stray": offer_strays(k, n, self.tcp, self.channels, self.feed)}

    def feed(self, frame: bytes) -> None:
        self.out += [dpkt.ethernet.Ethernet(f).data.data for f in self.h.feed(frame)]

    def advance(self, seconds: float) -> None:
        self.out += [dpkt.ethernet.Ethernet(f).data.data for f in self.h.advance(seconds)]

    def flags(self) -> list[int]:
        return [seg.flags for seg in self.out]


def cluster(n: int) -> tuple[list[Reactor], Post]:
    post = Post()
    return [Reactor(k, n, post) for k in range(n)], post


def segment(flags: int, seq: int, ack: int = 0, data: bytes = b"", *, sport: int = 40000, dport: int = PORT) -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=65535, data=data)
    return eth(ip4(tcp, proto=6, src=PEER_IP, dst=STACK_IP))


ACK, SYN, PSH, RST = dpkt.tcp.TH_ACK, dpkt.tcp.TH_SYN, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_RST


def establish(r: Reactor) -> tuple[int, int]:
    """A handshake with reactor ``r``: (the peer's next seq, ours)."""
    r.feed(segment(SYN, 1000))
    (synack,) = r.out
    assert synack.flags == SYN | ACK
    r.feed(segment(ACK, 1001, synack.seq + 1))
    r.out.clear()
    return 1001, synack.seq + 1


@pytest.mark.parametrize("n", [2, 3])
def test_a_segment_on_the_wrong_reactor_reaches_its_connection(n: int) -> None:
    reactors, post = cluster(n)
    owner, wrong = reactors[0], reactors[1]
    seq, ack = establish(owner)
    conn = owner.lst.accept()
    assert conn is not None
    wrong.feed(segment(ACK | PSH, seq, ack, b"hello"))  # the peer's queue changed under it
    assert wrong.out == [] and wrong.tcp.stats["stray_handed_over"] == 1
    assert post.run() == n - 1  # to the owner, round the others in between
    assert conn.recv(100, owner.h.now) == b"hello"
    owner.advance(0.5)  # (a delayed ACK)
    assert owner.flags() == [ACK] and owner.out[0].ack == seq + 5  # the owner's ACK, nobody's RST
    assert all(r.out == [] for r in reactors[1:])
    assert all(r.tcp.stats["resets_sent"] == 0 and r.tcp.drops["tcp_listen_bad_ack"] == 0 for r in reactors)
    # the owner's connection does not travel: its segments stay on its own reactor
    owner.feed(segment(ACK | PSH, seq + 5, ack, b"again"))
    assert post.run() == 0 and conn.recv(100, owner.h.now) == b"again"


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("dport", [PORT, 9999])  # at a listener (bad ACK), at no socket at all
def test_a_segment_for_no_connection_anywhere_gets_one_reset(n: int, dport: int) -> None:
    reactors, post = cluster(n)
    first = reactors[1]
    first.feed(segment(ACK | PSH, 5000, 7000, b"stray", dport=dport))
    assert post.run() == n - 1  # once round the others, never back to where it came in
    last = reactors[0]  # the one before the origin
    assert last.flags() == [RST] and last.out[0].seq == 7000  # RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>
    assert sum(r.tcp.stats["resets_sent"] for r in reactors) == 1
    assert all(r.out == [] for r in reactors if r is not last)
    assert sum(r.tcp.stats["stray_handed_over"] for r in reactors) == n - 1


def test_a_stray_reset_reaches_its_connection() -> None:
    reactors, post = cluster(2)
    owner, wrong = reactors
    seq, _ = establish(owner)
    conn = owner.lst.accept()
    assert conn is not None
    wrong.feed(segment(RST, seq))  # at the other reactor's listener
    post.run()
    assert conn.state.name == "CLOSED" and wrong.tcp.drops["tcp_listen_rst"] == 0


def test_a_full_channel_drops_the_stray_without_a_reset() -> None:
    reactors, post = cluster(2)
    wrong = reactors[1]
    wrong.channels[0].backlog = STRAY_BACKLOG
    wrong.feed(segment(ACK, 5000, 7000, dport=9999))
    assert post.run() == 0 and wrong.out == []
    assert wrong.tcp.drops["stray_channel_full"] == 1 and wrong.tcp.stats["resets_sent"] == 0


def test_a_syn_is_never_offered() -> None:
    reactors, post = cluster(2)
    reactors[1].feed(segment(SYN, 1000))  # a new connection is the reactor's the device chose
    assert post.run() == 0 and reactors[1].flags() == [SYN | ACK]


@pytest.mark.parametrize(
    ("options", "steers"),
    [
        ({"driver": "xdp", "iface": "xd0", "cores": 2}, True),
        ({"driver": "xdp", "iface": "xd0", "cores": 2, "xdp_peer": "xd1"}, False),  # the flow hash steers
        ({"driver": "xdp", "iface": "xd0", "cores": 1}, False),
        ({"driver": "tap", "iface": "aiostack0", "cores": 2}, False),
        ({"driver": "packet", "iface": "pk0", "cores": 2}, False),
    ],
)
def test_only_a_device_that_does_not_steer_by_the_flow_hash_hands_strays_over(
    options: dict[str, Any], steers: bool
) -> None:
    assert device_steers(options_from_mapping({**options, "addr": "10.0.0.2/24"})) is steers
