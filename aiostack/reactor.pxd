# C types of the reactor for the compiled build (Cython, pure-Python mode).

cdef class Port:
    cdef public object driver
    cdef public object iface
    cdef public object queues
    cdef public long long tx_queue


cdef class Reactor:
    cdef object __weakref__
    cdef public dict _arp_waiters
    cdef public dict _echo_waiters
    cdef public list _fds
    cdef public double _last_activity
    cdef public bint _running
    cdef public bint _scheduled
    cdef public object _timer
    cdef public int _timers_deferred
    cdef public dict _waiters
    cdef public dict _watchers
    cdef public int batch
    cdef public double busy_poll
    cdef public object clock
    cdef public long long internal_errors
    cdef public object ip
    cdef public long long iterations
    cdef public object loop
    cdef public list ports
    cdef public long long sleeps
    cdef public object tcp
