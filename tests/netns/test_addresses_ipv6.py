"""IPv6 virtual addresses through the rtnetlink address manager, on a lab host.

IPv6 addresses go on without duplicate address detection (IFA_F_NODAD), so
they serve at once: a takeover must not wait for DAD.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv6Address

import pytest

from pycarp.lab import Host, Lab
from pycarp.platform.base import AddressError, AddressManager
from pycarp.platform.linux import LinuxPlatform
from tests.netns.observe import ip_entries, link_local

pytestmark = pytest.mark.netns

VIP6 = (IPv6Address("2001:db8::10"), 64)
VIP6_HOST = (IPv6Address("2001:db8:1::7"), 128)
VIP4 = (IPv4Address("203.0.113.7"), 32)


def inet6_entries(host: Host) -> dict[str, dict[str, object]]:
    """ "address/len" -> the global-scope IPv6 entries of `ip -j addr` for eth0 in the host."""
    return {
        f"{a['local']}/{a['prefixlen']}": a
        for a in ip_entries(host)
        if a.get("family") == "inet6" and a.get("scope") == "global"
    }


def link_local_of(host: Host) -> IPv6Address:
    found = link_local(host)
    assert found is not None
    return IPv6Address(found)


@pytest.fixture
def host(lab: Lab) -> Host:
    return lab.add_host("a", "198.51.100.1")


@pytest.fixture
async def manager(host: Host) -> AsyncIterator[AddressManager]:
    with host.enter():
        mgr = LinuxPlatform().open_address_manager()
    try:
        yield mgr
    finally:
        await mgr.close()


async def test_add_present_remove(host: Host, manager: AddressManager) -> None:
    await manager.add("eth0", [VIP4, VIP6, VIP6_HOST])
    entries = inet6_entries(host)
    assert set(entries) == {"2001:db8::10/64", "2001:db8:1::7/128"}
    for entry in entries.values():
        assert "tentative" not in entry, entry  # no DAD: serving at once
        assert entry.get("nodad") is True, entry
        assert "broadcast" not in entry
    assert await manager.present("eth0") == {
        IPv4Address("198.51.100.1"),
        VIP4[0],
        VIP6[0],
        VIP6_HOST[0],
        link_local_of(host),
    }

    await manager.add("eth0", [VIP6])  # already there: fine, nothing doubled
    assert set(inet6_entries(host)) == set(entries)

    await manager.remove("eth0", [VIP4, VIP6, VIP6_HOST])
    assert inet6_entries(host) == {}
    assert await manager.present("eth0") == {IPv4Address("198.51.100.1"), link_local_of(host)}
    await manager.remove("eth0", [VIP6])  # already gone: fine
    assert inet6_entries(host) == {}


async def test_an_added_address_can_be_used_at_once(host: Host, manager: AddressManager) -> None:
    # Binding to an address still in DAD fails (EADDRNOTAVAIL): this is what a
    # service taking over the virtual address would meet.
    await manager.add("eth0", [VIP6])
    with host.enter():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.bind((str(VIP6[0]), 0))
        assert sock.getsockname()[0] == str(VIP6[0])
    finally:
        sock.close()


async def test_remove_is_exact(host: Host, manager: AddressManager) -> None:
    await manager.add("eth0", [VIP6])
    await manager.remove("eth0", [(VIP6[0], 128)])  # not that entry: it stays
    assert "2001:db8::10/64" in inet6_entries(host)


@pytest.mark.parametrize(
    "network",
    [(VIP6[0], 129), (VIP6[0], 0), (VIP4[0], 33)],
    ids=["v6-129", "v6-0", "v4-33"],
)
async def test_bad_prefix(
    host: Host, manager: AddressManager, network: tuple[IPv4Address | IPv6Address, int]
) -> None:
    limit = "128" if isinstance(network[0], IPv6Address) else "32"
    for call in (manager.add, manager.remove):
        with pytest.raises(AddressError, match=rf"prefix length must be 1\.\.{limit}"):
            await call("eth0", [VIP6_HOST, network])  # checked before anything changes
    assert inet6_entries(host) == {}


async def test_ipv6_off_on_the_interface(host: Host, manager: AddressManager) -> None:
    host.run("sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1")
    with pytest.raises(AddressError, match=r"cannot add 2001:db8::10/64: .*IPv6 disabled"):
        await manager.add("eth0", [VIP6])
    assert await manager.present("eth0") == {IPv4Address("198.51.100.1")}
