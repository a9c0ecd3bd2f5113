"""The HMAC-SHA1 digest that authenticates an advertisement."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from ipaddress import IPv4Address

from pycarp.core.packet import TYPE_ADVERTISEMENT, VERSION


class Signer:
    """Signs and checks the advertisements of one virtual host.

    Everything but the counter is fixed per virtual host, so the start of the
    message is built once; every advertisement sent or received uses it.
    """

    def __init__(self, key: bytes, vhid: int, addresses: Iterable[IPv4Address]) -> None:
        self._key = key
        # Version, type, vhid, then the addresses in ascending order (OpenBSD's;
        # with one address exactly ucarp's), then the 64-bit counter.
        self._prefix = bytes((VERSION, TYPE_ADVERTISEMENT, vhid)) + b"".join(
            a.packed for a in sorted(addresses)
        )

    def digest(self, counter: int) -> bytes:
        message = self._prefix + counter.to_bytes(8, "big")
        return hmac.digest(self._key, message, "sha1")  # the one-shot C path

    def verify(self, counter: int, mac: bytes) -> bool:
        return hmac.compare_digest(self.digest(counter), mac)


def digest(key: bytes, vhid: int, addresses: Iterable[IPv4Address], counter: int) -> bytes:
    """HMAC-SHA1 over version, type, vhid, the addresses (ascending) and the counter."""
    return Signer(key, vhid, addresses).digest(counter)


def verify(
    key: bytes, vhid: int, addresses: Iterable[IPv4Address], counter: int, mac: bytes
) -> bool:
    return Signer(key, vhid, addresses).verify(counter, mac)
