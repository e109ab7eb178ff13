"""The packet pool grows on demand, up to its cap, and shrinks back when told to (issue #13: the
4,096-buffer transmit pool was too small for 10,000 connections sending in one iteration)."""

from __future__ import annotations

import pytest

from aiostack.drivers.buffers import DEFAULT_POOL_BUFFERS, DEFAULT_POOL_MAX, PacketPool, PoolExhausted
from aiostack.stack import pool_for_mtu


def test_default_pool_makes_4096_and_grows_in_chunks_to_its_cap() -> None:
    pool = PacketPool(count=DEFAULT_POOL_BUFFERS + 1024, grow_by=512)
    assert pool.made == DEFAULT_POOL_BUFFERS and pool.grows == 0
    assert pool.available == DEFAULT_POOL_BUFFERS + 1024
    held = [pool.try_alloc() for _ in range(DEFAULT_POOL_BUFFERS)]
    assert pool.grows == 0  # the buffers made up front serve without growing
    held.append(pool.try_alloc())
    assert pool.grows == 1 and pool.made == DEFAULT_POOL_BUFFERS + 512
    held += [pool.try_alloc() for _ in range(1023)]
    assert all(p is not None for p in held)
    assert pool.grows == 2 and pool.made == pool.count
    assert pool.try_alloc() is None and pool.failures == 1  # at the cap: counted, no growth
    with pytest.raises(PoolExhausted):
        pool.alloc()
    assert pool.failures == 2 and pool.made == pool.count
    for p in held:
        p.free()  # type: ignore[union-attr]
    assert pool.available == pool.count


def test_explicit_small_count_is_a_fixed_pool() -> None:
    pool = PacketPool(count=8)
    assert pool.made == 8
    held = [pool.try_alloc() for _ in range(8)]
    assert pool.try_alloc() is None and pool.grows == 0 and pool.failures == 1
    for p in held:
        p.free()  # type: ignore[union-attr]


def test_alloc_grows_too() -> None:
    pool = PacketPool(count=6, initial=2, grow_by=3)
    held = [pool.alloc() for _ in range(6)]
    assert pool.grows == 2 and pool.made == 6
    for p in held:
        p.free()


def test_trim_lets_go_of_free_buffers_beyond_the_initial_ones_only() -> None:
    pool = PacketPool(count=64, initial=16, grow_by=16)
    held = [pool.try_alloc() for _ in range(40)]
    assert pool.made == 48
    assert pool.trim() == 8  # only free buffers go: 8 of the 48 are free
    assert pool.made == 40 and pool.available == 64 - 40
    for p in held[:30]:
        p.free()  # type: ignore[union-attr]
    assert pool.trim() == 24  # back to the 16 made up front, 10 still in use
    assert pool.made == 16 and pool.available == 64 - 10
    for p in held[30:]:
        p.free()  # type: ignore[union-attr]
    assert pool.trim() == 0 and pool.made == 16 + 0 and pool.available == pool.count
    again = [pool.try_alloc() for _ in range(64)]  # grows again after a trim
    assert all(p is not None for p in again) and pool.made == 64


def test_lazy_pool_makes_one_at_a_time() -> None:
    pool = PacketPool(count=4, size=70000, headroom=192, lazy=True)
    assert pool.made == 0 and pool.available == 4
    a = pool.try_alloc()
    assert a is not None and pool.made == 1 and pool.grows == 1
    a.free()
    assert pool.trim() == 1 and pool.made == 0  # a lazy pool shrinks back to nothing


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        PacketPool(count=4, initial=5)
    with pytest.raises(ValueError):
        PacketPool(count=4, grow_by=0)


def test_pool_for_mtu_makes_4096_and_caps_at_pool_max() -> None:
    pool = pool_for_mtu(1500)
    assert pool.made == DEFAULT_POOL_BUFFERS and pool.count == DEFAULT_POOL_MAX
    jumbo = pool_for_mtu(9000, max_count=8192)
    assert jumbo.count == 8192 and jumbo.size >= 9000 + 14
