"""Virtual addresses behind a virtual MAC: the rtnetlink manager's macvlans, on a lab segment.

`a` holds the addresses; `client` sits across the lab's bridge and asks for
them with ARP and ND from raw sockets (so that every answer is counted, not
only the one a neighbour cache keeps) and with ping. The manager is opened
in a's namespace and called from the root namespace, as in
test_addresses_linux.py; the root namespace's sysctls are compared before
and after each test, since the manager writes sysctls of interfaces whose
names (eth0) the machine has too.
"""

from __future__ import annotations

import asyncio
import glob
import json
import select
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from pycarp.platform.base import AddressError, AddressManager
from pycarp.platform.linux import LinuxPlatform
from pycarp.platform.linux.addresses import REAP_DELAY
from pycarp.platform.linux.macvlan import device_name
from tests.netns.observe import neighbour_mac

pytestmark = pytest.mark.netns

MAC7 = bytes.fromhex("00005e000107")  # CARP vhid 7, VRRP IPv4 VRID 7
MAC7_V6 = bytes.fromhex("00005e000207")  # VRRP IPv6 VRID 7
MAC8 = bytes.fromhex("00005e000108")
VIP = (IPv4Address("198.51.100.77"), 32)
VIP8 = (IPv4Address("198.51.100.78"), 32)
VIP6 = (IPv6Address("2001:db8::77"), 64)
GROUP = IPv4Address("224.0.0.18")
ETH_P_ARP = 0x0806
ETH_P_IPV4 = 0x0800
ETH_P_IPV6 = 0x86DD


def text(mac: bytes) -> str:
    return mac.hex(":")


def root_sysctls() -> dict[str, str]:
    """The root namespace's interface settings that the manager writes in a's."""
    names = ("arp_ignore", "arp_announce", "rp_filter", "accept_ra", "addr_gen_mode")
    paths = [p for n in names for p in glob.glob(f"/proc/sys/net/ipv*/conf/*/{n}")]
    found = {}
    for path in paths:
        with open(path) as f:
            found[path] = f.read()
    return found


@pytest.fixture(autouse=True)
def root_untouched() -> Iterator[None]:
    before = root_sysctls()
    yield
    assert root_sysctls() == before, "a sysctl of the root namespace changed"


@pytest.fixture
def host(lab: Lab) -> Host:
    a = lab.add_host("a", "198.51.100.1")
    a.run("ip", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
    return a


@pytest.fixture
def client(lab: Lab, host: Host) -> Host:
    c = lab.add_host("client", "198.51.100.2")
    c.run("ip", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
    return c


@pytest.fixture
async def manager(host: Host) -> AsyncIterator[AddressManager]:
    with host.enter():
        mgr = LinuxPlatform().open_address_manager()
    try:
        yield mgr
    finally:
        await mgr.close()


def ifindex(host: Host, name: str = "eth0") -> int:
    return int(host.run("cat", f"/sys/class/net/{name}/ifindex").stdout)


def links(host: Host) -> dict[str, dict[str, Any]]:
    """name -> `ip -d -j link` entry."""
    return {e["ifname"]: e for e in json.loads(host.run("ip", "-d", "-j", "link").stdout)}


def addresses_on(host: Host, name: str) -> set[str]:
    out = json.loads(host.run("ip", "-j", "addr", "show", "dev", name).stdout)
    return {f"{a['local']}/{a['prefixlen']}" for e in out for a in e["addr_info"]}


async def reaped() -> None:
    """The manager deletes empty macvlans REAP_DELAY after the last change: let it."""
    await asyncio.sleep(REAP_DELAY + 0.5)


def sysctl(host: Host, family: str, name: str, key: str) -> int:
    return int(host.run("cat", f"/proc/sys/net/{family}/conf/{name}/{key}").stdout)


# --- asking from the client --------------------------------------------------------------


def _packet_socket(client: Host, proto: int) -> socket.socket:
    with client.enter():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    sock.bind((client.ifname, proto))
    return sock


def _collect(sock: socket.socket, request: bytes, parse: Any, tries: int, wait: float) -> list[Any]:
    found: list[Any] = []
    for _ in range(tries):
        sock.send(request)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            answer = parse(sock.recv(2048))
            if answer is not None:
                found.append(answer)
    return found


def arp_answers(client: Host, ip: IPv4Address, tries: int = 3, wait: float = 0.3) -> list[str]:
    """The sender MAC of each ARP reply for ip to `tries` broadcast requests."""
    mac = bytes.fromhex(client.mac().replace(":", ""))
    request = b"\xff" * 6 + mac + struct.pack("!HHHBBH", ETH_P_ARP, 1, 0x0800, 6, 4, 1)
    request += mac + socket.inet_aton(client.ip) + bytes(6) + ip.packed

    def parse(frame: bytes) -> str | None:
        if frame[12:14] != b"\x08\x06" or frame[20:22] != b"\x00\x02" or frame[28:32] != ip.packed:
            return None
        return frame[22:28].hex(":")

    with _packet_socket(client, ETH_P_ARP) as sock:
        return _collect(sock, request, parse, tries, wait)


def _checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def nd_answers(
    client: Host, target: IPv6Address, source: IPv6Address, tries: int = 3, wait: float = 0.3
) -> list[tuple[str, str]]:
    """(Ethernet source, target link-layer address) of each NA for target to `tries` NSs."""
    mac = bytes.fromhex(client.mac().replace(":", ""))
    group = IPv6Address("ff02::1:ff00:0").packed[:13] + target.packed[13:]
    icmp = struct.pack("!BBHI", 135, 0, 0, 0) + target.packed + bytes((1, 1)) + mac
    pseudo = source.packed + group + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", _checksum(pseudo + icmp)) + icmp[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + source.packed + group
    request = b"\x33\x33" + group[12:] + mac + struct.pack("!H", ETH_P_IPV6) + ip6 + icmp

    def parse(frame: bytes) -> tuple[str, str] | None:
        icmp = frame[54:]
        if frame[12:14] != b"\x86\xdd" or frame[20] != 58 or icmp[:1] != b"\x88":
            return None
        if icmp[8:24] != target.packed:
            return None
        options, tlla = icmp[24:], ""
        while len(options) >= 8 and options[1]:
            if options[0] == 2:
                tlla = options[2:8].hex(":")
            options = options[options[1] * 8 :]
        return frame[6:12].hex(":"), tlla

    with _packet_socket(client, ETH_P_IPV6) as sock:
        return _collect(sock, request, parse, tries, wait)


# --- the macvlan itself --------------------------------------------------------------------


async def test_add_makes_the_macvlan_and_remove_deletes_it(
    host: Host, manager: AddressManager
) -> None:
    name = device_name(ifindex(host), MAC7)
    assert name == f"pcv{ifindex(host):x}-107"
    await manager.add("eth0", [VIP, VIP6], MAC7)
    link = links(host)[name]
    assert link["address"] == text(MAC7)
    assert link["link"] == "eth0"
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert link["linkinfo"]["info_data"]["mode"] == "bridge"
    assert "UP" in link["flags"]
    # The addresses are on the macvlan only; it has no link-local address of its own.
    assert addresses_on(host, name) == {"198.51.100.77/32", "2001:db8::77/64"}
    assert not addresses_on(host, "eth0") & {"198.51.100.77/32", "2001:db8::77/64"}
    assert await manager.present("eth0", MAC7) == {VIP[0], VIP6[0]}
    assert VIP[0] not in await manager.present("eth0")
    assert await manager.present("eth0", MAC8) == set()
    assert await manager.virtual_macs("eth0") == {MAC7}
    # Quiet macvlan, parent answering ARP only for its own addresses.
    assert sysctl(host, "ipv6", name, "addr_gen_mode") == 1
    assert sysctl(host, "ipv6", name, "accept_ra") == 0
    assert sysctl(host, "ipv4", name, "arp_ignore") == 1
    assert sysctl(host, "ipv4", name, "arp_announce") == 2
    assert sysctl(host, "ipv4", "eth0", "arp_ignore") == 1
    assert sysctl(host, "ipv4", "eth0", "arp_announce") == 2

    await manager.add("eth0", [VIP], MAC7)  # again: the same macvlan, nothing doubled
    assert links(host)[name]["ifindex"] == link["ifindex"]
    assert addresses_on(host, name) == {"198.51.100.77/32", "2001:db8::77/64"}

    await manager.remove("eth0", [VIP], MAC7)  # one address left: the macvlan stays
    await reaped()
    assert addresses_on(host, name) == {"2001:db8::77/64"}
    await manager.remove("eth0", [VIP6], MAC7)
    assert not addresses_on(host, name)  # at once; the macvlan a moment later
    await reaped()
    assert name not in links(host)
    assert await manager.present("eth0", MAC7) == set()
    assert await manager.virtual_macs("eth0") == set()
    await manager.remove("eth0", [VIP, VIP6], MAC7)  # gone already: fine
    assert name not in links(host) and "eth0" in links(host)


async def test_ipv6_only_leaves_the_parents_arp_alone(host: Host, manager: AddressManager) -> None:
    await manager.add("eth0", [VIP6], MAC7_V6)
    assert sysctl(host, "ipv4", "eth0", "arp_ignore") == 0
    assert sysctl(host, "ipv4", "eth0", "arp_announce") == 0
    await manager.remove("eth0", [VIP6], MAC7_V6)
    await reaped()
    assert device_name(ifindex(host), MAC7_V6) not in links(host)


async def test_two_vhids_and_both_families_of_one_vrid(
    host: Host, client: Host, manager: AddressManager
) -> None:
    await manager.add("eth0", [VIP], MAC7)
    await manager.add("eth0", [VIP8], MAC8)
    await manager.add("eth0", [VIP6], MAC7_V6)
    names = {m: device_name(ifindex(host), m) for m in (MAC7, MAC8, MAC7_V6)}
    assert len(set(names.values())) == 3
    assert await manager.virtual_macs("eth0") == {MAC7, MAC8, MAC7_V6}
    found = links(host)
    assert {m: found[n]["address"] for m, n in names.items()} == {m: text(m) for m in names}
    assert arp_answers(client, VIP[0]) == [text(MAC7)] * 3
    assert arp_answers(client, VIP8[0]) == [text(MAC8)] * 3
    assert set(nd_answers(client, VIP6[0], IPv6Address("2001:db8::2"))) == {
        (text(MAC7_V6), text(MAC7_V6))
    }

    await manager.remove("eth0", [VIP], MAC7)  # the others are untouched
    assert arp_answers(client, VIP[0]) == []
    await reaped()
    assert names[MAC7] not in links(host)
    assert addresses_on(host, names[MAC8]) == {"198.51.100.78/32"}
    assert arp_answers(client, VIP8[0]) == [text(MAC8)] * 3


# --- what the client sees -----------------------------------------------------------------


async def test_the_client_resolves_ipv4_to_the_virtual_mac_only(
    host: Host, client: Host, manager: AddressManager
) -> None:
    await manager.add("eth0", [VIP], MAC7)
    answers = arp_answers(client, VIP[0], tries=5)
    assert answers == [text(MAC7)] * 5, answers  # never the parent's MAC as well
    # The host's own address still answers from the parent, not from the virtual MAC.
    assert arp_answers(client, IPv4Address(host.ip)) == [host.mac().lower()] * 3
    # A ping makes a ask for the client from its parent: that request must not
    # tell the client the virtual address is at the parent's MAC.
    client.run("ip", "neigh", "flush", "dev", "eth0")
    host.run("ip", "neigh", "flush", "all")
    assert client.ping(str(VIP[0]), count=3)
    assert neighbour_mac(client, str(VIP[0])) == text(MAC7)
    time.sleep(0.5)  # a's request for the client has been answered by now
    assert neighbour_mac(client, str(VIP[0])) == text(MAC7)


async def test_the_client_resolves_ipv6_to_the_virtual_mac_only(
    host: Host, client: Host, manager: AddressManager
) -> None:
    await manager.add("eth0", [VIP6], MAC7)
    answers = nd_answers(client, VIP6[0], IPv6Address("2001:db8::2"), tries=5)
    assert answers == [(text(MAC7), text(MAC7))] * 5, answers
    host_mac = host.mac().lower()
    assert (
        nd_answers(client, IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2"))
        == [(host_mac, host_mac)] * 3
    )
    client.run("ip", "-6", "neigh", "flush", "dev", "eth0")
    assert client.ping(str(VIP6[0]), count=3)
    assert neighbour_mac(client, str(VIP6[0])) == text(MAC7)


async def test_strict_reverse_path_filtering_does_not_drop_the_clients(
    host: Host, client: Host, manager: AddressManager
) -> None:
    host.run("sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=1")
    await manager.add("eth0", [VIP], MAC7)
    assert sysctl(host, "ipv4", device_name(ifindex(host), MAC7), "rp_filter") == 2
    assert client.ping(str(VIP[0]), count=2)


def carp_frame(source_mac: bytes, source: IPv4Address) -> bytes:
    """A protocol-112 datagram to 224.0.0.18 in a frame from source_mac (the CARP part zeros)."""
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 56, 1, 0x4000, 255, 112, 0, source.packed, GROUP.packed
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return b"\x01\x00\x5e\x00\x00\x12" + source_mac + b"\x08\x00" + header + bytes(36)


async def test_a_peers_advertisement_from_the_same_virtual_mac_reaches_the_parent(
    host: Host, client: Host, manager: AddressManager
) -> None:
    # Two masters (a partition healing) both send from the virtual MAC. A
    # private-mode macvlan would take the other's frames from the wire for
    # itself (they come "from" its MAC), and the receiver on the parent would
    # never hear the peer: the two would stay masters. Bridge mode passes them on.
    await manager.add("eth0", [VIP], MAC7)
    platform = LinuxPlatform()
    with host.enter():
        receiver = platform.open_receiver(
            platform.interface_info("eth0"), GROUP, IPv4Address(host.ip)
        )
    try:
        with _packet_socket(client, ETH_P_IPV4) as sock:
            sock.send(carp_frame(MAC7, IPv4Address(client.ip)))
            assert wait_until(lambda: len(receiver.receive()) == 1, 2.0)
    finally:
        receiver.close()


# --- what is not ours, and what a killed run left ----------------------------------------------


async def test_a_leftover_macvlan_is_used_again(host: Host, manager: AddressManager) -> None:
    await manager.add("eth0", [VIP], MAC7)
    name = device_name(ifindex(host), MAC7)
    index = links(host)[name]["ifindex"]
    with host.enter():
        again = LinuxPlatform().open_address_manager()  # a new run: nothing in memory
    try:
        assert await again.present("eth0", MAC7) == {VIP[0]}
        await again.add("eth0", [VIP, VIP6], MAC7)
        assert links(host)[name]["ifindex"] == index
    finally:
        await again.close()


async def test_an_add_soon_after_the_remove_keeps_the_macvlan(
    host: Host, manager: AddressManager
) -> None:
    await manager.add("eth0", [VIP], MAC7)
    name = device_name(ifindex(host), MAC7)
    index = links(host)[name]["ifindex"]
    await manager.remove("eth0", [VIP], MAC7)
    await manager.add("eth0", [VIP], MAC7)  # a flap: BACKUP and MASTER again
    await reaped()
    assert links(host)[name]["ifindex"] == index
    assert addresses_on(host, name) == {"198.51.100.77/32"}


async def test_close_deletes_what_the_reaper_had_not(host: Host) -> None:
    with host.enter():
        manager = LinuxPlatform().open_address_manager()
    await manager.add("eth0", [VIP], MAC7)
    await manager.remove("eth0", [VIP], MAC7)
    name = device_name(ifindex(host), MAC7)
    assert name in links(host)
    await manager.close()
    assert name not in links(host)


async def test_a_device_with_our_name_that_is_not_ours_is_left_alone(
    host: Host, manager: AddressManager
) -> None:
    name = device_name(ifindex(host), MAC7)
    # Our name, but another MAC: someone else's macvlan.
    host.run(
        "ip", "link", "add", name, "link", "eth0", "address", "02:00:00:00:01:07", "type", "macvlan"
    )
    for call in (
        manager.add("eth0", [VIP], MAC7),
        manager.remove("eth0", [VIP], MAC7),
        manager.present("eth0", MAC7),
    ):
        with pytest.raises(AddressError, match="not pycarp's"):
            await call
    assert links(host)[name]["address"] == "02:00:00:00:01:07"
    assert not addresses_on(host, name)
    # keepalived's, say: a virtual MAC, but not our name.
    host.run(
        "ip", "link", "add", "vrrp.8", "link", "eth0", "address", text(MAC8), "type", "macvlan"
    )
    assert await manager.virtual_macs("eth0") == set()
    assert await manager.present("eth0", MAC8) == set()


async def test_a_missing_parent(manager: AddressManager) -> None:
    with pytest.raises(AddressError, match="nosuch0: no such interface"):
        await manager.add("nosuch0", [VIP], MAC7)


async def test_not_a_virtual_mac(host: Host, manager: AddressManager) -> None:
    with pytest.raises(AddressError, match="not a virtual MAC"):
        await manager.add("eth0", [VIP], bytes.fromhex("020000000107"))
    assert set(links(host)) == {"lo", "eth0"}  # nothing made
