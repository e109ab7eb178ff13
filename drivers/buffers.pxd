# C types of the pooled packet buffers for the compiled build (Cython, pure-Python mode).

cdef class Packet:
    cdef public object buf
    cdef public object view
    cdef public object pool
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


cdef class PacketPool:
    cdef public list _free
    cdef public long long _made
    cdef public long long allocs
    cdef public long long count
    cdef public long long failures
    cdef public long long headroom
    cdef public long long size
