# C types of the sequence arithmetic for the compiled build (Cython, pure-Python mode): the
# comparisons are C functions that other compiled modules call directly (cimport).

cimport cython

cdef long long _MASK, _HALF  # the typed copies of MASK and HALF (see seq.py)


cpdef long long seq_add(long long a, long long n)
cpdef long long seq_sub(long long a, long long b)
cpdef bint seq_lt(long long a, long long b)
@cython.locals(d=cython.longlong)
cpdef bint seq_le(long long a, long long b)
cpdef bint seq_gt(long long a, long long b)
@cython.locals(d=cython.longlong)
cpdef bint seq_ge(long long a, long long b)
cpdef bint seq_in(long long x, long long start, long long end)
cpdef long long seq_max(long long a, long long b)
cpdef long long seq_min(long long a, long long b)
