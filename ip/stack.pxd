# C types of the network layer for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.drivers.buffers cimport Packet, PacketPool
from aiostack.ip.datagram cimport Datagram, Transport
from aiostack.ip.flow cimport FlowRoute
from aiostack.ip.fragments cimport Reassembler
from aiostack.ip.icmp_layer cimport IcmpLayer
from aiostack.ip.ipv4 cimport parse_into
from aiostack.ip.martians cimport check as check_martian
from aiostack.ip.speedups cimport same_bytes
from aiostack.ip.timers cimport TimerWheel
from aiostack.ip.udp cimport UdpLayer

cdef bint _COMPILED
cdef long long _ETH
cdef long long _ETHERTYPE_IPV4
cdef long long _FLAG_MF
cdef long long _LIMITED_BROADCAST


cdef class Interface:
    cdef public long long addr
    cdef public object arp
    cdef public long long broadcast
    cdef public long long gso_max
    cdef public long long index
    cdef public object large_pool
    cdef public object mac
    cdef public long long mtu
    cdef public object name
    cdef public long long netmask
    cdef public long long network
    cdef public object offloads
    cdef public long long prefix_len
    cdef public list tx


cdef class IPStack:
    cdef object __weakref__
    cdef public dict _arp_opts
    cdef public dict _flow_routes
    cdef public long long _ident
    cdef public list _local_addrs
    cdef public object arp_events
    cdef public Datagram dgram
    cdef public object drops
    cdef public IcmpLayer icmp
    cdef public list interfaces
    cdef public object on_arp_reply
    cdef public object on_foreign_frame
    cdef public PacketPool pool
    cdef public Reassembler reassembler
    cdef public object rng
    cdef public object routes
    cdef public object _stats
    cdef public long long _rx_frames, _ipv4_rx, _ipv4_tx  # folded into stats on read (stack.py)
    cdef public object steering
    cdef public TimerWheel timers
    cdef public dict transports
    cdef public UdpLayer udp

    @cython.locals(buf=bytearray, off=cython.longlong, end=cython.longlong, link_bcast=cython.bint,
                   ethertype=cython.longlong, for_us=cython.bint)
    cpdef receive(self, Interface iface, Packet pkt, double now)
    @cython.locals(buf=bytearray, hdr=Datagram, dst=cython.longlong, src=cython.longlong, dst_bcast=cython.bint,
                   hl=cython.longlong, csum_valid=cython.bint, base=Transport)
    cpdef _ipv4_input(self, Interface iface, Packet pkt, long long off, long long end, bint link_bcast, double now)
    cpdef long long next_ident(self)
    cpdef advance(self, double now)
    cpdef object next_deadline(self)
    cpdef FlowRoute flow_route(self, long long src, long long dst, long long proto)
    @cython.locals(iface=Interface)
    cpdef flow_output(self, FlowRoute rt, Packet pkt, long long l4_off, long long l4_len, object mac)
