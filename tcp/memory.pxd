# C types of the per-reactor buffer accounting for the compiled build (Cython, pure-Python mode).

cdef class TcpMemory:
    cdef public long long hard_total
    cdef public long long min_per_connection
    cdef public long long ooo_total
    cdef public long long ooo_used
    cdef public long long peak_used
    cdef public long long rcv_used
    cdef public long long rcvbuf_total
    cdef public long long snd_used
    cdef public long long sndbuf_total
    cdef public object stats

    cpdef note_used(self)
    cpdef release(self, object sndbuf, object rcvbuf)
    cpdef long long take_peak(self) except? -1
    cpdef long long snd_room(self, long long held) except? -1
    cpdef long long rcv_window(self, long long window, long long held) except? -1
