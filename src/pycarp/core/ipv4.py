"""IPv4 CARP on Ethernet: how one virtual host's advertisements go out to the group.

A Wire (see outbound.py) of its own per address family: ipv6.py is the
other, and outbound.WIRES picks them by the versions of a host's addresses.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from pycarp.core import packet, vrrp
from pycarp.core.config import VirtualHostConfig
from pycarp.core.packet import Frame


def message_length(config: VirtualHostConfig, version: int) -> int:
    """The length of a host's advertisements in IP `version`: CARP's is fixed,
    VRRP's carries the addresses."""
    if not config.vrrp:
        return packet.CARP_LEN
    size = 4 if version == 4 else 16
    return vrrp.HEADER_LEN + size * sum(a.version == version for a in config.addresses)


class Ipv4Wire:
    """Advertisements to the group (Ethernet broadcast with nomcast).

    The IP header is the same for every advertisement of a host, so it is made
    once. Its identification is fixed: the datagrams have DF set and are never
    fragmented, so it identifies nothing (RFC 6864).
    """

    def __init__(
        self, config: VirtualHostConfig, *, mac: bytes, link_local: IPv6Address | None, ident: int
    ) -> None:
        assert config.srcip is not None  # the config requires it with IPv4 addresses
        if config.nomcast:
            self._destination = packet.BROADCAST_MAC
        else:
            self._destination = packet.multicast_mac(config.group)
        self._source = config.advert_mac(mac, 4)
        length = message_length(config, 4)
        self._header = packet.ipv4_header(config.srcip, config.group, length, ident=ident)

    def frame(self, message: bytes) -> Frame:
        """The frame that carries one advertisement (`message`, the encoded CARP header)."""
        return Frame(self._destination, self._source, packet.ETHERTYPE_IP, self._header + message)
