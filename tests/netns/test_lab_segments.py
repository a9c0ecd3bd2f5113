"""The lab's second segment, its router and its multicast drop, checked without pycarp.

A router joins br0 (198.51.100.0/24) and br1 (203.0.113.0/24); forwarding
is on in its namespace only. drop_multicast() makes the bridges drop IPv4
multicast, which a ucarp pair notices: without advertisements both are MASTER.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from pycarp.lab import PREFIX, Lab, LabError, segments
from pycarp.lab.netns import Host, Router
from pycarp.lab.processes import alive, start_time
from tests.netns.daemons import Daemons

pytestmark = pytest.mark.netns

ROOT_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
ELECTION = 8.0  # ucarp: master-down 3 s (+ skew), and a margin
TTL = re.compile(r"bytes from [\d.]+: icmp_seq=\d+ ttl=(\d+)")


def _ip(*args: str) -> str:
    """What iproute2 itself says: the lab is checked with a tool other than its own."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _namespaces(prefix: str) -> list[str]:
    return [
        line.split()[0] for line in _ip("netns", "list").splitlines() if line.startswith(prefix)
    ]


def _reply_ttls(host: Host, ip: str) -> list[int]:
    """The TTL of each echo reply from ip (ping prints it)."""
    done = host.run("ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", ip, check=False)
    return [int(ttl) for ttl in TTL.findall(done.stdout)]


def _routed(lab: Lab) -> tuple[Host, Router, Host]:
    """a on br0, b on br1, router r between them; a and b route the other segment via r."""
    a = lab.add_host("a", "198.51.100.11")
    r = lab.add_router("r", {"br0": "198.51.100.1/24", "br1": "203.0.113.1/24"})
    b = lab.add_host("b", "203.0.113.12", segment="br1")
    a.add_route("203.0.113.0/24", "198.51.100.1")
    b.add_route("198.51.100.0/24", "203.0.113.1")
    return a, r, b


def _dropped(ruleset: str) -> int:
    """Packets counted by the multicast drop rule."""
    match = re.search(r"ip daddr 224\.0\.0\.0/4 counter packets (\d+) bytes \d+ drop", ruleset)
    assert match, ruleset
    return int(match[1])


def test_router_forwards_between_segments(lab: Lab) -> None:
    root_before = ROOT_IP_FORWARD.read_text()
    a = lab.add_host("a", "198.51.100.11")
    b = lab.add_host("b", "203.0.113.12", segment="br1")
    assert not a.ping(b.ip, timeout=0.3)  # no router, no route: two separate segments
    r = lab.add_router("r", {"br0": "198.51.100.1/24", "br1": "203.0.113.1/24"})
    a.add_route("203.0.113.0/24", "198.51.100.1")
    b.add_default_route("203.0.113.1")

    assert lab.segments == ["br0", "br1"]
    assert (b.segment, a.segment, r.segment) == ("br1", "br0", "br0")
    assert r.addresses() == ["198.51.100.1/24", "203.0.113.1/24"]
    assert [(k.segment, k.ifname, k.ip) for k in r.links.values()] == [
        ("br0", "eth0", "198.51.100.1"),
        ("br1", "eth1", "203.0.113.1"),
    ]
    # The ports are on their bridges, in the bridge namespace, nowhere in the root one.
    on_br1 = _ip("-n", lab.bridge_netns, "-o", "link", "show", "master", "br1")
    on_br0 = _ip("-n", lab.bridge_netns, "-o", "link", "show", "master", "br0")
    assert b.port in on_br1 and r.links["br1"].port in on_br1 and a.port not in on_br1
    assert a.port in on_br0 and r.links["br0"].port in on_br0
    root_links = _ip("-o", "link", "show")
    assert not any(f"{p}@" in root_links or f"{p}:" in root_links for p in r.bridge_ports())

    # One hop: a reply from b (TTL 64) arrives with 63; from the router itself with 64.
    assert _reply_ttls(a, b.ip) == [63, 63]
    assert _reply_ttls(b, a.ip) == [63, 63]
    assert _reply_ttls(a, r.links["br1"].ip) == [64, 64]
    # What a CARP advertisement (TTL 255) becomes: b answering with TTL 255 shows 254.
    b.run("sh", "-c", "echo 255 > /proc/sys/net/ipv4/ip_default_ttl")
    assert _reply_ttls(a, b.ip) == [254, 254]

    # Forwarding is on in the router's namespace only, and is what carries the pings.
    assert r.forwarding()
    assert not segments.ip_forward(a.netns) and not segments.ip_forward(b.netns)
    assert not segments.ip_forward(lab.bridge_netns)
    segments.set_ip_forward(r.netns, False)
    assert not r.forwarding()
    assert not a.ping(b.ip, timeout=0.3)
    segments.set_ip_forward(r.netns, True)
    assert a.ping(b.ip)
    assert ROOT_IP_FORWARD.read_text() == root_before


def test_router_fails_whole(lab: Lab) -> None:
    a, r, b = _routed(lab)
    assert a.ping(b.ip)
    r.cut()
    assert not a.ping(b.ip, timeout=0.3)
    assert not a.ping(r.ip, timeout=0.3) and not b.ping(r.links["br1"].ip, timeout=0.3)
    r.uncut()
    assert a.ping(b.ip, count=3)
    r.link_down()  # every link loses its carrier
    assert all(_operstate(r, link.ifname) != "up" for link in r.links.values())
    r.link_up()
    assert [_operstate(r, link.ifname) for link in r.links.values()] == ["up", "up"]
    assert a.ping(b.ip, count=3)


def _operstate(host: Host, ifname: str) -> str:
    return host.run("cat", f"/sys/class/net/{ifname}/operstate").stdout.strip()


def test_bad_segments_and_routers_are_refused(lab: Lab) -> None:
    with pytest.raises(ValueError, match="segment must match"):
        lab.add_host("a", "198.51.100.11", segment="eth0")
    with pytest.raises(ValueError, match="segment must match"):
        lab.add_router("r", {"br1": "203.0.113.1/24", "br-x": "198.51.100.1/24"})
    with pytest.raises(ValueError, match="two segments"):
        lab.add_router("r", {"br0": "198.51.100.1/24"})
    with pytest.raises(ValueError, match=r"a\.b\.c\.d/len"):
        lab.add_router("r", {"br0": "198.51.100.1", "br1": "203.0.113.1/24"})
    with pytest.raises(ValueError, match="lab addresses must be in"):
        lab.add_router("r", {"br0": "198.51.100.1/24", "br1": "192.0.2.1/24"})
    lab.add_host("r", "198.51.100.11")
    with pytest.raises(ValueError, match="already used"):
        lab.add_router("r", {"br0": "198.51.100.1/24", "br1": "203.0.113.1/24"})
    assert sorted(lab.hosts) == ["r"]
    assert lab.segments == ["br0"]  # nothing made by what was refused


def test_drop_multicast_splits_a_ucarp_pair_and_is_undone(
    lab: Lab, daemons: Daemons, ucarp_bin: str
) -> None:
    assert ucarp_bin
    a_host = lab.add_host("a", "198.51.100.11")
    b_host = lab.add_host("b", "198.51.100.12")
    assert segments.MCAST_TABLE not in lab.ruleset()
    lab.drop_multicast()
    lab.drop_multicast()  # idempotent: still one table, one rule
    rules = lab.ruleset()
    assert rules.count(f"table bridge {segments.MCAST_TABLE}") == 1, rules
    assert rules.count("ip daddr 224.0.0.0/4") == 1, rules
    # Only in the bridge namespace; unicast still crosses the bridge.
    assert segments.MCAST_TABLE not in segments.ruleset(a_host.netns)
    assert a_host.ping(b_host.ip)

    vhid, password, vip = 7, "segments", "198.51.100.107"
    a = daemons.peer(a_host, "ucarp", vhid=vhid, password=password, vip=vip).start()
    b = daemons.peer(b_host, "ucarp", vhid=vhid, password=password, vip=vip, advskew=100)
    b.start()
    assert a.wait_master(ELECTION), a.describe()
    assert b.wait_master(ELECTION), b.describe()  # it never heard a
    assert _dropped(lab.ruleset()) > 0

    lab.drop_multicast(False)
    assert segments.MCAST_TABLE not in lab.ruleset()
    # Advertisements flow again: b, the less preferred, steps down; a stays MASTER.
    assert b.wait_backup(ELECTION), b.describe()
    assert a.is_master(), a.describe()
    lab.drop_multicast(False)  # undoing twice is harmless
    assert segments.MCAST_TABLE not in lab.ruleset()


def test_close_leaves_no_namespace_and_no_forwarding() -> None:
    root_before = ROOT_IP_FORWARD.read_text()
    tag = secrets.token_hex(3)
    prefix = f"{PREFIX}{tag}-"
    with Lab(tag) as lab:
        a, r, b = _routed(lab)
        lab.drop_multicast()
        sleeper = r.spawn("sleep", "60")
        start = start_time(sleeper.pid)
        assert a.ping(b.ip)
        assert sorted(_namespaces(prefix)) == sorted(f"{prefix}{n}" for n in ("a", "b", "br", "r"))
        assert sorted(lab.namespaces) == sorted(_namespaces(prefix))
    assert _namespaces(prefix) == []
    assert lab.namespaces == []
    assert sleeper.poll() is not None and not alive(sleeper.pid, start)
    assert ROOT_IP_FORWARD.read_text() == root_before
    with pytest.raises(LabError, match="closed"):
        lab.drop_multicast()
    with pytest.raises(LabError, match="closed"):
        lab.add_router("r2", {"br0": "198.51.100.2/24", "br1": "203.0.113.2/24"})


def test_bridges_of_both_segments_flood_multicast_without_stp(lab: Lab) -> None:
    lab.add_host("b", "203.0.113.12", segment="br1")
    for bridge in ("br0", "br1"):
        [link] = json.loads(_ip("-n", lab.bridge_netns, "-d", "-j", "link", "show", bridge))
        info = link["linkinfo"]["info_data"]
        assert info["mcast_snooping"] == 0 and info["stp_state"] == 0, bridge
