"""TCP (RFC 9293), sans-I/O: wire format, sequence arithmetic, the connection state machine, congestion
control, SACK, listeners with SYN cookies, and the TCP layer that demultiplexes to them."""
