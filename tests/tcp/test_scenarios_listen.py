"""Scenarios: listeners under pressure and segments nobody owns — SYN cookies (RFC 4987 §3.6),
accept-queue overflow, and resets for closed ports (RFC 9293 §3.10.7.1)."""

from __future__ import annotations

from scenario import ANY, SYN_OPTIONS, Scenario, State

MSS = 1448


def fill_syn_queue(h: Scenario) -> None:
    """A backlog-1 listener with one half-open connection (from another port): the SYN queue
    is full."""
    h.listen(backlog=1)
    h.inject("S", seq=0, options=SYN_OPTIONS, sport=40001)
    h.expect("S.", dport=40001, ack=1)


def test_syn_cookie_when_syn_queue_is_full() -> None:
    """RFC 4987 §3.6: with the SYN queue full the listener answers with a SYN cookie (no state
    kept). Window scale and SACK-permitted ride in the low bits of our TSval (Linux's
    cookie_init_timestamp); the ACK echoing it rebuilds the connection, which then works."""
    h = Scenario()
    fill_syn_queue(h)
    n = len(h.tcp.connections)
    h.inject("S", seq=0, win=65535, options=SYN_OPTIONS)
    synack = h.expect("S.", ack=1, win=65535, options={"mss": 1460, "sack_perm": True, "ts": (ANY, 5000), "wscale": 5})
    assert len(h.tcp.connections) == n  # nothing remembered
    assert synack.ts is not None and synack.ts[0] & 0x3F == 0x10 | 7  # SACK bit | peer's wscale
    h.iss = synack.raw_seq  # the cookie is our ISS
    h.ts_auto = True
    h.inject(".", seq=1, ack=1, win=100)
    conn = h.accept()
    assert conn.state == State.ESTABLISHED
    assert (conn.snd_wscale, conn.rcv_wscale, conn.sack_ok, conn.ts_ok) == (7, 5, True, True)
    assert conn.snd_wnd == 100 << 7
    h.send(b"c" * 2 * MSS)
    h.expect(".", seq=1, ack=1, payload_len=MSS, win=32768)
    h.expect("P.", seq=1 + MSS, payload_len=MSS)
    h.inject("P.", seq=1, ack=1 + 2 * MSS, payload=b"hello cookie")
    assert h.recv() == b"hello cookie"
    assert h.tcp.stats["syncookies_sent"] == 1 and h.tcp.stats["syncookies_accepted"] == 1


def test_syn_cookie_without_timestamps_loses_wscale_and_sack() -> None:
    """Without timestamps there is nowhere to keep window scale and SACK-permitted: the cookie
    SYN-ACK offers neither and the connection runs without them (RFC 4987 §3.6's cost)."""
    h = Scenario()
    fill_syn_queue(h)
    h.inject("S", seq=0, options={"mss": 1460, "sack_perm": True, "wscale": 7})
    synack = h.expect("S.", ack=1, options={"mss": 1460})
    h.iss = synack.raw_seq
    h.inject(".", seq=1, ack=1, win=20000)
    conn = h.accept()
    assert (conn.wscale_ok, conn.sack_ok, conn.ts_ok, conn.rcv_wscale) == (False, False, False, 0)
    assert conn.snd_wnd == 20000 and conn.snd_mss == 1460
    h.send(b"d")
    h.expect("P.", seq=1, ack=1, win=65535, options={})


def test_syn_cookie_mss_is_rounded_down_to_the_table() -> None:
    """The cookie carries a 2-bit index into (536, 1300, 1440, 1460): an MSS of 1400 comes back
    as 1300 (Linux's msstab)."""
    h = Scenario()
    fill_syn_queue(h)
    h.inject("S", seq=0, options={"mss": 1400})
    synack = h.expect("S.", ack=1, options={"mss": 1300})
    h.iss = synack.raw_seq
    h.inject(".", seq=1, ack=1)
    assert h.accept().snd_mss == 1300


def test_bad_cookie_ack_gets_reset() -> None:
    """An ACK to a listener that does not carry a valid cookie (RFC 9293 §3.10.7.2: any ACK in
    LISTEN is bad) gets <SEQ=SEG.ACK><CTL=RST>, and no connection is made."""
    h = Scenario()
    fill_syn_queue(h)
    h.inject("S", seq=0, options=SYN_OPTIONS)
    synack = h.expect("S.", ack=1)
    h.iss = synack.raw_seq
    h.inject(".", seq=1, ack=2, ts=(5001, synack.ts[0]))  # cookie + 1: wrong
    h.expect("R", seq=2, win=0)
    h.inject(".", seq=2, ack=1, ts=(5001, synack.ts[0]))  # wrong peer ISN
    h.expect("R", seq=1)
    assert h.listener is not None and h.listener.accept() is None
    assert h.tcp.stats["syncookies_accepted"] == 0


def test_syn_cookies_off_drops_syn_when_queue_full() -> None:
    """TcpConfig.syncookies = False: a full SYN queue just drops the SYN (the peer retries)."""
    h = Scenario(syncookies=False)
    fill_syn_queue(h)
    h.inject("S", seq=0, options=SYN_OPTIONS)
    h.expect_nothing()
    assert h.tcp.drops["tcp_syn_queue_full"] == 1


def test_accept_queue_full_drops_syn() -> None:
    """A full accept queue (backlog 1, one connection not yet accepted) drops new SYNs silently,
    as Linux does: the peer's SYN retransmission comes back once the application accepts."""
    h = Scenario()
    lst = h.listen(backlog=1)
    h.inject("S", seq=0, options=SYN_OPTIONS, sport=40001)
    h.expect("S.", dport=40001)
    h.inject(".", seq=1, ack=1, sport=40001)
    h.inject("S", seq=0, options=SYN_OPTIONS)
    h.expect_nothing()
    assert lst.accept() is not None
    h.inject("S", seq=0, options=SYN_OPTIONS, at=1.0)
    h.expect("S.", dport=50000, ack=1)


def test_syn_to_closed_port_gets_rst_ack() -> None:
    """RFC 9293 §3.10.7.1: no connection, segment without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
    <CTL=RST,ACK> (the SYN counts one)."""
    h = Scenario()
    h.inject("S", seq=0, options=SYN_OPTIONS, dport=9)
    out = h.expect("R.", ack=1, win=0, options={}, sport=9, dport=50000)
    assert out.raw_seq == 0


def test_ack_to_closed_port_gets_rst_with_its_ack_as_seq() -> None:
    """RFC 9293 §3.10.7.1: an ACK-bearing segment gets <SEQ=SEG.ACK><CTL=RST> (no ACK bit)."""
    h = Scenario()
    h.inject("P.", seq=1, ack=12345, payload=b"data", dport=9)
    out = h.expect("R", seq=12345, win=0)
    assert out.raw_ack == 0


def test_fin_with_data_to_closed_port() -> None:
    """SEG.LEN counts the data and the FIN: ACK = SEG.SEQ + len + 1."""
    h = Scenario()
    h.inject("F", seq=100, payload=b"12345", dport=9)
    h.expect("R.", ack=106)


def test_rst_to_closed_port_is_not_answered() -> None:
    """RFC 9293 §3.10.7.1: an incoming RST for no connection is discarded (never RST a RST)."""
    h = Scenario()
    h.inject("R", seq=1, dport=9)
    h.inject("R.", seq=1, ack=1, dport=9)
    h.expect_nothing()


def test_bad_checksum_is_dropped_silently() -> None:
    """RFC 9293 §3.1: a segment with a bad checksum is discarded — no reset, no ACK."""
    h = Scenario()
    h.inject("S", seq=0, options=SYN_OPTIONS, dport=9, bad_checksum=True)
    h.expect_nothing()
    assert h.tcp.drops["tcp_bad_checksum"] == 1


def test_closing_a_listener_resets_pending_connections() -> None:
    """Closing a listening socket (CLOSE in LISTEN, RFC 9293 §3.10.4) resets what it still holds,
    as Linux does: a half-open connection (SYN-RECEIVED) and an established one never accepted."""
    h = Scenario()
    lst = h.listen()
    h.inject("S", seq=0, options={"mss": 1460}, sport=40001)
    h.expect("S.", dport=40001, ack=1)
    h.inject("S", seq=0, options={"mss": 1460}, sport=40002)
    h.expect("S.", dport=40002, ack=1)
    h.inject(".", seq=1, ack=1, sport=40002)
    h.tcp.close_listener(lst, h.now)
    resets = {out.dport: out for out in h.sent()}
    assert resets[40001].flags == "R." and resets[40001].seq == 1 and resets[40001].ack == 1
    assert resets[40002].flags == "R." and resets[40002].seq == 1 and resets[40002].ack == 1
    assert not h.tcp.connections
    h.inject("S", seq=0, options={"mss": 1460}, sport=40003)
    h.expect("R.", ack=1, dport=40003)  # the port is closed now
