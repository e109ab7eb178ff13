# C types of the IPv4 header parser for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.ip.checksum cimport ones_sum, ones_sum_at
from aiostack.ip.datagram cimport Datagram

cdef bint _COMPILED
cdef long long _HEADER_LEN
cdef long long _OFFSET_MASK

@cython.locals(avail=cython.longlong, vihl=cython.longlong, tos=cython.longlong, total_length=cython.longlong,
               ident=cython.longlong, frag=cython.longlong, ttl=cython.longlong, proto=cython.longlong,
               _csum=cython.longlong, src=cython.longlong, dst=cython.longlong, header_len=cython.longlong,
               csum=cython.longlong)
cpdef object parse_into(Datagram d, bytearray buf, long long offset, long long end)

@cython.locals(first=cython.longlong)
cpdef bint is_unicast_source(long long addr)
