"""Replay protection and digest conflicts: the guard alone, then as the Node applies them."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycarp.core.actions import HostKey, Notice, PacketDropped, State
from pycarp.core.config import VirtualHostConfig
from pycarp.core.conflict import CONFLICT_AFTER, QUIET_INTERVALS, DigestConflict
from pycarp.core.errors import ConfigError, DropReason
from pycarp.core.node import Node
from pycarp.core.replay import (
    MODULUS,
    OWN_RECENT,
    REPEATS,
    RUNS,
    CounterWindow,
    ReplayGuard,
)
from pycarp.core.status import node_status
from tests.helpers import datagram, links, make_advert, make_config, of_type

A = IPv4Address("192.0.2.2")
B = IPv4Address("192.0.2.3")
OWN = 1 << 63  # our last counter in these tests: far from theirs
KEY = HostKey("eth0", 1)
CONFIG = make_config(vhid=1, password=b"one", addresses=("192.0.2.51",))


def check(guard: ReplayGuard, counter: int, source: IPv4Address = A) -> DropReason | None:
    return guard.check(counter, source, own=OWN)


# -- the window -----------------------------------------------------------


def test_window_forgets_the_oldest_once_full() -> None:
    window = CounterWindow(3, bucket=1)
    for c in (5, 1, 9):
        window.add(c)
    window.add(7)
    assert 5 not in window and all(c in window for c in (1, 9, 7)) and len(window) == 3


@given(
    st.lists(st.integers(0, MODULUS - 1), max_size=300),
    st.integers(1, 50),
    st.integers(1, 8),
)
def test_window_holds_the_last_distinct_counters(
    counters: list[int], size: int, bucket: int
) -> None:
    window = CounterWindow(size, bucket=bucket)
    added: list[int] = []
    for c in counters:
        if c not in window:
            window.add(c)
            added.append(c)
        assert len(window) < size + bucket  # the memory bound
    kept = max(size - bucket + 1, 0)
    assert all(c in window for c in added[len(added) - kept :])
    cut = max(len(added) - size - bucket, 0)
    assert not any(c in window for c in set(added[:cut]) - set(added[cut:]))


# -- the guard ------------------------------------------------------------


@given(st.data())
def test_random_counters_are_dropped_only_when_they_truly_repeat(data: st.DataObject) -> None:
    """ucarp's counters, a fresh random draw each time, with replays mixed in."""
    guard = ReplayGuard(window=1000)
    fresh = st.integers(0, MODULUS - 1).filter(lambda c: (OWN - c) % MODULUS >= OWN_RECENT)
    seen = data.draw(st.lists(fresh, min_size=2, max_size=2, unique=True))
    assert [check(guard, c) for c in seen] == [None, None]
    for _ in range(data.draw(st.integers(0, 100))):
        c = data.draw(st.sampled_from(seen) if data.draw(st.booleans()) else fresh)
        assert check(guard, c) is (DropReason.REPLAY if c in seen else None)
        seen.append(c)
    assert guard.constant_senders == []


def test_a_repeated_counter_is_a_replay_from_any_source() -> None:
    guard = ReplayGuard()
    assert check(guard, 10) is None and check(guard, 11) is None
    assert check(guard, 10) is DropReason.REPLAY
    assert check(guard, 11, B) is DropReason.REPLAY  # the digest does not cover the source
    assert check(guard, 12, B) is None


def test_a_constant_counter_sender_is_exempt_without_a_drop() -> None:
    guard = ReplayGuard()
    verdicts = [check(guard, 77) for _ in range(10)]
    assert verdicts == [None] * 10
    assert guard.constant_senders == [A] and guard.flagged == A
    assert check(guard, 77, B) is DropReason.REPLAY  # its counter from anyone else is not


def test_a_constant_sender_with_a_new_cookie_starts_over() -> None:
    guard = ReplayGuard()
    for _ in range(REPEATS):
        check(guard, 77)
    assert check(guard, 78) is None and guard.constant_senders == []
    assert [check(guard, 78) for _ in range(REPEATS)] == [None] * REPEATS
    assert guard.constant_senders == [A]
    assert check(guard, 77) is DropReason.REPLAY  # the old cookie, heard before


def test_replays_heard_first_cannot_exempt_the_real_master() -> None:
    """A backup that just started hears a replay three times before the master itself."""
    guard = ReplayGuard()
    for _ in range(REPEATS):
        check(guard, 500)
    assert guard.constant_senders == [A]
    assert check(guard, 900) is None and check(guard, 901) is None  # the master, counting up
    assert check(guard, 500) is DropReason.REPLAY and guard.constant_senders == []


def test_a_sender_that_varied_never_becomes_constant() -> None:
    """A dead pycarp or ucarp master's advertisement, replayed: dropped every time."""
    guard = ReplayGuard()
    check(guard, 1)
    check(guard, 2)
    assert [check(guard, 2) for _ in range(REPEATS * 3)] == [DropReason.REPLAY] * (REPEATS * 3)
    assert guard.constant_senders == []


@pytest.mark.parametrize("back", [0, 1, OWN_RECENT - 1])
def test_our_own_recent_counters_are_dropped(back: int) -> None:
    guard = ReplayGuard()
    assert check(guard, OWN - back) is DropReason.OWN_COUNTER
    assert check(guard, OWN - OWN_RECENT) is None
    assert check(guard, OWN + 1) is None  # not sent yet


def test_off_checks_nothing() -> None:
    guard = ReplayGuard("off")
    assert [check(guard, OWN), check(guard, 5), check(guard, 5, B)] == [None] * 3


def test_strict_needs_each_senders_counter_to_grow() -> None:
    guard = ReplayGuard("strict")
    assert check(guard, MODULUS - 1) is None
    assert check(guard, 3) is None  # wraps round
    assert check(guard, 2) is DropReason.REPLAY  # new, but lower
    assert check(guard, 3) is DropReason.REPLAY
    assert [check(guard, 9) for _ in range(3)] == [None] + [DropReason.REPLAY] * 2  # no exemption
    assert guard.constant_senders == []


def test_strict_takes_a_restarted_peer_after_a_few_growing_counters() -> None:
    guard = ReplayGuard("strict")
    check(guard, 1000)
    verdicts = [check(guard, c) for c in (10, 11, 12, 13)]
    assert verdicts == [DropReason.REPLAY] * (REPEATS - 1) + [None, None]


def test_senders_are_remembered_up_to_a_cap() -> None:
    guard = ReplayGuard(senders=2)
    for i, source in enumerate((A, B, IPv4Address("192.0.2.4"))):
        for _ in range(REPEATS):
            check(guard, 100 + i, source)
    assert guard.constant_senders == [B, IPv4Address("192.0.2.4")]


def test_memory_stays_bounded() -> None:
    guard = ReplayGuard(window=64, senders=4)
    for c in range(10_000):
        check(guard, c * 7919, IPv4Address(0xC0000200 + c % 50))
    assert len(guard.window) < 64 + guard.window.bucket and len(guard.runs) <= RUNS


def test_a_counting_up_sender_is_kept_as_a_run() -> None:
    guard = ReplayGuard()
    assert [check(guard, c) for c in range(1000, 1500)] == [None] * 500
    assert len(guard.window) == 1  # the run's first counter only
    assert check(guard, 1200, B) is DropReason.REPLAY
    assert check(guard, 9000) is None  # restarted: a new run; the old one is kept
    assert list(guard.runs) == [(1000, 1499)] and check(guard, 1499) is DropReason.REPLAY


# -- digest conflicts ----------------------------------------------------------


def test_a_conflict_begins_after_a_few_bad_digests_and_ends_when_quiet() -> None:
    conflict = DigestConflict(quiet=9.0)
    said = [conflict.failed(A, now=float(t)) for t in range(CONFLICT_AFTER)]
    assert said[:-1] == [None] * (CONFLICT_AFTER - 1) and "keep failing the digest" in str(said[-1])
    assert conflict.shown() == (str(A), 0.0, CONFLICT_AFTER)
    assert conflict.failed(B, now=5.0) is None  # said once, not per packet
    assert conflict.expire(now=13.9) is None
    over = conflict.expire(now=14.0)
    assert over is not None and "over" in over and str(B) in over
    assert conflict.shown() is None and conflict.expire(now=99.0) is None


def test_a_stray_bad_digest_is_no_conflict() -> None:
    conflict = DigestConflict(quiet=9.0)
    assert conflict.failed(A, now=0.0) is None
    assert conflict.expire(now=20.0) is None  # ended without ever being one
    assert conflict.failed(A, now=30.0) is None and conflict.shown() is None


# -- in the Node ------------------------------------------------------------


def started(config: VirtualHostConfig = CONFIG) -> Node:
    node = Node([config], counter=lambda: OWN)
    node.start(now=0.0, links=links)
    return node


def test_node_drops_replays_and_counts_them() -> None:
    node = started()
    good = datagram(make_advert(CONFIG, counter=5))
    assert node.receive(good, interface="eth0", now=1.0) == []
    node.receive(datagram(make_advert(CONFIG, counter=6)), interface="eth0", now=2.0)
    demoted = datagram(make_advert(CONFIG, counter=5, advbase=255, advskew=255))
    (drop,) = node.receive(demoted, interface="eth0", now=3.0)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.REPLAY
    assert node.host_drops[KEY] == {DropReason.REPLAY: 1}
    assert node.hosts[KEY].adverts_received == 2 and node.hosts[KEY].state is State.BACKUP


def test_node_drops_our_own_counter_from_a_peers_address() -> None:
    node = started()
    node.on_timer(now=10.0)  # MASTER: sends counter OWN + 1
    host = node.hosts[KEY]
    assert host.state is State.MASTER
    stolen = datagram(make_advert(CONFIG, counter=host.counter, advskew=0, advbase=0))
    (drop,) = node.receive(stolen, interface="eth0", now=10.5)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.OWN_COUNTER
    assert host.state is State.MASTER


def test_node_flags_a_constant_counter_sender_once_and_shows_it() -> None:
    node = started()
    notices = []
    for t in range(6):
        actions = node.receive(datagram(make_advert(CONFIG, counter=42)), interface="eth0", now=t)
        assert not of_type(actions, PacketDropped)
        notices += of_type(actions, Notice)
    assert len(notices) == 1 and "repeats one counter" in notices[0].message
    (status,) = node_status(node)
    assert status.to_json(now=6.0)["constant_counter"] == ["192.0.2.2"]


def test_node_replay_off_accepts_repeats() -> None:
    config = make_config(vhid=1, password=b"one", addresses=("192.0.2.51",), replay="off")
    node = started(config)
    for t in range(2):
        node.receive(datagram(make_advert(config, counter=5)), interface="eth0", now=1.0 + t)
        node.receive(datagram(make_advert(config, counter=6)), interface="eth0", now=1.5 + t)
    assert node.host_drops[KEY] == {} and node.hosts[KEY].adverts_received == 4


def test_replay_mode_is_checked() -> None:
    with pytest.raises(ConfigError, match="not one of on, strict, off") as raised:
        make_config(replay="sometimes")
    assert raised.value.field == "replay"


def test_node_shows_a_digest_conflict_while_it_lasts() -> None:
    node = started()
    other = make_config(vhid=1, password=b"other", addresses=("192.0.2.51",))
    bad = datagram(make_advert(other, counter=1), src="192.0.2.9")
    notices: list[Notice] = []
    for t in range(5):
        notices += of_type(node.receive(bad, interface="eth0", now=1.0 + t), Notice)
    assert len(notices) == 1 and node.conflict_changes == 1
    (status,) = node_status(node)
    shown = json.loads(json.dumps(status.to_json(now=6.0)))["conflict"]
    assert shown == {"source": "192.0.2.9", "for": 5.0, "count": 5}
    quiet = QUIET_INTERVALS * node.hosts[KEY].master_down_interval.total
    over = of_type(node.on_timer(now=5.0 + quiet), Notice)  # MASTER by then: timers run
    assert any("digest conflict over" in n.message for n in over)
    (status,) = node_status(node)
    assert status.to_json(now=30.0)["conflict"] is None and node.conflict_changes == 2
