# C types of the receive queue for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.tcp.memory cimport TcpMemory
from aiostack.tcp.seq cimport seq_sub

cdef long long MASK  # typed: the sequence arithmetic stays in C
cdef long long _LARGE_CHUNK


cdef class ReceiveBuffer:
    cdef public object _buf
    cdef public object _datas
    cdef public object _drops
    cdef public object _ends
    cdef public long long _fast_seq
    cdef public object _fin_off
    cdef public long long _nxt
    cdef public long long _ooo_bytes
    cdef public long long _ready
    cdef public object _stamps
    cdef public object _starts
    cdef public TcpMemory mem
    cdef public unsigned int _base
    cdef public unsigned int rcv_nxt
    cdef public int capacity
    cdef public bint fin_received
    # 32-bit: with the ints above, no padding, and the object fits pymalloc's 160-byte class
    # (a million idle connections each hold one)
    cdef public int max_ooo_bytes
    cdef public int max_ooo_segments

    cpdef long long ready_bytes(self)
    cpdef long long free_window(self) except? -1
    cpdef bint holds_ooo(self)
    @cython.locals(n=cython.longlong, mem=TcpMemory, held=cython.longlong, ooo=cython.longlong,
                   advanced=cython.longlong)
    cpdef long long add(self, long long seq, object data) except? -1
    @cython.locals(ready=cython.longlong)
    cpdef bytes read(self, long long n=*)
    @cython.locals(total=cython.longlong, size=cython.longlong)
    cpdef long long read_size(self, long long limit) except? -1
    @cython.locals(n=cython.longlong)
    cpdef _append(self, object chunk)
    @cython.locals(got=cython.longlong, i=cython.Py_ssize_t, size=cython.longlong)
    cpdef bytes _take(self, long long n)
    cpdef _sync(self)
