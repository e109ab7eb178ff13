"""The fault wrapper: seeded loss, duplication, corruption, reordering and delay on a virtual clock."""

from __future__ import annotations

import math
import struct

import pytest

from aiostack.drivers.fault import FaultProfile, FaultWrapper
from aiostack.drivers.memory import MemoryLink, MemoryPort


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def frame(dst: bytes, src: bytes, i: int, size: int = 60) -> bytes:
    body = struct.pack("!I", i) + bytes((i * 7 + k) & 0xFF for k in range(size - 18))
    return dst + src + b"\x88\xb5" + body


def seq_of(data: bytes) -> int:
    return struct.unpack_from("!I", data, 14)[0]


MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"


def rx_setup(rx: FaultProfile, seed: int = 0) -> tuple[MemoryPort, MemoryPort, FaultWrapper, FakeClock]:
    """a -> b, with b's receive side impaired; fixed MACs so runs compare byte for byte."""
    link = MemoryLink()
    a, b = link.port(mac=MAC_A), link.port(mac=MAC_B)
    clock = FakeClock()
    return a, b, FaultWrapper(b, rx=rx, seed=seed, clock=clock), clock


def send(a: MemoryPort, dst: bytes, seqs) -> None:
    a.tx_burst(0, [a.pool.packet_from(frame(dst, a.mac, i)) for i in seqs])


def drain(fw, queue: int = 0, n: int = 1024) -> list[bytes]:
    out = []
    for pkt in fw.rx_burst(queue, n):
        out.append(pkt.tobytes())
        pkt.free()
    return out


def run_rx(rx: FaultProfile, total: int, seed: int = 0, batch: int = 100, step: float = 0.0) -> tuple:
    """Push ``total`` frames through an rx-impaired port; return (received frames, wrapper, ports)."""
    a, b, fw, clock = rx_setup(rx, seed)
    got: list[bytes] = []
    for start in range(0, total, batch):
        send(a, b.mac, range(start, min(total, start + batch)))
        got += drain(fw)
        clock.t += step
    clock.t += 10.0  # long after every hold
    while fw.pending():
        got += drain(fw)
    return got, fw, a, b


# -- the profile ------------------------------------------------------------------------------


def test_profile_validation():
    FaultProfile()
    FaultProfile(loss=1.0, duplicate=0.0, reorder=1, corrupt=0.5, delay=0.2, jitter=0.1)
    for bad in (
        {"loss": -0.01},
        {"loss": 1.01},
        {"duplicate": 2},
        {"reorder": -1},
        {"corrupt": 1.5},
        {"delay": -0.001},
        {"jitter": -1},
        {"jitter": math.nan},
        {"delay": math.inf},
        {"reorder_hold": -1},
        {"loss": "0.1"},
        {"loss": True},
    ):
        with pytest.raises(ValueError):
            FaultProfile(**bad)
    assert not FaultProfile().active
    assert FaultProfile(jitter=0.001).active


# -- behaviour --------------------------------------------------------------------------------


def test_inactive_wrapper_passes_frames_through():
    a, b, fw, _ = rx_setup(FaultProfile())
    assert (fw.mac, fw.pool, fw.mtu, fw.num_queues) == (b.mac, b.pool, b.mtu, b.num_queues)
    assert fw.fileno(0) == b.fileno(0)
    send(a, b.mac, range(5))
    assert [seq_of(f) for f in drain(fw)] == list(range(5))
    assert fw.fault_counters == {"rx_frames": 5, "rx_delivered": 5}
    assert fw.next_deadline() is None
    assert fw.stats()["queue0"]["rx_packets"] == 5
    fw.close()
    a.close()


def test_ten_percent_loss():
    got, fw, a, b = run_rx(FaultProfile(loss=0.1), 10_000)
    fc = fw.fault_counters
    assert 850 <= fc["rx_loss"] <= 1150
    assert len(got) == fc["rx_delivered"] == 10_000 - fc["rx_loss"]
    seqs = [seq_of(f) for f in got]
    assert seqs == sorted(seqs)  # loss alone keeps order
    assert b.pool.available == b.pool.count  # lost frames went back to the pool
    fw.close()
    a.close()


def test_counters_add_up_under_every_impairment():
    prof = FaultProfile(loss=0.1, duplicate=0.1, reorder=0.1, corrupt=0.05, delay=0.002, jitter=0.001)
    got, fw, a, b = run_rx(prof, 5000, batch=50, step=0.0005)
    fc = fw.fault_counters
    assert fc["rx_frames"] == 5000
    assert fc["rx_delivered"] + fc["rx_loss"] == fc["rx_frames"] + fc["rx_duplicate"]
    assert len(got) == fc["rx_delivered"]
    for name in ("rx_loss", "rx_duplicate", "rx_reorder", "rx_corrupt", "rx_delay"):
        assert fc[name] > 0, name
    assert fc["rx_delay"] == fc["rx_frames"] - fc["rx_loss"] + fc["rx_duplicate"]  # all delayed
    assert fw.pending() == 0 and fw.next_deadline() is None
    assert b.pool.available == b.pool.count  # no buffer leaked, duplicates included
    assert fw.stats()["fault"] == dict(fc)
    fw.close()
    a.close()


def test_corruption_flips_exactly_one_bit():
    a, b, fw, _ = rx_setup(FaultProfile(corrupt=1.0), seed=3)
    sent = {i: frame(b.mac, a.mac, i, size=60 + i) for i in range(300)}
    a.tx_burst(0, [a.pool.packet_from(f) for f in sent.values()])
    got = drain(fw)
    assert len(got) == 300 and fw.fault_counters["rx_corrupt"] == 300
    positions = set()
    for i, data in enumerate(got):
        orig = sent[i]
        assert len(data) == len(orig)
        diff = [(k, x ^ y) for k, (x, y) in enumerate(zip(orig, data, strict=True)) if x != y]
        assert len(diff) == 1
        pos, xor = diff[0]
        assert xor & (xor - 1) == 0  # a single bit
        positions.add(pos)
    assert min(positions) < 14  # headers are fair game
    fw.close()
    a.close()


def test_pure_delay_holds_until_deadline_and_keeps_order():
    a, b, fw, clock = rx_setup(FaultProfile(delay=0.010))
    t0 = clock.t
    send(a, b.mac, range(5))
    assert drain(fw) == []
    assert fw.next_deadline() == pytest.approx(t0 + 0.010)
    clock.t = t0 + 0.004
    send(a, b.mac, range(5, 8))
    assert drain(fw) == []  # picked up now: due at t0 + 0.014
    clock.t = t0 + 0.0099
    assert drain(fw) == []
    clock.t = t0 + 0.010
    assert [seq_of(f) for f in drain(fw)] == [0, 1, 2, 3, 4]
    assert fw.next_deadline() == pytest.approx(t0 + 0.014)
    clock.t = t0 + 0.0139
    assert drain(fw) == []
    clock.t = t0 + 0.020
    assert [seq_of(f) for f in drain(fw)] == [5, 6, 7]
    assert fw.next_deadline() is None
    assert fw.fault_counters["rx_delay"] == 8
    fw.close()
    a.close()


def test_jitter_releases_within_bounds_and_may_reorder():
    delay, jitter = 0.010, 0.005
    a, b, fw, clock = rx_setup(FaultProfile(delay=delay, jitter=jitter), seed=11)
    t0 = clock.t
    sent_at: dict[int, float] = {}
    released_at: dict[int, float] = {}
    order: list[int] = []
    tick = 0.0005
    for step in range(400):
        clock.t = t0 + step * tick
        if step % 2 == 0:
            i = step // 2
            send(a, b.mac, [i])
            sent_at[i] = clock.t
        for data in drain(fw):
            released_at[seq_of(data)] = clock.t
            order.append(seq_of(data))
        deadline = fw.next_deadline()
        assert deadline is None or deadline > clock.t  # everything due has been released
    clock.t += 1
    for data in drain(fw):
        released_at[seq_of(data)] = clock.t
        order.append(seq_of(data))
    assert set(released_at) == set(sent_at)
    for i, t in sent_at.items():
        if released_at[i] < t0 + 399 * tick:  # released during the paced run
            assert t + delay - jitter <= released_at[i] < t + delay + jitter + tick
    assert order != sorted(order)  # jitter of ±5 ms over 1 ms spacing overtakes
    fw.close()
    a.close()


def test_reorder_swaps_with_the_next_frame():
    a, b, fw, clock = rx_setup(FaultProfile(reorder=1.0, reorder_hold=0.002))
    send(a, b.mac, range(6))
    assert [seq_of(f) for f in drain(fw)] == [1, 0, 3, 2, 5, 4]
    send(a, b.mac, [6])
    assert drain(fw) == []  # held, waiting for a successor
    assert fw.next_deadline() == pytest.approx(clock.t + 0.002)
    send(a, b.mac, [7])
    assert [seq_of(f) for f in drain(fw)] == [7, 6]  # released after the next one
    send(a, b.mac, [8])
    assert drain(fw) == []
    clock.t += 0.001
    assert drain(fw) == []
    clock.t += 0.001
    assert [seq_of(f) for f in drain(fw)] == [8]  # no successor came: released by the hold time
    assert fw.fault_counters["rx_reorder"] == 5
    fw.close()
    a.close()


def test_duplicates_and_burst_limit():
    a, b, fw, clock = rx_setup(FaultProfile(duplicate=1.0))
    send(a, b.mac, range(10))
    first = fw.rx_burst(0, 4)
    assert len(first) == 4
    assert fw.next_deadline() == clock.t  # more frames await rx_burst
    assert all(p.pool is b.pool for p in first)
    rest = []
    while fw.pending() or b.pending(0):
        batch = fw.rx_burst(0, 4)
        assert 0 < len(batch) <= 4
        rest += batch
    seqs = [seq_of(p.tobytes()) for p in first + rest]
    assert seqs == [i for i in range(10) for _ in (0, 1)]
    assert len({id(p) for p in first + rest}) == 20
    for p in first + rest:
        p.free()
    assert fw.fault_counters["rx_duplicate"] == 10
    assert b.pool.available == b.pool.count
    fw.close()
    a.close()


def test_duplicate_fails_softly_when_pool_is_empty():
    from aiostack.drivers import PacketPool

    small = MemoryPort(pool=PacketPool(count=3))
    link = MemoryLink()
    link.attach(small)
    sender = link.port()
    fw = FaultWrapper(small, rx=FaultProfile(duplicate=1.0), clock=FakeClock())
    send(sender, small.mac, range(3))  # fills the pool: no buffer left for copies
    got = drain(fw)
    assert len(got) == 3
    fc = fw.fault_counters
    assert fc["rx_duplicate_failed"] == 3 and fc["rx_duplicate"] == 0
    fw.close()
    sender.close()


def test_same_seed_same_result_other_seed_other_result():
    prof = FaultProfile(loss=0.2, duplicate=0.1, reorder=0.2, corrupt=0.1)
    one, fw1, a1, _ = run_rx(prof, 1000, seed=42)
    two, fw2, a2, _ = run_rx(prof, 1000, seed=42)
    three, fw3, a3, _ = run_rx(prof, 1000, seed=43)
    assert one == two
    assert fw1.fault_counters == fw2.fault_counters
    assert one != three
    for fw, a in ((fw1, a1), (fw2, a2), (fw3, a3)):
        fw.close()
        a.close()


def test_result_does_not_depend_on_extra_empty_polls():
    prof = FaultProfile(loss=0.3, reorder=0.3)
    a1, b1, fw1, _ = rx_setup(prof, seed=5)
    a2, b2, fw2, _ = rx_setup(prof, seed=5)
    got1, got2 = [], []
    for start in range(0, 200, 20):
        send(a1, b1.mac, range(start, start + 20))
        send(a2, b2.mac, range(start, start + 20))
        got1 += drain(fw1)
        for _ in range(3):
            got2 += drain(fw2)  # idle polls draw no random numbers
    assert got1 == got2
    for fw, a in ((fw1, a1), (fw2, a2)):
        fw.close()
        a.close()


def test_tx_direction_loss_and_delay():
    a, b = MemoryLink.pair()
    clock = FakeClock()
    fw = FaultWrapper(a, tx=FaultProfile(loss=0.5), seed=1, clock=clock)
    sent = fw.tx_burst(0, [fw.pool.packet_from(frame(b.mac, a.mac, i)) for i in range(1000)])
    fc = fw.fault_counters
    assert 400 <= fc["tx_loss"] <= 600
    assert sent == fc["tx_delivered"] == 1000 - fc["tx_loss"] == b.pending(0)
    assert a.counters(0).tx_packets == sent
    assert a.pool.available == a.pool.count
    assert "rx_loss" not in fc

    fw.set_profile(tx=FaultProfile(delay=0.005))
    while b.pending(0):
        for p in b.rx_burst(0, 1024):
            p.free()
    t0 = clock.t
    assert fw.tx_burst(0, [fw.pool.packet_from(frame(b.mac, a.mac, i)) for i in range(3)]) == 0
    assert b.pending(0) == 0
    assert fw.next_deadline() == pytest.approx(t0 + 0.005)
    clock.t = t0 + 0.005
    assert fw.rx_burst(0, 8) == []  # an idle reactor's poll releases held transmit frames
    assert b.pending(0) == 3
    assert [seq_of(p.tobytes()) for p in b.rx_burst(0, 8)] == [0, 1, 2]
    assert fw.pending() == 0
    fw.close()
    b.close()


def test_tx_release_by_later_tx_burst():
    a, b = MemoryLink.pair()
    clock = FakeClock()
    fw = FaultWrapper(a, tx=FaultProfile(delay=0.001), clock=clock)
    fw.tx_burst(0, [fw.pool.packet_from(frame(b.mac, a.mac, 0))])
    clock.t += 0.002
    assert fw.tx_burst(0, [fw.pool.packet_from(frame(b.mac, a.mac, 1))]) == 1  # releases frame 0
    clock.t += 0.002
    assert fw.tx_burst(0, []) == 1
    assert [seq_of(p.tobytes()) for p in b.rx_burst(0, 8)] == [0, 1]
    fw.close()
    b.close()


def test_close_frees_held_frames():
    a, b, fw, _ = rx_setup(FaultProfile(delay=1.0, reorder=0.5))
    send(a, b.mac, range(20))
    assert drain(fw) == []
    assert fw.pending() == 20
    fw.close()
    fw.close()
    assert fw.fault_counters["rx_discarded"] == 20
    assert b.closed
    assert b.pool.available == b.pool.count
    a.close()


def test_multi_queue_lanes_are_separate():
    a, b = MemoryLink.pair(num_queues=2)
    clock = FakeClock()
    fw = FaultWrapper(b, rx=FaultProfile(delay=0.001), clock=clock)
    # non-flow frames land on queue 0 only; queue 1 stays empty
    send(a, b.mac, range(4))
    assert drain(fw, queue=0) == []  # picked up and held
    clock.t += 0.001
    assert drain(fw, queue=1) == []
    assert fw.pending() == 4
    assert [seq_of(f) for f in drain(fw, queue=0)] == [0, 1, 2, 3]
    fw.close()
    a.close()
