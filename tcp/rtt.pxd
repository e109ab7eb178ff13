# C types of the RTT estimator for the compiled build (Cython, pure-Python mode).

cimport cython

cdef double _ALPHA, _BETA, _K, _NONE  # rtt.py's constants, typed: the arithmetic stays in C
cdef long long _MAX_SHIFT

cdef class RttEstimator:
    # C doubles (_NONE before the first sample): no float object of their own per connection
    cdef public double _min_rtt
    cdef public double _rttvar
    cdef public double _srtt
    cdef public long long backoffs
    cdef public double clock_granularity
    cdef public double initial_rto
    cdef public double max_rto
    cdef public double min_rto

    cpdef bint sampled(self)
    cpdef double smoothed(self)
    @cython.locals(base=cython.double)
    cpdef double timeout(self) except? -1
    @cython.locals(srtt=cython.double)
    cpdef sample(self, double rtt)
    cpdef reset_backoff(self)
