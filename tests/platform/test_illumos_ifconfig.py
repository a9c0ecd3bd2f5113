"""The illumos address manager, against a runner that records ifconfig commands.

The sample outputs follow illumos `ifconfig -a` as root (IPv4 blocks, then IPv6).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from ipaddress import IPv4Address

import pytest

from pycarp.platform.base import AddressError, AddressManager
from pycarp.platform.illumos import IfconfigAddressManager, parse_ifconfig, run_command

IFC = "/usr/sbin/ifconfig"
VIP24 = (IPv4Address("198.51.100.200"), 24)
VIP32 = (IPv4Address("203.0.113.7"), 32)

V6_TAIL = """\
lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1
\tinet6 ::1/128
net0: flags=20002004841<UP,RUNNING,MULTICAST,DHCP,IPv6> mtu 1500 index 2
\tinet6 fe80::8:20ff:fe9e:417c/10
\tether 2:8:20:9e:41:7c
"""

BASE = (
    """\
lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1
\tinet 127.0.0.1 netmask ff000000
net0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 198.51.100.10 netmask ffffff00 broadcast 198.51.100.255
\tether 2:8:20:9e:41:7c
net1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3
\tinet 203.0.113.10 netmask ffffff00 broadcast 203.0.113.255
\tether 2:8:20:11:22:33
"""
    + V6_TAIL
)

# BASE plus both VIPs on logical units of net0, as `addif` leaves them.
WITH_VIPS = BASE.replace(
    "net1:",
    """\
net0:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 198.51.100.200 netmask ffffff00 broadcast 198.51.100.255
net0:2: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 203.0.113.7 netmask ffffffff
net1:""",
    1,
)


class Recorder:
    """A Runner: answers `ifconfig -a` with a fixed text, records every argv."""

    def __init__(self, listing: str, fail: dict[str, tuple[int, str]] | None = None) -> None:
        self.listing = listing
        self.fail = fail or {}  # " ".join(argv) -> (status, output)
        self.calls: list[list[str]] = []

    async def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        line = " ".join(argv)
        if line in self.fail:
            return self.fail[line]
        if argv[1:] == ["-a"]:
            return 0, self.listing
        if "addif" in argv:
            return 0, "Created new logical interface net0:3\n"
        return 0, ""


def manager(rec: Recorder) -> IfconfigAddressManager:
    mgr = IfconfigAddressManager(runner=rec)
    _: AddressManager = mgr  # it satisfies the Protocol
    return mgr


# --- parsing ---------------------------------------------------------------


def test_parse_blocks() -> None:
    blocks = parse_ifconfig(WITH_VIPS)
    v4 = [(b.name, b.address, b.prefixlen, b.up) for b in blocks if b.ipv4]
    assert v4 == [
        ("lo0", IPv4Address("127.0.0.1"), 8, True),
        ("net0", IPv4Address("198.51.100.10"), 24, True),
        ("net0:1", IPv4Address("198.51.100.200"), 24, True),
        ("net0:2", IPv4Address("203.0.113.7"), 32, True),
        ("net1", IPv4Address("203.0.113.10"), 24, True),
    ]
    v6 = [(b.name, b.address) for b in blocks if not b.ipv4]
    assert v6 == [("lo0", None), ("net0", None)]


def test_parse_down_point_to_point_and_empty_units() -> None:
    text = """\
net0:4: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 198.51.100.201 netmask ffffff80 broadcast 198.51.100.255
net0:5: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
\tinet 0.0.0.0 netmask 0
ip.tun0: flags=10008d1<UP,POINTOPOINT,RUNNING,NOARP,MULTICAST,IPv4> mtu 1480 index 5
\tinet 203.0.113.1 --> 203.0.113.2 netmask ff000000
"""
    blocks = parse_ifconfig(text)
    assert [(b.physical, b.unit, b.up) for b in blocks] == [
        ("net0", 4, False),
        ("net0", 5, False),
        ("ip.tun0", 0, True),
    ]
    assert blocks[0].prefixlen == 25
    assert blocks[1].address == IPv4Address("0.0.0.0")
    assert blocks[1].prefixlen == 0
    assert blocks[2].address == IPv4Address("203.0.113.1")
    assert blocks[2].prefixlen == 8


def test_parse_ignores_noise() -> None:
    assert parse_ifconfig("") == []
    assert parse_ifconfig("\tinet 198.51.100.1 netmask ffffff00\n") == []  # no header
    weird = parse_ifconfig(
        "net0: flags=1000843<UP,IPv4> mtu 1500 index 2\n\tinet 1.2.3.4 netmask ff00ff00\n"
    )
    assert weird[0].address == IPv4Address("1.2.3.4")
    assert weird[0].prefixlen is None  # non-contiguous mask


# --- add -------------------------------------------------------------------


async def test_add_one() -> None:
    rec = Recorder(BASE)
    await manager(rec).add("net0", [VIP24])
    assert rec.calls == [
        [IFC, "-a"],
        [IFC, "net0", "addif", "198.51.100.200/24", "up"],
    ]


async def test_add_two() -> None:
    rec = Recorder(BASE)
    await manager(rec).add("net0", [VIP24, VIP32])
    assert rec.calls == [
        [IFC, "-a"],
        [IFC, "net0", "addif", "198.51.100.200/24", "up"],
        [IFC, "net0", "addif", "203.0.113.7/32", "up"],
    ]


async def test_add_again_is_a_no_op() -> None:
    rec = Recorder(WITH_VIPS)
    await manager(rec).add("net0", [VIP24, VIP32])
    assert rec.calls == [[IFC, "-a"]]


async def test_add_only_what_is_missing() -> None:
    rec = Recorder(WITH_VIPS)
    await manager(rec).add("net0", [VIP24, (IPv4Address("198.51.100.201"), 24)])
    assert rec.calls == [
        [IFC, "-a"],
        [IFC, "net0", "addif", "198.51.100.201/24", "up"],
    ]


async def test_add_counts_the_physical_address_as_present() -> None:
    rec = Recorder(BASE)
    await manager(rec).add("net0", [(IPv4Address("198.51.100.10"), 32)])
    assert rec.calls == [[IFC, "-a"]]


async def test_add_is_per_interface() -> None:
    # 203.0.113.10 is net1's address; on net0 it is missing.
    rec = Recorder(BASE)
    await manager(rec).add("net0", [(IPv4Address("203.0.113.10"), 32)])
    assert rec.calls[1] == [IFC, "net0", "addif", "203.0.113.10/32", "up"]


async def test_add_replaces_a_unit_left_down() -> None:
    listing = WITH_VIPS.replace(
        "net0:1: flags=1000843<UP,BROADCAST,", "net0:1: flags=1000842<BROADCAST,"
    )
    rec = Recorder(listing)
    await manager(rec).add("net0", [VIP24])
    assert rec.calls == [
        [IFC, "-a"],
        [IFC, "net0:1", "unplumb"],
        [IFC, "net0", "addif", "198.51.100.200/24", "up"],
    ]


async def test_add_refuses_to_raise_a_down_physical_interface() -> None:
    listing = BASE.replace("net0: flags=1000843<UP,BROADCAST,", "net0: flags=1000842<BROADCAST,")
    rec = Recorder(listing)
    with pytest.raises(AddressError, match=r"net0 itself holds 198\.51\.100\.10 but is down"):
        await manager(rec).add("net0", [(IPv4Address("198.51.100.10"), 24)])
    assert rec.calls == [[IFC, "-a"]]


# --- remove ----------------------------------------------------------------


async def test_remove() -> None:
    rec = Recorder(WITH_VIPS)
    await manager(rec).remove("net0", [VIP24, VIP32])
    assert rec.calls == [
        [IFC, "-a"],
        [IFC, "net0:1", "down"],
        [IFC, "net0:1", "unplumb"],
        [IFC, "net0:2", "down"],
        [IFC, "net0:2", "unplumb"],
    ]


async def test_remove_absent_is_a_no_op() -> None:
    rec = Recorder(BASE)
    await manager(rec).remove("net0", [VIP24, VIP32])
    assert rec.calls == [[IFC, "-a"]]


async def test_remove_is_exact() -> None:
    rec = Recorder(WITH_VIPS)
    mgr = manager(rec)
    await mgr.remove("net0", [(VIP24[0], 32)])  # same address, another prefix: not ours
    await mgr.remove("net0", [(IPv4Address("198.51.100.10"), 24)])  # the physical address
    await mgr.remove("net1", [VIP24])  # our address, but on net0
    assert rec.calls == [[IFC, "-a"]] * 3


# --- present ---------------------------------------------------------------


async def test_present() -> None:
    mgr = manager(Recorder(WITH_VIPS))
    assert await mgr.present("net0") == {IPv4Address("198.51.100.10"), VIP24[0], VIP32[0]}
    assert await mgr.present("net1") == {IPv4Address("203.0.113.10")}
    assert await manager(Recorder(BASE)).present("net0") == {IPv4Address("198.51.100.10")}


async def test_present_skips_down_and_empty_units() -> None:
    listing = WITH_VIPS.replace(
        "net0:1: flags=1000843<UP,BROADCAST,", "net0:1: flags=1000842<BROADCAST,"
    ).replace("inet 203.0.113.7 netmask ffffffff", "inet 0.0.0.0 netmask 0")
    assert await manager(Recorder(listing)).present("net0") == {IPv4Address("198.51.100.10")}


# --- errors ----------------------------------------------------------------


async def test_missing_interface() -> None:
    for call in ("add", "remove", "present"):
        rec = Recorder(BASE)
        mgr = manager(rec)
        with pytest.raises(AddressError, match="net7: no such interface"):
            if call == "present":
                await mgr.present("net7")
            else:
                await getattr(mgr, call)("net7", [VIP24])
        assert rec.calls == [[IFC, "-a"]]


async def test_addif_failure_carries_the_output() -> None:
    said = "ifconfig: addif: SIOCLIFADDIF: net0: Permission denied\n"
    rec = Recorder(BASE, fail={f"{IFC} net0 addif 198.51.100.200/24 up": (1, said)})
    with pytest.raises(AddressError) as caught:
        await manager(rec).add("net0", [VIP24, VIP32])
    message = str(caught.value)
    assert "ifconfig net0 addif 198.51.100.200/24 up` failed (exit status 1)" in message
    assert "SIOCLIFADDIF: net0: Permission denied" in message
    assert len(rec.calls) == 2  # stopped at the first failure


async def test_listing_failure() -> None:
    rec = Recorder(BASE, fail={f"{IFC} -a": (2, "")})
    with pytest.raises(AddressError, match=r"-a` failed \(exit status 2\): no output"):
        await manager(rec).present("net0")


async def test_down_failure_skips_unplumb() -> None:
    said = "ifconfig: SIOCSLIFFLAGS: net0:1: no such interface\n"
    rec = Recorder(WITH_VIPS, fail={f"{IFC} net0:1 down": (1, said)})
    with pytest.raises(AddressError, match="net0:1: no such interface"):
        await manager(rec).remove("net0", [VIP24])
    assert rec.calls == [[IFC, "-a"], [IFC, "net0:1", "down"]]


@pytest.mark.parametrize("name", ["net0:1", "-a", "", "net 0", "x" * 40])
async def test_bad_interface_names_never_reach_ifconfig(name: str) -> None:
    rec = Recorder(BASE)
    mgr = manager(rec)
    with pytest.raises(AddressError, match="not a physical interface name"):
        await mgr.add(name, [VIP24])
    with pytest.raises(AddressError, match="not a physical interface name"):
        await mgr.present(name)
    assert rec.calls == []


@pytest.mark.parametrize("prefixlen", [0, 33])
async def test_bad_prefix(prefixlen: int) -> None:
    rec = Recorder(BASE)
    with pytest.raises(AddressError, match=r"prefix length must be 1\.\.32"):
        await manager(rec).add("net0", [(VIP24[0], prefixlen)])
    assert rec.calls == []


async def test_changes_are_serialised() -> None:
    # Two adds at once must not both read the listing before either acts.
    order: list[str] = []

    async def slow(argv: Sequence[str]) -> tuple[int, str]:
        order.append(" ".join(argv[1:]))
        await asyncio.sleep(0.01)
        return (0, BASE) if argv[1:] == ["-a"] else (0, "")

    mgr = IfconfigAddressManager(runner=slow)
    await asyncio.gather(mgr.add("net0", [VIP24]), mgr.add("net0", [VIP32]))
    assert order == ["-a", "net0 addif 198.51.100.200/24 up", "-a", "net0 addif 203.0.113.7/32 up"]
    await mgr.close()


# --- the default runner (real processes, nothing networked) ----------------


async def test_run_command_output_and_status() -> None:
    status, output = await run_command(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert status == 3
    assert output == "out\nerr\n"


async def test_run_command_missing_binary() -> None:
    status, output = await run_command(["/nonexistent/ifconfig", "-a"])
    assert status == 127
    assert "cannot run /nonexistent/ifconfig" in output


async def test_run_command_timeout() -> None:
    started = time.monotonic()
    status, output = await run_command(["sleep", "30"], timeout=0.2)
    assert (status, output) == (-1, "timed out after 0.2s")
    assert time.monotonic() - started < 5
