# C types of the martian checks for the compiled build (Cython, pure-Python mode).

from aiostack.ip.datagram cimport Datagram

cpdef object check(object interfaces, object iface, Datagram hdr, object buf, long long off, object stats)
