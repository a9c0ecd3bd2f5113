"""pycarp with mac = "virtual": its macvlan through a takeover, a SIGKILL and a restart.

A SIGKILLed master leaves its macvlan with the address on it; the restarted
daemon must take that away before it listens as BACKUP, or two hosts would
answer for the address from the same MAC.
"""

from __future__ import annotations

import json

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, VHost
from tests.netns.observe import neighbour_mac, ping_within

pytestmark = pytest.mark.netns

VHID = 61
VIP = "198.51.100.61"
VIRTUAL_MAC = f"00:00:5e:00:01:{VHID:02x}"
PASSWORD = "vmac"
ELECTION = 6.0  # seconds: a fresh host listens 3 s, then takes over
TAKEOVER = 6.0  # b's master-down interval is 3 + 50/256 s


def vhost(advskew: int = 0) -> VHost:
    return VHost(VHID, (f"{VIP}/32",), advskew=advskew, extra=('mac = "virtual"',))


def macvlans(host: Host) -> dict[str, set[str]]:
    """pycarp's macvlans on the host: name -> its IPv4 addresses."""
    out = json.loads(host.run("ip", "-j", "-d", "addr").stdout)
    return {
        e["ifname"]: {a["local"] for a in e["addr_info"] if a["family"] == "inet"}
        for e in out
        if e["ifname"].startswith("pcv") and e.get("address") == VIRTUAL_MAC
    }


def test_a_killed_masters_macvlan_goes_when_it_restarts_as_backup(
    lab: Lab, daemons: Daemons
) -> None:
    client = lab.add_host("client", "198.51.100.10")
    a_host, b_host = lab.add_host("a", "198.51.100.11"), lab.add_host("b", "198.51.100.12")
    a = daemons.toml(a_host, [vhost()], password=PASSWORD).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    assert list(macvlans(a_host).values()) == [{VIP}], a.describe()
    assert ping_within(client, VIP), a.describe()
    assert neighbour_mac(client, VIP) == VIRTUAL_MAC

    a.kill()  # no hand-over, no cleanup: the macvlan stays with the address
    assert list(macvlans(a_host).values()) == [{VIP}]
    b = daemons.toml(b_host, [vhost(advskew=50)], password=PASSWORD).start()
    b.wait_state(VHID, "MASTER", TAKEOVER)

    again = daemons.toml(a_host, [vhost()], password=PASSWORD).start()  # preempt off
    assert wait_until(lambda: not macvlans(a_host), 5.0), again.describe()
    assert again.wait_log("already configured behind", 5.0), again.describe()
    again.wait_state(VHID, "BACKUP", ELECTION)
    assert not macvlans(a_host), again.describe()
    assert list(macvlans(b_host).values()) == [{VIP}], b.describe()
    assert ping_within(client, VIP), daemons.describe()
    assert neighbour_mac(client, VIP) == VIRTUAL_MAC

    again.terminate()
    b.terminate()  # a graceful stop takes the macvlan away
    assert not macvlans(b_host), b.describe()
