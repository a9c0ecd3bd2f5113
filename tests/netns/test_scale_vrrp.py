"""255 VRRPv3 virtual routers in one process, with the defaults (issue 13): a macvlan each.

One TOML process with VRIDs 1..255 (priority 200), each address behind its
virtual MAC, becomes MASTER and plumbs all 255; a backup process (priority
100) takes over after the master is killed and plumbs them all within
PLUMB_BOUND of its takeover, each on its own macvlan; a graceful stop
leaves no macvlan.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.lab import Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, TomlDaemon, VHost, all_vips
from tests.netns.observe import AddressMonitor, all_plumbed

pytestmark = pytest.mark.netns

# Each router's macvlan is made at its takeover (a backup holds none: it would announce the
# virtual MAC), about 5 ms of the kernel's each: 255 take 1.3-2.9 s, the addresses after them.
PLUMB_BOUND = 4.0
COUNT = 255


def routers(priority: int) -> list[VHost]:
    ips = [f"203.0.113.{i}" for i in range(1, 255)] + ["198.51.100.200"]
    lines = ('protocol = "vrrp3"', f"priority = {priority}")
    return [VHost(v, (f"{ip}/32",), extra=lines) for v, ip in zip(range(1, 256), ips, strict=True)]


def macvlans(daemon: TomlDaemon) -> list[str]:
    """pycarp's macvlans in the daemon's host (a virtual MAC each)."""
    out = daemon.host.run("ip", "-o", "link", "show", "type", "macvlan").stdout
    return [line.split()[1].split("@")[0] for line in out.splitlines() if "00:00:5e:00:01:" in line]


def test_255_vrrp_routers_fail_over_each_behind_its_virtual_mac(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "198.51.100.12")
    vips = all_vips(routers(200))
    assert len(vips) == COUNT
    mon_b = AddressMonitor(b, tmp_path / "b.monitor").start(limit=120)
    try:
        master = daemons.toml(a, routers(200)).start()
        master.entered("MASTER", 20.0)
        assert wait_until(lambda: len(macvlans(master)) == COUNT, 10.0), master.describe()
        backup = daemons.toml(b, routers(100)).start()
        backup.wait_all("BACKUP", 20.0)

        def heard() -> bool:
            return {h["master_priority"] for h in backup.status().values()} == {200}

        assert wait_until(heard, 5.0), backup.describe()  # every router hears the master
        assert macvlans(backup) == []  # a backup holds no address, so no macvlan

        master.kill()
        a.link_down()
        first, _ = backup.entered("MASTER", 20.0)
        plumbed = all_plumbed(b, mon_b, vips, 10.0, every_link=True)
        print(f"takeover: all {COUNT} addresses {plumbed - first:.3f} s after the transition")
        assert plumbed - first <= PLUMB_BOUND, f"{plumbed - first:.3f} s\n{backup.describe()}"
        assert len(macvlans(backup)) == COUNT

        assert backup.terminate(timeout=30.0) == 0, backup.describe()
        assert macvlans(backup) == [], backup.describe()
    finally:
        mon_b.stop()
