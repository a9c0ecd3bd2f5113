"""The vmadm manifest reader: what the lab builds from a manifest, and what it refuses."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from pycarp.lab.netns import ALLOWED_NETWORKS
from pycarp.vmadm.manifest import (
    BAD_NETMASK,
    LAB_NETWORKS,
    MISSING,
    NO_PREFIX,
    NOT_FIXED,
    NOT_STRING,
    Flaw,
    ManifestError,
    check_together,
    load_manifest,
    parse_manifest,
    read_manifest,
)

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "smartos"


def _zone_a() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCENARIO / "zoneA.json").read_text())
    return data


def _with_nic(**changes: Any) -> dict[str, Any]:
    data = _zone_a()
    data["nics"][0].update(changes)
    return data


def test_reference_manifests() -> None:
    a = load_manifest(SCENARIO / "zoneA.json")
    b = load_manifest(SCENARIO / "zoneB.json")
    assert (a.alias, a.hostname, b.alias) == ("zoneA", "zoneA", "zoneB")
    nic = a.primary
    assert nic.name == "net0" and nic.nic_tag == "admin"
    assert nic.ip == IPv4Address("198.51.100.201")
    assert nic.network == IPv4Network("198.51.100.0/24") and nic.prefix == 24
    assert nic.gateway == IPv4Address("198.51.100.1")
    assert nic.allow_ip_spoofing and nic.allow_mac_spoofing and nic.mac is None
    assert a.resolvers == ("198.51.100.9", "198.51.100.10")
    check_together([a, b])


def test_spoofing_flags_default_to_false_like_vmadm() -> None:
    data = _zone_a()
    del data["nics"][0]["allow_ip_spoofing"], data["nics"][0]["allow_mac_spoofing"]
    nic = parse_manifest(data).primary
    assert not nic.allow_ip_spoofing and not nic.allow_mac_spoofing


def test_ips_form_and_given_mac() -> None:
    data = _zone_a()
    nic = data["nics"][0]
    del nic["ip"], nic["netmask"]
    nic["ips"] = ["203.0.113.5/25"]
    nic["mac"] = "02:AA:00:00:00:01"
    spec = parse_manifest(data).primary
    assert spec.ip == IPv4Address("203.0.113.5") and spec.prefix == 25
    assert spec.mac == "02:aa:00:00:00:01"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with_nic(ip="10.0.0.5"), "outside the lab's ranges"),
        (_with_nic(ip="192.0.2.5"), "outside the lab's ranges"),
        (_with_nic(netmask="255.255.0.0"), "outside the lab's ranges"),
        (_with_nic(netmask="255.0.255.0"), "not a valid netmask"),
        (_with_nic(ip="198.51.100.255"), "not a host address"),
        (_with_nic(ip="dhcp"), "dhcp"),
        (_with_nic(ip="198.51.100"), "not an IPv4 address"),
        (_with_nic(nic_tag="bad tag"), "nic_tag"),
        (_with_nic(allow_ip_spoofing="yes"), "allow_ip_spoofing must be true or false"),
        (_with_nic(mac="01:00:5e:00:00:01"), "multicast"),
        (_with_nic(mac="nonsense"), "mac"),
        ({**_zone_a(), "alias": "client"}, "reserved"),
        ({**_zone_a(), "alias": "a b"}, "alias must match"),
        ({**_zone_a(), "nics": []}, "nics must be a non-empty list"),
        ([], "must be a JSON object"),
    ],
)
def test_refused(data: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(data, "m.json")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope")
    with pytest.raises(ManifestError, match=r"bad.json: not valid JSON \(line 2"):
        load_manifest(bad)


def test_zones_that_do_not_fit_together() -> None:
    a = parse_manifest(_zone_a(), "a.json")
    with pytest.raises(ManifestError, match="alias 'zoneA' is also used"):
        check_together([a, a])
    other = copy.deepcopy(_zone_a())
    other["alias"] = "zoneC"
    with pytest.raises(ManifestError, match=r"198\.51\.100\.201 is also zoneA's net0's address"):
        check_together([a, parse_manifest(other)])
    other["nics"][0].update(ip="203.0.113.7")
    with pytest.raises(ManifestError, match="one subnet per nic_tag"):
        check_together([a, parse_manifest(other)])
    with pytest.raises(ManifestError, match="no manifests"):
        check_together([])


@pytest.mark.parametrize("how", ["ip", "ips"])
def test_the_lab_refuses_addrconf_like_dhcp(how: str) -> None:
    # addrconf, like dhcp, leaves the address to boot time: no fixed address to build
    data = _zone_a()
    nic = data["nics"][0]
    if how == "ip":
        nic["ip"] = "addrconf"
        message = (
            r'm\.json: nics\[0\]: ip "addrconf" is not supported by the lab \(give an address\)'
        )
    else:
        del nic["ip"], nic["netmask"]
        nic["ips"] = ["addrconf"]
        message = r'm\.json: nics\[0\]: ips\[0\] must be like "198\.51\.100\.201/24"'
    with pytest.raises(ManifestError, match=f"^{message}$"):
        parse_manifest(data, "m.json")


def test_the_lab_refuses_a_numeric_netmask() -> None:
    with pytest.raises(ManifestError, match="netmask must be a string, not 24"):
        parse_manifest(_with_nic(netmask=24), "m.json")


def test_the_lab_and_the_reader_share_one_list_of_documentation_ranges() -> None:
    assert ALLOWED_NETWORKS is LAB_NETWORKS
    assert {str(n) for n in LAB_NETWORKS} == {"198.51.100.0/24", "203.0.113.0/24"}


def test_reading_keeps_what_it_cannot_use() -> None:
    data = _zone_a()
    data["nics"] = [
        {"ip": "dhcp"},
        {"ip": "198.51.100.5", "netmask": "255.0.255.0", "gateway": 5},
        "not an object",
        {"ips": ["198.51.100.7"]},
        {"ip": 7, "ips": ["198.51.100.8/24"]},  # ip wins over ips[], as in vmadm
        {"ips": ["198.51.100.9/24"], "allowed_ips": ["198.51.100.200", "bad"], "primary": True},
        {"ip": "198.51.100.10"},
    ]
    manifest = read_manifest(data, "m.json")
    a, b, c, d, e, f, g = manifest.entries
    assert c is None and manifest.nics == (a, b, d, e, f, g)
    assert a is not None and a.address == Flaw("ip", NOT_FIXED, "dhcp") and a.ip is None
    assert b is not None and b.address == Flaw("netmask", BAD_NETMASK, "255.0.255.0")
    assert b.ip == IPv4Address("198.51.100.5") and b.network is None  # the address is known
    assert b.gateway == Flaw("gateway", NOT_STRING, 5)
    assert d is not None and d.address == Flaw("ips[0]", NO_PREFIX, "198.51.100.7")
    assert e is not None and e.address == Flaw("ip", NOT_STRING, 7) and e.ip_key == "ip"
    assert f is not None and f.address == IPv4Interface("198.51.100.9/24") and f.primary
    assert (f.ip_key, f.netmask_key, f.name) == ("ips[0]", "ips[0]", "net5")
    assert f.allowed_ips == (IPv4Network("198.51.100.200/32"),) and a.allowed_ips is None
    assert g is not None and g.address == Flaw("netmask", MISSING, None)
    assert read_manifest([], "m.json").data is None
    assert read_manifest({"nics": "x"}, "m.json").entries == ()
