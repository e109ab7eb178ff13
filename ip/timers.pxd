cimport cython

# C types of the timer wheel for the compiled build (Cython, pure-Python mode).

cdef double _INF
cdef long long _NO_TICK  # typed: the tick arithmetic stays in C

cdef class TimerWheel


cdef class Timer:
    cdef public long long _seq
    cdef public set _slot
    cdef public TimerWheel _wheel
    cdef public object args
    cdef public object callback
    cdef public long long tick
    cdef public double when

    cpdef bint pending(self)
    @cython.locals(wheel=TimerWheel, slot=set)
    cpdef bint cancel(self) except -1


cdef class TimerWheel:
    cdef public set _bounded
    cdef public bint _firing
    cdef public object _hint
    cdef public long long _live
    cdef public list _mins
    cdef public long long _n
    cdef public double _now
    cdef public double _origin
    cdef public list _ready
    cdef public long long _seq
    cdef public list _slots
    cdef public long long _tick
    cdef public double tick

    @cython.locals(x=cython.double)
    cpdef long long _tick_of(self, double t)
    @cython.locals(tick=cython.longlong, seq=cython.longlong, i=cython.longlong, timer=Timer, slot=set,
                   mins=list)
    cpdef Timer schedule_args(self, double when, object callback, tuple args)
    cpdef object next_deadline(self)
    @cython.locals(cur=cython.longlong, start=cython.longlong, n=cython.longlong, walk=cython.longlong,
                   k=cython.longlong, i=cython.longlong, slots=list, mins=list, ready=list, fired=cython.longlong,
                   slot=set, timer=Timer, t=Timer)
    cpdef long long advance(self, double now) except? -1
    cpdef double latest(self)
