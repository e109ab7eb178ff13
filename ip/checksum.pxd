# C types of the Internet checksum for the compiled build (Cython, pure-Python mode).

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef bint _COMPILED

@cython.locals(total=cython.ulonglong, high=cython.ulonglong, low=cython.ulonglong, n=cython.Py_ssize_t,
               i=cython.Py_ssize_t)
cpdef unsigned long long words_sum(const unsigned char[::1] data, unsigned long long initial)

cpdef long long ones_sum(object data, unsigned long long initial=*) except? -1

cpdef long long ones_sum_at(object data, Py_ssize_t start, Py_ssize_t end, unsigned long long initial=*) except? -1

@cython.locals(total=cython.longlong)
cpdef long long pseudo_header_sum(unsigned long long src, unsigned long long dst, long long proto, long long length)


cdef inline unsigned long long ptr_sum(const unsigned char* p, Py_ssize_t n, unsigned long long initial) noexcept nogil:
    """RFC 1071 over ``p[0:n]`` plus ``initial``, folded to 16 bits (0xFFFF, never 0, for a
    non-zero sum): native-order 32-bit words into a 64-bit accumulator (§2(C): any word width
    folds to the same sum), then one byte swap on a little-endian machine (§2(B))."""
    cdef uint64_t acc = 0
    cdef uint64_t w
    cdef uint16_t h
    cdef uint16_t one = 1
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)  # an unaligned load; the compiler makes it one instruction
        acc += <uint32_t>w + (w >> 32)
        i += 8
    while i + 2 <= n:
        memcpy(&h, p + i, 2)
        acc += h
        i += 2
    if i < n:  # the odd last byte, padded with a zero after it: in native order
        if (<const unsigned char*>&one)[0]:
            acc += p[i]
        else:
            acc += <uint64_t>p[i] << 8
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    if (<const unsigned char*>&one)[0]:  # little-endian: the native sum is the big-endian one swapped
        acc = ((acc & 0xFF) << 8) | (acc >> 8)
    acc += initial
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


cdef inline long long _buffer_sum(object data, Py_ssize_t start, Py_ssize_t end, unsigned long long initial) except -1:
    """:func:`ptr_sum` of ``data[start:end]`` (``end`` -1: to the end) through the buffer
    protocol: no memoryview object, no format check."""
    cdef Py_buffer view
    cdef unsigned long long total
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    if end < 0:
        end = view.len
    if start < 0 or start > end or end > view.len:
        PyBuffer_Release(&view)
        raise ValueError(f"range {start}:{end} outside {view.len} bytes")
    total = ptr_sum(<const unsigned char*>view.buf + start, end - start, initial)
    PyBuffer_Release(&view)
    return total
