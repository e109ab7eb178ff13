"""C types of the connection state machine for the compiled build (Cython, pure-Python mode):
the fields ``__slots__`` lists in ``connection.py``, typed."""

cimport cython

from aiostack.tcp.segment cimport Segment
from aiostack.ip.datagram cimport Transport
from aiostack.ip.flow cimport FlowRoute
from aiostack.ip.timers cimport Timer, TimerWheel
from aiostack.tcp.congestion.base cimport CongestionControl
from aiostack.tcp.rack cimport Rack, pto
from aiostack.tcp.receive_buffer cimport ReceiveBuffer
from aiostack.tcp.rtt cimport RttEstimator
from aiostack.tcp.sack cimport Scoreboard
from aiostack.tcp.send_buffer cimport SendBuffer
from aiostack.tcp.seq cimport seq_ge, seq_gt, seq_le, seq_lt

cdef long long MASK, HALF  # seq.py's, typed: sequence arithmetic in C
cdef long long POLLERR, POLLHUP, POLLRDHUP, READABLE, WRITABLE  # readiness.py's, typed: poll() in C
cdef long long FIN, SYN, RST, PSH, ACK  # segment.py's control bits, typed: flag tests in C
cdef object _ON_RTX_TIMER, _ON_DELACK  # the unbound timer callbacks: C globals, no lookup by name
cdef long long _NOT_PREDICTED, _ACK, _TS_HEADER, _SACK_OPTION_MAX  # typed copies: C arithmetic

cdef class Connection


cdef class Host(Transport):  # compiled only: the stack calls TcpLayer.input through the vtable
    cdef public object _stats
    cdef public long long _header_predicted  # folded into stats on read (connection.py)

    cpdef transmit(self, Connection conn, long long seq, long long ack, long long flags, long long window,
                   bytes options, long long offset, long long length, long long ts_val=*, long long ts_ecr=*)
    cpdef notify(self, Connection conn)
    cpdef bint ack_later(self, Connection conn)
    cpdef bint ack_soon(self, Connection conn)
    cpdef established(self, Connection conn)
    cpdef closed(self, Connection conn)


cdef class Connection:
    cdef object __weakref__
    # objects, and values that may be None
    cdef public object _drops
    cdef public Scoreboard _scoreboard
    cdef public object _stats
    cdef public object config
    cdef public Host host
    cdef public object last_rtt
    cdef public object listener
    cdef public object rescue_rxt
    cdef public object rtt_seq
    cdef public object state
    cdef public object tlp_end
    cdef public FlowRoute tx_route
    cdef public object user
    cdef public SendBuffer sndbuf
    cdef public CongestionControl _cc
    cdef public Rack _rack
    cdef public TimerWheel timers
    cdef public Timer _delack_timer
    cdef public Timer _idle_timer
    cdef public Timer _rtx_timer
    cdef public RttEstimator rtt
    cdef public ReceiveBuffer rcvbuf
    # times (seconds, as the host's clock gives them)
    cdef public double _challenge_time
    cdef public double _challenge_tokens
    cdef public double _delack_deadline
    cdef public double _reo_deadline
    cdef public double _rtx_deadline
    cdef public double last_rx
    cdef public double last_tx
    cdef public double rtt_time
    cdef public double rtt_time_syn
    cdef public double ts_recent_time
    # flags
    cdef public bint _fin_processed
    cdef public bint _rtx_is_pto
    cdef public bint ack_now
    cdef public bint fin_queued
    cdef public bint in_recovery
    cdef public bint keepalive
    cdef public bint nodelay
    cdef public bint orphaned
    cdef public bint read_closed
    cdef public bint rto_recovery
    cdef public bint sack_ok
    cdef public bint tlp_in_recovery
    cdef public bint tlp_is_retrans
    cdef public bint ts_ok
    cdef public bint wscale_ok
    # small values (MSS, ports, shifts, errno, counts of probes and retries): 32 bits are plenty,
    # and a million idle connections feel every byte
    cdef public int ack_pending
    cdef public int dupacks
    cdef public int error
    cdef public int gso_max
    cdef public int keepalive_probes
    cdef public int local_mss
    cdef public int local_port
    cdef public int peer_mss
    cdef public int persist_backoff
    cdef public int persist_probes
    cdef public int rcv_wscale
    cdef public int remote_port
    cdef public int retries
    cdef public int snd_mss
    cdef public int snd_wscale
    cdef public int soft_error
    # sequence numbers and timestamps: 32-bit unsigned, as on the wire (all arithmetic on them
    # is modulo 2**32, RFC 9293 §3.4)
    cdef public unsigned int data_seq
    cdef public unsigned int fin_seq
    cdef public unsigned int high_rxt
    cdef public unsigned int irs
    cdef public unsigned int iss
    cdef public unsigned int last_ack_sent
    cdef public unsigned int rcv_adv
    cdef public unsigned int recover
    cdef public unsigned int snd_max
    cdef public unsigned int snd_nxt
    cdef public unsigned int snd_una
    cdef public unsigned int snd_wl1
    cdef public unsigned int snd_wl2
    cdef public unsigned int ts_offset
    cdef public unsigned int ts_recent
    # addresses (IPv4), windows (at most 2**30, RFC 7323 §2.3), segment counters (wrapping at
    # 2**32 like Linux's tcpi_segs_in/out)
    cdef public unsigned int segs_in
    cdef public unsigned int segs_out
    cdef public int snd_wnd
    cdef public int max_snd_wnd
    cdef public int recovery_inflation
    cdef public unsigned int local_addr
    cdef public unsigned int remote_addr
    cdef public long long _bytes_received  # per data segment: folded into stats on read (connection.py)

    # the established path: C calls between these (the rest stay Python methods), with typed
    # locals where they do sequence and window arithmetic
    cpdef object _event_counts(self)
    cpdef CongestionControl _congestion(self)
    cpdef Rack _loss_detection(self)
    cpdef Scoreboard _sack_board(self)
    @cython.locals(ms=cython.longlong)
    cpdef long long _ts_now(self, double now)
    cpdef long long _flight(self)
    cpdef long long _data_end(self)
    @cython.locals(rb=ReceiveBuffer, ack=cython.longlong, syn=cython.bint, window=cython.longlong,
                   options=bytes, ts_val=cython.longlong)
    cpdef _emit(self, long long seq, long long flags, double now, long long offset=*, long long length=*)
    cpdef long long _cur_mss(self)
    @cython.locals(rtt=RttEstimator, t=Timer)
    cpdef _arm_rtx(self, double now)
    @cython.locals(t=Timer)
    cpdef _aim_timer(self, double deadline)
    cpdef _stop_rtx(self)
    @cython.locals(rb=ReceiveBuffer, cur=cython.longlong, flags=cython.longlong, offset=cython.longlong,
                   end=cython.longlong)
    cpdef long long _send_segment(self, long long seq, long long length, double now, bint fin=*, bint arm=*) except? -1
    @cython.locals(sent=cython.bint)
    cpdef output(self, double now, bint arriving=*)
    cpdef long long _send_window(self) except? -1
    @cython.locals(recovering=cython.bint, sent=cython.bint, burst=cython.bint, mss=cython.longlong,
                   seg_max=cython.longlong, data_end=cython.longlong, unsent=cython.longlong,
                   window=cython.longlong, fin_due=cython.bint, length=cython.longlong, fin=cython.bint)
    cpdef bint _output_data(self, double now) except -1
    @cython.locals(room=cython.longlong)
    cpdef long long _rwnd_room(self) except? -1
    cpdef bint _may_send_short(self, long long length, long long unsent, double now) except -1
    @cython.locals(rb=ReceiveBuffer, rcv_nxt=cython.longlong, available=cython.longlong, new_edge=cython.longlong,
                   old_edge=cython.longlong, threshold=cython.longlong, field=cython.longlong, shift=cython.longlong,
                   edge=cython.longlong)
    cpdef long long _window_field(self, bint syn=*) except? -1
    @cython.locals(rb=ReceiveBuffer)
    cpdef bytes _options(self)
    @cython.locals(sndbuf=SendBuffer, snd_nxt=cython.longlong, flight=cython.longlong, n=cython.longlong,
                   all_sent=cython.bint)
    cpdef long long send(self, object data, double now) except? -1
    @cython.locals(rb=ReceiveBuffer, before=cython.longlong, grown=cython.longlong, rcv_nxt=cython.longlong,
                   edge_gap=cython.longlong, gap_before=cython.longlong, enough=cython.longlong)
    cpdef bytes recv(self, long long n, double now)
    cpdef segment_arrives(self, Segment seg, double now)
    @cython.locals(rb=ReceiveBuffer, seq=cython.longlong, ack=cython.longlong, una=cython.longlong,
                   wl1=cython.longlong, window=cython.longlong)
    cpdef bint _predicted(self, Segment seg, double now)
    @cython.locals(acked=cython.longlong, data_end=cython.longlong, data_acked_to=cython.longlong,
                   data_acked=cython.longlong, flight=cython.longlong, dsack=cython.bint, length=cython.longlong)
    cpdef _new_ack(self, Segment seg, long long ack, double now)
    @cython.locals(board=Scoreboard, rack=Rack)
    cpdef bint _sack_update(self, Segment seg, long long ack, double now)
    @cython.locals(rtt=cython.double, ecr=cython.longlong)
    cpdef _take_rtt_sample(self, Segment seg, double now, bint syn=*)
    @cython.locals(rb=ReceiveBuffer, had_ooo=cython.bint, had_fin=cython.bint, advanced=cython.longlong,
                   in_order=cython.bint)
    cpdef _receive_data(self, Segment seg, double now)
    @cython.locals(t=Timer, deadline=cython.double)
    cpdef _arm_delack(self, double now)
    @cython.locals(mask=cython.longlong, rd_shut=cython.bint, wr_shut=cython.bint, closed=cython.bint)
    cpdef long long poll(self) except? -1

    # the connection's life (handshake, window and ACK processing off the predicted path, close):
    # ordinary methods of this class, compiled like the rest, whose calls among themselves are C
    # calls with the segment typed (a call by name and `seg.flags` looked up by name cost ~1k)
    cpdef send_ack(self, double now)
    cpdef _send_rst(self, double now)
    cpdef _challenge_ack(self, double now)
    cpdef _set_idle_timer(self, double when, object callback)
    cpdef _cancel_idle_timer(self)
    cpdef _arm_persist(self, double now)
    cpdef bint _persist_pending(self) except -1
    cpdef _arm_keepalive(self, double now)
    cpdef _enter_time_wait(self, double now)
    cpdef _to_closed(self)
    cpdef _established(self, double now)
    cpdef accept_syn(self, Segment seg, double now)
    cpdef _negotiate(self, Segment seg)
    cpdef _open_receive(self, long long irs)
    cpdef shutdown_write(self, double now)
    cpdef close(self, double now)
    cpdef abort(self, double now)
    @cython.locals(flags=cython.longlong)
    cpdef _syn_sent(self, Segment seg, double now)
    @cython.locals(rb=ReceiveBuffer, rcv_nxt=cython.longlong, wnd=cython.longlong, seq=cython.longlong,
                   length=cython.longlong, end=cython.longlong, right=cython.longlong)
    cpdef bint _acceptable(self, Segment seg) except -1
    @cython.locals(flags=cython.longlong, rb=ReceiveBuffer)
    cpdef _synchronized(self, Segment seg, double now)
    cpdef _simultaneous_open_synack(self, Segment seg, double now)
    cpdef _peer_fin(self, double now)
    cpdef _time_wait_segment(self, Segment seg, double now)
    @cython.locals(ack=cython.longlong, window=cython.longlong)
    cpdef bint _process_ack(self, Segment seg, double now) except -1
