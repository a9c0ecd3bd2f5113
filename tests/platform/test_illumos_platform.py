"""The illumos platform adapter, on any OS: recorded commands and fake sockets."""

from __future__ import annotations

import errno
import logging
import socket
import struct
import sys
from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any

import pytest

from pycarp.core import packet
from pycarp.platform import select_platform
from pycarp.platform.base import InterfaceError, InterfaceInfo, Platform
from pycarp.platform.illumos import (
    IfconfigAddressManager,
    IllumosPlatform,
    IpFrameSender,
    RawCarpReceiver,
    RouteLinkMonitor,
    interface_info,
    parse_ifinfo,
    parse_status,
)
from pycarp.platform.illumos import sockets as isock
from pycarp.platform.illumos.linkmon import AF_ROUTE, RTM_IFINFO

NET0 = """\
net0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 198.51.100.201 netmask ffffff00 broadcast 198.51.100.255
\tether 2:8:20:aa:b:c
"""
INFO = InterfaceInfo(name="net0", index=2, mac=bytes.fromhex("020820aa0b0c"), running=True)
GROUP = IPv4Address("224.0.0.18")
SRC = IPv4Address("198.51.100.201")


class Commands:
    """A SyncRunner answering from a table, recording every argv."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        return self.answers.get(" ".join(argv), (1, "unexpected command"))


def index_of(name: str) -> int:
    if name == "net0":
        return 2
    raise OSError(errno.ENXIO, "no such device")


# -- interface_info ----------------------------------------------------------


def test_interface_info_parses_flags_and_a_zero_less_mac() -> None:
    run = Commands({"/usr/sbin/ifconfig net0": (0, NET0)})
    assert interface_info("net0", runner=run, nametoindex=index_of) == INFO
    assert run.calls == [["/usr/sbin/ifconfig", "net0"]]


def test_interface_info_without_running_and_without_ether_line() -> None:
    # As a non-root user ifconfig omits the ether line; the MAC is not used on the wire.
    text = "net0: flags=1000803<UP,BROADCAST,MULTICAST,IPv4> mtu 1500 index 2\n\tinet 0.0.0.0\n"
    run = Commands({"/usr/sbin/ifconfig net0": (0, text)})
    info = interface_info("net0", runner=run, nametoindex=index_of)
    assert info == InterfaceInfo("net0", 2, bytes(6), False)


def test_parse_status_skips_logical_units_and_ipv6_blocks() -> None:
    text = (
        "net0:1: flags=1000843<UP,BROADCAST,MULTICAST,IPv4> mtu 1500 index 2\n"
        "\tinet 198.51.100.200 netmask ffffff00\n"
        + NET0
        + "net0: flags=20002004841<UP,RUNNING,MULTICAST,DHCP,IPv6> mtu 1500 index 2\n"
        "\tinet6 fe80::8:20ff:feaa:b0c/10\n\tether 2:8:20:ff:ff:ff\n"
    )
    status = parse_status(text, "net0")
    assert "RUNNING" in status.flags and "IPv4" in status.flags
    assert status.mac == bytes.fromhex("020820aa0b0c")


@pytest.mark.parametrize(
    ("name", "answers", "said"),
    [
        ("net9", {}, "does not exist"),
        ("-a", {}, "invalid interface name"),
        ("net0:1", {}, "invalid interface name"),
        (
            "net0",
            {"/usr/sbin/ifconfig net0": (1, "ifconfig: net0: no such interface\n")},
            "no such interface",
        ),
        ("net0", {"/usr/sbin/ifconfig net0": (0, "garbage\n")}, "unexpected ifconfig output"),
        (
            "net0",
            {"/usr/sbin/ifconfig net0": (0, NET0.replace("IPv4", "IPv6"))},
            "not plumbed for IPv4",
        ),
    ],
)
def test_interface_info_errors_are_clear(
    name: str, answers: dict[str, tuple[int, str]], said: str
) -> None:
    with pytest.raises(InterfaceError, match=said):
        interface_info(name, runner=Commands(answers), nametoindex=index_of)


def test_a_malformed_ether_line_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_status(NET0.replace("2:8:20:aa:b:c", "2:8:20:aa:b:c:d"), "net0")


# -- fake sockets ------------------------------------------------------------


class FakeSocket:
    """Records options and sends; answers recv/recvmsg from queues."""

    def __init__(self, family: int, kind: int, proto: int, refuse: set[int]) -> None:
        self.args = (family, kind, proto)
        self.refuse = refuse
        self.options: list[tuple[int, int, int | bytes]] = []
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.queue: list[bytes] = []
        self.msgs: list[tuple[bytes, list[tuple[int, int, bytes]]]] = []
        self.blocking = True
        self.closed = False

    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def setsockopt(self, level: int, option: int, value: int | bytes, /) -> None:
        if option in self.refuse:
            raise OSError(errno.ENOPROTOOPT, "Option not supported by protocol")
        self.options.append((level, option, value))

    def fileno(self) -> int:
        return 42

    def recv(self, bufsize: int, /) -> bytes:
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "would block")
        return self.queue.pop(0)

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        if not self.msgs:
            raise BlockingIOError(errno.EAGAIN, "would block")
        data, anc = self.msgs.pop(0)
        return data, anc, 0, None

    def sendto(self, data: bytes, address: tuple[str, int], /) -> int:
        self.sent.append((data, address))
        return len(data)

    def close(self) -> None:
        self.closed = True


class Factory:
    def __init__(self, refuse: set[int] | None = None) -> None:
        self.refuse = refuse or set()
        self.made: list[FakeSocket] = []

    def __call__(self, family: int, kind: int, proto: int) -> FakeSocket:
        sock = FakeSocket(family, kind, proto, self.refuse)
        self.made.append(sock)
        return sock


IP = isock.IPPROTO_IP


# -- receiver ----------------------------------------------------------------


def test_receiver_binds_to_the_interface_and_joins_by_address() -> None:
    factory = Factory()
    rx = RawCarpReceiver(INFO, GROUP, SRC, factory=factory)
    (sock,) = factory.made
    assert sock.args == (socket.AF_INET, socket.SOCK_RAW, 112)
    assert not sock.blocking
    assert sock.options == [
        (IP, 0x41, 2),  # IP_BOUND_IF, ifindex
        (IP, 0x13, GROUP.packed + SRC.packed),  # IP_ADD_MEMBERSHIP, struct ip_mreq
    ]
    assert not rx.filtering
    sock.queue += [b"one", b"two"]
    assert rx.receive() == [b"one", b"two"]
    assert rx.receive() == []
    rx.close()
    assert sock.closed


def test_receiver_filters_by_recvif_without_ip_bound_if() -> None:
    factory = Factory(refuse={isock.IP_BOUND_IF})
    rx = RawCarpReceiver(INFO, GROUP, SRC, factory=factory)
    (sock,) = factory.made
    assert (IP, isock.IP_RECVIF, 1) in sock.options
    assert rx.filtering

    def recvif(index: int) -> list[tuple[int, int, bytes]]:
        return [(IP, isock.IP_RECVIF, struct.pack("=I", index))]

    sock.msgs += [(b"here", recvif(2)), (b"elsewhere", recvif(3)), (b"unknown", [])]
    assert rx.receive() == [b"here"]


def test_receiver_rejects_a_unicast_group_and_closes_on_failure() -> None:
    with pytest.raises(ValueError):
        RawCarpReceiver(INFO, IPv4Address("198.51.100.1"), SRC, factory=Factory())
    factory = Factory(refuse={isock.IP_ADD_MEMBERSHIP})
    with pytest.raises(OSError):
        RawCarpReceiver(INFO, GROUP, SRC, factory=factory)
    assert factory.made[0].closed


# -- sender ------------------------------------------------------------------


def advert_frame(dst_mac: bytes) -> tuple[packet.Frame, bytes]:
    datagram = packet.encode_ipv4(SRC, GROUP, b"\x21" * 36, ident=7)
    return packet.Frame(dst_mac, INFO.mac, packet.ETHERTYPE_IP, datagram), datagram


def test_sender_sends_the_ip_datagram_to_its_destination() -> None:
    factory = Factory()
    tx = IpFrameSender(INFO, factory=factory)
    (sock,) = factory.made
    assert sock.args == (socket.AF_INET, socket.SOCK_RAW, 255)
    assert sock.options == [
        (IP, isock.IP_HDRINCL, 1),
        (IP, isock.IP_MULTICAST_TTL, b"\xff"),
        (IP, isock.IP_MULTICAST_LOOP, b"\x00"),
        (IP, isock.IP_BOUND_IF, 2),
    ]
    frame, datagram = advert_frame(packet.multicast_mac(GROUP))
    tx.transmit(frame)
    tx.transmit(frame)
    assert sock.sent == [(datagram, ("224.0.0.18", 0))] * 2
    # IP_MULTICAST_IF is the datagram's source address, set once while it does not change.
    assert sock.options[4:] == [(IP, isock.IP_MULTICAST_IF, SRC.packed)]


def test_sender_drops_arp_and_refuses_other_frames(caplog: pytest.LogCaptureFixture) -> None:
    factory = Factory()
    tx = IpFrameSender(INFO, factory=factory)
    caplog.set_level(logging.DEBUG, logger="pycarp.platform.illumos.sockets")
    tx.transmit(packet.gratuitous_arp(INFO.mac, IPv4Address("198.51.100.200")))
    assert factory.made[0].sent == []
    assert "ARP left to the kernel" in caplog.text
    with pytest.raises(OSError, match="ethertype 0x86dd"):
        tx.transmit(packet.Frame(b"\xff" * 6, INFO.mac, 0x86DD, bytes(40)))
    with pytest.raises(OSError, match="no IPv4"):
        tx.transmit(packet.Frame(b"\xff" * 6, INFO.mac, packet.ETHERTYPE_IP, b"\x45" * 10))
    with pytest.raises(OSError, match="no IPv4"):
        tx.transmit(packet.Frame(b"\xff" * 6, INFO.mac, packet.ETHERTYPE_IP, bytes(40)))


def test_nomcast_frames_go_out_as_multicast_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = Factory()
    tx = IpFrameSender(INFO, factory=factory)
    frame, datagram = advert_frame(b"\xff" * 6)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            tx.transmit(frame)
    assert factory.made[0].sent == [(datagram, ("224.0.0.18", 0))] * 3
    assert caplog.text.count("--nomcast") == 1


def test_sender_without_ip_bound_if_still_opens() -> None:
    factory = Factory(refuse={isock.IP_BOUND_IF})
    IpFrameSender(INFO, factory=factory)
    assert not factory.made[0].closed


# -- link monitor ------------------------------------------------------------


def ifinfo(index: int, flags: int, kind: int = RTM_IFINFO, tail: int = 150) -> bytes:
    """An if_msghdr as the illumos kernel writes it, if_data left zero."""
    head = struct.pack("=HBBiiH", 0, 3, kind, 0, flags, index)
    msg = head + bytes(tail)
    return struct.pack("=H", len(msg)) + msg[2:]


def test_parse_ifinfo_reads_index_and_flags_and_skips_the_rest() -> None:
    assert parse_ifinfo(ifinfo(2, 0x1000843)) == [(2, 0x1000843)]
    assert parse_ifinfo(ifinfo(2, 0x843, kind=0xC)) == []  # RTM_NEWADDR
    assert parse_ifinfo(ifinfo(3, 0x803) + ifinfo(2, 0x843)) == [(3, 0x803), (2, 0x843)]
    assert parse_ifinfo(b"") == []
    assert parse_ifinfo(ifinfo(2, 0x843)[:20]) == []  # cut short
    assert parse_ifinfo(struct.pack("=HBBiiH", 0, 3, RTM_IFINFO, 0, 0, 2)) == []  # length 0


def test_link_monitor_reports_running_by_name() -> None:
    factory = Factory()
    names = {2: "net0", 3: "net1"}

    def indextoname(index: int) -> str:
        if index not in names:
            raise OSError(errno.ENXIO, "no such device")
        return names[index]

    mon = RouteLinkMonitor(factory=factory, indextoname=indextoname)
    (sock,) = factory.made
    assert sock.args == (AF_ROUTE, socket.SOCK_RAW, 0) and AF_ROUTE == 24
    assert mon.fileno() == 42 and not sock.blocking
    sock.queue += [ifinfo(2, 0x1000843), ifinfo(3, 0x1000803), ifinfo(9, 0x843)]
    assert mon.read() == [("net0", True), ("net1", False)]
    del names[2]  # unplumbed: still named, reported as not running
    sock.queue.append(ifinfo(2, 0x1000843))
    assert mon.read() == [("net0", False)]
    assert mon.read() == []


# -- the platform ------------------------------------------------------------


def test_platform_wires_the_seams(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Commands({"/usr/sbin/ifconfig net0": (0, NET0)})
    monkeypatch.setattr(socket, "if_nametoindex", index_of)
    factory = Factory()
    plat = IllumosPlatform(runner=run, factory=factory)
    _: Platform = plat
    info = plat.interface_info("net0")
    assert info == INFO
    assert isinstance(plat.open_receiver(info, GROUP, SRC), RawCarpReceiver)
    assert isinstance(plat.open_sender(info), IpFrameSender)
    assert isinstance(plat.open_link_monitor(), RouteLinkMonitor)
    assert isinstance(plat.open_address_manager(), IfconfigAddressManager)
    assert [s.args[2] for s in factory.made] == [112, 255, 0]


def test_select_platform_picks_illumos_on_sunos5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "sunos5")
    assert isinstance(select_platform(), IllumosPlatform)
    assert isinstance(select_platform("sunos5"), IllumosPlatform)
