"""End-to-end interoperability with the real ucarp, in network namespaces.

Every case runs a small CARP group on one bridge and plays each role with
ucarp or pycarp; the state each peer reaches is read from the calls of its
up/down scripts (see daemons.py), which is what a ucarp user relies on.

Timing, with advbase 1 and the default deadratio 3: a lone node becomes
MASTER about 3 s after it starts, a backup takes over 2 to 3.4 s after the
master goes silent. The waits below allow roughly twice that.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

import pytest

from pycarp.lab import Host
from tests.netns.daemons import Daemons, Impl, Net, Peer, PeerOptions
from tests.netns.observe import Tcpdump, holds, neighbour_mac, ping_within

pytestmark = pytest.mark.netns

PASSWORD = "changeme"
ELECTION = 6.0  # a lone node: 3 s master-down plus a margin
TAKEOVER = 6.0  # a backup after the master went silent
SETTLE = 1.5  # for a fresh backup to hear at least one advertisement

# (first role, second role): mixed both ways; then pycarp alone, and ucarp
# alone as a check of the test itself.
MIXED = [
    pytest.param("pycarp", "ucarp", id="pycarp-ucarp"),
    pytest.param("ucarp", "pycarp", id="ucarp-pycarp"),
]
PYCARP_ONLY = pytest.param("pycarp", "pycarp", id="pycarp-pycarp")
UCARP_ONLY = pytest.param("ucarp", "ucarp", id="ucarp-ucarp")

_vhids = itertools.count(11)


@dataclass
class Group:
    """The peers of one test, sharing a vhid and a VIP; cleaned up after it."""

    net: Net
    vhid: int
    vip: str
    daemons: Daemons

    def start(
        self,
        host: Host,
        impl: Impl,
        *,
        password: str = PASSWORD,
        wait: bool = True,
        **options: Unpack[PeerOptions],
    ) -> Peer:
        """A peer of the group started on host (waiting until it runs, unless told not to)."""
        peer = self.daemons.peer(host, impl, vhid=self.vhid, password=password, vip=self.vip,
                                 **options)  # fmt: skip
        return peer.start(wait=wait)

    def dump(self) -> str:
        return self.daemons.describe()


@pytest.fixture
def group(net: Net, daemons: Daemons) -> Iterator[Group]:
    vhid = next(_vhids)
    grp = Group(net, vhid, f"198.51.100.{100 + vhid}", daemons)
    try:
        yield grp
    finally:
        daemons.close()  # before the VIPs go: no daemon may put one back
        # Leave the shared bridge as we found it: links up, no VIP anywhere.
        for host in net.hosts:
            host.link_up()
            host.run("ip", "addr", "del", f"{grp.vip}/32", "dev", host.ifname, check=False)


def up(peer: Peer) -> str:
    return f"up {peer.host.ifname} {peer.vip}"


def down(peer: Peer) -> str:
    return f"down {peer.host.ifname} {peer.vip}"


@pytest.mark.parametrize(("master_impl", "backup_impl"), [*MIXED, PYCARP_ONLY, UCARP_ONLY])
def test_backup_takes_over_when_master_crashes(
    group: Group, master_impl: Impl, backup_impl: Impl
) -> None:
    net = group.net
    master = group.start(net.a, master_impl)
    assert master.wait_master(ELECTION), group.dump()
    backup = group.start(net.b, backup_impl)
    assert backup.wait_history(lambda h: h == [down(backup)], ELECTION), group.dump()
    assert holds(lambda: master.is_master() and not backup.is_master(), SETTLE), group.dump()

    # The client reaches the VIP on the master before the crash...
    assert ping_within(net.client, group.vip, 3.0), group.dump()
    assert neighbour_mac(net.client, group.vip) == net.a.mac().lower()

    crashed_at = time.time()
    master.crash_host()  # SIGKILL and the host's carrier lost: a dying host
    assert backup.wait_master(TAKEOVER), group.dump()
    took = backup.events()[-1][0] - crashed_at
    # At most one advertisement interval was pending, then 3 x advbase.
    assert 1.5 < took < 4.5, f"takeover after {took:.2f} s\n{group.dump()}"

    # ...and on the backup after it: the reply comes from the backup's MAC.
    assert ping_within(net.client, group.vip, 3.0), group.dump()
    assert neighbour_mac(net.client, group.vip) == net.b.mac().lower()
    assert backup.state_history() == [down(backup), up(backup)]


@pytest.mark.parametrize(("high_impl", "low_impl"), [*MIXED, PYCARP_ONLY])
def test_preempt_elects_the_same_master_whatever_the_start_order(
    group: Group, high_impl: Impl, low_impl: Impl
) -> None:
    net = group.net
    # The low-priority node first: it is alone, so it becomes master...
    low = group.start(net.b, low_impl, advskew=100, preempt=True)
    assert low.wait_master(ELECTION), group.dump()
    # ...until the preferred one starts and preempts it at its first advert.
    high = group.start(net.a, high_impl, advskew=0, preempt=True)
    assert high.wait_master(ELECTION), group.dump()
    assert low.wait_backup(3.0), group.dump()
    assert holds(lambda: high.is_master() and not low.is_master(), 2.0), group.dump()

    # The other order: the preferred node is master, the low one (re)starts
    # and must stay backup past its master-down interval.
    assert low.terminate() is not None, group.dump()
    history = high.state_history()
    low2 = group.start(net.b, low_impl, advskew=100, preempt=True)
    assert low2.wait_history(lambda h: h == [down(low2)], ELECTION), group.dump()
    assert holds(lambda: low2.state_history() == [down(low2)], 4.0), group.dump()
    assert high.state_history() == history, group.dump()


@pytest.mark.parametrize(
    "impls",
    [
        pytest.param(("pycarp", "ucarp", "pycarp"), id="pycarp-ucarp-pycarp"),
        pytest.param(("ucarp", "pycarp", "ucarp"), id="ucarp-pycarp-ucarp"),
    ],
)
def test_preempt_in_a_group_of_three(group: Group, impls: tuple[Impl, Impl, Impl]) -> None:
    net = group.net
    # Started from the least preferred to the most: each newcomer preempts.
    third = group.start(net.c, impls[2], advskew=100, preempt=True)
    assert third.wait_master(ELECTION), group.dump()
    second = group.start(net.b, impls[1], advskew=50, preempt=True)
    assert second.wait_master(ELECTION), group.dump()
    assert third.wait_backup(3.0), group.dump()
    first = group.start(net.a, impls[0], advskew=0, preempt=True)
    assert first.wait_master(ELECTION), group.dump()
    assert second.wait_backup(3.0), group.dump()

    def only_first_is_master() -> bool:
        return first.is_master() and not second.is_master() and not third.is_master()

    assert holds(only_first_is_master, 2.5), group.dump()


@pytest.mark.parametrize(
    ("impl_a", "impl_b"),
    [MIXED[0], PYCARP_ONLY],
)
def test_wrong_password_is_rejected_and_logged(group: Group, impl_a: Impl, impl_b: Impl) -> None:
    net = group.net
    # Same vhid and VIP, different passwords: neither accepts the other's
    # advertisements, so both end up MASTER.
    a = group.start(net.a, impl_a, password="right")
    b = group.start(net.b, impl_b, password="wrong")
    assert a.wait_master(ELECTION) and b.wait_master(ELECTION), group.dump()
    assert holds(lambda: a.is_master() and b.is_master(), 2.0), group.dump()
    # Both logged the rejection (ucarp: "Bad digest - ... Check vhid,
    # password and virtual IP address").
    for peer in (a, b):
        assert re.search(r"bad digest|authentic", peer.log(), re.IGNORECASE), peer.describe()


@pytest.mark.parametrize(("master_impl", "backup_impl"), MIXED)
def test_nomcast_both_ways(
    group: Group, master_impl: Impl, backup_impl: Impl, tmp_path: Path
) -> None:
    net = group.net
    # CARP frames with their Ethernet header, promiscuous: every frame on the wire.
    tcpdump = Tcpdump(net.client, tmp_path / "carp.txt", "ip proto 112", count=100).start()
    try:
        master = group.start(net.a, master_impl, nomcast=True)
        assert master.wait_master(ELECTION), group.dump()
        backup = group.start(net.b, backup_impl, nomcast=True)
        # The backup hears the broadcast advertisements: it stays backup
        # well past its master-down interval.
        assert backup.wait_history(lambda h: h == [down(backup)], ELECTION), group.dump()
        assert holds(lambda: backup.state_history() == [down(backup)], 3.5), group.dump()
        # A stop without -z leaves no trace but silence: the backup takes over
        # and advertises, broadcast too.
        assert master.terminate() is not None, group.dump()
        assert backup.wait_master(TAKEOVER), group.dump()
        time.sleep(1.5)
    finally:
        tcpdump.stop()
    frames = [line for line in tcpdump.lines() if "224.0.0.18" in line]
    senders = {ip for ip in (net.a.ip, net.b.ip) if any(f"{ip} >" in f for f in frames)}
    assert senders == {net.a.ip, net.b.ip}, "\n".join(frames)
    # IP destination stays the group, Ethernet destination is broadcast.
    assert all("> ff:ff:ff:ff:ff:ff" in f for f in frames), "\n".join(frames)


@pytest.mark.parametrize(("neutral_impl", "other_impl"), [*MIXED, PYCARP_ONLY])
def test_neutral_runs_no_down_script_at_start(
    group: Group, neutral_impl: Impl, other_impl: Impl
) -> None:
    net = group.net
    # The other one starts first (ready, so its master-down timer runs) and has
    # the shorter master-down interval: it becomes master, the neutral one stays
    # backup. Started the other way round, a slow start of the other one on a
    # loaded machine let the neutral one win.
    other = group.start(net.b, other_impl, advskew=0)
    neutral = group.start(net.a, neutral_impl, neutral=True, advskew=100, wait=False)
    assert other.wait_master(ELECTION), group.dump()
    # The control: without --neutral the first step (INIT to BACKUP) ran it.
    assert other.state_history() == [down(other), up(other)], group.dump()
    assert holds(lambda: neutral.state_history() == [], 2.0), group.dump()
    assert neutral.alive(), group.dump()


@pytest.mark.parametrize(("master_impl", "backup_impl"), [*MIXED, PYCARP_ONLY])
def test_shutdown_runs_down_script_on_sigterm_when_master(
    group: Group, master_impl: Impl, backup_impl: Impl
) -> None:
    net = group.net
    master = group.start(net.a, master_impl, shutdown=True)
    assert master.wait_master(ELECTION), group.dump()
    backup = group.start(net.b, backup_impl, shutdown=True)
    assert backup.wait_history(lambda h: h == [down(backup)], ELECTION), group.dump()
    assert holds(lambda: master.is_master() and not backup.is_master(), SETTLE), group.dump()

    assert master.terminate() == 0, group.dump()
    assert master.state_history() == [down(master), up(master), down(master)], group.dump()
    assert f"{group.vip}/32" not in net.a.addresses()
    # The backup takes over (at once from a pycarp master, which announces its
    # leaving), and as a master stopped with -z it runs its down script too.
    assert backup.wait_master(ELECTION), group.dump()
    assert backup.terminate() == 0, group.dump()
    assert backup.state_history() == [down(backup), up(backup), down(backup)], group.dump()


@pytest.mark.parametrize("impl", ["ucarp", "pycarp"])
def test_shutdown_of_a_backup_runs_no_down_script(group: Group, impl: Impl) -> None:
    net = group.net
    master = group.start(net.a, "ucarp", shutdown=True)
    assert master.wait_master(ELECTION), group.dump()
    backup = group.start(net.b, impl, shutdown=True)
    assert backup.wait_history(lambda h: h == [down(backup)], ELECTION), group.dump()
    assert backup.terminate() == 0, group.dump()
    assert backup.state_history() == [down(backup)], group.dump()
