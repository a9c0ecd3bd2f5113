"""pycarp check's rules, run on manifests as read (no files, no config)."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from pycarp.vmadm.manifest import Manifest, read_manifest
from pycarp.vmadm.rules import (
    ERROR,
    WARNING,
    Problem,
    Vip,
    check,
    error,
    reading_problems,
    unique,
    warning,
)

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "smartos"
VIP = Vip(IPv4Address("198.51.100.200"), "ucarp.cfg", 101, IPv4Address("198.51.100.201"), key="--")


def zone(name: str, **nic: Any) -> Manifest:
    """The reference zone `name` with its NIC changed (None removes a key)."""
    data = copy.deepcopy(json.loads((SCENARIO / f"{name}.json").read_text()))
    data["nics"][0].update(nic)
    data["nics"][0] = {k: v for k, v in data["nics"][0].items() if v is not None}
    return read_manifest(data, f"{name}.json")


def problems(*manifests: Manifest, vips: tuple[Vip, ...] = (VIP,)) -> list[str]:
    found = [p for m in manifests for p in reading_problems(m)]
    return [str(p) for p in unique([*found, *check(manifests, vips)])]


def test_the_reference_zones_have_no_problem() -> None:
    assert problems(zone("zoneA"), zone("zoneB")) == []


def test_a_manifest_with_ips_only_is_checked() -> None:
    a = zone("zoneA", ip=None, netmask=None, ips=["198.51.100.201/24"])
    b = zone("zoneB", ip=None, netmask=None, ips=["198.51.100.202/24"], allow_ip_spoofing=None)
    assert problems(a, b) == [
        "zoneB.json: nics[0].allow_ip_spoofing: error: not true on the NIC carrying CARP for"
        " 198.51.100.200 (198.51.100.202): the zone drops traffic from the VIP, which can never"
        ' be answered; fix: set "allow_ip_spoofing": true on this NIC'
    ]
    dhcp = zone("zoneB", ip=None, netmask=None, ips=["dhcp"])
    assert problems(a, dhcp) == [
        "zoneB.json: nics[0].ips[0]: error: 'dhcp': the address is not fixed; fix: give a static"
        ' address such as "198.51.100.201/24": peers and --srcip need a fixed address'
    ]
    bare = zone("zoneB", ip=None, netmask=None, ips=["198.51.100.202"])
    assert problems(a, bare) == [
        "zoneB.json: nics[0].ips[0]: error: '198.51.100.202' is not an IPv4 address with its"
        ' prefix; fix: write it like "198.51.100.201/24"'
    ]


def test_a_bad_netmask_still_names_the_srcip() -> None:
    # the NIC's address is known, so the srcip is not reported as nobody's
    a = zone("zoneA", netmask="255.0.255.0")
    assert [p.split(": error: ")[0] for p in problems(a, zone("zoneB"))] == [
        "zoneA.json: nics[0].netmask"
    ]


def test_problems_are_reported_once_in_the_order_found() -> None:
    first = error("a.json: nics", "no NIC", "add one")
    later = warning("b.json: nics", "no gateway", "add one")
    again = Problem(WARNING, "a.json: nics", "no NIC", "other fix")
    assert unique([first, later, again]) == [first, later]
    assert (first.level, later.level) == (ERROR, WARNING)
    assert str(first) == "a.json: nics: error: no NIC; fix: add one"


def test_not_a_manifest() -> None:
    assert problems(read_manifest([1], "x.json"), vips=()) == [
        "x.json: error: the manifest is not a JSON object; fix: write a vmadm manifest { ... }"
    ]
    assert problems(read_manifest({"nics": ["x"]}, "y.json"), vips=()) == [
        "y.json: nics[0]: error: not an object; fix: describe the NIC as { ... }"
    ]
