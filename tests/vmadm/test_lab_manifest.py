"""vmadm manifests for `pycarp lab`: parsing, refusals, the plan and the nft rules (no root)."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from pycarp.lab.zones import Zone, ZoneNic, _nft_rules, _plan
from pycarp.vmadm.manifest import ManifestError, check_together, load_manifest, parse_manifest

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


def test_plan_names_addresses_and_stable_macs() -> None:
    specs = [load_manifest(SCENARIO / f"zone{x}.json") for x in "AB"]
    plan = _plan("t1", specs)
    assert plan == _plan("t1", specs)  # MACs are stable
    assert plan["bridge_netns"] == "pycarp-t1-br" and plan["bridges"] == {"admin": "br-admin"}
    client = plan["clients"]["admin"]
    assert client["netns"] == "pycarp-t1-client-admin" and client["ip"] == "198.51.100.10"
    za, zb = plan["zones"]["zoneA"], plan["zones"]["zoneB"]
    assert za["netns"] == "pycarp-t1-zoneA" and za["hostname"] == "zoneA"
    assert za["control_socket"] == "/run/pycarp-lab/t1/zoneA.sock"
    assert za["nics"][0]["port"] == "v-zoneA-0" and za["nics"][0]["primary"]
    macs = {za["nics"][0]["mac"], zb["nics"][0]["mac"], client["mac"]}
    assert len(macs) == 3 and all(m.startswith("02:") for m in macs)


def test_nft_rules_follow_the_flags() -> None:
    def zone(ip_ok: bool, mac_ok: bool) -> Zone:
        nic = ZoneNic(
            "net0", "admin", "198.51.100.201", 24, None, "02:00:00:00:00:01", "v-z-0", "br-admin",
            ip_ok, mac_ok,
        )  # fmt: skip
        return Zone("z", "z", "pycarp-t-z", [nic], "/s", "/l")

    assert "drop" not in _nft_rules([zone(True, True)])
    ip_only = _nft_rules([zone(False, True)])
    assert 'iifname "v-z-0" ether type ip ip saddr != 198.51.100.201 counter drop' in ip_only
    assert 'iifname "v-z-0" ether type arp arp saddr ip != 198.51.100.201 counter drop' in ip_only
    assert "ether saddr" not in ip_only
    mac_only = _nft_rules([zone(True, False)])
    assert 'iifname "v-z-0" ether saddr != 02:00:00:00:00:01 counter drop' in mac_only
    assert "ip saddr" not in mac_only


def test_command_line_mistakes_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from pycarp.lab.command import main

    with pytest.raises(SystemExit) as stop:
        main(["frob"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        main(["crash", "zoneA", "--", "--vhid=1"])
    assert stop.value.code == 2
    assert "only `run` takes arguments after --" in capsys.readouterr().err
