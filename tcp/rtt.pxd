# C types of the RTT estimator for the compiled build (Cython, pure-Python mode).

cimport cython

cdef class RttEstimator:
    cdef public object _min_rtt
    cdef public object _rttvar
    cdef public object _srtt
    cdef public long long backoffs
    cdef public double clock_granularity
    cdef public double initial_rto
    cdef public double max_rto
    cdef public double min_rto

    @cython.locals(base=cython.double)
    cpdef double timeout(self) except? -1
    # rtt stays a Python float: the first sample's object is then shared by SRTT, the minimum and
    # the connection's last RTT (three boxed copies cost an idle connection ~60 bytes)
    cpdef sample(self, object rtt)
    cpdef reset_backoff(self)
