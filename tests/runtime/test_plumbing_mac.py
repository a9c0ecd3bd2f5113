"""Addresses behind a virtual MAC through the address queue, and what a killed run left there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

import pytest

from pycarp.core.config import VirtualHostConfig
from pycarp.core.packet import Address
from pycarp.runtime.plumbing import AddressQueue, remove_stale, stale_macs

Networks = Sequence[tuple[Address, int]]
MAC = bytes.fromhex("00005e000107")
SRC = IPv4Address("198.51.100.1")


def net(i: int) -> tuple[IPv4Address, int]:
    return IPv4Address(f"198.51.100.{i}"), 32


class Manager:
    """Records each call with its mac; `held` says what present() finds where."""

    def __init__(self, held: dict[bytes | None, set[Address]] | None = None) -> None:
        self.calls: list[tuple[str, str, list[Address], bytes | None]] = []
        self.held = held or {}

    async def add(self, interface: str, networks: Networks, mac: bytes | None = None) -> None:
        await asyncio.sleep(0.001)
        self.calls.append(("add", interface, [a for a, _ in networks], mac))

    async def remove(self, interface: str, networks: Networks, mac: bytes | None = None) -> None:
        await asyncio.sleep(0.001)
        self.calls.append(("remove", interface, [a for a, _ in networks], mac))

    async def present(self, interface: str, mac: bytes | None = None) -> set[Address]:
        self.calls.append(("present", interface, [], mac))
        return self.held.get(mac, set())

    async def virtual_macs(self, interface: str) -> set[bytes]:
        self.calls.append(("virtual_macs", interface, [], None))
        return {m for m in self.held if m is not None}

    async def close(self) -> None:
        pass


class OldManager:
    """A manager written before virtual MACs: no mac parameter at all."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def add(self, interface: str, networks: Networks) -> None:
        self.calls.append("add")

    async def remove(self, interface: str, networks: Networks) -> None:
        self.calls.append("remove")

    async def present(self, interface: str) -> set[Address]:
        self.calls.append("present")
        return set()

    async def close(self) -> None:
        pass


async def test_requests_behind_a_mac_batch_only_with_the_same_mac() -> None:
    manager = Manager()
    queue = AddressQueue(manager)
    await asyncio.gather(
        queue.add("eth0", [net(1)], MAC),
        queue.add("eth0", [net(2)], MAC),
        queue.add("eth0", [net(3)]),
        queue.add("eth0", [net(4)], bytes.fromhex("00005e000108")),
        queue.add("eth0", [net(5)], bytes.fromhex("00005e000108")),
    )
    # One call per run of requests behind the same MAC (or none).
    assert [(c[2], c[3]) for c in manager.calls] == [
        ([net(1)[0], net(2)[0]], MAC),
        ([net(3)[0]], None),
        ([net(4)[0], net(5)[0]], bytes.fromhex("00005e000108")),
    ]
    await queue.remove("eth0", [net(1)], MAC)
    assert await queue.present("eth0", MAC) == set()
    assert manager.calls[-2:] == [
        ("remove", "eth0", [net(1)[0]], MAC),
        ("present", "eth0", [], MAC),
    ]


async def test_without_a_mac_a_manager_of_before_still_fits() -> None:
    manager = OldManager()
    queue = AddressQueue(manager)  # type: ignore[arg-type]
    await queue.add("eth0", [net(1)])
    await queue.remove("eth0", [net(1)])
    assert await queue.present("eth0") == set()
    assert manager.calls == ["add", "remove", "present"]


def config(mac: str = "interface", **more: object) -> VirtualHostConfig:
    addresses = (net(7)[0], IPv6Address("2001:db8::7"))
    return VirtualHostConfig("eth0", SRC, 7, addresses, mac=mac, **more)  # type: ignore[arg-type]


def test_the_addresses_mac_is_the_cores() -> None:
    assert config().address_mac is None
    assert config("ucarp").address_mac is None
    assert config("virtual").address_mac == MAC  # CARP: the IPv4 one for both families
    assert stale_macs(7) == (MAC, bytes.fromhex("00005e000207"))


async def test_stale_addresses_behind_a_vhids_macs_go_whatever_the_config_says_now(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v6 = IPv6Address("2001:db8::7")
    # A macvlan of vhid 7's IPv4 MAC is there, none of its IPv6 one (nor of vhid 8's, asked).
    manager = Manager({None: {SRC}, MAC: {net(7)[0], v6}, bytes.fromhex("00005e000108"): set()})
    with caplog.at_level(logging.WARNING, "pycarp"):
        await remove_stale(manager, [config()], virtual_macs=True)
    assert [c for c in manager.calls if c[0] == "remove"] == [
        ("remove", "eth0", [net(7)[0], v6], MAC)
    ]
    assert [c[3] for c in manager.calls if c[0] == "present"] == [None, MAC]
    assert "eth0/vhid 7: 198.51.100.7, 2001:db8::7 already configured behind 00:00:5e:00:01:07" in (
        caplog.text
    )


async def test_no_virtual_macs_no_questions_about_them() -> None:
    manager = Manager({None: {net(7)[0]}})
    await remove_stale(manager, [config()], virtual_macs=False)
    assert [(c[0], c[3]) for c in manager.calls] == [("present", None), ("remove", None)]
