"""The rtnetlink address manager on a lab host.

The manager is opened inside the host's namespace (its netlink socket is made
there and stays there); the coroutines then run on the test's event loop with
the thread back in the root namespace, which is how the daemon uses it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv6Address

import pytest

from pycarp.lab import Host, Lab
from pycarp.platform.base import AddressError, AddressManager
from pycarp.platform.linux import LinuxPlatform
from tests.netns.observe import ip_entries

pytestmark = pytest.mark.netns

VIP24 = (IPv4Address("198.51.100.200"), 24)
VIP32 = (IPv4Address("203.0.113.7"), 32)
NETWORKS = [VIP24, VIP32]


async def present4(manager: AddressManager, interface: str = "eth0") -> set[IPv4Address]:
    """The IPv4 part of present(): eth0 also has its IPv6 link-local address."""
    return {a for a in await manager.present(interface) if isinstance(a, IPv4Address)}


def thread_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def inet_entries(host: Host) -> dict[str, dict[str, object]]:
    """ "a.b.c.d/len" -> the address entry of `ip -j addr` for eth0 in the host."""
    return {f"{a['local']}/{a['prefixlen']}": a for a in ip_entries(host) if a["family"] == "inet"}


@pytest.fixture
def host(lab: Lab) -> Host:
    return lab.add_host("a", "198.51.100.1")


@pytest.fixture
async def manager(host: Host) -> AsyncIterator[AddressManager]:
    home = thread_netns()
    with host.enter():
        mgr = LinuxPlatform().open_address_manager()
    assert thread_netns() == home  # only the socket stays behind in the host
    try:
        yield mgr
    finally:
        await mgr.close()


async def test_add_present_remove(host: Host, manager: AddressManager) -> None:
    await manager.add("eth0", NETWORKS)
    entries = inet_entries(host)
    assert set(entries) == {"198.51.100.1/24", "198.51.100.200/24", "203.0.113.7/32"}
    assert entries["198.51.100.200/24"]["broadcast"] == "198.51.100.255"
    assert "broadcast" not in entries["203.0.113.7/32"]

    await manager.add("eth0", NETWORKS)  # already there: fine, nothing doubled
    assert set(inet_entries(host)) == set(entries)

    assert await present4(manager) == {IPv4Address("198.51.100.1"), VIP24[0], VIP32[0]}
    others = await manager.present("eth0") - await present4(manager)
    assert all(isinstance(a, IPv6Address) and a.is_link_local for a in others), others

    await manager.remove("eth0", NETWORKS)
    assert set(inet_entries(host)) == {"198.51.100.1/24"}
    assert await present4(manager) == {IPv4Address("198.51.100.1")}

    await manager.remove("eth0", NETWORKS)  # already gone: fine
    assert set(inet_entries(host)) == {"198.51.100.1/24"}


async def test_only_the_host_namespace_changes(host: Host, manager: AddressManager) -> None:
    await manager.add("eth0", [VIP32])
    root = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    assert str(VIP32[0]) not in root.stdout
    assert "203.0.113.7/32" in inet_entries(host)


async def test_remove_is_exact(host: Host, manager: AddressManager) -> None:
    # The host's own 198.51.100.1/24 is not "198.51.100.1/32": it must survive.
    await manager.remove("eth0", [(IPv4Address(host.ip), 32)])
    assert "198.51.100.1/24" in inet_entries(host)


async def test_a_second_prefix_of_one_address(host: Host, manager: AddressManager) -> None:
    # The kernel keeps the same address with two prefixes as two entries; remove
    # takes exactly the one asked for.
    await manager.add("eth0", [(VIP24[0], 24), (VIP24[0], 32)])
    assert {"198.51.100.200/24", "198.51.100.200/32"} <= set(inet_entries(host))
    await manager.remove("eth0", [(VIP24[0], 32)])
    entries = set(inet_entries(host))
    assert "198.51.100.200/24" in entries
    assert "198.51.100.200/32" not in entries


async def test_missing_interface(manager: AddressManager) -> None:
    for call in (
        manager.add("nosuch0", NETWORKS),
        manager.remove("nosuch0", NETWORKS),
        manager.present("nosuch0"),
    ):
        with pytest.raises(AddressError, match="nosuch0: no such interface"):
            await call


async def test_bad_prefix(manager: AddressManager) -> None:
    with pytest.raises(AddressError, match="prefix length"):
        await manager.add("eth0", [(VIP24[0], 33)])


async def test_close_releases_the_socket(host: Host) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with host.enter():
            mgr = LinuxPlatform().open_address_manager()
        await mgr.present("eth0")
        await mgr.close()
        await mgr.close()  # twice is fine
    with host.enter():
        unused = LinuxPlatform().open_address_manager()
    await unused.close()  # never used: its socket must go too
    assert len(os.listdir("/proc/self/fd")) == before


def test_permission_denied(host: Host) -> None:
    # A process without CAP_NET_ADMIN (setpriv drops it from the bounding set,
    # so even root's exec does not get it back) must get a clear AddressError.
    code = textwrap.dedent(
        """
        import asyncio
        from ipaddress import IPv4Address
        from pycarp.platform.base import AddressError
        from pycarp.platform.linux import LinuxPlatform

        async def main() -> None:
            mgr = LinuxPlatform().open_address_manager()
            try:
                await mgr.add("eth0", [(IPv4Address("203.0.113.7"), 32)])
            except AddressError as exc:
                print("AddressError:", exc)
            finally:
                await mgr.close()

        asyncio.run(main())
        """
    )
    done = host.run("setpriv", "--bounding-set=-net_admin", sys.executable, "-c", code, check=False)
    assert done.returncode == 0, done.stderr
    assert "AddressError: eth0: cannot add 203.0.113.7/32: Operation not permitted" in (done.stdout)
    assert "203.0.113.7/32" not in inet_entries(host)
