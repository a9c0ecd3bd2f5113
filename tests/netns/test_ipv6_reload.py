"""End-to-end: a reload that brings IPv6 to an interface a daemon already runs IPv4 on.

The interface's port then has its IPv4 receiver only; the reload opens the
IPv6 one (ff02::12) beside it without touching the running host, and the new
IPv6-only host advertises from the interface's link-local address. Where the
interface has no IPv6 (disable_ipv6=1), the reload is refused and nothing
changes; once IPv6 is turned on there, the reload sees it (the port, opened
without IPv6, looks the link-local address up again). Default timers: a lone
host is MASTER about 3 s after it starts.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pycarp.client.request import request
from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, TomlDaemon, VHost
from tests.netns.observe import CLI_TIMEOUT, global_addresses, holds, link_local, tentative
from tests.netns.test_ipv6_netns import segment

pytestmark = pytest.mark.netns

ELECTION = 8.0  # a lone host: 3 s master-down (+ skew) and a margin
HEARD = 3.0  # a fresh backup hears the master, which advertises every second
PLUMBED = 3.0
SAME_SINCE = 0.3  # seconds two estimates of one `since` may differ (the queries' latency)

VIP4_NET = "198.51.100.100/24"
VIP6_NET = "2001:db8::200/64"
IPV4_HOST = VHost(1, (VIP4_NET,))
IPV6_HOST = VHost(2, (VIP6_NET,))


Snapshot = tuple[dict[int, dict[str, Any]], dict[int, float]]


def snapshot(daemon: TomlDaemon, *vhids: int) -> Snapshot:
    """The status (of `vhids` only, if given), and when each host entered its state on our
    monotonic clock (the daemon's `for` is measured on the same CLOCK_MONOTONIC)."""
    hosts = daemon.status()
    now = time.monotonic()
    if vhids:
        hosts = {vhid: hosts[vhid] for vhid in vhids}
    return hosts, {vhid: now - float(h["for"]) for vhid, h in hosts.items()}


def assert_untouched(before: Snapshot, after: Snapshot) -> None:
    """The same hosts, each in the same state since the same time, its counters carried on."""
    (hosts0, since0), (hosts1, since1) = before, after
    assert sorted(hosts1) == sorted(hosts0), (hosts0, hosts1)
    for vhid, was in hosts0.items():
        now = hosts1[vhid]
        assert (now["state"], now["reason"]) == (was["state"], was["reason"]), (was, now)
        assert abs(since1[vhid] - since0[vhid]) < SAME_SINCE, (was, now)
        assert now["transitions"] == was["transitions"], (was, now)  # no restart
        assert now["adverts_sent"] >= was["adverts_sent"], (was, now)


def vip_line(host: Host, network: str) -> str | None:
    """The `ip -o -6 addr` line of one address on the host's eth0 (its flags), None if absent."""
    out = host.run("ip", "-o", "-6", "addr", "show", "dev", host.ifname).stdout
    return next((line for line in out.splitlines() if f" {network} " in line), None)


def reload_answer(daemon: TomlDaemon) -> dict[str, Any]:
    """The daemon's own answer to a reload (what `pycarp reload` renders as counts)."""
    return request(str(daemon.control_socket), {"command": "reload"}, timeout=CLI_TIMEOUT)


def disable_ipv6(host: Host, disabled: bool) -> None:
    value = "1" if disabled else "0"
    host.run("sysctl", "-q", "-w", f"net.ipv6.conf.{host.ifname}.disable_ipv6={value}")


def test_a_reload_adds_an_ipv6_vhid_beside_a_running_ipv4_one(lab: Lab, daemons: Daemons) -> None:
    hosts = segment(lab, a=11, b=12)
    a_host, b_host = hosts["a"], hosts["b"]
    a = daemons.toml(a_host, [IPV4_HOST]).start()
    a.wait_state(1, "MASTER", ELECTION)
    dump = daemons.describe
    assert wait_until(lambda: VIP4_NET in a_host.addresses(), PLUMBED), dump()
    before = snapshot(a)

    a.write_config([IPV4_HOST, IPV6_HOST])
    answer = reload_answer(a)
    assert answer["ok"] is True, (answer, dump())
    assert answer["added"] == [f"{a_host.ifname}/vhid 2"], answer
    assert answer["unchanged"] == [f"{a_host.ifname}/vhid 1"], answer
    assert answer["removed"] == [] and answer["changed"] == [], answer
    assert_untouched(before, snapshot(a, 1))

    # The new host is alone on ff02::12: MASTER from its link-local address, its VIP plumbed.
    new = a.wait_state(2, "MASTER", ELECTION)
    assert new["master"] == link_local(a_host), new
    assert new["addresses"] == ["2001:db8::200"], new
    assert wait_until(lambda: VIP6_NET in global_addresses(a_host, "inet6"), PLUMBED), dump()
    line = vip_line(a_host, VIP6_NET)
    assert line is not None and "tentative" not in line, line  # added without DAD
    assert not tentative(a_host), a_host.run("ip", "-6", "addr").stdout
    assert_untouched(before, snapshot(a, 1))

    # A second host with vhid 2 hears it: the IPv6 receiver is open, the adverts go out.
    b = daemons.toml(b_host, [VHost(2, (VIP6_NET,), advskew=100)]).start()
    b.wait_host(2, lambda h: h["state"] == "BACKUP" and h["master"] == link_local(a_host), HEARD)
    assert holds(lambda: b.status()[2]["state"] == "BACKUP", 3.0), dump()
    assert b.status()[2]["adverts_received"] >= 2, b.status()[2]
    assert a.status()[2]["state"] == "MASTER", a.status()[2]
    assert VIP6_NET not in global_addresses(b_host, "inet6"), dump()
    assert_untouched(before, snapshot(a, 1))
    assert VIP4_NET in a_host.addresses(), dump()


def test_a_reload_adding_ipv6_where_ipv6_is_disabled_changes_nothing(
    lab: Lab, daemons: Daemons
) -> None:
    hosts = segment(lab, a=11)
    a_host = hosts["a"]
    a = daemons.toml(a_host, [IPV4_HOST]).start()  # IPv6 was on when it opened eth0
    a.wait_state(1, "MASTER", ELECTION)
    dump = daemons.describe
    assert wait_until(lambda: VIP4_NET in a_host.addresses(), PLUMBED), dump()
    disable_ipv6(a_host, True)
    assert wait_until(lambda: link_local(a_host) is None, 3.0), a_host.run("ip", "addr").stdout
    before = snapshot(a)

    a.write_config([IPV4_HOST, IPV6_HOST])
    refused = a.reload()
    assert refused.returncode == 1, (refused, dump())
    error = refused.stderr
    assert "pycarp reload: error:" in error, error
    assert f"{a_host.ifname} has no IPv6 link-local address" in error, error
    assert_untouched(before, snapshot(a))
    assert VIP6_NET not in global_addresses(a_host, "inet6"), dump()
    assert holds(lambda: a.status()[1]["state"] == "MASTER", 2.0), dump()
    assert_untouched(before, snapshot(a))
    assert VIP4_NET in a_host.addresses() and a.alive(), dump()


def test_a_reload_adds_ipv6_once_it_is_enabled_on_the_interface(lab: Lab, daemons: Daemons) -> None:
    hosts = segment(lab, a=11, b=12)
    a_host, b_host = hosts["a"], hosts["b"]
    disable_ipv6(a_host, True)
    a = daemons.toml(a_host, [IPV4_HOST]).start()  # eth0 opened without IPv6
    a.wait_state(1, "MASTER", ELECTION)
    dump = daemons.describe
    disable_ipv6(a_host, False)
    assert wait_until(lambda: link_local(a_host) is not None and not tentative(a_host), 5.0), dump()
    before = snapshot(a)

    a.write_config([IPV4_HOST, IPV6_HOST])
    done = a.reload()
    assert done.returncode == 0, (done, dump())
    assert done.stdout.splitlines() == [
        "reloaded: 1 added, 0 removed, 0 changed, 1 unchanged",
        f"  added    {a_host.ifname}/vhid 2",
    ], done.stdout
    new = a.wait_state(2, "MASTER", ELECTION)
    assert new["master"] == link_local(a_host), new
    assert wait_until(lambda: VIP6_NET in global_addresses(a_host, "inet6"), PLUMBED), dump()
    b = daemons.toml(b_host, [VHost(2, (VIP6_NET,), advskew=100)]).start()
    b.wait_host(2, lambda h: h["state"] == "BACKUP" and h["master"] == link_local(a_host), HEARD)
    assert_untouched(before, snapshot(a, 1))
