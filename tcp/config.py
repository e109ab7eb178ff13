"""Per-stack TCP settings (the sysctls of Linux's net.ipv4.tcp_*), with defaults that follow the
RFCs or, where the RFCs leave room, Linux."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TcpConfig:
    rcvbuf: int = 1 << 20
    """Receive buffer per connection (SO_RCVBUF); also bounds the out-of-order queue."""
    sndbuf: int = 1 << 20
    """Send buffer per connection (SO_SNDBUF)."""
    nodelay: bool = False
    """TCP_NODELAY default: Nagle's algorithm (RFC 9293 §3.7.4) is on unless set."""
    sack: bool = True
    """Offer SACK-permitted (RFC 2018) and use RFC 6675 loss recovery when the peer agrees."""
    timestamps: bool = True
    """Offer timestamps (RFC 7323): RTT measurement on every ACK and PAWS."""
    window_scaling: bool = True
    """Offer window scaling (RFC 7323 §2)."""
    congestion: str = "cubic"
    """Congestion control: "cubic" (RFC 9438) or "newreno" (RFC 5681/6582)."""
    initial_window: int = 10
    """Initial congestion window in segments (RFC 6928)."""
    delack_timeout: float = 0.04
    """Delayed-ACK timer (RFC 9293 §3.8.6.3: at most 0.5 s; RFC 1122 ≤ 0.5 s; Linux uses 40 ms)."""
    initial_rto: float = 1.0
    min_rto: float = 0.2
    max_rto: float = 120.0
    syn_retries: int = 6
    """SYN retransmissions before connect() fails with ETIMEDOUT (Linux tcp_syn_retries)."""
    synack_retries: int = 5
    """SYN-ACK retransmissions for a half-open passive connection (Linux tcp_synack_retries)."""
    data_retries: int = 15
    """Retransmissions of one segment before the connection is dropped (Linux tcp_retries2)."""
    msl: float = 30.0
    """Maximum segment lifetime; TIME-WAIT lasts 2·MSL (RFC 9293 §3.4.2)."""
    fin_wait2_timeout: float = 60.0
    """An orphaned FIN-WAIT-2 (closed by the application) gives up after this (Linux tcp_fin_timeout)."""
    keepalive_idle: float = 7200.0
    keepalive_interval: float = 75.0
    keepalive_count: int = 9
    min_mss: int = 216
    """Floor for the peer's MSS option: a tiny MSS would make us send floods of tiny segments
    (FreeBSD's net.inet.tcp.minmss; Linux's tcp_min_snd_mss serves the same purpose)."""
    ooo_max_segments: int = 64
    """Out-of-order segments held per connection (the rest are dropped and counted)."""
    challenge_ack_per_second: float = 10.0
    """RFC 5961 §7: challenge ACKs are rate-limited; this is per connection."""
    max_persist: float = 60.0
    """Upper bound on the zero-window probe interval."""
    backlog: int = 128
    """Default listen backlog (SYN queue and accept queue each)."""
    syncookies: bool = True
    """Answer with SYN cookies when a listener's SYN queue is full."""
    header_prediction: bool = True
    """Take the established fast path (header prediction) for the segments it can handle; off,
    every segment goes through the full state machine (which must send the same)."""
    mem_sndbuf_total: int = 256 << 20
    """Send-buffer bytes of all connections of one reactor (Linux tcp_mem/tcp_wmem): beyond it a
    write takes only what keeps its connection at ``mem_min_per_connection`` (tcp/memory.py)."""
    mem_rcvbuf_total: int = 256 << 20
    """Receive-buffer bytes (readable + out of order) of all connections of one reactor: beyond
    it advertised windows shrink to ``mem_min_per_connection`` per connection."""
    mem_ooo_total: int = 64 << 20
    """Out-of-order bytes held by all connections of one reactor; beyond it out-of-order
    segments are dropped (``tcp_ooo_mem_limit``)."""
    mem_hard_total: int = 768 << 20
    """Send + receive bytes above which new connections are refused (``tcp_mem_refused``)."""
    mem_min_per_connection: int = 16 << 10
    """Bytes of send buffer and of receive window every connection keeps under pressure (Linux's
    tcp_wmem[0]/tcp_rmem[0]), so each one still makes progress."""
