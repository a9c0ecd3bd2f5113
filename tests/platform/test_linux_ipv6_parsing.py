"""The pure parts of the Linux IPv6 adapters: if_inet6 text, and the header rebuilt from cmsgs."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv6Address

import pytest

from pycarp.core import packet6
from pycarp.platform.base import InterfaceError, InterfaceInfo
from pycarp.platform.linux.iface import parse_link_local
from pycarp.platform.linux.rawsock6 import Raw6CarpReceiver, rebuild

# As the kernel writes it: address, ifindex, prefix length, scope, flags, name.
IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
20010db8000000000000000000000010 02 40 00 80     eth0
fe80000000000000e42a70fffe36cd35 02 40 20 80     eth0
fe80000000000000000000000000beef 03 40 20 c0     eth1
"""
LL_ETH0 = IPv6Address("fe80::e42a:70ff:fe36:cd35")


def test_the_link_local_of_an_interface() -> None:
    assert parse_link_local(IF_INET6, "eth0") == LL_ETH0  # the global one is not it
    assert parse_link_local(IF_INET6, "lo") is None  # ::1 is host scope


def test_a_tentative_link_local_counts() -> None:
    # Flags c0: permanent and tentative (DAD still running).
    assert parse_link_local(IF_INET6, "eth1") == IPv6Address("fe80::beef")


def test_a_link_local_that_failed_dad_does_not() -> None:
    failed = "fe800000000000000000000000000001 02 40 20 88     eth0\n"  # dadfailed
    assert parse_link_local(failed + IF_INET6, "eth0") == LL_ETH0
    assert parse_link_local(failed, "eth0") is None


def test_the_first_of_several_is_taken() -> None:
    second = "fe800000000000000000000000000002 02 40 20 80     eth0\n"
    assert parse_link_local(IF_INET6 + second, "eth0") == LL_ETH0
    assert parse_link_local(second + IF_INET6, "eth0") == IPv6Address("fe80::2")


def test_wide_flags_are_read_whole() -> None:
    # Flags past 8 bits (0x200 noprefixroute) print as more digits.
    wide = "fe800000000000000000000000000003 02 40 20 280     eth0\n"
    assert parse_link_local(wide, "eth0") == IPv6Address("fe80::3")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no such line\n",
        "fe80000000000000e42a70fffe36cd35 02 40 20 80\n",  # no name
        "fe80zz0000000000e42a70fffe36cd35 02 40 20 80     eth0\n",  # not hex
        "fe80 02 40 20 80     eth0\n",  # short address
        "fe80000000000000e42a70fffe36cd35 02 40 2g 80     eth0\n",  # bad scope
    ],
)
def test_nothing_usable(text: str) -> None:
    assert parse_link_local(text, "eth0") is None


def test_names_match_exactly() -> None:
    assert parse_link_local(IF_INET6, "eth") is None
    assert parse_link_local(IF_INET6, "eth00") is None


# --- the rebuilt header -------------------------------------------------------

PEER = IPv6Address("fe80::2")
PAYLOAD = bytes(range(36))


def pktinfo(destination: IPv6Address, index: int = 2) -> tuple[int, int, bytes]:
    return socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, destination.packed + struct.pack("=I", index)


def hoplimit(value: int) -> tuple[int, int, bytes]:
    return socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("=i", value)


def test_the_header_comes_from_the_address_and_cmsgs() -> None:
    datagram = rebuild(PAYLOAD, "fe80::2%eth0", [pktinfo(packet6.CARP_GROUP6), hoplimit(255)])
    assert datagram is not None
    header, payload = packet6.parse_ipv6(datagram)
    assert payload == PAYLOAD
    assert header.src == PEER  # the scope is dropped
    assert header.dst == packet6.CARP_GROUP6
    assert (header.hop_limit, header.next_header) == (255, 112)
    assert struct.unpack_from("!H", datagram, 4)[0] == len(PAYLOAD)


def test_cmsgs_in_any_order_and_others_ignored() -> None:
    local = IPv6Address("2001:db8::10")
    other = (socket.SOL_SOCKET, 29, b"\0" * 16)  # SO_TIMESTAMP-like: not ours
    datagram = rebuild(b"x", "2001:db8::2", [other, hoplimit(1), pktinfo(local)])
    assert datagram is not None
    header, _ = packet6.parse_ipv6(datagram)
    assert (header.src, header.dst, header.hop_limit) == (IPv6Address("2001:db8::2"), local, 1)


@pytest.mark.parametrize(
    "ancillary",
    [
        [],
        [hoplimit(255)],
        [pktinfo(packet6.CARP_GROUP6)],
        [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, b"\0" * 8), hoplimit(255)],  # truncated
    ],
    ids=["none", "no-pktinfo", "no-hoplimit", "short-pktinfo"],
)
def test_missing_cmsgs_mean_no_datagram(ancillary: list[tuple[int, int, bytes]]) -> None:
    assert rebuild(PAYLOAD, "fe80::2", ancillary) is None


def test_no_link_local_is_a_clear_error() -> None:
    info = InterfaceInfo(name="eth0", index=2, mac=bytes(6), running=True)
    with pytest.raises(InterfaceError, match="eth0 has no IPv6 link-local address: IPv6 is off"):
        Raw6CarpReceiver(info)
