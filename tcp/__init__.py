"""TCP (RFC 9293): sans-I/O connection state machine, congestion control, listeners. Not yet built."""
