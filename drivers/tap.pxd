# C types of the TAP driver for the compiled build (Cython, pure-Python mode).

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from libc cimport errno as _libc_errno
from posix.unistd cimport read, write

from aiostack.drivers.base cimport Driver, QueueCounters
from aiostack.drivers.buffers cimport Packet, PacketPool
from aiostack.drivers.vnet cimport pack_into, parse_into

cdef bint _COMPILED
cdef int _EAGAIN
cdef int _EBADF
cdef int _EIO


# read(2) of one frame into buf[at:]: the count, or -errno (a signal retries).
cdef inline Py_ssize_t _c_read(int fd, bytearray buf, Py_ssize_t at) noexcept:
    cdef Py_ssize_t room = PyByteArray_GET_SIZE(buf) - at
    cdef Py_ssize_t n
    if at < 0 or room <= 0:
        return -_libc_errno.EIO
    while True:
        n = read(fd, PyByteArray_AS_STRING(buf) + at, room)
        if n >= 0:
            return n
        if _libc_errno.errno != _libc_errno.EINTR:
            return -_libc_errno.errno


# write(2) of buf[start:end]: 0, or the errno (a signal retries).
cdef inline int _c_write(int fd, bytearray buf, Py_ssize_t start, Py_ssize_t end) noexcept:
    if start < 0 or end > PyByteArray_GET_SIZE(buf) or end < start:
        return _libc_errno.EIO
    while True:
        if write(fd, PyByteArray_AS_STRING(buf) + start, end - start) >= 0:
            return 0
        if _libc_errno.errno != _libc_errno.EINTR:
            return _libc_errno.errno


cdef class TapDriver(Driver):
    cdef public str name
    cdef public PacketPool pool
    cdef public bytes mac
    cdef public long long mtu
    cdef public long long num_queues
    cdef public object offloads
    cdef public PacketPool large_pool
    cdef public bint _gro
    cdef public bint vnet_hdr
    cdef public Py_ssize_t hdr_size
    cdef public object host_addr
    cdef public object ifindex
    cdef public object queue_index
    cdef public list _fds
    cdef public list _others
    cdef public bint _closed
    cdef public list _counters

    @cython.locals(fd=cython.int, c=QueueCounters, pool=PacketPool, headroom=cython.Py_ssize_t,
                   hsz=cython.Py_ssize_t, at=cython.Py_ssize_t, full=cython.Py_ssize_t, out=list,
                   nbytes=cython.longlong, pkt=Packet, n=cython.Py_ssize_t, compiled=cython.bint)
    cpdef list rx_burst(self, long long queue, long long max_count)
    @cython.locals(fd=cython.int, c=QueueCounters, hsz=cython.Py_ssize_t, sent=cython.longlong,
                   nbytes=cython.longlong, pkt=Packet, start=cython.Py_ssize_t, end=cython.Py_ssize_t,
                   hstart=cython.Py_ssize_t, err=cython.int, compiled=cython.bint)
    cpdef long long tx_burst(self, long long queue, list packets) except? -1

