"""The unicast sender of both platforms: whole IPv4 datagrams, routed by the kernel.

An IPPROTO_RAW socket sends each datagram's own header as written (Linux
implies IP_HDRINCL for it; illumos is told so), bound to no interface: a
peer behind a router is reached by the routing table, from the NIC's MAC.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from typing import Any, Protocol


class RawIpSocket(Protocol):
    def setblocking(self, flag: bool) -> None: ...

    def setsockopt(self, level: int, option: int, value: Any) -> None: ...

    def sendto(self, data: bytes, address: tuple[str, int]) -> int: ...

    def close(self) -> None: ...


def raw_ip_socket() -> RawIpSocket:
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)


class RoutedSender:
    """A UnicastSender (pycarp.platform.base)."""

    def __init__(
        self,
        factory: Callable[[], RawIpSocket] = raw_ip_socket,
        options: Sequence[tuple[int, int, int]] = (),
    ) -> None:
        sock = factory()
        try:
            sock.setblocking(False)
            for level, option, value in options:
                sock.setsockopt(level, option, value)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def send_to(self, datagram: bytes, address: IPv4Address) -> None:
        sent = self._sock.sendto(datagram, (str(address), 0))
        if sent != len(datagram):
            raise OSError(f"short send to {address}: {sent} of {len(datagram)} bytes")

    def close(self) -> None:
        self._sock.close()
