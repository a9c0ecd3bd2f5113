"""End-to-end: IPv6 virtual addresses (alone, and mixed with IPv4 in one vhid), in namespaces.

Hosts on one segment, default timers (advbase 1, deadratio 3): a lone host
is MASTER about 3 s after it starts, a backup takes over 3 s (+ skew) after
the last advertisement it heard. Advertisements go to ff02::12 with hop
limit 255 from the link-local address; a new master tells the segment with
an unsolicited neighbour advertisement (override flag), so a client that
cached the old master's MAC follows at once.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from tests.netns.daemons import Daemons, TomlDaemon, VHost
from tests.netns.observe import (
    Tcpdump,
    global_addresses,
    holds,
    link_local,
    neighbour_mac,
    pycarp_cli,
    tentative,
)

pytestmark = pytest.mark.netns

ELECTION = 8.0  # a lone host: 3 s master-down (+ skew) and a margin
TAKEOVER = 7.0  # a backup once the master is gone: 3 s (+ skew) and a margin
HEARD = 3.0  # a fresh backup hears the master, which advertises every second
FOLLOWS = 1.5  # the client's neighbour entry moves with the announcement
PLUMBED = 3.0

VHID = 6
VIP6 = "2001:db8::100"
VIP6_NET = f"{VIP6}/64"
VIP4_NET = "198.51.100.100/24"
CLIENT6 = "2001:db8::c/64"


def segment(lab: Lab, **last: int) -> dict[str, Host]:
    hosts = {role: lab.add_host(role, f"198.51.100.{n}") for role, n in last.items()}
    # The link-local addresses must have passed DAD before they are used as sources.
    assert wait_until(lambda: not any(tentative(h) for h in hosts.values()), 5.0)
    return hosts


def add_client(client: Host) -> None:
    client.run("ip", "-6", "addr", "add", CLIENT6, "dev", client.ifname, "nodad")


def state(daemon: TomlDaemon) -> str:
    return str(daemon.status()[VHID]["state"])


def ipv6_only(advskew: int = 0, preempt: bool = False) -> VHost:
    return VHost(VHID, (VIP6_NET,), advskew=advskew, preempt=preempt)


def capture(host: Host, tmp_path: Path, name: str, expression: str) -> Tcpdump:
    return Tcpdump(host, tmp_path / f"{name}.txt", expression, promiscuous=False).start(limit=30)


def test_an_ipv6_vip_fails_over_and_the_client_follows(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    hosts = segment(lab, a=11, b=12, c=13)
    a_host, b_host, client = hosts["a"], hosts["b"], hosts["c"]
    add_client(client)
    a = daemons.toml(a_host, [ipv6_only()]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b = daemons.toml(b_host, [ipv6_only(advskew=100)]).start()
    b.wait_host(VHID, lambda h: h["state"] == "BACKUP" and h["master"] == link_local(a_host), HEARD)
    dump = daemons.describe
    assert wait_until(lambda: VIP6_NET in global_addresses(a_host, "inet6"), PLUMBED), dump()
    assert not tentative(a_host), "the VIP was added without nodad"
    assert VIP6_NET not in global_addresses(b_host, "inet6")

    # The BACKUP never answers a neighbour solicitation for the VIP.
    from_b = capture(
        client, tmp_path, "na-from-b", f"icmp6 and ip6[40] == 136 and ether src {b_host.mac()}"
    )
    try:
        client.run("ip", "-6", "neigh", "flush", "dev", client.ifname)
        assert client.ping(VIP6, count=2), dump()
        assert neighbour_mac(client, VIP6) == a_host.mac().lower()
    finally:
        from_b.stop()
    assert [line for line in from_b.lines() if line.strip()] == [], from_b.lines()

    # On the wire: advertisements to ff02::12, hop limit 255, from A's link-local address.
    adverts = capture(b_host, tmp_path, "adverts", "ip6 proto 112 and ip6[7] == 255")  # hop limit
    try:
        assert wait_until(lambda: len(adverts.lines()) >= 2, 3.0)
    finally:
        adverts.stop()
    line = adverts.lines()[0]
    assert f"{link_local(a_host)} > ff02::12" in line and "33:33:00:00:00:12" in line, line

    nas = capture(client, tmp_path, "na", "icmp6 and ip6[40] == 136")
    a.kill()  # SIGKILL, and the host goes silent: a dying host
    a_host.link_down()
    died = time.monotonic()
    took = b.wait_state(VHID, "MASTER", TAKEOVER)
    assert time.monotonic() - died <= TAKEOVER, took
    assert wait_until(lambda: VIP6_NET in global_addresses(b_host, "inet6"), PLUMBED), dump()
    # The unsolicited neighbour advertisement moves the client's cache without asking.
    assert wait_until(lambda: neighbour_mac(client, VIP6) == b_host.mac().lower(), FOLLOWS), dump()
    assert client.ping(VIP6, count=1), dump()
    unsolicited = f"{b_host.mac().lower()} > 33:33:00:00:00:01"

    def announced() -> list[str]:
        return [ln for ln in nas.lines() if unsolicited in ln and f"tgt is {VIP6}," in ln]

    # at the takeover, and the second two advertisements later
    assert wait_until(lambda: len(announced()) >= 2, 6.0), nas.lines()
    nas.stop()
    assert all("> ff02::1: ICMP6" in line for line in announced()), announced()


def test_a_mixed_vhid_fails_over_as_one(lab: Lab, daemons: Daemons) -> None:
    hosts = segment(lab, a=11, b=12, c=13)
    a_host, b_host, client = hosts["a"], hosts["b"], hosts["c"]
    add_client(client)
    mixed_a = VHost(VHID, (VIP4_NET, VIP6_NET))
    mixed_b = VHost(VHID, (VIP4_NET, VIP6_NET), advskew=100)
    a = daemons.toml(a_host, [mixed_a]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b = daemons.toml(b_host, [mixed_b]).start()
    # B hears A in both families; the IPv4 address is the one status shows.
    b.wait_host(
        VHID,
        lambda h: h["state"] == "BACKUP" and h["master"] in (a_host.ip, link_local(a_host)),
        HEARD,
    )
    dump = daemons.describe
    before = b.status()[VHID]["adverts_received"]
    assert holds(lambda: state(a) == "MASTER" and state(b) == "BACKUP", 4.0), dump()
    heard = b.status()[VHID]["adverts_received"] - before
    assert heard >= 2 * 3, (heard, b.status()[VHID], dump())  # one in each family every second
    assert wait_until(
        lambda: VIP6_NET in global_addresses(a_host, "inet6") and VIP4_NET in a_host.addresses(),
        PLUMBED,
    ), dump()
    assert client.ping("198.51.100.100") and client.ping(VIP6), dump()

    assert a.terminate() == 0, a.describe()  # a graceful stop: the hand-over
    took = b.wait_state(VHID, "MASTER", TAKEOVER)
    assert took["reason"] != "", took
    assert wait_until(
        lambda: VIP6_NET in global_addresses(b_host, "inet6") and VIP4_NET in b_host.addresses(),
        PLUMBED,
    ), dump()
    assert not {VIP4_NET, VIP6_NET} & global_addresses(a_host)
    assert wait_until(lambda: neighbour_mac(client, VIP6) == b_host.mac().lower(), FOLLOWS), dump()
    assert client.ping("198.51.100.100") and client.ping(VIP6), dump()


def test_a_unicast_ipv6_pair_with_link_local_peers(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    lab.drop_multicast()  # ff02::12 too: only unicast gets through
    hosts = segment(lab, a=11, b=12)
    a_host, b_host = hosts["a"], hosts["b"]
    a_ll, b_ll = link_local(a_host), link_local(b_host)
    peer_of_a = VHost(VHID, (VIP6_NET,), extra=(f'peers = ["{b_ll}%{b_host.ifname}"]',))
    peer_of_b = VHost(VHID, (VIP6_NET,), advskew=100, extra=(f'peers = ["{a_ll}"]',))
    a = daemons.toml(a_host, [peer_of_a]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    b = daemons.toml(b_host, [peer_of_b]).start()
    b.wait_host(VHID, lambda h: h["state"] == "BACKUP" and h["master"] == a_ll, HEARD)
    dump = daemons.describe
    unicast_255 = f"ip6 proto 112 and dst host {b_ll} and ip6[7] == 255"
    to_peer = capture(a_host, tmp_path, "to-peer", unicast_255)
    try:
        assert holds(lambda: state(a) == "MASTER" and state(b) == "BACKUP", 4.0), dump()
    finally:
        to_peer.stop()
    assert len(to_peer.lines()) >= 3, to_peer.lines()
    assert b.status()[VHID]["peers"] == [a_ll]
    assert b.status()[VHID]["dropped"] == {}

    a.kill()
    a_host.link_down()
    took = b.wait_state(VHID, "MASTER", TAKEOVER)
    assert took["reason"] == "no advertisement within the master-down interval", took
    assert wait_until(lambda: VIP6_NET in global_addresses(b_host, "inet6"), PLUMBED), dump()


def test_tshark_decodes_the_ipv6_advertisements_as_carp(
    lab: Lab, daemons: Daemons, tmp_path: Path
) -> None:
    hosts = segment(lab, a=11, b=12)
    a = daemons.toml(hosts["a"], [VHost(VHID, (VIP4_NET, VIP6_NET))]).start()
    a.wait_state(VHID, "MASTER", ELECTION)
    pcap = tmp_path / "adverts.pcap"
    hosts["b"].run("timeout", "3.5", "tcpdump", "-p", "-i", hosts["b"].ifname, "-w", str(pcap),
                   "-c", "6", "ip6 proto 112 or ip proto 112", check=False)  # fmt: skip
    fields = ["ip.version", "ipv6.hlim", "ipv6.dst", "carp.version", "carp.type", "carp.vhid"]
    fields += ["carp.checksum.status"]
    # Wireshark gives protocol 112 to VRRP; its CARP heuristic, asked first, must claim them.
    heuristic = ["-o", "ip.try_heuristic_first:TRUE", "-o", "ipv6.try_heuristic_first:TRUE"]
    argv = ["tshark", "-r", str(pcap), *heuristic, "-T", "fields", "-E", "separator=,"]
    argv += ["-Y", "carp"]
    for name in fields:
        argv += ["-e", name]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split(",") for line in done.stdout.splitlines() if line]
    six = [r for r in rows if r[2] == "ff02::12"]
    four = [r for r in rows if r[2] == ""]
    assert len(six) >= 2 and len(four) >= 2, done.stdout
    good = "1"  # Wireshark's PROTO_CHECKSUM_E_GOOD
    assert all(r[1:] == ["255", "ff02::12", "2", "1", str(VHID), good] for r in six), six
    assert all(r[3:] == ["2", "1", str(VHID), good] for r in four), four


def test_ipv6_addresses_on_an_interface_without_ipv6_are_refused(
    lab: Lab, daemons: Daemons
) -> None:
    hosts = segment(lab, a=11)
    a_host = hosts["a"]
    a_host.run("sysctl", "-q", "-w", f"net.ipv6.conf.{a_host.ifname}.disable_ipv6=1")
    a = daemons.toml(a_host, [ipv6_only()])
    checked = pycarp_cli(a_host, "check-config", str(a.config_path))
    assert checked.returncode != 0
    assert "addresses" in checked.stderr and "no IPv6 link-local address" in checked.stderr, checked
    a.start(wait=False)
    assert a.wait(10.0) == 2, a.describe()  # the exit status of a bad configuration
    assert "no IPv6 link-local address" in a.log(), a.describe()
