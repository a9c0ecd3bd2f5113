"""Demotion and promotion: the priority advertised, OpenBSD's demote rule, and the node's groups."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pycarp.core import election, packet
from pycarp.core.actions import (
    CheckReported,
    DemotionChanged,
    Reason,
    RunCheck,
    SendAdvertisement,
    State,
    StateChanged,
)
from pycarp.core.checkconfig import CheckConfig
from pycarp.core.errors import ConfigError
from pycarp.core.node import Node
from pycarp.core.priority import LEAVING, advertised
from pycarp.core.state import VirtualHost
from pycarp.core.status import document
from pycarp.core.timing import Interval
from tests.helpers import LINK, links, make_advert, make_config, of_type

PEER = IPv4Address("198.51.100.2")
ONE = Interval(1, 0)
CHECK = CheckConfig(name="web", type="command", command=("/bin/true",), rise=1, fall=1)


def config(**overrides: Any) -> Any:
    values: dict[str, Any] = {"srcip": "198.51.100.1", "addresses": "198.51.100.100"}
    return make_config(**{**values, **overrides})


# -- what is advertised -------------------------------------------------------


def test_the_penalty_is_added_while_demoted_and_never_wraps() -> None:
    c = config(advskew=200, penalty=100)
    assert advertised(c) == (1, 200, 0)
    assert advertised(c, demote=3) == (1, 255, 3)  # 300 clamped, not 44
    assert advertised(config(advbase=255, advskew=200), demote=1) == (255, 254, 1)
    assert advertised(config(demotion="stepdown", advskew=5), demote=1) == (1, 5, 1)
    assert advertised(c, demote=999).demote == 255


def test_promotion_advertises_the_best_priority_it_can() -> None:
    assert advertised(config(advskew=200), promoted=True, demote=4) == (1, 0, 0)
    assert advertised(config(advbase=0, advskew=10), promoted=True) == (0, 1, 0)  # never 0/0
    assert advertised(config(), promoted=True, suppressed=True).advskew == 240
    assert advertised(config(), leaving=True, demote=2) == (LEAVING, LEAVING, 2)


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 1000))
def test_the_advertised_priority_is_always_valid(base: int, skew: int, pen: int, dem: int) -> None:
    assume((base, skew) not in ((0, 0), (255, 255)))  # refused by the config
    mine = advertised(config(advbase=base, advskew=skew, penalty=pen), demote=dem)
    assert 0 <= mine.advskew <= 255 and 0 <= mine.demote <= 255
    assert (mine.advbase, mine.advskew) != (LEAVING, LEAVING)
    assert (mine.advbase, mine.advskew) != (0, 0)
    assert mine.advskew >= skew  # demotion only ever makes a host weaker


# -- OpenBSD's rule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "demote", "their_demote", "yields"),
    [
        (ONE, Interval(2, 0), 0, 0, False),  # ucarp's rule: the slower one stays backup
        (ONE, Interval(2, 0), 1, 0, True),  # less demoted wins even when slower
        (Interval(2, 0), ONE, 0, 1, False),  # more demoted loses even when faster
    ],
)
def test_a_master_yields_to_the_less_demoted(
    ours: Interval, theirs: Interval, demote: int, their_demote: int, yields: bool
) -> None:
    me = IPv4Address("198.51.100.1")
    got = election.master_yields(ours, theirs, me, PEER, demote=demote, their_demote=their_demote)
    assert got is yields


def test_a_backup_takes_over_from_a_more_demoted_master_even_without_preempt() -> None:
    take = election.backup_takes_over
    threshold = Interval(3, 0)
    assert take(ONE, ONE, threshold, preempt=False, faulted=False, their_demote=1) is (
        Reason.PEER_DEMOTED
    )
    assert take(ONE, ONE, threshold, preempt=False, faulted=True, their_demote=1) is None
    # preempt never takes over from a less demoted master
    assert take(ONE, Interval(2, 0), threshold, preempt=True, faulted=False, demote=1) is None


# -- one host --------------------------------------------------------------------


def started(**overrides: Any) -> VirtualHost:
    host = VirtualHost(config(**overrides), counter=0)
    host.start(now=0.0, link=LINK)
    return host


def master(**overrides: Any) -> VirtualHost:
    host = started(**overrides)
    host.on_timer(now=3.0)
    assert host.state is State.MASTER
    return host


def test_a_demoted_master_says_so_at_once_in_its_advertisement() -> None:
    host = master(penalty=50)
    sent = of_type(host.set_demotion(2, now=4.0), SendAdvertisement)
    assert [(s.advert.advskew, s.advert.demote) for s in sent] == [(50, 2)]
    parsed = packet.decode(packet.parse_ipv4(sent[0].frames[0].payload)[1])
    assert parsed.demote == 2  # byte 4 of the CARP header


def test_stepdown_mode_leaves_master_and_stays_silent_until_no_longer_demoted() -> None:
    host = master(demotion="stepdown")
    actions = host.set_demotion(1, now=4.0)
    assert of_type(actions, StateChanged)[0].reason is Reason.DEMOTED
    assert host.state is State.BACKUP and host.next_deadline() is None
    assert host.on_timer(now=100.0) == []
    advert = make_advert(host.config, advbase=5)  # a slow master does not tempt it either
    assert host.receive(advert, source=PEER, now=101.0) == []
    host.set_demotion(0, now=102.0)
    assert host.next_deadline() == 102.0 + host.master_down_interval.total


def test_promote_makes_master_until_it_leaves_master() -> None:
    host = started(advskew=100, demotion="stepdown")
    host.set_demotion(1, now=0.5)
    actions = host.promote(now=1.0)
    assert of_type(actions, StateChanged)[0].reason is Reason.PROMOTED
    assert [(s.advert.advskew, s.advert.demote) for s in of_type(actions, SendAdvertisement)] == [
        (0, 0)
    ]
    assert host.promote(now=1.5) == []  # already MASTER
    preferred = make_advert(host.config, advbase=1, advskew=0)
    host.receive(preferred, source=IPv4Address("198.51.100.0"), now=2.0)  # a lower address wins
    assert host.state is State.BACKUP and not host.promoted
    assert host.next_deadline() is None  # demoted in stepdown mode again: silent


def test_time_as_master_and_transitions_are_counted() -> None:
    host = master()
    host.force_backup(now=10.0)
    assert host.master_seconds(20.0) == pytest.approx(7.0)
    assert host.transitions[State.MASTER, Reason.MASTER_DOWN] == 1
    assert host.transitions[State.BACKUP, Reason.FORCED] == 1


# -- the node ----------------------------------------------------------------------


def node(*configs: Any, checks: tuple[CheckConfig, ...] = (CHECK,), **kw: Any) -> Node:
    return Node(configs, counter=lambda: 0, checks=checks, **kw)


def test_one_check_demotes_every_host_that_tracks_its_group() -> None:
    n = node(config(vhid=1, track=("web",)), config(vhid=2, track=("web",)), config(vhid=3))
    actions = n.start(now=0.0, links=links)
    boot = of_type(actions, DemotionChanged)
    assert [(d.group, d.old, d.new) for d in boot] == [("web", 0, 1)]
    assert [k.vhid for k in boot[0].hosts] == [1, 2]
    assert of_type(actions, RunCheck) == [RunCheck(CHECK)]
    assert [h.demote for h in n.hosts.values()] == [1, 1, 0]
    passed = n.check_result("web", ok=True, detail="exit status 0", now=0.2)
    assert of_type(passed, CheckReported)[0].state == "healthy"
    assert [h.demote for h in n.hosts.values()] == [0, 0, 0]
    n.on_timer(now=2.0)
    n.check_result("web", ok=False, detail="exit status 1", now=2.1)
    assert [h.demote for h in n.hosts.values()] == [1, 1, 0]
    assert n.health.next_deadline() == 2.0 + CHECK.interval


def test_a_manual_demotion_adds_up_with_the_checks() -> None:
    n = node(config(track=("web", "maint")), groups=("maint",))
    n.start(now=0.0, links=links)
    n.demote("maint", 3, now=1.0)
    assert n.hosts[next(iter(n.hosts))].demote == 4
    with pytest.raises(ValueError, match="no demotion group"):
        n.demote("nope", 1, now=1.0)


def test_tracking_a_group_that_nothing_defines_is_refused() -> None:
    with pytest.raises(ConfigError, match="'typo'"):
        node(config(track=("typo",)))


def test_results_of_a_check_that_is_gone_are_ignored() -> None:
    n = node(config(track=("web",)))
    n.start(now=0.0, links=links)
    assert n.check_result("other", ok=True, detail="", now=1.0) == []


def test_status_carries_checks_groups_and_interface_drops() -> None:
    n = node(config(track=("web",)))
    n.start(now=0.0, links=links)
    short_ttl = packet.encode_ipv4(
        PEER, IPv4Address("224.0.0.18"), b"\x21\x01" + bytes(34), ident=1, ttl=1
    )
    n.receive(short_ttl, interface="eth0", now=0.5)
    doc = document(n, now=1.0)
    assert doc["interfaces"] == {"eth0": {"dropped": {"ttl": 1}}}
    assert doc["checks"][0]["state"] == "starting" and doc["checks"][0]["group"] == "web"
    assert doc["groups"] == [
        {"name": "web", "count": 1, "failing": ["web"], "manual": 0, "hosts": ["eth0/vhid 1"]}
    ]
    host = doc["hosts"][0]
    assert (host["demote"], host["demoted"], host["track"]) == (1, True, ["web"])
    assert host["transitions"] == {"BACKUP": {"started": 1}}


def test_a_reload_of_only_the_demotion_settings_keeps_the_host_running() -> None:
    n = Node([config(), config(vhid=2, track=("web",))], counter=lambda: 0, checks=(CHECK,))
    n.start(now=0.0, links=links)
    n.on_timer(now=3.0)
    host = n.hosts[next(iter(n.hosts))]
    assert host.state is State.MASTER and host.demote == 0
    actions = n.retune(config(track=("web",), penalty=30), now=4.0)
    assert actions is not None and host.state is State.MASTER and host.since == 3.0
    assert [(s.advert.advskew, s.advert.demote) for s in of_type(actions, SendAdvertisement)] == [
        (30, 1)
    ]
    stepping = n.retune(config(track=("web",), demotion="stepdown"), now=5.0)
    assert stepping is not None and host.state is State.BACKUP
    assert of_type(stepping, StateChanged)[0].reason is Reason.DEMOTED
    assert n.retune(config(track=("web",), advskew=5), now=6.0) is None  # more than demotion
