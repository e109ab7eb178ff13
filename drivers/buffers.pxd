# C types of the pooled packet buffers for the compiled build (Cython, pure-Python mode).

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.string cimport memcpy

cdef bint _COMPILED


cdef inline void _copy_bytes(bytearray dst, Py_ssize_t at, bytearray src, Py_ssize_t start, Py_ssize_t n) noexcept:
    # What the pure build's slice assignment does, as one memcpy (the caller checked the bounds).
    memcpy(PyByteArray_AS_STRING(dst) + at, PyByteArray_AS_STRING(src) + start, n)

cdef class PacketPool


cdef class Packet:
    cdef public bytearray buf
    cdef public object view
    cdef public PacketPool pool
    cdef public long long start
    cdef public long long end
    cdef public bint in_use
    cdef public bint csum_valid
    cdef public long long csum_start
    cdef public long long csum_offset
    cdef public long long gso_type
    cdef public long long gso_size
    cdef public long long hdr_len
    cdef public long long queue
    cdef public long long rss_hash

    @cython.locals(n=cython.Py_ssize_t, start=cython.Py_ssize_t, end=cython.Py_ssize_t)
    cpdef copy_from(self, Packet src)
    cpdef reset(self, long long headroom)
    cpdef free(self)


cdef class PacketPool:
    cdef public list _free
    cdef public long long _made
    cdef public long long allocs
    cdef public long long count
    cdef public long long failures
    cdef public long long grow_by
    cdef public long long grows
    cdef public long long headroom
    cdef public long long initial
    cdef public long long size

    cpdef bint _grow(self) except -1
    @cython.locals(free=list)
    cpdef Packet try_alloc(self)
    cpdef long long frame_capacity(self)
    cpdef free(self, Packet pkt)
