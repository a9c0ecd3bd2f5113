"""The lab's plan and nft rules from vmadm manifests, and `pycarp lab` usage errors (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.lab.nft import nft_rules
from pycarp.lab.zoneplan import plan
from pycarp.lab.zonestate import Zone, ZoneNic
from pycarp.vmadm.manifest import load_manifest

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "smartos"


def test_plan_names_addresses_and_stable_macs() -> None:
    specs = [load_manifest(SCENARIO / f"zone{x}.json") for x in "AB"]
    planned = plan("t1", specs)
    assert planned == plan("t1", specs)  # MACs are stable
    assert planned["bridge_netns"] == "pycarp-t1-br" and planned["bridges"] == {"admin": "br-admin"}
    client = planned["clients"]["admin"]
    assert client["netns"] == "pycarp-t1-client-admin" and client["ip"] == "198.51.100.10"
    za, zb = planned["zones"]["zoneA"], planned["zones"]["zoneB"]
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

    assert "drop" not in nft_rules([zone(True, True)])
    ip_only = nft_rules([zone(False, True)])
    assert 'iifname "v-z-0" ether type ip ip saddr != 198.51.100.201 counter drop' in ip_only
    assert 'iifname "v-z-0" ether type arp arp saddr ip != 198.51.100.201 counter drop' in ip_only
    assert "ether saddr" not in ip_only
    mac_only = nft_rules([zone(True, False)])
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
