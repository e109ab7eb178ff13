# C types of the TIME-WAIT reopening decision for the compiled build (Cython, pure-Python mode):
# the TCP layer calls it in C for every SYN that finds its 4-tuple in TIME-WAIT.

cpdef bint syn_may_reopen(bint old_ts_ok, long long old_ts_recent, object old_rcv_nxt, long long syn_seq,
                          object syn_ts_val, bint timestamps_enabled)
