"""illumos refuses a virtual MAC: logical interfaces have their physical interface's MAC."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address

import pytest

from pycarp.platform.base import AddressError
from pycarp.platform.illumos import IfconfigAddressManager, IllumosPlatform

MAC = bytes.fromhex("00005e000107")
NETWORKS = [(IPv4Address("198.51.100.77"), 32)]


async def test_add_remove_and_present_refuse_a_mac_before_running_anything() -> None:
    ran: list[list[str]] = []

    async def runner(argv: Sequence[str]) -> tuple[int, str]:
        ran.append(list(argv))
        return 0, ""

    manager = IfconfigAddressManager(runner=runner)
    for call in (
        manager.add("net0", NETWORKS, MAC),
        manager.remove("net0", NETWORKS, MAC),
        manager.present("net0", MAC),
    ):
        with pytest.raises(AddressError, match="a virtual MAC is not supported on illumos"):
            await call
    assert ran == []


def test_the_platform_says_so() -> None:
    assert IllumosPlatform().supports_virtual_mac is False
