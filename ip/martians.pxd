# C types of the martian checks for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.ip.datagram cimport Datagram
from aiostack.ip.ipv4 cimport is_unicast_source

cdef long long HEADER_LEN

@cython.locals(src=cython.longlong, addr=cython.longlong)
cpdef object check(Datagram hdr, object buf, long long off, long long broadcast, list local_addrs, object stats)
