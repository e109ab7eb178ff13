# C types of the per-flow transmit template for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.ip.arp cimport ArpCache
from aiostack.ip.speedups cimport put_bytes

cdef bint _COMPILED
cdef long long _HEADERS_LEN
cdef long long _ETH_HEADER_LEN
cdef long long _IP_HEADER_LEN

cdef long long _fold(long long s)


cdef class FlowRoute:
    cdef public bytearray _headers
    cdef public bytes _mac
    cdef public ArpCache arp
    cdef public unsigned int dst
    cdef public bytes eth_tail
    cdef public int frag
    cdef public object hop  # the ARP table's key as is: no int made per datagram
    cdef public object iface
    cdef public long long ip_sum
    cdef public long long pmtu
    cdef public int proto
    cdef public long long pseudo_sum
    cdef public unsigned int src
    cdef public int ttl
    cdef public long long version

    cpdef object next_hop_mac(self, double now)
    cpdef long long pseudo_header_sum(self, long long l4_len)
    @cython.locals(total=cython.longlong, csum=cython.longlong, eth_off=cython.longlong, ip_off=cython.longlong)
    cpdef long long write(self, bytearray buf, long long l4_off, long long l4_len, long long ident, bytes mac) except -1
