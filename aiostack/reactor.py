"""The per-core reactor: the one place where drivers, the sans-I/O layers and the event loop meet.

Each iteration follows mTCP's and VPP's loop (docs/architecture.md):

0. flush what the applications queued since the last iteration;
1. drain every owned queue, in bursts;
2. feed every frame up the stack (Ethernet → ARP | IPv4 → ICMP | UDP);
3. fire due timers (the stack's one hashed wheel) — only once the queues are drained, so that
   no timer expires while the ACK that stops it waits in a queue;
4. wake each waiting coroutine once, however many frames it got;
5. flush every frame queued for transmit in one burst per queue.

Polling is adaptive: while frames flow (and for ``busy_poll`` seconds after the last one) the
reactor re-runs itself with ``loop.call_soon``, so other coroutines interleave but no syscall
waits; once idle it rests on the queues' readiness fds (registered once, for good) and on a
timer for the stack's next deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from .drivers.base import Driver
from .ip.stack import Interface, IPStack
from .tcp.layer import TcpLayer

log = logging.getLogger("aiostack.reactor")

MAX_BURSTS = 32
"""Bursts read from one queue in one iteration before the applications run (and the transmit
queue is flushed) even if the queue still has frames."""
MAX_TIMER_DEFERRALS = 4
"""Iterations in a row whose queues did not drain after which the timers fire anyway."""
# Copies the compiled build holds as C constants (reactor.pxd): ``range(MAX_BURSTS)`` on a module
# attribute is a Python range object and iterator per queue and iteration.
_MAX_BURSTS = MAX_BURSTS
_MAX_TIMER_DEFERRALS = MAX_TIMER_DEFERRALS


class Port:
    """An interface of the stack bound to the driver queues this reactor owns."""

    __slots__ = ("driver", "iface", "queues", "tx_queue")

    def __init__(self, iface: Interface, driver: Driver, queues: list[int]) -> None:
        self.iface = iface
        self.driver = driver
        self.queues = queues
        self.tx_queue = queues[0]


class OnReady(Protocol):
    """Anything :meth:`Reactor.watch` can call: an object with ``on_ready()``."""

    def on_ready(self) -> None: ...


class Watcher:
    """The base of what :meth:`Reactor.watch` calls (a transport reading from its connection).

    Compiled, a ``cdef class`` (``reactor.pxd``) whose ``on_ready`` is ``cpdef``: the reactor's
    wake-up of a subclass (the stream transport's core) is a C call through the vtable, not a
    call by name (``PyObject_VectorcallMethod``, ~400 instructions per wake, callgrind)."""

    __slots__ = ()

    def on_ready(self) -> None:
        raise NotImplementedError


class _CallOnReady(Watcher):
    """A :class:`Watcher` in front of an object that cannot derive from it (the UDP datagram
    transport is an ``asyncio.DatagramTransport``, which a compiled base class cannot join)."""

    __slots__ = ("target",)

    def __init__(self, target: OnReady) -> None:
        self.target = target

    def on_ready(self) -> None:
        self.target.on_ready()


class Reactor:
    def __init__(
        self,
        ip: IPStack,
        ports: list[Port],
        *,
        batch: int = 64,
        busy_poll: float = 200e-6,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.ip = ip
        self.ports = ports
        self.batch = batch
        self.busy_poll = busy_poll
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        # kick's callback, bound once: a bound method made per kick cost ~1k instructions
        self._iterate_soon = self._iterate
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # the deadline _timer was set for
        self._last_activity = 0.0
        self._running = False
        self._waiters: dict[object, list[asyncio.Future[None]]] = {}
        self._watchers: dict[object, Watcher] = {}
        """Persistent ready callbacks (transports), called inside the iteration, before the
        flush: what a protocol writes in response goes out in the same burst, and no task
        switch or future stands between a segment and ``data_received``."""
        self.tcp: TcpLayer | None = None
        self._arp_waiters: dict[int, list[asyncio.Future[bool]]] = {}
        self._echo_waiters: dict[tuple[int, int, int], asyncio.Future[bytes]] = {}
        self._fds: list[int] = []
        self._timers_deferred = 0
        self.iterations = 0
        self.sleeps = 0
        self.internal_errors = 0

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._running:
            return
        self.loop = asyncio.get_running_loop()
        self._running = True
        now = self.clock()
        self._last_activity = now
        self.ip.start(now)
        for port in self.ports:
            for q in port.queues:
                fd = port.driver.fileno(q)
                self.loop.add_reader(fd, self._on_readable)
                self._fds.append(fd)
        self.kick()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        assert self.loop is not None
        for fd in self._fds:
            self.loop.remove_reader(fd)
        self._fds.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self._waiters.clear()
        for waiters in self._arp_waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(False)
        self._arp_waiters.clear()

    @property
    def running(self) -> bool:
        return self._running

    # -- scheduling -------------------------------------------------------------------------
    def kick(self) -> None:
        """Make sure an iteration runs soon (after the application queued something to send)."""
        if self._running and not self._scheduled:
            self._scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self._iterate_soon)

    def _on_readable(self) -> None:
        self.kick()

    def _on_timer(self) -> None:
        self._timer = None
        self.kick()

    def _iterate(self) -> None:
        if not self._running:
            self._scheduled = False
            return
        # Kicks from inside the iteration (a transport's read callback calling recv) are
        # absorbed (_scheduled stays set) and the next iteration is queued at the end: behind
        # the application tasks this one woke, so what they write in reply goes out with it
        # (and carries the ACK and window update the reads made owed).
        got = self.run_once()
        self._scheduled = False
        now = self.clock()
        if got or now - self._last_activity < self.busy_poll:
            if got:
                self._last_activity = now
            self.kick()
            return
        self._sleep(now)

    def _sleep(self, now: float) -> None:
        """Rest on the readiness fds (already registered) and the next protocol deadline."""
        self.sleeps += 1
        deadline = self.ip.next_deadline()
        for port in self.ports:
            d = port.driver.next_deadline()
            if d is not None and (deadline is None or d < deadline):
                deadline = d
        timer = self._timer
        if timer is not None:
            if deadline is not None and self._timer_at <= deadline:
                # It wakes us no later than needed: kept (an early wake is one iteration that
                # finds nothing due and sleeps again), where re-arming cost a cancel and a new
                # loop timer on every rest — the request/response pattern rests after each burst.
                return
            timer.cancel()
            self._timer = None
        if deadline is not None:
            assert self.loop is not None
            self._timer_at = deadline
            self._timer = self.loop.call_later(max(0.0, deadline - now), self._on_timer)

    # -- one iteration ----------------------------------------------------------------------
    def run_once(self) -> int:
        """One pass of the loop; returns how many frames were received or sent."""
        self.iterations += 1
        now = self.clock()
        ip = self.ip
        batch = self.batch
        got = 0
        tcp = self.tcp
        # Window updates the applications' reads made owed since the last iteration: sent at
        # the end of this one unless the replies written meanwhile carried them.
        soon = tcp.take_acks_soon() if tcp is not None and tcp.acks_soon else None
        # What the applications wrote since the last iteration goes out first: its timers were
        # armed when it was written, and the ACKs it draws (a local peer answers within our own
        # write) are then in the queues drained below, before any of those timers can fire.
        sent = self._flush()
        drained = True
        for port in self.ports:
            iface = port.iface
            driver = port.driver
            for q in port.queues:
                for _ in range(_MAX_BURSTS):
                    pkts = driver.rx_burst(q, batch)
                    if not pkts:
                        break
                    got += len(pkts)
                    for pkt in pkts:
                        try:
                            ip.receive(iface, pkt, now)
                        except Exception:
                            # A bug, not bad input (bad input is a counted drop): keep serving.
                            self.internal_errors += 1
                            ip.drops["internal_error"] += 1
                            if self.internal_errors <= 10:
                                log.exception("frame processing failed")
                        pkt.free()
                    if len(pkts) < batch:
                        break
                else:
                    drained = False
        # Timers fire once the queues are drained: an ACK still waiting in a queue must not let
        # a retransmission or probe timer expire (a burst of replies to many connections takes
        # longer to read than the 10 ms probe floor). A queue that never drains (a flood) defers
        # them for a few iterations at most.
        if drained or self._timers_deferred >= _MAX_TIMER_DEFERRALS:
            self._timers_deferred = 0
            ip.advance(now)
        else:
            self._timers_deferred += 1
        self._wake()
        if tcp is not None and tcp.acks_owed:
            tcp.send_owed_acks(now)
        if soon:
            for conn in soon:
                conn.ack_if_owed(now)
        return got + sent + self._flush()

    def _wake(self) -> None:
        ip = self.ip
        waiters = self._waiters
        if ip.udp.ready:
            for ep in ip.udp.take_ready():
                self._wake_one(waiters, ep)
        tcp = self.tcp
        if tcp is not None:
            if tcp.ready:
                for conn in tcp.take_ready():
                    self._wake_one(waiters, conn)
            if tcp.ready_listeners:
                for lst in tcp.take_ready_listeners():
                    self._wake_one(waiters, lst)
        if ip.arp_events:
            for hop, ok in ip.take_arp_events():
                for fut in self._arp_waiters.pop(hop, ()):
                    if not fut.done():
                        fut.set_result(ok)
        if ip.icmp.echo_events:
            for src, ident, seq, payload in ip.icmp.take_echo_events():
                echo = self._echo_waiters.pop((src, ident, seq), None)
                if echo is not None and not echo.done():
                    echo.set_result(payload)

    def _wake_one(self, waiters: dict[object, list[asyncio.Future[None]]], obj: object) -> None:
        futs = waiters.pop(obj, None)
        if futs:
            for fut in futs:
                if not fut.done():
                    fut.set_result(None)
        watcher = self._watchers.get(obj)
        if watcher is not None:
            try:
                watcher.on_ready()
            except Exception:
                self.internal_errors += 1
                if self.internal_errors <= 10:
                    log.exception("ready callback failed")

    def _flush(self) -> int:
        sent = 0
        for port in self.ports:
            tx = port.iface.tx
            if tx:
                port.iface.tx = []
                sent += len(tx)
                port.driver.tx_burst(port.tx_queue, tx)
        return sent

    # -- waiting, for the socket layer ------------------------------------------------------
    def wait_ready(self, obj: object) -> asyncio.Future[None]:
        """A future completed at the end of the next iteration in which ``obj`` (a UDP endpoint,
        TCP connection or listener) reports something: data, space, a state change, an error."""
        assert self.loop is not None
        fut: asyncio.Future[None] = self.loop.create_future()
        self._waiters.setdefault(obj, []).append(fut)
        return fut

    def watch(self, obj: object, watcher: OnReady) -> None:
        """Call ``watcher.on_ready()`` in every iteration in which ``obj`` reports something,
        until :meth:`unwatch` (one watcher per object; the watcher itself is kept, not a bound
        method: 64 bytes less per connection). A :class:`Watcher` is kept as it is (and called
        in C when compiled); any other object behind a small :class:`Watcher` of its own."""
        self._watchers[obj] = watcher if isinstance(watcher, Watcher) else _CallOnReady(watcher)

    def unwatch(self, obj: object) -> None:
        self._watchers.pop(obj, None)

    def forget(self, obj: object) -> None:
        for fut in self._waiters.pop(obj, ()):
            if not fut.done():
                fut.set_result(None)

    def wait_echo(self, src: int, ident: int, seq: int) -> asyncio.Future[bytes]:
        """A future completed with the payload of the ICMP echo reply from ``src``."""
        assert self.loop is not None
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self._echo_waiters[(src, ident, seq)] = fut
        return fut

    def forget_echo(self, src: int, ident: int, seq: int) -> None:
        self._echo_waiters.pop((src, ident, seq), None)

    def wait_resolution(self, hop: int) -> asyncio.Future[bool]:
        """A future completed with True when ``hop`` resolves, False when ARP gives up."""
        assert self.loop is not None
        fut: asyncio.Future[bool] = self.loop.create_future()
        self._arp_waiters.setdefault(hop, []).append(fut)
        return fut
