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

The program is a ``BPF_PROG_TYPE_SOCKET_FILTER`` in eBPF, loaded with the bpf() syscall (no libbpf)
and given to a multi-queue TAP with ``TUNSETSTEERINGEBPF`` (drivers/net/tun.c:
``tun_ebpf_select_queue`` returns the program's value modulo the number of queues; packet
offsets there start at the Ethernet header). It reads the packet with the legacy ``LD_ABS`` /
``LD_IND`` instructions, which load big-endian fields in host order and end the program
(returning 0) if they read past the packet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct

__all__ = ["SteeringProgram", "flow_hash", "frame_hash", "queue_for", "steering_instructions"]

# -- eBPF encoding (include/uapi/linux/bpf.h, bpf_common.h) --------------------------------------
_LD, _LDX, _ALU64, _JMP = 0x00, 0x01, 0x07, 0x05
_W, _H, _B = 0x00, 0x08, 0x10
_ABS, _IND = 0x20, 0x40
_K, _X = 0x00, 0x08
_MUL, _MOV, _AND, _LSH, _RSH, _XOR = 0x20, 0xB0, 0x50, 0x60, 0x70, 0xA0
_JEQ, _JNE, _JSET, _EXIT = 0x10, 0x50, 0x40, 0x90

_INSN = struct.Struct("<BBhi")

BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SOCKET_FILTER = 1
SYS_BPF = 321  # x86-64
TUNSETSTEERINGEBPF = 0x800454E0

ETH_HLEN = 14
MIX = 0x7FEB352D
"""Multiplier that spreads the folded hash: without it the queue of ``h % 2`` would be the parity
of ``sport ^ dport``, and Linux gives connect() even ports — every flow on one queue (measured)."""
ETHERTYPE_IPV4 = 0x0800


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def steering_instructions() -> bytes:
    """The program, as eBPF bytecode (registers: r6 = the skb for LD_ABS/IND, r7 = IPv4 header
    length, r8 = the hash being built)."""
    p: list[bytes] = [
        _insn(_ALU64 | _MOV | _X, dst=6, src=1),                     # r6 = ctx
        _insn(_LD | _ABS | _H, imm=12),                              # r0 = ethertype
        _insn(_JMP | _JNE | _K, dst=0, off=0, imm=ETHERTYPE_IPV4),   # not IPv4: return 0 (patched)
        _insn(_LD | _ABS | _W, imm=ETH_HLEN + 12),                   # r0 = saddr
        _insn(_ALU64 | _MOV | _X, dst=8, src=0),                     # r8 = saddr
        _insn(_LD | _ABS | _W, imm=ETH_HLEN + 16),                   # r0 = daddr
        _insn(_ALU64 | _XOR | _X, dst=8, src=0),                     # r8 ^= daddr
        _insn(_LD | _ABS | _H, imm=ETH_HLEN + 6),                    # r0 = flags | fragment offset
        _insn(_JMP | _JSET | _K, dst=0, off=0, imm=0x3FFF),          # MF or offset: IPs only (patched)
        _insn(_LD | _ABS | _B, imm=ETH_HLEN + 9),                    # r0 = protocol
        _insn(_JMP | _JEQ | _K, dst=0, off=1, imm=6),                # TCP
        _insn(_JMP | _JNE | _K, dst=0, off=0, imm=17),               # not UDP: IPs only (patched)
        _insn(_LD | _ABS | _B, imm=ETH_HLEN),                        # r0 = version | IHL
        _insn(_ALU64 | _AND | _K, dst=0, imm=0x0F),
        _insn(_ALU64 | _LSH | _K, dst=0, imm=2),
        _insn(_ALU64 | _MOV | _X, dst=7, src=0),                     # r7 = IHL * 4
        _insn(_LD | _IND | _W, src=7, imm=ETH_HLEN),                 # r0 = sport << 16 | dport
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


class _ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
    ]


class SteeringProgram:
    """The steering program loaded into the kernel: an fd to give to ``TUNSETSTEERINGEBPF``.
    Closing it (or the TAP's own reference going away) unloads it."""

    def __init__(self) -> None:
        code = steering_instructions()
        insns = ctypes.create_string_buffer(code, len(code))
        license_ = ctypes.create_string_buffer(b"GPL")
        log = ctypes.create_string_buffer(65536)
        attr = _ProgLoadAttr(
            prog_type=BPF_PROG_TYPE_SOCKET_FILTER,
            insn_cnt=len(code) // 8,
            insns=ctypes.addressof(insns),
            license=ctypes.addressof(license_),
            log_level=1,
            log_size=len(log),
            log_buf=ctypes.addressof(log),
            prog_name=b"aiostack_steer",
        )
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fd = libc.syscall(SYS_BPF, BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
        if fd < 0:
            err = ctypes.get_errno()
            detail = log.value.decode(errors="replace").strip()
            if err == errno.EPERM:
                raise PermissionError(err, "loading a BPF program needs root (CAP_BPF or CAP_SYS_ADMIN)")
            raise OSError(err, f"BPF_PROG_LOAD of the steering program failed: {os.strerror(err)}"
                               + (f"\n{detail}" if detail else ""))
        self.fd: int = fd

    def attach(self, tap_fd: int) -> None:
        """Make it the steering program of the TAP that ``tap_fd`` is a queue of."""
        import fcntl

        fcntl.ioctl(tap_fd, TUNSETSTEERINGEBPF, struct.pack("i", self.fd))

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> SteeringProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
