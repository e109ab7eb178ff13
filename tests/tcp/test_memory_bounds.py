"""Per-reactor TCP memory bounds (tcp/memory.py; Linux's tcp_mem/tcp_wmem/tcp_rmem): send
totals with a per-connection floor, receive windows clamped under pressure, a global cap on
out-of-order bytes, and new connections refused above the hard total — each counted."""

from __future__ import annotations

import errno

import pytest

from aiostack.ip import ipv4
from aiostack.tcp.memory import TcpMemory
from aiostack.tcp.receive_buffer import ReceiveBuffer
from aiostack.tcp.send_buffer import SendBuffer
from scenario import PEER_IP, SYN_OPTIONS, Scenario

KB = 1024


def _mem(**kw: int) -> TcpMemory:
    limits = dict(
        sndbuf_total=64 * KB, rcvbuf_total=64 * KB, ooo_total=8 * KB, hard_total=256 * KB, min_per_connection=4 * KB
    )
    limits.update(kw)
    return TcpMemory(**limits)


def test_send_total_limits_writes_and_keeps_a_floor_per_connection() -> None:
    mem = _mem()
    a, b, c = (SendBuffer(1 << 20, mem) for _ in range(3))
    assert a.write(b"x" * 60 * KB) == 60 * KB
    assert b.write(b"x" * 60 * KB) == 4 * KB  # the total is reached: only the floor
    assert mem.stats["snd_limited"] == 1
    assert c.write(b"x" * 2 * KB) == 2 * KB and c.write(b"x" * 9 * KB) == 2 * KB  # floor = 4 KB held
    assert b.space == 0 and c.space == 0
    assert mem.snd_used == 68 * KB == len(a) + len(b) + len(c)
    a.ack(30 * KB)
    assert mem.snd_used == 38 * KB and b.space == 26 * KB
    a.clear()
    b.ack(len(b))
    c.clear()
    assert mem.snd_used == 0


def test_send_total_bound_holds_for_many_connections() -> None:
    """Thousands of writers that are never acknowledged: the total stays within
    sndbuf_total + connections · min_per_connection."""
    mem = _mem()
    bufs = [SendBuffer(1 << 20, mem) for _ in range(2000)]
    for _ in range(3):
        for buf in bufs:
            buf.write(b"y" * 64 * KB)
    assert mem.snd_used == sum(len(b) for b in bufs)
    assert mem.snd_used <= mem.sndbuf_total + len(bufs) * mem.min_per_connection


def test_receive_window_clamped_under_pressure() -> None:
    mem = _mem()
    a = ReceiveBuffer(1000, 1 << 20)
    b = ReceiveBuffer(5000, 1 << 20)
    a.mem = b.mem = mem
    assert a.window == 64 * KB  # clamped to the total already: nothing held yet
    a.add(1000, b"d" * 62 * KB)
    assert mem.rcv_used == 62 * KB
    assert b.window == 4 * KB  # the floor, not the 2 KB left under the total
    assert a.window == 2 * KB
    assert mem.stats["rcv_window_clamped"] >= 2
    assert len(a.read(10 * KB)) == 10 * KB
    assert mem.rcv_used == 52 * KB and b.window == 12 * KB
    assert a.read_into(bytearray(100 * KB)) == 52 * KB
    assert mem.rcv_used == 0 and b.window == 64 * KB


def test_out_of_order_total_drops_the_newcomer() -> None:
    mem = _mem()
    a = ReceiveBuffer(0, 1 << 20)
    b = ReceiveBuffer(0, 1 << 20)
    a.mem = b.mem = mem
    a.add(1000, b"o" * 6 * KB)  # a hole at 0: out of order
    assert mem.ooo_used == 6 * KB and mem.rcv_used == 6 * KB
    b.add(1000, b"o" * 3 * KB)  # would pass the 8 KB total
    assert b.drops["tcp_ooo_mem_limit"] == 1 and b.ooo_bytes == 0
    b.add(1000, b"o" * 2 * KB)
    assert mem.ooo_used == 8 * KB
    a.add(1000 + 6 * KB, b"o" * 1)  # extending an island is held to the total too
    assert a.drops["tcp_ooo_mem_limit"] == 1
    assert a.add(0, b"i" * 1000) == 1000 + 6 * KB  # the hole fills: out of order → readable
    assert mem.ooo_used == 2 * KB and mem.rcv_used == 8 * KB + 1000
    b.fin(1500)  # a FIN below held out-of-order data trims it
    assert mem.ooo_used == 500 and mem.rcv_used == 6 * KB + 1000 + 500


def test_release_gives_back_what_a_closed_connection_held() -> None:
    mem = _mem()
    sb = SendBuffer(1 << 20, mem)
    rb = ReceiveBuffer(0, 1 << 20)
    rb.mem = mem
    sb.write(b"s" * 5000)
    rb.add(0, b"r" * 300)
    rb.add(1000, b"o" * 200)
    mem.release(sb, rb)
    assert (mem.snd_used, mem.rcv_used, mem.ooo_used) == (0, 0, 0)
    rb.read()  # reading what is left after the close is no longer charged
    assert mem.rcv_used == 0


# == through the layer (virtual clock) ============================================================
def _stalled(h: Scenario, data: int) -> None:
    """An established connection whose peer's window is shut, with ``data`` bytes written."""
    h.passive_open(rtt=0.1, win=0)
    h.send(b"z" * data)


def test_layer_charges_send_buffers_and_refuses_new_connections_above_the_hard_total() -> None:
    h = Scenario(mem_sndbuf_total=32 * KB, mem_min_per_connection=4 * KB, mem_hard_total=30 * KB)
    _stalled(h, 100 * KB)
    mem = h.tcp.memory
    assert mem.snd_used == 32 * KB and mem.over_hard_limit
    # A new SYN from another port: refused (no SYN-ACK, no state), counted.
    h.inject("S", seq=0, options=dict(SYN_OPTIONS), sport=50001)
    h.expect_nothing()
    assert h.tcp.drops["tcp_mem_refused"] == 1
    assert len(h.tcp.connections) == 1
    with pytest.raises(OSError) as exc:
        h.tcp.connect(ipv4.aton(PEER_IP), 80, h.now)
    assert exc.value.errno == errno.ENOBUFS and h.tcp.drops["tcp_mem_refused"] == 2
    counters = h.tcp.counters()
    assert counters["memory"]["snd_bytes"] == 32 * KB and counters["drops"]["tcp_mem_refused"] == 2
    # The connection goes: its bytes come back, new connections are accepted again.
    h.abort()
    h.expect("R.")
    assert mem.snd_used == 0 and not mem.over_hard_limit
    h.inject("S", seq=0, options=dict(SYN_OPTIONS), sport=50002)
    h.expect("S.", seq=0, ack=1, dport=50002)


def test_layer_out_of_order_total_is_counted_in_the_layer_stats() -> None:
    h = Scenario(mem_ooo_total=2000)
    conn = h.passive_open()
    h.inject(".", seq=1001, ack=1, payload=b"a" * 1500)
    h.expect(".", ack=1)
    h.inject(".", seq=3001, ack=1, payload=b"b" * 1000)  # 2500 > 2000: dropped
    h.sent()
    assert conn.rcvbuf.ooo_bytes == 1500 and h.tcp.memory.ooo_used == 1500
    assert h.tcp.counters()["connection_drops"]["tcp_ooo_mem_limit"] == 1


def test_layer_receive_window_shrinks_under_pressure() -> None:
    """The advertised window follows what is left under the receive total."""
    h = Scenario(mem_rcvbuf_total=64 * KB, mem_min_per_connection=4 * KB)
    conn = h.passive_open()
    shift = conn.rcv_wscale
    for i in range(40):
        h.inject("P.", seq=1 + 1400 * i, ack=1, payload=b"q" * 1400)
    h.advance(0.1)  # the delayed ACK, if one is owed
    last = h.sent()[-1]
    assert h.tcp.memory.rcv_used == 40 * 1400
    assert last.ack == 1 + 40 * 1400
    # Without the total the window would be 1 MiB - 56,000 bytes; with it the right edge stays
    # at the total (it never moves left, RFC 9293 §3.8.6.2.2).
    assert 1 + 64 * KB - (1 << shift) <= last.ack + (last.win << shift) <= 1 + 64 * KB
    assert h.tcp.memory.stats["rcv_window_clamped"] > 0
