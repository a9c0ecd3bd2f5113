"""IPv4 CARP with unicast peers (FreeBSD's format): one advertisement per peer,
and only advertisements from the peers heard.

The CARP header is the multicast one; the IP destination is the peer, the
TTL 255, and the datagram goes through the kernel's routing (to the peer on
this segment, or to a router on the way), so it leaves from the NIC's own
MAC. Gratuitous ARP still announces the virtual addresses on this segment.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from pycarp.core import packet
from pycarp.core.actions import HostKey, SendGratuitousArp, SendUnicast
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import DropReason, PacketError
from pycarp.core.packet import Advertisement


class UnicastWire:
    """Advertisements to each of config.peers; ARP announcements as on any IPv4 host."""

    def __init__(self, key: HostKey, config: VirtualHostConfig, *, mac: bytes, ident: int) -> None:
        self._key = key
        self._mac = mac
        self._addresses = config.addresses
        # Each peer's IP header, made once: only the destination (and checksum) differ.
        self._headers = tuple(
            (peer, packet.ipv4_header(config.srcip, peer, packet.CARP_LEN, ident=ident))
            for peer in config.peers
        )

    def advertisement(self, advert: Advertisement) -> SendUnicast:
        payload = advert.encode()
        datagrams = tuple((peer, header + payload) for peer, header in self._headers)
        return SendUnicast(self._key, advert, datagrams)

    def announcement(self) -> SendGratuitousArp:
        return SendGratuitousArp(self._key, self._mac, self._addresses)


def check_source(config: VirtualHostConfig, source: IPv4Address, ttl: int) -> None:
    """A unicast host hears its peers only, routed ones too (a TTL of min_ttl or more).

    PacketError when `source` or `ttl` will not do.
    """
    if source not in config.peers:
        raise PacketError(DropReason.NOT_PEER, "not one of its peers")
    if ttl < config.min_ttl:
        reason = f"TTL {ttl}, below min_ttl {config.min_ttl}"
        raise PacketError(DropReason.BAD_TTL, reason)
