"""TimerWheel: ordering, never early, cancel, far-future deadlines, re-entrancy, scale, and a
randomised comparison against a plain heapq model (the behaviour the wheel must reproduce)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiostack.ip.timers import Timer, TimerWheel


def test_fires_in_deadline_order_ties_in_schedule_order() -> None:
    w = TimerWheel(0.0)
    fired: list[str] = []
    deadlines = [("c", 0.0031), ("a", 0.0005), ("b", 0.0031), ("d", 2.5), ("e", 0.0005), ("f", 0.00051)]
    for name, when in deadlines:
        w.schedule(when, fired.append, name)
    assert len(w) == 6
    assert w.advance(10.0) == 6
    assert fired == ["a", "e", "f", "c", "b", "d"]
    assert len(w) == 0
    assert w.next_deadline() is None


def test_order_across_many_ticks_in_one_advance() -> None:
    rng = random.Random(7)
    w = TimerWheel(0.0, tick=0.001, slots=16)
    whens = [rng.uniform(0, 0.2) for _ in range(500)]
    fired: list[float] = []
    for x in whens:
        w.schedule(x, fired.append, x)
    assert w.advance(0.2) == 500
    assert fired == sorted(whens)


def test_never_early_within_a_tick() -> None:
    w = TimerWheel(100.0, tick=0.01, slots=64)
    fired: list[float] = []
    t = w.schedule(100.0155, fired.append, 1.0)  # in the middle of tick 1
    assert t.active and t.when == 100.0155
    assert w.advance(100.0100) == 0  # start of its tick: not yet
    assert w.advance(100.0154999) == 0
    assert fired == [] and t.active
    assert w.advance(100.0155) == 1  # exactly at the deadline
    assert fired == [1.0] and not t.active


def test_each_timer_fires_at_first_advance_reaching_it() -> None:
    w = TimerWheel(0.0, tick=0.001, slots=32)
    fired_at: dict[int, float] = {}
    now = 0.0
    whens = [i * 0.00037 for i in range(1, 300)]
    for i, x in enumerate(whens):
        w.schedule(x, lambda i=i: fired_at.__setitem__(i, now))
    prev = 0.0
    while now < 0.12:
        now = round(now + 0.00023, 9)
        w.advance(now)
        for i, at in fired_at.items():
            if at == now:
                assert prev < whens[i] <= now
        prev = now
    assert len(fired_at) == len(whens)


def test_past_deadline_fires_at_next_advance() -> None:
    w = TimerWheel(0.0)
    w.advance(5.0)
    fired: list[int] = []
    w.schedule(1.0, fired.append, 1)  # already in the past
    w.schedule(-3.0, fired.append, 2)  # before the wheel's origin
    assert w.next_deadline() == -3.0
    assert w.advance(5.0) == 2
    assert fired == [2, 1]


def test_cancel() -> None:
    w = TimerWheel(0.0)
    fired: list[str] = []
    a = w.schedule(0.5, fired.append, "a")
    b = w.schedule(0.6, fired.append, "b")
    assert len(w) == 2
    assert a.cancel() is True
    assert not a.active
    assert a.cancel() is False  # twice is harmless
    assert len(w) == 1
    assert w.advance(1.0) == 1
    assert fired == ["b"]
    assert b.cancel() is False  # after firing
    assert len(w) == 0


def test_far_future_many_revolutions() -> None:
    w = TimerWheel(0.0, tick=0.001, slots=8)  # one revolution = 8 ms
    fired: list[float] = []
    far = w.schedule(1.0, fired.append, 1.0)  # 125 revolutions ahead
    near = w.schedule(0.004, fired.append, 0.004)
    w.schedule(0.0045 + 8 * 0.001, fired.append, 0.0125)  # same slot as `near`, next revolution
    assert w.next_deadline() == 0.004
    now = 0.0
    while now < 0.9999:
        now = round(now + 0.0007, 7)
        if now >= 1.0:
            break
        w.advance(now)
        assert far.active
    assert fired == [0.004, 0.0125]
    assert not near.active
    assert w.next_deadline() == 1.0
    w.advance(1.0)
    assert fired == [0.004, 0.0125, 1.0]


def test_jump_over_many_revolutions_walks_each_slot_once() -> None:
    w = TimerWheel(0.0, tick=0.001, slots=8)
    fired: list[float] = []
    whens = [0.003, 0.5, 3.0, 7.25, 100.0]
    for x in whens:
        w.schedule(x, fired.append, x)
    assert w.advance(7.25) == 4
    assert fired == whens[:4]
    assert w.next_deadline() == 100.0
    assert w.advance(99.9999) == 0
    assert w.advance(1e4) == 1


def test_reentrant_schedule_and_cancel() -> None:
    w = TimerWheel(0.0, tick=0.001, slots=16)
    log: list[str] = []
    later: dict[str, Timer] = {}

    def first() -> None:
        log.append("first")
        w.schedule(0.0001, log.append, "past-due")  # earlier than anything left: fires next
        w.schedule(0.050, log.append, "due-late")  # due in this advance, after "second"
        w.schedule(0.5, log.append, "future")  # not due in this advance
        later["victim"].cancel()  # due in this advance, cancelled before its turn

    def second() -> None:
        log.append("second")
        assert w.next_deadline() == 0.050  # only the just-scheduled timer is still due
        later["self"].cancel()  # cancelling oneself while firing is harmless

    w.schedule(0.010, first)
    later["self"] = w.schedule(0.020, second)
    later["victim"] = w.schedule(0.030, log.append, "victim")
    assert w.advance(0.1) == 4
    assert log == ["first", "past-due", "second", "due-late"]
    assert len(w) == 1 and w.next_deadline() == 0.5
    w.advance(0.5)
    assert log[-1] == "future"


def test_advance_from_callback_is_refused() -> None:
    w = TimerWheel(0.0)
    w.schedule(0.001, lambda: w.advance(1.0))
    with pytest.raises(RuntimeError):
        w.advance(1.0)


def test_exception_in_callback_keeps_remaining_due_timers() -> None:
    w = TimerWheel(0.0)
    log: list[int] = []

    def boom() -> None:
        raise ValueError("boom")

    w.schedule(0.001, log.append, 1)
    w.schedule(0.002, boom)
    w.schedule(0.003, log.append, 3)
    w.schedule(9.0, log.append, 9)
    with pytest.raises(ValueError):
        w.advance(1.0)
    assert log == [1]
    assert len(w) == 2
    assert w.next_deadline() == 0.003
    assert w.advance(1.0) == 1
    assert log == [1, 3]


def test_100k_timers_90_percent_cancelled() -> None:
    w = TimerWheel(0.0, tick=0.001, slots=4096)
    rng = random.Random(1)
    fired: list[int] = []
    timers = [w.schedule(rng.uniform(0.0, 20.0), fired.append, i) for i in range(100_000)]
    keep = set(rng.sample(range(100_000), 10_000))
    for i, t in enumerate(timers):
        if i not in keep:
            assert t.cancel()
    assert len(w) == 10_000
    # O(1) cancel without tombstones: the slots hold exactly the live timers.
    assert sum(len(s) for s in w._slots) == 10_000
    expected_first = min(timers[i].when for i in keep)
    assert w.next_deadline() <= expected_first
    now = 0.0
    total = 0
    while now < 20.0:
        now += 0.25
        total += w.advance(now)
    assert total == 10_000
    assert sorted(fired) == sorted(keep)
    assert [timers[i].when for i in fired] == sorted(timers[i].when for i in keep)
    assert len(w) == 0 and w.next_deadline() is None


def test_next_deadline_cache_and_lower_bound() -> None:
    w = TimerWheel(0.0, tick=0.001, slots=64)
    assert w.next_deadline() is None
    a = w.schedule(0.3, lambda: None)
    assert w.next_deadline() == 0.3
    w.schedule(0.2, lambda: None)
    assert w.next_deadline() == 0.2  # scheduling lowers the cached answer
    c = w.schedule(0.1, lambda: None)
    c.cancel()
    assert w.next_deadline() <= 0.2  # a lower bound after a cancel, never later than the truth
    assert w.advance(0.1) == 0
    assert w.next_deadline() == 0.2  # recomputed exactly once passed
    w.advance(0.2)
    assert w.next_deadline() == 0.3
    a.cancel()
    w.advance(0.3)
    assert w.next_deadline() is None


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        TimerWheel(0.0, tick=0.0)
    with pytest.raises(ValueError):
        TimerWheel(0.0, slots=0)
    w = TimerWheel(0.0)
    with pytest.raises(ValueError):
        w.schedule(float("inf"), lambda: None)
    with pytest.raises(ValueError):
        w.schedule(float("nan"), lambda: None)
    with pytest.raises(ValueError):
        w.schedule(1e300, lambda: None)
    assert len(w) == 0 and w.next_deadline() is None


# -- randomised comparison against a heapq model --------------------------------------------------


class HeapModel:
    """The reference: a binary heap of (when, schedule order), cancelled entries skipped."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.live: dict[int, bool] = {}
        self.seq = 0
        self.now = 0.0
        self.firing = False

    def schedule(self, when: float, fn: Callable[[], None]) -> int:
        seq = self.seq
        self.seq += 1
        heapq.heappush(self.heap, (when, seq, fn))
        self.live[seq] = True
        return seq

    def cancel(self, seq: int) -> bool:
        was = self.live[seq]
        self.live[seq] = False
        return was

    def advance(self, now: float) -> int:
        self.now = now
        fired = 0
        while self.heap and self.heap[0][0] <= now:
            _, seq, fn = heapq.heappop(self.heap)
            if self.live[seq]:
                self.live[seq] = False
                fired += 1
                fn()
        return fired

    def __len__(self) -> int:
        return sum(self.live.values())

    def earliest(self) -> float | None:
        live = [w for w, s, _ in self.heap if self.live[s]]
        return min(live) if live else None


class WheelModel:
    """The wheel behind the same interface, with timers named by schedule order."""

    def __init__(self, tick: float, slots: int) -> None:
        self.wheel = TimerWheel(0.0, tick=tick, slots=slots)
        self.timers: list[Timer] = []
        self.now = 0.0

    def schedule(self, when: float, fn: Callable[[], None]) -> int:
        self.timers.append(self.wheel.schedule(when, fn))
        return len(self.timers) - 1

    def cancel(self, seq: int) -> bool:
        return self.timers[seq].cancel()

    def advance(self, now: float) -> int:
        self.now = now
        return self.wheel.advance(now)

    def __len__(self) -> int:
        return len(self.wheel)


deltas = st.one_of(
    st.integers(-20, 400).map(lambda k: k * 0.0005),  # exact tick boundaries and half ticks
    st.floats(-0.01, 2.0, allow_nan=False, allow_infinity=False),
    st.floats(2.0, 60.0),  # many revolutions of the small wheels below
)
# What a timer does when it fires: nothing, schedule another (possibly already due), or cancel one.
actions = st.one_of(
    st.none(),
    st.tuples(st.just("schedule"), deltas),
    st.tuples(st.just("cancel"), st.integers(0, 10_000)),
)
ops = st.one_of(
    st.tuples(st.just("schedule"), deltas),
    st.tuples(st.just("cancel"), st.integers(0, 10_000)),
    st.tuples(st.just("advance"), st.one_of(st.integers(0, 40).map(lambda k: k * 0.00025), deltas)),
)


def run(model: Any, program: list[tuple[str, Any]], on_fire: list[Any]) -> list[tuple[Any, ...]]:
    """Run ``program`` on ``model``; return an observable trace (fires, cancel results, lengths)."""
    trace: list[tuple[Any, ...]] = []
    scheduled: list[float] = []
    step = [0]

    def make(seq_box: list[int]) -> Callable[[], None]:
        def fire() -> None:
            seq = seq_box[0]
            trace.append(("fire", seq, step[0]))
            act = on_fire[seq % len(on_fire)]
            # A callback that schedules an already-due timer fires again in the same advance;
            # cap the chain so a generated program cannot loop forever (in either model).
            if act is None or len(trace) > 2000:
                return
            if act[0] == "schedule":
                do_schedule(model.now + act[1])
            elif scheduled:
                trace.append(("cancel-in-cb", model.cancel(act[1] % len(scheduled))))

        return fire

    def do_schedule(when: float) -> None:
        box = [0]
        box[0] = model.schedule(when, make(box))
        scheduled.append(when)

    for op, arg in program:
        step[0] += 1
        if op == "schedule":
            do_schedule(model.now + arg)
        elif op == "cancel":
            if scheduled:
                trace.append(("cancel", model.cancel(arg % len(scheduled))))
        else:
            trace.append(("advanced", model.advance(model.now + max(arg, 0.0))))
        trace.append(("len", len(model)))
    return trace


@settings(max_examples=150, deadline=None)
@given(
    program=st.lists(ops, max_size=60),
    on_fire=st.lists(actions, min_size=1, max_size=8),
    tick=st.sampled_from([0.001, 0.0005, 0.01, 0.3]),
    slots=st.sampled_from([1, 2, 3, 8, 64]),
)
def test_matches_heap_model(
    program: list[tuple[str, Any]], on_fire: list[Any], tick: float, slots: int
) -> None:
    # Same fires, same order, in the same advance step; same cancel results; same lengths.
    assert run(WheelModel(tick, slots), program, on_fire) == run(HeapModel(), program, on_fire)


@settings(max_examples=100, deadline=None)
@given(program=st.lists(ops, max_size=60), tick=st.sampled_from([0.001, 0.01]), slots=st.sampled_from([2, 8]))
def test_next_deadline_is_a_lower_bound(program: list[tuple[str, Any]], tick: float, slots: int) -> None:
    check_next_deadline(program, tick, slots)


@settings(max_examples=100, deadline=None)
@given(
    program=st.lists(ops, max_size=60),
    tick=st.sampled_from([0.001, 0.01]),
    slots=st.sampled_from([2, 8, 64]),
    walk=st.sampled_from([1, 3, 100]),
)
def test_next_deadline_walking_the_ticks_is_a_lower_bound_too(
    program: list[tuple[str, Any]], tick: float, slots: int, walk: int
) -> None:
    """The same with the tick walk (used when many slots hold timers) taken every time, over
    short and long walks (a short one falls back to the slots' bounds)."""
    from unittest import mock

    import aiostack.ip.timers as timers_module

    with mock.patch.object(timers_module, "_WALK_WHEN_OVER", 0), mock.patch.object(timers_module, "_WALK_TICKS", walk):
        check_next_deadline(program, tick, slots)


def check_next_deadline(program: list[tuple[str, Any]], tick: float, slots: int) -> None:
    ref = HeapModel()
    w = TimerWheel(0.0, tick=tick, slots=slots)
    timers: list[Timer] = []
    now = 0.0
    for op, arg in program:
        if op == "schedule":
            timers.append(w.schedule(now + arg, lambda: None))
            ref.schedule(now + arg, lambda: None)
        elif op == "cancel" and timers:
            i = arg % len(timers)
            assert timers[i].cancel() == ref.cancel(i)
        elif op == "advance":
            now += max(arg, 0.0)
            assert w.advance(now) == ref.advance(now)
        truth = ref.earliest()
        nd = w.next_deadline()
        if truth is None:
            assert nd is None
        else:
            assert nd is not None and nd <= truth
            # Either exact, or the deadline of a timer cancelled since the last recompute.
            assert nd == truth or any(t.when == nd and not t.active for t in timers)


def test_next_deadline_among_many_occupied_slots() -> None:
    """Hundreds of slots holding timers (a reactor's TIME-WAIT connections): next_deadline walks
    the coming ticks first. Checked against the live timers at every step, with cancels."""
    rng = random.Random(5)
    w = TimerWheel(0.0)  # 1 ms ticks, 4096 slots
    timers = [w.schedule(rng.uniform(0.0, 3.0), lambda: None) for _ in range(600)]
    now = 0.0
    while now < 3.1:
        for _ in range(rng.randrange(3)):  # connections closing meanwhile
            timers.append(w.schedule(now + rng.uniform(0.0, 0.5), lambda: None))
        if rng.random() < 0.3:
            rng.choice(timers).cancel()
        now += rng.choice([0.0004, 0.001, 0.0023, 0.017])
        w.advance(now)
        live = [t.when for t in timers if t.active]
        nd = w.next_deadline()
        if not live:
            assert nd is None
            continue
        assert nd is not None and nd <= min(live)
        assert nd == min(live) or any(t.when == nd and not t.active for t in timers)
