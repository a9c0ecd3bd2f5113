"""End-to-end: a unicast host none of whose peers can be reached says so and stays BACKUP.

A lone host lists a peer on 203.0.113.0/24 with no route there: its first
advertisement as MASTER reaches nobody, so it gives the address back, is
BACKUP and silent, and tries again with backoff. Once a route exists it
listens for a master again (and, none answering, takes over).
"""

from __future__ import annotations

import time

import pytest

from pycarp.lab import Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, VHost

pytestmark = pytest.mark.netns

VIP = "198.51.100.101"
PEER = "203.0.113.50"  # no route to it from the lab host
ELECTION = 7.0


def test_no_route_to_any_peer_keeps_the_host_backup(lab: Lab, daemons: Daemons) -> None:
    host = lab.add_host("a", "198.51.100.11")
    vhost = VHost(1, (f"{VIP}/24",), extra=(f'peers = ["{PEER}"]',))
    daemon = daemons.toml(host, [vhost])
    daemon.start()
    seen = daemon.wait_host(1, lambda h: h["reason"] == "no peer can be reached", ELECTION)
    assert seen["state"] == "BACKUP" and "Network is unreachable" in (seen["fault"] or ""), seen
    assert daemon.wait_log("no peer can be reached", 2.0), daemon.describe()
    assert wait_until(lambda: not any(a.startswith(VIP) for a in host.addresses()), 3.0)
    for _ in range(3):  # it stays so (bounded: three looks over three seconds)
        time.sleep(1.0)
        assert daemon.status()[1]["state"] == "BACKUP", daemon.describe()
    host.run("ip", "route", "add", "203.0.113.0/24", "dev", host.ifname)
    assert daemon.wait_log("a peer can be reached again", 8.0), daemon.describe()
    back = daemon.wait_state(1, "MASTER", ELECTION)  # nobody answers: it takes over
    assert back["fault"] is None, back
