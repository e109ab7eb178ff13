# C types of the RSS hash for the compiled build (Cython, pure-Python mode).

cimport cython

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


# buf: bytes or bytearray, read as C memory (Cython coerces both to a pointer)
@cython.locals(l3=cython.Py_ssize_t, ethertype=cython.int, vihl=cython.int, ihl=cython.Py_ssize_t,
               h=cython.uint, proto=cython.int, p=cython.Py_ssize_t)
cpdef long long flow_hash_in(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end, Toeplitz toeplitz) except? -2


@cython.locals(i=cython.Py_ssize_t)
cdef unsigned int _hash_into(unsigned int h, const unsigned int[::1] table, Py_ssize_t pos,
                             const unsigned char* data, Py_ssize_t at, Py_ssize_t n) except? 0xFFFFFFFF
