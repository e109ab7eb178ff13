"""Scenarios: SYN cookie edge cases (RFC 4987 §3.6; the scheme of tcp/cookies.py) — cookie age at
the period boundary, the MSS table, options carried in TSval, data and FIN on the completing ACK,
wrong 4-tuples, a full accept queue, floods that keep no state."""

from __future__ import annotations

import pytest

from scenario import PEER_PORT, SYN_OPTIONS, Scenario, State

MSS = 1448


def full_listener(h: Scenario) -> None:
    """Backlog 1 and one half-open connection from port 40001: the next SYN gets a cookie."""
    h.listen(backlog=1)
    h.inject("S", seq=0, options=SYN_OPTIONS, sport=40001)
    h.expect("S.", dport=40001, ack=1)


def cookie_synack(h: Scenario, options: dict[str, object] | None = None, **kw: object) -> int:
    """Send a SYN to the full listener; return the cookie SYN-ACK's TSval (0 without TS) after
    setting ``h.iss`` to the cookie so relative numbers work."""
    h.inject("S", seq=0, options=dict(SYN_OPTIONS if options is None else options), **kw)
    synack = h.expect("S.", ack=1)
    h.iss = synack.raw_seq
    return synack.ts[0] if synack.ts else 0


@pytest.mark.parametrize(("delay", "accepted"), [(1.0, True), (87.9, True), (88.0, False), (200.0, False)])
def test_cookie_age_limit(delay: float, accepted: bool) -> None:
    """A cookie is good in the 64-s period it was made in and the next one (tcp/cookies.py,
    Linux's MAX_SYNCOOKIE_AGE): made at virtual time 1000 s (period 15: 960..1024 s), its ACK is
    accepted until 1088 s (t = 88) and refused — with a RST — from then on."""
    h = Scenario()
    full_listener(h)
    tsval = cookie_synack(h)
    h.at(delay)
    h.sent()  # the other half-open connection's SYN-ACK retransmissions and its final reset
    h.inject(".", seq=1, ack=1, ts=(5000 + int(delay * 1000), tsval))
    if accepted:
        assert h.accept().state == State.ESTABLISHED
        h.expect_nothing()
    else:
        h.expect("R", seq=1, dport=PEER_PORT)
        assert h.tcp.stats["syncookies_accepted"] == 0


@pytest.mark.parametrize(("mss", "encoded"), [(100, 536), (536, 536), (1299, 536), (1440, 1440), (9000, 1460)])
def test_cookie_mss_table(mss: int, encoded: int) -> None:
    """The MSS the cookie carries is the largest of (536, 1300, 1440, 1460) not above the peer's
    (and our own 1460): tiny ones become 536, jumbo ones 1460; announced and used."""
    h = Scenario()
    full_listener(h)
    h.inject("S", seq=0, options={"mss": mss})
    synack = h.expect("S.", ack=1, options={"mss": encoded})
    h.iss = synack.raw_seq
    h.inject(".", seq=1, ack=1)
    assert h.accept().snd_mss == encoded


@pytest.mark.parametrize(("wscale", "sack"), [(0, False), (14, True), (15, True), (None, True)])
def test_cookie_carries_wscale_and_sack_in_tsval(wscale: int | None, sack: bool) -> None:
    """With timestamps, the peer's window scale (clamped to 14, RFC 7323 §2.3; 0xF for none) and
    SACK-permitted ride in TSval's low 6 bits; the ACK's TSecr brings them back."""
    h = Scenario()
    full_listener(h)
    opts: dict[str, object] = {"mss": 1460, "ts": (5000, 0)}
    if sack:
        opts["sack_perm"] = True
    if wscale is not None:
        opts["wscale"] = wscale
    tsval = cookie_synack(h, opts)
    expected_ws = 0xF if wscale is None else min(wscale, 14)
    assert tsval & 0x0F == expected_ws and bool(tsval & 0x10) == sack
    assert tsval <= h.our_ts()  # never ahead of our clock (RFC 7323 §5.2: TSvals monotonic)
    h.inject(".", seq=1, ack=1, ts=(5001, tsval), win=10)
    conn = h.accept()
    assert conn.sack_ok == sack and conn.wscale_ok == (wscale is not None)
    if wscale is not None:
        assert conn.snd_wscale == min(wscale, 14) and conn.snd_wnd == 10 << min(wscale, 14)


def test_cookie_ack_carrying_data_delivers_it() -> None:
    """The ACK completing a cookie handshake may carry the request: the rebuilt connection takes
    it (and owes a delayed ACK for it)."""
    h = Scenario()
    full_listener(h)
    tsval = cookie_synack(h)
    h.inject("P.", seq=1, ack=1, ts=(5001, tsval), payload=b"GET / HTTP/1.1\r\n\r\n")
    conn = h.accept()
    h.ts_auto = True
    assert h.recv() == b"GET / HTTP/1.1\r\n\r\n"
    h.expect_within(0.1, ".", seq=1, ack=19, after=0.04)
    assert conn.state == State.ESTABLISHED


def test_cookie_ack_from_another_port_is_reset() -> None:
    """The cookie is bound to the 4-tuple: the same numbers from another source port fail (RST),
    and nothing is created."""
    h = Scenario()
    full_listener(h)
    tsval = cookie_synack(h)
    n = len(h.tcp.connections)
    h.inject(".", seq=1, ack=1, ts=(5001, tsval), sport=50002)
    h.expect("R", seq=1, dport=50002)
    assert len(h.tcp.connections) == n


def test_cookie_ack_with_full_accept_queue_is_dropped_silently() -> None:
    """A cookie is issued while the accept queue has room; by the time its ACK comes the queue is
    full (the half-open connection completed first): the valid cookie ACK is dropped and counted,
    with no RST — the peer's retransmission finds room later, as in Linux."""
    h = Scenario()
    full_listener(h)  # backlog 1: SYN queue full (port 40001)
    tsval = cookie_synack(h)
    assert h.listener is not None
    half_open = next(iter(h.listener.syn_queue.values()))
    h.inject(".", seq=1, ack=(half_open.iss + 1 - h.iss) & 0xFFFFFFFF, sport=40001, ts=False)
    assert len(h.listener.accept_queue) == 1
    h.inject(".", seq=1, ack=1, ts=(5001, tsval))
    h.expect_nothing()
    assert h.tcp.drops["tcp_accept_queue_full"] == 1 and h.tcp.stats["syncookies_accepted"] == 0


def test_cookie_synack_is_never_retransmitted() -> None:
    """No state, no timer: a cookie SYN-ACK is sent once; the peer's SYN retransmission gets a
    fresh one (same cookie within the period)."""
    h = Scenario()
    full_listener(h)
    h.inject("S", seq=0, options={"mss": 1460})
    first = h.expect("S.", ack=1)
    h.advance(0.9)
    h.sent()  # the first half-open connection's own SYN-ACK retransmission, if due
    h.expect_silence(0.05)
    h.inject("S", seq=0, options={"mss": 1460})
    again = h.expect("S.", ack=1)
    assert again.raw_seq == first.raw_seq


def test_syn_flood_with_cookies_keeps_no_state() -> None:
    """1,000 SYNs from 1,000 ports at a full listener: 1,000 cookie SYN-ACKs, not one connection
    or queue entry more (RFC 4987 §3.6), and the counters say so."""
    h = Scenario()
    full_listener(h)
    n = len(h.tcp.connections)
    for port in range(20_000, 21_000):
        h.inject("S", seq=port * 7919, options={"mss": 1460}, sport=port)
    out = h.sent()
    assert len(out) == 1000 and all(o.flags == "S." for o in out)
    assert len(h.tcp.connections) == n and h.listener is not None and len(h.listener.syn_queue) == 1
    assert h.tcp.stats["syncookies_sent"] == 1000


def test_guessed_cookie_acks_are_all_refused() -> None:
    """A blind attacker's ACKs with guessed cookies (500 guesses for one 4-tuple) all fail, each
    answered with a RST, none creating a connection."""
    h = Scenario()
    full_listener(h)
    n = len(h.tcp.connections)
    for guess in range(500):
        h.inject(".", seq=1, ack=guess * 8_589_934 + 1)
    assert len(h.sent()) == 500 and len(h.tcp.connections) == n
    assert h.tcp.stats["syncookies_accepted"] == 0


def test_duplicate_cookie_ack_after_establishment_goes_to_the_connection() -> None:
    """The cookie ACK again after the connection exists: it belongs to the connection now (a
    duplicate ACK there), not to the listener — no second connection, no RST."""
    h = Scenario()
    full_listener(h)
    tsval = cookie_synack(h)
    h.inject(".", seq=1, ack=1, ts=(5001, tsval))
    conn = h.accept()
    h.inject(".", seq=1, ack=1, ts=(5002, tsval))
    h.expect_nothing()
    assert h.listener is not None and h.listener.accept() is None and conn.state == State.ESTABLISHED


def test_cookie_synack_window_is_unscaled_and_bounded() -> None:
    """The cookie SYN-ACK's window is min(rcvbuf, 65535) — a SYN's window is never scaled."""
    h = Scenario(rcvbuf=20_000)
    full_listener(h)
    h.inject("S", seq=0, options=SYN_OPTIONS)
    h.expect("S.", ack=1, win=20_000)
