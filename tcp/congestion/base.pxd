# C types of the congestion-control interface for the compiled build (Cython, pure-Python mode).

cdef class CongestionControl:
    cdef object __weakref__
    cdef public long long cwnd
    cdef public long long ssthresh
    cdef public long long mss
    cdef public long long initial_window
    cdef public bint in_recovery
    cdef public bint _in_loss
    cdef public double _last_event

    cpdef on_ack(self, long long acked, double now, object rtt, long long in_flight, bint app_limited=*)
    cpdef on_loss(self, double now, long long in_flight)
    cpdef on_recovery_exit(self, double now, object in_flight=*)
    cpdef on_rto(self, double now, long long in_flight)
    cpdef on_idle(self, double now, double rto, object idle_since=*)
    cpdef set_mss(self, long long mss)
    cpdef _congestion_avoidance(self, long long acked, double now)
    cpdef long long _ssthresh_after_loss(self, double now, long long in_flight) except? -1
