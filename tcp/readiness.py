"""The event bits of a socket's readiness mask (:meth:`Connection.poll`), with Linux's values
(``poll(2)``/``epoll(7)``: the same numbers as :mod:`select`'s ``POLL*``/``EPOLL*``), so the mask
can be handed to an epoll user or an asyncio transport unchanged.

The model is smoltcp's four predicates, folded into one mask the way Linux's ``tcp_poll`` does:

- *can recv*: bytes are waiting in the receive buffer → ``POLLIN | POLLRDNORM``;
- *may recv*: the peer may still send (no FIN received, not shut for reading, not closed) —
  once it may not, a read returns at once (end of stream): ``POLLIN | POLLRDNORM | POLLRDHUP``;
- *can send*: the state allows sending and the send buffer has room → ``POLLOUT | POLLWRNORM``;
- *may send*: the state allows sending and no FIN is queued — once it may not, a write fails at
  once (EPIPE), so it is "ready" too: ``POLLOUT | POLLWRNORM``;
- both directions shut, or the connection closed: ``POLLHUP``; a pending error: ``POLLERR``.
"""

POLLIN = 0x001
POLLPRI = 0x002
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLRDNORM = 0x040
POLLWRNORM = 0x100
POLLRDHUP = 0x2000

READABLE = POLLIN | POLLRDNORM
WRITABLE = POLLOUT | POLLWRNORM
