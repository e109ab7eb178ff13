# C types of RACK-TLP's transmit records for the compiled build (Cython, pure-Python mode).

cimport cython

from aiostack.tcp.seq cimport seq_sub

cdef long long MASK, HALF  # typed: the sequence arithmetic stays in C


cdef double _WCDELACKT, _PTO_MIN  # typed copies of WCDELACKT and PTO_MIN

@cython.locals(value=cython.double)
cpdef double pto(object srtt, long long flight, long long mss, double rto)

cdef class Sent:
    cdef public bint delivered
    cdef public long long end
    cdef public bint lost
    cdef public bint rtx
    cdef public bint sacked
    cdef public long long start
    cdef public double xmit_ts
    cdef public long long xmits

    cpdef _first(self, long long start, long long end, double xmit_ts)


@cython.locals(r=Sent)
cpdef Sent _sent(long long start, long long end, double xmit_ts)


cdef class Rack:
    cdef public long long _base
    cdef public long long _base_seq
    cdef public long long _cursor
    cdef public long long _head
    cdef public object _lostq
    cdef public long long _n
    cdef public object _q
    cdef public object _rtxq
    cdef public object _stats
    cdef public object dsack_round
    cdef public long long end_seq
    cdef public long long fack
    cdef public object min_rtt
    cdef public long long pipe
    cdef public long long reo_wnd_mult
    cdef public long long reo_wnd_persist
    cdef public bint reordering_seen
    cdef public double rtt
    cdef public long long segs_sacked
    cdef public object xmit_ts

    cpdef long long _off(self, long long seq)
    cpdef bint holds_records(self)
    @cython.locals(s=cython.longlong, e=cython.longlong, tail=cython.longlong, lo=cython.longlong,
                   hi=cython.longlong, i=cython.longlong, n=cython.longlong, r=Sent, last=Sent)
    cpdef on_transmit(self, long long seq, long long end_seq, double now)
    @cython.locals(h=cython.longlong, n=cython.longlong, una=cython.longlong, r=Sent, lo_limit=cython.longlong,
                   hi_limit=cython.longlong, lo=cython.longlong, hi=cython.longlong, i=cython.longlong,
                   m=cython.longlong, first=Sent, last=Sent)
    cpdef on_ack(self, long long snd_una, object blocks, double now, bint dsack=*, long long snd_max=*,
                 object ts_ecr=*, long long ts_offset=*)
    cpdef _deliver(self, Sent r, double now, object ts_ecr, long long ts_offset)
