# C types of virtio_net_hdr for the compiled build (Cython, pure-Python mode).

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING

from aiostack.drivers.buffers cimport Packet

cdef bint _COMPILED
cdef long long _NO_VERIFY
cdef Py_ssize_t _HDR_SIZE


# The header's fields stored little-endian at buf[at:at+size] (the caller checked the bounds);
# num_buffers of the 12-byte form is 0.
cdef inline void _store(bytearray buf, Py_ssize_t at, unsigned int flags, unsigned int gso_type,
                        unsigned int hdr_len, unsigned int gso_size, unsigned int csum_start,
                        unsigned int csum_offset, Py_ssize_t size) noexcept:
    cdef unsigned char* p = <unsigned char*>PyByteArray_AS_STRING(buf) + at
    p[0] = flags
    p[1] = gso_type
    p[2] = hdr_len & 0xFF
    p[3] = (hdr_len >> 8) & 0xFF
    p[4] = gso_size & 0xFF
    p[5] = (gso_size >> 8) & 0xFF
    p[6] = csum_start & 0xFF
    p[7] = (csum_start >> 8) & 0xFF
    p[8] = csum_offset & 0xFF
    p[9] = (csum_offset >> 8) & 0xFF
    if size > 10:
        p[10] = 0
        p[11] = 0


@cython.locals(cs=cython.longlong, co=cython.longlong, flags=cython.longlong, gt=cython.longlong,
               hl=cython.longlong, gs=cython.longlong)
cpdef pack_into(object buf, Py_ssize_t offset, Packet pkt, Py_ssize_t size=*)

@cython.locals(buf=bytearray, gso_type=cython.int)
cpdef parse_into(Packet pkt, Py_ssize_t offset)
