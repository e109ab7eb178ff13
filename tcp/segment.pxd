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


cdef long long _HLEN, _MAX_HLEN, _TS_LEN, _NOP, _TS_KIND  # segment.py's private copies, typed

# The header is read and written through a pointer into the buffer: C loads and stores (the
# pure build indexes the bytes/bytearray itself with the same code).
@cython.locals(p="const unsigned char*", hlen=cython.longlong, w=cython.ulonglong, i=cython.longlong,
               start=cython.longlong, seg=Segment)
cpdef object parse(object buf, long long off, long long end, object view=*)

@cython.locals(w=cython.ulonglong)
cdef unsigned long long _u32(const unsigned char* p, long long i) noexcept

@cython.locals(kind=cython.longlong, olen=cython.longlong, shift=cython.longlong, j=cython.longlong,
               blocks=list)
cdef _parse_options(Segment seg, const unsigned char* p, long long i, long long end)

@cython.locals(p="unsigned char*", olen=cython.longlong, hlen=cython.longlong, i=cython.longlong)
cpdef long long write_header(bytearray buf, long long off, long long src_port, long long dst_port, long long seq,
                             long long ack, long long flags, long long window, bytes options=*,
                             long long urgent=*, long long ts_val=*, long long ts_ecr=*) except -1
