# C types of the AF_PACKET driver for the compiled build (Cython, pure-Python mode).

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.memoryview cimport PyMemoryView_GET_BUFFER
from libc.stdint cimport uint32_t
from libc.string cimport memcpy

from aiostack.drivers.base cimport Driver, QueueCounters
from aiostack.drivers.buffers cimport Packet, PacketPool
from aiostack.drivers.vnet cimport pack_into

cdef bint _COMPILED
cdef unsigned int _TP_STATUS_USER
cdef unsigned int _TP_STATUS_KERNEL
cdef unsigned int _TP_STATUS_AVAILABLE
cdef unsigned int _TP_STATUS_SEND_REQUEST
cdef unsigned int _TP_STATUS_LOSING
cdef unsigned int _TP_STATUS_COPY
cdef unsigned int _PACKET_OUTGOING
cdef Py_ssize_t _ETH_HLEN
cdef Py_ssize_t _VLAN_HLEN
cdef Py_ssize_t _VNET_HDR_LEN
cdef unsigned int _CSUM_OK
cdef unsigned int _RX_ODD
cdef Py_ssize_t _V2_TX_DATA


# The rings are the mmap'ed memory behind a plain memoryview (ring.view): its buffer pointer is
# read in O(1) (no buffer acquisition); every access is bounds-checked against its length.

cdef inline unsigned int _ring_load32(object view, Py_ssize_t off) noexcept:
    cdef Py_buffer* b = PyMemoryView_GET_BUFFER(view)
    cdef uint32_t v = 0xFFFFFFFF  # out of range: not a status any caller accepts
    if off >= 0 and off + 4 <= b.len:
        memcpy(&v, <char*>b.buf + off, 4)  # little-endian host (x86), as the struct "<I" reads
    return v


cdef inline void _ring_store32(object view, Py_ssize_t off, uint32_t v) noexcept:
    cdef Py_buffer* b = PyMemoryView_GET_BUFFER(view)
    if off >= 0 and off + 4 <= b.len:
        memcpy(<char*>b.buf + off, &v, 4)


cdef inline (unsigned int, unsigned int, unsigned int, unsigned int, unsigned int) _v2_rx_header(
        object view, Py_ssize_t off) noexcept:
    # struct tpacket2_hdr + sockaddr_ll, as _V2_RX "<IIIH28xB": status, len, snaplen, mac, pkttype
    cdef Py_buffer* b = PyMemoryView_GET_BUFFER(view)
    cdef const unsigned char* p
    cdef uint32_t status, tp_len, snap
    if off < 0 or off + 43 > b.len:
        return 0, 0, 0, 0, 0  # not TP_STATUS_USER: nothing to read
    p = <const unsigned char*>b.buf + off
    memcpy(&status, p, 4)
    memcpy(&tp_len, p + 4, 4)
    memcpy(&snap, p + 8, 4)
    return status, tp_len, snap, p[12] | (p[13] << 8), p[42]


cdef inline (unsigned int, unsigned int, unsigned int) _vnet_gso(object view, Py_ssize_t off) noexcept:
    # virtio_net_hdr's gso_type, hdr_len, gso_size, as _VNET_GSO "<xBHH"
    cdef Py_buffer* b = PyMemoryView_GET_BUFFER(view)
    cdef const unsigned char* p
    if off < 0 or off + 6 > b.len:
        return 0, 0, 0
    p = <const unsigned char*>b.buf + off
    return p[1], p[2] | (p[3] << 8), p[4] | (p[5] << 8)


cdef inline bint _ring_to_packet(object view, Py_ssize_t at, bytearray buf, Py_ssize_t start,
                                 Py_ssize_t n) noexcept:
    cdef Py_buffer* b = PyMemoryView_GET_BUFFER(view)
    if n < 0 or at < 0 or at + n > b.len or start < 0 or start + n > PyByteArray_GET_SIZE(buf):
        return False
    memcpy(PyByteArray_AS_STRING(buf) + start, <char*>b.buf + at, n)
    return True


cdef inline bint _packet_to_ring(bytearray buf, Py_ssize_t start, object view, Py_ssize_t at,
                                 Py_ssize_t n) noexcept:
    cdef Py_buffer* b = PyMemoryView_GET_BUFFER(view)
    if n < 0 or at < 0 or at + n > b.len or start < 0 or start + n > PyByteArray_GET_SIZE(buf):
        return False
    memcpy(<char*>b.buf + at, PyByteArray_AS_STRING(buf) + start, n)
    return True


cdef class _RxRing:
    cdef public object block_size
    cdef public object fd
    cdef public Py_ssize_t frame_size
    cdef public object mm
    cdef public Py_ssize_t nblocks
    cdef public Py_ssize_t nframes
    cdef public tuple offsets
    cdef public Py_ssize_t pos
    cdef public object recv_into
    cdef public Py_ssize_t remaining
    cdef public object sock
    cdef public bint synced
    cdef public int version
    cdef public object view
    cdef public Py_ssize_t where


cdef class _TxRing:
    cdef public object big
    cdef public int big_fd
    cdef public object fd
    cdef public Py_ssize_t frame_size
    cdef public object mm
    cdef public Py_ssize_t nframes
    cdef public tuple offsets
    cdef public Py_ssize_t pos
    cdef public object send
    cdef public object sock
    cdef public object view


cdef class PacketDriver(Driver):
    cdef public str name
    cdef public PacketPool pool
    cdef public object mac
    cdef public long long mtu
    cdef public long long num_queues
    cdef public object offloads
    cdef public PacketPool large_pool
    cdef public bint _closed
    cdef public list _rx
    cdef public list _tx
    cdef public object _steering
    cdef public tuple _others
    cdef public object queue_index
    cdef public str iface
    cdef public object netns
    cdef public int rx_version
    cdef public bint qdisc_bypass
    cdef public object fanout
    cdef public long long _tx_frames
    cdef public Py_ssize_t _rx_vnet
    cdef public Py_ssize_t _tx_vnet
    cdef public bint _tso
    cdef public list _counters
    cdef public bint _ignore_outgoing
    cdef public object ifindex
    cdef public object kernel_mac

    @cython.locals(rx=_RxRing)
    cpdef list rx_burst(self, long long queue, long long max_count)
    @cython.locals(offsets=tuple, nframes=cython.Py_ssize_t, i=cython.Py_ssize_t, pool=PacketPool,
                   large=PacketPool, head=cython.Py_ssize_t, cap=cython.Py_ssize_t, vh=cython.Py_ssize_t,
                   big_cap=cython.Py_ssize_t, compiled=cython.bint, c=QueueCounters, out=list,
                   nbytes=cython.longlong, off=cython.Py_ssize_t, status=cython.uint, tp_len=cython.uint,
                   snap=cython.uint, mac=cython.uint, pkttype=cython.uint, pkt=Packet, a=cython.Py_ssize_t,
                   end=cython.Py_ssize_t, gso_type=cython.uint, hdr_len=cython.uint, gso_size=cython.uint)
    cpdef list _rx_v2(self, _RxRing rx, long long queue, long long max_count)
    @cython.locals(tx=_TxRing, c=QueueCounters, offsets=tuple, nframes=cython.Py_ssize_t, i=cython.Py_ssize_t,
                   vh=cython.Py_ssize_t, max_len=cython.Py_ssize_t, compiled=cython.bint, sent=cython.longlong,
                   pending=cython.longlong, nbytes=cython.longlong, full=cython.bint, pkt=Packet,
                   start=cython.Py_ssize_t, end=cython.Py_ssize_t, n=cython.Py_ssize_t, off=cython.Py_ssize_t,
                   slot=cython.uint, d=cython.Py_ssize_t, whole=cython.bint, hstart=cython.Py_ssize_t)
    cpdef long long tx_burst(self, long long queue, list packets) except? -1
