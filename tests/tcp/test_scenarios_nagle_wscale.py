"""Scenarios: Nagle's algorithm (RFC 9293 §3.7.4, RFC 1122 §4.2.3.4) and its interplay with the
peer's delayed ACKs, close() and TCP_NODELAY; window scaling at its edges (RFC 7323 §2); and a
tiny-MSS peer downloading (the MSS floor at work over a whole transfer)."""

from __future__ import annotations

import pytest

from scenario import Scenario

MSS = 1448


# -- Nagle ----------------------------------------------------------------------------------------
def test_small_writes_are_coalesced_while_one_is_unacknowledged() -> None:
    """One small segment in flight: a hundred 1-byte writes after it are held and leave as one
    100-byte segment when the ACK comes — not a hundred tinygrams (RFC 9293 §3.7.4)."""
    h = Scenario()
    h.passive_open()
    h.send(b"first")
    h.expect("P.", seq=1, payload=b"first")
    for i in range(100):
        h.send(bytes([48 + i % 10]))
    h.expect_nothing()
    h.inject(".", seq=1, ack=6, at=0.05)
    out = h.expect("P.", seq=6, payload_len=100)
    assert out.payload == bytes(48 + i % 10 for i in range(100))
    h.expect_nothing()


def test_nagle_waits_for_the_peers_delayed_ack() -> None:
    """The classic Nagle/delayed-ACK interplay: the peer holds its ACK for 40 ms; our second
    small write leaves exactly when that ACK arrives, not before."""
    h = Scenario()
    h.passive_open()
    h.send(b"req-1")
    h.expect("P.", seq=1)
    h.send(b"req-2")
    h.expect_silence(0.04)
    h.inject(".", seq=1, ack=6)
    h.expect("P.", seq=6, payload=b"req-2")


def test_close_flushes_a_held_small_tail_with_the_fin() -> None:
    """close() with a small tail held by Nagle: nothing leaves while the first segment is
    unacknowledged; its ACK releases the tail and the FIN together, in one segment."""
    h = Scenario()
    h.passive_open()
    h.send(b"x" * 10)
    h.expect("P.", seq=1)
    h.send(b"tail")
    h.close()
    out = h.sent()
    h.inject(".", seq=1, ack=11, at=0.05)
    out += h.sent()
    assert [(o.seq, o.payload, "F" in o.flags) for o in out] == [(11, b"tail", True)]


def test_full_segments_are_never_held() -> None:
    """Nagle holds only less-than-full segments: with data in flight a write of exactly one MSS
    goes at once."""
    h = Scenario()
    h.passive_open()
    h.send(b"a")
    h.expect("P.", seq=1)
    h.send(b"b" * MSS)
    h.expect("P.", seq=2, payload_len=MSS)


def test_nodelay_switched_on_releases_on_the_next_write() -> None:
    """TCP_NODELAY set while a tail is held: the next write sends everything queued at once."""
    h = Scenario()
    conn = h.passive_open()
    h.send(b"a")
    h.expect("P.", seq=1)
    h.send(b"b")
    h.expect_nothing()
    conn.nodelay = True
    h.send(b"c")
    h.expect("P.", seq=2, payload=b"bc")


def test_nodelay_sends_every_write_separately() -> None:
    """With TCP_NODELAY each small write is its own segment, in order, while earlier ones are
    unacknowledged (within cwnd)."""
    h = Scenario(nodelay=True)
    h.passive_open()
    for i, word in enumerate((b"one", b"two", b"six")):
        h.send(word)
        h.expect("P.", seq=1 + 3 * i, payload=word)


# -- window scaling -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rcvbuf", "shift", "field"), [(65535, 0, 65535), (65536, 1, 32767), (1 << 20, 5, 32768), (1 << 30, 14, 65535)]
)
def test_our_window_scale_follows_the_buffer(rcvbuf: int, shift: int, field: int) -> None:
    """RFC 7323 §2.2: the shift is the smallest that fits the receive buffer in 16 bits (at most
    14); the SYN-ACK offers it, its own window unscaled (at most 65535); later windows are
    scaled — and never move the right edge by less than an MSS (SWS avoidance), so a 65536-byte
    buffer keeps the SYN-ACK's edge: 65535 >> 1 = 32767. (The reactor's receive total is raised
    above the 1 GiB buffer, which it would otherwise clamp: tests/tcp/test_memory_bounds.py.)"""
    h = Scenario(rcvbuf=rcvbuf, mem_rcvbuf_total=1 << 31, mem_hard_total=1 << 32)
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460, "wscale": 7})
    h.expect("S.", seq=0, ack=1, win=min(rcvbuf, 65535), options={"mss": 1460, "wscale": shift})
    h.inject(".", seq=1, ack=1)
    h.accept()
    h.send(b"w")
    h.expect("P.", seq=1, win=field)


def test_peer_scale_zero_is_still_scaling_negotiated() -> None:
    """A peer's WS of 0: both sides scale (we by 5) though its windows are taken as they are."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 1460, "wscale": 0}, win=1000)
    assert conn.wscale_ok and conn.snd_wscale == 0 and conn.rcv_wscale == 5
    h.inject(".", seq=1, ack=1, win=3000)
    assert conn.snd_wnd == 3000


def test_window_scaling_disabled_ignores_the_peers_offer() -> None:
    """TcpConfig.window_scaling = False: no WS in our SYN-ACK, so neither side scales
    (RFC 7323 §1.3): the peer's window field is taken as is, ours is at most 65535."""
    h = Scenario(window_scaling=False)
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460, "wscale": 7})
    h.expect("S.", seq=0, ack=1, options={"mss": 1460})
    h.inject(".", seq=1, ack=1, win=1000)
    conn = h.accept()
    assert conn.snd_wnd == 1000 and not conn.wscale_ok
    h.send(b"u")
    h.expect("P.", seq=1, win=65535)


def test_active_open_without_window_scaling() -> None:
    """window_scaling = False on an active open: our SYN offers no WS."""
    h = Scenario(window_scaling=False)
    h.connect()
    h.expect("S", seq=0, options={"mss": 1460, "sack_perm": True, "ts": (h.our_ts(), 0)})


def test_scaled_window_field_rounds_down() -> None:
    """With shift 5 our window field is the free space >> 5, rounded down — never announcing a
    byte we have no room for (here 1000 bytes in use: (2**20 − 1000) >> 5 = 32736)."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"k" * 1000)
    h.expect_within(0.1, ".", ack=1001, win=((1 << 20) - 1000) >> 5)


def test_huge_peer_window_is_bounded_by_cwnd() -> None:
    """The peer announces 65535 << 14 (about 1 GiB): we still send only the initial window of 10
    segments (RFC 6928), not a gigabyte."""
    h = Scenario()
    conn = h.passive_open(options={"mss": 1460, "wscale": 14, "ts": (0, 0)}, win=65535)
    h.inject(".", seq=1, ack=1, win=65535)
    assert conn.snd_wnd == 65535 << 14
    h.send(b"g" * 20 * MSS)
    assert len(h.sent()) == 10


def test_peer_window_of_one_scaled_unit() -> None:
    """Scale 7 and a window field of 1: 128 bytes of window. Sender SWS avoidance holds a
    1000-byte write (128 < MSS and < half the largest window, RFC 9293 §3.8.6.2.1) until the
    override timeout; then exactly 128 bytes go."""
    h = Scenario()
    h.passive_open(rtt=0.1)
    h.inject(".", seq=1, ack=1, win=1)
    h.send(b"s" * 1000)
    h.expect_nothing()
    out = h.expect_within(1, seq=1)
    assert len(out.payload) == 128


# -- tiny MSS over a whole transfer ---------------------------------------------------------------
@pytest.mark.parametrize("peer_mss", [1, 48])
def test_tiny_mss_download_uses_the_floor(peer_mss: int) -> None:
    """A peer announcing MSS 1 or 48 downloads 20,000 bytes: every segment carries 204 bytes
    (the 216-byte floor less 12 of timestamps) except the last; 99 segments, not 20,000 —
    CVE-2019-11479's resource attack defused by TcpConfig.min_mss."""
    h = Scenario(nodelay=True)
    conn = h.passive_open(options={"mss": peer_mss, "ts": (0, 0), "sack_perm": True, "wscale": 7})
    data = bytes(i % 253 for i in range(20_000))
    h.send(data)
    got = []
    for _ in range(200):
        out = h.sent()
        if not out:
            break
        got += out
        h.inject(".", seq=1, ack=(out[-1].seq + len(out[-1].payload)))
    assert b"".join(o.payload for o in got) == data
    assert all(len(o.payload) == 204 for o in got[:-1]) and len(got) == 99
    assert conn.stats["tcp_mss_clamped_to_floor"] == 1
