"""The ``ff_epoll_*`` family for applications written in F-Stack's style.

    ep = Epoll(stack)
    ep.register(listener, EPOLLIN)
    while True:
        for sock, events in await ep.wait():
            if sock is listener:
                conn, _ = listener.accept_nowait()
                ep.register(conn, EPOLLIN | EPOLLRDHUP)
            elif events & EPOLLIN:
                data = sock.recv_nowait(65536)
                ...

It watches aiostack sockets — :class:`~aiostack.tcp_socket.TcpSocket` (connected or listening)
and :class:`~aiostack.udp_socket.UdpSocket` — and reports the same event bits as Linux's
``tcp_poll``/``udp_poll`` (values are the :mod:`select` module's):

========== ===================================================================================
EPOLLIN    TCP: data to read, end of stream (peer FIN), read side shut down, or an error;
           listening TCP: a connection waits in the accept queue; UDP: a datagram is queued
EPOLLOUT   TCP: established (or CLOSE-WAIT) with room in the send buffer, or the write side is
           shut down (a send would fail at once); an unconnected TCP socket (Linux's CLOSE
           state) too; UDP: always (a send never waits for buffer space)
EPOLLRDHUP the read side is closed: the peer's FIN arrived, shutdown(SHUT_RD), or the connection
           is gone
EPOLLHUP   both directions are closed (our FIN sent and the peer's received), or the connection
           is CLOSED (reset, timed out, or never connected — as on Linux, an unconnected TCP
           socket reports EPOLLHUP)
EPOLLERR   an error is pending (what SO_ERROR / the next call would report)
========== ===================================================================================

EPOLLRDNORM and EPOLLWRNORM are reported with EPOLLIN and EPOLLOUT when asked for; EPOLLPRI is
accepted and never reported (there is no urgent data). EPOLLERR and EPOLLHUP are always reported,
whether asked for or not, as on Linux.

Triggering:

- **level-triggered** (default): a socket is reported by every ``wait`` while the condition holds;
- **EPOLLET** (edge-triggered): a condition is reported once, and again only after something new
  happened for it since that report — new data or a FIN for EPOLLIN, a new connection in the
  accept queue, a new datagram, acknowledged data freeing send-buffer space for EPOLLOUT, a
  state change — so, as with Linux, read/accept until ``BlockingIOError`` after each report;
- **EPOLLONESHOT**: after one report the socket is disabled (nothing, not even EPOLLHUP, is
  reported) until :meth:`Epoll.modify` re-arms it. ``register`` and ``modify`` always evaluate
  the current state afresh (an EPOLLET registration reports what is already ready once).

``wait`` returns at once when something is ready; otherwise it waits for the reactor (through
:meth:`~aiostack.reactor.Reactor.wait_ready` on every watched connection, listener and UDP
endpoint), and **readiness is re-evaluated after each reactor iteration in which a watched
socket reported something** (data, space, a state change, an error) — at most one wake-up per
iteration, however many segments arrived. Like Linux's, the implementation is a ready list: a
``wait`` only looks at sockets that were just notified, newly (re)registered, or reported
level-triggered last time, so its cost follows the number of ready sockets, not of watched ones.
With ``maxevents`` the reported sockets go to the back of the list, so the others get their turn.

What a socket's owner changes locally without the reactor hearing about it — ``shutdown()``,
a larger SO_SNDBUF, binding or connecting a socket that had no connection, listener or endpoint
when it was registered — is seen at the next notification for that socket or the next ``wait``
call (register sockets after ``connect``/``listen``/``bind``, as F-Stack code does). A watched
socket that is closed is dropped from the interest list, as closing a file descriptor removes it
from every epoll set.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import select
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .tcp_socket import TcpSocket
from .udp_socket import UdpSocket

if TYPE_CHECKING:
    from .stack import Stack

__all__ = [
    "EPOLLERR",
    "EPOLLET",
    "EPOLLHUP",
    "EPOLLIN",
    "EPOLLONESHOT",
    "EPOLLOUT",
    "EPOLLPRI",
    "EPOLLRDHUP",
    "EPOLLRDNORM",
    "EPOLLWRNORM",
    "EPOLL_CTL_ADD",
    "EPOLL_CTL_DEL",
    "EPOLL_CTL_MOD",
    "Epoll",
]

EPOLLIN: int = select.EPOLLIN
EPOLLPRI: int = select.EPOLLPRI
EPOLLOUT: int = select.EPOLLOUT
EPOLLERR: int = select.EPOLLERR
EPOLLHUP: int = select.EPOLLHUP
EPOLLRDNORM: int = select.EPOLLRDNORM
EPOLLWRNORM: int = select.EPOLLWRNORM
EPOLLRDHUP: int = select.EPOLLRDHUP
EPOLLONESHOT: int = select.EPOLLONESHOT
EPOLLET: int = select.EPOLLET

EPOLL_CTL_ADD = 1
EPOLL_CTL_DEL = 2
EPOLL_CTL_MOD = 3

_ALWAYS = EPOLLERR | EPOLLHUP
_IN = EPOLLIN | EPOLLRDNORM
_OUT = EPOLLOUT | EPOLLWRNORM
_VALID = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM | EPOLLWRNORM | EPOLLRDHUP
_VALID |= EPOLLONESHOT | EPOLLET
_DEFAULT = EPOLLIN | EPOLLPRI | EPOLLOUT  # select.epoll.register's default
_REPORTABLE = (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDNORM, EPOLLWRNORM, EPOLLRDHUP)

Socket = TcpSocket | UdpSocket


class _Ref:
    """An object compared by identity inside a signature (two equal datagrams are two events)."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ref) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


_FRESH = ("fresh",)


def _tcp_poll(sock: TcpSocket) -> tuple[int, object | None, dict[int, object]]:
    """(events — the socket's own mask, :meth:`TcpSocket.poll` — the object the reactor reports
    for this socket, and per-event signatures: what changes when an edge-triggered event is new)."""
    mask = sock.poll()
    lst = sock.listener
    if lst is not None:
        if mask & EPOLLIN:
            ref = _Ref(lst.accept_queue[-1])
            return mask, lst, {EPOLLIN: ref, EPOLLRDNORM: ref}
        return 0, lst, {}
    conn = sock.connection
    if conn is None:  # never connected: Linux's CLOSE state
        return mask, None, {EPOLLOUT: _FRESH, EPOLLWRNORM: _FRESH, EPOLLHUP: _FRESH}
    state = conn.state
    rb = conn.rcvbuf
    fin = rb is not None and rb.fin_received
    sigs: dict[int, object] = {}
    if mask & EPOLLERR:
        sigs[EPOLLERR] = (state, conn.error)
    if mask & EPOLLHUP:
        sigs[EPOLLHUP] = state
    if mask & EPOLLIN:
        sigs[EPOLLIN] = sigs[EPOLLRDNORM] = (state, rb.rcv_nxt if rb is not None else None, fin, conn.read_closed)
    if mask & EPOLLRDHUP:
        sigs[EPOLLRDHUP] = (state, fin, conn.read_closed)
    if mask & EPOLLOUT:
        sigs[EPOLLOUT] = sigs[EPOLLWRNORM] = (state, conn.snd_una, conn.fin_queued)
    return mask, conn, sigs


def _udp_poll(sock: UdpSocket) -> tuple[int, object | None, dict[int, object]]:
    mask = sock.poll()
    ep = sock.endpoint
    if ep is None:  # unbound: nothing can arrive; a send would bind and go
        return mask, None, {EPOLLOUT: _FRESH, EPOLLWRNORM: _FRESH}
    bound = _Ref(ep)
    sigs: dict[int, object] = {EPOLLOUT: bound, EPOLLWRNORM: bound}
    if mask & EPOLLIN:
        sigs[EPOLLIN] = sigs[EPOLLRDNORM] = _Ref(ep.rx[-1])
    if mask & EPOLLERR:
        sigs[EPOLLERR] = ep.error
    return mask, ep, sigs


def _poll(sock: Socket) -> tuple[int, object | None, dict[int, object]]:
    if isinstance(sock, TcpSocket):
        return _tcp_poll(sock)
    return _udp_poll(sock)


def _closed(sock: Socket) -> bool:
    return sock.closed


class _Entry:
    """One socket on the interest list."""

    __slots__ = ("armed", "armed_obj", "disabled", "events", "sigs", "sock")

    def __init__(self, sock: Socket, events: int) -> None:
        self.sock = sock
        self.events = events
        self.disabled = False  # EPOLLONESHOT fired
        self.sigs: dict[int, object] = {}  # EPOLLET: what was last reported, per event
        self.armed: asyncio.Future[None] | None = None
        self.armed_obj: object | None = None

    def disarm(self) -> None:
        fut, self.armed, self.armed_obj = self.armed, None, None
        if fut is not None and not fut.done():
            fut.cancel()


def _check_events(events: object) -> int:
    if not isinstance(events, int) or isinstance(events, bool):
        raise TypeError(f"events must be an int, not {type(events).__name__}")
    if events < 0 or events & ~_VALID:
        raise OSError(errno.EINVAL, f"Invalid argument: unsupported epoll events {events:#x}")
    return events


class Epoll:
    """An epoll instance over the sockets of one :class:`~aiostack.stack.Stack`
    (``ff_epoll_create``); see the module documentation for the semantics."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._entries: dict[Socket, _Entry] = {}
        self._ready: dict[_Entry, None] = {}  # candidates, in report order
        self._blind: set[_Entry] = set()  # no connection/listener/endpoint to wait on yet
        self._waiters: set[asyncio.Future[None]] = set()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._entries)} sockets"
        return f"<aiostack Epoll {state}>"

    # -- life cycle -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Forget every socket; a pending :meth:`wait` raises ``ValueError``."""
        if self._closed:
            return
        self._closed = True
        for entry in self._entries.values():
            entry.disarm()
        self._entries.clear()
        self._ready.clear()
        self._blind.clear()
        self._wake()

    def __enter__(self) -> Epoll:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("I/O operation on closed epoll object")

    # -- the interest list (ff_epoll_ctl) -----------------------------------------------------
    def register(self, sock: Socket, events: int = _DEFAULT) -> None:
        """EPOLL_CTL_ADD. FileExistsError (EEXIST) when ``sock`` is already registered,
        OSError(EINVAL) for unknown event bits or a socket of another stack, OSError(EBADF) for
        a closed socket, TypeError for anything but an aiostack socket."""
        self._check_open()
        events = _check_events(events)
        if not isinstance(sock, (TcpSocket, UdpSocket)):
            raise TypeError(f"not an aiostack socket: {sock!r}")
        if sock.stack is not self._stack:
            raise OSError(errno.EINVAL, "Invalid argument: the socket belongs to another stack")
        if _closed(sock):
            raise OSError(errno.EBADF, "Bad file descriptor: socket is closed")
        if sock in self._entries:
            raise FileExistsError(errno.EEXIST, "File exists: socket already registered")
        entry = _Entry(sock, events)
        self._entries[sock] = entry
        self._ready[entry] = None
        self._wake()

    def modify(self, sock: Socket, events: int) -> None:
        """EPOLL_CTL_MOD: new events; re-arms an EPOLLONESHOT socket and re-evaluates it.
        FileNotFoundError (ENOENT) when ``sock`` is not registered."""
        self._check_open()
        events = _check_events(events)
        entry = self._entry(sock)
        entry.events = events
        entry.disabled = False
        entry.sigs.clear()
        self._blind.discard(entry)
        self._ready[entry] = None
        self._wake()

    def unregister(self, sock: Socket) -> None:
        """EPOLL_CTL_DEL. FileNotFoundError (ENOENT) when ``sock`` is not registered."""
        self._check_open()
        entry = self._entry(sock)
        self._drop(entry)

    def ctl(self, op: int, sock: Socket, events: int = 0) -> None:
        """``ff_epoll_ctl(epfd, op, fd, event)`` with EPOLL_CTL_ADD / _MOD / _DEL."""
        if op == EPOLL_CTL_ADD:
            self.register(sock, events)
        elif op == EPOLL_CTL_MOD:
            self.modify(sock, events)
        elif op == EPOLL_CTL_DEL:
            self.unregister(sock)
        else:
            raise OSError(errno.EINVAL, f"Invalid argument: epoll_ctl op {op}")

    def _entry(self, sock: Socket) -> _Entry:
        entry = self._entries.get(sock)  # type: ignore[call-overload]
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory: socket not registered")
        return entry

    def _drop(self, entry: _Entry) -> None:
        if self._entries.get(entry.sock) is entry:
            del self._entries[entry.sock]
        self._ready.pop(entry, None)
        self._blind.discard(entry)
        entry.disarm()

    def __contains__(self, sock: object) -> bool:
        return sock in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[Socket, int]]:
        """The interest list: (socket, events) pairs."""
        return iter([(e.sock, e.events) for e in self._entries.values()])

    # -- readiness ----------------------------------------------------------------------------
    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _on_notify(self, entry: _Entry, fut: asyncio.Future[Any]) -> None:
        if entry.armed is not fut:
            return
        entry.armed = entry.armed_obj = None
        if self._entries.get(entry.sock) is entry and not entry.disabled:
            self._ready[entry] = None
            self._wake()

    def _arm(self, entry: _Entry, obj: object | None) -> None:
        """Wait (through the reactor) for the next notification about ``entry``'s socket."""
        if obj is None:
            entry.disarm()
            self._blind.add(entry)
            return
        self._blind.discard(entry)
        if entry.armed is not None and entry.armed_obj is obj and not entry.armed.done():
            return
        entry.disarm()
        reactor = self._stack.reactor
        if reactor.loop is None:  # never started: nothing will ever be reported
            return
        fut = reactor.wait_ready(obj)
        entry.armed, entry.armed_obj = fut, obj
        fut.add_done_callback(functools.partial(self._on_notify, entry))

    def _refresh_blind(self) -> None:
        for entry in list(self._blind):
            sock = entry.sock
            if _closed(sock):
                self._drop(entry)
            elif _poll(sock)[1] is not None:
                self._blind.discard(entry)
                self._ready[entry] = None

    def _evaluate(self, entry: _Entry) -> int:
        """The events to report for one candidate now (0 for none); keeps the ready list."""
        sock = entry.sock
        if _closed(sock):
            self._drop(entry)
            return 0
        if entry.disabled:
            self._ready.pop(entry, None)
            return 0
        mask, obj, sigs = _poll(sock)
        events = entry.events
        got = mask & (events | _ALWAYS)
        if events & EPOLLET:
            new = 0
            last = entry.sigs
            for bit in _REPORTABLE:
                if got & bit and last.get(bit) != sigs[bit]:
                    new |= bit
                    last[bit] = sigs[bit]
            got = new
            self._ready.pop(entry, None)
            self._arm(entry, obj)
        elif got:
            del self._ready[entry]  # to the back: others get their turn with maxevents
            self._ready[entry] = None
        else:
            del self._ready[entry]
            self._arm(entry, obj)
        if got and events & EPOLLONESHOT:
            entry.disabled = True
            self._ready.pop(entry, None)
            entry.disarm()
        return got

    def poll_nowait(self, maxevents: int = -1) -> list[tuple[Socket, int]]:
        """What :meth:`wait` with ``timeout=0`` returns, without awaiting."""
        self._check_open()
        if maxevents == -1:
            maxevents = 1 << 30
        elif maxevents < 1:
            raise ValueError(f"maxevents must be greater than 0, got {maxevents}")
        self._refresh_blind()
        out: list[tuple[Socket, int]] = []
        for entry in list(self._ready):
            if len(out) >= maxevents:
                break
            if entry not in self._ready:
                continue
            got = self._evaluate(entry)
            if got:
                out.append((entry.sock, got))
        return out

    async def wait(self, timeout: float | None = None, maxevents: int = -1) -> list[tuple[Socket, int]]:
        """``ff_epoll_wait``: up to ``maxevents`` (``-1``: no limit) ``(socket, events)`` pairs.
        Returns at once when something is ready; otherwise waits up to ``timeout`` seconds
        (``None`` or negative: without limit; ``0``: just poll) and returns ``[]`` on timeout.
        ``OSError(ENETDOWN)`` when nothing is ready and the stack is not running; ``ValueError``
        when the epoll object is (or gets) closed."""
        if timeout is not None and timeout < 0:
            timeout = None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            events = self.poll_nowait(maxevents)
            if events:
                return events
            if deadline is not None and loop.time() >= deadline:
                return []
            if not self._stack.reactor.running:
                raise OSError(errno.ENETDOWN, "the stack is not running")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)
            timer = None if deadline is None else loop.call_at(deadline, _resolve, fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)
                if timer is not None:
                    timer.cancel()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
