"""aiostack/counts.py: the packet path's counter type and its ``count``, on both builds."""

from __future__ import annotations

from collections import Counter

from aiostack.counts import Counts, count


def test_count_adds_one_and_starts_a_missing_name_at_one() -> None:
    counts = Counts()
    count(counts, "rx")
    count(counts, "rx")
    count(counts, "tx")
    assert counts == {"rx": 2, "tx": 1}


def test_count_reads_and_writes_what_the_counter_holds() -> None:
    counts = Counts(rx=5)
    count(counts, "rx")
    assert counts["rx"] == 6 and counts["missing"] == 0
    plain = Counter()  # a Counter that is not a Counts counts the same
    count(plain, "x")
    assert plain == {"x": 1}


def test_counts_are_made_as_counters_are() -> None:
    from collections import Counter

    for args, kwds in (((), {}), (({"a": 2},), {}), (("abca",), {}), ((), {"x": 3}), (({"a": 1},), {"b": 2})):
        made = Counts(*args, **kwds)
        assert made == Counter(*args, **kwds)
        assert isinstance(made, Counter)
    assert Counts() == {} and not Counts()
