"""VRRPv3's timers, its election and the state machine of a VRRP host (RFC 5798, 6)."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from pycarp.core import vrrp
from pycarp.core.actions import (
    Action,
    AddAddresses,
    Link,
    Notice,
    Reason,
    RemoveAddresses,
    SendAdvertisement,
    SendAnnouncement,
    State,
    StateChanged,
)
from pycarp.core.config import VirtualHostConfig, with_protocol_defaults
from pycarp.core.node import Node
from pycarp.core.state import VirtualHost
from pycarp.core.status import node_status
from pycarp.core.vrrp import BackupHears, MasterHears, VrrpAdvertisement
from tests.helpers import MAC, FakeLan, kinds, of_type

OWN = IPv4Address("198.51.100.5")
LOWER = IPv4Address("198.51.100.2")  # a peer below our primary address
HIGHER = IPv4Address("198.51.100.9")  # a peer above it
VIP = IPv4Address("198.51.100.100")
VRID = 7
LINK = Link(MAC)
DOWN_100 = 3 + (256 - 100) / 256  # the master-down interval of priority 100, 1 s: 3.609375


def vrrp_config(**overrides: Any) -> VirtualHostConfig:
    """A VRRP vhost as a front-end builds it: preempt and the virtual MAC by default."""
    values: dict[str, Any] = {
        "interface": "eth0",
        "srcip": OWN,
        "vhid": VRID,
        "addresses": (VIP,),
        "protocol": "vrrp3",
        **overrides,
    }
    return with_protocol_defaults(VirtualHostConfig(**values), overrides)


def host(**overrides: Any) -> VirtualHost:
    return VirtualHost(vrrp_config(**overrides), counter=0)


def heard(priority: int, interval: int = 100) -> VrrpAdvertisement:
    return VrrpAdvertisement(VRID, priority, interval, (VIP,))


def backup(**overrides: Any) -> VirtualHost:
    vh = host(**overrides)
    vh.start(now=0.0, link=LINK)
    assert vh.state is State.BACKUP
    return vh


def master(**overrides: Any) -> tuple[VirtualHost, float]:
    """A host made MASTER by its master-down timer; returns it and when."""
    vh = backup(**overrides)
    at = vh.next_deadline()
    assert at is not None
    vh.on_timer(now=at)
    assert vh.state is State.MASTER
    return vh, at


def advertised(actions: list[Action]) -> VrrpAdvertisement:
    (send,) = of_type(actions, SendAdvertisement)
    assert isinstance(send.advert, VrrpAdvertisement)
    return send.advert


def changes(actions: list[Action]) -> list[tuple[State, State, Reason]]:
    return [(a.old, a.new, a.reason) for a in of_type(actions, StateChanged)]


# -- the timers ------------------------------------------------------------------------


def test_skew_and_master_down_with_priority_100_and_one_second() -> None:
    assert vrrp.skew_time(100, 1.0) == 0.609375
    assert vrrp.master_down_interval(100, 1.0) == 3.609375 == DOWN_100


@pytest.mark.parametrize(
    ("priority", "interval", "skew", "down"),
    [
        (255, 1.0, 1 / 256, 3 + 1 / 256),
        (1, 1.0, 255 / 256, 3 + 255 / 256),
        (0, 1.0, 1.0, 4.0),
        (200, 0.5, 56 * 0.5 / 256, 1.5 + 56 * 0.5 / 256),
        (100, 40.95, 156 * 40.95 / 256, 3 * 40.95 + 156 * 40.95 / 256),
    ],
)
def test_skew_time_and_master_down_interval(
    priority: int, interval: float, skew: float, down: float
) -> None:
    assert vrrp.skew_time(priority, interval) == pytest.approx(skew)
    assert vrrp.master_down_interval(priority, interval) == pytest.approx(down)


def test_the_master_down_interval_takes_the_deadratio() -> None:
    assert vrrp.master_down_interval(100, 1.0, deadratio=5) == 5.609375


def test_a_higher_priority_waits_less() -> None:
    downs = [vrrp.master_down_interval(p, 1.0) for p in (1, 50, 100, 200, 254, 255)]
    assert downs == sorted(downs, reverse=True) and len(set(downs)) == len(downs)


# -- the election ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mine", "theirs", "source", "outcome"),
    [
        (100, 101, LOWER, MasterHears.YIELD),  # a higher priority wins
        (100, 255, LOWER, MasterHears.YIELD),
        (100, 99, HIGHER, MasterHears.ANSWER),  # a lower one is answered at once
        (100, 100, HIGHER, MasterHears.YIELD),  # equal: the higher primary address wins
        (100, 100, LOWER, MasterHears.ANSWER),
        (100, 0, HIGHER, MasterHears.ANSWER),  # a leaving master: advertise at once
        (1, 0, HIGHER, MasterHears.ANSWER),
        (0, 1, LOWER, MasterHears.YIELD),  # a faulted master (0) yields to anyone
    ],
)
def test_master_hears(mine: int, theirs: int, source: IPv4Address, outcome: MasterHears) -> None:
    assert vrrp.master_hears(mine, theirs, OWN, source) is outcome


def test_primary_addresses_compare_as_unsigned_integers() -> None:
    high = IPv4Address("203.0.113.1")  # above 127.255.255.255: no sign to trip on
    assert vrrp.master_hears(100, 100, OWN, high) is MasterHears.YIELD
    assert vrrp.master_hears(100, 100, high, OWN) is MasterHears.ANSWER


@pytest.mark.parametrize(
    ("mine", "theirs", "preempt", "outcome"),
    [
        (100, 0, True, BackupHears.SKEW),  # the master leaves
        (100, 0, False, BackupHears.SKEW),
        (150, 100, True, BackupHears.PREEMPT),
        (150, 100, False, BackupHears.LISTEN),  # preempt off: the master stays
        (100, 100, True, BackupHears.LISTEN),  # equal: no preemption
        (100, 150, True, BackupHears.LISTEN),
    ],
)
def test_backup_hears(mine: int, theirs: int, preempt: bool, outcome: BackupHears) -> None:
    assert vrrp.backup_hears(mine, theirs, preempt=preempt) is outcome


def test_the_address_owner_preempts_whatever_preempt_says() -> None:
    """RFC 5798 6.1, Preempt_Mode: "the exception is that a router that owns the IPvX
    address associated with the virtual router always preempts, independent of the
    setting of this flag"."""
    assert vrrp.backup_hears(vrrp.OWNER, 100, preempt=False) is BackupHears.PREEMPT


# -- start ----------------------------------------------------------------------------


def test_the_owner_starts_as_master_at_once() -> None:
    vh = host(priority=255)
    actions = vh.start(now=10.0, link=LINK)
    assert changes(actions) == [
        (State.INIT, State.BACKUP, Reason.STARTED),
        (State.BACKUP, State.MASTER, Reason.OWNER),
    ]
    assert kinds(actions) == [
        "StateChanged:BACKUP",
        "StateChanged:MASTER",
        "AddAddresses",
        "SendAnnouncement",
        "SendAdvertisement",
    ]
    assert advertised(actions) == heard(255)
    assert vh.next_deadline() == 11.0  # the next advertisement, one interval on


def test_a_backup_starts_and_waits_a_master_down_interval() -> None:
    vh = host()
    actions = vh.start(now=10.0, link=LINK)
    assert changes(actions) == [(State.INIT, State.BACKUP, Reason.STARTED)]
    assert of_type(actions, SendAdvertisement) == []  # backups are silent
    assert vh.next_deadline() == pytest.approx(10.0 + DOWN_100)


def test_an_owner_without_carrier_starts_silent() -> None:
    vh = host(priority=255)
    vh.start(now=0.0, link=Link(MAC, up=False))
    assert vh.state is State.BACKUP and vh.next_deadline() is None


def test_a_backup_takes_over_after_master_down_with_no_advertisement() -> None:
    vh = backup()
    assert vh.on_timer(now=DOWN_100 - 0.001) == []
    actions = vh.on_timer(now=DOWN_100)
    assert changes(actions) == [(State.BACKUP, State.MASTER, Reason.MASTER_DOWN)]
    assert advertised(actions) == heard(100)
    assert vh.next_deadline() == pytest.approx(DOWN_100 + 1.0)


def test_a_master_advertises_every_advert_int() -> None:
    vh, at = master(advert_int=25)
    for n in range(1, 5):
        actions = vh.on_timer(now=at + n * 0.25)
        assert advertised(actions).interval == 25
    assert vh.next_deadline() == pytest.approx(at + 5 * 0.25)


# -- a backup hearing a master ---------------------------------------------------------


def test_an_advertisement_restarts_the_master_down_timer() -> None:
    vh = backup()
    assert vh.receive(heard(200), source=HIGHER, now=3.0) == []
    assert vh.state is State.BACKUP
    assert vh.next_deadline() == pytest.approx(3.0 + DOWN_100)


def test_a_backup_with_preempt_takes_over_from_a_lower_master_at_once() -> None:
    vh = backup(priority=150)
    actions = vh.receive(heard(100), source=HIGHER, now=1.0)
    assert changes(actions) == [(State.BACKUP, State.MASTER, Reason.PREEMPT_PRIORITY)]
    assert advertised(actions) == heard(150)


def test_preempt_waits_out_preempt_delay() -> None:
    vh = backup(priority=150, preempt_delay=2.5)
    assert vh.receive(heard(100), source=HIGHER, now=1.0) == []
    assert vh.receive(heard(100), source=HIGHER, now=2.0) == []
    assert vh.receive(heard(100), source=HIGHER, now=3.0) == []
    assert vh.state is State.BACKUP
    down = vrrp.master_down_interval(150, 1.0)
    assert vh.next_deadline() == pytest.approx(3.0 + down)  # the lower master is still heard
    actions = vh.receive(heard(100), source=HIGHER, now=3.5)
    assert changes(actions) == [(State.BACKUP, State.MASTER, Reason.PREEMPT_PRIORITY)]


def test_the_preempt_delay_starts_again_after_a_better_master() -> None:
    vh = backup(priority=150, preempt_delay=2.0)
    vh.receive(heard(100), source=HIGHER, now=1.0)
    vh.receive(heard(200), source=LOWER, now=2.0)  # a better master meanwhile
    assert vh.receive(heard(100), source=HIGHER, now=3.0) == []  # the delay from here
    assert vh.state is State.BACKUP
    actions = vh.receive(heard(100), source=HIGHER, now=5.0)
    assert changes(actions) == [(State.BACKUP, State.MASTER, Reason.PREEMPT_PRIORITY)]


def test_a_backup_without_preempt_stays_backup_under_a_lower_master() -> None:
    vh = backup(priority=150, preempt=False)
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        assert vh.receive(heard(100), source=HIGHER, now=now) == []
    assert vh.state is State.BACKUP
    assert vh.next_deadline() == pytest.approx(5.0 + vrrp.master_down_interval(150, 1.0))


def test_a_backup_of_equal_priority_does_not_preempt() -> None:
    vh = backup(priority=100)
    assert vh.receive(heard(100), source=LOWER, now=1.0) == []
    assert vh.state is State.BACKUP


def test_a_leaving_master_makes_the_backup_take_over_after_its_skew_time() -> None:
    vh = backup()
    vh.receive(heard(200), source=HIGHER, now=1.0)
    assert vh.receive(heard(vrrp.LEAVING), source=HIGHER, now=2.0) == []
    assert vh.next_deadline() == pytest.approx(2.0 + 0.609375)
    assert vh.on_timer(now=2.6) == []
    actions = vh.on_timer(now=2.609375)
    assert changes(actions) == [(State.BACKUP, State.MASTER, Reason.MASTER_LEAVING)]


def test_the_skew_time_of_a_leaving_master_is_the_learnt_interval() -> None:
    vh = backup()
    vh.receive(heard(200, interval=200), source=HIGHER, now=1.0)
    vh.receive(heard(vrrp.LEAVING, interval=200), source=HIGHER, now=2.0)
    assert vh.next_deadline() == pytest.approx(2.0 + 2 * 0.609375)


def test_the_learnt_master_interval_sets_the_master_down_interval() -> None:
    vh = backup()
    assert vh.master_interval == 1.0
    vh.receive(heard(200, interval=200), source=HIGHER, now=1.0)
    assert vh.master_interval == 2.0
    expected = 3 * 2.0 + 156 * 2.0 / 256  # 7.21875
    assert vh.master_down_interval.total == expected == 7.21875
    assert vh.next_deadline() == pytest.approx(1.0 + expected)
    vh.receive(heard(200, interval=10), source=HIGHER, now=2.0)
    assert vh.master_down_interval.total == pytest.approx(0.3 + 156 * 0.1 / 256, abs=1e-6)


# -- a master hearing another ----------------------------------------------------------


def test_a_master_yields_to_a_higher_priority() -> None:
    vh, at = master()
    actions = vh.receive(heard(200, interval=50), source=LOWER, now=at + 0.5)
    assert changes(actions) == [(State.MASTER, State.BACKUP, Reason.PREFERRED_MASTER)]
    assert of_type(actions, RemoveAddresses) != []
    assert of_type(actions, SendAdvertisement) == []  # a VRRP backup is silent
    assert vh.master_interval == 0.5  # the new master's
    down = vrrp.master_down_interval(100, 0.5)
    assert vh.next_deadline() == pytest.approx(at + 0.5 + down)


def test_a_master_yields_to_an_equal_priority_from_a_higher_address() -> None:
    vh, at = master()
    actions = vh.receive(heard(100), source=HIGHER, now=at + 0.5)
    assert changes(actions) == [(State.MASTER, State.BACKUP, Reason.PREFERRED_MASTER)]


def test_a_master_reasserts_against_an_equal_priority_from_a_lower_address() -> None:
    vh, at = master()
    actions = vh.receive(heard(100), source=LOWER, now=at + 0.5)
    assert vh.state is State.MASTER
    assert advertised(actions) == heard(100)


def test_a_master_reasserts_against_a_lower_priority_by_advertising_at_once() -> None:
    vh, at = master()
    actions = vh.receive(heard(50), source=HIGHER, now=at + 0.5)
    assert vh.state is State.MASTER
    assert kinds(actions) == ["Notice", "SendAnnouncement", "SendAdvertisement"]
    assert advertised(actions) == heard(100)
    assert vh.next_deadline() == pytest.approx(at + 1.5)  # the interval from this one


def test_a_master_answers_a_leaving_master_at_once() -> None:
    vh, at = master()
    actions = vh.receive(heard(vrrp.LEAVING), source=HIGHER, now=at + 0.25)
    assert vh.state is State.MASTER
    assert kinds(actions) == ["SendAdvertisement"]
    assert vh.next_deadline() == pytest.approx(at + 1.25)


# -- leaving ---------------------------------------------------------------------------


def test_shutdown_advertises_priority_0_and_stops_when_the_new_master_is_heard() -> None:
    vh, at = master()
    actions = vh.shutdown(now=at + 0.5)
    assert kinds(actions) == ["Notice", "SendAdvertisement"]
    assert advertised(actions).priority == vrrp.LEAVING
    assert vh.state is State.MASTER and vh.leaving  # the addresses stay meanwhile
    assert of_type(actions, RemoveAddresses) == []
    # Until then it repeats the priority-0 advertisement (a backup may miss one).
    again = vh.on_timer(now=at + 1.5)
    assert advertised(again).priority == vrrp.LEAVING and vh.state is State.MASTER
    stopped = vh.receive(heard(100), source=LOWER, now=at + 2.0)
    assert changes(stopped) == [(State.MASTER, State.INIT, Reason.SHUTDOWN)]
    assert of_type(stopped, RemoveAddresses) != []
    assert vh.next_deadline() is None


def test_a_leaving_master_heard_by_nobody_stops_after_a_master_down_interval() -> None:
    vh, at = master()
    vh.shutdown(now=at)
    last: list[Action] = []
    for _ in range(10):
        due = vh.next_deadline()
        if due is None:
            break
        last = vh.on_timer(now=due)
    assert vh.state is State.INIT
    assert changes(last) == [(State.MASTER, State.INIT, Reason.SHUTDOWN)]


def test_a_backup_shuts_down_at_once() -> None:
    vh = backup()
    actions = vh.shutdown(now=1.0)
    assert changes(actions) == [(State.BACKUP, State.INIT, Reason.SHUTDOWN)]
    assert of_type(actions, SendAdvertisement) == []


# -- priority: demotion, faults --------------------------------------------------------


def test_demotion_lowers_the_advertised_priority_by_the_penalty() -> None:
    vh, at = master(priority=150, penalty=50)
    actions = vh.set_demotion(1, now=at + 0.5)
    assert advertised(actions).priority == 100
    assert vh.rank == vh.vrrp_priority == 100
    assert advertised(vh.on_timer(now=at + 1.5)).priority == 100
    restored = vh.set_demotion(0, now=at + 2.0)
    assert advertised(restored).priority == 150


def test_demotion_never_takes_the_priority_below_1() -> None:
    vh, at = master(priority=50)  # penalty 100
    assert advertised(vh.set_demotion(1, now=at + 0.5)).priority == 1


def test_a_demoted_master_yields_to_the_backup_it_outranked() -> None:
    vh, at = master(priority=150, penalty=100)
    vh.set_demotion(1, now=at + 0.1)
    actions = vh.receive(heard(100), source=LOWER, now=at + 0.5)
    assert changes(actions) == [(State.MASTER, State.BACKUP, Reason.PREFERRED_MASTER)]


def test_a_demoted_backup_waits_longer() -> None:
    vh = backup(priority=200, penalty=100)
    vh.set_demotion(1, now=0.5)
    assert vh.master_down_interval.total == DOWN_100


def test_a_faulted_master_advertises_priority_0_and_yields_to_the_backup() -> None:
    vh, at = master()
    actions = vh.addresses_result(ok=False, now=at + 0.1, detail="EPERM")
    assert advertised(actions).priority == vrrp.LEAVING
    assert vh.vrrp_priority == 0 and vh.rank == 100
    yielded = vh.receive(heard(50), source=LOWER, now=at + 0.8)
    assert changes(yielded) == [(State.MASTER, State.BACKUP, Reason.PREFERRED_MASTER)]


def test_a_faulted_host_advertises_normally_again_once_plumbed() -> None:
    vh, at = master()
    vh.addresses_result(ok=False, now=at + 0.1, detail="EPERM")
    actions = vh.addresses_result(ok=True, now=at + 0.2)
    assert advertised(actions).priority == 100
    assert of_type(actions, Notice) != []


# -- status ----------------------------------------------------------------------------


def test_status_shows_the_priorities_and_intervals() -> None:
    node = Node([vrrp_config(priority=150, advert_int=50)], counter=lambda: 0)
    node.start(now=0.0, links=lambda _: LINK)
    (status,) = node_status(node, now=0.0)
    assert (status.protocol, status.mac, status.priority, status.advert_int) == (
        "vrrp3",
        "virtual",
        150,
        0.5,
    )
    assert (status.master_priority, status.master_advert_int) == (None, None)
    (vh,) = node.hosts.values()
    vh.receive(heard(200, interval=200), source=HIGHER, now=0.3)
    (status,) = node_status(node, now=0.5)
    assert (status.master, status.master_priority, status.master_advert_int) == (
        str(HIGHER),
        200,
        2.0,
    )
    assert status.master_down == vrrp.master_down_interval(150, 2.0)


# -- several routers on one LAN --------------------------------------------------------


def lan_of(*priorities: int, **overrides: Any) -> FakeLan:
    lan = FakeLan()
    for n, priority in enumerate(priorities):
        srcip = IPv4Address(f"198.51.100.{11 + n}")
        lan.add(vrrp_config(srcip=srcip, priority=priority, **overrides), name=f"r{n}")
    return lan


def test_on_a_lan_the_highest_priority_is_master_and_the_others_listen() -> None:
    lan = lan_of(100, 200, 150)
    lan.start()
    lan.run_for(10.0)
    assert lan.masters() == ["r1"]
    assert lan.member("r0").host.reason is Reason.STARTED
    peer = lan.member("r2").host.last_peer
    assert peer is not None and peer.priority == 200


def test_on_a_lan_a_backup_takes_over_a_master_down_interval_after_a_crash() -> None:
    lan = lan_of(200, 100)
    lan.start()
    lan.run_for(10.0)
    last = max(t for t, _ in lan.member("r0").adverts())
    lan.kill("r0")
    lan.run_for(10.0)
    assert lan.masters() == ["r1"]
    (at, _, _), *_ = [x for x in lan.member("r1").transitions() if x[2] is State.MASTER]
    assert at == pytest.approx(last + DOWN_100)


def test_on_a_lan_a_graceful_stop_hands_over_after_the_skew_time() -> None:
    lan = lan_of(200, 100)
    lan.start()
    lan.run_for(10.0)
    stop_at = lan.now
    lan.shutdown("r0")
    lan.run_for(5.0)
    assert lan.masters() == ["r1"] and lan.member("r0").state is State.INIT
    took_over = [t for t, _, new in lan.member("r1").transitions() if new is State.MASTER]
    assert took_over == [pytest.approx(stop_at + 0.609375)]
    assert lan.member("r1").host.reason is Reason.MASTER_LEAVING
    # the leaving master kept its addresses until it heard the new master
    removed = lan.member("r0").timed(RemoveAddresses)
    assert [t for t, _ in removed] == [pytest.approx(stop_at + 0.609375)]


def test_on_a_lan_a_returning_higher_priority_preempts() -> None:
    lan = lan_of(200, 100)
    lan.start("r1")
    lan.run_for(10.0)
    assert lan.masters() == ["r1"]
    lan.start("r0")
    lan.run_for(3.0)  # it hears r1 within a second, and preempts
    assert lan.masters() == ["r0"]
    assert lan.member("r0").host.reason is Reason.PREEMPT_PRIORITY
    assert lan.member("r1").host.reason is Reason.PREFERRED_MASTER


def test_on_a_lan_without_preempt_the_returning_router_stays_backup() -> None:
    lan = lan_of(200, 100, preempt=False)
    lan.start("r1")
    lan.run_for(10.0)
    lan.start("r0")
    lan.run_for(10.0)
    assert lan.masters() == ["r1"]


def test_on_a_lan_the_owner_takes_over_at_its_start() -> None:
    lan = lan_of(255, 100)
    lan.start("r1")
    lan.run_for(10.0)
    lan.start("r0")
    lan.run_for(0.5)
    assert lan.masters() == ["r0"]
    assert lan.member("r0").host.reason is Reason.OWNER
    (add,) = [a for _, a in lan.member("r0").timed(AddAddresses)]
    assert add.mac == vrrp.virtual_mac(VRID, 4)
    assert of_type(lan.member("r0").actions(), SendAnnouncement) != []


def test_a_vrrp_step_down_advertises_priority_0_first() -> None:
    """SIGUSR2 on a VRRP master: the backups take over after their skew time, not 3.6 s."""
    host = VirtualHost(vrrp_config(priority=200), counter=0)
    host.start(now=0.0, link=Link(MAC))
    host.on_timer(now=host.next_deadline() or 0.0)
    assert host.state is State.MASTER
    actions = host.force_backup(now=10.0)
    (sent,) = [a for a in actions if isinstance(a, SendAdvertisement)]
    assert isinstance(sent.advert, VrrpAdvertisement) and sent.advert.priority == 0
    assert actions.index(sent) == 0  # before the addresses go
    assert host.state is State.BACKUP
