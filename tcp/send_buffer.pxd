# C types of the send queue for the compiled build (Cython, pure-Python mode).

cdef class SendBuffer:
    cdef public object _buf
    cdef public long long _head
    cdef public long long capacity
    cdef public object mem
