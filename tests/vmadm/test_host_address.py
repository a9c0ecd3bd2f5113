"""One rule for a NIC's own address, in pycarp check and in the lab's reader alike."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from pycarp.vmadm.manifest import host_address_problem


@pytest.mark.parametrize(
    ("ip", "network", "refused"),
    [
        ("198.51.100.0", "198.51.100.0/24", True),
        ("198.51.100.255", "198.51.100.0/24", True),
        ("198.51.100.7", "198.51.100.0/24", False),
        ("198.51.100.0", "198.51.100.0/31", False),  # RFC 3021: no network or broadcast
        ("198.51.100.1", "198.51.100.0/31", False),
        ("198.51.100.5", "198.51.100.5/32", False),
    ],
)
def test_network_and_broadcast_addresses_are_refused_below_a_31(
    ip: str, network: str, refused: bool
) -> None:
    problem = host_address_problem(IPv4Address(ip), IPv4Network(network))
    assert (problem is not None) is refused
    if refused:
        assert problem == f"{ip} is not a host address of {network}"
