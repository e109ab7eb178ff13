# C types of UDP for the compiled build (Cython, pure-Python mode).

from aiostack.ip.checksum cimport ones_sum, pseudo_header_sum
from aiostack.ip.datagram cimport Datagram, Transport

cdef class UdpLayer(Transport):
    cdef object __weakref__
    cdef public object ip
    cdef public object ports
    cdef public set ready

    cpdef input(self, Datagram d, double now)
