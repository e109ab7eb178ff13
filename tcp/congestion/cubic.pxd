# C types of CUBIC for the compiled build (Cython, pure-Python mode).

cimport cython
from aiostack.tcp.congestion.base cimport CongestionControl

cdef class Cubic(CongestionControl):
    cdef public double _acc
    cdef public bint _after_timeout
    cdef public double _cwnd_prior
    cdef public object _epoch_start
    cdef public double _k
    cdef public object _min_rtt
    cdef public double _w_est
    cdef public double _w_max
    cdef public bint fast_convergence

    cpdef double w_cubic(self, double t)
    cpdef double _begin_epoch(self, double now, double w)
    @cython.locals(mss=cython.longlong, w=cython.double, t=cython.double, alpha=cython.double, est=cython.longlong,
                   target=cython.double, grow=cython.longlong)
    cpdef _congestion_avoidance(self, long long acked, double now)
