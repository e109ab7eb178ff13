# C types of IPv4 reassembly for the compiled build (Cython, pure-Python mode): the reactor asks
# the stack for its next deadline every iteration, so next_deadline is a C call (issue #10).

cdef class Reassembler:
    cdef public object _datagrams
    cdef public object _pending
    cdef public object _pending_deadline
    cdef public object _poisoned
    cdef public object drops
    cdef public object max_bytes
    cdef public object max_datagrams
    cdef public object memory
    cdef public object timeout

    cpdef object next_deadline(self)
