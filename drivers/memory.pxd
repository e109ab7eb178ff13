# C types of the in-process links for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.drivers.base cimport Driver, QueueCounters
from aiostack.drivers.buffers cimport Packet, PacketPool
from aiostack.drivers.rss cimport Toeplitz, flow_hash_in

from libc.stdint cimport uint64_t
from posix.unistd cimport read, write

cdef bint _COMPILED
cdef long long ETH_HLEN


# The eventfd signal as libc calls (what os.eventfd_write/eventfd_read do, minus the Python call;
# a failed read is an already drained count, as the pure build's BlockingIOError is).
cdef inline void _efd_post(int fd) noexcept:
    cdef uint64_t one = 1
    <void>write(fd, &one, 8)


cdef inline void _efd_drain(int fd) noexcept:
    cdef uint64_t count
    <void>read(fd, &count, 8)

cdef object _eventfd_read
cdef object _eventfd_write


cdef class MemoryPort


cdef class _Medium:
    cpdef bint _carry(self, MemoryPort sender, Packet pkt) except -1
    cpdef _detach(self, MemoryPort port)


cdef class MemoryPort(Driver):
    cdef public str name
    cdef public bytes mac
    cdef public long long mtu
    cdef public long long num_queues
    cdef public PacketPool pool
    cdef public object offloads
    cdef public object large_pool
    cdef public long long rx_queue_cap
    cdef public Toeplitz toeplitz
    cdef public long long _max_tx
    cdef public long long _max_rx
    cdef public list _rxq
    cdef public list _counters
    cdef public list _efds
    cdef public list _signaled
    cdef public _Medium _medium
    cdef public bint closed

    @cython.locals(rxq=list, out=list, n=cython.Py_ssize_t, nbytes=cython.longlong, c=QueueCounters, pkt=Packet)
    cpdef list rx_burst(self, long long queue, long long max_count)
    @cython.locals(c=QueueCounters, medium=_Medium, max_tx=cython.longlong, sent=cython.longlong,
                   nbytes=cython.longlong, n=cython.longlong, pkt=Packet)
    cpdef long long tx_burst(self, long long queue, list packets) except? -1
    @cython.locals(n=cython.longlong, h=cython.longlong, q=cython.Py_ssize_t, c=QueueCounters, rxq=list, pkt=Packet)
    cpdef _receive(self, Packet src)
    cpdef _unsignal(self, long long queue)


cdef class MemoryLink(_Medium):
    cdef public list _ends

    @cython.locals(port=MemoryPort)
    cpdef bint _carry(self, MemoryPort sender, Packet pkt) except -1


cdef class MemorySwitch(_Medium):
    cdef public list _ports
    cdef public dict _table
    cdef public long long dropped
    cdef public long long filtered
    cdef public long long flooded
    cdef public long long forwarded
    cdef public long long learned

    @cython.locals(start=cython.Py_ssize_t, buf=bytearray, src=bytes, port=MemoryPort)
    cpdef bint _carry(self, MemoryPort sender, Packet pkt) except -1
