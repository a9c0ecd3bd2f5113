"""Never MASTER without the addresses: a plumbing fault demotes (issue 8).

The fault is injected in the namespace: the host's interface is renamed
under the running daemon. Its sockets stay bound to the interface (by
index), so it keeps receiving and advertising, but every address request
for the configured name fails ("no such interface"), as after an interface
was removed and re-created under another name. Renaming it back heals it.
"""

from __future__ import annotations

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, VHost

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"
ELSEWHERE = "pcfault0"  # the interface's name while the fault lasts
NOTICE = "could not configure the virtual addresses"


def rename(host: Host, old: str, new: str) -> None:
    host.run("ip", "link", "set", "dev", old, "name", new)


def vip_on(host: Host, ifname: str = "eth0") -> bool:
    out = host.run("ip", "-4", "-o", "addr", "show", "dev", ifname).stdout
    return f" {VIP}/32 " in out


def test_a_master_that_cannot_plumb_hands_over_and_recovers(lab: Lab, daemons: Daemons) -> None:
    client = lab.add_host("client", "198.51.100.10")
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "198.51.100.12")
    vhosts = [VHost(1, (f"{VIP}/32",))]

    faulty = daemons.toml(a, vhosts).start()
    faulty.wait_state(1, "BACKUP", 3.0)  # a fresh host listens for 3 s first
    rename(a, "eth0", ELSEWHERE)
    try:
        host = faulty.wait_host(1, lambda h: h["state"] == "MASTER" and h["fault"], 8.0)
        assert "no such interface" in host["fault"]
        assert (host["advbase"], host["advskew"]) == (255, 255)  # demoted

        # A peer with the defaults (no preempt) takes over at once...
        peer = daemons.toml(b, vhosts).start()
        peer.wait_state(1, "MASTER", 3.0)
        faulty.wait_state(1, "BACKUP", 3.0)
        assert wait_until(lambda: client.ping(VIP, timeout=0.5), 5.0), peer.describe()
        assert not vip_on(a, ELSEWHERE)
        assert faulty.log().count(NOTICE) == 1, faulty.describe()  # said once, not per retry
    finally:
        rename(a, ELSEWHERE, "eth0")

    # ...and the healed host serves again when the peer is gone.
    peer.kill()
    host = faulty.wait_host(1, lambda h: h["state"] == "MASTER" and not h["fault"], 8.0)
    assert (host["advbase"], host["advskew"]) == (1, 0)
    assert wait_until(lambda: vip_on(a), 3.0), faulty.describe()
    assert wait_until(lambda: client.ping(VIP, timeout=0.5), 5.0), faulty.describe()


def test_a_lone_faulted_master_retries_until_the_addresses_are_in_place(
    lab: Lab, daemons: Daemons
) -> None:
    a = lab.add_host("a", "198.51.100.11")
    daemon = daemons.toml(a, [VHost(1, (f"{VIP}/32",))]).start()
    daemon.wait_state(1, "BACKUP", 3.0)
    rename(a, "eth0", ELSEWHERE)
    try:
        daemon.wait_host(1, lambda h: h["state"] == "MASTER" and h["fault"], 8.0)
    finally:
        rename(a, ELSEWHERE, "eth0")
    # the first retries come 1, 2 and 4 s after the fault
    host = daemon.wait_host(1, lambda h: not h["fault"], 10.0)
    assert host["state"] == "MASTER" and (host["advbase"], host["advskew"]) == (1, 0)
    assert wait_until(lambda: vip_on(a), 3.0), daemon.describe()
    assert "advertising normally again" in daemon.log()
