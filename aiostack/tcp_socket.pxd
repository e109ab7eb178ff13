# C types of the TCP socket for the compiled build (Cython, pure-Python mode).

from aiostack.reactor cimport Reactor
from aiostack.tcp.connection cimport Connection


cdef class TcpSocket:
    cdef object __weakref__
    cdef public object _accept_config
    cdef public object _bound
    cdef public bint _closed
    cdef public object _config
    cdef public bint _config_shared
    cdef public Connection _conn
    cdef public bint _keepalive
    cdef public object _linger
    cdef public object _listener
    cdef public Reactor _reactor
    cdef public bint _reuseaddr
    cdef public bint _reuseport
    cdef public object _stack

    cpdef _check_open(self)
    cpdef double _now(self) except? -1
    cpdef Connection _connected(self)
    cpdef TcpSocket _accepted(self, Connection conn)
    cpdef TcpSocket _take_accepted(self)
    # the transport's data calls (aiostack/protocols.py calls them as C functions)
    cpdef long long send_nowait(self, object data) except -1
    cpdef bytes recv_nowait(self, long long bufsize)
