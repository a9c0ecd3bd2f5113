"""The IPv6 CARP receiver: a raw protocol-112 socket on ff02::12 and the host's own addresses.

Raw IPv6 sockets hand over the payload only, never the IPv6 header, so the
header the core parses is rebuilt from what the kernel reports with each
datagram: the source (recvmsg's address), the destination (IPV6_PKTINFO)
and the hop limit (IPV6_HOPLIMIT), which CARP's TTL check needs. The
traffic class and flow label are not reported and are not faithful.
"""

from __future__ import annotations

import logging
import socket
import struct
from ipaddress import IPv6Address

from pycarp.core import packet6
from pycarp.platform.base import InterfaceError, InterfaceInfo
from pycarp.platform.linux.rawsock import IPPROTO_CARP, MAX_BATCH

# <linux/in6.h>; the socket module has no name for it.
IPV6_MULTICAST_ALL: int = getattr(socket, "IPV6_MULTICAST_ALL", 29)
_MAX_DATAGRAM = 65535
_PKTINFO = struct.Struct("=16sI")  # struct in6_pktinfo: address, ifindex
_HOPLIMIT = struct.Struct("=i")
_ANCILLARY = socket.CMSG_SPACE(_PKTINFO.size) + socket.CMSG_SPACE(_HOPLIMIT.size)

log = logging.getLogger(__name__)


def rebuild(payload: bytes, source: str, ancillary: list[tuple[int, int, bytes]]) -> bytes | None:
    """An IPv6 datagram from a raw socket's payload, its sender and its cmsgs.

    None when a cmsg the header needs (packet info, hop limit) is missing.
    """
    destination: IPv6Address | None = None
    hop_limit: int | None = None
    for level, kind, data in ancillary:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_PKTINFO and len(data) >= _PKTINFO.size:
            destination = IPv6Address(_PKTINFO.unpack_from(data)[0])
        elif kind == socket.IPV6_HOPLIMIT and len(data) >= _HOPLIMIT.size:
            hop_limit = _HOPLIMIT.unpack_from(data)[0]
    if destination is None or hop_limit is None:
        return None
    src = IPv6Address(source.partition("%")[0])  # the scope is the interface we are bound to
    header = packet6.ipv6_header(
        src, destination, len(payload), next_header=IPPROTO_CARP, hop_limit=hop_limit
    )
    return header + payload


class Raw6CarpReceiver:
    """Protocol-112 IPv6 datagrams arriving on one interface (a CarpReceiver).

    The socket is bound to the interface and joins ff02::12 there; being
    bound to no address, it also gets protocol-112 datagrams sent to the
    host's own addresses (unicast IPv6 peers). The kernel hands an unbound
    raw IPv6 socket every multicast destination the host accepts on the
    interface, whatever IPV6_MULTICAST_ALL says, so other groups (ff02::1
    and the solicited-node groups are always joined) are dropped here.
    """

    def __init__(self, info: InterfaceInfo) -> None:
        if info.link_local is None:
            raise InterfaceError(f"{info.name} has no IPv6 link-local address: IPv6 is off on it")
        self.info = info
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_CARP)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, info.name.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            mreq = struct.pack("=16sI", packet6.CARP_GROUP6.packed, info.index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self) -> list[bytes]:
        """Up to MAX_BATCH waiting datagrams, IPv6 header rebuilt; [] if none.

        Other OSErrors propagate.
        """
        out: list[bytes] = []
        for _ in range(MAX_BATCH):
            try:
                payload, ancillary, _flags, address = self._sock.recvmsg(_MAX_DATAGRAM, _ANCILLARY)
            except BlockingIOError:
                break
            datagram = rebuild(payload, address[0], ancillary)
            if datagram is None:
                log.debug("%s: datagram from %s without its cmsgs: skipped", self, address[0])
                continue
            destination = IPv6Address(datagram[24:40])
            if destination.is_multicast and destination != packet6.CARP_GROUP6:
                log.debug("%s: datagram to group %s: not ours, skipped", self, destination)
                continue
            out.append(datagram)
        return out

    def close(self) -> None:
        self._sock.close()  # leaving the socket drops its membership too

    def __repr__(self) -> str:
        return f"<Raw6CarpReceiver {self.info.name} group={packet6.CARP_GROUP6}>"
