# C types of the neighbour table for the compiled build (Cython, pure-Python mode).

cimport cython

cdef class _Entry:
    cdef public double expires
    cdef public object mac
    cdef public double probe_at
    cdef public double updated


cdef class ArpCache:
    cdef public object timers
    cdef public object _send_request
    cdef public object _on_failure
    cdef public object _on_resolved
    cdef public object drops
    cdef public object stats
    cdef public double reachable_time
    cdef public double refresh_time
    cdef public double retry_interval
    cdef public int retries
    cdef public int queue_limit
    cdef public int queue_total_limit
    cdef public int max_pending
    cdef public int max_entries
    cdef public double locktime
    cdef public long long queued
    cdef public object sweep_timer
    cdef public dict entries
    cdef public dict pending
    cdef public set static

    @cython.locals(entry=_Entry)
    cpdef object lookup(self, object ip, double now)  # ip: the dict key as given, not boxed anew per call
