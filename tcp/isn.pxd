# C types of the ISN generator for the compiled build (Cython, pure-Python mode): SipHash in C
# on unsigned 64-bit words (the masks of the Python spelling are no-ops there).

cimport cython

cdef unsigned long long M64, _LEN_12, _LEN_8  # isn.py's, typed: the 64-bit arithmetic in C
cdef long long MASK

@cython.locals(m=cython.ulonglong, block=cython.int, rounds=cython.int, _r=cython.int)
cpdef unsigned long long siphash24(unsigned long long v0, unsigned long long v1, unsigned long long v2,
                                   unsigned long long v3, unsigned long long m0, unsigned long long m1)


cdef class IsnGenerator:
    cdef public unsigned long long _isn_v0, _isn_v1, _isn_v2, _isn_v3
    cdef public unsigned long long _ts_v0, _ts_v1, _ts_v2, _ts_v3

    @cython.locals(f=cython.ulonglong, ticks=cython.longlong)
    cpdef long long isn(self, double now, unsigned long long laddr, unsigned long long lport,
                        unsigned long long raddr, unsigned long long rport)
    cpdef long long ts_offset(self, unsigned long long laddr, unsigned long long raddr)
