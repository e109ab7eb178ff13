# C types of NewReno for the compiled build (Cython, pure-Python mode).

from aiostack.tcp.congestion.base cimport CongestionControl


cdef class NewReno(CongestionControl):
    cdef public long long _acked
