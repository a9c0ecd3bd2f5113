"""The HMAC-SHA1 digest that authenticates an advertisement."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from ipaddress import IPv4Address

from pycarp.core.packet import TYPE_ADVERTISEMENT, VERSION


def digest(key: bytes, vhid: int, addresses: Iterable[IPv4Address], counter: int) -> bytes:
    """HMAC-SHA1 over version, type, vhid, the addresses (ascending) and the counter.

    With one address this is ucarp's digest; with several, OpenBSD's order.
    """
    message = bytes((VERSION, TYPE_ADVERTISEMENT, vhid))
    message += b"".join(a.packed for a in sorted(addresses))
    message += counter.to_bytes(8, "big")
    return hmac.new(key, message, hashlib.sha1).digest()


def verify(
    key: bytes, vhid: int, addresses: Iterable[IPv4Address], counter: int, mac: bytes
) -> bool:
    return hmac.compare_digest(digest(key, vhid, addresses, counter), mac)
