"""Deterministic flow steering: a hash the kernel computes in a BPF program and the stack computes
in Python, so every frame of a flow reaches the queue — and the reactor — that owns it.

The hash (:func:`flow_hash`) is symmetric, as a NIC's Toeplitz hash with a symmetric key is, and
cheap enough for a dozen BPF instructions::

    h = mix(fold16(saddr ^ daddr ^ ((sport << 16) | dport)))   # TCP/UDP, not a later fragment
    h = mix(fold16(saddr ^ daddr))                              # other IPv4
    h = 0                                                       # not IPv4 (ARP: the first queue)

``fold16(x) = (x ^ (x >> 16)) & 0xFFFF``, ``mix(f) = ((f * MIX) >> 16) & 0xFFFF``. Swapping source
and destination leaves ``fold16`` unchanged (of the port word it is ``sport ^ dport``), so both
directions of a flow hash alike; ``mix`` makes every input bit count in ``h % queues``. A
later fragment carries no ports: its queue is the IPs-only one, which for a fragmented datagram
differs from the first fragment's; the stacks' reassembly is per reactor, so fragmented
datagrams are for the queue that gets all their fragments — the multi-core issue routes them.

The program is a ``BPF_PROG_TYPE_SOCKET_FILTER`` in eBPF, loaded with the bpf() syscall (no libbpf).
It reads the packet with the legacy ``LD_ABS`` / ``LD_IND`` instructions, which load big-endian
fields in host order and end the program (returning 0) if they read past the packet. One builder
(:func:`steering_instructions`) makes it for either consumer; they differ only in where the
packet data starts:

- a multi-queue **TAP** (``TUNSETSTEERINGEBPF``; drivers/net/tun.c: ``tun_ebpf_select_queue``
  returns the program's value modulo the number of queues) runs it on the frame from its
  Ethernet header: ``net_offset=14``, IPv4 recognised by the ethertype at offset 12;
- a **PACKET_FANOUT** group of type ``PACKET_FANOUT_EBPF`` (net/packet/af_packet.c:
  ``fanout_demux_bpf`` returns ``bpf_prog_run_clear_cb(prog, skb) % num``, and
  ``packet_rcv_fanout`` hands the frame to member ``f->arr[idx]``) runs it on an skb received
  from the device, whose data starts at the *network* header — ``eth_type_trans`` pulled the
  Ethernet header before the packet taps see it: ``net_offset=0``, and the ethertype is no longer
  in the data, so IPv4 is recognised by ``skb->protocol`` (``struct __sk_buff`` field
  ``protocol``, the big-endian ethertype as a u32, read from the context). Frames the host sends
  on the interface reach taps with their data at the Ethernet header (``dev_queue_xmit_nit``);
  the AF_PACKET driver keeps them out of the group (``PACKET_FANOUT_FLAG_IGNORE_OUTGOING``), so
  the program never sees one. The fanout program is attached with
  ``setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, <prog fd as int>)`` on any member
  (``fanout_set_data_ebpf``: the group holds its own reference to the program).
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from .bpf import BpfError, load_program

__all__ = ["SteeringProgram", "flow_hash", "frame_hash", "queue_for", "steering_instructions",
           "veth_peer_instructions"]

# -- eBPF encoding (include/uapi/linux/bpf.h, bpf_common.h) --------------------------------------
_LD, _LDX, _ALU64, _JMP = 0x00, 0x01, 0x07, 0x05
_W, _H, _B = 0x00, 0x08, 0x10
_ABS, _IND, _MEM = 0x20, 0x40, 0x60
_K, _X = 0x00, 0x08
_MUL, _MOV, _AND, _LSH, _RSH, _XOR = 0x20, 0xB0, 0x50, 0x60, 0x70, 0xA0
_JEQ, _JNE, _JSET, _EXIT = 0x10, 0x50, 0x40, 0x90

_INSN = struct.Struct("<BBhi")

BPF_PROG_TYPE_SOCKET_FILTER = 1
TUNSETSTEERINGEBPF = 0x800454E0
SOL_PACKET = 263
PACKET_FANOUT_DATA = 22  # <linux/if_packet.h>
SK_BUFF_PROTOCOL = 16
"""``offsetof(struct __sk_buff, protocol)`` (include/uapi/linux/bpf.h: len, pkt_type, mark,
queue_mapping, protocol — five u32s)."""

ETH_HLEN = 14
MIX = 0x7FEB352D
"""Multiplier that spreads the folded hash: without it the queue of ``h % 2`` would be the parity
of ``sport ^ dport``, and Linux gives connect() even ports — every flow on one queue (measured)."""
ETHERTYPE_IPV4 = 0x0800
_SKB_PROTOCOL_IPV4 = socket.htons(ETHERTYPE_IPV4)
"""``skb->protocol`` of an IPv4 packet as the program loads it: the __be16 stored in a u32, read in
host order (0x0008 on little-endian machines)."""


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def steering_instructions(net_offset: int = ETH_HLEN) -> bytes:
    """The program, as eBPF bytecode, for packet data whose IPv4 header starts at ``net_offset``:
    14 (after the Ethernet header: a TAP's steering program) or 0 (at the network header: a
    ``PACKET_FANOUT_EBPF`` program). Registers: r6 = the skb for LD_ABS/IND, r7 = IPv4 header
    length, r8 = the hash being built.

    The two differ only in the IPv4 test (the ethertype at ``net_offset - 2`` with ``LD_ABS``, or
    ``skb->protocol`` from the context when no link header is in the data) and in the ``LD_ABS``/
    ``LD_IND`` offsets; both are the same number of instructions, so every jump is the same."""
    if net_offset == 0:
        # The context (r1) is read before the first LD_ABS, which clobbers r1..r5.
        is_ipv4 = [
            _insn(_LDX | _MEM | _W, dst=0, src=1, off=SK_BUFF_PROTOCOL),    # r0 = skb->protocol
            _insn(_JMP | _JNE | _K, dst=0, off=0, imm=_SKB_PROTOCOL_IPV4),  # not IPv4: return 0
        ]
    elif net_offset >= 2:
        is_ipv4 = [
            _insn(_LD | _ABS | _H, imm=net_offset - 2),                     # r0 = ethertype
            _insn(_JMP | _JNE | _K, dst=0, off=0, imm=ETHERTYPE_IPV4),      # not IPv4: return 0
        ]
    else:
        raise ValueError(f"net_offset must be 0 or at least 2 (an ethertype before it), not {net_offset}")
    n = net_offset
    p: list[bytes] = [
        _insn(_ALU64 | _MOV | _X, dst=6, src=1),                     # r6 = ctx
        *is_ipv4,                                                    # (the jump is patched below)
        _insn(_LD | _ABS | _W, imm=n + 12),                          # r0 = saddr
        _insn(_ALU64 | _MOV | _X, dst=8, src=0),                     # r8 = saddr
        _insn(_LD | _ABS | _W, imm=n + 16),                          # r0 = daddr
        _insn(_ALU64 | _XOR | _X, dst=8, src=0),                     # r8 ^= daddr
        _insn(_LD | _ABS | _H, imm=n + 6),                           # r0 = flags | fragment offset
        _insn(_JMP | _JSET | _K, dst=0, off=0, imm=0x3FFF),          # MF or offset: IPs only (patched)
        _insn(_LD | _ABS | _B, imm=n + 9),                           # r0 = protocol
        _insn(_JMP | _JEQ | _K, dst=0, off=1, imm=6),                # TCP
        _insn(_JMP | _JNE | _K, dst=0, off=0, imm=17),               # not UDP: IPs only (patched)
        _insn(_LD | _ABS | _B, imm=n),                               # r0 = version | IHL
        _insn(_ALU64 | _AND | _K, dst=0, imm=0x0F),
        _insn(_ALU64 | _LSH | _K, dst=0, imm=2),
        _insn(_ALU64 | _MOV | _X, dst=7, src=0),                     # r7 = IHL * 4
        _insn(_LD | _IND | _W, src=7, imm=n),                        # r0 = sport << 16 | dport
        _insn(_ALU64 | _XOR | _X, dst=8, src=0),                     # r8 ^= ports
        # fold: (label "ips")
        _insn(_ALU64 | _MOV | _X, dst=0, src=8),                     # r0 = r8
        _insn(_ALU64 | _RSH | _K, dst=8, imm=16),                    # r8 >>= 16
        _insn(_ALU64 | _XOR | _X, dst=0, src=8),                     # r0 ^= r8
        _insn(_ALU64 | _AND | _K, dst=0, imm=0xFFFF),
        _insn(_ALU64 | _MUL | _K, dst=0, imm=MIX),                   # mix: every bit reaches the low ones
        _insn(_ALU64 | _RSH | _K, dst=0, imm=16),
        _insn(_ALU64 | _AND | _K, dst=0, imm=0xFFFF),
        _insn(_JMP | _EXIT),
        # (label "zero")
        _insn(_ALU64 | _MOV | _K, dst=0, imm=0),
        _insn(_JMP | _EXIT),
    ]
    ips, zero = 18, 26

    def jump(at: int, target: int) -> None:
        code, regs, _off, imm = _INSN.unpack(p[at])
        p[at] = _INSN.pack(code, regs, target - at - 1, imm)

    jump(2, zero)
    jump(8, ips)
    jump(11, ips)
    return b"".join(p)


def flow_hash(saddr: int, daddr: int, sport: int | None = None, dport: int | None = None) -> int:
    """What the program computes for an IPv4 packet (addresses as 32-bit integers; ports None
    for a protocol without them or a later fragment). Symmetric in (saddr, sport) ↔ (daddr, dport)."""
    x = saddr ^ daddr
    if sport is not None and dport is not None:
        x ^= (sport << 16) | dport
    return ((((x ^ (x >> 16)) & 0xFFFF) * MIX) >> 16) & 0xFFFF


def queue_for(queues: int, saddr: int, daddr: int, sport: int | None = None, dport: int | None = None) -> int:
    """The queue (of ``queues``) the kernel steers such a packet to."""
    return flow_hash(saddr, daddr, sport, dport) % queues


def frame_hash(frame: bytes | bytearray | memoryview, offset: int = ETH_HLEN) -> int:
    """What the program returns for ``frame`` (its IPv4 header at ``offset``: 14 after an Ethernet
    header) — the software RSS of a device without the program (drivers/shared_link.py). 0 for
    anything that is not IPv4, or too short to read, as the program's failed loads return 0."""
    if offset and (len(frame) < offset or frame[offset - 2] != 0x08 or frame[offset - 1] != 0x00):
        return 0
    if len(frame) < offset + 20:
        return 0
    saddr = int.from_bytes(frame[offset + 12 : offset + 16], "big")
    daddr = int.from_bytes(frame[offset + 16 : offset + 20], "big")
    if (frame[offset + 6] & 0x3F) or frame[offset + 7] or frame[offset + 9] not in (6, 17):
        return flow_hash(saddr, daddr)
    at = offset + (frame[offset] & 0x0F) * 4
    if len(frame) < at + 4:
        return 0
    return flow_hash(saddr, daddr, (frame[at] << 8) | frame[at + 1], (frame[at + 2] << 8) | frame[at + 3])


def veth_peer_instructions(queues: int) -> bytes:
    """A TCX egress program (``BPF_PROG_TYPE_SCHED_CLS``) for the *kernel's* end of a veth pair
    whose other end an AF_XDP driver reads with ``queues`` queues: it sets each outgoing skb's hash
    so that the kernel's transmit-queue pick lands on queue ``flow_hash % queues`` — and a veth
    delivers a frame on the receive queue numbered like the peer's transmit queue, so the flow
    hash steers the driver's queues, as the TAP steering program and the fanout program do.

    Why the hash and not ``skb->queue_mapping``: the egress hook runs before
    ``netdev_core_pick_tx`` (net/core/dev.c), which overwrites a mapping written by BPF (measured:
    45 of 200 datagrams on the queue written), while it picks a socket-less or new flow's queue
    with ``skb_tx_hash`` = ``reciprocal_scale(skb->hash, queues)`` = ``hash * queues >> 32`` —
    so ``bpf_set_hash(q * ceil(2**32 / queues))`` gives queue q (measured: 200 of 200 datagrams
    and 40 of 40 TCP flows on the hash's queue); a socket caches the queue of its first packet,
    and a re-pick (``ooo_okay``) computes the same one again."""
    if not 1 <= queues <= 256:
        raise ValueError(f"queues must be in 1..256, not {queues}")
    code = steering_instructions(ETH_HLEN)  # tc egress sees the frame from its Ethernet header
    insns = [code[i : i + 8] for i in range(0, len(code), 8)]
    epilogue = len(insns)
    for i, ins in enumerate(insns):
        if ins[0] == _JMP | _EXIT:  # every exit (r0 = the hash) goes to the epilogue instead
            insns[i] = _insn(_JMP | 0x00, off=epilogue - i - 1)  # BPF_JA
    scale = -(-(1 << 32) // queues)
    insns += [
        _insn(_ALU64 | 0x90 | _K, dst=0, imm=queues),                        # r0 %= queues (BPF_MOD)
        _insn(0x04 | _MUL | _K, dst=0, imm=scale - (1 << 32) if scale >= 1 << 31 else scale),  # w0 *= scale
        _insn(_ALU64 | _MOV | _X, dst=1, src=6),                             # r1 = the skb
        _insn(_ALU64 | _MOV | _X, dst=2, src=0),                             # r2 = the hash to set
        _insn(_JMP | 0x80, imm=BPF_FUNC_SET_HASH),                           # call bpf_set_hash
        _insn(_ALU64 | _MOV | _K, dst=0, imm=0),                             # TC_ACT_OK
        _insn(_JMP | _EXIT),
    ]
    return b"".join(insns)


BPF_FUNC_SET_HASH = 48


class SteeringProgram:
    """The steering program loaded into the kernel: an fd to give to ``TUNSETSTEERINGEBPF``
    (:meth:`attach`), or with ``fanout=True`` the same hash read from the network header, for a
    ``PACKET_FANOUT_EBPF`` group (:meth:`attach_fanout`). Closing it unloads the program once
    nothing else holds it (a TAP or a fanout group keeps its own reference)."""

    def __init__(self, *, fanout: bool = False) -> None:
        self.fanout = fanout
        self.net_offset = 0 if fanout else ETH_HLEN
        code = steering_instructions(self.net_offset)
        try:
            fd = load_program(code, "aiostack_fanout" if fanout else "aiostack_steer",
                              BPF_PROG_TYPE_SOCKET_FILTER, expected_attach_type=0)
        except BpfError as e:
            if e.errno == errno.EPERM:
                raise PermissionError(e.errno, "loading a BPF program needs root (CAP_BPF or CAP_SYS_ADMIN)") from None
            raise
        self.fd: int = fd

    def attach(self, tap_fd: int) -> None:
        """Make it the steering program of the TAP that ``tap_fd`` is a queue of."""
        import fcntl

        if self.fanout:
            raise ValueError("a fanout program reads from the network header; a TAP needs SteeringProgram()")
        fcntl.ioctl(tap_fd, TUNSETSTEERINGEBPF, struct.pack("i", self.fd))

    def attach_fanout(self, sock: socket.socket) -> None:
        """Make it the program of the ``PACKET_FANOUT_EBPF`` group that packet socket ``sock`` is a
        member of (``fanout_set_data_ebpf``: any member will do; the group takes its own
        reference, and a later call replaces the program for the whole group)."""
        if not self.fanout:
            raise ValueError("a TAP program reads from the Ethernet header; a fanout group needs "
                             "SteeringProgram(fanout=True)")
        sock.setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, struct.pack("i", self.fd))

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> SteeringProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
