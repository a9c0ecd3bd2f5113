"""End-to-end: a CARP pair with BSD's virtual MAC (`mac = "virtual"`), IPv4 and IPv6.

The MASTER's addresses sit on a macvlan with 00:00:5e:00:01:<vhid>, so a
client resolves the VIP to that MAC and keeps it across a failover: its
neighbour entry never changes, whatever the announcements. Everything else
is an operator's default (timers, plumbing, control socket).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, VHost
from tests.netns.observe import Tcpdump, neighbour_mac, ping_within, tentative

pytestmark = pytest.mark.netns

VHID = 7
VIP, VIP6 = "198.51.100.107", "2001:db8::107"
VMAC = f"00:00:5e:00:01:{VHID:02x}"
ELECTION = 7.0
TAKEOVER = 7.0


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as made:
        yield made


def ping6(client: Host, ip: str) -> bool:
    done = client.run("ping", "-6", "-n", "-c", "1", "-W", "1", ip, check=False)
    return done.returncode == 0


def test_the_vip_keeps_its_mac_across_a_failover(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "198.51.100.12")
    client = lab.add_host("client", "198.51.100.10")
    client.run("ip", "-6", "addr", "add", "2001:db8::10/64", "dev", client.ifname, "nodad")
    for host in (a, b, client):  # link-local sources must have passed DAD
        assert wait_until(lambda h=host: not tentative(h), 5.0)
    vhost = VHost(VHID, (f"{VIP}/24", f"{VIP6}/64"), extra=('mac = "virtual"',))
    one = daemons.toml(a, [vhost]).start()
    one.wait_state(VHID, "MASTER", ELECTION)
    two = daemons.toml(b, [vhost]).start()
    two.wait_host(VHID, lambda h: h["state"] == "BACKUP" and h["adverts_received"] > 2, 4.0)
    assert ping_within(client, VIP) and ping6(client, VIP6)
    assert neighbour_mac(client, VIP) == VMAC
    assert neighbour_mac(client, VIP6) == VMAC
    arps = Tcpdump(client, tmp_path / "arp.log", "arp or icmp6").start()
    try:
        one.kill()
        a.link_down()
        two.wait_state(VHID, "MASTER", TAKEOVER)
        assert ping_within(client, VIP, timeout=3.0), two.describe()
        assert ping6(client, VIP6), two.describe()
        time.sleep(0.5)
    finally:
        arps.stop()
    assert neighbour_mac(client, VIP) == VMAC and neighbour_mac(client, VIP6) == VMAC
    # Every announcement and answer of the VIP came from the virtual MAC, none from a NIC's.
    nics = {a.mac().lower(), b.mac().lower()}
    lines = [line for line in arps.lines() if VIP in line or VIP6 in line]
    assert lines, arps.lines()
    assert not [line for line in lines if line.split()[1].lower() in nics], lines
