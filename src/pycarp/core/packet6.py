"""Wire format of IPv6 CARP: the IPv6 header, ff02::12, unsolicited neighbour advertisements.

The CARP header is the IPv4 one (packet.py); its checksum covers only itself,
in both families. Decoding never raises anything but PacketError.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from ipaddress import IPv6Address
from typing import NamedTuple

from pycarp.core.errors import DropReason, PacketError
from pycarp.core.packet import (
    PROTO_CARP,
    TOS_LOWDELAY,
    TTL,
    Address,
    Frame,
    checksum,
    parse_ipv4,
)

ETHERTYPE_IPV6 = 0x86DD
IPV6_HEADER_LEN = 40
CARP_GROUP6 = IPv6Address("ff02::12")  # BSD CARP's IPv6 group, link-local scope
ALL_NODES = IPv6Address("ff02::1")
PROTO_ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
NA_OVERRIDE = 0x20000000  # the O flag: replace a cached link-layer address
OPTION_TARGET_LLADDR = 2

_IPV6 = struct.Struct("!IHBB16s16s")
_address = lru_cache(maxsize=1024)(IPv6Address)


class IPv6Header(NamedTuple):
    src: IPv6Address
    dst: IPv6Address
    hop_limit: int
    next_header: int


def ipv6_header(
    src: IPv6Address,
    dst: IPv6Address,
    payload_len: int,
    *,
    next_header: int = PROTO_CARP,
    hop_limit: int = TTL,
    traffic_class: int = TOS_LOWDELAY,
) -> bytes:
    """A fixed IPv6 header, no flow label; CARP's traffic class is low-delay, as BSD's."""
    first = (6 << 28) | (traffic_class << 20)
    return _IPV6.pack(first, payload_len, next_header, hop_limit, src.packed, dst.packed)


def parse_ipv6(data: bytes) -> tuple[IPv6Header, bytes]:
    """Split an IPv6 datagram (no extension headers) into its header and payload."""
    if len(data) < IPV6_HEADER_LEN:
        raise PacketError(DropReason.TOO_SHORT, f"{len(data)} bytes, shorter than an IPv6 header")
    first, _length, next_header, hop_limit, src, dst = _IPV6.unpack_from(data)
    if first >> 28 != 6:
        raise PacketError(DropReason.BAD_VERSION, f"IP version {first >> 28}, expected 6")
    header = IPv6Header(_address(src), _address(dst), hop_limit, next_header)
    return header, data[IPV6_HEADER_LEN:]


class Datagram(NamedTuple):
    """What the checks of a received datagram need, in either family."""

    source: Address
    destination: Address
    ttl: int  # IPv6: the hop limit
    proto: int  # IPv6: the next header
    payload: bytes


def parse_ip(data: bytes) -> Datagram:
    """An IPv4 or IPv6 datagram, by its version nibble."""
    if data[:1] and data[0] >> 4 == 6:
        six, payload = parse_ipv6(data)
        return Datagram(six.src, six.dst, six.hop_limit, six.next_header, payload)
    four, payload = parse_ipv4(data)
    return Datagram(four.src, four.dst, four.ttl, four.proto, payload)


def multicast_mac6(group: IPv6Address) -> bytes:
    """The Ethernet address of an IPv6 multicast group (RFC 2464): 33:33, its last 32 bits."""
    return b"\x33\x33" + group.packed[12:]


def pseudo_header_checksum(src: IPv6Address, dst: IPv6Address, proto: int, body: bytes) -> int:
    """The upper-layer checksum over the IPv6 pseudo-header and body (RFC 8200, 8.1)."""
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(body), proto)
    return checksum(pseudo + body)


def neighbour_advertisement(mac: bytes, source: IPv6Address, target: IPv6Address) -> Frame:
    """An unsolicited neighbour advertisement for `target` at `mac`, to all nodes.

    The override flag makes every neighbour replace the link-layer address it
    has cached for the target (RFC 4861, 7.2.6): the IPv6 gratuitous ARP.
    """
    fields = (ND_NEIGHBOR_ADVERT, 0, 0, NA_OVERRIDE, target.packed, OPTION_TARGET_LLADDR, 1, mac)
    body = struct.pack("!BBHI16sBB6s", *fields)
    total = pseudo_header_checksum(source, ALL_NODES, PROTO_ICMPV6, body)
    body = body[:2] + total.to_bytes(2, "big") + body[4:]
    header = ipv6_header(source, ALL_NODES, len(body), next_header=PROTO_ICMPV6, traffic_class=0)
    return Frame(multicast_mac6(ALL_NODES), mac, ETHERTYPE_IPV6, header + body)
