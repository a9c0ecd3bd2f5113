"""Wire format: the CARP header, the IPv4 header around it, Ethernet frames.

Decoding never raises anything but PacketError, whatever the input.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

from pycarp.core.errors import DropReason, PacketError

Address = IPv4Address | IPv6Address  # BSD CARP speaks both families
PROTO_CARP = 112
VERSION = 2
TYPE_ADVERTISEMENT = 1
AUTHLEN = 7  # counter + digest, in 32-bit words
CARP_LEN = 36
COUNTER_MODULUS = 1 << 64  # the counter is an unsigned 64-bit field
IP_HEADER_LEN = 20
TTL = 255
TOS_LOWDELAY = 0x10
ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
BROADCAST_MAC = b"\xff" * 6

_CARP = struct.Struct("!BBBBBBH8s20s")
# Packets come from a few addresses: make each IPv4Address once, not per packet.
_address = lru_cache(maxsize=1024)(IPv4Address)
_IPV4 = struct.Struct("!BBHHHBBH4s4s")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of data.

    The ones' complement sum of the 16-bit words is the data, read as one
    big-endian number, modulo 0xFFFF (2**16 is 1 modulo 0xFFFF), with 0xFFFF
    for a multiple of it: one C-level operation instead of a loop over words.
    """
    if len(data) % 2:
        data += b"\x00"
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF
    if total == 0:
        return 0 if number else 0xFFFF  # the sum is 0xFFFF, or 0 for all-zero data
    return ~total & 0xFFFF


class Advertisement(NamedTuple):  # a tuple: one is made for every packet received
    """A CARP advertisement as on the wire (the checksum is derived)."""

    vhid: int
    advbase: int
    advskew: int
    counter: int
    digest: bytes
    demote: int = 0
    version: int = VERSION
    type: int = TYPE_ADVERTISEMENT
    authlen: int = AUTHLEN

    def encode(self) -> bytes:
        fields = (
            (self.version << 4) | self.type,
            self.vhid,
            self.advskew,
            self.authlen,
            self.demote,
            self.advbase,
        )
        body = _CARP.pack(*fields, 0, self.counter.to_bytes(8, "big"), self.digest)
        return body[:6] + checksum(body).to_bytes(2, "big") + body[8:]


def decode(data: bytes) -> Advertisement:
    """Parse a CARP header (its first 36 bytes; ucarp ignores anything after)."""
    if len(data) < CARP_LEN:
        raise PacketError(DropReason.TOO_SHORT, f"{len(data)} bytes, a CARP header has 36")
    vt, vhid, advskew, authlen, demote, advbase, _, counter, digest = _CARP.unpack_from(data)
    version, kind = vt >> 4, vt & 0x0F
    if version != VERSION:
        raise PacketError(DropReason.BAD_VERSION, f"version {version}, expected {VERSION}")
    if kind != TYPE_ADVERTISEMENT:
        raise PacketError(DropReason.BAD_TYPE, f"type {kind}, expected {TYPE_ADVERTISEMENT}")
    if checksum(data[:CARP_LEN]) != 0:
        raise PacketError(DropReason.BAD_CHECKSUM, "bad CARP checksum")
    return Advertisement(
        vhid=vhid,
        advbase=advbase,
        advskew=advskew,
        counter=int.from_bytes(counter, "big"),
        digest=digest,
        demote=demote,
        authlen=authlen,
    )


class IPv4Header(NamedTuple):  # a tuple: made for every packet received, so cheap to make
    src: IPv4Address
    dst: IPv4Address
    ttl: int
    proto: int
    header_len: int
    total_len: int


def parse_ipv4(data: bytes) -> tuple[IPv4Header, bytes]:
    """Split an IPv4 datagram into its header and payload."""
    if len(data) < IP_HEADER_LEN:
        raise PacketError(DropReason.TOO_SHORT, f"{len(data)} bytes, shorter than an IP header")
    vihl, _tos, total, _id, _frag, ttl, proto, _sum, src, dst = _IPV4.unpack_from(data)
    if vihl >> 4 != 4:
        raise PacketError(DropReason.NOT_IPV4, f"IP version {vihl >> 4}")
    hlen = (vihl & 0x0F) * 4
    if hlen < IP_HEADER_LEN or hlen > len(data):
        raise PacketError(DropReason.BAD_LENGTH, f"IP header length {hlen}")
    # Raw sockets on some systems rewrite total_len; trust the buffer, not the field.
    header = IPv4Header(_address(src), _address(dst), ttl, proto, hlen, total)
    return header, data[hlen:]


def encode_ipv4(
    src: IPv4Address, dst: IPv4Address, payload: bytes, *, ident: int, ttl: int = TTL
) -> bytes:
    """An IPv4 datagram as ucarp sends it: TOS low-delay, DF set, protocol 112."""
    return ipv4_header(src, dst, len(payload), ident=ident, ttl=ttl) + payload


def ipv4_header(
    src: IPv4Address, dst: IPv4Address, payload_len: int, *, ident: int, ttl: int = TTL
) -> bytes:
    """The header of encode_ipv4(): the same for every advertisement of a host."""
    header = _IPV4.pack(
        0x45,
        TOS_LOWDELAY,
        IP_HEADER_LEN + payload_len,
        ident & 0xFFFF,
        0x4000,
        ttl,
        PROTO_CARP,
        0,
        src.packed,
        dst.packed,
    )
    return header[:10] + checksum(header).to_bytes(2, "big") + header[12:]


def multicast_mac(group: IPv4Address) -> bytes:
    """The Ethernet address an IPv4 multicast group maps to (RFC 1112)."""
    low = int(group) & 0x7FFFFF
    return b"\x01\x00\x5e" + low.to_bytes(3, "big")


def virtual_mac(vhid: int) -> bytes:
    """The source MAC ucarp sends its advertisements from."""
    return b"\x00\x00\x5e\x00\x00" + bytes((vhid,))


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + ethertype.to_bytes(2, "big") + payload


class Frame(NamedTuple):
    """A link-layer frame, its header as fields: what a platform's sender writes out.

    A sender that writes Ethernet itself sends encode(); one that can only
    send IP (illumos) hands the kernel the payload.
    """

    destination: bytes  # link address: a multicast MAC, broadcast, or one host's MAC
    source: bytes
    ethertype: int  # ETHERTYPE_IP, ETHERTYPE_ARP, ...
    payload: bytes

    def encode(self) -> bytes:
        """The frame as it goes on an Ethernet wire."""
        return ethernet(self.destination, self.source, self.ethertype, self.payload)


def gratuitous_arp(mac: bytes, address: IPv4Address) -> Frame:
    """An ARP request for our own address, broadcast, as ucarp sends it."""
    arp = struct.pack("!HHBBH", 1, ETHERTYPE_IP, 6, 4, 1)
    arp += mac + address.packed + mac + address.packed
    return Frame(BROADCAST_MAC, mac, ETHERTYPE_ARP, arp)
