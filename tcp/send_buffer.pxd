# C types of the send queue for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.ip.speedups cimport copy_bytes
from aiostack.tcp.memory cimport TcpMemory

cdef bint _COMPILED

cdef class SendBuffer:
    cdef public object _buf
    cdef public TcpMemory mem
    # 32-bit (a send buffer stays under 2 GiB): the object then fits pymalloc's 64-byte class,
    # and a million idle connections each hold one
    cdef public int _head
    cdef public int capacity

    @cython.locals(start=cython.longlong, end=cython.longlong, count=cython.longlong)
    cpdef long long copy_into(self, bytearray dest, long long dest_off, long long offset, long long n) except -1
    @cython.locals(held=cython.longlong, space=cython.longlong)
    cpdef long long free_space(self) except? -1
    @cython.locals(held=cython.longlong, n=cython.longlong, room=cython.longlong)
    cpdef long long write(self, object data) except? -1
    @cython.locals(head=cython.longlong, mem=TcpMemory)
    cpdef ack(self, long long n)
