"""The pcap wrapper: every frame in and out lands in a libpcap file that dpkt and tcpdump read."""

from __future__ import annotations

import io
import ipaddress
import shutil
import struct
import subprocess

import dpkt
import pytest

from aiostack.drivers.memory import MemoryLink
from aiostack.drivers.pcap import PcapWrapper


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.25) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def udp_frame(dst: bytes, src: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip_hdr = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            1,
            0,
            64,
            17,
            0,
            ipaddress.IPv4Address("10.0.0.1").packed,
            ipaddress.IPv4Address("10.0.0.2").packed,
        )
    )
    s = sum(struct.unpack("!10H", ip_hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    ip_hdr[10:12] = struct.pack("!H", ~s & 0xFFFF)
    return dst + src + b"\x08\x00" + bytes(ip_hdr) + udp


def read_pcap(data: bytes) -> tuple[dpkt.pcap.Reader, list[tuple[float, bytes]]]:
    reader = dpkt.pcap.Reader(io.BytesIO(data))
    return reader, list(reader)


def test_records_tx_and_rx_frames(tmp_path):
    path = tmp_path / "cap.pcap"
    clock = FakeClock()
    a, b = MemoryLink.pair()
    cap = PcapWrapper(a, path, clock=clock)
    assert cap.mac == a.mac and cap.pool is a.pool and cap.num_queues == 1
    sent = [udp_frame(b.mac, a.mac, 1000 + i, 7, bytes([i]) * (10 + i)) for i in range(3)]
    assert cap.tx_burst(0, [cap.pool.packet_from(f) for f in sent]) == 3
    assert [p.tobytes() for p in b.rx_burst(0, 8)] == sent  # passed on unchanged

    clock.t += 1.5
    back = [udp_frame(a.mac, b.mac, 7, 1000 + i, b"reply%d" % i) for i in range(2)]
    b.tx_burst(0, [b.pool.packet_from(f) for f in back])
    got = cap.rx_burst(0, 8)
    assert [p.tobytes() for p in got] == back
    for p in got:
        p.free()
    assert cap.rx_burst(0, 8) == []  # empty polls write nothing

    # flushed per burst: readable before close, like `tcpdump -r` on a running capture
    reader, records = read_pcap(path.read_bytes())
    assert reader.datalink() == dpkt.pcap.DLT_EN10MB
    assert reader.snaplen == 65535
    assert [buf for _, buf in records] == sent + back
    assert [ts for ts, _ in records] == pytest.approx([1_700_000_000.25] * 3 + [1_700_000_001.75] * 2)
    assert cap.frames_written == 5
    assert cap.stats()["pcap"] == {"frames_written": 5}

    cap.close()
    cap.close()  # idempotent
    assert a.closed  # the inner driver too
    assert len(read_pcap(path.read_bytes())[1]) == 5
    b.close()


def test_snaplen_truncates_but_keeps_original_length():
    buf = io.BytesIO()
    a, b = MemoryLink.pair()
    cap = PcapWrapper(a, buf, snaplen=64, clock=FakeClock(10.0))
    frame = udp_frame(b.mac, a.mac, 1, 2, b"z" * 500)
    cap.tx_burst(0, [cap.pool.packet_from(frame)])
    data = buf.getvalue()
    reader, records = read_pcap(data)
    assert reader.snaplen == 64
    assert records == [(10.0, frame[:64])]
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    sec, usec, incl, orig = struct.unpack(endian + "IIII", data[24:40])
    assert (sec, usec, incl, orig) == (10, 0, 64, len(frame))
    cap.close()
    assert not buf.closed  # a file object handed in stays its owner's
    b.close()


def test_microsecond_rounding_carries_into_seconds():
    buf = io.BytesIO()
    a, b = MemoryLink.pair()
    cap = PcapWrapper(a, buf, clock=FakeClock(5.9999999))
    cap.tx_burst(0, [cap.pool.packet_from(udp_frame(b.mac, a.mac, 1, 2, b""))])
    _, records = read_pcap(buf.getvalue())
    assert records[0][0] == 6.0
    cap.close()
    b.close()


def test_tcpdump_reads_the_capture(tmp_path):
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump not installed")
    path = tmp_path / "live.pcap"
    a, b = MemoryLink.pair()
    cap = PcapWrapper(a, str(path))
    frames = [udp_frame(b.mac, a.mac, 5000 + i, 40000, b"q" * 12) for i in range(4)]
    cap.tx_burst(0, [cap.pool.packet_from(f) for f in frames])
    # read while the capture is still open
    res = subprocess.run([tcpdump, "-r", str(path), "-nn"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 4
    assert [line.split(" ", 1)[1] for line in lines] == [
        f"IP 10.0.0.1.{5000 + i} > 10.0.0.2.40000: UDP, length 12" for i in range(4)
    ]
    cap.close()
    b.close()
