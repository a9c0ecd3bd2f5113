"""Unicast peers (FreeBSD's format): what a unicast host sends, whom it hears, what it refuses."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from pycarp.core import packet
from pycarp.core.actions import Reason, SendAdvertisement, SendUnicast, State, StateChanged
from pycarp.core.errors import ConfigError, DropReason
from pycarp.core.node import Node
from tests.helpers import datagram, links, make_advert, make_config, of_type

ME = "198.51.100.1"
PEER = IPv4Address("198.51.100.224")  # .224 is not multicast: the family's own rules
ROUTED = IPv4Address("203.0.113.7")


def config(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "srcip": ME,
        "addresses": "198.51.100.100",
        "peers": (PEER, ROUTED),
    }
    return make_config(**{**values, **overrides})


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"peers": (IPv4Address("224.0.0.18"),)}, "peers", "a multicast address"),
        ({"peers": (IPv4Address("255.255.255.255"),)}, "peers", "the broadcast address"),
        ({"peers": (IPv4Address(ME),)}, "peers", "this host's own srcip"),
        ({"peers": (IPv4Address("198.51.100.100"),)}, "peers", "a virtual address"),
        ({"peers": (PEER, PEER)}, "peers", "listed twice"),
        ({"min_ttl": 0}, "min_ttl", "outside 1..255"),
        ({"min_ttl": 256}, "min_ttl", "outside 1..255"),
        ({"nomcast": True}, "nomcast", "means nothing for a unicast host"),
    ],
)
def test_bad_peers_are_refused(overrides: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as raised:
        config(**overrides)
    assert raised.value.fields == (field,)


def started(**overrides: Any) -> Node:
    node = Node([config(**overrides)], counter=lambda: 0)
    node.start(now=0.0, links=links)
    return node


def test_a_unicast_master_advertises_to_each_peer_with_ttl_255() -> None:
    node = started()
    actions = node.on_timer(now=3.0)
    assert of_type(actions, SendAdvertisement) == []  # never to the group
    (sent,) = of_type(actions, SendUnicast)
    assert [peer for peer, _ in sent.datagrams] == [PEER, ROUTED]
    for peer, raw in sent.datagrams:
        header, payload = packet.parse_ipv4(raw)  # checks the header checksum
        assert (header.src, header.dst, header.ttl) == (IPv4Address(ME), peer, 255)
        assert packet.decode(payload) == sent.advert


def test_a_routed_peer_is_heard_and_an_unlisted_source_is_not() -> None:
    node = started()
    host = next(iter(node.hosts.values()))
    advert = make_advert(host.config, advskew=0)
    better = datagram(advert, src=ROUTED, dst=ME, ttl=254)  # one router on the way
    node.receive(better, interface="eth0", now=1.0)
    assert host.last_peer is not None and host.last_peer.address == ROUTED
    stranger = datagram(make_advert(host.config, counter=2), src="198.51.100.9", dst=ME)
    dropped = node.receive(stranger, interface="eth0", now=1.5)
    assert [d.reason.value for d in dropped] == ["peer"]
    assert node.host_drops[host.key][DropReason.NOT_PEER] == 1
    assert host.last_peer.address == ROUTED  # not moved by the stranger


def test_min_ttl_255_is_openbsds_strictness() -> None:
    node = started(min_ttl=255)
    host = next(iter(node.hosts.values()))
    routed = datagram(make_advert(host.config), src=ROUTED, dst=ME, ttl=254)
    dropped = node.receive(routed, interface="eth0", now=1.0)
    assert [d.reason.value for d in dropped] == ["ttl"] and dropped[0].key == host.key
    assert node.host_drops[host.key][DropReason.BAD_TTL] == 1
    assert node.interface_drops == {}  # the host's, not the interface's
    node.on_timer(now=3.0)
    assert host.state is State.MASTER  # it heard nobody


def test_a_multicast_host_still_needs_ttl_255_and_its_group() -> None:
    node = Node([make_config(srcip=ME, addresses="198.51.100.100")], counter=lambda: 0)
    node.start(now=0.0, links=links)
    host = next(iter(node.hosts.values()))
    routed = datagram(make_advert(host.config), src=PEER, ttl=254)
    assert [d.reason.value for d in node.receive(routed, interface="eth0", now=1.0)] == ["ttl"]
    to_me = datagram(make_advert(host.config, counter=3), src=PEER, dst=ME)
    assert node.receive(to_me, interface="eth0", now=1.1) == []  # not its group: ignored
    assert host.last_peer is None


def test_no_reachable_peer_holds_the_host_backup_and_probes_with_backoff() -> None:
    node = started()
    host = next(iter(node.hosts.values()))
    node.on_timer(now=3.0)
    assert host.state is State.MASTER
    said = node.send_result(host.key, ok=False, now=3.5, detail="198.51.100.224: No route")
    changed = [a for a in said if isinstance(a, StateChanged)]
    assert [(c.new, c.reason) for c in changed] == [(State.BACKUP, Reason.NO_PEER)]
    assert host.silent and host.next_deadline() == 4.5  # only the probe is due
    probe = of_type(node.on_timer(now=4.5), SendUnicast)
    assert [(p.advert.advbase, p.advert.advskew) for p in probe] == [(255, 255)]
    node.send_result(host.key, ok=False, now=4.5, detail="still no route")
    assert host.next_deadline() == 6.5  # backed off
    node.on_timer(now=6.5)
    node.send_result(host.key, ok=True, now=6.5)
    assert not host.silent and host.state is State.BACKUP
    assert host.next_deadline() == 6.5 + host.master_down_interval.total  # listening again
    advert = make_advert(host.config, counter=10**9)  # and it hears its peer as before
    node.receive(datagram(advert, src=PEER, dst=ME), interface="eth0", now=7.0)
    assert host.last_peer is not None and host.last_peer.at == 7.0
