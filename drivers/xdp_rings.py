"""The AF_XDP ring walks: frames between the UMEM and pooled packets, descriptors between the rings.

Small plain functions over ints, lists and memoryviews (no closures, no generators), so a ``.pxd``
beside this module can type them for the compiled build. Each ring is mapped by the driver
(:mod:`.xdp`) and reached here through two casts of its mapping:

- ``w``: the ring as u32 words — ``w[prod]`` and ``w[cons]`` are the producer and consumer indexes
  (free-running u32 counters; an entry's slot is ``index & mask``);
- ``q``: the ring as u64 words — the descriptors. Fill and completion entries are one u64 (a UMEM
  address); RX and TX entries are ``struct xdp_desc`` (u64 addr, u32 len, u32 options), two u64
  words, ``len`` in the low half of the second (x86 is little-endian).

Ordering (Documentation/networking/af_xdp.rst, "rings"): a producer writes its entries, then
publishes the new producer index; a consumer reads the entries, then publishes its consumer index.
The kernel pairs these with barriers on its side; on x86 stores are not reordered with stores nor
loads with loads, and each index update here is one store after the entries' stores, so program
order is enough.
"""

from __future__ import annotations

from .base import QueueCounters
from .buffers import Packet, PacketPool
from .vnet import complete_csum

U32 = 0xFFFFFFFF


def rx_copy(
    rx_w: memoryview, rx_prod: int, rx_cons: int, rx_q: memoryview, rx_mask: int,
    fill_w: memoryview, fill_prod: int, fill_q: memoryview, fill_mask: int,
    umem: memoryview, pool: PacketPool, queue: int, max_count: int, c: QueueCounters, out: list[Packet],
) -> int:
    """Copy up to ``max_count`` received frames into packets from ``pool`` (appended to ``out``),
    giving each UMEM frame straight back to the kernel through the fill ring; returns their bytes.
    A frame larger than a pooled buffer is a counted drop; an empty pool stops the walk with the
    frame left in the ring."""
    cons = rx_w[rx_cons]
    n = (rx_w[rx_prod] - cons) & U32
    if n == 0:
        return 0
    if n > max_count:
        n = max_count
    head = pool.headroom
    cap = pool.size - head
    fprod = fill_w[fill_prod]
    nbytes = 0
    i = 0
    while i < n:
        slot = (cons & rx_mask) << 1
        addr = rx_q[slot]
        length = rx_q[slot + 1] & U32
        if length > cap:
            c.drop("frame_too_big")
        else:
            pkt = pool.try_alloc()
            if pkt is None:
                c.drop("pool_exhausted")
                break
            end = head + length
            pkt.view[head:end] = umem[addr : addr + length]
            pkt.end = end
            pkt.queue = queue
            out.append(pkt)
            nbytes += length
        fill_q[fprod & fill_mask] = addr  # aligned mode: the kernel rounds it to the chunk
        fprod = (fprod + 1) & U32
        cons = (cons + 1) & U32
        i += 1
    fill_w[fill_prod] = fprod
    rx_w[rx_cons] = cons
    return nbytes


def tx_copy(
    tx_w: memoryview, tx_prod: int, tx_cons: int, tx_q: memoryview, tx_mask: int,
    umem: memoryview, free: list[int], owned: bytearray, frame_shift: int, frame_cap: int,
    packets: list[Packet], c: QueueCounters,
) -> int:
    """Copy ``packets`` into free UMEM frames (``free``: their addresses; ``owned[addr >>
    frame_shift]`` is 1 while a frame is ours) and post them on the TX ring; frees every packet.
    Returns how many were posted (counted in ``c``'s tx counters); the rest are counted drops. The
    caller kicks the kernel."""
    prod = tx_w[tx_prod]
    room = (tx_mask + 1) - ((prod - tx_w[tx_cons]) & U32)
    posted = 0
    nbytes = 0
    for pkt in packets:
        start = pkt.start
        end = pkt.end
        n = end - start
        if n > frame_cap:
            c.drop("frame_too_big")
        elif room <= 0 or not free:
            c.drop("tx_ring_full")
        else:
            if pkt.csum_start >= 0:
                # The device finishes no checksums (offloads say so); a packet marked partial
                # anyway is finished here, as the kernel's skb_checksum_help would.
                complete_csum(pkt.buf, start, end, pkt.csum_start, pkt.csum_offset)
            addr = free.pop()
            owned[addr >> frame_shift] = 0
            umem[addr : addr + n] = pkt.view[start:end]
            slot = (prod & tx_mask) << 1
            tx_q[slot] = addr
            tx_q[slot + 1] = n
            prod = (prod + 1) & U32
            room -= 1
            posted += 1
            nbytes += n
        pkt.free()
    tx_w[tx_prod] = prod
    c.tx_packets += posted
    c.tx_bytes += nbytes
    return posted


def reclaim(
    comp_w: memoryview, comp_prod: int, comp_cons: int, comp_q: memoryview, comp_mask: int,
    free: list[int], owned: bytearray, frame_shift: int,
) -> int:
    """Take the completed TX frames back into ``free``; returns how many. An address already ours
    (a completion for a frame a restarted reactor had already counted free) is not added twice."""
    cons = comp_w[comp_cons]
    prod = comp_w[comp_prod]
    n = 0
    while cons != prod:
        addr = comp_q[cons & comp_mask]
        k = addr >> frame_shift
        if not owned[k]:
            owned[k] = 1
            free.append(addr)
            n += 1
        cons = (cons + 1) & U32
    comp_w[comp_cons] = cons
    return n


def pending(w: memoryview, prod: int, cons: int) -> int:
    """Entries between the consumer and the producer of a ring."""
    return (w[prod] - w[cons]) & U32
