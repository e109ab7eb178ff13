"""The bpf() syscall and the rtnetlink messages the AF_XDP driver needs, from plain Python (ctypes):
maps, program loading, BPF links, program info, and an interface's XDP attachment.

No libbpf: the programs are a few dozen hand-assembled instructions (:mod:`.xdp_filter`), as the
steering programs are (:mod:`.steering`). Constants and structure layouts are from
``include/uapi/linux/bpf.h``, ``if_link.h`` and ``rtnetlink.h`` (checked against this machine's
headers, kernel 6.18).

Why BPF links (``BPF_LINK_CREATE``) attach the XDP program rather than netlink's ``IFLA_XDP_FD``:
a link belongs to its fd, and ``bpf_xdp_link_release`` detaches the program when the last fd on it
closes — the process exiting, even by SIGKILL, closes it — so a dead stack cannot leave its
program on the interface. A program attached by netlink stays until someone removes it; the driver
looks for one of its own left that way (:func:`xdp_attached`, :func:`detach_xdp`) before it attaches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import struct

__all__ = [
    "BpfError",
    "Map",
    "detach_xdp",
    "link_create",
    "link_create_xdp",
    "load_program",
    "prog_name_by_id",
    "xdp_attached",
]

SYS_BPF = 321  # x86-64

# commands (enum bpf_cmd)
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_PROG_LOAD = 5
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_TEST_RUN = 10
BPF_LINK_CREATE = 28

# enum bpf_map_type / bpf_prog_type / bpf_attach_type
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_XSKMAP = 17
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37
BPF_TCX_EGRESS = 47

# XDP attach flags (if_link.h)
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3

# rtnetlink
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_SETLINK = 19
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
IFLA_XDP = 43
IFLA_XDP_FD = 1
IFLA_XDP_ATTACHED = 2
IFLA_XDP_FLAGS = 3
IFLA_XDP_PROG_ID = 4
NLA_F_NESTED = 1 << 15
XDP_ATTACHED_MODES = {1: "native", 2: "generic", 3: "offload", 4: "multi"}

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class BpfError(OSError):
    """A failed bpf() call, with the verifier's log when there is one."""


def _bpf(cmd: int, attr: ctypes.Structure | ctypes.Array[ctypes.c_char]) -> int:
    ret = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        if err == errno.EPERM:
            raise PermissionError(err, "bpf() needs root (CAP_BPF, CAP_NET_ADMIN)")
        raise BpfError(err, os.strerror(err))
    return int(ret)


class _MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * 16),
    ]


class _MapElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


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
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _LinkCreateAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("target_ifindex", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("pad", ctypes.c_uint64 * 4),
    ]


class _GetByIdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class Map:
    """A BPF map (an fd), closed with :meth:`close`; the kernel frees it once no program uses it."""

    def __init__(self, map_type: int, key_size: int, value_size: int, max_entries: int, name: str) -> None:
        attr = _MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                              max_entries=max_entries, map_name=name.encode()[:15])
        try:
            self.fd = _bpf(BPF_MAP_CREATE, attr)
        except BpfError as e:
            raise BpfError(e.errno, f"BPF_MAP_CREATE {name}: {e.strerror}") from None
        self.value_size = value_size
        self.max_entries = max_entries

    def update(self, key: int, value: bytes) -> None:
        k = ctypes.c_uint32(key)
        v = ctypes.create_string_buffer(value, self.value_size)
        _bpf(BPF_MAP_UPDATE_ELEM, _MapElemAttr(map_fd=self.fd, key=ctypes.addressof(k), value=ctypes.addressof(v)))

    def delete(self, key: int) -> None:
        k = ctypes.c_uint32(key)
        _bpf(BPF_MAP_DELETE_ELEM, _MapElemAttr(map_fd=self.fd, key=ctypes.addressof(k)))

    def lookup(self, key: int) -> bytes:
        k = ctypes.c_uint32(key)
        v = ctypes.create_string_buffer(self.value_size)
        _bpf(BPF_MAP_LOOKUP_ELEM, _MapElemAttr(map_fd=self.fd, key=ctypes.addressof(k), value=ctypes.addressof(v)))
        return v.raw

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def load_program(code: bytes, name: str, prog_type: int = BPF_PROG_TYPE_XDP,
                 expected_attach_type: int = BPF_XDP) -> int:
    """Load eBPF bytecode; the program's fd. A verifier rejection raises :class:`BpfError` with the
    verifier's log."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 16)
    attr = _ProgLoadAttr(
        prog_type=prog_type, insn_cnt=len(code) // 8, insns=ctypes.addressof(insns),
        license=ctypes.addressof(license_), log_level=1, log_size=len(log), log_buf=ctypes.addressof(log),
        prog_name=name.encode()[:15], expected_attach_type=expected_attach_type,
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except BpfError as e:
        detail = log.value.decode(errors="replace").strip()
        raise BpfError(e.errno, f"BPF_PROG_LOAD {name}: {e.strerror}" + (f"\n{detail[-4000:]}" if detail else "")) \
            from None


class _TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


def test_run(prog_fd: int, frame: bytes) -> int:
    """Run a loaded XDP program once on ``frame`` (``BPF_PROG_TEST_RUN``, no device involved);
    its return value (XDP_DROP 1, XDP_PASS 2, ...)."""
    data = ctypes.create_string_buffer(frame, len(frame))
    out = ctypes.create_string_buffer(len(frame) + 512)
    attr = _TestRunAttr(prog_fd=prog_fd, data_size_in=len(frame), data_in=ctypes.addressof(data),
                        data_size_out=len(out), data_out=ctypes.addressof(out), repeat=1)
    _bpf(BPF_PROG_TEST_RUN, attr)
    return int(attr.retval)


test_run.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def link_create_xdp(prog_fd: int, ifindex: int, mode_flags: int) -> int:
    """Attach an XDP program to interface ``ifindex`` through a BPF link (``mode_flags``:
    ``XDP_FLAGS_DRV_MODE`` or ``XDP_FLAGS_SKB_MODE``); the link's fd. EBUSY: something else is
    attached to the interface."""
    return link_create(prog_fd, ifindex, BPF_XDP, mode_flags)


def link_create(prog_fd: int, ifindex: int, attach_type: int, flags: int = 0) -> int:
    """Attach a program to interface ``ifindex`` (``BPF_XDP``, ``BPF_TCX_EGRESS`` ...) through a
    BPF link; the link's fd, which detaches the program when it is closed."""
    attr = _LinkCreateAttr(prog_fd=prog_fd, target_ifindex=ifindex, attach_type=attach_type, flags=flags)
    return _bpf(BPF_LINK_CREATE, attr)


def prog_name_by_id(prog_id: int) -> str | None:
    """The name of loaded program ``prog_id`` (None if it is gone)."""
    try:
        fd = _bpf(BPF_PROG_GET_FD_BY_ID, _GetByIdAttr(id=prog_id))
    except BpfError:
        return None
    try:
        info = ctypes.create_string_buffer(232)  # struct bpf_prog_info; name at offset 64
        _bpf(BPF_OBJ_GET_INFO_BY_FD, _InfoAttr(bpf_fd=fd, info_len=len(info), info=ctypes.addressof(info)))
        return info.raw[64:80].split(b"\0", 1)[0].decode(errors="replace")
    finally:
        os.close(fd)


# -- rtnetlink ------------------------------------------------------------------------------------
_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_NLATTR = struct.Struct("=HH")


def _nla(kind: int, payload: bytes) -> bytes:
    n = _NLATTR.size + len(payload)
    return _NLATTR.pack(n, kind) + payload + b"\0" * (-n % 4)


def _rtnl(msg_type: int, flags: int, ifindex: int, attrs: bytes = b"") -> bytes:
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0) + attrs
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | flags, 1, 0) + body)
        reply = s.recv(65536)
    length, kind, _f, _seq, _pid = _NLMSGHDR.unpack_from(reply)
    if kind == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", reply, _NLMSGHDR.size)
        if err:
            raise OSError(-err, os.strerror(-err))
    return reply[:length]


def _attrs(data: bytes, at: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while at + _NLATTR.size <= len(data):
        n, kind = _NLATTR.unpack_from(data, at)
        if n < _NLATTR.size:
            break
        out[kind & ~NLA_F_NESTED] = data[at + _NLATTR.size : at + n]
        at += (n + 3) & ~3
    return out


def xdp_attached(ifindex: int) -> tuple[str | None, int]:
    """The XDP attachment of interface ``ifindex`` in this thread's namespace: its mode
    ("native", "generic", ...; None when nothing is attached) and the program's id."""
    reply = _rtnl(RTM_GETLINK, 0, ifindex)
    link = _attrs(reply, _NLMSGHDR.size + _IFINFOMSG.size)
    xdp = _attrs(link.get(IFLA_XDP, b""), 0)
    attached = xdp.get(IFLA_XDP_ATTACHED, b"\0")[0]
    prog_id = struct.unpack("=I", xdp[IFLA_XDP_PROG_ID])[0] if IFLA_XDP_PROG_ID in xdp else 0
    return XDP_ATTACHED_MODES.get(attached), prog_id


def detach_xdp(ifindex: int, mode: str) -> None:
    """Remove a netlink-attached XDP program (``IFLA_XDP_FD`` -1) of ``mode`` from ``ifindex``. A
    program held by a BPF link cannot be removed this way (EBUSY): it goes when its link closes."""
    flags = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}.get(mode, 0)
    nested = _nla(IFLA_XDP_FD, struct.pack("=i", -1)) + _nla(IFLA_XDP_FLAGS, struct.pack("=I", flags))
    _rtnl(RTM_SETLINK, NLM_F_ACK, ifindex, _nla(IFLA_XDP | NLA_F_NESTED, nested))


def attach_xdp_netlink(ifindex: int, prog_fd: int, mode: str) -> None:
    """Attach a program the old way, by netlink (it stays until removed): only the tests use it, to
    leave a program behind as an older or foreign tool would."""
    flags = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}[mode]
    nested = _nla(IFLA_XDP_FD, struct.pack("=i", prog_fd)) + _nla(IFLA_XDP_FLAGS, struct.pack("=I", flags))
    _rtnl(RTM_SETLINK, NLM_F_ACK, ifindex, _nla(IFLA_XDP | NLA_F_NESTED, nested))

