"""End-to-end: pycarp's VRRPv3 with Debian's keepalived, in network namespaces.

Each case puts pycarp (a TOML file with `protocol = "vrrp3"`, the defaults
an operator gets otherwise: the virtual MAC, preempt) and keepalived
(`vrrp_version 3`, see pycarp.lab.keepalived) on one bridge with one VRID,
and plays each role with each. pycarp's state is read from its status,
keepalived's from its notify script. Timing with advert_int 1: a backup of
priority 100 takes over 3 x 1 + (256 - 100) / 256 = 3.61 s after the last
advertisement, 0.61 s after a priority-0 one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycarp.lab import Host
from pycarp.lab.keepalived import Instance, Keepalived
from pycarp.lab.probe import PingProbe, longest_silence_ms, probe_results
from tests.netns.daemons import Daemons, Net, TomlDaemon, VHost
from tests.netns.observe import tshark_vrrp

pytestmark = pytest.mark.netns

ELECTION = 8.0  # a lone router: 3.61 s master-down plus a margin
TAKEOVER = 8.0  # after a crash
_vrids = itertools.count(31)


@dataclass
class Group:
    net: Net
    vrid: int
    vip: str  # a.b.c.d, /24 on the segment
    daemons: Daemons
    top: Path
    keepaliveds: list[Keepalived]

    def pycarp(
        self, host: Host, priority: int, *, advert_int: float = 1.0, extra: tuple[str, ...] = ()
    ) -> TomlDaemon:
        lines = ('protocol = "vrrp3"', f"priority = {priority}", f"advert_int = {advert_int}")
        vhost = VHost(self.vrid, (f"{self.vip}/24",), extra=(*lines, *extra))
        return self.daemons.toml(host, [vhost])

    def keepalived(
        self, host: Host, priority: int, *, advert_int: float = 1.0, preempt: bool = True
    ) -> Keepalived:
        instance = Instance(
            vrid=self.vrid,
            priority=priority,
            addresses=(f"{self.vip}/24",),
            advert_int=advert_int,
            preempt=preempt,
        )
        workdir = self.top / f"keepalived-{host.role}-{len(self.keepaliveds)}"
        workdir.mkdir(parents=True)
        ka = Keepalived(host, workdir, [instance])
        self.keepaliveds.append(ka)
        return ka

    def describe(self) -> str:
        logs = [f"--- {ka!r}\n{ka.tail(25)}" for ka in self.keepaliveds]
        return "\n".join([self.daemons.describe(), *logs])


@pytest.fixture
def group(net: Net, daemons: Daemons, tmp_path: Path) -> Iterator[Group]:
    vrid = next(_vrids)
    made = Group(net, vrid, f"198.51.100.{100 + vrid}", daemons, tmp_path, [])
    try:
        yield made
    finally:
        for ka in made.keepaliveds:
            ka.kill()
            ka.unplumb()
        for host in (net.a, net.b, net.c):
            if not host.running():
                host.link_up()


def state(daemon: TomlDaemon, vrid: int) -> str:
    return str(daemon.status()[vrid]["state"])


@pytest.mark.parametrize("advert_int", [1.0, 0.1, 0.03], ids=["1s", "100ms", "30ms"])
def test_keepalived_takes_over_from_a_crashed_pycarp_master(
    group: Group, advert_int: float
) -> None:
    net = group.net
    pc = group.pycarp(net.a, 200, advert_int=advert_int).start()
    pc.wait_state(group.vrid, "MASTER", ELECTION)
    ka = group.keepalived(net.b, 100, advert_int=advert_int).start()
    assert ka.wait_state(group.vrid, "BACKUP", ELECTION), group.describe()
    time.sleep(max(1.0, 10 * advert_int))
    assert ka.state(group.vrid) == "BACKUP", group.describe()  # it hears pycarp all along
    assert state(pc, group.vrid) == "MASTER"
    pc.kill()
    net.a.link_down()
    assert ka.wait_state(group.vrid, "MASTER", TAKEOVER), group.describe()


@pytest.mark.parametrize("advert_int", [1.0, 0.1, 0.03], ids=["1s", "100ms", "30ms"])
def test_pycarp_takes_over_from_a_crashed_keepalived_master(
    group: Group, advert_int: float
) -> None:
    net = group.net
    ka = group.keepalived(net.a, 200, advert_int=advert_int).start()
    assert ka.wait_state(group.vrid, "MASTER", ELECTION), group.describe()
    pc = group.pycarp(net.b, 100, advert_int=advert_int).start()
    pc.wait_host(group.vrid, lambda h: h["state"] == "BACKUP" and h["master"] == net.a.ip, 5.0)
    time.sleep(max(1.0, 10 * advert_int))
    host = pc.status()[group.vrid]
    assert host["state"] == "BACKUP" and host["master_priority"] == 200, group.describe()
    ka.kill()
    net.a.link_down()
    after = pc.wait_state(group.vrid, "MASTER", TAKEOVER)
    assert after["reason"] == "no advertisement within the master-down interval"


def test_graceful_stop_hands_over_with_priority_0_both_ways(group: Group) -> None:
    """pycarp leaving: keepalived takes over after its skew time, while pycarp still holds
    the address (make-before-break); keepalived leaving: pycarp takes over on its priority 0."""
    net = group.net
    pc = group.pycarp(net.a, 200).start()
    pc.wait_state(group.vrid, "MASTER", ELECTION)
    ka = group.keepalived(net.b, 100).start()
    assert ka.wait_state(group.vrid, "BACKUP", ELECTION), group.describe()
    probe = PingProbe(net.client, group.vip, group.top / "ping.log", 0.01, 600).start()
    try:
        time.sleep(1.0)
        stopped = time.monotonic()
        assert pc.terminate(timeout=10.0) == 0, group.describe()
        assert ka.wait_state(group.vrid, "MASTER", 2.0), group.describe()
        took = time.monotonic() - stopped
        time.sleep(1.0)
    finally:
        output = probe.stop()
    assert took < 2.0  # 0.61 s of skew, far from the 3.61 s master-down interval
    _, stamps = probe_results(output)
    assert longest_silence_ms(stamps) < 500, output[-2000:]
    # And back: pycarp as the backup of a keepalived that stops.
    pc2 = group.pycarp(net.c, 50).start()
    pc2.wait_host(group.vrid, lambda h: h["state"] == "BACKUP" and h["master"] == net.b.ip, 6.0)
    ka.stop()
    after = pc2.wait_state(group.vrid, "MASTER", 2.0)
    assert after["reason"] == "the master advertises too rarely to stay master"


def test_preempt_by_priority_both_ways(group: Group) -> None:
    net = group.net
    pc = group.pycarp(net.a, 100).start()
    pc.wait_state(group.vrid, "MASTER", ELECTION)
    ka = group.keepalived(net.b, 200).start()  # higher: it preempts pycarp
    assert ka.wait_state(group.vrid, "MASTER", ELECTION), group.describe()
    after = pc.wait_state(group.vrid, "BACKUP", 3.0)
    assert after["reason"] == "a preferred master advertised"
    # A pycarp of a higher priority still preempts keepalived.
    pc2 = group.pycarp(net.c, 250).start()
    after = pc2.wait_state(group.vrid, "MASTER", ELECTION)
    assert after["reason"] == "preempting a master of lower priority", group.describe()
    assert ka.wait_state(group.vrid, "BACKUP", 3.0), group.describe()
    time.sleep(2.0)
    assert ka.state(group.vrid) == "BACKUP" and state(pc, group.vrid) == "BACKUP"


def test_a_mixed_group_of_three_elects_by_priority(group: Group) -> None:
    """keepalived 200, pycarp 150 and 100: keepalived, then pycarp 150, then pycarp 100."""
    net = group.net
    ka = group.keepalived(net.a, 200).start()
    high = group.pycarp(net.b, 150).start()
    low = group.pycarp(net.c, 100).start()
    assert ka.wait_state(group.vrid, "MASTER", ELECTION), group.describe()
    for daemon in (high, low):
        daemon.wait_host(group.vrid, lambda h: h["master"] == net.a.ip, ELECTION)
    time.sleep(2.0)
    assert (state(high, group.vrid), state(low, group.vrid)) == ("BACKUP", "BACKUP")
    ka.kill()
    net.a.link_down()
    high.wait_state(group.vrid, "MASTER", TAKEOVER)
    low.wait_host(group.vrid, lambda h: h["master"] == net.b.ip, 3.0)
    time.sleep(2.0)
    assert state(low, group.vrid) == "BACKUP", group.describe()
    high.kill()
    net.b.link_down()
    low.wait_state(group.vrid, "MASTER", TAKEOVER)


def test_tshark_decodes_pycarps_vrrp3_with_a_good_checksum(group: Group) -> None:
    net = group.net
    pc = group.pycarp(net.a, 200, advert_int=0.1).start()
    pc.wait_state(group.vrid, "MASTER", ELECTION)
    rows = tshark_vrrp(net.b, group.top / "vrrp.pcap", f"ip proto 112 and src {net.a.ip}",
                       "vrrp.short_adver_int", "ip.ttl", "vrrp.ip_addr", count=5)  # fmt: skip
    assert len(rows) == 5, rows
    good = "1"  # Wireshark's PROTO_CHECKSUM_E_GOOD
    for row in rows:
        assert row[:5] == ["3", "1", str(group.vrid), "200", good], row
        assert row[5] == f"00:00:5e:00:01:{group.vrid:02x}", row  # the virtual MAC
        assert row[6:] == ["10", "255", group.vip], row


def test_a_step_down_hands_over_at_the_skew_time(group: Group) -> None:
    """`pycarp stepdown` advertises priority 0: keepalived takes over after 0.61 s, not 3.61."""
    net = group.net
    pc = group.pycarp(net.a, 200, extra=("preempt = false",)).start()
    pc.wait_state(group.vrid, "MASTER", ELECTION)
    ka = group.keepalived(net.b, 100).start()
    assert ka.wait_state(group.vrid, "BACKUP", ELECTION), group.describe()
    time.sleep(1.0)
    asked = time.monotonic()
    assert pc.stepdown(group.vrid).returncode == 0
    assert ka.wait_state(group.vrid, "MASTER", 2.0), group.describe()
    assert time.monotonic() - asked < 2.0
    after = pc.wait_host(group.vrid, lambda h: h["master"] == net.b.ip, 3.0)
    assert after["state"] == "BACKUP" and after["master_priority"] == 100
