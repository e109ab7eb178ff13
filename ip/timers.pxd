cimport cython

# C types of the timer wheel for the compiled build (Cython, pure-Python mode).

cdef class Timer:
    cdef public long long _seq
    cdef public object _slot
    cdef public object _wheel
    cdef public object args
    cdef public object callback
    cdef public long long tick
    cdef public double when


cdef class TimerWheel:
    cdef public object _bounded
    cdef public bint _firing
    cdef public object _hint
    cdef public object _live
    cdef public object _mins
    cdef public long long _n
    cdef public double _now
    cdef public double _origin
    cdef public object _ready
    cdef public long long _seq
    cdef public object _slots
    cdef public long long _tick
    cdef public double tick

    cpdef long long _tick_of(self, double t)
    cpdef object next_deadline(self)
    @cython.locals(cur=cython.longlong, start=cython.longlong, n=cython.longlong, walk=cython.longlong,
                   k=cython.longlong, i=cython.longlong, slots=list, mins=list, ready=list, fired=cython.longlong)
    cpdef long long advance(self, double now) except? -1
