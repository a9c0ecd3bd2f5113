"""CARP with unicast peers (FreeBSD's format): one advertisement per peer,
and only advertisements from the peers heard.

The CARP header is the multicast one; the IP destination is the peer, the
TTL (hop limit) 255, and the datagram goes through the kernel's routing (to
the peer on this segment, or to a router on the way), so it leaves from the
NIC's own MAC. Each family's advertisements go to that family's peers.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from pycarp.core import packet
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import DropReason, PacketError
from pycarp.core.packet import Address


class UnicastWire:
    """IPv4 advertisements to each IPv4 peer, whole datagrams with our own header."""

    def __init__(
        self, config: VirtualHostConfig, *, mac: bytes, link_local: IPv6Address | None, ident: int
    ) -> None:
        assert config.srcip is not None  # the config requires it with IPv4 addresses
        srcip = config.srcip
        # Each peer's IP header, made once: only the destination (and checksum) differ.
        self._headers = tuple(
            (peer, packet.ipv4_header(srcip, peer, packet.CARP_LEN, ident=ident))
            for peer in config.peers
            if isinstance(peer, IPv4Address)
        )

    def datagrams(self, message: bytes) -> tuple[tuple[Address, bytes], ...]:
        return tuple((peer, header + message) for peer, header in self._headers)


class Unicast6Wire:
    """IPv6 advertisements to each IPv6 peer: the CARP message, the kernel adds the header.

    A link-local peer is given its scope, the host's interface.
    """

    def __init__(
        self, config: VirtualHostConfig, *, mac: bytes, link_local: IPv6Address | None, ident: int
    ) -> None:
        self._peers = tuple(
            IPv6Address(f"{peer}%{config.interface}") if peer.is_link_local else peer
            for peer in config.peers
            if isinstance(peer, IPv6Address)
        )

    def datagrams(self, message: bytes) -> tuple[tuple[Address, bytes], ...]:
        return tuple((peer, message) for peer in self._peers)


def check_source(config: VirtualHostConfig, source: Address, ttl: int) -> None:
    """A unicast host hears its peers only, routed ones too (a TTL of min_ttl or more).

    PacketError when `source` or `ttl` will not do.
    """
    if source not in config.peers:
        raise PacketError(DropReason.NOT_PEER, "not one of its peers")
    if ttl < config.min_ttl:
        reason = f"TTL {ttl}, below min_ttl {config.min_ttl}"
        raise PacketError(DropReason.BAD_TTL, reason)
