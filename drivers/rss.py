"""Receive-side scaling: the Toeplitz hash as NICs compute it, and a minimal flow peek.

The algorithm is Microsoft's RSS hash ("RSS Hashing Functions" / "Verifying the RSS Hash
Calculation" in the Windows driver docs; the same text is in the Intel 82599 datasheet, 7.1.2.8):
for every bit of the input, most significant bit of the first byte first, if the bit is set XOR
the 32 bits of the secret key that start at that bit position into the result. The input for IPv4
is ``src addr || dst addr || src port || dst port`` in network byte order (12 bytes), or just the
two addresses (8 bytes) when the packet carries no usable ports.

Bit-by-bit is slow in Python, so :class:`Toeplitz` precomputes, for every byte position of the
input, the XOR contribution of each of the 256 byte values (``table[pos * 256 + byte]``). A hash is then
one table lookup and one XOR per input byte — the same trick DPDK's ``rte_thash`` and FreeBSD use.

Why the stack cares: the device spreads flows over queues by this hash, and each queue belongs to
one reactor (share-nothing). A reactor opening a connection can compute the hash of the *reply*
tuple and pick a source port whose replies land on its own queue. With :data:`SYMMETRIC_KEY`
(0x6d5a repeated, Woo & Park, "Scalable TCP Session Monitoring with Symmetric Receive-side
Scaling", 2012) both directions of a flow hash the same, so that choice is simply "a port whose
own tuple hashes to my queue".
"""

from __future__ import annotations

from array import array

__all__ = [
    "MAX_INPUT_LEN",
    "MICROSOFT_KEY",
    "SYMMETRIC_KEY",
    "Toeplitz",
    "default_toeplitz",
    "flow_hash",
    "queue_for",
]

MICROSOFT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
"""The 40-byte key of Microsoft's RSS verification suite (also many NICs' default key)."""

SYMMETRIC_KEY = bytes.fromhex("6d5a") * 20
"""A 40-byte key with a 16-bit period, so hash(src, dst, sport, dport) == hash(dst, src, dport,
sport): swapping the addresses shifts the input by 32 bits and the ports by 16, both multiples of
the key's period, so every set bit meets the same key window."""

MAX_INPUT_LEN = 36
"""The longest input a 40-byte key covers (IPv6 4-tuple: 16 + 16 + 2 + 2); 36*8 + 32 = 320 bits."""

_ETH_HLEN = 14
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_VLAN = 0x8100
_PROTO_TCP = 6
_PROTO_UDP = 17


class Toeplitz:
    """A Toeplitz hasher for one key, with per-byte-position lookup tables.

    ``table[pos * 256 + byte]`` is the 32-bit contribution of ``byte`` at input position ``pos``;
    the hash of ``data`` is the XOR of ``table[i * 256 + data[i]]``. The tables cover inputs of up
    to :attr:`max_len` bytes (key length - 4). One flat array of unsigned 32-bit integers, so the
    compiled build reads it as C memory.
    """

    __slots__ = ("key", "max_len", "table")

    def __init__(self, key: bytes = SYMMETRIC_KEY) -> None:
        key = bytes(key)
        if len(key) < 5:
            raise ValueError("a Toeplitz key needs at least 5 bytes (32 bits of window + 1 byte)")
        self.key = key
        self.max_len = min(len(key) - 4, MAX_INPUT_LEN)
        nbits = len(key) * 8
        k = int.from_bytes(key, "big")
        table = array("I", bytes(4 * 256 * self.max_len))
        for pos in range(self.max_len):
            # Key window for input bit pos*8 + j (j = 0 is the byte's most significant bit).
            windows = [(k >> (nbits - 32 - (pos * 8 + j))) & 0xFFFFFFFF for j in range(8)]
            row = pos * 256
            for v in range(1, 256):
                low = v & -v  # lowest set bit; the rest of v is already computed
                table[row + v] = table[row + (v ^ low)] ^ windows[8 - low.bit_length()]
        self.table = table

    def hash(self, data: bytes | bytearray | memoryview) -> int:
        """The 32-bit Toeplitz hash of ``data`` (at most :attr:`max_len` bytes)."""
        if len(data) > self.max_len:
            raise ValueError(f"input of {len(data)} bytes exceeds the key's {self.max_len}-byte reach")
        return _hash_into(0, self.table, 0, bytes(data), 0, len(data))

    def hash_ipv4(self, src: int, dst: int, sport: int | None = None, dport: int | None = None) -> int:
        """Hash of an IPv4 flow: ``src||dst||sport||dport`` (network order), or ``src||dst`` when
        the ports are None (the 2-tuple hash NICs use for non-TCP/UDP traffic and fragments)."""
        if sport is None or dport is None:
            return self.hash(src.to_bytes(4, "big") + dst.to_bytes(4, "big"))
        return self.hash(src.to_bytes(4, "big") + dst.to_bytes(4, "big") + sport.to_bytes(2, "big")
                         + dport.to_bytes(2, "big"))

    def __repr__(self) -> str:
        return f"Toeplitz(key={self.key.hex()})"


_default: Toeplitz | None = None


def default_toeplitz() -> Toeplitz:
    """A shared :class:`Toeplitz` with :data:`SYMMETRIC_KEY` (built once, on first use)."""
    global _default
    if _default is None:
        _default = Toeplitz(SYMMETRIC_KEY)
    return _default


def flow_hash(
    frame: bytes | bytearray | memoryview, offset: int, length: int, toeplitz: Toeplitz
) -> int | None:
    """The RSS hash a NIC would give the Ethernet II frame at ``frame[offset:offset+length]``.

    - IPv4 carrying TCP or UDP, not a fragment (MF clear and fragment offset 0), with the ports
      inside the frame: the 4-tuple hash (addresses and ports).
    - Any other IPv4 packet (ICMP, other protocols, every fragment — only the first fragment has
      ports, so hashing ports would split one datagram over queues): the 2-tuple hash.
    - Anything else (ARP, IPv6 for now, truncated or garbage frames): None — the caller picks a
      default queue.

    One 802.1Q VLAN tag is looked through, as NICs do. Never raises on malformed input; the
    checks are a NIC's header peek, not validation (checksums and lengths are the IP layer's
    job). ValueError for a key too short to hash a 4-tuple (under 16 bytes).
    """
    if offset < 0 or length < 0 or offset + length > len(frame):
        return None
    if not isinstance(frame, (bytes, bytearray)):
        frame = bytes(frame)  # the compiled build reads bytes and bytearrays as C memory
    h = flow_hash_in(frame, offset, offset + length, toeplitz)
    return None if h < 0 else h


def flow_hash_in(buf: bytes | bytearray, start: int, end: int, toeplitz: Toeplitz) -> int:
    """:func:`flow_hash` of the frame at ``buf[start:end]`` (``0 <= start <= end <= len(buf)``,
    which the caller guarantees — a packet's own bounds), -1 where that gives None. The memory
    link's receive path: no ``None`` to box, and the compiled build reads the buffer as C memory."""
    if toeplitz.max_len < 12:
        raise ValueError(f"a {len(toeplitz.key)}-byte key cannot hash an IPv4 4-tuple (16 bytes at least)")
    l3 = start + _ETH_HLEN
    if l3 + 20 > end:
        return -1
    ethertype = (buf[start + 12] << 8) | buf[start + 13]
    if ethertype == _ETHERTYPE_VLAN:
        ethertype = (buf[start + 16] << 8) | buf[start + 17]
        l3 += 4
        if l3 + 20 > end:
            return -1
    if ethertype != _ETHERTYPE_IPV4:
        return -1
    vihl = buf[l3]
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or l3 + ihl > end:
        return -1
    t = toeplitz.table
    h = _hash_into(0, t, 0, buf, l3 + 12, 8)  # the two addresses
    proto = buf[l3 + 9]
    if proto != _PROTO_TCP and proto != _PROTO_UDP:
        return h
    if ((buf[l3 + 6] << 8) | buf[l3 + 7]) & 0x3FFF:  # MF flag or a fragment offset
        return h
    p = l3 + ihl
    if p + 4 > end:
        return h
    return _hash_into(h, t, 8, buf, p, 4)  # the two ports


def _hash_into(h: int, table: array, pos: int, data: bytes | bytearray, at: int, n: int) -> int:
    """``h`` XOR the contributions of ``data[at:at+n]`` as input bytes ``pos..pos+n-1``."""
    for i in range(n):
        h ^= table[((pos + i) << 8) | data[at + i]]
    return h


def queue_for(hash: int, num_queues: int) -> int:
    """The queue a hash selects: ``hash % num_queues``.

    Real NICs index an indirection table (RETA, typically 128 entries) with the hash's low bits
    and take the queue from the entry, so the table can be rewritten to rebalance load without
    changing the key. A software RETA would go here. A plain modulo matches the default table
    (entries filled round-robin) whenever the queue count divides the table size.
    """
    return hash % num_queues
