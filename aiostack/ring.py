"""Cross-core messages: single-producer/single-consumer rings in shared memory (DPDK's rte_ring idea).

Reactors share nothing on the per-packet path; when one core must ask another for something (run a
function, hand over a message, collect statistics) it writes into a ring that only it produces into
and only the other core consumes from. **Never on the per-packet path of a TCP flow** — RSS keeps a
flow on one core; these rings are for control traffic and sharded application requests (and for
the rare segment a device that does not steer by the flow hash put on the wrong core:
:func:`aiostack.cores.offer_strays`).

- the rings: :class:`~aiostack.drivers.spsc.SpscRing` (lock-free, shared memory, an eventfd
  doorbell; its module says how and what it measured);
- :class:`Channel` — two rings (one per direction) between two cores, with request/reply matching
  so that ``await channel.call("name", *args)`` runs a handler registered on the other core with
  :meth:`Channel.serve` and returns its result (or raises its exception).

``Channel.call`` round trip between two uvloop processes whose receive side sleeps on the doorbell
(two eventfd wake-ups per call): median 60 µs, p99 94 µs. Another engineer's benchmarks shared the
2 CPUs for part of the measurements, so treat these as rough (a loaded re-run gave 0.4-1 M msg/s);
re-run ``benchmarks/ring.py`` on a quiet machine before quoting them.

:class:`Channel` payloads are **pickled** (``pickle.HIGHEST_PROTOCOL``): both ends are processes of
the same program and trust each other, like ``multiprocessing``'s own queues; never connect a channel
to a process you do not trust. A message is ``kind u8 | request id u64 | pickle``; replies carry the
id of their request and complete the caller's ``asyncio.Future``. A handler's exception comes back as
the same exception type (when it pickles, with the remote traceback as ``__cause__``) or as
:class:`RemoteError` carrying the type name and message. Timeouts are the caller's
(``asyncio.wait_for``). A peer that dies does not answer, but its successor does: a restarted
reactor :meth:`Channel.announce` s itself with the number of messages its predecessors took from
the ring, and the caller fails exactly the calls among those still unanswered
(``ConnectionResetError``) — the ones after it are still in the ring, and the successor answers
them.

A channel pickles as its rings do (names plus duplicated doorbell fds).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import pickle
import struct
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .drivers.spsc import SpscRing, warm_up

__all__ = ["Channel", "RemoteError", "SpscRing", "submit_to", "warm_up"]

# -- channels --------------------------------------------------------------------------------------

_CALL, _OK, _ERR, _SEND, _HELLO = 1, 2, 3, 4, 5
_U64 = struct.Struct("<Q")
_MSG = struct.Struct("<BQ")
_MSG_SIZE = _MSG.size
_BATCH = 256
_PUMP_ROUNDS = 16


class RemoteError(Exception):
    """A handler on the other core raised an exception that could not be re-created here."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback


class _RemoteTraceback(Exception):
    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


def _encode_error(exc: BaseException) -> bytes:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        exc_bytes: bytes | None = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
    except Exception:
        exc_bytes = None
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return pickle.dumps((exc_bytes, name, str(exc), tb), pickle.HIGHEST_PROTOCOL)


def _decode_error(payload: bytes) -> BaseException:
    exc_bytes, name, message, tb = pickle.loads(payload)
    if exc_bytes is not None:
        try:
            exc = pickle.loads(exc_bytes)
        except Exception:
            exc = None
        if isinstance(exc, BaseException):
            exc.__cause__ = _RemoteTraceback(tb)
            return exc
    return RemoteError(name, message, tb)


class Channel:
    """Two rings between two cores — ``tx`` produced here, ``rx`` consumed here — carrying calls,
    replies and one-way messages.

    The supervisor makes both ends in one process: ``a = Channel.create(name, capacity)`` and
    ``b = a.peer()``, then gives ``a`` to one reactor and ``b`` to the other (as a ``Process``
    argument: it pickles as ring names plus duplicated doorbell fds; or inherited across ``fork``).
    Each side may :meth:`call`/:meth:`send` and :meth:`serve`; calls and replies are matched by a
    request id. Everything runs on the side's running event loop; the receive side sleeps on the rx
    ring's doorbell and drains in batches, so it costs nothing while idle.
    """

    def __init__(self, tx: SpscRing, rx: SpscRing) -> None:
        if rx.doorbell_fd is None:
            raise ValueError("a channel's receive ring needs a doorbell")
        self.tx = tx
        self.rx = rx
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: deque[bytes] = deque()
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._seq: dict[int, int] = {}
        """Request id of a pending call → its message's sequence number in ``tx`` (1-based)."""
        self.calls_served = 0

    @classmethod
    def create(cls, name: str, capacity: int = 1 << 20) -> Channel:
        """Create both rings (``{name}.a2b`` and ``{name}.b2a``) and return end *a*."""
        a2b = SpscRing.create(f"{name}.a2b", capacity)
        try:
            b2a = SpscRing.create(f"{name}.b2a", capacity)
        except BaseException:
            a2b.unlink()
            a2b.close()
            raise
        return cls(a2b, b2a)

    def peer(self) -> Channel:
        """The other end, over the same rings (to hand to the other process, not to use here)."""
        return Channel(self.rx, self.tx)

    def __reduce__(self) -> tuple[Any, ...]:
        return Channel, (self.tx, self.rx)

    # sending --------------------------------------------------------------------------------

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run handler ``name`` on the other core with these arguments and return its result (or
        raise its exception). Wrap in ``asyncio.wait_for`` for a timeout."""
        if self._closed:
            raise ConnectionError("channel is closed")
        loop = self._start()
        rid = next(self._ids)
        body = pickle.dumps((name, args, kwargs), pickle.HIGHEST_PROTOCOL)
        fut = loop.create_future()
        self._pending[rid] = fut
        try:
            self._send(_MSG.pack(_CALL, rid) + body)
            return await fut
        finally:
            self._pending.pop(rid, None)
            self._seq.pop(rid, None)

    def announce(self) -> None:
        """Tell the other end this end (re)started: a reactor forked to replace one that died,
        after :meth:`resync`. The other end fails the calls the predecessor took from the ring
        without answering; harmless on a first start (nothing was taken)."""
        self._start()
        self._send(_MSG.pack(_HELLO, 0) + _U64.pack(self.rx._nget))

    def send(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Deliver a one-way message: run handler ``name`` on the other core, no reply (its
        exceptions go to the other loop's exception handler)."""
        if self._closed:
            raise ConnectionError("channel is closed")
        self._start()
        self._send(_MSG.pack(_SEND, 0) + pickle.dumps((name, args, kwargs), pickle.HIGHEST_PROTOCOL))

    @property
    def backlog(self) -> int:
        """Messages sent but still waiting for room in the ring (the other core is behind)."""
        return len(self._outbox)

    def _send(self, msg: bytes) -> None:
        if len(msg) > self.tx.max_message:
            raise ValueError(f"encoded message of {len(msg)} bytes exceeds the ring's maximum {self.tx.max_message}")
        if self._outbox or not self.tx.try_put(msg):
            self._outbox.append(msg)
            self._schedule_retry()
        elif msg[0] == _CALL:
            self._seq[_MSG.unpack_from(msg)[1]] = self.tx._nput

    def _schedule_retry(self) -> None:
        # the consumer does not signal "space again": poll with a short, growing delay while full
        if self._retry is None and self._loop is not None and not self._closed:
            self._retry_delay = min(max(self._retry_delay * 2, 50e-6), 5e-3)
            self._retry = self._loop.call_later(self._retry_delay, self._flush_outbox)

    def _flush_outbox(self) -> None:
        self._retry = None
        box = self._outbox
        while box:
            n = self.tx.put_many(list(itertools.islice(box, _BATCH)))
            seq = self.tx._nput - n
            for _ in range(n):
                msg = box.popleft()
                seq += 1
                if msg[0] == _CALL:
                    self._seq[_MSG.unpack_from(msg)[1]] = seq
            if n < _BATCH and box:
                self._schedule_retry()
                return
        self._retry_delay = 0.0

    # serving --------------------------------------------------------------------------------

    def serve(self, handlers: dict[str, Callable[..., Any]]) -> None:
        """Register handlers (plain functions or coroutine functions) for calls from the other
        core and start receiving on the running loop."""
        self._handlers.update(handlers)
        self._start()

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.get_running_loop()
            self._loop = loop
            loop.add_reader(self.rx.doorbell_fd, self._pump)
            loop.call_soon(self._pump)  # messages may have arrived before we listened
        return self._loop

    def _pump(self) -> None:
        if self._closed:
            return
        rx = self.rx
        rx.disarm_doorbell()
        replies: list[bytes] = []
        for _ in range(_PUMP_ROUNDS):
            msgs = rx.get_many(_BATCH)
            if msgs:
                self._dispatch(msgs, replies)
                if len(msgs) == _BATCH:
                    continue
            if rx.arm_doorbell():  # drained, cleared, re-checked: sleep on the doorbell
                break
        else:
            assert self._loop is not None
            self._loop.call_soon(self._pump)  # a long burst: let the loop run, then continue
        for r in replies:
            self._send(r)

    def _dispatch(self, msgs: list[bytes], replies: list[bytes]) -> None:
        for m in msgs:
            kind, rid = _MSG.unpack_from(m)
            if kind in (_OK, _ERR):
                fut = self._pending.get(rid)
                if fut is None or fut.done():
                    continue  # the caller gave up (timeout, cancellation)
                try:
                    if kind == _OK:
                        fut.set_result(pickle.loads(m[_MSG_SIZE:]))
                    else:
                        fut.set_exception(_decode_error(m[_MSG_SIZE:]))
                except Exception as e:  # an undecodable reply still completes the call
                    fut.set_exception(e)
            elif kind == _HELLO:
                self._peer_restarted(_U64.unpack_from(m, _MSG_SIZE)[0])
            else:
                self._run(kind, rid, m, replies)

    def _peer_restarted(self, taken: int) -> None:
        """The other end's predecessors took ``taken`` messages from our tx ring; its replies to
        them came before this notice (same ring, in order), so a call among them still pending
        will never be answered."""
        for rid, fut in list(self._pending.items()):
            seq = self._seq.get(rid)
            if seq is not None and seq <= taken and not fut.done():
                fut.set_exception(ConnectionResetError(
                    f"the core this channel leads to restarted before answering call {rid}"))

    def _run(self, kind: int, rid: int, m: bytes, replies: list[bytes]) -> None:
        self.calls_served += 1
        try:
            name, args, kwargs = pickle.loads(m[_MSG_SIZE:])
            try:
                handler = self._handlers[name]
            except KeyError:
                raise LookupError(f"no handler {name!r} on this core") from None
            result = handler(*args, **kwargs)
        except Exception as e:
            self._reply_error(kind, rid, e, replies)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._finish_task(kind, rid, t))
        elif kind == _CALL:
            replies.append(self._encode_ok(rid, result))

    def _finish_task(self, kind: int, rid: int, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._closed:
            return
        out: list[bytes] = []
        if task.cancelled():
            self._reply_error(kind, rid, asyncio.CancelledError(), out)
        elif (e := task.exception()) is not None:
            self._reply_error(kind, rid, e, out)
        elif kind == _CALL:
            out.append(self._encode_ok(rid, task.result()))
        for r in out:
            self._send(r)

    def _encode_ok(self, rid: int, result: Any) -> bytes:
        try:
            msg = _MSG.pack(_OK, rid) + pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            return _MSG.pack(_ERR, rid) + _encode_error(e)
        if len(msg) > self.tx.max_message:
            err = ValueError(f"result of {len(msg)} bytes exceeds the ring's maximum {self.tx.max_message}")
            return _MSG.pack(_ERR, rid) + _encode_error(err)
        return msg

    def _reply_error(self, kind: int, rid: int, e: BaseException, replies: list[bytes]) -> None:
        if kind == _CALL:
            replies.append(_MSG.pack(_ERR, rid) + _encode_error(e))
        elif self._loop is not None:
            self._loop.call_exception_handler(
                {"message": "aiostack channel: one-way message handler failed", "exception": e}
            )

    # clean-up -------------------------------------------------------------------------------

    def resync(self) -> None:
        """Re-read both rings' positions from shared memory: in a process forked to take over an
        end whose earlier holder died (a restarted reactor), see :meth:`SpscRing.resync`."""
        self.tx.resync()
        self.rx.resync()

    def close(self, *, unlink: bool | None = None) -> None:
        """Stop receiving, fail pending calls with ``ConnectionError``, close both rings. The end
        that created the rings unlinks them (``unlink`` overrides)."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            if not self._loop.is_closed() and self.rx.doorbell_fd is not None:
                self._loop.remove_reader(self.rx.doorbell_fd)
            if self._retry is not None:
                self._retry.cancel()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("channel closed"))
        for task in list(self._tasks):
            task.cancel()
        for ring in (self.tx, self.rx):
            if unlink or (unlink is None and ring._owner and os.getpid() == ring._creator_pid):
                ring.unlink()
            ring.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def submit_to(channels: dict[int, Channel], core: int, name: str, *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """``await submit_to(channels, core, "fn", *args)``: run handler ``fn`` on ``core`` through this
    core's channel to it (``channels`` maps a core number to the channel; the supervisor builds it)."""
    return channels[core].call(name, *args, **kwargs)
