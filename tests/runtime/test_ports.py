"""runtime.ports with a fake platform: which sockets an interface gets, and none left open."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import NoReturn

import pytest

from pycarp.core.config import DEFAULT_GROUP, VirtualHostConfig
from pycarp.core.errors import CarpError
from pycarp.core.packet import Frame
from pycarp.platform.base import InterfaceError, InterfaceInfo
from pycarp.runtime.driver import Port
from pycarp.runtime.ports import missing_receivers, open_port, open_ports
from tests.helpers import make_config

MAC = bytes.fromhex("020000000001")
LINK_LOCAL = IPv6Address("fe80::1")
SRCIP = "198.51.100.1"
VIP4 = "198.51.100.50"
VIP6 = "2001:db8::50"


@dataclass
class FakeSocket:
    """A receiver or a sender: what it was opened for, and whether it was closed."""

    kind: str  # "sender", "receiver4" or "receiver6"
    interface: str
    detail: tuple[object, ...] = ()
    closed: bool = False

    def fileno(self) -> int:
        return -1

    def receive(self) -> list[bytes]:
        return []

    def transmit(self, frame: Frame) -> None:
        raise AssertionError("nothing is sent here")

    def close(self) -> None:
        assert not self.closed, f"{self} closed twice"
        self.closed = True


@dataclass
class FakePlatform:
    """Interfaces eth0..eth3 with IPv6 unless `no_ipv6` names them; records every socket."""

    no_ipv6: set[str] = field(default_factory=set)
    fail6: BaseException | None = None  # what open_receiver6 raises, if anything
    opened: list[FakeSocket] = field(default_factory=list)

    def interface_info(self, name: str) -> InterfaceInfo:
        index = int(name.removeprefix("eth")) + 2
        link_local = None if name in self.no_ipv6 else LINK_LOCAL
        return InterfaceInfo(name, index, MAC, True, link_local)

    def _open(self, kind: str, info: InterfaceInfo, *detail: object) -> FakeSocket:
        sock = FakeSocket(kind, info.name, detail)
        self.opened.append(sock)
        return sock

    def open_receiver(
        self, info: InterfaceInfo, group: IPv4Address, srcip: IPv4Address
    ) -> FakeSocket:
        return self._open("receiver4", info, group, srcip)

    def open_receiver6(self, info: InterfaceInfo) -> FakeSocket:
        if self.fail6 is not None:
            raise self.fail6
        return self._open("receiver6", info)

    def open_sender(self, info: InterfaceInfo) -> FakeSocket:
        return self._open("sender", info)

    # The rest of the Platform protocol: never used by runtime.ports.
    def open_unicast_sender(self) -> NoReturn:
        raise AssertionError("not for ports")

    def open_link_monitor(self) -> NoReturn:
        raise AssertionError("not for ports")

    def open_address_manager(self) -> NoReturn:
        raise AssertionError("not for ports")

    def drop_privileges(self, *, keep_bounding: bool, locked_memory: bool = False) -> NoReturn:
        raise AssertionError("not for ports")

    def kinds(self, interface: str | None = None) -> list[str]:
        return [s.kind for s in self.opened if interface in (None, s.interface)]

    def still_open(self) -> list[FakeSocket]:
        return [s for s in self.opened if not s.closed]


def ipv4(vhid: int = 1, interface: str = "eth0", srcip: str = SRCIP) -> VirtualHostConfig:
    return make_config(vhid=vhid, interface=interface, srcip=srcip, addresses=(VIP4,))


def ipv6(vhid: int = 2, interface: str = "eth0") -> VirtualHostConfig:
    return make_config(vhid=vhid, interface=interface, srcip=None, addresses=(VIP6,))


def mixed(vhid: int = 3, interface: str = "eth0") -> VirtualHostConfig:
    return make_config(vhid=vhid, interface=interface, srcip=SRCIP, addresses=(VIP4, VIP6))


def receiver(port: Port, version: int) -> FakeSocket:
    sock = port.receivers[version]
    assert isinstance(sock, FakeSocket)
    return sock


def test_an_ipv4_only_host_gets_only_an_ipv4_receiver() -> None:
    platform = FakePlatform()
    ports = open_ports(platform, [ipv4()])
    assert list(ports) == ["eth0"]
    port = ports["eth0"]
    assert set(port.receivers) == {4}
    assert receiver(port, 4).detail == (DEFAULT_GROUP, IPv4Address(SRCIP))
    assert port.info.name == "eth0" and port.info.link_local == LINK_LOCAL
    assert sorted(platform.kinds()) == ["receiver4", "sender"]
    assert platform.still_open() == platform.opened


def test_an_ipv6_only_host_gets_only_an_ipv6_receiver() -> None:
    platform = FakePlatform()
    port = open_port(platform, [ipv6()])
    assert set(port.receivers) == {6}
    assert receiver(port, 6).kind == "receiver6"
    # no IPv4 socket, hence no membership of 224.0.0.18 either
    assert "receiver4" not in platform.kinds()
    assert sorted(platform.kinds()) == ["receiver6", "sender"]


@pytest.mark.parametrize(
    "configs",
    [
        pytest.param([mixed()], id="one mixed host"),
        pytest.param([ipv6(2), ipv4(1)], id="an IPv6 host and an IPv4 host"),
        pytest.param([ipv4(1), mixed(3), ipv6(2)], id="three hosts"),
    ],
)
def test_both_families_on_one_interface_get_a_receiver_each_once(
    configs: list[VirtualHostConfig],
) -> None:
    platform = FakePlatform()
    ports = open_ports(platform, configs)
    assert list(ports) == ["eth0"]
    assert set(ports["eth0"].receivers) == {4, 6}
    assert sorted(platform.kinds()) == ["receiver4", "receiver6", "sender"]
    # The IPv4 receiver is opened with an IPv4 host's srcip, whichever host comes first.
    assert receiver(ports["eth0"], 4).detail == (DEFAULT_GROUP, IPv4Address(SRCIP))


def test_each_interface_gets_its_own_port() -> None:
    platform = FakePlatform()
    ports = open_ports(platform, [ipv4(1, "eth0"), ipv6(2, "eth1"), ipv4(3, "eth0")])
    assert sorted(ports) == ["eth0", "eth1"]
    assert ports["eth0"].info.name == "eth0" and ports["eth1"].info.name == "eth1"
    assert set(ports["eth0"].receivers) == {4}
    assert set(ports["eth1"].receivers) == {6}
    assert sorted(platform.kinds("eth0")) == ["receiver4", "sender"]
    assert sorted(platform.kinds("eth1")) == ["receiver6", "sender"]
    assert receiver(ports["eth1"], 6).interface == "eth1"
    assert ports["eth0"].sender is not ports["eth1"].sender


def test_ipv6_on_an_interface_without_link_local_closes_everything_opened() -> None:
    platform = FakePlatform(no_ipv6={"eth1"})
    # eth0 is opened whole first; on eth1 the sender and the IPv4 receiver come before IPv6.
    configs = [ipv4(1, "eth0"), mixed(3, "eth1"), ipv4(4, "eth2")]
    with pytest.raises(CarpError, match="no IPv6 link-local address") as caught:
        open_ports(platform, configs)
    message = str(caught.value)
    assert message.startswith("eth1 ") and "vhid 3" in message, message
    assert sorted(platform.kinds("eth0")) == ["receiver4", "sender"]
    assert sorted(platform.kinds("eth1")) == ["receiver4", "sender"]
    assert platform.kinds("eth2") == []  # never reached
    assert platform.still_open() == [], platform.opened


def test_ipv4_alone_is_fine_on_an_interface_without_ipv6() -> None:
    platform = FakePlatform(no_ipv6={"eth0"})
    port = open_port(platform, [ipv4()])
    assert set(port.receivers) == {4}
    assert port.info.link_local is None


def test_a_permission_error_from_the_ipv6_receiver_says_cap_net_raw() -> None:
    denied = PermissionError(errno.EPERM, "Operation not permitted")
    platform = FakePlatform(fail6=denied)
    with pytest.raises(CarpError, match="CAP_NET_RAW") as caught:
        open_ports(platform, [ipv4(1, "eth0"), mixed(3, "eth1")])
    message = str(caught.value)
    assert "IPv6 CARP receive socket on eth1" in message, message
    assert "Operation not permitted" in message, message
    assert caught.value.__cause__ is denied
    assert sorted(platform.kinds()) == ["receiver4", "receiver4", "sender", "sender"]
    assert platform.still_open() == [], platform.opened


def test_an_interface_error_from_the_ipv6_receiver_becomes_a_carp_error() -> None:
    text = "eth0: cannot join ff02::12: No such device"
    failure = InterfaceError(text)
    platform = FakePlatform(fail6=failure)
    with pytest.raises(CarpError) as caught:
        open_port(platform, [mixed()])
    assert str(caught.value) == text
    assert caught.value.__cause__ is failure
    assert sorted(platform.kinds()) == ["receiver4", "sender"]
    assert platform.still_open() == [], platform.opened


def test_other_failures_of_the_ipv6_receiver_close_the_port_too() -> None:
    failure = OSError(errno.ENOBUFS, "No buffer space available")
    platform = FakePlatform(fail6=failure)
    with pytest.raises(OSError) as caught:
        open_ports(platform, [mixed()])
    assert caught.value is failure
    assert platform.still_open() == [], platform.opened


def test_missing_receivers_opens_only_what_the_port_lacks() -> None:
    platform = FakePlatform()
    port = open_port(platform, [ipv4()])
    (ipv4_receiver,) = port.receivers.values()
    more = missing_receivers(platform, port, [ipv4(), ipv6(), mixed()])
    assert set(more) == {6}
    assert isinstance(more[6], FakeSocket) and more[6].kind == "receiver6"
    assert port.receivers == {4: ipv4_receiver}  # the caller adds them (Driver.add_receivers)
    assert sorted(platform.kinds()) == ["receiver4", "receiver6", "sender"]
    port.receivers.update(more)
    assert missing_receivers(platform, port, [mixed()]) == {}
    assert len(platform.opened) == 3


def test_missing_receivers_refuses_ipv6_without_link_local_and_leaves_the_port() -> None:
    platform = FakePlatform(no_ipv6={"eth0"})
    port = open_port(platform, [ipv4()])
    with pytest.raises(CarpError, match=r"^eth0 has no IPv6 link-local address"):
        missing_receivers(platform, port, [ipv6()])
    assert set(port.receivers) == {4}
    assert platform.still_open() == platform.opened  # the running port is untouched
    assert len(platform.opened) == 2


def test_missing_receivers_sees_ipv6_turned_on_since_the_port_was_opened() -> None:
    platform = FakePlatform(no_ipv6={"eth0"})
    port = open_port(platform, [ipv4()])
    assert port.info.link_local is None
    platform.no_ipv6.clear()  # sysctl net.ipv6.conf.eth0.disable_ipv6=0, then a reload
    more = missing_receivers(platform, port, [ipv4(), ipv6()])
    assert set(more) == {6}
    assert port.info.link_local == LINK_LOCAL  # what Driver.link() gives the new host
    assert (port.info.name, port.info.index, port.info.mac) == ("eth0", 2, MAC)


def test_missing_receivers_sees_ipv6_turned_off_since_the_port_was_opened() -> None:
    platform = FakePlatform()
    port = open_port(platform, [ipv4()])
    platform.no_ipv6.add("eth0")
    with pytest.raises(CarpError, match="no IPv6 link-local address"):
        missing_receivers(platform, port, [ipv6()])
    assert port.info.link_local is None
    assert set(port.receivers) == {4} and platform.still_open() == platform.opened


def test_missing_receivers_looks_nothing_up_when_nothing_is_lacking() -> None:
    platform = FakePlatform()
    port = open_port(platform, [mixed()])
    platform.no_ipv6.add("eth0")  # not looked at: the IPv6 receiver is there already
    assert missing_receivers(platform, port, [ipv6(), ipv4()]) == {}
    assert port.info.link_local == LINK_LOCAL
