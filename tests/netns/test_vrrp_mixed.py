"""End-to-end: VRRPv3 beside CARP in one pycarp process, and IPv6 VRRPv3 with keepalived.

One pycarp runs a CARP vhost (its peer: Debian's ucarp) and a VRRPv3 one (its
peer: keepalived) on one interface; both elect, and both fail over when pycarp
crashes. With IPv6, pycarp and keepalived share an IPv6 virtual router
(ff02::12, the link-local sources, the virtual MAC 00:00:5e:00:02:<vrid>).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.keepalived import Instance, Keepalived
from tests.netns.daemons import Daemons, VHost
from tests.netns.observe import global_addresses, tshark_vrrp

pytestmark = pytest.mark.netns

ELECTION = 8.0
TAKEOVER = 8.0
CARP_VHID, VRID = 5, 6
CARP_VIP, VRRP_VIP = "198.51.100.105", "198.51.100.106"
VRRP6_VIP = "2001:db8::106"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as made:
        yield made


def keepalived(host: Host, top: Path, instance: Instance) -> Keepalived:
    workdir = top / f"keepalived-{host.role}"
    workdir.mkdir(parents=True)
    return Keepalived(host, workdir, [instance])


def test_vrrp_and_carp_side_by_side_in_one_process(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "198.51.100.12")
    vrrp = ('protocol = "vrrp3"', "priority = 200")
    both = [VHost(CARP_VHID, (f"{CARP_VIP}/24",)), VHost(VRID, (f"{VRRP_VIP}/24",), extra=vrrp)]
    pc = daemons.toml(a, both, password="shared").start()
    pc.wait_state(CARP_VHID, "MASTER", ELECTION)
    pc.wait_state(VRID, "MASTER", ELECTION)
    ucarp = daemons.peer(b, "ucarp", vhid=CARP_VHID, password="shared", vip=CARP_VIP,
                         advskew=100).start()  # fmt: skip
    ka = keepalived(b, tmp_path, Instance(vrid=VRID, priority=100, addresses=(f"{VRRP_VIP}/24",)))
    ka.start()
    try:
        assert ucarp.wait_backup(ELECTION), ucarp.describe()
        assert ka.wait_state(VRID, "BACKUP", ELECTION), ka.tail()
        time.sleep(3.0)
        status = pc.status()
        assert status[CARP_VHID]["protocol"] == "carp" and status[VRID]["protocol"] == "vrrp3"
        assert (status[CARP_VHID]["state"], status[VRID]["state"]) == ("MASTER", "MASTER")
        assert status[VRID]["mac"] == "virtual" and status[CARP_VHID]["mac"] == "interface"
        assert not ucarp.is_master() and ka.state(VRID) == "BACKUP"
        assert f"{CARP_VIP}/24" in global_addresses(a, "inet"), a.addresses()
        # The VRRP address is on pycarp's macvlan, with the virtual MAC: not on eth0.
        links = a.run("ip", "-o", "addr", "show", "to", VRRP_VIP).stdout
        assert VRRP_VIP in links and a.ifname + ":" not in links, links
        mac = a.run("ip", "-o", "link", "show", links.split()[1].split("@")[0]).stdout
        assert f"00:00:5e:00:01:{VRID:02x}" in mac, mac
        pc.kill()
        a.link_down()
        assert ucarp.wait_master(TAKEOVER), ucarp.describe()
        assert ka.wait_state(VRID, "MASTER", TAKEOVER), ka.tail()
    finally:
        ka.kill()
        ka.unplumb()


def test_ipv6_vrrp3_with_keepalived_both_ways(lab: Lab, daemons: Daemons, tmp_path: Path) -> None:
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "198.51.100.12")
    vhost = VHost(VRID, (f"{VRRP6_VIP}/64",), extra=('protocol = "vrrp3"', "priority = 200"))
    pc = daemons.toml(a, [vhost]).start()
    pc.wait_state(VRID, "MASTER", ELECTION)
    rows = tshark_vrrp(b, tmp_path / "vrrp6.pcap", "ip6 proto 112", "ipv6.dst", "ipv6.hlim")
    assert len(rows) == 3
    good = "1"  # Wireshark's PROTO_CHECKSUM_E_GOOD
    vmac6 = f"00:00:5e:00:02:{VRID:02x}"
    assert all(r == ["3", "1", str(VRID), "200", good, vmac6, "ff02::12", "255"] for r in rows), (
        rows
    )
    instance = Instance(vrid=VRID, priority=100, addresses=(f"{VRRP6_VIP}/64",))
    ka = keepalived(b, tmp_path, instance)
    ka.start()
    try:
        assert ka.wait_state(VRID, "BACKUP", ELECTION), ka.tail()
        time.sleep(3.0)
        assert ka.state(VRID) == "BACKUP", ka.tail()  # it hears pycarp's IPv6 advertisements
        host = pc.status()[VRID]
        assert host["state"] == "MASTER" and host["mac"] == "virtual"
        pc.kill()
        a.link_down()
        assert ka.wait_state(VRID, "MASTER", TAKEOVER), ka.tail()
        # And back: pycarp, of a higher priority, preempts keepalived.
        a.link_up()
        pc2 = daemons.toml(a, [vhost]).start()
        after = pc2.wait_state(VRID, "MASTER", ELECTION)
        assert after["master_priority"] == 200
        assert ka.wait_state(VRID, "BACKUP", 5.0), ka.tail()
    finally:
        ka.kill()
        ka.unplumb()


def test_a_failing_check_lowers_the_vrrp_priority_and_keepalived_preempts(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    """priority 200, penalty 100: a failing check advertises 100, below keepalived's 150,
    which preempts (keepalived's default); healed, pycarp preempts back."""
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "198.51.100.12")
    lines = ('protocol = "vrrp3"', "priority = 200", 'track = ["web"]')

    def check(workdir: Path) -> str:
        command = f'["/usr/bin/test", "-e", "{workdir / "web.healthy"}"]'
        return f'[[check]]\nname = "web"\ntype = "command"\ncommand = {command}\ninterval = 1\n'

    pc = daemons.toml(a, [VHost(VRID, (f"{VRRP_VIP}/24",), extra=lines)], tail=check)
    (pc.workdir / "web.healthy").touch()
    pc.start()
    pc.wait_host(VRID, lambda h: h["state"] == "MASTER" and h["priority"] == 200, ELECTION)
    ka = keepalived(b, tmp_path, Instance(vrid=VRID, priority=150, addresses=(f"{VRRP_VIP}/24",)))
    ka.start()
    try:
        assert ka.wait_state(VRID, "BACKUP", ELECTION), ka.tail()
        (pc.workdir / "web.healthy").unlink()
        after = pc.wait_host(VRID, lambda h: h["state"] == "BACKUP", 8.0)
        assert after["priority"] == 100 and after["master_priority"] == 150, after
        assert ka.wait_state(VRID, "MASTER", 2.0), ka.tail()
        (pc.workdir / "web.healthy").touch()
        healed = pc.wait_state(VRID, "MASTER", 8.0)
        assert healed["reason"] == "preempting a master of lower priority"
        assert ka.wait_state(VRID, "BACKUP", 3.0), ka.tail()
    finally:
        ka.kill()
        ka.unplumb()
