# C types of the TCP layer for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.drivers.buffers cimport Packet, PacketPool
from aiostack.ip.checksum cimport ones_sum_at, pseudo_header_sum
from aiostack.ip.datagram cimport Datagram
from aiostack.ip.flow cimport FlowRoute
from aiostack.ip.stack cimport Interface, IPStack
from aiostack.tcp.connection cimport Connection, Host
from aiostack.tcp.isn cimport IsnGenerator
from aiostack.tcp.drop_totals cimport retire, retire_stats
from aiostack.tcp.time_wait cimport syn_may_reopen
from aiostack.tcp.memory cimport TcpMemory

cdef long long MASK  # seq.py's, typed: sequence arithmetic in C
cdef long long HEADER_LEN, CHECKSUM_OFFSET, TS_OPTION_LEN, PROTO_TCP  # segment.py's and ipv4.py's, typed
cdef long long SYN, RST, ACK  # segment.py's control bits, typed: flag tests in C
from aiostack.tcp.segment cimport Segment, parse, write_header


@cython.locals(mtu=cython.longlong)
cpdef object _mss_of(Interface iface)
cpdef _offload(Packet pkt, long long csum_start, long long hlen, long long length, long long gso_size)


cdef class Listener:
    cdef object __weakref__
    cdef public object accept_queue
    cdef public long long addr
    cdef public long long backlog
    cdef public bint closed
    cdef public object config
    cdef public object layer
    cdef public long long port
    cdef public dict syn_queue
    cdef public object user


cdef class TcpLayer(Host):
    cdef object __weakref__
    cdef public object _rng
    cdef public object acks_owed
    cdef public object acks_soon
    cdef public object config
    cdef public dict connections
    cdef public object cookies
    cdef public bint defer_acks
    cdef public object drops
    cdef public IPStack ip
    cdef public IsnGenerator isn
    cdef public dict listeners
    cdef public TcpMemory memory
    cdef public set ready  # notify() adds to it per segment: PySet_Add, not a call by name
    cdef public object ready_listeners
    cdef public object retired_drops
    cdef public object retired_stats
    cdef public long long _ts_laddr, _ts_raddr, _ts_off
    cdef public long long _segments_in, _segments_out  # folded into stats on read (layer.py)
    cdef public object on_stray

    @cython.locals(l4=cython.longlong, end=cython.longlong, seg=Segment, conn=Connection)
    cpdef input(self, Datagram d, double now)
    @cython.locals(ip=IPStack, rt=FlowRoute, iface=Interface, pool=PacketPool, pkt=Packet, buf=bytearray,
                   gso_size=cython.longlong, start=cython.longlong, hlen=cython.longlong, tcp_off=cython.longlong,
                   tcp_len=cython.longlong, offload=cython.bint, csum=cython.longlong, co=cython.longlong)
    cpdef transmit(self, Connection conn, long long seq, long long ack, long long flags, long long window,
                   bytes options, long long offset, long long length, long long ts_val=*, long long ts_ecr=*)
    cpdef notify(self, Connection conn)
    cpdef bint ack_later(self, Connection conn)
    cpdef bint ack_soon(self, Connection conn)
    @cython.locals(lst=Listener)
    cpdef established(self, Connection conn)
    @cython.locals(lst=Listener)
    cpdef closed(self, Connection conn)
    # what the reactor takes each iteration
    cpdef list take_acks_soon(self)
    cpdef set take_ready(self)
    cpdef set take_ready_listeners(self)

    # the passive open: C calls with the segment typed (see connection.pxd)
    cpdef tuple _mss_for(self, long long remote)
    cpdef long long _ts_offset(self, long long laddr, long long raddr)
    cpdef Connection _new_connection(self, tuple key, double now, Interface iface, long long mss, object config=*,
                                     object iss=*)
    @cython.locals(flags=cython.longlong, conn=Connection, rt=FlowRoute, iface=Interface)
    cpdef _listen_input(self, Listener lst, tuple key, Segment seg, double now)
    cpdef tuple _passive_key(self, Listener lst, tuple key)
    cpdef _reset_for(self, tuple key, Segment seg, double now)
    @cython.locals(d=Datagram, ip_off=cython.longlong)
    cpdef bint _offer_stray(self)
    cpdef bint _time_wait_reuse(self, Connection conn, Segment seg, double now)
