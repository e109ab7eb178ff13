"""C types of the connection state machine for the compiled build (Cython, pure-Python mode):
the fields ``__slots__`` lists in ``connection.py``, typed."""

from aiostack.tcp.segment cimport Segment
from aiostack.ip.timers cimport TimerWheel
from aiostack.tcp.rack cimport Rack
from aiostack.tcp.receive_buffer cimport ReceiveBuffer
from aiostack.tcp.rtt cimport RttEstimator
from aiostack.tcp.send_buffer cimport SendBuffer

cdef long long MASK  # 2**32 - 1: sequence arithmetic in C

cdef class Connection:
    cdef object __weakref__
    # objects, and values that may be None
    cdef public object _cc
    cdef public object _delack_timer
    cdef public object _drops
    cdef public object _idle_timer
    cdef public object _rtx_timer
    cdef public object _scoreboard
    cdef public object _stats
    cdef public object config
    cdef public object host
    cdef public object last_rtt
    cdef public object listener
    cdef public object rescue_rxt
    cdef public object rtt_seq
    cdef public object state
    cdef public object tlp_end
    cdef public object tx_route
    cdef public object user
    cdef public SendBuffer sndbuf
    cdef public Rack _rack
    cdef public TimerWheel timers
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
    # sequence numbers (mod 2**32, kept in 0..2**32-1), addresses, ports, sizes, counts
    cdef public long long ack_pending
    cdef public long long data_seq
    cdef public long long dupacks
    cdef public long long error
    cdef public long long fin_seq
    cdef public long long gso_max
    cdef public long long high_rxt
    cdef public long long irs
    cdef public long long iss
    cdef public long long keepalive_probes
    cdef public long long last_ack_sent
    cdef public long long local_addr
    cdef public long long local_mss
    cdef public long long local_port
    cdef public long long max_snd_wnd
    cdef public long long peer_mss
    cdef public long long persist_backoff
    cdef public long long persist_probes
    cdef public long long rcv_adv
    cdef public long long rcv_wscale
    cdef public long long recover
    cdef public long long recovery_inflation
    cdef public long long remote_addr
    cdef public long long remote_port
    cdef public long long retries
    cdef public long long segs_in
    cdef public long long segs_out
    cdef public long long snd_max
    cdef public long long snd_mss
    cdef public long long snd_nxt
    cdef public long long snd_una
    cdef public long long snd_wl1
    cdef public long long snd_wl2
    cdef public long long snd_wnd
    cdef public long long snd_wscale
    cdef public long long soft_error
    cdef public long long ts_offset
    cdef public long long ts_recent

    # the established path: C calls between these (the rest stay Python methods)
    cpdef long long _ts_now(self, double now)
    cpdef long long _flight(self)
    cpdef long long _data_end(self)
    cpdef _emit(self, long long seq, long long flags, double now, long long offset=*, long long length=*)
    cpdef long long _cur_mss(self)
    cpdef _arm_rtx(self, double now)
    cpdef segment_arrives(self, Segment seg, double now)
    cpdef bint _predicted(self, Segment seg, double now)
    cpdef _new_ack(self, Segment seg, long long ack, double now)
    cpdef bint _sack_update(self, Segment seg, long long ack, double now)
    cpdef _receive_data(self, Segment seg, double now)
