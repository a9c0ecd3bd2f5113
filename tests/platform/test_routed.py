"""The unicast sender: options set at open, each datagram sent whole to its peer, errors raised.

IPv6 goes through a second socket, picked by the peer's family, with hop limit 255.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from pycarp.platform.base import InterfaceError, InterfaceInfo
from pycarp.platform.illumos import IllumosPlatform
from pycarp.platform.routed import RoutedSender

PEER = IPv4Address("198.51.100.224")
PEER6 = IPv6Address("2001:db8::224")
HOPS = [(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)]
HOPS += [(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)]


class FakeSocket:
    def __init__(self, *made: int, sends: int | None = None) -> None:
        self.made, self.closed = made, False
        self.options: list[tuple[int, int, Any]] = []
        self.sent: list[tuple[bytes, tuple[Any, ...]]] = []
        self.sends = sends  # bytes a sendto claims to have sent (None: all)
        self.blocking = True

    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        self.options.append((level, option, value))

    def sendto(self, data: bytes, address: tuple[Any, ...]) -> int:
        self.sent.append((data, address))
        return len(data) if self.sends is None else self.sends

    def close(self) -> None:
        self.closed = True


class FailingSocket(FakeSocket):
    def setsockopt(self, level: int, option: int, value: Any) -> None:
        raise PermissionError(1, "Operation not permitted")


def test_a_datagram_goes_whole_to_its_peer() -> None:
    sock = FakeSocket()
    sender = RoutedSender(lambda: sock, factory6=None)
    sender.send_to(b"x" * 56, PEER)
    assert sock.sent == [(b"x" * 56, ("198.51.100.224", 0))] and not sock.blocking
    sender.close()
    assert sock.closed


def test_a_short_send_is_an_error() -> None:
    sender = RoutedSender(lambda: FakeSocket(sends=20), factory6=None)
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


def pair(**kwargs: Any) -> tuple[RoutedSender, FakeSocket, FakeSocket]:
    four, six = FakeSocket(), FakeSocket()
    return RoutedSender(lambda: four, factory6=lambda: six, **kwargs), four, six


def test_each_family_has_its_socket() -> None:
    sender, four, six = pair()
    assert not six.blocking and six.options == HOPS
    assert four.options == []  # IPv4 writes its own TTL in the header
    sender.send_to(b"6" * 36, PEER6)
    sender.send_to(b"4" * 56, PEER)
    assert six.sent == [(b"6" * 36, ("2001:db8::224", 0, 0, 0))]  # no scope: routed
    assert four.sent == [(b"4" * 56, ("198.51.100.224", 0))]
    sender.close()
    assert four.closed and six.closed


def test_a_link_local_peer_goes_out_of_its_scope() -> None:
    asked: list[str] = []

    def index_of(name: str) -> int:
        asked.append(name)
        return 7

    sender, _, six = pair(index_of=index_of)
    sender.send_to(b"x" * 36, IPv6Address("fe80::2%eth0"))
    sender.send_to(b"y" * 36, IPv6Address("fe80::3%4"))  # a number is the index itself
    assert asked == ["eth0"]
    assert six.sent == [(b"x" * 36, ("fe80::2", 0, 0, 7)), (b"y" * 36, ("fe80::3", 0, 0, 4))]


def test_an_unknown_scope_is_an_oserror() -> None:
    sender, _, six = pair()  # the real if_nametoindex
    with pytest.raises(OSError):
        sender.send_to(b"x" * 36, IPv6Address("fe80::2%nosuch-if0"))
    assert six.sent == []


def test_a_short_ipv6_send_is_an_error() -> None:
    six = FakeSocket(sends=10)
    sender = RoutedSender(FakeSocket, factory6=lambda: six)
    with pytest.raises(OSError, match=r"short send to 2001:db8::224: 10 of 36 bytes"):
        sender.send_to(b"x" * 36, PEER6)


def test_without_an_ipv6_socket_ipv6_peers_are_an_oserror() -> None:
    four = FakeSocket()
    sender = RoutedSender(lambda: four, factory6=None)
    with pytest.raises(OSError, match="IPv6 unicast is not supported on this platform"):
        sender.send_to(b"x" * 36, PEER6)
    sender.send_to(b"x" * 56, PEER)  # IPv4 unaffected
    assert len(four.sent) == 1
    sender.close()
    assert four.closed


def test_a_failing_ipv6_socket_closes_both() -> None:
    four, six = FakeSocket(), FailingSocket()
    with pytest.raises(PermissionError):
        RoutedSender(lambda: four, factory6=lambda: six)
    assert four.closed and six.closed


def test_a_kernel_without_ipv6_leaves_ipv4_working() -> None:
    four = FakeSocket()

    def no_ipv6() -> FakeSocket:
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    sender = RoutedSender(lambda: four, factory6=no_ipv6)
    sender.send_to(b"x" * 56, PEER)
    assert four.sent and not four.closed
    with pytest.raises(OSError, match="the kernel has no IPv6"):
        sender.send_to(b"x" * 36, PEER6)


def test_illumos_has_no_ipv6_carp_yet() -> None:
    made: list[FakeSocket] = []

    def factory(family: int, kind: int, proto: int) -> FakeSocket:
        made.append(FakeSocket(family, kind, proto))
        return made[-1]

    platform = IllumosPlatform(factory=factory)  # type: ignore[arg-type]
    sender = platform.open_unicast_sender()
    assert [sock.made[0] for sock in made] == [socket.AF_INET]  # no IPv6 socket opened
    with pytest.raises(OSError, match="IPv6 unicast is not supported"):
        sender.send_to(b"x" * 36, PEER6)
    info = InterfaceInfo(name="net0", index=2, mac=bytes(6), running=True)
    with pytest.raises(InterfaceError, match="IPv6 CARP is not supported on illumos yet"):
        platform.open_receiver6(info)
    assert len(made) == 1  # the receiver opened nothing
