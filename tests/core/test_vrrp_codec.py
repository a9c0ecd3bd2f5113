"""VRRPv3 on the wire: the message, its pseudo-header checksum, what a node does on receipt,
and what a VRRP host sends (frames, MACs, plumbing)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycarp.core import packet, packet6, vrrp
from pycarp.core.actions import (
    AddAddresses,
    Link,
    PacketDropped,
    RemoveAddresses,
    SendAdvertisement,
    SendAnnouncement,
    State,
)
from pycarp.core.config import VirtualHostConfig, with_protocol_defaults
from pycarp.core.errors import DropReason, PacketError
from pycarp.core.node import Node
from pycarp.core.packet import Address
from pycarp.core.vrrp import VrrpAdvertisement
from tests.helpers import MAC, of_type, rfc1071

SRC4 = IPv4Address("198.51.100.1")
PEER4 = IPv4Address("198.51.100.2")
GROUP4 = IPv4Address("224.0.0.18")
VIP4 = IPv4Address("198.51.100.100")
LINK4 = Link(MAC)
LINK_LOCAL = IPv6Address("fe80::200:ff:fe00:1")
PEER_LL = IPv6Address("fe80::200:ff:fe00:2")
GROUP6 = IPv6Address("ff02::12")
VIP6 = IPv6Address("2001:db8::100")
VRID = 7
PROPERTY = settings(max_examples=200, deadline=None)


def pseudo(source: Address, destination: Address, length: int) -> bytes:
    """RFC 5798 5.2.8's pseudo-header, written out field by field."""
    if source.version == 6:  # RFC 8200 8.1: length (32 bits), three zero bytes, next header
        return source.packed + destination.packed + length.to_bytes(4, "big") + bytes(3) + b"\x70"
    return source.packed + destination.packed + b"\x00\x70" + length.to_bytes(2, "big")


def vrrp_config(**overrides: Any) -> VirtualHostConfig:
    """A VRRP vhost as a front-end builds it: preempt and the virtual MAC by default."""
    values: dict[str, Any] = {
        "interface": "eth0",
        "srcip": SRC4,
        "vhid": VRID,
        "addresses": (VIP4,),
        "protocol": "vrrp3",
        **overrides,
    }
    return with_protocol_defaults(VirtualHostConfig(**values), overrides)


def vrrp6_config(**overrides: Any) -> VirtualHostConfig:
    return vrrp_config(**{"srcip": None, "addresses": (VIP6,), **overrides})


def started(config: VirtualHostConfig, link: Link = LINK4) -> Node:
    node = Node([config], counter=lambda: 0)
    node.start(now=0.0, links=lambda _: link)
    return node


def datagram4(
    message: bytes,
    *,
    src: IPv4Address = PEER4,
    dst: IPv4Address = GROUP4,
    ttl: int = 255,
) -> bytes:
    return packet.ipv4_header(src, dst, len(message), ident=0x4242, ttl=ttl) + message


def datagram6(
    message: bytes, *, src: IPv6Address = PEER_LL, dst: IPv6Address = GROUP6, hops: int = 255
) -> bytes:
    return packet6.ipv6_header(src, dst, len(message), hop_limit=hops) + message


def advert4(priority: int = 100, interval: int = 100) -> VrrpAdvertisement:
    return VrrpAdvertisement(VRID, priority, interval, (VIP4,))


# -- the message ----------------------------------------------------------------------


def test_an_ipv4_advertisement_is_rfc_5798s_layout() -> None:
    message = VrrpAdvertisement(VRID, 100, 100, (VIP4, PEER4)).encode(SRC4, GROUP4)
    assert len(message) == 8 + 2 * 4
    # version 3, type 1; VRID; priority; count; rsvd + max adver int 100 (0x064)
    assert message[:6] == bytes([0x31, VRID, 100, 2, 0x00, 0x64])
    assert message[8:] == VIP4.packed + PEER4.packed


def test_the_checksum_is_rfc_1071s_over_the_ipv4_pseudo_header() -> None:
    message = VrrpAdvertisement(VRID, 100, 100, (VIP4,)).encode(SRC4, GROUP4)
    zeroed = message[:6] + b"\x00\x00" + message[8:]
    expected = rfc1071(pseudo(SRC4, GROUP4, len(message)) + zeroed)
    assert int.from_bytes(message[6:8], "big") == expected
    # Summed with its checksum, the whole comes to 0xFFFF: its complement is 0.
    assert rfc1071(pseudo(SRC4, GROUP4, len(message)) + message) == 0
    # The pseudo-header counts: the same message without it sums to something else.
    assert rfc1071(zeroed) != expected


def test_the_checksum_is_rfc_1071s_over_the_ipv6_pseudo_header() -> None:
    message = VrrpAdvertisement(VRID, 200, 50, (VIP6,)).encode(LINK_LOCAL, GROUP6)
    assert len(message) == 8 + 16
    zeroed = message[:6] + b"\x00\x00" + message[8:]
    expected = rfc1071(pseudo(LINK_LOCAL, GROUP6, len(message)) + zeroed)
    assert int.from_bytes(message[6:8], "big") == expected
    assert vrrp.pseudo_header(LINK_LOCAL, GROUP6, 24) == pseudo(LINK_LOCAL, GROUP6, 24)
    assert vrrp.pseudo_header(SRC4, GROUP4, 12) == pseudo(SRC4, GROUP4, 12)


def test_the_checksum_depends_on_the_source_address() -> None:
    advert = advert4()
    assert advert.encode(SRC4, GROUP4)[6:8] != advert.encode(PEER4, GROUP4)[6:8]
    with pytest.raises(PacketError) as caught:
        vrrp.decode(advert.encode(SRC4, GROUP4), PEER4, GROUP4)
    assert caught.value.reason is DropReason.BAD_CHECKSUM


def test_decode_reads_what_encode_wrote_in_both_families() -> None:
    four = VrrpAdvertisement(1, 255, 4095, (VIP4, PEER4))
    assert vrrp.decode(four.encode(SRC4, GROUP4), SRC4, GROUP4) == four
    six = VrrpAdvertisement(255, 1, 1, (VIP6, IPv6Address("2001:db8::101")))
    assert vrrp.decode(six.encode(LINK_LOCAL, GROUP6), LINK_LOCAL, GROUP6) == six


def test_the_reserved_bits_are_sent_as_zero_and_ignored_on_receipt() -> None:
    message = advert4(interval=0xF064).encode(SRC4, GROUP4)  # only 12 bits are the interval
    assert message[4:6] == b"\x00\x64"
    raw = bytearray(message)
    raw[4] |= 0xF0
    raw[6:8] = b"\x00\x00"
    raw[6:8] = rfc1071(pseudo(SRC4, GROUP4, len(raw)) + bytes(raw)).to_bytes(2, "big")
    assert vrrp.decode(bytes(raw), SRC4, GROUP4).interval == 100


def test_trailing_bytes_beyond_the_addresses_are_not_part_of_the_message() -> None:
    message = advert4().encode(SRC4, GROUP4)
    assert vrrp.decode(message + bytes(6), SRC4, GROUP4) == advert4()  # Ethernet padding


def round_trip(advert: VrrpAdvertisement, source: Address, group: Address) -> None:
    """Encoded from source to group: the length, the checksum by RFC 1071, decoded back."""
    message = advert.encode(source, group)
    assert len(message) == 8 + len(source.packed) * len(advert.addresses)
    assert int.from_bytes(message[6:8], "big") == rfc1071(
        pseudo(source, group, len(message)) + message[:6] + b"\x00\x00" + message[8:]
    )
    assert vrrp.decode(message, source, group) == advert


ipv4s = st.builds(IPv4Address, st.integers(min_value=0, max_value=2**32 - 1))
ipv6s = st.builds(IPv6Address, st.integers(min_value=0, max_value=2**128 - 1))


@PROPERTY
@given(
    vrid=st.integers(1, 255),
    priority=st.integers(0, 255),
    interval=st.integers(1, vrrp.MAX_INTERVAL),  # 0 is a drop: test_interval_0_is_dropped
    addresses=st.lists(ipv4s, min_size=1, max_size=16),
    source=ipv4s,
)
def test_ipv4_round_trip(
    vrid: int, priority: int, interval: int, addresses: list[IPv4Address], source: IPv4Address
) -> None:
    round_trip(VrrpAdvertisement(vrid, priority, interval, tuple(addresses)), source, GROUP4)


@PROPERTY
@given(
    vrid=st.integers(1, 255),
    priority=st.integers(0, 255),
    interval=st.integers(1, vrrp.MAX_INTERVAL),  # 0 is a drop: test_interval_0_is_dropped
    addresses=st.lists(ipv6s, min_size=1, max_size=8),
    source=ipv6s,
)
def test_ipv6_round_trip(
    vrid: int, priority: int, interval: int, addresses: list[IPv6Address], source: IPv6Address
) -> None:
    round_trip(VrrpAdvertisement(vrid, priority, interval, tuple(addresses)), source, GROUP6)


@PROPERTY
@given(offset=st.integers(0, 11), flip=st.integers(1, 255))
def test_any_corrupted_byte_is_refused(offset: int, flip: int) -> None:
    raw = bytearray(advert4().encode(SRC4, GROUP4))
    raw[offset] ^= flip
    with pytest.raises(PacketError) as caught:
        vrrp.decode(bytes(raw), SRC4, GROUP4)
    # the version and type nibbles are checked before the sum; the count changes the length
    assert caught.value.reason in (
        DropReason.BAD_VERSION,
        DropReason.BAD_TYPE,
        DropReason.BAD_LENGTH,
        DropReason.BAD_CHECKSUM,
    )
    if offset >= 4 or offset in (1, 2):
        assert caught.value.reason is DropReason.BAD_CHECKSUM


def test_a_corrupted_priority_is_a_bad_checksum() -> None:
    raw = bytearray(advert4().encode(SRC4, GROUP4))
    raw[2] = 255
    with pytest.raises(PacketError) as caught:
        vrrp.decode(bytes(raw), SRC4, GROUP4)
    assert caught.value.reason is DropReason.BAD_CHECKSUM


def _with(message: bytes, index: int, value: int) -> bytes:
    return message[:index] + bytes([value]) + message[index + 1 :]


GOOD4 = advert4().encode(SRC4, GROUP4)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DropReason.TOO_SHORT),
        (GOOD4[:7], DropReason.TOO_SHORT),
        (GOOD4[:11], DropReason.BAD_LENGTH),  # one address announced, three of its bytes here
        (_with(GOOD4, 3, 2), DropReason.BAD_LENGTH),  # two announced, one there
        (_with(GOOD4, 0, 0x21), DropReason.BAD_VERSION),  # VRRPv2 (or CARP)
        (_with(GOOD4, 0, 0x41), DropReason.BAD_VERSION),
        (_with(GOOD4, 0, 0x32), DropReason.BAD_TYPE),
        (_with(GOOD4, 0, 0x30), DropReason.BAD_TYPE),
        (_with(GOOD4, 7, GOOD4[7] ^ 0x01), DropReason.BAD_CHECKSUM),
    ],
    ids=["empty", "short", "cut", "count", "v2", "v4", "type2", "type0", "sum"],
)
def test_malformed_messages_are_refused_with_a_reason(data: bytes, reason: DropReason) -> None:
    with pytest.raises(PacketError) as caught:
        vrrp.decode(data, SRC4, GROUP4)
    assert caught.value.reason is reason


def test_an_ipv6_message_counts_addresses_of_16_bytes() -> None:
    message = VrrpAdvertisement(VRID, 100, 100, (VIP6,)).encode(LINK_LOCAL, GROUP6)
    with pytest.raises(PacketError) as caught:
        vrrp.decode(message[:20], LINK_LOCAL, GROUP6)  # room for one IPv4 address, not IPv6
    assert caught.value.reason is DropReason.BAD_LENGTH


@pytest.mark.parametrize(
    ("vrid", "version", "mac"),
    [
        (7, 4, "00005e000107"),
        (255, 4, "00005e0001ff"),
        (7, 6, "00005e000207"),
        (1, 6, "00005e000201"),
    ],
)
def test_the_virtual_mac_is_rfc_5798s(vrid: int, version: int, mac: str) -> None:
    assert vrrp.virtual_mac(vrid, version).hex() == mac


# -- a node receiving ---------------------------------------------------------------------


def test_a_vrrp_datagram_reaches_the_vrrp_host() -> None:
    node = started(vrrp_config(priority=50))
    (host,) = node.hosts.values()
    message = advert4(priority=100, interval=200).encode(PEER4, GROUP4)
    assert node.receive(datagram4(message), interface="eth0", now=1.0) == []
    assert host.adverts_received == 1 and node.drops == {}
    assert host.last_peer is not None
    assert (host.last_peer.address, host.last_peer.priority, host.last_peer.interval) == (
        PEER4,
        100,
        200,
    )
    assert host.master_interval == 2.0  # learnt from the master


def test_an_ipv6_vrrp_datagram_reaches_the_ipv6_vrrp_host() -> None:
    node = started(vrrp6_config(priority=50), Link(MAC, True, LINK_LOCAL))
    (host,) = node.hosts.values()
    message = VrrpAdvertisement(VRID, 100, 100, (VIP6,)).encode(PEER_LL, GROUP6)
    assert node.receive(datagram6(message), interface="eth0", now=1.0) == []
    assert host.adverts_received == 1 and node.drops == {}


def test_a_vrrp_datagram_with_ttl_254_is_a_bad_ttl_drop() -> None:
    node = started(vrrp_config())
    (host,) = node.hosts.values()
    message = advert4().encode(PEER4, GROUP4)
    (drop,) = node.receive(datagram4(message, ttl=254), interface="eth0", now=1.0)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.BAD_TTL
    assert drop.source == PEER4 and host.adverts_received == 0
    assert node.drops == {DropReason.BAD_TTL: 1}


def test_an_ipv6_vrrp_datagram_with_hop_limit_254_is_a_bad_ttl_drop() -> None:
    node = started(vrrp6_config(), Link(MAC, True, LINK_LOCAL))
    message = VrrpAdvertisement(VRID, 100, 100, (VIP6,)).encode(PEER_LL, GROUP6)
    (drop,) = node.receive(datagram6(message, hops=254), interface="eth0", now=1.0)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.BAD_TTL


def test_a_vrrp_datagram_to_another_group_is_ignored() -> None:
    node = started(vrrp_config())
    (host,) = node.hosts.values()
    other = IPv4Address("224.0.0.19")
    message = advert4().encode(PEER4, other)
    assert node.receive(datagram4(message, dst=other), interface="eth0", now=1.0) == []
    assert host.adverts_received == 0 and node.drops == {}


def test_a_vrrp_datagram_for_another_vrid_is_ignored() -> None:
    node = started(vrrp_config())
    message = VrrpAdvertisement(VRID + 1, 100, 100, (VIP4,)).encode(PEER4, GROUP4)
    assert node.receive(datagram4(message), interface="eth0", now=1.0) == []
    assert node.drops == {}


def test_a_vrrp_datagram_with_a_bad_checksum_is_the_hosts_drop() -> None:
    node = started(vrrp_config())
    (host,) = node.hosts.values()
    message = advert4().encode(SRC4, GROUP4)  # summed for another source
    (drop,) = node.receive(datagram4(message), interface="eth0", now=1.0)
    assert isinstance(drop, PacketDropped) and drop.reason is DropReason.BAD_CHECKSUM
    assert drop.key == host.key and node.host_drops[host.key] == {DropReason.BAD_CHECKSUM: 1}


def test_a_carp_advertisement_on_a_vrrp_vrid_is_another_protocol_not_a_drop() -> None:
    node = started(vrrp_config())
    carp = packet.Advertisement(vhid=VRID, advbase=1, advskew=0, counter=1, digest=bytes(20))
    assert node.receive(datagram4(carp.encode()), interface="eth0", now=1.0) == []
    assert node.drops == {} and node.hosts[next(iter(node.hosts))].adverts_received == 0


def test_an_ipv4_vrrp_datagram_on_an_ipv6_vrrp_host_is_another_router() -> None:
    node = started(vrrp6_config(), Link(MAC, True, LINK_LOCAL))
    message = advert4().encode(PEER4, GROUP4)
    assert node.receive(datagram4(message), interface="eth0", now=1.0) == []
    assert node.drops == {}


def test_our_own_vrrp_advertisement_looped_back_is_ignored() -> None:
    node = started(vrrp_config())
    message = advert4().encode(SRC4, GROUP4)
    assert node.receive(datagram4(message, src=SRC4), interface="eth0", now=1.0) == []
    assert node.drops == {}


# -- what a VRRP host sends --------------------------------------------------------------


def only_send(actions: list[Any]) -> SendAdvertisement:
    (send,) = of_type(actions, SendAdvertisement)
    return send


def test_an_owner_advertises_a_checksummed_ipv4_datagram_from_the_virtual_mac() -> None:
    node = Node([vrrp_config(priority=255)], counter=lambda: 0)
    actions = node.start(now=0.0, links=lambda _: Link(MAC))
    send = only_send(actions)
    assert send.advert == VrrpAdvertisement(VRID, 255, 100, (VIP4,))
    (frame,) = send.frames
    assert frame.source == vrrp.virtual_mac(VRID, 4) == bytes.fromhex("00005e000107")
    assert frame.destination == packet.multicast_mac(GROUP4)
    assert frame.ethertype == packet.ETHERTYPE_IP
    header, message = packet.parse_ipv4(frame.payload)
    assert (header.src, header.dst, header.ttl, header.proto) == (SRC4, GROUP4, 255, 112)
    assert header.total_len == 20 + 12
    assert vrrp.decode(message, SRC4, GROUP4) == send.advert  # summed with (srcip, group)
    assert int.from_bytes(message[6:8], "big") == rfc1071(
        pseudo(SRC4, GROUP4, 12) + message[:6] + b"\x00\x00" + message[8:]
    )


def test_an_ipv6_owner_advertises_from_its_link_local_address_to_ff02_12() -> None:
    node = Node([vrrp6_config(priority=255)], counter=lambda: 0)
    actions = node.start(now=0.0, links=lambda _: Link(MAC, True, LINK_LOCAL))
    send = only_send(actions)
    (frame,) = send.frames
    assert frame.source == bytes.fromhex("00005e000207")
    assert frame.destination == packet6.multicast_mac6(GROUP6)
    header, message = packet6.parse_ipv6(frame.payload)
    assert (header.src, header.dst, header.hop_limit) == (LINK_LOCAL, GROUP6, 255)
    assert vrrp.decode(message, LINK_LOCAL, GROUP6) == VrrpAdvertisement(VRID, 255, 100, (VIP6,))


def test_the_virtual_mac_carries_the_addresses_and_their_announcements() -> None:
    node = Node([vrrp_config(priority=255)], counter=lambda: 0)
    actions = node.start(now=0.0, links=lambda _: Link(MAC))
    virtual = bytes.fromhex("00005e000107")
    (add,) = of_type(actions, AddAddresses)
    assert add.mac == virtual and add.networks == ((VIP4, 32),)
    (announce,) = of_type(actions, SendAnnouncement)
    assert announce.mac == virtual
    (arp,) = announce.frames
    assert arp.source == virtual and arp.payload[8:14] == virtual  # the sender's hardware address
    stopping = node.shutdown(now=1.0, graceful=False)
    (remove,) = of_type(stopping, RemoveAddresses)
    assert remove.mac == virtual


def test_with_the_interfaces_mac_everything_comes_from_the_nic() -> None:
    node = Node([vrrp_config(priority=255, mac="interface")], counter=lambda: 0)
    actions = node.start(now=0.0, links=lambda _: Link(MAC))
    assert only_send(actions).frames[0].source == MAC
    (add,) = of_type(actions, AddAddresses)
    assert add.mac is None
    (announce,) = of_type(actions, SendAnnouncement)
    assert announce.mac == MAC


def test_a_vrrp_advertisement_from_one_node_reaches_another() -> None:
    owner = Node([vrrp_config(priority=255)], counter=lambda: 0)
    send = only_send(owner.start(now=0.0, links=lambda _: Link(MAC)))
    backup = started(vrrp_config(srcip=PEER4, priority=100))
    (host,) = backup.hosts.values()
    assert backup.receive(send.frames[0].payload, interface="eth0", now=0.5) == []
    assert host.adverts_received == 1 and host.state is State.BACKUP
    assert host.last_peer is not None and host.last_peer.priority == 255


def test_the_advertisement_length_counts_only_the_virtual_addresses() -> None:
    vips = (VIP4, IPv4Address("198.51.100.101"), IPv4Address("198.51.100.102"))
    node = Node([vrrp_config(priority=255, addresses=vips)], counter=lambda: 0)
    (frame,) = only_send(node.start(now=0.0, links=lambda _: Link(MAC))).frames
    header, message = packet.parse_ipv4(frame.payload)
    assert header.total_len == len(frame.payload) == 20 + 8 + 12
    assert struct.unpack_from("!B", message, 3) == (3,)
    assert vrrp.decode(message, SRC4, GROUP4).addresses == vips


def test_interval_0_is_dropped() -> None:
    """A master-down interval of 0 would make every backup take over at each advertisement."""
    src, dst = IPv4Address("198.51.100.1"), IPv4Address("224.0.0.18")
    message = vrrp.VrrpAdvertisement(7, 100, 0, (IPv4Address("198.51.100.100"),)).encode(src, dst)
    with pytest.raises(PacketError) as caught:
        vrrp.decode(message, src, dst)
    assert caught.value.reason is DropReason.BAD_INTERVAL
