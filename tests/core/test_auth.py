"""The HMAC-SHA1 digest, checked against ucarp's own construction and captures."""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycarp.core import auth

VIP = IPv4Address("192.0.2.50")


def ucarp_digest(password: bytes, vhid: int, vip: IPv4Address, counter: int) -> bytes:
    """carp_hmac_prepare + carp_hmac_generate, transcribed: a 64-byte pad, SHA1 by hand."""
    key = password + b"\0"  # ucarp copies the NUL too; the rest of sc_pad stays zero
    pad = bytearray(64)
    pad[: len(key)] = key
    ipad = bytes(b ^ 0x36 for b in pad)
    opad = bytes(b ^ 0x5C for b in pad)
    inner = hashlib.sha1(ipad + bytes((2, 1, vhid)) + vip.packed + counter.to_bytes(8, "big"))
    return hashlib.sha1(opad + inner.digest()).digest()


# From the captures (see test_packet.py): the first advertisement of single-vhid1.pcap.
CAPTURED = (
    b"secret",
    1,
    VIP,
    0x1B91A74D94BD9A66,
    bytes.fromhex("6d1beec21b25d5198c630fd1d884547d268e30e7"),
)


def test_captured_digest() -> None:
    password, vhid, vip, counter, mac = CAPTURED
    assert auth.digest(password, vhid, [vip], counter) == mac
    assert ucarp_digest(password, vhid, vip, counter) == mac
    assert auth.verify(password, vhid, [vip], counter, mac)


PASSWORD, VHID, _, COUNTER, MAC = CAPTURED


@pytest.mark.parametrize(
    ("password", "vhid", "vip", "counter", "mac"),
    [
        (b"Secret", VHID, VIP, COUNTER, MAC),
        (b"", VHID, VIP, COUNTER, MAC),
        (PASSWORD, 2, VIP, COUNTER, MAC),
        (PASSWORD, VHID, IPv4Address("192.0.2.51"), COUNTER, MAC),
        (PASSWORD, VHID, VIP, COUNTER + 1, MAC),
        (PASSWORD, VHID, VIP, COUNTER, bytes(20)),
        (PASSWORD, VHID, VIP, COUNTER, MAC[:19]),
    ],
    ids=["password", "no-password", "vhid", "vip", "counter", "mac", "short-mac"],
)
def test_any_change_fails_verification(
    password: bytes, vhid: int, vip: IPv4Address, counter: int, mac: bytes
) -> None:
    assert not auth.verify(password, vhid, [vip], counter, mac)


@given(
    password=st.binary(max_size=19),
    vhid=st.integers(1, 255),
    vip=st.integers(0, 2**32 - 1).map(IPv4Address),
    counter=st.integers(0, 2**64 - 1),
)
def test_matches_ucarp_for_any_input(
    password: bytes, vhid: int, vip: IPv4Address, counter: int
) -> None:
    # A trailing NUL in the key changes nothing in HMAC: keys are zero-padded.
    expected = ucarp_digest(password.rstrip(b"\0"), vhid, vip, counter)
    assert auth.digest(password.rstrip(b"\0"), vhid, [vip], counter) == expected


def test_empty_password_is_a_zero_key() -> None:
    assert auth.digest(b"", 1, [VIP], 0) == ucarp_digest(b"", 1, VIP, 0)


def test_several_addresses_are_sorted() -> None:
    a, b = IPv4Address("10.0.0.2"), IPv4Address("10.0.1.1")
    one = auth.digest(b"k", 3, [a, b], 9)
    assert one == auth.digest(b"k", 3, [b, a], 9)
    message = bytes((2, 1, 3)) + a.packed + b.packed + (9).to_bytes(8, "big")
    assert one == hmac.new(b"k", message, hashlib.sha1).digest()
    assert one != auth.digest(b"k", 3, [a], 9)
