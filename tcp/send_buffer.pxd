# C types of the send queue for the compiled build (Cython, pure-Python mode).

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING
from libc.string cimport memcpy

from aiostack.ip.speedups cimport copy_bytes
from aiostack.tcp.memory cimport TcpMemory

cdef bint _COMPILED
cdef object _NONE
cdef long long _BY_REFERENCE
cdef long long _TAIL_MAX


cdef inline int _copy_piece(bytearray dest, Py_ssize_t dest_off, object src, Py_ssize_t src_off,
                            Py_ssize_t n) except -1:
    # src is one of the queue's chunks: bytes or a view of bytes (kept by reference), or an own
    # bytearray; the caller has cut the range to the chunk
    cdef Py_buffer view
    if type(src) is bytearray:
        return copy_bytes(dest, dest_off, src, src_off, n)
    if dest is None or dest_off < 0 or n < 0 or dest_off + n > PyByteArray_GET_SIZE(dest):
        raise ValueError(f"{n} bytes at {dest_off} do not fit the packet buffer")
    if type(src) is bytes:
        memcpy(PyByteArray_AS_STRING(dest) + dest_off, PyBytes_AS_STRING(src) + src_off, n)
        return 0
    PyObject_GetBuffer(src, &view, PyBUF_SIMPLE)  # a contiguous view of bytes (write)
    try:
        if src_off < 0 or src_off + n > view.len:
            raise ValueError(f"{n} bytes from {src_off} are not in the chunk")
        memcpy(PyByteArray_AS_STRING(dest) + dest_off, <char *>view.buf + src_off, n)
    finally:
        PyBuffer_Release(&view)
    return 0


cdef class SendBuffer:
    cdef public object _chunks
    cdef public TcpMemory mem
    # 32-bit (a send buffer stays under 2 GiB): the object then fits pymalloc's 64-byte class,
    # and a million idle connections each hold one
    cdef public int _head
    cdef public int _held
    cdef public int capacity

    @cython.locals(pos=cython.longlong, i=cython.Py_ssize_t, count=cython.longlong, piece=cython.longlong)
    cpdef long long copy_into(self, bytearray dest, long long dest_off, long long offset, long long n) except -1
    @cython.locals(held=cython.longlong, space=cython.longlong)
    cpdef long long free_space(self) except? -1
    @cython.locals(held=cython.longlong, n=cython.longlong, room=cython.longlong)
    cpdef long long write(self, object data) except? -1
    @cython.locals(held=cython.longlong, head=cython.longlong, i=cython.Py_ssize_t, mem=TcpMemory)
    cpdef ack(self, long long n)
    @cython.locals(i=cython.Py_ssize_t, size=cython.longlong)
    cdef (Py_ssize_t, long long) _chunk_at(self, long long pos)
