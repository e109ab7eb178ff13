# C inline versions of ip/speedups.py for the compiled build (that module's notes say why).

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memcmp, memcpy


cdef inline bint same_bytes(bytearray buf, Py_ssize_t off, bytes value) except -1:
    cdef Py_ssize_t n
    if buf is None or value is None:
        raise TypeError("same_bytes needs a bytearray and bytes")
    n = PyBytes_GET_SIZE(value)
    if off < 0 or off + n > PyByteArray_GET_SIZE(buf):
        return False
    return memcmp(PyByteArray_AS_STRING(buf) + off, PyBytes_AS_STRING(value), n) == 0


cdef inline int put_bytes(bytearray buf, Py_ssize_t off, bytearray data) except -1:
    cdef Py_ssize_t n
    if buf is None or data is None:
        raise TypeError("put_bytes needs two bytearrays")
    n = PyByteArray_GET_SIZE(data)
    if off < 0 or off + n > PyByteArray_GET_SIZE(buf):
        raise ValueError(f"{n} bytes at {off} do not fit in {PyByteArray_GET_SIZE(buf)}")
    memcpy(PyByteArray_AS_STRING(buf) + off, PyByteArray_AS_STRING(data), n)
    return 0


cdef inline int copy_bytes(bytearray dest, Py_ssize_t dest_off, bytearray src, Py_ssize_t src_off,
                           Py_ssize_t n) except -1:
    if dest is None or src is None:
        raise TypeError("copy_bytes needs two bytearrays")
    if (n < 0 or dest_off < 0 or src_off < 0 or dest_off + n > PyByteArray_GET_SIZE(dest)
            or src_off + n > PyByteArray_GET_SIZE(src)):
        raise ValueError(f"{n} bytes from {src_off} to {dest_off} do not fit in {PyByteArray_GET_SIZE(src)} "
                         f"and {PyByteArray_GET_SIZE(dest)}")
    memcpy(PyByteArray_AS_STRING(dest) + dest_off, PyByteArray_AS_STRING(src) + src_off, n)
    return 0
