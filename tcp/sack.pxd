# C types of the SACK scoreboard for the compiled build (Cython, pure-Python mode).

cdef long long MASK, HALF  # seq.py's, typed: sequence arithmetic in C


cdef class Scoreboard:
    cdef public long long _anchor
    cdef public long long _una
    cdef public object _starts
    cdef public object _ends
    cdef public object _cum
    cdef public long long sacked_bytes
    cdef public bint reneged
    cdef public object _stats
    cdef public object _drops

    cpdef bint holds_sacks(self)
