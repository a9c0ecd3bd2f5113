"""The unicast sender: options set at open, each datagram sent whole to its peer, errors raised."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from pycarp.platform.illumos import IllumosPlatform
from pycarp.platform.routed import RoutedSender

PEER = IPv4Address("198.51.100.224")


class FakeSocket:
    def __init__(self, *made: int, sends: int | None = None) -> None:
        self.made, self.options, self.sent, self.closed = made, [], [], False
        self.sends = sends  # bytes a sendto claims to have sent (None: all)
        self.blocking = True

    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        self.options.append((level, option, value))

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        self.sent.append((data, address))
        return len(data) if self.sends is None else self.sends

    def close(self) -> None:
        self.closed = True


def test_a_datagram_goes_whole_to_its_peer() -> None:
    sock = FakeSocket()
    sender = RoutedSender(lambda: sock)
    sender.send_to(b"x" * 56, PEER)
    assert sock.sent == [(b"x" * 56, ("198.51.100.224", 0))] and not sock.blocking
    sender.close()
    assert sock.closed


def test_a_short_send_is_an_error() -> None:
    sender = RoutedSender(lambda: FakeSocket(sends=20))
    with pytest.raises(OSError, match=r"short send to 198\.51\.100\.224: 20 of 56 bytes"):
        sender.send_to(b"x" * 56, PEER)


def test_illumos_asks_for_ip_hdrincl_on_a_raw_socket() -> None:
    made: list[FakeSocket] = []

    def factory(family: int, kind: int, proto: int) -> FakeSocket:
        made.append(FakeSocket(family, kind, proto))
        return made[-1]

    IllumosPlatform(factory=factory).open_unicast_sender()  # type: ignore[arg-type]
    (sock,) = made
    assert sock.made[2] == 255 and sock.options == [(0, 2, 1)]  # IPPROTO_RAW; IP_HDRINCL
