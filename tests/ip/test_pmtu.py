"""Path-MTU discovery (RFC 1191) with RFC 5927's validation and a floor: DF on every TCP
segment, Fragmentation Needed quoting a live connection lowers its MSS (never below the floor,
so a forged MTU of 68 or 0 cannot shrink segments to nothing), a quote with a sequence number
outside the flight is ignored, port unreachable on an established connection is a soft error,
redirects change nothing."""

from __future__ import annotations

import errno
import struct

import dpkt
import pytest

from aiostack.ip import icmp, ipv4
from scenario import LOCAL_IP, LOCAL_MAC, LOCAL_PORT, PEER_IP, PEER_MAC, PEER_PORT, Scenario, State

TS = 12  # the timestamp option every segment carries once negotiated


def frames(h: Scenario) -> list[bytes]:
    out = [p.tobytes() for p in h.iface.tx]
    return out


def icmp_about(h: Scenario, itype: int, code: int, seq: int, mtu: int = 0) -> None:
    """The ICMP error a router (or an attacker) sends about one of our segments with sequence
    number ``seq`` (absolute)."""
    quoted_ip = dpkt.ip.IP(src=ipv4.aton(LOCAL_IP).to_bytes(4, "big"), dst=ipv4.aton(PEER_IP).to_bytes(4, "big"),
                           p=6, ttl=64, id=7, df=1, len=1500)
    quote = bytes(quoted_ip)[:20] + struct.pack("!HHI", LOCAL_PORT, PEER_PORT, seq)
    msg = dpkt.icmp.ICMP(type=itype, code=code, data=dpkt.icmp.ICMP.Unreach(mtu=mtu, data=quote))
    ip = dpkt.ip.IP(src=ipv4.aton(PEER_IP).to_bytes(4, "big"), dst=ipv4.aton(LOCAL_IP).to_bytes(4, "big"),
                    p=1, ttl=64, id=9, data=msg)
    ip.len = 20 + len(bytes(msg))
    pkt = h.pool.packet_from(bytes(dpkt.ethernet.Ethernet(dst=LOCAL_MAC, src=PEER_MAC, type=0x0800, data=ip)))
    h.ip.receive(h.iface, pkt, h.now)
    pkt.free()


def established_with_flight(h: Scenario) -> None:
    h.passive_open()
    h.send(b"d" * 20000)
    h.sent()


def test_tcp_segments_carry_df() -> None:
    h = Scenario()
    h.listen()
    h.inject("S", seq=0, options={"mss": 1460, "sack_perm": True, "ts": (1, 0), "wscale": 7})
    (synack,) = frames(h)
    assert struct.unpack_from("!H", synack, 20)[0] & ipv4.FLAG_DF  # the SYN-ACK (_send_raw)
    h.sent()
    h.inject(".", seq=1, ack=1, ts=(2, h.last_tsval))
    h.accept()
    h.send(b"x" * 3000)
    data = frames(h)
    assert data and all(struct.unpack_from("!H", f, 20)[0] == ipv4.FLAG_DF for f in data)  # the FlowRoute


@pytest.mark.parametrize(("reported", "mss"), [(1000, 1000 - 40 - TS), (1400, 1400 - 40 - TS),
                                               (68, 552 - 40 - TS), (0, 552 - 40 - TS), (300, 552 - 40 - TS)])
def test_frag_needed_lowers_mss_to_the_path_mtu_with_a_floor(reported: int, mss: int) -> None:
    h = Scenario()
    established_with_flight(h)
    conn = h.conn or h.tcp.connections[next(iter(h.tcp.connections))]
    icmp_about(h, icmp.DEST_UNREACHABLE, icmp.CODE_FRAG_NEEDED, conn.snd_una, reported)
    assert conn.snd_mss == mss
    assert h.tcp.stats["pmtu_lowered"] == 1
    assert conn.state == State.ESTABLISHED and conn.soft_error == 0
    # Lost segments go again at the new size; new data too.
    h.advance(3.0)
    out = h.sent()
    assert out and all(len(o.payload) <= mss for o in out)


def test_frag_needed_never_raises_the_mss() -> None:
    h = Scenario()
    established_with_flight(h)
    conn = next(iter(h.tcp.connections.values()))
    before = conn.snd_mss
    icmp_about(h, icmp.DEST_UNREACHABLE, icmp.CODE_FRAG_NEEDED, conn.snd_una, 9000)
    assert conn.snd_mss == before
    assert h.tcp.stats["pmtu_unchanged"] == 1


def test_frag_needed_with_a_wrong_sequence_number_is_ignored() -> None:
    """RFC 5927 §4.1: a blind attacker does not know the flight's sequence numbers."""
    h = Scenario()
    established_with_flight(h)
    conn = next(iter(h.tcp.connections.values()))
    before = conn.snd_mss
    for seq in ((conn.snd_una - 1) & 0xFFFFFFFF, (conn.snd_max + 1) & 0xFFFFFFFF, conn.snd_una ^ 0x80000000):
        icmp_about(h, icmp.DEST_UNREACHABLE, icmp.CODE_FRAG_NEEDED, seq, 68)
    assert conn.snd_mss == before
    assert h.tcp.drops["tcp_icmp_error_bad_seq"] == 3
    assert "pmtu_lowered" not in h.tcp.stats


def test_port_unreachable_on_an_established_connection_is_a_soft_error() -> None:
    h = Scenario()
    established_with_flight(h)
    conn = next(iter(h.tcp.connections.values()))
    icmp_about(h, icmp.DEST_UNREACHABLE, icmp.CODE_PORT_UNREACHABLE, conn.snd_una)
    assert conn.state == State.ESTABLISHED
    assert conn.soft_error == errno.EHOSTUNREACH


def test_redirects_are_ignored() -> None:
    h = Scenario()
    established_with_flight(h)
    conn = next(iter(h.tcp.connections.values()))
    version = h.ip.routes.version
    mss = conn.snd_mss
    for code in range(4):
        icmp_about(h, 5, code, conn.snd_una)  # the "gateway" field sits where the MTU would
    assert h.ip.routes.version == version
    assert conn.state == State.ESTABLISHED and conn.snd_mss == mss and conn.soft_error == 0


def test_path_mtu_arithmetic() -> None:
    assert icmp.path_mtu(0, 1500) == icmp.PMTU_FLOOR
    assert icmp.path_mtu(68, 1500) == icmp.PMTU_FLOOR
    assert icmp.path_mtu(1280, 1500) == 1280
    assert icmp.path_mtu(1600, 1500) == 1500
    assert icmp.path_mtu(1000, 1500, floor=1280) == 1280
