"""IPv4 CARP on Ethernet: how one virtual host's advertisements and announcements go out.

A Wire (see outbound.py) of its own per address family: a second family is a
second module like this one, and a row in outbound.WIRES.
"""

from __future__ import annotations

from pycarp.core import packet
from pycarp.core.actions import HostKey, SendAdvertisement, SendGratuitousArp
from pycarp.core.config import VirtualHostConfig
from pycarp.core.packet import Advertisement, Frame


class Ipv4Wire:
    """Advertisements to the group (Ethernet broadcast with nomcast), ARP announcements.

    The IP header is the same for every advertisement of a host, so it is made
    once. Its identification is fixed: the datagrams have DF set and are never
    fragmented, so it identifies nothing (RFC 6864).
    """

    def __init__(self, key: HostKey, config: VirtualHostConfig, *, mac: bytes, ident: int) -> None:
        self._key = key
        self._mac = mac
        self._addresses = config.addresses
        if config.nomcast:
            self._destination = packet.BROADCAST_MAC
        else:
            self._destination = packet.multicast_mac(config.group)
        # ucarp's 00:00:5e:00:00:<vhid> on request; ARP keeps the NIC's MAC, as in ucarp.
        self._source = packet.virtual_mac(config.vhid) if config.virtual_mac else mac
        self._header = packet.ipv4_header(config.srcip, config.group, packet.CARP_LEN, ident=ident)

    def advertisement(self, advert: Advertisement) -> SendAdvertisement:
        datagram = self._header + advert.encode()
        frame = Frame(self._destination, self._source, packet.ETHERTYPE_IP, datagram)
        return SendAdvertisement(self._key, advert, frame)

    def announcement(self) -> SendGratuitousArp:
        return SendGratuitousArp(self._key, self._mac, self._addresses)
