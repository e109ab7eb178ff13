"""Refreshing a neighbour an active flow uses (ip/arp.py): the unicast request is retransmitted
through the refresh window until a reply comes (RFC 1122 §2.3.2.1), so one lost request does not
let the entry expire into a broadcast re-resolution (seen in the 10,000-connection churn soak,
where requests were lost while the transmit pool was empty)."""

from __future__ import annotations

from aiostack.ip.arp import ArpCache
from aiostack.ip.timers import TimerWheel

PEER = 0x0A000001
MAC = bytes.fromhex("020000000001")


def make_cache() -> tuple[ArpCache, list[tuple[float, int, bytes]], list[float]]:
    now = [0.0]
    sent: list[tuple[float, int, bytes]] = []
    cache = ArpCache(
        TimerWheel(0.0),
        lambda ip, mac: sent.append((now[0], ip, mac)),
        lambda ip: None,
        lambda ip, mac, packets: None,
        reachable_time=60.0,
        refresh_time=5.0,
        retry_interval=1.0,
    )
    cache.learn(PEER, MAC, 0.0, create=True)
    return cache, sent, now


def lookup(cache: ArpCache, now: list[float], t: float) -> bytes | None:
    now[0] = t
    return cache.lookup(PEER, t)


def test_a_lost_refresh_request_is_sent_again_while_the_entry_is_used() -> None:
    cache, sent, now = make_cache()
    assert lookup(cache, now, 54.0) == MAC and sent == []  # not yet in the refresh window
    assert lookup(cache, now, 55.5) == MAC
    assert [(t, mac) for t, _, mac in sent] == [(55.5, MAC)]  # unicast, to the known MAC
    assert lookup(cache, now, 56.0) == MAC and len(sent) == 1  # within the retry interval
    assert lookup(cache, now, 56.6) == MAC and len(sent) == 2  # the first went unanswered
    assert lookup(cache, now, 58.0) == MAC and len(sent) == 3
    assert lookup(cache, now, 60.0) is None  # all unanswered: the entry expires at last


def test_a_reply_ends_the_refresh() -> None:
    cache, sent, now = make_cache()
    lookup(cache, now, 55.5)
    cache.learn(PEER, MAC, 55.7, create=False)
    assert lookup(cache, now, 57.0) == MAC and len(sent) == 1  # fresh again: no request
    assert lookup(cache, now, 111.0) == MAC and len(sent) == 2  # the next window, 60 s later
