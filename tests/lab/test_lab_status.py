"""What `pycarp lab status` concludes from the daemons' answers: pure, no root."""

from __future__ import annotations

import pytest

from pycarp.lab.zonestate import Client, Zone, ZoneNic
from pycarp.lab.zonestatus import (
    VipStatus,
    ZoneStatus,
    client_for,
    plumbed_on,
    vips_of,
    why_unreachable,
)

VIP = "198.51.100.200"


def zone(alias: str, ip: str, *, ip_ok: bool = True, mac_ok: bool = True) -> Zone:
    nic = ZoneNic("net0", "admin", ip, 24, None, "02:00:00:00:00:01", "p", "b", ip_ok, mac_ok)
    return Zone(alias, alias, f"pycarp-t-{alias}", [nic], "", "")


def client(tag: str, ip: str, prefix: int = 24) -> Client:
    return Client(tag, f"pycarp-t-client-{tag}", ip, prefix, "02:00:00:00:00:09", "c", "b")


def host(vhid: int, state: str, *addresses: str) -> dict[str, object]:
    return {"vhid": vhid, "state": state, "addresses": list(addresses)}


def test_vips_and_their_masters_in_reported_order() -> None:
    statuses = [
        ZoneStatus("zoneA", True, 10, [host(1, "MASTER", VIP), host(2, "BACKUP", "203.0.113.9")]),
        ZoneStatus("zoneB", True, 11, [host(1, "MASTER", VIP)]),
        ZoneStatus("zoneC", False, None, []),
    ]
    vips, masters = vips_of(statuses)
    assert vips == {VIP: 1, "203.0.113.9": 2}
    assert masters == {VIP: ["zoneA", "zoneB"]}
    assert statuses[0].states == {1: "MASTER", 2: "BACKUP"}


def test_plumbed_on_compares_addresses_not_prefixes() -> None:
    addresses = {"zoneA": ["198.51.100.201/24", f"{VIP}/24"], "zoneB": ["198.51.100.20/24"]}
    assert plumbed_on(VIP, addresses) == ["zoneA"]
    assert plumbed_on("198.51.100.20", addresses) == ["zoneB"]
    assert plumbed_on("198.51.100.2", addresses) == []


def test_the_client_on_the_vips_subnet() -> None:
    admin, ext = client("admin", "198.51.100.10"), client("ext", "203.0.113.10", 28)
    assert client_for(VIP, [admin, ext]) is admin
    assert client_for("203.0.113.14", [admin, ext]) is ext
    assert client_for("203.0.113.20", [admin, ext]) is None  # outside the /28


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (
            {"ip_ok": False},
            f"unreachable: zoneA's net0 drops traffic from {VIP} (allow_ip_spoofing is false)",
        ),
        (
            {"mac_ok": False},
            "unreachable: zoneA's net0 drops frames not from 02:00:00:00:00:01"
            " (allow_mac_spoofing is false)",
        ),
    ],
)
def test_why_unreachable_names_the_spoofing_flag(changes: dict[str, bool], why: str) -> None:
    zones = {"zoneA": zone("zoneA", "198.51.100.201", **changes)}
    assert why_unreachable(VIP, ["zoneA"], zones) == why


def test_why_unreachable_otherwise() -> None:
    a, b = zone("zoneA", "198.51.100.201"), zone("zoneB", "198.51.100.202")
    zones = {"zoneA": a, "zoneB": b}
    assert why_unreachable(VIP, [], zones) == "unreachable: no zone has it plumbed (no MASTER?)"
    assert why_unreachable(VIP, ["zoneA"], zones) == "unreachable (plumbed on zoneA)"
    a.link_down, b.partitioned = True, True
    assert why_unreachable(VIP, ["zoneA", "zoneB"], zones) == (
        "unreachable: zoneA has it but is cut off (link down);"
        " zoneB has it but is cut off (partitioned)"
    )


def test_vip_lines() -> None:
    ok = VipStatus(VIP, 1, True, "zoneA", "02:00:00:00:00:01", ["zoneA"], ["zoneA"])
    assert ok.describe() == f"{VIP} (vhid 1): reachable, answered by zoneA"
    stranger = VipStatus(VIP, 1, True, None, "02:00:00:00:00:77", [], [])
    assert (
        stranger.describe()
        == f"{VIP} (vhid 1): reachable, answered by unknown MAC 02:00:00:00:00:77"
    )
    lost = VipStatus(VIP, 1, False, None, None, [], [], "unreachable: why")
    assert lost.describe() == f"{VIP} (vhid 1): unreachable: why"
    assert VipStatus(VIP, 1, False, None, None, [], []).describe() == f"{VIP} (vhid 1): unreachable"
