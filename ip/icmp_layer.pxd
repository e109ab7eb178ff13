# C types of the ICMP transport for the compiled build (Cython, pure-Python mode).

from aiostack.ip.checksum cimport ones_sum
from aiostack.ip.datagram cimport Datagram, Transport

cdef class IcmpLayer(Transport):
    cdef object __weakref__
    cdef public list echo_events
    cdef public set echo_idents
    cdef public object ip
    cdef public object limiter

    cpdef input(self, Datagram d, double now)
