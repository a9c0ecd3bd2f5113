"""The unicast sender of both platforms: advertisements routed by the kernel.

IPv4: an IPPROTO_RAW socket sends each datagram's own header as written
(Linux implies IP_HDRINCL for it; illumos is told so), bound to no
interface: a peer behind a router is reached by the routing table, from the
NIC's MAC. IPv6 has no header inclusion: a protocol-112 raw socket sends the
bare CARP message and the kernel writes the header, with hop limit 255 as
CARP requires (a receiver drops anything less) and a source of its choice.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Protocol, TypeVar

IPPROTO_CARP = 112
HOP_LIMIT = 255


class RawIpSocket(Protocol):
    def setblocking(self, flag: bool) -> None: ...

    def setsockopt(self, level: int, option: int, value: Any) -> None: ...

    def sendto(self, data: bytes, address: tuple[str, int]) -> int: ...

    def close(self) -> None: ...


class RawIp6Socket(Protocol):
    def setblocking(self, flag: bool) -> None: ...

    def setsockopt(self, level: int, option: int, value: Any) -> None: ...

    def sendto(self, data: bytes, address: tuple[str, int, int, int]) -> int:
        """address: (host, port, flow info, scope id)."""
        ...

    def close(self) -> None: ...


def raw_ip_socket() -> RawIpSocket:
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)


def raw_ipv6_socket() -> RawIp6Socket:
    return socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_CARP)


S = TypeVar("S", RawIpSocket, RawIp6Socket)

IPV6_OPTIONS = (
    (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, HOP_LIMIT),
    (socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, HOP_LIMIT),
)


def _open(factory: Callable[[], S], options: Sequence[tuple[int, int, int]]) -> S:
    """A socket from factory, non-blocking, options set; closed again if that fails."""
    sock = factory()
    try:
        sock.setblocking(False)
        for level, option, value in options:
            sock.setsockopt(level, option, value)
    except BaseException:
        sock.close()
        raise
    return sock


def scope_index(scope: str, index_of: Callable[[str], int] = socket.if_nametoindex) -> int:
    """The interface index of an IPv6 scope: a name (eth0) or already a number (2).

    OSError if no interface has that name (looked up in the caller's namespace).
    """
    return int(scope) if scope.isdigit() else index_of(scope)


class RoutedSender:
    """A UnicastSender (pycarp.platform.base).

    ``factory6=None``: a platform without IPv6 CARP. A kernel without IPv6
    (EAFNOSUPPORT) is the same here: IPv4 peers must keep working. Sending
    to an IPv6 peer without the socket is then an OSError.
    """

    def __init__(
        self,
        factory: Callable[[], RawIpSocket] = raw_ip_socket,
        options: Sequence[tuple[int, int, int]] = (),
        factory6: Callable[[], RawIp6Socket] | None = raw_ipv6_socket,
        *,
        index_of: Callable[[str], int] = socket.if_nametoindex,
    ) -> None:
        sock = _open(factory, options)
        sock6: RawIp6Socket | None = None
        self._no6 = "IPv6 unicast is not supported on this platform"
        if factory6 is not None:
            try:
                sock6 = _open(factory6, IPV6_OPTIONS)
            except OSError as exc:
                if exc.errno != errno.EAFNOSUPPORT:
                    sock.close()
                    raise
                self._no6 = "IPv6 unicast is impossible: the kernel has no IPv6"
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._sock6 = sock6
        self._index_of = index_of

    def send_to(self, datagram: bytes, address: IPv4Address | IPv6Address) -> None:
        if isinstance(address, IPv4Address):
            sent = self._sock.sendto(datagram, (str(address), 0))
        else:
            if self._sock6 is None:
                raise OSError(self._no6)
            scope = address.scope_id
            index = scope_index(scope, self._index_of) if scope else 0
            bare = str(address).partition("%")[0]
            sent = self._sock6.sendto(datagram, (bare, 0, 0, index))
        if sent != len(datagram):
            raise OSError(f"short send to {address}: {sent} of {len(datagram)} bytes")

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            if self._sock6 is not None:
                self._sock6.close()
