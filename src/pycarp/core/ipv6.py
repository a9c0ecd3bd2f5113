"""IPv6 CARP on Ethernet (BSD's format): advertisements to ff02::12, hop limit 255,
from the interface's link-local address. The announcements (unsolicited
neighbour advertisements) are actions.SendAnnouncement's.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from pycarp.core.config import VirtualHostConfig
from pycarp.core.ipv4 import message_length
from pycarp.core.packet import Frame
from pycarp.core.packet6 import CARP_GROUP6, ETHERTYPE_IPV6, ipv6_header, multicast_mac6


class Ipv6Wire:
    """Advertisements to ff02::12 at 33:33:00:00:00:12, the header made once."""

    def __init__(
        self, config: VirtualHostConfig, *, mac: bytes, link_local: IPv6Address | None, ident: int
    ) -> None:
        if link_local is None:  # the runtime refuses such an interface before any host starts
            raise ValueError(f"{config.interface} has no IPv6 link-local address")
        self._destination = multicast_mac6(CARP_GROUP6)
        self._source = config.advert_mac(mac, 6)
        self._header = ipv6_header(link_local, CARP_GROUP6, message_length(config, 6))

    def frame(self, message: bytes) -> Frame:
        return Frame(self._destination, self._source, ETHERTYPE_IPV6, self._header + message)
