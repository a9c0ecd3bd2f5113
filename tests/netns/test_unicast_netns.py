"""End-to-end: unicast CARP peers (`peers = [...]`, `min_ttl`), in network namespaces.

Where the segment carries no multicast (the lab's bridge drops 224.0.0.0/4)
a multicast pair splits into two masters, while a unicast pair elects one
and fails over. Across a router (one hop: TTL 255 arrives as 254) a unicast
pair works with the default min_ttl 1 and is refused with 255. A valid
advertisement from an address that is not a listed peer is dropped ("peer")
and moves nothing. Default timers: advbase 1, deadratio 3, so a lone host
is MASTER about 3 s after it starts and a backup takes over 3 s (+ skew)
after the last advertisement it heard; waits allow about twice that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, TomlDaemon, VHost
from tests.netns.observe import Tcpdump, holds, vip_entries

pytestmark = pytest.mark.netns

ELECTION = 8.0  # a lone host: 3 s master-down (+ skew) and a margin
TAKEOVER = 7.0  # a backup once the master is gone: 3 s (+ skew) and a margin
HEARD = 3.0  # a fresh backup hears the master, which advertises every second
HOLD = 5.0  # longer than a master-down interval: a backup that hears nothing goes MASTER
PLUMBED = 3.0  # built-in plumbing runs in the background
STAYS = 10.0  # ARP gives up on a dead neighbour after about 3 s; then sends to it fail

VHID = 1
VIP = "198.51.100.101"
MASTER_DOWN = "no advertisement within the master-down interval"


def vhost(
    *peers: str,
    advskew: int = 0,
    preempt: bool = False,
    min_ttl: int | None = None,
    prefix: int = 24,
) -> VHost:
    """vhid 1 with the VIP; unicast to peers if any."""
    extra = [f"peers = {json.dumps(list(peers))}"] if peers else []
    if min_ttl is not None:
        extra.append(f"min_ttl = {min_ttl}")
    return VHost(VHID, (f"{VIP}/{prefix}",), advskew=advskew, preempt=preempt, extra=tuple(extra))


def host_of(daemon: TomlDaemon) -> dict[str, Any]:
    return daemon.status()[VHID]


def state(daemon: TomlDaemon) -> str:
    return str(host_of(daemon)["state"])


def drops(daemon: TomlDaemon, reason: str) -> int:
    return int(host_of(daemon)["dropped"].get(reason, 0))


def master_seen(master: Host) -> Callable[[dict[str, Any]], bool]:
    """A status condition: BACKUP, listening to master."""
    return lambda h: h["state"] == "BACKUP" and h["master"] == master.ip


def one_master(master: TomlDaemon, backup: TomlDaemon) -> Callable[[], bool]:
    """The pair as it should stay: master MASTER, backup BACKUP listening to it."""

    def met() -> bool:
        m, b = host_of(master), host_of(backup)
        return bool(
            m["state"] == "MASTER" and b["state"] == "BACKUP" and b["master"] == master.host.ip
        )

    return met


def elect(
    daemons: Daemons, a_host: Host, b_host: Host, a_vh: VHost, b_vh: VHost
) -> tuple[TomlDaemon, TomlDaemon]:
    """A started and MASTER first, then B, which must hear A and stay BACKUP."""
    a = daemons.toml(a_host, [a_vh]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b = daemons.toml(b_host, [b_vh]).start()
    b.wait_host(VHID, master_seen(a_host), HEARD)
    return a, b


def capture(host: Host, tmp_path: Path, name: str, expression: str) -> Tcpdump:
    return Tcpdump(host, tmp_path / f"{name}.txt", expression, promiscuous=False).start(limit=30)


def frames(dump: Tcpdump) -> list[str]:
    """The frames a capture printed (tcpdump may end its output with an empty line)."""
    return [line for line in dump.lines() if line.strip()]


def segment(lab: Lab, **last: int) -> list[Host]:
    """Hosts on br0, role -> last byte of its 198.51.100.x address."""
    return [lab.add_host(role, f"198.51.100.{n}") for role, n in last.items()]


def routed(lab: Lab) -> tuple[Host, Host]:
    """A on br0, B on br1, a router between: each routes the other's segment through it."""
    a_host = lab.add_host("a", "198.51.100.11")
    lab.add_router("r", {"br0": "198.51.100.1/24", "br1": "203.0.113.1/24"})
    b_host = lab.add_host("b", "203.0.113.12", segment="br1")
    a_host.add_route("203.0.113.0/24", "198.51.100.1")
    b_host.add_route("198.51.100.0/24", "203.0.113.1")
    assert a_host.ping(b_host.ip), "the router does not forward"
    return a_host, b_host


# --- without multicast on the segment --------------------------------------------------


def test_control_a_multicast_pair_splits_without_multicast(lab: Lab, daemons: Daemons) -> None:
    lab.drop_multicast()
    a_host, b_host = segment(lab, a=11, b=12)
    a = daemons.toml(a_host, [vhost()]).start()
    b = daemons.toml(b_host, [vhost(advskew=100)]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b.wait_state(VHID, "MASTER", ELECTION)
    assert host_of(a)["adverts_received"] == 0 and host_of(b)["adverts_received"] == 0
    assert host_of(a)["peers"] == [] and host_of(b)["peers"] == []


def test_a_unicast_pair_elects_one_master_and_fails_over(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    lab.drop_multicast()
    a_host, b_host = segment(lab, a=11, b=12)
    a, b = elect(daemons, a_host, b_host, vhost(b_host.ip), vhost(a_host.ip, advskew=100))
    dump = daemons.describe

    # On A's wire: advertisements to B with TTL 255, none to a multicast group.
    unicast_255 = f"ip proto 112 and dst host {b_host.ip} and ip[8] = 255"
    to_peer = capture(a_host, tmp_path, "to-peer", unicast_255)
    to_group = capture(a_host, tmp_path, "to-group", "ip proto 112 and dst net 224.0.0.0/4")
    try:
        assert holds(one_master(a, b), HOLD), dump()
    finally:
        to_peer.stop()
        to_group.stop()
    assert len(frames(to_peer)) >= 3, (frames(to_peer), dump())
    assert frames(to_group) == [], (frames(to_group), dump())

    a_status, b_status = host_of(a), host_of(b)
    assert (a_status["peers"], a_status["min_ttl"]) == ([b_host.ip], 1), a_status
    assert (b_status["peers"], b_status["min_ttl"]) == ([a_host.ip], 1), b_status
    assert b_status["adverts_received"] >= 3, b_status
    assert b_status["dropped"] == {}, b_status
    assert vip_entries(a_host, [f"{VIP}/24"]) == {f"{VIP}/24"}, dump()
    assert vip_entries(b_host, [f"{VIP}/24"]) == set(), dump()

    a.kill()  # SIGKILL, and the host goes silent: a dying host
    a_host.link_down()
    died = time.monotonic()
    took = b.wait_state(VHID, "MASTER", TAKEOVER)
    assert time.monotonic() - died <= TAKEOVER
    assert took["reason"] == MASTER_DOWN, took
    assert wait_until(lambda: vip_entries(b_host, [f"{VIP}/24"]) == {f"{VIP}/24"}, PLUMBED), dump()
    # Its only peer is dead, not its own network: B must stay MASTER, the VIP on it,
    # also once the kernel has given up resolving A (a few seconds of failed ARP).
    assert holds(lambda: state(b) == "MASTER", STAYS), dump()
    assert vip_entries(b_host, [f"{VIP}/24"]) == {f"{VIP}/24"}, dump()


def test_a_peer_ending_in_224(lab: Lab, daemons: Daemons) -> None:
    lab.drop_multicast()
    a_host, b_host = segment(lab, a=11, b=224)
    a, b = elect(daemons, a_host, b_host, vhost(b_host.ip), vhost(a_host.ip, advskew=100))
    assert holds(one_master(a, b), HOLD), daemons.describe()
    assert host_of(a)["peers"] == ["198.51.100.224"]
    # And back: B, now master, reaches A (a graceful stop hands over, B's advertisements
    # then keep a restarted A in BACKUP).
    assert a.terminate() == 0, a.describe()
    b.wait_state(VHID, "MASTER", TAKEOVER)
    again = daemons.toml(a_host, [vhost(b_host.ip, advskew=200)]).start()
    again.wait_host(VHID, master_seen(b_host), HEARD)
    assert holds(one_master(b, again), HOLD), daemons.describe()


# --- across a router -------------------------------------------------------------------


def test_a_unicast_pair_across_a_router(lab: Lab, daemons: Daemons, tmp_path: Path) -> None:
    a_host, b_host = routed(lab)
    # /32: a VIP of A's segment on B makes no route that would hide A behind B's own link.
    a_vh, b_vh = vhost(b_host.ip, prefix=32), vhost(a_host.ip, advskew=100, prefix=32)
    a, b = elect(daemons, a_host, b_host, a_vh, b_vh)
    one_hop = f"ip proto 112 and src host {a_host.ip} and ip[8] = 254"  # TTL 255, minus one
    arrived = capture(b_host, tmp_path, "arrived", one_hop)
    try:
        assert holds(one_master(a, b), HOLD), daemons.describe()
    finally:
        arrived.stop()
    assert len(frames(arrived)) >= 3, (frames(arrived), daemons.describe())
    b_status = host_of(b)
    assert b_status["adverts_received"] >= 3 and b_status["master"] == a_host.ip, b_status
    assert b_status["dropped"] == {}, b_status
    assert b_status["min_ttl"] == 1, b_status


def test_min_ttl_255_refuses_a_routed_peer(lab: Lab, daemons: Daemons) -> None:
    a_host, b_host = routed(lab)
    a_vh = vhost(b_host.ip, min_ttl=255, prefix=32)
    b_vh = vhost(a_host.ip, advskew=100, min_ttl=255, prefix=32)
    a = daemons.toml(a_host, [a_vh]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b = daemons.toml(b_host, [b_vh]).start()
    b.wait_state(VHID, "MASTER", ELECTION)  # A's advertisements arrive with TTL 254: dropped
    dump = daemons.describe
    assert wait_until(lambda: drops(b, "ttl") >= 3 and drops(a, "ttl") >= 1, HEARD), dump()
    assert holds(lambda: state(a) == "MASTER" and state(b) == "MASTER", 2.0), dump()
    b_status = host_of(b)
    assert b_status["adverts_received"] == 0 and b_status["min_ttl"] == 255, b_status
    assert set(b_status["dropped"]) == {"ttl"}, b_status


# --- a valid digest from an unlisted source ---------------------------------------------


@pytest.mark.parametrize("how", ["group", "unicast"])
def test_an_unlisted_sender_is_ignored(lab: Lab, daemons: Daemons, how: str) -> None:
    """C (same vhid, password, VIP; better advskew, preempt) advertises to the group or to A.

    A and B list only each other: C's advertisements are dropped as "peer" and
    move neither. Multicast flows (C's group advertisements reach A and B).
    """
    a_host, b_host, c_host = segment(lab, a=11, b=12, c=13)
    a, b = elect(
        daemons, a_host, b_host, vhost(b_host.ip, advskew=50), vhost(a_host.ip, advskew=100)
    )
    c_vh = vhost(*([a_host.ip] if how == "unicast" else []), preempt=True)
    c = daemons.toml(c_host, [c_vh]).start()
    dump = daemons.describe
    # C hears neither (they advertise to each other only) and goes MASTER, advertising.
    c.wait_state(VHID, "MASTER", ELECTION)
    assert wait_until(lambda: drops(a, "peer") >= 3, HEARD), dump()
    assert holds(one_master(a, b), HOLD), dump()
    a_status = host_of(a)
    assert a_status["transitions"].get("MASTER") == {"master_down": 1}, a_status
    assert set(a_status["dropped"]) == {"peer"}, a_status
    assert host_of(c)["adverts_received"] == 0, host_of(c)
    if how == "group":  # B, also in the group, drops them too
        assert drops(b, "peer") >= 3, host_of(b)
    else:
        assert drops(b, "peer") == 0, host_of(b)
    counted = a_status["dropped"]["peer"]
    assert wait_until(lambda: drops(a, "peer") > counted, HEARD), dump()  # C goes on
    assert state(c) == "MASTER", c.describe()
