# C types of a parsed IPv4 header for the compiled build (Cython, pure-Python mode).

cdef class IPv4Header:
    cdef public long long dst
    cdef public long long flags
    cdef public long long header_len
    cdef public long long ident
    cdef public long long offset
    cdef public long long proto
    cdef public long long src
    cdef public long long tos
    cdef public long long total_length
    cdef public long long ttl
