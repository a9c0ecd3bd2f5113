"""The Linux IPv6 CARP adapters on a lab segment: link-local lookup, receiver, routed sender.

Sockets are opened "on a host" by entering its namespace for the call; they
stay there afterwards. Plain raw sockets play the peer, so what the receiver
rebuilds is compared with what was really sent.
"""

from __future__ import annotations

import functools
import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address

import pytest

from pycarp.core import packet, packet6
from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until
from pycarp.platform.base import InterfaceError, InterfaceInfo
from pycarp.platform.linux import LinuxPlatform, Raw6CarpReceiver
from pycarp.platform.linux.iface import link_local
from pycarp.platform.linux.rawsock import MAX_BATCH
from pycarp.platform.routed import RoutedSender

pytestmark = pytest.mark.netns

GROUP6 = str(packet6.CARP_GROUP6)
ALL_NODES = "ff02::1"  # every host has joined it: the kernel accepts it on any interface
DAD_WAIT = 5.0  # seconds; one DAD probe takes one


def advert(counter: int = 1) -> bytes:
    return packet.Advertisement(
        vhid=7, advbase=1, advskew=0, counter=counter, digest=bytes(20)
    ).encode()


def ipv6_entries(host: Host) -> list[dict[str, object]]:
    out = host.run("ip", "-j", "-6", "addr", "show", "dev", host.ifname).stdout
    return [a for link in json.loads(out) for a in link.get("addr_info", [])]


def ip_link_local(host: Host) -> IPv6Address | None:
    """What iproute2 says the link-local address of eth0 is."""
    found = [a["local"] for a in ipv6_entries(host) if a.get("scope") == "link"]
    return IPv6Address(str(found[0])) if found else None


def dad_done(host: Host) -> bool:
    return not any(a.get("tentative") for a in ipv6_entries(host))


def gather(
    receiver: Raw6CarpReceiver, done: Callable[[list[bytes]], bool], timeout: float = 3.0
) -> list[bytes]:
    """Datagrams until done(all so far) or timeout; never more than 1000 wake-ups."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([receiver.fileno()], [], [], remaining)
        if ready:
            got.extend(receiver.receive())
            if done(got):
                break
    return got


@dataclass
class Pair:
    a: Host
    b: Host

    def info(self, host: Host) -> InterfaceInfo:
        with host.enter():
            return LinuxPlatform().interface_info("eth0")

    def raw_socket(self, host: Host, *, hops: int = 255) -> socket.socket:
        """A plain protocol-112 socket on the host's eth0: the peer's side."""
        with host.enter():
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
        return sock


@pytest.fixture
def pair(lab: Lab) -> Pair:
    made = Pair(lab.add_host("a", "198.51.100.1"), lab.add_host("b", "198.51.100.2"))
    for host in (made.a, made.b):  # a tentative address neither sends nor receives
        assert wait_until(functools.partial(dad_done, host), DAD_WAIT), ipv6_entries(host)
    return made


@pytest.fixture
def receiver_b(pair: Pair) -> Iterator[Raw6CarpReceiver]:
    info = pair.info(pair.b)
    with pair.b.enter():
        rx = LinuxPlatform().open_receiver6(info)
    assert isinstance(rx, Raw6CarpReceiver)
    try:
        yield rx
    finally:
        rx.close()


def parsed(datagram: bytes) -> tuple[packet6.IPv6Header, bytes]:
    return packet6.parse_ipv6(datagram)


# --- the link-local address ---------------------------------------------------


def test_link_local_is_what_ip_shows(pair: Pair) -> None:
    expected = ip_link_local(pair.a)
    assert expected is not None and expected.is_link_local
    with pair.a.enter():
        assert link_local("eth0") == expected
    assert pair.info(pair.a).link_local == expected
    assert pair.info(pair.b).link_local == ip_link_local(pair.b) != expected
    # Outside, the thread's own namespace answers: A's address is not there.
    assert link_local("eth0") != expected


def test_a_tentative_link_local_counts(pair: Pair) -> None:
    # Ten DAD probes a second apart: the regenerated address stays tentative 10 s.
    pair.a.run("sysctl", "-q", "-w", "net.ipv6.conf.eth0.dad_transmits=10")
    pair.a.run("sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1")
    pair.a.run("sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=0")
    assert wait_until(lambda: ip_link_local(pair.a) is not None, DAD_WAIT)
    (entry,) = [a for a in ipv6_entries(pair.a) if a.get("scope") == "link"]
    assert entry.get("tentative") is True, entry
    assert pair.info(pair.a).link_local == ip_link_local(pair.a)


def test_no_link_local_when_ipv6_is_off(pair: Pair) -> None:
    pair.a.run("sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1")
    assert ip_link_local(pair.a) is None
    with pair.a.enter():
        assert link_local("eth0") is None
    info = pair.info(pair.a)
    assert info.link_local is None and info.running  # IPv4 CARP still has its interface
    with (
        pair.a.enter(),
        pytest.raises(InterfaceError, match="eth0 has no IPv6 link-local address: IPv6 is off"),
    ):
        LinuxPlatform().open_receiver6(info)


def test_no_such_interface_has_none(pair: Pair) -> None:
    with pair.a.enter():
        assert link_local("nosuch0") is None


# --- the receiver ---------------------------------------------------------------


def test_a_group_advertisement_arrives_with_its_header(
    pair: Pair, receiver_b: Raw6CarpReceiver
) -> None:
    info_a = pair.info(pair.a)
    tx = pair.raw_socket(pair.a)
    try:
        tx.sendto(advert(), (GROUP6, 0, 0, info_a.index))
        got = gather(receiver_b, bool)
    finally:
        tx.close()
    assert len(got) == 1
    header, payload = parsed(got[0])
    assert header.src == info_a.link_local
    assert header.dst == packet6.CARP_GROUP6
    assert (header.hop_limit, header.next_header) == (255, 112)
    assert payload == advert()
    assert packet.decode(payload).vhid == 7
    assert receiver_b.receive() == []


def test_the_hop_limit_is_the_one_sent(pair: Pair, receiver_b: Raw6CarpReceiver) -> None:
    # CARP drops anything under 255: the receiver must report a real 1, not assume 255.
    info_a = pair.info(pair.a)
    tx = pair.raw_socket(pair.a, hops=1)
    try:
        tx.sendto(advert(), (GROUP6, 0, 0, info_a.index))
        got = gather(receiver_b, bool)
    finally:
        tx.close()
    assert [parsed(d)[0].hop_limit for d in got] == [1]


def test_a_unicast_datagram_to_the_link_local_arrives(
    pair: Pair, receiver_b: Raw6CarpReceiver
) -> None:
    info_a, info_b = pair.info(pair.a), pair.info(pair.b)
    tx = pair.raw_socket(pair.a)
    tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    try:
        tx.sendto(advert(), (str(info_b.link_local), 0, 0, info_a.index))
        got = gather(receiver_b, bool)
    finally:
        tx.close()
    assert len(got) == 1
    header, payload = parsed(got[0])
    assert (header.src, header.dst, header.hop_limit) == (info_a.link_local, info_b.link_local, 255)
    assert payload == advert()


def test_other_groups_are_not_ours(pair: Pair, receiver_b: Raw6CarpReceiver) -> None:
    # The kernel hands an unbound raw socket every group the host accepts,
    # IPV6_MULTICAST_ALL or not: the receiver keeps only ff02::12.
    info_a = pair.info(pair.a)
    with pair.b.enter():
        plain = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
    plain.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    tx = pair.raw_socket(pair.a)
    try:
        tx.sendto(advert(counter=1), (ALL_NODES, 0, 0, info_a.index))
        marker = advert(counter=2)
        tx.sendto(marker, (GROUP6, 0, 0, info_a.index))
        got = gather(receiver_b, lambda g: any(d.endswith(marker) for d in g))
        ready, _, _ = select.select([plain], [], [], 3.0)
        first = plain.recv(65535) if ready else b""
    finally:
        tx.close()
        plain.close()
    assert [(parsed(d)[0].dst, parsed(d)[1]) for d in got] == [(packet6.CARP_GROUP6, marker)]
    assert first == advert(counter=1)  # delivered to the host, just not passed on


def test_receive_takes_at_most_a_batch(pair: Pair, receiver_b: Raw6CarpReceiver) -> None:
    info_a = pair.info(pair.a)
    tx = pair.raw_socket(pair.a)
    total = MAX_BATCH + 6
    try:
        for counter in range(total):
            tx.sendto(advert(counter), (GROUP6, 0, 0, info_a.index))
        assert select.select([receiver_b], [], [], 3.0)[0]
        time.sleep(0.3)  # a veth delivers at once; this is ample for the rest
        first = receiver_b.receive()
        rest = gather(receiver_b, lambda g: len(g) >= total - MAX_BATCH, 3.0)
    finally:
        tx.close()
    assert len(first) == MAX_BATCH
    counters = [packet.decode(parsed(d)[1]).counter for d in first + rest]
    assert counters == list(range(total))


# --- the routed sender ----------------------------------------------------------


def test_routed_sender_reaches_a_link_local_peer(pair: Pair, receiver_b: Raw6CarpReceiver) -> None:
    info_a, info_b = pair.info(pair.a), pair.info(pair.b)
    with pair.a.enter():
        sender = LinuxPlatform().open_unicast_sender()
    try:
        peer = IPv6Address(f"{info_b.link_local}%eth0")
        with pair.a.enter():  # the scope's name is looked up in the caller's namespace
            sender.send_to(advert(), peer)
        got = gather(receiver_b, bool)
    finally:
        sender.close()
    assert len(got) == 1
    header, payload = parsed(got[0])
    assert (header.src, header.dst) == (info_a.link_local, info_b.link_local)
    assert (header.hop_limit, header.next_header) == (255, 112)
    assert payload == advert()


def test_routed_sender_reaches_a_global_peer(pair: Pair, receiver_b: Raw6CarpReceiver) -> None:
    pair.a.run("ip", "-6", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
    pair.b.run("ip", "-6", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
    with pair.a.enter():
        sender = RoutedSender()
    try:
        sender.send_to(advert(), IPv6Address("2001:db8::2"))  # no scope: the routing table
        got = gather(receiver_b, bool)
    finally:
        sender.close()
    assert len(got) == 1
    header, payload = parsed(got[0])
    assert (header.src, header.dst) == (IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2"))
    assert header.hop_limit == 255 and payload == advert()
