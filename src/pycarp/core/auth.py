"""The HMAC-SHA1 digest that authenticates an advertisement."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from pycarp.core.packet import TYPE_ADVERTISEMENT, VERSION, Address


class Signer:
    """Signs and checks the advertisements of one virtual host.

    Everything but the counter is fixed per virtual host, so the start of the
    message is built once; every advertisement sent or received uses it.
    """

    def __init__(self, key: bytes, vhid: int, addresses: Iterable[Address]) -> None:
        self._key = key
        # Version, type, vhid, then the IPv4 addresses in ascending order, then
        # the IPv6 ones (BSD's layout; with one IPv4 address exactly ucarp's),
        # then the 64-bit counter.
        listed = list(addresses)
        ipv4 = sorted(a.packed for a in listed if isinstance(a, IPv4Address))
        ipv6 = sorted(a.packed for a in listed if isinstance(a, IPv6Address))
        self._prefix = bytes((VERSION, TYPE_ADVERTISEMENT, vhid)) + b"".join((*ipv4, *ipv6))

    def digest(self, counter: int) -> bytes:
        message = self._prefix + counter.to_bytes(8, "big")
        return hmac.digest(self._key, message, "sha1")  # the one-shot C path

    def verify(self, counter: int, mac: bytes) -> bool:
        return hmac.compare_digest(self.digest(counter), mac)


def digest(key: bytes, vhid: int, addresses: Iterable[Address], counter: int) -> bytes:
    """HMAC-SHA1 over version, type, vhid, the addresses (ascending) and the counter."""
    return Signer(key, vhid, addresses).digest(counter)


def verify(key: bytes, vhid: int, addresses: Iterable[Address], counter: int, mac: bytes) -> bool:
    return Signer(key, vhid, addresses).verify(counter, mac)
