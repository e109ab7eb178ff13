"""Scenarios: urgent data (RFC 9293 §3.8.5, RFC 6093). aiostack has no out-of-band interface; it
treats URG the way RFC 6093 §5 recommends for applications ("SO_OOBINLINE"): urgent bytes stay in
the stream, in order. So the URG flag and pointer — whatever their values, however hostile — never
remove, duplicate or hold back a byte, never change state, and never keep memory."""

from __future__ import annotations

import pytest

from scenario import Scenario, State


@pytest.mark.parametrize("urp", [1, 3, 5], ids=["first", "middle", "last"])
def test_urgent_pointer_within_the_data_stays_inline(urp: int) -> None:
    """URG with the pointer inside the segment: every byte is delivered in order, the urgent one
    included (inline, RFC 6093 §5), and the ACK is the ordinary delayed one."""
    h = Scenario()
    h.passive_open()
    h.inject("UP.", seq=1, ack=1, payload=b"abcde", urp=urp)
    h.expect_within(0.1, ".", seq=1, ack=6, after=0.04)
    assert h.recv() == b"abcde"


@pytest.mark.parametrize("urp", [6, 1000, 0xFFFF])
def test_urgent_pointer_beyond_the_data(urp: int) -> None:
    """The pointer points past the end of this segment (legal: the urgent byte comes later; or a
    lie): the data is delivered at once — nothing waits for the "urgent" byte."""
    h = Scenario()
    h.passive_open()
    h.inject("UP.", seq=1, ack=1, payload=b"hello", urp=urp)
    assert h.recv() == b"hello"
    h.inject("P.", seq=6, ack=1, payload=b"world")
    assert h.recv() == b"world"


def test_urgent_on_a_pure_ack() -> None:
    """URG on a segment without data: an ordinary ACK (it acknowledges our data)."""
    h = Scenario()
    conn = h.passive_open()
    h.send(b"x" * 10)
    h.expect("P.", seq=1, payload_len=10)
    h.inject("U.", seq=1, ack=11, urp=40)
    assert conn.snd_una == h.iss + 11
    h.expect_nothing()


def test_urgent_pointer_without_the_flag_is_ignored() -> None:
    """A non-zero urgent pointer without URG means nothing (RFC 9293 §3.1): data as usual."""
    h = Scenario()
    h.passive_open()
    h.inject("P.", seq=1, ack=1, payload=b"plain", urp=3)
    assert h.recv() == b"plain"


def test_urgent_on_the_syn() -> None:
    """URG on a SYN: the handshake goes on as for any SYN."""
    h = Scenario()
    h.listen()
    h.inject("SU", seq=0, options={"mss": 1460}, urp=1)
    h.expect("S.", seq=0, ack=1)
    h.inject(".", seq=1, ack=1)
    assert h.accept().state == State.ESTABLISHED


def test_urgent_with_fin() -> None:
    """URG + FIN with data: data delivered, FIN taken (CLOSE-WAIT), FIN acknowledged at once."""
    h = Scenario()
    h.passive_open()
    h.inject("FUP.", seq=1, ack=1, payload=b"bye", urp=3)
    h.expect(".", seq=1, ack=5)
    assert h.state == State.CLOSE_WAIT and h.recv() == b"bye"


def test_urgent_out_of_window_is_acked_and_dropped() -> None:
    """URG does not bypass the sequence test: beyond the window → ACK and drop."""
    h = Scenario(rcvbuf=4096)
    h.passive_open()
    h.inject("UP.", seq=10_000, ack=1, payload=b"far", urp=1)
    h.expect(".", seq=1, ack=1)
    with pytest.raises(BlockingIOError):
        h.recv()


def test_a_stream_of_urgent_segments_keeps_order() -> None:
    """Every segment urgent, pointers all over the place (including beyond and 0): 50 segments of
    10 bytes come out as the 500 bytes sent, in order; ACKs as for ordinary data (one per two
    segments received at once, RFC 9293 §3.8.6.3)."""
    h = Scenario()
    h.passive_open()
    data = bytes(range(250)) * 2
    for i in range(50):
        h.inject("UP.", seq=1 + 10 * i, ack=1, payload=data[10 * i : 10 * i + 10], urp=(i * 977) & 0xFFFF)
    assert h.recv() == data
    assert h.state == State.ESTABLISHED


def test_urgent_out_of_order_is_reassembled() -> None:
    """Urgent segments arriving out of order are queued and reassembled like any others (the
    first one's out-of-order arrival is acknowledged at once with a SACK block)."""
    h = Scenario()
    h.passive_open()
    h.inject("UP.", seq=6, ack=1, payload=b"world", urp=2)
    h.expect(".", ack=1, sack=[(6, 11)])
    h.inject("UP.", seq=1, ack=1, payload=b"hello", urp=9)
    h.expect(".", ack=11)
    assert h.recv() == b"helloworld"


def test_urgent_in_syn_received_completes_handshake() -> None:
    """The handshake's third segment with URG and data: accepted, data inline."""
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460})
    h.expect("S.", seq=0, ack=1)
    h.inject("UP.", seq=1, ack=1, payload=b"!", urp=1)
    conn = h.accept()
    assert conn.state == State.ESTABLISHED and h.recv() == b"!"


def test_we_never_send_urg() -> None:
    """Our own segments never carry URG (there is no API to send urgent data): data, FIN, ACK."""
    h = Scenario()
    h.passive_open()
    h.send(b"u" * 3000)
    h.inject("UP.", seq=1, ack=1 + 2 * 1448, payload=b"q", urp=1)
    assert h.recv() == b"q"
    h.close()
    sent = h.sent()
    assert sent and all("U" not in out.flags and out.tcp.urp == 0 for out in sent)
