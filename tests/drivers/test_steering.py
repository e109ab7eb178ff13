"""Deterministic steering (drivers/steering.py): the BPF program's hash and the Python one agree,
on bytes the kernel itself sends through a multi-queue TAP in a test-made namespace."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from aiostack.drivers.steering import MIX, flow_hash, frame_hash, queue_for, steering_instructions
from aiostack.netns import NetNS
from conftest import need_tool


def test_hash_is_symmetric_and_16_bit() -> None:
    for s, d, sp, dp in [(0x0A4D0001, 0x0A4D0002, 40000, 80), (1, 2, 3, 4), (0xFFFFFFFF, 0, 65535, 0)]:
        assert flow_hash(s, d, sp, dp) == flow_hash(d, s, dp, sp)
        assert 0 <= flow_hash(s, d, sp, dp) <= 0xFFFF
        assert flow_hash(s, d) == flow_hash(d, s)


def test_queue_for_spreads_flows() -> None:
    seen = {queue_for(4, 0x0A4D0001, 0x0A4D0002, port, 80) for port in range(32768, 32868)}
    assert seen == {0, 1, 2, 3}


def test_program_is_whole_instructions() -> None:
    code = steering_instructions()
    assert len(code) % 8 == 0 and len(code) // 8 < 64


PROBE = textwrap.dedent(
    """
    import json, socket, subprocess, time
    from aiostack.drivers.steering import SteeringProgram, frame_hash, queue_for
    from aiostack.drivers.tap import TapDriver
    from aiostack.ip.ipv4 import aton
    Q = 4
    d = TapDriver("st0", queues=Q, host_addr="10.77.0.1/24", offloads=("csum",))
    prog = SteeringProgram()
    prog.attach(d.fileno(0))
    subprocess.run(["ip", "neigh", "replace", "10.77.0.2", "lladdr", d.mac.hex(":"), "dev", "st0"], check=True)
    time.sleep(0.2)
    for q in range(Q):  # whatever the kernel sent while the link came up
        for p in d.rx_burst(q, 256):
            p.free()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for port in range(20000, 20200):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("10.77.0.1", port))
        u.sendto(b"x" * 32, ("10.77.0.2", 9))
        u.close()
    for port in range(30000, 30050):  # TCP SYNs from chosen ports
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setblocking(False)
        t.bind(("10.77.0.1", port))
        try:
            t.connect(("10.77.0.2", 80))
        except BlockingIOError:
            pass
        t.close()
    subprocess.run(["ping", "-c", "3", "-i", "0.05", "-W", "0.2", "10.77.0.2"], capture_output=True)
    subprocess.run(["ping", "-c", "1", "-W", "0.2", "10.77.0.99"], capture_output=True)  # an ARP request
    time.sleep(0.3)
    out = {"match": 0, "mismatch": [], "per_queue": [0] * Q, "kinds": {}, "frame_hash_differs": 0}
    for q in range(Q):
        while True:
            pkts = d.rx_burst(q, 256)
            if not pkts:
                break
            for p in pkts:
                b = p.tobytes()
                p.free()
                et = int.from_bytes(b[12:14], "big")
                if et != 0x0800:
                    kind, want = "non-ip", 0
                else:
                    ip = b[14:]
                    ihl = (ip[0] & 15) * 4
                    proto = ip[9]
                    src, dst = int.from_bytes(ip[12:16], "big"), int.from_bytes(ip[16:20], "big")
                    if proto in (6, 17) and not int.from_bytes(ip[6:8], "big") & 0x3FFF:
                        sp, dp = int.from_bytes(ip[ihl:ihl + 2], "big"), int.from_bytes(ip[ihl + 2:ihl + 4], "big")
                        kind, want = {6: "tcp", 17: "udp"}[proto], queue_for(Q, src, dst, sp, dp)
                    else:
                        kind, want = "ip-other", queue_for(Q, src, dst)
                out["kinds"][kind] = out["kinds"].get(kind, 0) + 1
                out["frame_hash_differs"] += frame_hash(b) % Q != want
                out["per_queue"][q] += 1
                if want == q:
                    out["match"] += 1
                else:
                    out["mismatch"].append([kind, q, want])
    print(json.dumps(out))
    """
)


def test_kernel_frames_land_on_the_queue_the_hash_names(netns: NetNS) -> None:
    need_tool("ping", "iputils-ping")
    res = netns.run([sys.executable, "-c", PROBE], check=False, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["mismatch"] == []
    assert out["frame_hash_differs"] == 0
    assert out["kinds"].get("udp", 0) >= 200 and out["kinds"].get("tcp", 0) >= 50
    assert out["kinds"].get("ip-other", 0) >= 3 and out["kinds"].get("non-ip", 0) >= 1
    assert sum(1 for n in out["per_queue"] if n) == 4  # every queue got flows


@pytest.mark.parametrize("ports", [(40000, 80), (80, 40000)])
def test_python_hash_matches_the_layout_of_the_port_word(ports: tuple[int, int]) -> None:
    sp, dp = ports
    assert flow_hash(1, 2, sp, dp) == ((((1 ^ 2 ^ sp ^ dp) & 0xFFFF) * MIX) >> 16) & 0xFFFF


def test_even_ports_alone_still_spread() -> None:
    """Linux gives connect() even ports: the queue must not be the parity of the ports."""
    queues = {queue_for(2, 0x0A5F0001, 0x0A5F0002, port, 8080) for port in range(40000, 40100, 2)}
    assert queues == {0, 1}


def test_outgoing_connections_pick_ports_that_steer_back() -> None:
    """A stack owning queue k of N connects from ephemeral ports whose replies hash to k."""
    from aiostack.drivers.buffers import PacketPool
    from aiostack.ip.ipv4 import aton
    from aiostack.ip.stack import IPStack
    from aiostack.tcp.layer import TcpLayer

    for queue in range(3):
        ip = IPStack(PacketPool(count=256), 0.0)
        ip.add_interface("t0", bytes.fromhex("020000000002"), "10.77.0.2/24")
        tcp = TcpLayer(ip)
        ip.steer_to(queue, 3)
        for _ in range(20):
            conn = tcp.connect(aton("10.77.0.1"), 80, now=0.0)
            # the reply's 4-tuple, as the kernel sends it: from the peer to us
            assert queue_for(3, conn.remote_addr, conn.local_addr, conn.remote_port, conn.local_port) == queue
    with pytest.raises(ValueError):
        IPStack(PacketPool(count=8), 0.0).steer_to(3, 3)


def _frame(proto: int, *, frag: int = 0, ports: tuple[int, int] = (40000, 80), ihl: int = 5) -> bytes:
    import dpkt

    src, dst = bytes([10, 77, 0, 1]), bytes([10, 77, 0, 2])
    l4: bytes = dpkt.tcp.TCP(sport=ports[0], dport=ports[1]).pack() if proto == 6 else \
        dpkt.udp.UDP(sport=ports[0], dport=ports[1]).pack() if proto == 17 else b"\x08\x00\x00\x00" * 2
    ip = dpkt.ip.IP(src=src, dst=dst, p=proto, data=l4, hl=ihl, opts=b"\x01" * 4 * (ihl - 5))
    ip.mf, ip.offset = frag >> 13, (frag & 0x1FFF) * 8
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=0x0800, data=ip))


def test_frame_hash_reads_frames_as_the_program_does() -> None:
    a, b = 0x0A4D0001, 0x0A4D0002
    assert frame_hash(_frame(6)) == flow_hash(a, b, 40000, 80)
    assert frame_hash(_frame(17, ports=(53, 5353))) == flow_hash(a, b, 53, 5353)
    assert frame_hash(_frame(6, ihl=7)) == flow_hash(a, b, 40000, 80)  # ports after the options
    assert frame_hash(_frame(1)) == flow_hash(a, b)  # ICMP: the addresses only
    assert frame_hash(_frame(6, frag=0x2000)) == flow_hash(a, b)  # a first fragment (MF)
    assert frame_hash(_frame(17, frag=100)) == flow_hash(a, b)  # a later fragment
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    assert frame_hash(arp) == 0
    assert frame_hash(_frame(6)[:30]) == 0  # truncated: the program's load fails, it returns 0
    assert frame_hash(_frame(6)[14:], offset=0) == flow_hash(a, b, 40000, 80)  # from the IP header
