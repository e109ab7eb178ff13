# C types of a parsed TCP segment for the compiled build (Cython, pure-Python mode).

cimport cython

cdef class Segment:
    # header fields
    cdef public long long src_port
    cdef public long long dst_port
    cdef public long long seq
    cdef public long long ack
    cdef public long long flags
    cdef public long long window
    cdef public long long urgent
    cdef public long long header_len
    # the payload view and the options (None / () when absent)
    cdef public object payload
    cdef public object mss
    cdef public object wscale
    cdef public object sack_blocks
    cdef public object ts_val
    cdef public object ts_ecr
    cdef public bint sack_permitted
    cdef public bint bad_options


cpdef object parse(object buf, long long off, long long end)
@cython.locals(olen=cython.longlong, hlen=cython.longlong)
cpdef long long write_header(bytearray buf, long long off, long long src_port, long long dst_port, long long seq,
                             long long ack, long long flags, long long window, object options=*,
                             long long urgent=*) except -1
