"""Built-in plumbing in the core: AddAddresses/RemoveAddresses and the fault that demotes.

A MASTER whose addresses cannot be configured must not keep claiming them: it
advertises as a leaving master (255/255) so that any peer takes over, retries
with backoff, and advertises normally again once the addresses are in place.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pycarp.core.actions import (
    AddAddresses,
    Notice,
    Reason,
    RemoveAddresses,
    SendAdvertisement,
    SendAnnouncement,
    State,
    StateChanged,
)
from pycarp.core.fault import RETRY_FIRST as PLUMB_RETRY_FIRST
from pycarp.core.fault import RETRY_MAX as PLUMB_RETRY_MAX
from pycarp.core.node import Node
from pycarp.core.priority import LEAVING
from pycarp.core.state import VirtualHost
from pycarp.core.status import host_status
from tests.helpers import (
    LINK,
    FakeLan,
    datagram,
    links,
    make_advert,
    make_config,
    of_type,
    script,
    scripted,
)

FAULT = "eth0: no such interface"


def plumbing_host(**overrides: Any) -> VirtualHost:
    return VirtualHost(scripted(plumb=True, **overrides), counter=0)


def become_master(vh: VirtualHost, *, now: float = 0.0) -> tuple[float, list[Any]]:
    vh.start(now=now, link=LINK)
    deadline = vh.next_deadline()
    assert deadline is not None
    return deadline, vh.on_timer(now=deadline)


def test_master_asks_for_its_addresses_before_the_up_script() -> None:
    vh = plumbing_host(prefixes=(24,))
    _, actions = become_master(vh)
    assert actions[:3] == [
        StateChanged(vh.key, State.BACKUP, State.MASTER, Reason.MASTER_DOWN),
        AddAddresses(vh.key, vh.config.networks),
        script(vh, "up"),
    ]
    assert vh.config.networks[0][1] == 24


def test_leaving_master_gives_the_addresses_back_before_the_down_script() -> None:
    vh = plumbing_host()
    at, _ = become_master(vh)
    actions = vh.force_backup(now=at + 1)
    assert actions == [
        StateChanged(vh.key, State.MASTER, State.BACKUP, Reason.FORCED),
        RemoveAddresses(vh.key, vh.config.networks),
        script(vh, "down"),
    ]


def test_stopping_master_removes_its_addresses() -> None:
    vh = plumbing_host()
    at, _ = become_master(vh)
    actions = vh.shutdown(now=at + 1, graceful=False)
    assert RemoveAddresses(vh.key, vh.config.networks) in actions


def test_a_backup_never_plumbs() -> None:
    vh = plumbing_host()
    actions = vh.start(now=0.0, link=LINK)
    assert not of_type(actions, AddAddresses) and not of_type(actions, RemoveAddresses)


def test_no_plumbing_actions_without_plumbing() -> None:
    vh = VirtualHost(make_config(plumb=False), counter=0)
    _, actions = become_master(vh)
    assert not of_type(actions, AddAddresses)
    assert not of_type(vh.force_backup(now=10.0), RemoveAddresses)


def test_failed_add_demotes_once_and_retries_with_backoff() -> None:
    vh = plumbing_host()
    at, _ = become_master(vh)
    actions = vh.addresses_result(ok=False, now=at + 0.1, detail=FAULT)
    (notice,) = of_type(actions, Notice)
    assert FAULT in notice.message and "255/255" in notice.message
    (advert,) = [a.advert for a in of_type(actions, SendAdvertisement)]
    assert (advert.advbase, advert.advskew) == (LEAVING, LEAVING)
    assert vh.state is State.MASTER and vh.fault == FAULT

    # retries at 1, 2, 4, ... seconds after each failure, capped; said only once
    now, delays = at + 0.1, []
    for _ in range(8):
        retry = vh.next_deadline()
        assert retry is not None
        while True:  # advertisements fall due before the retry: keep advertising demoted
            actions = vh.on_timer(now=retry)
            if of_type(actions, AddAddresses):
                break
            assert all(
                (a.advert.advbase, a.advert.advskew) == (LEAVING, LEAVING)
                for a in of_type(actions, SendAdvertisement)
            )
            retry = vh.next_deadline()
            assert retry is not None
        delays.append(round(retry - now, 6))
        now = retry
        assert of_type(actions, AddAddresses) == [AddAddresses(vh.key, vh.config.networks)]
        assert not of_type(vh.addresses_result(ok=False, now=now, detail=FAULT), Notice)
    assert delays == [min(PLUMB_RETRY_FIRST * 2**i, PLUMB_RETRY_MAX) for i in range(8)]


def test_success_after_a_fault_restores_normal_advertisements() -> None:
    vh = plumbing_host(advskew=10)
    at, _ = become_master(vh)
    vh.addresses_result(ok=False, now=at, detail=FAULT)
    actions = vh.addresses_result(ok=True, now=at + 1)
    assert vh.fault is None and vh.advertised == (vh.config.advbase, 10)
    assert of_type(actions, Notice)
    assert of_type(actions, SendAnnouncement)  # clients learn the MAC again
    (advert,) = [a.advert for a in of_type(actions, SendAdvertisement)]
    assert (advert.advbase, advert.advskew) == (vh.config.advbase, 10)
    # no retry is left armed
    deadline = vh.next_deadline()
    assert deadline is not None and not of_type(vh.on_timer(now=deadline), AddAddresses)


def test_success_without_a_fault_says_nothing() -> None:
    vh = plumbing_host()
    at, _ = become_master(vh)
    assert vh.addresses_result(ok=True, now=at) == []


def test_faulted_master_yields_to_any_normal_peer() -> None:
    vh = plumbing_host(advskew=0, srcip="192.0.2.1")
    at, _ = become_master(vh)
    vh.addresses_result(ok=False, now=at, detail=FAULT)
    peer = make_advert(vh.config, advskew=200)  # a worse skew than ours, but not faulted
    actions = vh.receive(peer, source=IPv4Address("192.0.2.9"), now=at + 0.5)
    assert vh.state is State.BACKUP
    assert StateChanged(vh.key, State.MASTER, State.BACKUP, Reason.PREFERRED_MASTER) in actions
    assert RemoveAddresses(vh.key, vh.config.networks) in actions


def test_faulted_backup_does_not_take_over_from_a_leaving_master() -> None:
    """Two faulted hosts must not hand the addresses back and forth."""
    vh = plumbing_host(preempt=True)
    at, _ = become_master(vh)
    vh.addresses_result(ok=False, now=at, detail=FAULT)
    vh.force_backup(now=at + 1)
    leaving = make_advert(vh.config, advbase=LEAVING, advskew=LEAVING)
    assert vh.receive(leaving, source=IPv4Address("192.0.2.9"), now=at + 2) == []
    normal = make_advert(vh.config, advskew=100)  # no preempting while faulted either
    assert vh.receive(normal, source=IPv4Address("192.0.2.9"), now=at + 2.5) == []
    assert vh.state is State.BACKUP
    # with nobody advertising it still takes over, and tries again
    deadline = vh.next_deadline()
    assert deadline is not None
    actions = vh.on_timer(now=deadline)
    assert vh.state is State.MASTER and of_type(actions, AddAddresses)


def test_status_shows_the_fault_and_the_demoted_advertisement() -> None:
    vh = plumbing_host()
    at, _ = become_master(vh)
    vh.addresses_result(ok=False, now=at, detail=FAULT)
    status = host_status(vh, {})
    assert status.fault == FAULT and status.state == "MASTER"
    assert (status.advbase, status.advskew) == (LEAVING, LEAVING)
    assert status.to_json(now=at)["fault"] == FAULT


def test_a_peer_takes_over_from_a_faulted_master_without_preempt() -> None:
    """On the fake LAN: the default peer (no preempt) takes over at once."""
    lan = FakeLan()
    a = lan.add(make_config(plumb=True, srcip="192.0.2.1"), name="a", counter=1 << 40)
    b = lan.add(make_config(plumb=True, srcip="192.0.2.2", advskew=100), name="b", counter=2 << 40)
    lan.start(a)
    lan.run_for(4.0)
    assert a.state is State.MASTER
    lan.start(b)
    lan.run_for(2.0)
    assert b.state is State.BACKUP
    faulted_at = lan.now
    lan.addresses_result(a, ok=False, detail=FAULT)
    lan.run_for(1.0)
    assert b.state is State.MASTER and a.state is State.BACKUP
    (taken,) = [t for t, _, new in b.transitions() if new is State.MASTER]
    assert taken - faulted_at < 0.01  # at once: the 255/255 advertisement went out with the fault
    lan.run_for(30.0)
    assert lan.masters() == ["b"]  # and it stays there: no flapping


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["timer", "backup", "fault", "ok", "advert", "link", "stop"]),
            st.integers(1, 4),
            st.floats(0.0, 5.0),
        ),
        max_size=40,
    )
)
def test_node_schedule_is_the_earliest_host_deadline(steps: list[tuple[str, int, float]]) -> None:
    """Whatever happens, the node's heap agrees with its hosts' own deadlines."""
    configs = [make_config(plumb=True, vhid=v, addresses=f"192.0.2.{50 + v}") for v in (1, 2, 3, 4)]
    node = Node(configs, counter=lambda: 0)
    now = 0.0
    node.start(now=now, links=links)
    for what, vhid, dt in steps:
        now += dt
        key = configs[vhid - 1].interface, vhid
        host = node.hosts[key]  # type: ignore[index]
        if what == "timer":
            deadline = node.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
            node.on_timer(now=now)
        elif what == "backup":
            node.force_backup(now=now, vhid=vhid)
        elif what == "fault":
            node.addresses_result(host.key, ok=False, now=now, detail=FAULT)
        elif what == "ok":
            node.addresses_result(host.key, ok=True, now=now)
        elif what == "advert":
            ad = make_advert(host.config, advskew=50)
            node.receive(datagram(ad, src="192.0.2.99"), interface="eth0", now=now)
        elif what == "link":
            node.link_changed("eth0", up=vhid % 2 == 0, now=now)
        else:
            node.shutdown(now=now, graceful=vhid % 2 == 0)
        expected = [d for h in node.hosts.values() if (d := h.next_deadline()) is not None]
        assert node.next_deadline() == min(expected, default=None)
