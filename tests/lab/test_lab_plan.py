"""Planning a zone lab (names, addresses, MACs) and its nft rules: pure, no root."""

from __future__ import annotations

from typing import Any

import pytest

from pycarp.lab.errors import LabError
from pycarp.lab.names import IFNAME_MAX, port_name, short_ifname
from pycarp.lab.nft import NFT_TABLE, nft_rules
from pycarp.lab.zoneplan import bridge_netns_of, plan, routable_gateway, stable_mac
from pycarp.lab.zonestate import Zone, ZoneNic, zones_of
from pycarp.vmadm.manifest import ZoneManifest, parse_manifest


def manifest(alias: str, *nics: dict[str, Any]) -> ZoneManifest:
    return parse_manifest({"alias": alias, "nics": list(nics)}, f"{alias}.json")


def nic(tag: str, ip: str, **more: Any) -> dict[str, Any]:
    return {"nic_tag": tag, "ip": ip, "netmask": "255.255.255.0", **more}


def one_nic_zone(alias: str, ip: str, mac: str, spoofing: bool) -> Zone:
    """A zone whose net0 allows both kinds of spoofing, or neither."""
    port = f"v-{alias}-0"
    zn = ZoneNic("net0", "admin", ip, 24, None, mac, port, "br-admin", spoofing, spoofing)
    return Zone(alias, alias, f"pycarp-t-{alias}", [zn], "", "")


def test_short_names_stay_within_ifnamsiz() -> None:
    assert short_ifname("br-", "admin") == "br-admin"
    assert port_name("zoneA-0") == "v-zoneA-0"
    long1, long2 = port_name("a_rather_long_role_1"), port_name("a_rather_long_role_2")
    assert len(long1) <= IFNAME_MAX and len(long2) <= IFNAME_MAX
    assert long1 != long2 and long1.startswith("v-a_rath-")
    assert port_name("a_rather_long_role_1") == long1  # stable


def test_stable_macs_are_local_unicast_and_differ_by_part() -> None:
    mac = stable_mac("lab", "zoneA", "net0")
    assert mac == stable_mac("lab", "zoneA", "net0")
    assert mac != stable_mac("lab", "zoneA", "net1") != stable_mac("lab2", "zoneA", "net0")
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01 and len(mac.split(":")) == 6


@pytest.mark.parametrize(
    ("gateway", "routed"),
    [
        (None, False),
        ("198.51.100.1", True),
        ("198.51.101.1", False),  # not on the NIC's subnet
    ],
)
def test_only_a_gateway_on_the_subnet_and_in_range_is_routed(
    gateway: str | None, routed: bool
) -> None:
    zn = ZoneNic(
        "net0", "admin", "198.51.100.5", 24, gateway, "02:00:00:00:00:01", "p", "b", True, True
    )
    assert routable_gateway(zn) is routed


def test_a_gateway_outside_the_lab_ranges_is_not_routed() -> None:
    # A /16 NIC could reach 198.51.0.1, but that is not a documentation address.
    zn = ZoneNic(
        "net0", "admin", "198.51.100.5", 16, "198.51.0.1", "02:00:00:00:00:01", "p", "b", True, True
    )
    assert not routable_gateway(zn)


def test_plan_gives_each_tag_a_bridge_and_a_client_on_a_free_address() -> None:
    a = manifest(
        "zoneA",
        nic("admin", "198.51.100.10", gateway="198.51.100.11"),
        nic("ext", "203.0.113.5", primary=True, mac="02:aa:00:00:00:01"),
    )
    b = manifest("zoneB", nic("admin", "198.51.100.12"))
    state = plan("t2", [a, b])
    assert state["version"] == 1 and state["name"] == "t2"
    assert state["bridge_netns"] == bridge_netns_of("t2") == "pycarp-t2-br"
    assert state["bridges"] == {"admin": "br-admin", "ext": "br-ext"}
    admin, ext = state["clients"]["admin"], state["clients"]["ext"]
    assert admin["ip"] == "198.51.100.13"  # .10 to .12 are a NIC, a gateway, a NIC
    assert ext["ip"] == "203.0.113.10" and ext["port"] == "c-ext"
    assert admin["netns"] == "pycarp-t2-client-admin" and admin["bridge"] == "br-admin"
    nics = state["zones"]["zoneA"]["nics"]
    assert [n["name"] for n in nics] == ["net0", "net1"]
    assert [n["port"] for n in nics] == ["v-zoneA-0", "v-zoneA-1"]
    assert [n["primary"] for n in nics] == [False, True]
    assert nics[1]["mac"] == "02:aa:00:00:00:01"
    assert nics[0]["mac"] == stable_mac("t2", "zoneA", "net0")
    zones = zones_of(state)
    assert zones["zoneA"].nic.name == "net1" and zones["zoneA"].ip == "203.0.113.5"
    assert zones["zoneB"].daemon is None and not zones["zoneB"].link_down


def test_plan_refuses_a_network_without_room_for_the_client() -> None:
    full = manifest("zoneA", {"nic_tag": "admin", "ips": ["198.51.100.1/29"]})
    with pytest.raises(LabError, match=r"no free address for the client on 198\.51\.100\.0/29"):
        plan("t3", [full])


def test_nft_rules_for_several_zones() -> None:
    zones = [
        one_nic_zone("a", "198.51.100.1", "02:00:00:00:00:0a", spoofing=False),
        one_nic_zone("b", "198.51.100.2", "02:00:00:00:00:0b", spoofing=True),
    ]
    rules = nft_rules(zones)
    assert rules.startswith(f"table bridge {NFT_TABLE} {{\n  chain forward {{\n")
    assert "type filter hook forward priority filter; policy accept;" in rules
    assert rules.endswith("  }\n}\n")
    drops = [line.strip() for line in rules.splitlines() if "drop" in line]
    assert drops == [
        'iifname "v-a-0" ether saddr != 02:00:00:00:00:0a counter drop',
        'iifname "v-a-0" ether type ip ip saddr != 198.51.100.1 counter drop',
        'iifname "v-a-0" ether type arp arp saddr ip != 198.51.100.1 counter drop',
    ]
    assert rules == nft_rules(iter(zones))  # any iterable of zones
