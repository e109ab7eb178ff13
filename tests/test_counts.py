"""aiostack/counts.py: the packet path's counter type and its ``count``, on both builds."""

from __future__ import annotations

from collections import Counter

from aiostack.counts import Counts, count, fold


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


def test_fold_adds_and_leaves_a_name_without_events_out() -> None:
    counts = Counts(rx=2)
    fold(counts, "rx", 3)
    fold(counts, "tx", 0)
    assert counts == {"rx": 5} and "tx" not in counts


def test_layer_stats_fold_the_per_frame_fields_on_every_read() -> None:
    from aiostack.drivers.buffers import PacketPool
    from aiostack.ip.stack import IPStack
    from aiostack.tcp.layer import TcpLayer

    ip = IPStack(PacketPool(4), 0.0)
    tcp = TcpLayer(ip)
    assert "rx_frames" not in ip.stats and "segments_out" not in tcp.stats
    ip._rx_frames += 2
    tcp._segments_out += 1
    tcp._header_predicted += 1
    assert ip.stats["rx_frames"] == 2 and dict(tcp.stats) == {"segments_out": 1, "header_predicted": 1}
    ip._rx_frames += 1
    assert ip.counters()["stats"] == {"rx_frames": 3}  # type: ignore[index]
