"""Cross-core rings (aiostack/ring.py): the ring alone, then across processes (spawn), then Channel."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import uuid
from collections import deque
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.ring import Channel, RemoteError, SpscRing

CAP = 256


def _name() -> str:
    return f"aiostack-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ring() -> Iterator[SpscRing]:
    r = SpscRing.create(_name(), CAP)
    try:
        yield r
    finally:
        r.unlink()
        r.close()


def _payload(i: int, size: int) -> bytes:
    return bytes((i + k) & 0xFF for k in range(size))


# -- one process -------------------------------------------------------------------------------


def test_empty_reads(ring: SpscRing) -> None:
    assert ring.try_get() is None
    assert ring.get_many(10) == []
    assert len(ring) == 0 and ring.empty and ring.nbytes == 0
    assert ring.max_message == CAP // 2 - 4


def test_sizes_zero_to_max_in_order(ring: SpscRing) -> None:
    for size in range(ring.max_message + 1):
        msg = _payload(size, size)
        assert ring.try_put(msg)
        assert len(ring) == 1
        assert ring.try_get() == msg
        assert ring.empty


def test_every_size_fits_an_empty_ring_at_every_offset(ring: SpscRing) -> None:
    """The worst case for padding: a maximal message at each 8-byte offset of an empty ring."""
    for offset in range(0, CAP, 8):
        ring2 = SpscRing.create(_name(), CAP)
        try:
            if offset:  # move head and tail to `offset` with 8-byte records
                assert ring2.put_many([b""] * (offset // 8)) == offset // 8
                assert len(ring2.get_many(CAP)) == offset // 8
            big = _payload(offset, ring2.max_message)
            assert ring2.try_put(big)
            assert ring2.try_get() == big
        finally:
            ring2.unlink()
            ring2.close()


def test_oversized_is_value_error(ring: SpscRing) -> None:
    with pytest.raises(ValueError, match="exceeds"):
        ring.try_put(bytes(ring.max_message + 1))
    with pytest.raises(ValueError, match="exceeds"):
        ring.try_put(bytes(CAP))
    # put_many publishes what came before the oversized message
    with pytest.raises(ValueError):
        ring.put_many([b"a", b"b", bytes(CAP), b"c"])
    assert ring.get_many() == [b"a", b"b"]


def test_full_ring_refuses_then_accepts(ring: SpscRing) -> None:
    n = 0
    while ring.try_put(b"x" * 28):  # 4-byte prefix + 28 -> 32-byte records
        n += 1
    assert n == CAP // 32
    assert not ring.try_put(b"")
    assert ring.put_many([b"y"]) == 0
    assert len(ring) == n and ring.nbytes == CAP
    assert ring.try_get() == b"x" * 28
    assert ring.try_put(b"z" * 28)
    assert not ring.try_put(b"")
    assert ring.get_many(1000) == [b"x" * 28] * (n - 1) + [b"z" * 28]


def test_wrap_around_writes_padding(ring: SpscRing) -> None:
    # 3 records of 64 bytes leave 64 bytes at the end; read them, then put a 100-byte message:
    # its 104-byte record does not fit the tail, so it pads 64 and starts at offset 0
    for i in range(3):
        assert ring.try_put(_payload(i, 60))
    assert ring.get_many() == [_payload(i, 60) for i in range(3)]
    assert ring.try_put(_payload(9, 100))
    assert ring.nbytes == 64 + 104
    assert ring.try_get() == _payload(9, 100)
    assert ring.empty
    # and again across the seam with many small ones
    msgs = [_payload(i, i % 13) for i in range(200)]
    out: list[bytes] = []
    for m in msgs:
        while not ring.try_put(m):
            out.extend(ring.get_many(3))
    out.extend(ring.get_many(1000))
    assert out == msgs


def test_put_many_get_many_order(ring: SpscRing) -> None:
    msgs = [_payload(i, i % 17) for i in range(10)]
    assert ring.put_many(msgs) == 10
    assert ring.get_many(4) == msgs[:4]
    assert ring.get_many(100) == msgs[4:]
    big = [_payload(i, 50) for i in range(10)]  # 56-byte records: only 4 fit in 256
    assert ring.put_many(big) == 4
    assert ring.put_many(iter(big[4:])) == 0
    assert ring.get_many() == big[:4]


def test_attach_sees_same_ring_and_bad_names(ring: SpscRing) -> None:
    other = SpscRing.attach(ring.name)
    try:
        assert other.capacity == CAP
        assert ring.put_many([b"one", b"two"]) == 2
        assert len(other) == 2
        assert other.get_many() == [b"one", b"two"]
        assert ring.empty
    finally:
        other.close()
    with pytest.raises(FileNotFoundError):
        SpscRing.attach(_name())


def test_create_existing_name_is_clear_error(ring: SpscRing) -> None:
    with pytest.raises(FileExistsError, match="already exists"):
        SpscRing.create(ring.name, CAP)
    with pytest.raises(ValueError, match="power of two"):
        SpscRing.create(_name(), 1000)


def test_context_manager_unlinks() -> None:
    name = _name()
    with SpscRing.create(name, CAP) as r:
        r.try_put(b"x")
    assert r.closed
    with pytest.raises(FileNotFoundError):
        SpscRing.attach(name)
    assert not SpscRing.unlink_name(name)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, CAP // 2 - 4)),
        st.tuples(st.just("many"), st.lists(st.integers(0, 70), max_size=6)),
        st.tuples(st.just("get"), st.just(0)),
        st.tuples(st.just("get_many"), st.integers(0, 5)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_random_operations_match_a_deque(program: list[tuple[str, object]]) -> None:
    r = SpscRing.create(_name(), CAP)
    try:
        model: deque[bytes] = deque()
        serial = 0
        for op, arg in program:
            if op in ("put", "many"):
                sizes = [arg] if op == "put" else arg
                msgs = []
                for s in sizes:  # type: ignore[union-attr]
                    msgs.append(_payload(serial, s))
                    serial += 1
                n = int(r.try_put(msgs[0])) if op == "put" else r.put_many(msgs)
                model.extend(msgs[:n])
                if n < len(msgs):  # refused only when the record (with any padding) needs more room
                    size = len(msgs[n])
                    rec = (size + 11) & ~7
                    pos = (r._tail) % CAP
                    need = rec if rec <= CAP - pos else CAP - pos + rec
                    assert need > CAP - r.nbytes
            elif op == "get":
                assert r.try_get() == (model.popleft() if model else None)
            else:
                got = r.get_many(arg)  # type: ignore[arg-type]
                assert got == [model.popleft() for _ in range(min(arg, len(model)))]  # type: ignore[call-overload]
            assert len(r) == len(model)
            assert 0 <= r.nbytes <= CAP
        assert r.get_many(10_000) == list(model)
    finally:
        r.unlink()
        r.close()


# -- two processes -----------------------------------------------------------------------------

N_MESSAGES = 200_000
BLOB = random.Random(1234).randbytes(1 << 16)


def _sizes(seed: int, count: int, max_size: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(max_size + 1) if rng.random() < 0.02 else rng.randrange(64) for _ in range(count)]


def _message(i: int, size: int) -> bytes:
    off = (i * 7919) % (len(BLOB) - size)
    return i.to_bytes(4, "little")[:size] + BLOB[off + 4 : off + size] if size >= 4 else BLOB[off : off + size]


def _producer(ring: SpscRing, count: int, max_size: int) -> None:
    sizes = _sizes(7, count, max_size)
    i = 0
    while i < count:
        if i % 3:
            while not ring.try_put(_message(i, sizes[i])):
                pass
            i += 1
        else:
            batch = [_message(j, sizes[j]) for j in range(i, min(i + 16, count))]
            while batch:
                n = ring.put_many(batch)
                i += n
                batch = batch[n:]
    ring.close()


def _kill(proc: mp.process.BaseProcess) -> None:
    if proc.is_alive():
        os.kill(proc.pid, 9)  # type: ignore[arg-type]
    proc.join(10)


def test_two_processes_move_every_message_in_order() -> None:
    ring = SpscRing.create(_name(), 1 << 14)
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_producer, args=(ring, N_MESSAGES, ring.max_message))
    try:
        proc.start()
        sizes = _sizes(7, N_MESSAGES, ring.max_message)
        got = 0
        idle = 0
        while got < N_MESSAGES:
            msgs = ring.get_many(64) if got % 2 else [m for m in (ring.try_get(),) if m is not None]
            if not msgs:
                idle += 1
                if idle % 100_000 == 0:
                    assert proc.is_alive() or not ring.empty, f"producer died after {got} messages"
                continue
            for m in msgs:
                assert m == _message(got, sizes[got]), f"message {got} differs"
                got += 1
        assert ring.empty and ring.try_get() is None
        proc.join(30)
        assert proc.exitcode == 0
    finally:
        _kill(proc)
        ring.unlink()
        ring.close()


# -- channels ------------------------------------------------------------------------------------


class Custom(Exception):
    def __init__(self, a: int, b: int) -> None:  # unpicklable the default way: needs two args
        super().__init__(f"{a}/{b}")


def _add(a: int, b: int) -> int:
    return a + b


def _fail(message: str) -> None:
    raise KeyError(message)


def _fail_custom() -> None:
    raise Custom(1, 2)


async def _slow_mul(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a * b


def _server(ch: Channel) -> None:
    import uvloop

    async def main() -> None:
        stop = asyncio.Event()
        ch.serve({"add": _add, "fail": _fail, "custom": _fail_custom, "mul": _slow_mul, "stop": stop.set})
        # also call back into the client: both sides serve and call
        assert await asyncio.wait_for(ch.call("neg", 5), 30) == -5
        await stop.wait()
        await asyncio.sleep(0.1)  # let the reply to "stop" leave

    uvloop.run(main())
    ch.close()


async def test_channel_calls_errors_and_doorbell_wakeups() -> None:
    a = Channel.create(_name(), 1 << 12)
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_server, args=(a.peer(),))
    try:
        proc.start()
        a.serve({"neg": lambda x: -x})

        async def call(*args: object) -> object:
            return await asyncio.wait_for(a.call(*args), 30)  # type: ignore[arg-type]

        assert await call("add", 2, 3) == 5
        # an exception round trip: same type and message, remote traceback as the cause
        with pytest.raises(KeyError, match="nope") as info:
            await call("fail", "nope")
        assert "_fail" in str(info.value.__cause__)
        with pytest.raises(LookupError, match="no handler 'missing'"):
            await call("missing")
        # an exception type that does not unpickle comes back as RemoteError with type and message
        with pytest.raises((Custom, RemoteError), match="1/2"):
            await call("custom")
        # async handlers, many calls in flight, replies matched by id
        results = await asyncio.gather(*(call("mul", i, 3) for i in range(50)))
        assert results == [i * 3 for i in range(50)]
        # the peer's reactor idles on its doorbell between calls: each call must wake it
        for i in range(5):
            await asyncio.sleep(0.05)
            assert await call("add", i, i) == 2 * i
        # a burst larger than the ring (4 KB): the outbox holds the rest and retries
        results = await asyncio.gather(*(call("add", i, 1) for i in range(2000)))
        assert results == [i + 1 for i in range(2000)]
        assert await call("stop") is None
        await asyncio.get_running_loop().run_in_executor(None, proc.join, 30)
        assert proc.exitcode == 0
    finally:
        _kill(proc)
        a.close()


async def test_channel_close_fails_pending_calls() -> None:
    a = Channel.create(_name(), 1 << 12)
    b = a.peer()  # nobody serves b: the call can only end by close
    try:
        task = asyncio.ensure_future(a.call("add", 1, 2))
        await asyncio.sleep(0.01)
        assert not task.done()
        a.close()
        with pytest.raises(ConnectionError):
            await task
        with pytest.raises(ConnectionError):
            await a.call("add", 1, 2)
    finally:
        a.close()
        b.tx.close()
        b.rx.close()


async def test_a_restarted_peer_fails_only_the_calls_its_predecessor_took() -> None:
    """A reactor dies holding a call it took from the ring; its successor announces itself: that
    call fails at once (not at the caller's timeout), the one still in the ring is answered."""
    a = Channel.create(_name(), 1 << 12)
    predecessor = SpscRing.attach(a.tx.name)  # the dead reactor's view of the ring a → b
    successor = None
    try:
        lost = asyncio.ensure_future(a.call("add", 1, 2))
        kept = asyncio.ensure_future(a.call("add", 3, 4))
        await asyncio.sleep(0.01)
        assert len(predecessor.get_many(1)) == 1  # took the first call, then died
        successor = Channel(SpscRing.attach(a.rx.name, doorbell=os.dup(a.rx.doorbell_fd)),
                            SpscRing.attach(a.tx.name, doorbell=os.dup(a.tx.doorbell_fd)))
        successor.resync()
        successor.serve({"add": lambda x, y: x + y})
        successor.announce()
        with pytest.raises(ConnectionResetError, match="restarted"):
            await asyncio.wait_for(lost, 10)
        assert await asyncio.wait_for(kept, 10) == 7
        assert await asyncio.wait_for(a.call("add", 5, 6), 10) == 11  # and it serves on
    finally:
        predecessor.close()
        if successor is not None:
            successor.close(unlink=False)
        a.close()


async def test_doorbell_wakes_idle_loop_in_process() -> None:
    """An idle consumer sleeps on the eventfd (no polling) and is woken by the producer."""
    r = SpscRing.create(_name(), CAP)
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    woke = asyncio.Event()
    wakeups = 0

    def on_bell() -> None:
        nonlocal wakeups
        wakeups += 1
        r.disarm_doorbell()
        while True:
            got.extend(r.get_many())
            if r.arm_doorbell():
                break
        woke.set()

    try:
        assert r.arm_doorbell()  # idle: armed before anything arrives
        loop.add_reader(r.doorbell_fd, on_bell)
        await asyncio.sleep(0.02)
        assert wakeups == 0
        r.try_put(b"first")
        r.try_put(b"second")  # the ring was not empty: no second bell needed
        await asyncio.wait_for(woke.wait(), 10)
        assert got == [b"first", b"second"]
        woke.clear()
        r.put_many([b"third"])
        await asyncio.wait_for(woke.wait(), 10)
        assert got[-1] == b"third"
        await asyncio.sleep(0.02)
        assert wakeups == 2
    finally:
        loop.remove_reader(r.doorbell_fd)
        r.unlink()
        r.close()
