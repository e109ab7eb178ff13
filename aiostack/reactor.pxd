# C types of the reactor for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.drivers.base cimport Driver
from aiostack.drivers.buffers cimport Packet
from aiostack.ip.stack cimport Interface, IPStack
from aiostack.tcp.layer cimport TcpLayer


cdef class Port:
    cdef public Driver driver
    cdef public Interface iface
    cdef public object queues
    cdef public long long tx_queue


cdef long long _MAX_BURSTS, _MAX_TIMER_DEFERRALS  # typed copies: a C loop, no range object


cdef class Watcher:
    cpdef on_ready(self)


cdef class _CallOnReady(Watcher):
    cdef public object target


cdef class Reactor:
    cdef object __weakref__
    cdef public dict _arp_waiters
    cdef public dict _echo_waiters
    cdef public list _fds
    cdef public double _last_activity
    cdef public bint _running
    cdef public bint _scheduled
    cdef public object _iterate_soon
    cdef public object _timer
    cdef public double _timer_at
    cdef public int _timers_deferred
    cdef public dict _waiters
    cdef public dict _watchers
    cdef public int batch
    cdef public double busy_poll
    cdef public object clock
    cdef public long long internal_errors
    cdef public IPStack ip
    cdef public long long iterations
    cdef public object loop
    cdef public list ports
    cdef public long long sleeps
    cdef public TcpLayer tcp

    cpdef kick(self)
    cpdef _sleep(self, double now)
    @cython.locals(ip=IPStack, tcp=TcpLayer, port=Port, iface=Interface, driver=Driver, pkts=list, pkt=Packet,
                   got=cython.longlong,
                   sent=cython.longlong, batch=cython.longlong, drained=cython.bint, now=cython.double)
    cpdef long long run_once(self) except? -1
    @cython.locals(ip=IPStack, tcp=TcpLayer)
    cpdef _wake(self)
    @cython.locals(watcher=Watcher)
    cpdef _wake_one(self, dict waiters, object obj)
    @cython.locals(port=Port, sent=cython.longlong)
    cpdef long long _flush(self) except? -1
