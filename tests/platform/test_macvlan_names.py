"""The names of pycarp's macvlans: deterministic, short enough, one per (parent, MAC)."""

from __future__ import annotations

import itertools

import pytest

from pycarp.core import vrrp
from pycarp.platform.base import AddressError
from pycarp.platform.linux.macvlan import device_name, is_virtual_mac


def test_the_name_shows_the_parent_and_the_macs_last_two_bytes() -> None:
    assert device_name(2, vrrp.virtual_mac(7, 4)) == "pcv2-107"
    assert device_name(2, vrrp.virtual_mac(7, 6)) == "pcv2-207"
    assert device_name(0x1F, vrrp.virtual_mac(255, 4)) == "pcv1f-1ff"
    assert device_name(1, bytes.fromhex("00005e000001")) == "pcv1-001"  # ucarp's block


def test_every_name_fits_ifnamsiz() -> None:
    assert device_name(0x7FFFFFFF, vrrp.virtual_mac(255, 6)) == "pcv7fffffff-2ff"
    assert len(device_name(0x7FFFFFFF, vrrp.virtual_mac(255, 6))) == 15


def test_no_two_vhids_families_or_parents_share_a_name() -> None:
    parents = (1, 2, 0x10, 0x21, 0x210, 0x7FFFFFFF)
    macs = [vrrp.virtual_mac(v, f) for v, f in itertools.product(range(1, 256), (4, 6))]
    names = {device_name(p, m) for p, m in itertools.product(parents, macs)}
    assert len(names) == len(parents) * len(macs)


@pytest.mark.parametrize(
    "mac",
    ["020000000107", "00005e010107", "00005e001007", "00005e0001", "", "00005e00010700"],
)
def test_only_a_virtual_mac_gets_a_name(mac: str) -> None:
    assert not is_virtual_mac(bytes.fromhex(mac))
    with pytest.raises(AddressError, match="not a virtual MAC"):
        device_name(2, bytes.fromhex(mac))


@pytest.mark.parametrize("index", [0, -1, 0x80000000])
def test_only_an_interface_index_gets_a_name(index: int) -> None:
    with pytest.raises(AddressError, match="not an interface index"):
        device_name(index, vrrp.virtual_mac(7, 4))
