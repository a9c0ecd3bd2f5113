"""IPv6 CARP in the core: the wire format, the digest, mixed hosts, the checks on receipt."""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from pycarp.core import packet, packet6
from pycarp.core.actions import (
    HostKey,
    Link,
    PacketDropped,
    SendAdvertisement,
    SendAnnouncement,
    SendUnicast,
    State,
    StateChanged,
)
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError, DropReason
from pycarp.core.node import Node
from pycarp.core.state import VirtualHost
from tests.helpers import MAC, PASSWORD, make_advert, make_config, of_type

LINK_LOCAL = IPv6Address("fe80::200:ff:fe00:1")
PEER_LL = IPv6Address("fe80::200:ff:fe00:2")
VIP6 = IPv6Address("2001:db8::50")
VIP6B = IPv6Address("2001:db8::51")
VIP4 = IPv4Address("198.51.100.50")
LINK6 = Link(MAC, True, LINK_LOCAL)


def v6(**overrides: Any) -> VirtualHostConfig:
    return make_config(**{"srcip": None, "addresses": (VIP6,), **overrides})


def mixed(**overrides: Any) -> VirtualHostConfig:
    values = {"srcip": "198.51.100.1", "addresses": (VIP6B, VIP4, VIP6), **overrides}
    return make_config(**values)


def datagram6(
    payload: bytes,
    *,
    src: IPv6Address = PEER_LL,
    dst: IPv6Address = packet6.CARP_GROUP6,
    hops: int = 255,
) -> bytes:
    return packet6.ipv6_header(src, dst, len(payload), hop_limit=hops) + payload


def started_node(config: VirtualHostConfig, link: Link = LINK6) -> Node:
    node = Node([config], counter=lambda: 0)
    node.start(now=0.0, links=lambda _: link)
    return node


# -- wire format --------------------------------------------------------------


def test_ipv6_header_round_trips() -> None:
    header = packet6.ipv6_header(LINK_LOCAL, packet6.CARP_GROUP6, 36, hop_limit=254)
    assert len(header) == 40
    assert header[0] >> 4 == 6 and (int.from_bytes(header[:4], "big") >> 20) & 0xFF == 0x10
    parsed, payload = packet6.parse_ipv6(header + bytes(36))
    assert parsed == packet6.IPv6Header(LINK_LOCAL, packet6.CARP_GROUP6, 254, 112)
    assert payload == bytes(36)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(bytes(39), DropReason.TOO_SHORT), (b"\x40" + bytes(39), DropReason.BAD_VERSION)],
)
def test_short_or_wrong_ipv6_headers_are_packet_errors(data: bytes, reason: DropReason) -> None:
    with pytest.raises(packet.PacketError) as caught:
        packet6.parse_ipv6(data)
    assert caught.value.reason is reason


def test_multicast_macs_follow_rfc_2464() -> None:
    assert packet6.multicast_mac6(packet6.CARP_GROUP6) == bytes.fromhex("333300000012")
    assert packet6.multicast_mac6(packet6.ALL_NODES) == bytes.fromhex("333300000001")


def test_neighbour_advertisement_is_unsolicited_with_override_and_a_valid_checksum() -> None:
    frame = packet6.neighbour_advertisement(MAC, LINK_LOCAL, VIP6)
    assert frame.destination == bytes.fromhex("333300000001")
    assert frame.source == MAC and frame.ethertype == 0x86DD
    header, body = packet6.parse_ipv6(frame.payload)
    assert header == packet6.IPv6Header(LINK_LOCAL, packet6.ALL_NODES, 255, 58)
    assert len(body) == 32 and body[0] == 136 and body[1] == 0
    flags = int.from_bytes(body[4:8], "big")
    assert flags == 0x20000000  # override; not solicited, not a router
    assert IPv6Address(body[8:24]) == VIP6
    assert body[24:26] == b"\x02\x01" and body[26:32] == MAC  # target link-layer address
    # a valid checksum sums the pseudo-header and the message to zero
    assert packet6.pseudo_header_checksum(LINK_LOCAL, packet6.ALL_NODES, 58, body) == 0


def test_the_digest_covers_ipv4_ascending_then_ipv6_ascending() -> None:
    config = mixed()
    counter = 0x0102030405060708
    message = bytes((2, 1, config.vhid)) + VIP4.packed + VIP6.packed + VIP6B.packed
    expected = hmac.new(PASSWORD, message + counter.to_bytes(8, "big"), hashlib.sha1).digest()
    host = VirtualHost(config, counter=0)
    assert host.signer.digest(counter) == expected


# -- the config --------------------------------------------------------------


def test_a_mixed_host_advertises_in_both_families_ipv4_first() -> None:
    assert mixed().versions == (4, 6)
    assert v6().versions == (6,)
    assert dict(v6(prefixes=(64,)).networks) == {VIP6: 64}
    assert dict(v6().networks) == {VIP6: 128}


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"srcip": "198.51.100.1"}, "srcip", "means nothing without IPv4"),
        ({"addresses": (VIP4, VIP6)}, "srcip", "required with IPv4"),
        ({"nomcast": True}, "nomcast", "ff02::12"),
        ({"prefixes": (129,)}, "prefixes", "outside 1..128"),
        ({"addresses": (IPv6Address("ff02::1"),)}, "addresses", "multicast"),
        ({"addresses": (IPv6Address("::1"),)}, "addresses", "loopback"),
        ({"addresses": (IPv6Address("::ffff:198.51.100.1"),)}, "addresses", "IPv4-mapped"),
        ({"peers": ("198.51.100.2",)}, "peers", "IPv4 peer, and no virtual address is IPv4"),
        ({"peers": ("fe80::2%eth1",)}, "peers", "not this virtual host's interface eth0"),
        ({"peers": ("2001:db8::2%eth0",)}, "peers", "only a link-local address has a scope"),
        ({"peers": ("ff02::12",)}, "peers", "multicast"),
        ({"peers": (str(VIP6),)}, "peers", "a virtual address"),
    ],
)
def test_ipv6_settings_that_cannot_work_name_their_field(
    overrides: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        v6(**overrides)
    assert caught.value.fields == (field,)
    assert says in caught.value.reason


def test_a_mixed_unicast_host_needs_a_peer_in_each_family() -> None:
    with pytest.raises(ConfigError) as caught:
        mixed(peers=("198.51.100.2",))
    assert caught.value.fields == ("peers",)
    assert "no IPv6 peer for the IPv6 virtual addresses" in caught.value.reason


def test_a_link_local_peer_loses_its_scope_and_keeps_its_interface() -> None:
    config = v6(peers=("fe80::2%eth0", "2001:db8::2"))
    assert config.peers == (IPv6Address("fe80::2"), IPv6Address("2001:db8::2"))


# -- what a host sends ------------------------------------------------------------


def test_an_ipv6_host_advertises_to_ff02_12_from_its_link_local_address() -> None:
    host = VirtualHost(v6(advskew=10), counter=0)
    host.start(now=0.0, link=LINK6)
    actions = host.on_timer(now=10.0)  # master-down: MASTER
    (send,) = of_type(actions, SendAdvertisement)
    (frame,) = send.frames
    assert frame.destination == bytes.fromhex("333300000012") and frame.source == MAC
    assert frame.ethertype == 0x86DD
    header, payload = packet6.parse_ipv6(frame.payload)
    assert header == packet6.IPv6Header(LINK_LOCAL, packet6.CARP_GROUP6, 255, 112)
    assert packet.decode(payload) == send.advert
    (announce,) = of_type(actions, SendAnnouncement)
    (na,) = announce.frames
    assert packet6.parse_ipv6(na.payload)[0].dst == packet6.ALL_NODES


def test_a_mixed_host_sends_one_advertisement_in_each_family_and_announces_all() -> None:
    host = VirtualHost(mixed(), counter=0)
    host.start(now=0.0, link=LINK6)
    actions = host.on_timer(now=10.0)
    (send,) = of_type(actions, SendAdvertisement)
    four, six = send.frames
    assert four.ethertype == 0x0800 and four.destination == packet.multicast_mac(
        packet.IPv4Address("224.0.0.18")
    )
    assert six.ethertype == 0x86DD
    assert four.payload[20:] == send.advert.encode()
    # the IPv6 one has the next counter: a peer hears each counter once, from anyone
    six_advert = packet.decode(six.payload[40:])
    assert six_advert.counter == send.advert.counter + 1
    assert six_advert._replace(counter=0, digest=b"") == send.advert._replace(counter=0, digest=b"")
    host_signer = VirtualHost(mixed(), counter=0).signer
    assert host_signer.verify(six_advert.counter, six_advert.digest)
    (announce,) = of_type(actions, SendAnnouncement)
    kinds = [f.ethertype for f in announce.frames]
    assert kinds == [0x86DD, 0x0806, 0x86DD]  # in the order of the addresses
    # and the second announcement, two advertisements later, says the same
    later = host.on_timer(now=20.0) + host.on_timer(now=30.0)
    assert of_type(later, SendAnnouncement) == [announce]


def test_unicast_ipv6_peers_get_the_carp_message_link_local_ones_scoped() -> None:
    host = VirtualHost(mixed(peers=("fe80::2", "198.51.100.2", "2001:db8::2")), counter=0)
    host.start(now=0.0, link=LINK6)
    (send,) = of_type(host.on_timer(now=10.0), SendUnicast)
    by_peer = dict(send.datagrams)
    four = by_peer[IPv4Address("198.51.100.2")]
    assert four[20:] == send.advert.encode() and packet.parse_ipv4(four)[0].ttl == 255
    six = send.advert._replace(counter=send.advert.counter + 1)
    six = six._replace(digest=host.signer.digest(six.counter))
    assert by_peer[IPv6Address("fe80::2%eth0")] == six.encode()
    assert by_peer[IPv6Address("2001:db8::2")] == six.encode()


# -- what a host hears ------------------------------------------------------------


def backup_of(config: VirtualHostConfig) -> tuple[Node, VirtualHost]:
    node = started_node(config)
    return node, node.hosts[HostKey(config.interface, config.vhid)]


def test_an_ipv6_advertisement_from_the_master_keeps_a_backup_listening() -> None:
    config = v6()
    node, host = backup_of(config)
    before = node.next_deadline()
    actions = node.receive(datagram6(make_advert(config).encode()), interface="eth0", now=1.0)
    assert not of_type(actions, PacketDropped)
    assert host.last_peer is not None and host.last_peer.address == PEER_LL
    assert before is not None and (node.next_deadline() or 0) > before


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"hops": 254}, DropReason.BAD_TTL),
    ],
)
def test_a_routed_ipv6_advertisement_is_dropped(edit: dict[str, Any], reason: DropReason) -> None:
    config = v6()
    node, _ = backup_of(config)
    actions = node.receive(
        datagram6(make_advert(config).encode(), **edit), interface="eth0", now=1.0
    )
    (drop,) = of_type(actions, PacketDropped)
    assert drop.reason is reason


def test_ipv6_advertisements_to_another_group_or_for_an_ipv4_host_are_ignored() -> None:
    config = v6()
    node, host = backup_of(config)
    other = datagram6(make_advert(config).encode(), dst=IPv6Address("ff02::13"))
    assert node.receive(other, interface="eth0", now=1.0) == []
    four = make_config(addresses=(VIP4,))
    node4, host4 = backup_of(four)
    assert node4.receive(datagram6(make_advert(four).encode()), interface="eth0", now=1.0) == []
    assert host.adverts_received == host4.adverts_received == 0


def test_our_own_link_local_address_is_our_own_advertisement() -> None:
    config = v6()
    node, host = backup_of(config)
    own = datagram6(make_advert(config).encode(), src=LINK_LOCAL)
    assert node.receive(own, interface="eth0", now=1.0) == []
    assert host.adverts_received == 0


def test_a_unicast_ipv6_host_hears_only_its_peers() -> None:
    config = v6(peers=("fe80::200:ff:fe00:2",))
    node, host = backup_of(config)
    message = make_advert(config).encode()
    heard = node.receive(datagram6(message, dst=LINK_LOCAL), interface="eth0", now=1.0)
    assert not of_type(heard, PacketDropped) and host.adverts_received == 1
    stranger = datagram6(message, src=IPv6Address("fe80::9"), dst=LINK_LOCAL)
    (drop,) = of_type(node.receive(stranger, interface="eth0", now=1.1), PacketDropped)
    assert drop.reason is DropReason.NOT_PEER and drop.source == IPv6Address("fe80::9")


def test_a_mixed_master_leaves_equal_ties_to_the_ipv4_advertisements() -> None:
    """A lower link-local address must not win what the higher IPv4 one lost."""
    config = mixed(srcip="198.51.100.1")
    node, host = backup_of(config)
    node.on_timer(now=10.0)
    assert host.state is State.MASTER
    message = make_advert(config, counter=9).encode()
    lower_ll = datagram6(message, src=IPv6Address("fe80::1"))  # below ours
    actions = node.receive(lower_ll, interface="eth0", now=10.5)
    assert not of_type(actions, StateChanged) and host.state is State.MASTER
    # the IPv4 advertisement of a lower address (ucarp's order: last octet first) wins
    four = packet.encode_ipv4(
        IPv4Address("198.51.100.0"),
        IPv4Address("224.0.0.18"),
        make_advert(config, counter=10).encode(),
        ident=1,
    )
    actions = node.receive(four, interface="eth0", now=10.6)
    assert [a.new for a in of_type(actions, StateChanged)] == [State.BACKUP]


def test_a_demoted_mixed_master_says_so_in_both_families() -> None:
    host = VirtualHost(mixed(track=("web",)), counter=0)
    host.start(now=0.0, link=LINK6)
    host.on_timer(now=10.0)
    assert host.state is State.MASTER
    (send,) = of_type(host.set_demotion(1, now=10.5), SendAdvertisement)
    four, six = send.frames
    for message in (four.payload[20:], six.payload[40:]):
        advert = packet.decode(message)
        assert (advert.demote, advert.advskew) == (1, 100)  # the demote byte and the penalty
