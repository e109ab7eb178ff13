# C types of the driver interface for the compiled build (Cython, pure-Python mode).

cdef class QueueCounters:
    cdef public object drops
    cdef public long long rx_bytes
    cdef public long long rx_packets
    cdef public long long tx_bytes
    cdef public long long tx_packets

    cpdef drop(self, str reason, long long n=*)


cdef class Driver:
    cpdef list rx_burst(self, long long queue, long long max_count)
    cpdef long long tx_burst(self, long long queue, list packets) except? -1
