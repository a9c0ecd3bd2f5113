"""pycarp.lab.keepalived against the real keepalived: two VRRPv3 routers elect one master,
and the backup takes over when the master crashes or stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.lab import Lab
from pycarp.lab.keepalived import Instance, Keepalived
from pycarp.lab.wait import wait_until
from tests.netns.observe import ping_within

pytestmark = pytest.mark.netns

VRID = 61
VIP = "198.51.100.61"
ADVERT = 0.1  # master-down 3 x 0.1 s plus the skew
TAKEOVER = 3.0


def _pair(lab: Lab, tmp_path: Path) -> tuple[Keepalived, Keepalived]:
    lab.add_host("a", "198.51.100.11")
    lab.add_host("b", "198.51.100.12")
    lab.add_host("client", "198.51.100.10")

    def router(host_name: str, priority: int) -> Keepalived:
        vr = Instance(vrid=VRID, priority=priority, addresses=(f"{VIP}/32",), advert_int=ADVERT)
        host = lab.hosts[host_name]
        return Keepalived(host, tmp_path / host_name, [vr], router_id=host_name)

    return router("a", 200), router("b", 100)


def test_two_keepalived_elect_one_master_and_fail_over_on_sigkill(lab: Lab, tmp_path: Path) -> None:
    high, low = _pair(lab, tmp_path)
    checked = high.check_config()
    assert checked.returncode == 0, checked.stderr
    high.start()
    low.start()
    assert high.wait_state(VRID, "MASTER", TAKEOVER), high.tail()
    assert low.wait_state(VRID, "BACKUP", TAKEOVER), low.tail()
    assert high.has_addresses(VRID) and not low.has_addresses(VRID)
    assert ping_within(lab.hosts["client"], VIP)
    assert len(high.pids()) == 2 and high.vrrp_pid() in high.pids()

    high.kill()
    lab.hosts["a"].link_down()
    high.unplumb()
    assert not high.alive() and high.pids() == []
    assert low.wait_state(VRID, "MASTER", TAKEOVER), low.tail()
    assert wait_until(lambda: low.has_addresses(VRID), TAKEOVER)
    assert ping_within(lab.hosts["client"], VIP)


def test_a_stopped_master_hands_over_and_removes_its_address(lab: Lab, tmp_path: Path) -> None:
    high, low = _pair(lab, tmp_path)
    high.start()
    assert high.wait_state(VRID, "MASTER", TAKEOVER), high.tail()
    low.start()
    assert low.wait_state(VRID, "BACKUP", TAKEOVER), low.tail()
    assert high.stop() == 0
    assert high.transitions(VRID, since=high.started_at)[-1][1] == "STOP"
    assert not high.has_addresses(VRID)
    assert low.wait_state(VRID, "MASTER", TAKEOVER), low.tail()
    assert "sent 0 priority" in high.log()
