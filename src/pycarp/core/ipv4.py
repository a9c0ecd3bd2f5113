"""IPv4 CARP on Ethernet: how one virtual host's advertisements go out to the group.

A Wire (see outbound.py) of its own per address family: ipv6.py is the
other, and outbound.WIRES picks them by the versions of a host's addresses.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from pycarp.core import packet
from pycarp.core.config import VirtualHostConfig
from pycarp.core.packet import Frame


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
        # ucarp's 00:00:5e:00:00:<vhid> on request; ARP keeps the NIC's MAC, as in ucarp.
        self._source = packet.virtual_mac(config.vhid) if config.virtual_mac else mac
        self._header = packet.ipv4_header(config.srcip, config.group, packet.CARP_LEN, ident=ident)

    def frame(self, message: bytes) -> Frame:
        """The frame that carries one advertisement (`message`, the encoded CARP header)."""
        return Frame(self._destination, self._source, packet.ETHERTYPE_IP, self._header + message)
