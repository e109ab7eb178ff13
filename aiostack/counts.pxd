# C signature of the packet path's counting for the compiled build (Cython, pure-Python mode).

cpdef int count(object counts, str name) except -1
