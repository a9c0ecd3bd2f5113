"""Timelines of one VirtualHost (explicit `now`), then of several on a FakeLan.

Each test names the ucarp rule it pins down; the expected action lists are
exact, because their order is what the runtime carries out.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from pycarp.core import auth, packet, timing
from pycarp.core.actions import (
    Action,
    Link,
    Notice,
    Reason,
    RunScript,
    SendAdvertisement,
    SendAnnouncement,
    State,
    StateChanged,
)
from pycarp.core.packet import Advertisement
from pycarp.core.state import COUNTER_MODULUS, STEPDOWN_HOLD, VirtualHost
from tests.helpers import (
    LINK,
    MAC,
    FakeLan,
    Member,
    arp,
    kinds,
    make_advert,
    make_config,
    of_type,
    script,
    scripted,
)

PEER = IPv4Address("192.0.2.2")  # our srcip is 192.0.2.1: the peer is "higher" for ucarp too


def host(counter: int = 0, **overrides: Any) -> VirtualHost:
    return VirtualHost(scripted(**overrides), counter=counter)


def advert_from(vh: VirtualHost, *, advbase: int | None = None, advskew: int = 0) -> Advertisement:
    """A valid advertisement for vh's vhid, with the sender's timing."""
    base = vh.config.advbase if advbase is None else advbase
    return make_advert(vh.config, advbase=base, advskew=advskew, counter=77)


def master(vh: VirtualHost, *, start: float = 0.0) -> float:
    """Drive vh from INIT to MASTER by the master-down timer; returns when."""
    vh.start(now=start, link=LINK)
    at = vh.next_deadline()
    assert at is not None
    vh.on_timer(now=at)
    assert vh.state is State.MASTER
    return at


def settled_master(vh: VirtualHost) -> float:
    """A master past its takeover's delayed ARP; returns the time of its last advert."""
    at = master(vh)
    for _ in range(3):
        at = vh.next_deadline() or 0.0
        vh.on_timer(now=at)
    return at


def only_advert(actions: list[Action]) -> Advertisement:
    (send,) = of_type(actions, SendAdvertisement)
    return send.advert


# -- start --------------------------------------------------------------


def test_start_enters_backup_runs_down_script_and_arms_master_down() -> None:
    vh = host(advskew=100)
    assert (vh.state, vh.next_deadline()) == (State.INIT, None)
    actions = vh.start(now=10.0, link=LINK)
    assert actions == [
        StateChanged(vh.key, State.INIT, State.BACKUP, Reason.STARTED),
        script(vh, "down"),
    ]
    assert vh.state is State.BACKUP
    assert (vh.since, vh.reason) == (10.0, Reason.STARTED)
    assert vh.next_deadline() == pytest.approx(10.0 + 3 + 100 / 256)


def test_start_in_neutral_mode_runs_no_script() -> None:
    vh = host(neutral=True)
    assert vh.start(now=0.0, link=LINK) == [
        StateChanged(vh.key, State.INIT, State.BACKUP, Reason.STARTED)
    ]
    assert vh.next_deadline() == 3.0


def test_neutral_mode_still_runs_the_down_script_on_later_backups() -> None:
    vh = host(neutral=True)
    at = master(vh)
    actions = vh.force_backup(now=at + 1)
    assert script(vh, "down") in actions


def test_start_twice_is_a_no_op() -> None:
    vh = host()
    vh.start(now=0.0, link=LINK)
    assert vh.start(now=1.0, link=LINK) == []
    assert vh.next_deadline() == 3.0


def test_start_without_carrier_is_silent_backup() -> None:
    vh = host()
    actions = vh.start(now=0.0, link=Link(MAC, up=False))
    assert kinds(actions) == ["StateChanged:BACKUP", "RunScript:down"]
    assert vh.next_deadline() is None and not vh.link_up
    assert vh.on_timer(now=100.0) == []


def test_start_without_carrier_but_ignoreifstate_listens() -> None:
    vh = host(ignoreifstate=True)
    vh.start(now=0.0, link=Link(MAC, up=False))
    assert vh.link_up and vh.next_deadline() == 3.0


# -- complete actions: what the runtime needs is in them ---------------------


def test_run_script_carries_ucarps_argv_once_per_address() -> None:
    vh = VirtualHost(
        make_config(
            interface="eth3",
            addresses=("192.0.2.50", "192.0.2.51"),
            upscript="/etc/ucarp/vip-up.sh",
            downscript="/etc/ucarp/vip-down.sh",
            xparam="extra",
        ),
        counter=0,
    )
    (down,) = of_type(vh.start(now=0.0, link=LINK), RunScript)
    assert down == RunScript(
        vh.key,
        "down",
        (
            ("/etc/ucarp/vip-down.sh", "eth3", "192.0.2.50", "extra"),
            ("/etc/ucarp/vip-down.sh", "eth3", "192.0.2.51", "extra"),
        ),
    )
    (up,) = of_type(vh.on_timer(now=3.0), RunScript)
    assert up.commands == (
        ("/etc/ucarp/vip-up.sh", "eth3", "192.0.2.50", "extra"),
        ("/etc/ucarp/vip-up.sh", "eth3", "192.0.2.51", "extra"),
    )


def test_no_script_configured_runs_nothing() -> None:
    vh = VirtualHost(make_config(downscript="/bin/down"), counter=0)
    actions = vh.start(now=0.0, link=LINK) + vh.on_timer(now=3.0)
    assert [a.which for a in of_type(actions, RunScript)] == ["down"]  # no up script


@pytest.mark.parametrize(
    ("overrides", "destination", "source"),
    [
        ({}, "01005e000012", MAC.hex()),
        ({"group": "239.1.2.3"}, "01005e010203", MAC.hex()),
        ({"nomcast": True}, "ffffffffffff", MAC.hex()),
        ({"mac": "ucarp", "vhid": 9}, "01005e000012", "00005e000009"),
    ],
    ids=["group", "other-group", "nomcast", "virtual-mac"],
)
def test_advertisement_frame_says_where_and_from_which_link_address(
    overrides: dict[str, Any], destination: str, source: str
) -> None:
    vh = host(**overrides)
    at = master(vh)
    (send,) = of_type(vh.on_timer(now=at + 1), SendAdvertisement)
    frame = send.frames[0]
    assert (frame.destination.hex(), frame.source.hex(), frame.ethertype) == (
        destination,
        source,
        0x0800,
    )
    header, payload = packet.parse_ipv4(frame.payload)
    assert (header.src, header.dst, header.ttl) == (vh.config.srcip, vh.config.group, 255)
    assert packet.decode(payload) == send.advert
    announcement = arp(vh)  # ARP keeps the NIC's MAC, with or without the virtual one
    assert [f.source for f in announcement.frames] == [MAC]


# -- BACKUP -> MASTER by the master-down timer --------------------------


@pytest.mark.parametrize(
    ("advbase", "advskew", "deadratio"),
    [(1, 0, 3), (1, 100, 3), (2, 255, 3), (3, 7, 1), (1, 0, 10), (0, 128, 3)],
)
def test_master_down_takeover(advbase: int, advskew: int, deadratio: int) -> None:
    vh = host(advbase=advbase, advskew=advskew, deadratio=deadratio, counter=41)
    vh.start(now=100.0, link=LINK)
    skew = (advskew * 1_000_000 // 256) / 1e6
    down = deadratio * advbase + skew if advbase else deadratio * skew  # sub-second: intervals
    deadline = vh.next_deadline()
    assert deadline == pytest.approx(100.0 + down)
    assert deadline is not None

    assert vh.on_timer(now=deadline - 1e-6) == []  # early: nothing, still armed
    assert vh.state is State.BACKUP and vh.next_deadline() == deadline

    actions = vh.on_timer(now=deadline)
    assert actions[:3] == [
        StateChanged(vh.key, State.BACKUP, State.MASTER, Reason.MASTER_DOWN),
        script(vh, "up"),
        arp(vh),
    ]
    assert len(actions) == 4
    advert = only_advert(actions)
    assert (advert.vhid, advert.advbase, advert.advskew) == (1, advbase, advskew)
    assert advert.counter == 42  # one past the counter the runtime handed in
    assert auth.verify(b"secret", 1, vh.config.addresses, advert.counter, advert.digest)
    assert (vh.state, vh.reason, vh.since) == (State.MASTER, Reason.MASTER_DOWN, deadline)
    assert vh.next_deadline() == pytest.approx(deadline + advbase + advskew / 256, abs=1e-5)


def test_late_timer_takes_over_from_the_late_time() -> None:
    vh = host()
    vh.start(now=0.0, link=LINK)
    vh.on_timer(now=5.5)
    assert vh.state is State.MASTER and vh.next_deadline() == 6.5


def test_master_advertises_every_interval_with_a_rising_counter() -> None:
    vh = host(advskew=10, counter=1000)
    at = master(vh)
    interval = 1 + (10 * 1_000_000 // 256) / 1e6
    counters = []
    for i in range(1, 8):
        deadline = vh.next_deadline()
        assert deadline == pytest.approx(at + i * interval)
        assert deadline is not None
        actions = vh.on_timer(now=deadline)
        counters.append(only_advert(actions).counter)
    assert counters == list(range(1002, 1009))
    assert vh.adverts_sent == 8


def test_counter_wraps_to_zero() -> None:
    vh = host(counter=COUNTER_MODULUS - 2)
    at = master(vh)  # sends counter 2**64 - 1
    advert = only_advert(vh.on_timer(now=at + 1))
    assert advert.counter == 0


def test_second_arp_comes_exactly_two_adverts_after_the_takeover() -> None:
    vh = host()
    at = master(vh)
    seen = []
    for i in range(1, 6):
        seen.append(kinds(vh.on_timer(now=at + i)))
    assert seen == [
        ["SendAdvertisement"],
        ["SendAdvertisement", "SendAnnouncement"],
        ["SendAdvertisement"],
        ["SendAdvertisement"],
        ["SendAdvertisement"],
    ]


def test_early_and_stale_timers_are_harmless() -> None:
    vh = host()
    at = master(vh)
    assert vh.on_timer(now=at + 0.5) == []
    assert vh.next_deadline() == at + 1
    assert vh.on_timer(now=at - 10) == []


# -- BACKUP receiving ----------------------------------------------------


def test_backup_rearms_master_down_on_each_advertisement() -> None:
    vh = host()
    vh.start(now=0.0, link=LINK)
    for t in (0.9, 1.9, 2.9, 3.9):
        assert vh.receive(advert_from(vh), source=PEER, now=t) == []
        assert vh.next_deadline() == pytest.approx(t + 3)
    assert vh.state is State.BACKUP
    assert vh.adverts_received == 4
    assert vh.last_peer is not None
    assert (vh.last_peer.address, vh.last_peer.advbase, vh.last_peer.at) == (PEER, 1, 3.9)


def test_backup_without_preempt_never_takes_over_from_a_slower_master() -> None:
    vh = host(advskew=0)
    vh.start(now=0.0, link=LINK)
    assert vh.receive(advert_from(vh, advskew=200), source=PEER, now=1.0) == []
    assert vh.state is State.BACKUP


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [((1, 0), (1, 1)), ((1, 100), (1, 101)), ((1, 255), (2, 0)), ((2, 0), (3, 0))],
)
def test_preempt_takes_over_from_a_slower_master(
    ours: tuple[int, int], theirs: tuple[int, int]
) -> None:
    vh = host(preempt=True, advbase=ours[0], advskew=ours[1])
    vh.start(now=0.0, link=LINK)
    actions = vh.receive(advert_from(vh, advbase=theirs[0], advskew=theirs[1]), source=PEER, now=1)
    assert actions[:3] == [
        StateChanged(vh.key, State.BACKUP, State.MASTER, Reason.PREEMPT),
        script(vh, "up"),
        arp(vh),
    ]
    assert kinds(actions[3:]) == ["SendAdvertisement"]
    assert vh.next_deadline() == pytest.approx(1 + ours[0] + ours[1] / 256, abs=1e-5)


@pytest.mark.parametrize(("theirs"), [(1, 100), (1, 99), (0, 200)], ids=["equal", "faster", "b0"])
def test_preempt_spares_an_equal_or_faster_master(theirs: tuple[int, int]) -> None:
    vh = host(preempt=True, advskew=100)
    vh.start(now=0.0, link=LINK)
    actions = vh.receive(advert_from(vh, advbase=theirs[0], advskew=theirs[1]), source=PEER, now=1)
    assert actions == []
    assert vh.state is State.BACKUP and vh.next_deadline() == pytest.approx(1 + 3 + 100 / 256)


def test_leaving_master_255_255_is_taken_over_at_once() -> None:
    vh = host()  # no preempt needed
    vh.start(now=0.0, link=LINK)
    actions = vh.receive(advert_from(vh, advbase=255, advskew=255), source=PEER, now=1.0)
    assert actions[:2] == [
        StateChanged(vh.key, State.BACKUP, State.MASTER, Reason.MASTER_LEAVING),
        script(vh, "up"),
    ]
    assert kinds(actions[2:]) == ["SendAnnouncement", "SendAdvertisement"]


@pytest.mark.parametrize(
    ("ours", "theirs", "takes_over"),
    [
        # Threshold: deadratio*advbase seconds plus OUR advskew/256.
        ((1, 0), (3, 0), False),
        ((1, 0), (3, 1), True),
        ((1, 100), (3, 100), False),
        ((1, 100), (3, 101), True),
        ((1, 0), (4, 0), True),
    ],
)
def test_master_that_would_time_out_anyway(
    ours: tuple[int, int], theirs: tuple[int, int], takes_over: bool
) -> None:
    vh = host(advbase=ours[0], advskew=ours[1])
    vh.start(now=0.0, link=LINK)
    vh.receive(advert_from(vh, advbase=theirs[0], advskew=theirs[1]), source=PEER, now=1.0)
    assert (vh.state is State.MASTER) is takes_over
    assert vh.reason is (Reason.MASTER_LEAVING if takes_over else Reason.STARTED)


# -- MASTER receiving ----------------------------------------------------


def test_master_steps_down_to_a_faster_master() -> None:
    vh = host(advskew=100, counter=5)
    at = master(vh)
    now = at + 0.5
    actions = vh.receive(advert_from(vh, advskew=50), source=PEER, now=now)
    # One more advertisement first, so the new master knows to re-assert.
    assert kinds(actions) == ["SendAdvertisement", "StateChanged:BACKUP", "RunScript:down"]
    assert actions[1] == StateChanged(vh.key, State.MASTER, State.BACKUP, Reason.PREFERRED_MASTER)
    assert only_advert(actions).advskew == 100
    assert vh.state is State.BACKUP
    assert vh.next_deadline() == pytest.approx(now + 3 + 100 / 256)


def test_stepping_down_may_carry_the_delayed_arp() -> None:
    """ucarp's carp_send_ad sends the pending ARP while still MASTER."""
    vh = host()
    at = master(vh)
    vh.on_timer(now=at + 1)  # delayed ARP now due on the next advert
    actions = vh.receive(advert_from(vh), source=IPv4Address("192.0.2.0"), now=at + 1.5)
    assert kinds(actions) == [
        "SendAdvertisement",
        "SendAnnouncement",
        "StateChanged:BACKUP",
        "RunScript:down",
    ]


@pytest.mark.parametrize(
    ("ours", "theirs", "steps_down"),
    [
        ("10.0.0.2", "10.0.0.1", True),
        ("10.0.0.1", "10.0.0.2", False),
        # ucarp's byte order: the last octet counts first, so 10.0.1.1 < 10.0.0.2.
        ("10.0.0.2", "10.0.1.1", True),
        ("10.0.1.1", "10.0.0.2", False),
        ("192.168.2.10", "192.168.1.10", True),
        ("192.168.1.10", "192.168.2.10", False),
    ],
)
def test_equal_intervals_tie_break_on_address_in_ucarp_order(
    ours: str, theirs: str, steps_down: bool
) -> None:
    vh = host(srcip=ours, addresses=("10.0.0.100",), advskew=20)
    at = master(vh)
    actions = vh.receive(advert_from(vh, advskew=20), source=IPv4Address(theirs), now=at + 0.5)
    if steps_down:
        assert kinds(actions) == ["SendAdvertisement", "StateChanged:BACKUP", "RunScript:down"]
    else:
        assert kinds(actions) == ["Notice", "SendAnnouncement"]
        assert vh.state is State.MASTER


def test_master_reasserts_against_a_worse_master() -> None:
    vh = host(advskew=0)
    at = settled_master(vh)
    deadline = vh.next_deadline()
    actions = vh.receive(advert_from(vh, advskew=100), source=PEER, now=at + 0.25)
    assert len(actions) == 2
    assert isinstance(actions[0], Notice) and str(PEER) in actions[0].message
    assert actions[1] == arp(vh)
    assert vh.state is State.MASTER and vh.next_deadline() == deadline  # the timer is untouched
    seen = [kinds(vh.on_timer(now=at + i)) for i in (1, 2, 3)]
    assert seen == [
        ["SendAdvertisement"],
        ["SendAdvertisement", "SendAnnouncement"],
        ["SendAdvertisement"],
    ]


def test_reasserting_restarts_a_pending_delayed_arp() -> None:
    vh = host()
    at = master(vh)
    vh.on_timer(now=at + 1)  # one advert left before the delayed ARP...
    vh.receive(advert_from(vh, advskew=9), source=PEER, now=at + 1.5)  # ...now two again
    assert kinds(vh.on_timer(now=at + 2)) == ["SendAdvertisement"]
    assert kinds(vh.on_timer(now=at + 3)) == ["SendAdvertisement", "SendAnnouncement"]


def test_init_ignores_advertisements() -> None:
    vh = host()
    assert vh.receive(advert_from(vh), source=PEER, now=0.0) == []
    assert vh.adverts_received == 0 and vh.last_peer is None


# -- link ------------------------------------------------------------------


def test_link_down_makes_a_master_a_silent_backup_and_back() -> None:
    vh = host()
    at = master(vh)
    actions = vh.link_changed(up=False, now=at + 0.5)
    assert isinstance(actions[0], Notice)
    assert actions[1:] == [
        StateChanged(vh.key, State.MASTER, State.BACKUP, Reason.LINK_DOWN),
        script(vh, "down"),
    ]
    assert vh.next_deadline() is None and not vh.link_up
    assert vh.on_timer(now=at + 100) == []
    assert vh.receive(advert_from(vh, advbase=255, advskew=255), source=PEER, now=at + 101) == []
    assert vh.adverts_received == 0
    assert vh.force_backup(now=at + 102) == []

    assert vh.link_changed(up=False, now=at + 103) == []  # no change, nothing to do
    actions = vh.link_changed(up=True, now=at + 110)
    assert kinds(actions) == ["Notice"]
    assert vh.state is State.BACKUP and vh.link_up
    assert vh.next_deadline() == pytest.approx(at + 113)
    assert vh.on_timer(now=at + 113)[0] == StateChanged(
        vh.key, State.BACKUP, State.MASTER, Reason.MASTER_DOWN
    )


def test_link_down_in_backup_changes_no_state() -> None:
    vh = host()
    vh.start(now=0.0, link=LINK)
    assert kinds(vh.link_changed(up=False, now=1.0)) == ["Notice"]
    assert vh.state is State.BACKUP and vh.reason is Reason.STARTED
    assert vh.next_deadline() is None


def test_link_events_before_start_are_remembered() -> None:
    vh = host()
    assert vh.link_changed(up=False, now=0.0) == []
    assert not vh.link_up
    vh.start(now=1.0, link=LINK)
    assert vh.link_up and vh.next_deadline() == 4.0


def test_ignoreifstate_ignores_the_link() -> None:
    vh = host(ignoreifstate=True)
    at = master(vh)
    assert vh.link_changed(up=False, now=at + 0.5) == []
    assert vh.state is State.MASTER and vh.link_up
    assert kinds(vh.on_timer(now=at + 1)) == ["SendAdvertisement"]


# -- force_backup (SIGUSR2) -----------------------------------------------


def test_force_backup_holds_three_seconds_then_master_down() -> None:
    vh = host(advskew=100)
    at = master(vh)
    now = at + 0.5
    actions = vh.force_backup(now=now)
    assert actions == [
        StateChanged(vh.key, State.MASTER, State.BACKUP, Reason.FORCED),
        script(vh, "down"),
    ]
    deadline = vh.next_deadline()
    assert deadline == pytest.approx(now + STEPDOWN_HOLD + 3 + 100 / 256)
    assert STEPDOWN_HOLD == 3.0
    assert deadline is not None
    assert vh.on_timer(now=deadline - 0.001) == []
    assert vh.on_timer(now=deadline)[0] == StateChanged(
        vh.key, State.BACKUP, State.MASTER, Reason.MASTER_DOWN
    )


def test_force_backup_outside_master_does_nothing() -> None:
    vh = host()
    assert vh.force_backup(now=0.0) == []
    vh.start(now=0.0, link=LINK)
    assert vh.force_backup(now=1.0) == []
    assert vh.next_deadline() == 3.0


# -- shutdown --------------------------------------------------------------


def test_hard_shutdown_of_a_master_with_shutdown_runs_the_down_script() -> None:
    vh = host(shutdown=True)
    at = master(vh)
    assert vh.shutdown(now=at + 0.5, graceful=False) == [
        StateChanged(vh.key, State.MASTER, State.INIT, Reason.SHUTDOWN),
        script(vh, "down"),
    ]
    assert vh.state is State.INIT and vh.next_deadline() is None
    assert vh.on_timer(now=at + 10) == []
    assert vh.receive(advert_from(vh), source=PEER, now=at + 10) == []
    assert vh.shutdown(now=at + 11) == []


def test_hard_shutdown_of_a_master_without_shutdown_runs_no_script() -> None:
    vh = host()
    at = master(vh)
    assert vh.shutdown(now=at + 0.5, graceful=False) == [
        StateChanged(vh.key, State.MASTER, State.INIT, Reason.SHUTDOWN)
    ]


@pytest.mark.parametrize("shutdown", [True, False])
def test_shutdown_backup_never_runs_the_down_script(shutdown: bool) -> None:
    vh = host(shutdown=shutdown)
    vh.start(now=0.0, link=LINK)
    assert vh.shutdown(now=1.0) == [StateChanged(vh.key, State.BACKUP, State.INIT, Reason.SHUTDOWN)]


def test_shutdown_before_start_does_nothing() -> None:
    assert host(shutdown=True).shutdown(now=0.0) == []


# -- send errors -----------------------------------------------------------


def test_three_send_failures_advertise_advskew_240_until_three_successes() -> None:
    vh = host(advskew=10)
    at = master(vh)
    assert vh.send_result(ok=False, now=at) == []
    assert vh.send_result(ok=False, now=at) == []
    actions = vh.send_result(ok=False, now=at)
    assert isinstance(actions[0], Notice) and "240" in actions[0].message
    assert vh.advskew == 240
    assert vh.advert_interval == timing.Interval(1, 937500)
    # ucarp sends one advertisement at once with the new skew (carp_send_ad_all).
    assert kinds(actions) == ["Notice", "SendAdvertisement"]
    assert only_advert(actions).advskew == 240
    assert vh.next_deadline() == pytest.approx(at + 1 + 240 / 256)

    t = vh.next_deadline() or 0.0
    assert only_advert(vh.on_timer(now=t)).advskew == 240
    assert vh.send_result(ok=True, now=t) == []
    assert vh.send_result(ok=True, now=t) == []
    actions = vh.send_result(ok=True, now=t)
    assert kinds(actions) == ["Notice"]
    assert vh.advskew == 10
    t = vh.next_deadline() or 0.0
    assert only_advert(vh.on_timer(now=t)).advskew == 10


def test_the_advert_that_lifts_suppression_keeps_the_slow_interval() -> None:
    """ucarp's carp_send_ad computes the interval before the send that succeeds."""
    vh = host()
    at = settled_master(vh)
    for _ in range(3):
        vh.send_result(ok=False, now=at)
    for _ in range(2):
        t = vh.next_deadline() or 0.0
        vh.on_timer(now=t)
        vh.send_result(ok=True, now=t)
    t = vh.next_deadline() or 0.0
    only_advert(vh.on_timer(now=t))
    assert kinds(vh.send_result(ok=True, now=t)) == ["Notice"]
    assert vh.next_deadline() == pytest.approx(t + 1 + 240 / 256)  # already armed
    t = vh.next_deadline() or 0.0
    assert only_advert(vh.on_timer(now=t)).advskew == 0
    assert vh.next_deadline() == pytest.approx(t + 1)


def test_suppression_keeps_a_higher_configured_advskew() -> None:
    vh = host(advskew=250)
    master(vh)
    for _ in range(3):
        vh.send_result(ok=False, now=10.0)
    assert vh.advskew == 250


def test_failures_must_be_consecutive() -> None:
    vh = host()
    master(vh)
    for ok in (False, False, True, False, False, True, False, False):
        assert vh.send_result(ok=ok, now=5.0) == []
    assert vh.advskew == 0


def test_recovery_needs_three_successes_in_a_row() -> None:
    vh = host()
    settled_master(vh)
    for _ in range(5):
        vh.send_result(ok=False, now=5.0)  # more failures change nothing more
    for ok in (True, True, False, True, True):
        assert vh.send_result(ok=ok, now=5.0) == []
    assert vh.advskew == 240
    assert kinds(vh.send_result(ok=True, now=5.0)) == ["Notice"]
    assert vh.advskew == 0
    # ...and three new failures suppress again.
    for _ in range(2):
        vh.send_result(ok=False, now=6.0)
    assert kinds(vh.send_result(ok=False, now=6.0)) == ["Notice", "SendAdvertisement"]


def test_suppression_in_backup_sends_nothing() -> None:
    """A failure reported after stepping down must not restart advertising."""
    vh = host()
    vh.start(now=0.0, link=LINK)
    for _ in range(2):
        vh.send_result(ok=False, now=1.0)
    assert kinds(vh.send_result(ok=False, now=1.0)) == ["Notice"]
    assert vh.next_deadline() == 3.0


def test_suppressed_backup_no_longer_preempts() -> None:
    vh = host(preempt=True, advskew=0)
    vh.start(now=0.0, link=LINK)
    for _ in range(3):
        vh.send_result(ok=False, now=0.5)
    assert vh.receive(advert_from(vh, advskew=200), source=PEER, now=1.0) == []
    # The master-down interval keeps the configured skew (ucarp's carp_setrun).
    assert vh.next_deadline() == 4.0
    # A master slower than our suppressed interval is still preempted.
    actions = vh.receive(advert_from(vh, advskew=241), source=PEER, now=2.0)
    assert vh.state is State.MASTER and actions[0].reason is Reason.PREEMPT  # type: ignore[union-attr]


def test_suppressed_master_yields_to_a_normal_one() -> None:
    vh = host(advskew=0)
    at = settled_master(vh)
    for _ in range(3):
        vh.send_result(ok=False, now=at)
    actions = vh.receive(advert_from(vh, advskew=100), source=PEER, now=at + 0.5)
    assert kinds(actions) == ["SendAdvertisement", "StateChanged:BACKUP", "RunScript:down"]


def test_suppression_raises_the_leaving_master_threshold() -> None:
    """ucarp compares against deadratio*advbase plus the skew it advertises."""
    vh = host(advskew=0)
    vh.start(now=0.0, link=LINK)
    for _ in range(3):
        vh.send_result(ok=False, now=0.5)
    assert vh.receive(advert_from(vh, advbase=3, advskew=200), source=PEER, now=1.0) == []
    vh.receive(advert_from(vh, advbase=3, advskew=241), source=PEER, now=1.0)
    assert vh.state is State.MASTER


# -- several hosts on a FakeLan ------------------------------------------


def pair(
    a_overrides: dict[str, Any] | None = None, **b_overrides: Any
) -> tuple[FakeLan, Member, Member]:
    """a (192.0.2.1, advskew 0) and b (192.0.2.2, advskew 100) on one LAN."""
    lan = FakeLan()
    a = lan.add(
        scripted(**{"srcip": "192.0.2.1", "advskew": 0, **(a_overrides or {})}),
        name="a",
        counter=1 << 40,
    )
    b = lan.add(
        scripted(**{"srcip": "192.0.2.2", "advskew": 100, **b_overrides}), name="b", counter=2 << 40
    )
    return lan, a, b


def test_lan_the_faster_node_wins_and_the_other_stays_silent() -> None:
    lan, a, b = pair()
    lan.start()
    lan.run_until(20.0)
    assert lan.masters() == ["a"]
    assert a.transitions() == [(0.0, State.INIT, State.BACKUP), (3.0, State.BACKUP, State.MASTER)]
    assert b.transitions() == [(0.0, State.INIT, State.BACKUP)]
    assert b.adverts() == []
    times = [t for t, _ in a.adverts()]
    assert times == pytest.approx([3.0 + i for i in range(18)])
    assert b.host.adverts_received == 18
    assert sum(b.node.drops.values()) == 0


def test_lan_backup_takes_over_one_master_down_interval_after_the_last_advert() -> None:
    lan, a, b = pair()
    lan.start()
    lan.run_until(10.5)
    last = a.adverts()[-1][0]
    lan.kill(a)
    lan.run_until(30.0)
    ((t, _, _),) = [tr for tr in b.transitions() if tr[2] is State.MASTER]
    assert t == pytest.approx(last + 3 + 100 / 256)
    assert kinds(b.actions(since=t, until=t)) == [
        "StateChanged:MASTER",
        "RunScript:up",
        "SendAnnouncement",
        "SendAdvertisement",
    ]
    assert b.arps() == pytest.approx([t, t + 2 * (1 + 100 / 256)])


def test_lan_silenced_master_is_replaced_then_steps_down_when_heard() -> None:
    lan, a, b = pair()
    lan.start()
    lan.run_until(5.0)
    lan.silence(a)
    lan.run_until(12.0)
    assert sorted(lan.masters()) == ["a", "b"]  # split brain while a is unheard
    lan.silence(a, False)
    lan.run_until(14.0)
    # a's advert is preferred by b (faster); b's advert is worse for a: a re-asserts.
    assert lan.masters() == ["a"]
    assert b.transitions()[-1][1:] == (State.MASTER, State.BACKUP)
    assert b.host.reason is Reason.PREFERRED_MASTER
    assert of_type(a.actions(since=12.0), Notice)


def test_lan_preempting_node_takes_over_and_the_old_master_steps_down() -> None:
    lan, a, b = pair({"preempt": True})
    lan.start(b)
    lan.run_until(10.0)
    assert lan.masters() == ["b"]
    lan.start(a)
    lan.run_until(10.0)
    assert a.state is State.BACKUP  # nothing heard yet
    lan.run_until(12.0)
    assert lan.masters() == ["a"]
    (preempted,) = [x for x in of_type(a.actions(), StateChanged) if x.new is State.MASTER]
    assert preempted.reason is Reason.PREEMPT
    # b answered a's advertisement with one more advertisement, then BACKUP...
    t_down = next(t for t, o, n in b.transitions() if n is State.BACKUP and o is State.MASTER)
    assert kinds(b.actions(since=t_down, until=t_down))[-3:] == [
        "SendAdvertisement",
        "StateChanged:BACKUP",
        "RunScript:down",
    ]
    # ...which a, now master, met with a re-asserting ARP.
    assert t_down in a.arps()
    lan.run_until(40.0)
    assert lan.masters() == ["a"]


@pytest.mark.parametrize(
    ("ip_a", "ip_b", "winner"),
    [("10.0.1.1", "10.0.0.2", "a"), ("10.0.0.2", "10.0.1.1", "b"), ("10.0.0.1", "10.0.0.2", "a")],
)
def test_lan_simultaneous_masters_settle_by_ucarp_address_order(
    ip_a: str, ip_b: str, winner: str
) -> None:
    lan = FakeLan()
    common = {"addresses": ("10.0.0.100",), "advskew": 5}
    lan.add(make_config(srcip=ip_a, **common), name="a", counter=1 << 40)
    lan.add(make_config(srcip=ip_b, **common), name="b", counter=2 << 40)
    lan.start()
    lan.run_until(3.1)  # both time out at the same instant and collide
    lan.run_until(30.0)
    assert lan.masters() == [winner]
    loser = lan.member("b" if winner == "a" else "a")
    assert loser.host.reason is Reason.PREFERRED_MASTER


def test_lan_hard_stop_without_notice_waits_the_full_interval() -> None:
    lan, a, b = pair()
    lan.start()
    lan.run_until(7.2)
    lan.shutdown(a, graceful=False)
    assert a.state is State.INIT
    lan.run_until(20.0)
    t = next(t for t, _, n in b.transitions() if n is State.MASTER)
    assert t == pytest.approx(7.0 + 3 + 100 / 256)


def test_lan_link_down_on_the_master_hands_over() -> None:
    lan, a, _ = pair()
    lan.start()
    lan.run_until(6.5)
    lan.link(a, up=False)
    lan.run_until(15.0)
    assert lan.masters() == ["b"]
    lan.link(a, up=True)
    lan.run_until(30.0)
    assert lan.masters() == ["b"]  # no preempt: a waits as backup
    assert a.state is State.BACKUP


def test_lan_send_failures_let_a_preempting_backup_take_over_at_once() -> None:
    lan, a, b = pair(advskew=100, preempt=True, deadratio=10)
    lan.start()
    lan.run_until(10.5)
    assert lan.masters() == ["a"]
    a.fail_next = 3  # the adverts at 11, 12 and 13 fail; the next one gets through
    lan.run_until(13.0)
    # On the third failure a advertises at once with advskew 240 (ucarp's
    # carp_send_ad_all); b advertises faster than that and preempts right away.
    assert lan.masters() == ["b"]
    assert b.host.reason is Reason.PREEMPT and b.host.since == pytest.approx(13.0)
    assert a.host.reason is Reason.PREFERRED_MASTER
    # The failed timer advert, the immediate one, the last one before stepping down.
    assert [adv.advskew for _, adv in a.adverts(since=13.0)] == [0, 240, 240]


# -- graceful hand-over ------------------------------------------------------


def test_leaving_master_advertises_255_and_keeps_its_addresses_until_the_new_master_speaks() -> (
    None
):
    vh = host(shutdown=True)
    at = master(vh)
    vh.receive(advert_from(vh, advbase=2), source=PEER, now=at + 0.1)  # a worse peer exists
    actions = vh.shutdown(now=at + 0.2)
    adverts = [a.advert for a in actions if isinstance(a, SendAdvertisement)]
    assert [(a.advbase, a.advskew) for a in adverts] == [(255, 255)]
    assert vh.state is State.MASTER and vh.leaving
    assert not any(isinstance(a, (StateChanged, RunScript)) for a in actions)
    # the new master's first advertisement ends the hand-over
    assert vh.receive(advert_from(vh), source=PEER, now=at + 0.3) == [
        StateChanged(vh.key, State.MASTER, State.INIT, Reason.SHUTDOWN),
        script(vh, "down"),
    ]
    assert vh.next_deadline() is None


def test_leaving_master_repeats_the_signal_and_gives_up_after_master_down() -> None:
    vh = host()
    at = master(vh)
    vh.receive(advert_from(vh, advbase=2), source=PEER, now=at + 0.1)
    vh.shutdown(now=at + 0.2)
    give_up = at + 0.2 + vh.master_down_interval.total
    resent = 0
    while (deadline := vh.next_deadline()) is not None:
        actions = vh.on_timer(now=deadline)
        resent += sum(isinstance(a, SendAdvertisement) for a in actions)
        assert all(a.advert.advbase == 255 for a in actions if isinstance(a, SendAdvertisement))
    assert vh.state is State.INIT and vh.since == pytest.approx(give_up)
    assert resent >= 2  # one per advertisement interval while waiting


def test_leaving_master_that_never_heard_a_peer_still_waits_for_one() -> None:
    """Backups are silent: never having heard one does not mean there is none."""
    vh = host(shutdown=True)
    at = master(vh)
    actions = vh.shutdown(now=at + 0.2)
    assert isinstance(actions[1], SendAdvertisement) and actions[1].advert.advbase == 255
    assert vh.state is State.MASTER and vh.leaving
    assert vh.receive(advert_from(vh), source=PEER, now=at + 0.9)[0] == StateChanged(
        vh.key, State.MASTER, State.INIT, Reason.SHUTDOWN
    )


def test_leaving_master_sends_no_delayed_arp() -> None:
    """A stale ARP from the leaving master could pull clients away from the new one."""
    vh = host()
    at = master(vh)  # the delayed ARP is due two advertisements after the takeover
    actions = vh.shutdown(now=at + 0.1)
    while (deadline := vh.next_deadline()) is not None:
        actions += vh.on_timer(now=deadline)
    assert not any(isinstance(a, SendAnnouncement) for a in actions)


def test_lan_graceful_stop_hands_over_at_once() -> None:
    lan, a, b = pair()
    lan.start()
    lan.run_until(7.2)
    assert lan.masters() == ["a"]
    lan.shutdown(a)
    lan.run_until(7.3)
    assert a.state is State.INIT
    assert lan.masters() == ["b"]
    assert b.host.reason is Reason.MASTER_LEAVING


def test_a_hard_stop_ends_a_hand_over_at_once() -> None:
    vh = host(shutdown=True)
    at = master(vh)
    vh.receive(advert_from(vh, advbase=2), source=PEER, now=at + 0.1)
    vh.shutdown(now=at + 0.2)
    assert vh.shutdown(now=at + 0.3) == []  # a second graceful request changes nothing
    assert vh.shutdown(now=at + 0.4, graceful=False) == [
        StateChanged(vh.key, State.MASTER, State.INIT, Reason.SHUTDOWN),
        script(vh, "down"),
    ]
