"""The Linux adapters on a real (namespaced) Ethernet segment, against ucarp too.

Sockets are opened "on a host" by entering its namespace for the call; they
stay there afterwards, so one test process can play both ends.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TypeVar

import pytest

from pycarp.lab import Host, Lab
from pycarp.platform import UnsupportedPlatformError, select_platform
from pycarp.platform.base import InterfaceError, InterfaceInfo, Platform
from pycarp.platform.linux import LinuxPlatform, RawCarpReceiver
from pycarp.platform.linux.linkmon import parse_link_messages
from tests.netns.daemons import Daemons

pytestmark = pytest.mark.netns

GROUP = IPv4Address("224.0.0.18")
OTHER_GROUP = IPv4Address("224.0.0.19")
MCAST_MAC = bytes.fromhex("01005e000012")
OTHER_MCAST_MAC = bytes.fromhex("01005e000013")
BROADCAST_MAC = b"\xff" * 6
ETH_P_IP = 0x0800
VHID = 7
VIP = "198.51.100.77"


# --- hand-built packets ----------------------------------------------------


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def carp_datagram(src: str, dst: IPv4Address, vhid: int = VHID, counter: int = 1) -> bytes:
    """A 56-byte IPv4 CARP advertisement as ucarp sends it (digest left zero)."""
    carp = bytearray(struct.pack("!BBBBBBH", 0x21, vhid, 0, 7, 0, 1, 0))
    carp += struct.pack("!Q", counter) + bytes(20)
    struct.pack_into("!H", carp, 6, inet_checksum(bytes(carp)))
    ip = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0x10,  # TOS low delay
            20 + len(carp),
            0x1234,
            0x4000,  # DF
            255,
            112,
            0,
            IPv4Address(src).packed,
            dst.packed,
        )
    )
    struct.pack_into("!H", ip, 10, inet_checksum(bytes(ip)))
    datagram = bytes(ip + carp)
    assert len(datagram) == 56 and inet_checksum(datagram[:20]) == 0
    return datagram


def ether(dst_mac: bytes, datagram: bytes, vhid: int = VHID) -> bytes:
    src_mac = bytes.fromhex(f"00005e0000{vhid:02x}")
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + datagram


# --- bounded waiting -------------------------------------------------------

T = TypeVar("T")


def collect(
    fd: int, read: Callable[[], list[T]], done: Callable[[list[T]], bool], timeout: float
) -> list[T]:
    """Read until done(everything so far) or timeout; never more than 1000 wake-ups."""
    got: list[T] = []
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            got.extend(read())
            if done(got):
                break
    return got


def drain(receiver: RawCarpReceiver, timeout: float = 0.2) -> list[bytes]:
    return collect(receiver.fileno(), receiver.receive, lambda _: False, timeout)


# --- fixtures --------------------------------------------------------------


@dataclass
class Pair:
    lab: Lab
    a: Host
    b: Host
    platform: Platform

    def info(self, host: Host, name: str = "eth0") -> InterfaceInfo:
        with host.enter():
            return self.platform.interface_info(name)


@pytest.fixture
def pair(lab: Lab) -> Pair:
    return Pair(
        lab, lab.add_host("a", "198.51.100.1"), lab.add_host("b", "198.51.100.2"), LinuxPlatform()
    )


@pytest.fixture
def receiver_b(pair: Pair) -> Iterator[RawCarpReceiver]:
    info = pair.info(pair.b)
    with pair.b.enter():
        rx = RawCarpReceiver(info, GROUP, IPv4Address(pair.b.ip))
    try:
        yield rx
    finally:
        rx.close()


# --- tests -----------------------------------------------------------------


def test_select_platform() -> None:
    assert isinstance(select_platform(), LinuxPlatform)
    with pytest.raises(UnsupportedPlatformError, match="darwin"):
        select_platform("darwin")


def test_interface_info(pair: Pair) -> None:
    info = pair.info(pair.a)
    assert info.name == "eth0"
    assert info.mac == bytes.fromhex(pair.a.mac().replace(":", ""))
    assert info.index == int(pair.a.run("cat", "/sys/class/net/eth0/ifindex").stdout)
    assert info.running
    pair.a.link_down()
    assert not pair.info(pair.a).running
    pair.a.link_up()
    assert pair.info(pair.a).running


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope0", "'nope0' does not exist"),
        ("lo", "not Ethernet"),
        ("x" * 16, "invalid interface name"),
        ("", "invalid interface name"),
    ],
)
def test_interface_info_errors(pair: Pair, name: str, message: str) -> None:
    with pytest.raises(InterfaceError, match=message):
        pair.info(pair.a, name)


@pytest.mark.parametrize("dst_mac", [MCAST_MAC, BROADCAST_MAC], ids=["multicast", "broadcast"])
def test_sent_frame_reaches_receiver(
    pair: Pair, receiver_b: RawCarpReceiver, dst_mac: bytes
) -> None:
    info_a = pair.info(pair.a)
    with pair.a.enter():
        sender = pair.platform.open_sender(info_a)
    try:
        datagram = carp_datagram(pair.a.ip, GROUP)
        sender.send(ether(dst_mac, datagram))
        got = collect(receiver_b.fileno(), receiver_b.receive, bool, timeout=3.0)
    finally:
        sender.close()
    assert got == [datagram]  # IP header included, byte for byte as sent
    assert receiver_b.receive() == []


def test_receiver_ignores_other_groups(pair: Pair, receiver_b: RawCarpReceiver) -> None:
    info_a, info_b = pair.info(pair.a), pair.info(pair.b)
    with pair.b.enter():
        other = RawCarpReceiver(info_b, OTHER_GROUP, IPv4Address(pair.b.ip))
    with pair.a.enter():
        sender = pair.platform.open_sender(info_a)
    try:
        to_other = carp_datagram(pair.a.ip, OTHER_GROUP, counter=1)
        marker = carp_datagram(pair.a.ip, GROUP, counter=2)
        sender.send(ether(OTHER_MCAST_MAC, to_other))
        sender.send(ether(MCAST_MAC, marker))
        # The marker comes after, so once it is in, the other one would have been too.
        got = collect(receiver_b.fileno(), receiver_b.receive, lambda g: marker in g, 3.0)
        got_other = collect(other.fileno(), other.receive, lambda g: to_other in g, 3.0)
    finally:
        sender.close()
        other.close()
    assert got == [marker]
    assert got_other == [to_other]  # delivered to the host, just not to our socket


def test_kernel_drops_broadcast_framed_group_packets_unless_joined(pair: Pair) -> None:
    """Why the receiver joins the group even for --nomcast peers."""
    info_a = pair.info(pair.a)
    with pair.b.enter():
        plain = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)  # no membership
    plain.setblocking(False)
    plain.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    with pair.a.enter():
        sender = pair.platform.open_sender(info_a)
    try:
        to_group = carp_datagram(pair.a.ip, GROUP, counter=1)
        marker = carp_datagram(pair.a.ip, IPv4Address(pair.b.ip), counter=2)  # unicast
        sender.send(ether(BROADCAST_MAC, to_group))
        sender.send(ether(bytes.fromhex(pair.b.mac().replace(":", "")), marker))

        def recv() -> list[bytes]:
            return [plain.recv(65535)]

        got = collect(plain.fileno(), recv, lambda g: marker in g, 3.0)
    finally:
        sender.close()
        plain.close()
    assert got == [marker]


def test_sender_errors_propagate(pair: Pair) -> None:
    info_a = pair.info(pair.a)
    with pair.a.enter():
        sender = pair.platform.open_sender(info_a)
    frame = ether(MCAST_MAC, carp_datagram(pair.a.ip, GROUP))
    try:
        with pytest.raises(OSError) as too_big:
            sender.send(ether(MCAST_MAC, bytes(2000)))
        assert too_big.value.errno == errno.EMSGSIZE
        pair.a.link_down()
        sender.send(frame)  # no carrier: the kernel drops it silently, no error
        pair.a.link_up()
        pair.a.run("ip", "link", "set", "eth0", "down")
        with pytest.raises(OSError) as down:
            sender.send(frame)
        assert down.value.errno == errno.ENETDOWN
    finally:
        pair.a.run("ip", "link", "set", "eth0", "up", check=False)
        sender.close()


@dataclass
class Capture:
    """Frames arriving on a host's eth0, with their Ethernet header."""

    sock: socket.socket

    def frames(self) -> list[bytes]:
        out = []
        for _ in range(64):
            try:
                out.append(self.sock.recv(65535))
            except BlockingIOError:
                break
        return out


@pytest.mark.parametrize("nomcast", [False, True], ids=["multicast", "nomcast"])
def test_receives_real_ucarp(
    pair: Pair, receiver_b: RawCarpReceiver, daemons: Daemons, ucarp_bin: str, nomcast: bool
) -> None:
    with pair.b.enter():
        cap = Capture(socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP)))
    cap.sock.bind(("eth0", ETH_P_IP))
    cap.sock.setblocking(False)
    try:
        argv = [ucarp_bin, "-i", "eth0", "-s", pair.a.ip, "-v", str(VHID), "-p", "secret"]
        argv += ["-a", VIP, "--upscript=/bin/true", "--downscript=/bin/true"]
        ucarp = daemons.process(pair.a, *argv, *(["--nomcast"] if nomcast else []))

        def from_ucarp(got: list[bytes]) -> bool:
            return any(d[12:16] == IPv4Address(pair.a.ip).packed for d in got)

        # Master after ~3 s (3 x advbase), then one advertisement per second.
        got = collect(receiver_b.fileno(), receiver_b.receive, from_ucarp, timeout=10.0)
        assert ucarp.alive(), f"ucarp exited\n{ucarp.describe()}"
        frames = cap.frames()
    finally:
        cap.sock.close()

    adverts = [d for d in got if d[12:16] == IPv4Address(pair.a.ip).packed]
    assert adverts, f"nothing from ucarp in {len(got)} datagrams"
    advert = adverts[0]
    assert len(advert) == 56
    assert (advert[8], advert[9]) == (255, 112)  # TTL, protocol
    assert advert[16:20] == GROUP.packed  # still the group in --nomcast mode
    assert (advert[20], advert[21]) == (0x21, VHID)
    assert inet_checksum(advert[20:]) == 0

    carp_frames = [f for f in frames if f[14 + 9] == 112 and f[14 + 12 : 14 + 16] == advert[12:16]]
    assert carp_frames, "the capture socket saw no CARP frame"
    assert carp_frames[0][:6] == (BROADCAST_MAC if nomcast else MCAST_MAC)
    assert carp_frames[0][6:12] == bytes.fromhex(f"00005e0000{VHID:02x}")


def test_link_monitor_sees_carrier_changes(pair: Pair) -> None:
    with pair.a.enter():
        monitor = pair.platform.open_link_monitor()
    try:
        assert monitor.read() == []
        pair.a.link_down(wait=False)
        down = collect(monitor.fileno(), monitor.read, lambda g: ("eth0", False) in g, 5.0)
        assert ("eth0", False) in down
        pair.a.link_up(wait=False)
        up = collect(monitor.fileno(), monitor.read, lambda g: ("eth0", True) in g, 5.0)
        assert ("eth0", True) in up
        assert all(name == "eth0" for name, _ in down + up)  # only this namespace's links
    finally:
        monitor.close()


def test_link_monitor_dump(pair: Pair) -> None:
    with pair.a.enter():
        monitor = LinuxPlatform().open_link_monitor()
    try:
        monitor.request_dump()
        got = collect(
            monitor.fileno(), monitor.read, lambda g: {"lo", "eth0"} <= {n for n, _ in g}, 5.0
        )
    finally:
        monitor.close()
    assert ("lo", True) in got
    assert ("eth0", True) in got


def test_parse_link_messages_ignores_garbage() -> None:
    assert parse_link_messages(b"") == []
    assert parse_link_messages(b"\xff" * 40) == []
    # RTM_NEWLINK, ifinfomsg with IFF_UP|IFF_RUNNING, then a truncated IFLA_IFNAME.
    msg = struct.pack("=IHHII", 16 + 16 + 8, 16, 0, 0, 0) + struct.pack("=BxHiII", 0, 1, 2, 0x41, 0)
    assert parse_link_messages(msg + struct.pack("=HH", 40, 3) + b"eth0") == []
