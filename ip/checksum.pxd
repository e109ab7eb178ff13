# C types of the Internet checksum for the compiled build (Cython, pure-Python mode).

cimport cython

cdef bint _COMPILED

@cython.locals(total=cython.ulonglong, high=cython.ulonglong, low=cython.ulonglong, n=cython.Py_ssize_t,
               i=cython.Py_ssize_t)
cpdef unsigned long long words_sum(const unsigned char[::1] data, unsigned long long initial)

cpdef long long ones_sum(object data, unsigned long long initial=*) except? -1

@cython.locals(total=cython.longlong)
cpdef long long pseudo_header_sum(unsigned long long src, unsigned long long dst, long long proto, long long length)
