"""check-config says up front when this machine cannot give addresses a virtual MAC."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from pycarp.config import machine
from pycarp.core.config import VirtualHostConfig
from pycarp.platform.base import InterfaceError, InterfaceInfo


class _Platform:
    supports_ipv6 = True

    def __init__(self, supports_virtual_mac: bool, mac: bytes | None) -> None:
        self.supports_virtual_mac = supports_virtual_mac
        self.mac = mac

    def interface_info(self, name: str) -> InterfaceInfo:
        if self.mac is None:
            raise InterfaceError(f"interface {name!r} is not Ethernet (ARPHRD type 772)")
        return InterfaceInfo(name, 2, self.mac, True, IPv6Address("fe80::1"))


NIC = bytes.fromhex("020000000001")
SRC = IPv4Address("198.51.100.1")


@pytest.mark.parametrize(
    ("supports", "mac", "problem"),
    [
        (True, NIC, None),
        (False, NIC, 'a virtual MAC is not supported on this platform; use mac = "interface"'),
        (True, bytes(6), "lo has no Ethernet MAC: no macvlan can be made on it"),
        (
            True,
            None,
            "interface 'lo' is not Ethernet (ARPHRD type 772): no macvlan can be made on it",
        ),
    ],
)
def test_a_virtual_mac_needs_the_platform_and_an_ethernet_interface(
    monkeypatch: pytest.MonkeyPatch, supports: bool, mac: bytes | None, problem: str | None
) -> None:
    monkeypatch.setattr(machine, "select_platform", lambda: _Platform(supports, mac))
    monkeypatch.setattr(machine, "interface_exists", lambda name: name == "lo")
    vhost = VirtualHostConfig("lo", SRC, 1, (IPv4Address("198.51.100.7"),), mac="virtual")
    _, problems = machine.check_vhost(vhost)
    assert [(p.field, p.reason) for p in problems] == (
        [] if problem is None else [("mac", problem)]
    )


def test_without_a_virtual_mac_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "select_platform", lambda: _Platform(False, bytes(6)))
    monkeypatch.setattr(machine, "interface_exists", lambda name: name == "lo")
    for mac in ("interface", "ucarp"):
        vhost = VirtualHostConfig("lo", SRC, 1, (IPv4Address("198.51.100.7"),), mac=mac)
        assert machine.check_vhost(vhost)[1] == []
