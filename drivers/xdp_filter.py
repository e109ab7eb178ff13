"""The AF_XDP driver's XDP program, hand-assembled: the ingress filter's rules, then a redirect of
every frame they let through into the AF_XDP socket of the queue it arrived on.

One program serves every queue of the interface. Per frame (``struct xdp_md``: ``data``,
``data_end``, ``rx_queue_index``)::

    not IPv4, or shorter than Ethernet + 20 bytes           → redirect (ARP and the rest: no rule
                                                              can match them)
    parse: saddr, daddr, protocol, total length; for TCP/UDP that is not a later fragment and
           whose header is in the frame: ports (and TCP flags)
    for each rule, in order: every field it names must match; on a match its counters go up
           (packets, and bytes = 14 + the IPv4 total length) and its action runs: drop →
           XDP_DROP (the frame never reaches a ring), pass → redirect now, count → next rule
    redirect: bpf_redirect_map(xsks, rx_queue_index, XDP_PASS)

The rules arrive as objects with the fields of :class:`FilterRule` (``aiostack.ip.filter.Rule``
is one; the drivers know nothing of how rules are written). Counters live in an array map keyed
``queue * len(rules) + rule``, 16 bytes each (packets, bytes; added with ``BPF_ATOMIC`` so two
CPUs never lose an update), so each reactor reads its own queue's.

Why a frame goes to the socket of the queue it arrived on and not to one the flow hash names:
``xsk_rcv_check`` (net/xdp/xsk.c) refuses a frame whose ``rxq->queue_index`` differs from the
socket's bound queue (-EINVAL, counted as a redirect error), so an XDP program cannot move frames
between queues; the device's RSS decides (measured on a 2-queue veth: with queue 0's XSKMAP entry
pointed at queue 1's socket, all 94 of 200 datagrams that arrived on queue 0 were lost).

Encoding: include/uapi/linux/bpf.h, Documentation/bpf/standardization/instruction-set.rst. The
verifier needs every packet access proved in bounds (``data + n > data_end`` checks); comparisons
use the JMP32 class so 32-bit values such as addresses ≥ 128.0.0.0 compare as unsigned words.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Protocol

__all__ = ["COUNTER", "FilterRule", "xdp_program"]

COUNTER = struct.Struct("=QQ")
"""One counter map value: packets, bytes."""

_INSN = struct.Struct("<BBhi")

# opcodes
_LDX_W, _LDX_H, _LDX_B = 0x61, 0x69, 0x71
_ST_W, _STX_W = 0x62, 0x63
_ATOMIC_DW = 0xDB  # BPF_STX | BPF_ATOMIC | BPF_DW; imm BPF_ADD
_MOV64_X, _MOV64_K, _ADD64_K, _ADD64_X = 0xBF, 0xB7, 0x07, 0x0F
_AND32_K, _AND64_K, _LSH64_K = 0x54, 0x57, 0x67
_BE = 0xDC  # BPF_ALU | BPF_END | BPF_TO_BE: to network order, i.e. a byte swap on x86
_JA, _JGT64_X, _CALL, _EXIT = 0x05, 0x2D, 0x85, 0x95
_JEQ32_K, _JNE32_K, _JGT32_K, _JLT32_K = 0x16, 0x56, 0x26, 0xA6
_LD_IMM64 = 0x18
_PSEUDO_MAP_FD = 1

BPF_FUNC_MAP_LOOKUP_ELEM = 1
BPF_FUNC_REDIRECT_MAP = 51
XDP_DROP, XDP_PASS = 1, 2

# where the parsed fields live on the program's stack (offsets from r10)
_KEY, _SADDR, _DADDR, _PROTO, _SPORT, _DPORT, _TFLAGS, _HAS_PORTS, _HAS_FLAGS, _LEN = (
    -4, -8, -12, -16, -20, -24, -28, -32, -36, -40)


class FilterRule(Protocol):
    """What the program needs of a rule (``aiostack.ip.filter.Rule``)."""

    action: str  # "drop" | "pass" | "count"
    src: tuple[int, int] | None  # (network, prefix length)
    dst: tuple[int, int] | None
    proto: int | None
    sport: tuple[int, int] | None  # inclusive range
    dport: tuple[int, int] | None
    flags_set: int  # TCP flag bits that must be set
    flags_clear: int  # ... and that must be clear


class _Asm:
    """Instructions with labels: a jump names its target, resolved by :meth:`code`."""

    def __init__(self) -> None:
        self.insns: list[tuple[int, int, int, int | str, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, dst: int = 0, src: int = 0, off: int | str = 0, imm: int = 0) -> None:
        if imm >= 1 << 31:
            imm -= 1 << 32  # the 32-bit immediate as the signed field it is
        self.insns.append((code, dst, src, off, imm))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def ld_map(self, dst: int, fd: int) -> None:
        self.op(_LD_IMM64, dst, _PSEUDO_MAP_FD, 0, fd)
        self.op(0, 0, 0, 0, 0)

    def code(self) -> bytes:
        out = []
        for at, (code, dst, src, off, imm) in enumerate(self.insns):
            if isinstance(off, str):
                off = self.labels[off] - at - 1
            out.append(_INSN.pack(code, (src << 4) | dst, off, imm))
        return b"".join(out)


def _mask(plen: int) -> int:
    return (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0


def xdp_program(xsks_fd: int, counters_fd: int | None, rules: Sequence[FilterRule], queues: int) -> bytes:
    """The program's bytecode for the XSKMAP ``xsks_fd`` and, with rules, the counter array
    ``counters_fd`` (``queues * len(rules)`` entries)."""
    a = _Asm()
    a.op(_LDX_W, 9, 1, 16)  # r9 = ctx->rx_queue_index (r6..r9 survive helper calls)
    a.op(_LDX_W, 7, 1, 0)  # r7 = data
    a.op(_LDX_W, 8, 1, 4)  # r8 = data_end
    if rules:
        assert counters_fd is not None
        a.op(_MOV64_X, 2, 7)
        a.op(_ADD64_K, 2, 0, 0, 34)
        a.op(_JGT64_X, 2, 8, "redirect")  # no room for Ethernet + a minimal IPv4 header
        a.op(_LDX_H, 0, 7, 12)
        a.op(_JNE32_K, 0, 0, "redirect", 0x0008)  # ethertype 0x0800, as a little-endian load
        a.op(_LDX_B, 0, 7, 14)
        a.op(_AND64_K, 0, 0, 0, 0x0F)
        a.op(_LSH64_K, 0, 0, 0, 2)  # r0 = IHL * 4
        a.op(_JLT32_K, 0, 0, "redirect", 20)  # malformed: the stack counts it
        for field, at in ((_SADDR, 26), (_DADDR, 30)):
            a.op(_LDX_W, 1, 7, at)
            a.op(_BE, 1, 0, 0, 32)
            a.op(_STX_W, 10, 1, field)
        a.op(_LDX_H, 1, 7, 16)
        a.op(_BE, 1, 0, 0, 16)
        a.op(_ADD64_K, 1, 0, 0, 14)
        a.op(_STX_W, 10, 1, _LEN)  # bytes counted: Ethernet + the IPv4 total length
        for field in (_SPORT, _DPORT, _TFLAGS, _HAS_PORTS, _HAS_FLAGS):
            a.op(_ST_W, 10, 0, field, 0)
        a.op(_LDX_B, 1, 7, 23)
        a.op(_STX_W, 10, 1, _PROTO)
        a.op(_LDX_H, 2, 7, 20)
        a.op(_BE, 2, 0, 0, 16)
        a.op(_AND64_K, 2, 0, 0, 0x1FFF)
        a.op(_JNE32_K, 2, 0, "rules", 0)  # a later fragment: no transport header
        a.op(_JEQ32_K, 1, 0, "l4", 6)
        a.op(_JNE32_K, 1, 0, "rules", 17)
        a.label("l4")
        a.op(_MOV64_X, 2, 7)
        a.op(_ADD64_X, 2, 0)
        a.op(_ADD64_K, 2, 0, 0, 14)  # r2 = the transport header
        a.op(_MOV64_X, 3, 2)
        a.op(_ADD64_K, 3, 0, 0, 4)
        a.op(_JGT64_X, 3, 8, "rules")
        for field, at in ((_SPORT, 0), (_DPORT, 2)):
            a.op(_LDX_H, 3, 2, at)
            a.op(_BE, 3, 0, 0, 16)
            a.op(_STX_W, 10, 3, field)
        a.op(_ST_W, 10, 0, _HAS_PORTS, 1)
        a.op(_JNE32_K, 1, 0, "rules", 6)
        a.op(_MOV64_X, 3, 2)
        a.op(_ADD64_K, 3, 0, 0, 14)
        a.op(_JGT64_X, 3, 8, "rules")
        a.op(_LDX_B, 3, 2, 13)
        a.op(_STX_W, 10, 3, _TFLAGS)
        a.op(_ST_W, 10, 0, _HAS_FLAGS, 1)
        a.label("rules")
        n = len(rules)
        for i, rule in enumerate(rules):
            nxt = f"next{i}"
            for field, prefix in ((_SADDR, rule.src), (_DADDR, rule.dst)):
                if prefix is not None and prefix[1]:
                    a.op(_LDX_W, 1, 10, field)
                    a.op(_AND32_K, 1, 0, 0, _mask(prefix[1]))
                    a.op(_JNE32_K, 1, 0, nxt, prefix[0] & _mask(prefix[1]))
            if rule.proto is not None:
                a.op(_LDX_W, 1, 10, _PROTO)
                a.op(_JNE32_K, 1, 0, nxt, rule.proto)
            for field, span in ((_SPORT, rule.sport), (_DPORT, rule.dport)):
                if span is not None:
                    a.op(_LDX_W, 1, 10, _HAS_PORTS)
                    a.op(_JEQ32_K, 1, 0, nxt, 0)
                    a.op(_LDX_W, 1, 10, field)
                    a.op(_JLT32_K, 1, 0, nxt, span[0])
                    a.op(_JGT32_K, 1, 0, nxt, span[1])
            if rule.flags_set or rule.flags_clear:
                a.op(_LDX_W, 1, 10, _HAS_FLAGS)
                a.op(_JEQ32_K, 1, 0, nxt, 0)
                a.op(_LDX_W, 1, 10, _TFLAGS)
                a.op(_MOV64_X, 2, 1)
                a.op(_AND32_K, 2, 0, 0, rule.flags_set | rule.flags_clear)
                a.op(_JNE32_K, 2, 0, nxt, rule.flags_set)
            # matched: count (key = queue * n + i), then act
            a.op(_MOV64_X, 1, 9)
            a.op(0x27, 1, 0, 0, n)  # r1 *= n (BPF_ALU64 | BPF_MUL | BPF_K)
            a.op(_ADD64_K, 1, 0, 0, i)
            a.op(_STX_W, 10, 1, _KEY)
            a.ld_map(1, counters_fd)
            a.op(_MOV64_X, 2, 10)
            a.op(_ADD64_K, 2, 0, 0, _KEY)
            a.op(_CALL, 0, 0, 0, BPF_FUNC_MAP_LOOKUP_ELEM)
            a.op(0x15, 0, 0, f"act{i}", 0)  # JEQ64 r0, 0: a queue beyond the map: act uncounted
            a.op(_MOV64_K, 1, 0, 0, 1)
            a.op(_ATOMIC_DW, 0, 1, 0, 0)
            a.op(_LDX_W, 1, 10, _LEN)
            a.op(_ATOMIC_DW, 0, 1, 8, 0)
            a.label(f"act{i}")
            if rule.action == "drop":
                a.op(_MOV64_K, 0, 0, 0, XDP_DROP)
                a.op(_EXIT)
            elif rule.action == "pass":
                a.op(_JA, 0, 0, "redirect")
            a.label(nxt)
    a.label("redirect")
    a.ld_map(1, xsks_fd)
    a.op(_MOV64_X, 2, 9)
    a.op(_MOV64_K, 3, 0, 0, XDP_PASS)  # no socket on this queue: the kernel's stack has it
    a.op(_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP)
    a.op(_EXIT)
    return a.code()
