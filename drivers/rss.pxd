# C types of the RSS hash for the compiled build (Cython, pure-Python mode).

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer

cdef Py_ssize_t _ETH_HLEN
cdef int _ETHERTYPE_IPV4
cdef int _ETHERTYPE_VLAN
cdef int _PROTO_TCP
cdef int _PROTO_UDP


cdef class Toeplitz:
    cdef public bytes key
    cdef public Py_ssize_t max_len
    cdef public const unsigned int[::1] table


cpdef object flow_hash(object frame, Py_ssize_t offset, Py_ssize_t length, Toeplitz toeplitz)


@cython.locals(end=cython.Py_ssize_t, l3=cython.Py_ssize_t, ethertype=cython.int, vihl=cython.int,
               ihl=cython.Py_ssize_t, h=cython.uint, proto=cython.int, p=cython.Py_ssize_t)
cdef long long _peek_hash(const unsigned char* frame, Py_ssize_t size, Py_ssize_t offset, Py_ssize_t length,
                          const unsigned int* t) noexcept


@cython.locals(i=cython.Py_ssize_t)
cdef unsigned int _hash_at(unsigned int h, const unsigned int* table, Py_ssize_t pos, const unsigned char* data,
                           Py_ssize_t at, Py_ssize_t n) noexcept


@cython.locals(i=cython.Py_ssize_t)
cdef unsigned int _hash_into(unsigned int h, const unsigned int[::1] table, Py_ssize_t pos,
                             const unsigned char[::1] data, Py_ssize_t at, Py_ssize_t n) except? 0xFFFFFFFF


cdef inline object _flow_hash_buffer(object frame, Py_ssize_t offset, Py_ssize_t length, Toeplitz toeplitz):
    """flow_hash in C: the frame through the buffer protocol (no memoryview object), the table as
    a pointer (flow_hash checked that it covers 12 input bytes)."""
    cdef Py_buffer view
    cdef long long h
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    h = _peek_hash(<const unsigned char*>view.buf, view.len, offset, length, &toeplitz.table[0])
    PyBuffer_Release(&view)
    return None if h < 0 else h
