# C types of the per-connection counter totals for the compiled build (Cython, pure-Python mode):
# the TCP layer folds every connection that closes (a C call, no interpreted frames).

cpdef _add(object total, object owner, str attr)
cpdef retire(object total, object conn)
cpdef retire_stats(object total, object conn)
