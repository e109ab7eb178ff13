# C types of the asyncio transport for the compiled build (Cython, pure-Python mode): the core
# that holds a Transport's state and runs its established path with C calls.

cimport cython

from aiostack.reactor cimport Reactor, Watcher
from aiostack.tcp.connection cimport Connection
from aiostack.tcp.receive_buffer cimport ReceiveBuffer
from aiostack.tcp_socket cimport TcpSocket

cdef long long _READ_EVENTS
cdef long long _AFTER_DATA
cdef long long _MAX_READ


cdef class StreamCore(Watcher):
    cdef public object transport
    cdef public object loop
    cdef public Reactor reactor
    cdef public TcpSocket sock
    cdef public Connection conn
    cdef public object protocol
    cdef public object server
    cdef public object buffer
    cdef public object writer
    cdef public bint buffered
    cdef public bint closing
    cdef public bint eof
    cdef public bint paused
    cdef public bint protocol_connected
    cdef public bint protocol_paused
    cdef public bint reading
    cdef public long long conn_lost
    cdef public long long high_water
    cdef public long long low_water

    @cython.locals(conn=Connection, sock=TcpSocket, mask=cython.longlong, rb=ReceiveBuffer)
    cpdef on_ready(self)
    cpdef stop_reading(self)
    cpdef write(self, object data)
    cpdef maybe_pause_protocol(self)
    cpdef maybe_resume_protocol(self)
    cpdef close(self)
    cpdef fatal_error(self, object exc, object message=*)
    cpdef force_close(self, object exc)


cdef class _Acceptor(Watcher):
    cdef public object context
    cdef public TcpSocket lsock
    cdef public object server

    cpdef on_ready(self)


cdef StreamCore _core_of(object transport)
