# C types of the send queue for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.tcp.memory cimport TcpMemory

cdef class SendBuffer:
    cdef public object _buf
    cdef public long long _head
    cdef public long long capacity
    cdef public TcpMemory mem

    @cython.locals(start=cython.longlong, end=cython.longlong, count=cython.longlong)
    cpdef long long copy_into(self, bytearray dest, long long dest_off, long long offset, long long n) except -1
