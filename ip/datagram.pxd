# C types of the received-datagram object for the compiled build (Cython, pure-Python mode).

cdef class Datagram:
    cdef public bint csum_valid
    cdef public long long dst
    cdef public bint dst_bcast
    cdef public long long end
    cdef public long long flags
    cdef public long long header_len
    cdef public long long ident
    cdef public object iface
    cdef public long long ip_off
    cdef public long long l4
    cdef public bint link_bcast
    cdef public long long offset
    cdef public long long proto
    cdef public long long src
    cdef public long long tos
    cdef public long long total_length
    cdef public long long ttl
    cdef public object view


cdef class Transport:
    cpdef input(self, Datagram d, double now)
