"""pycarp check end to end: the reference scenario passes; each broken variant is explained once."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pycarp.vmadm import command

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "smartos"
ZONE_A = json.loads((SCENARIO / "zoneA.json").read_text())
ZONE_B = json.loads((SCENARIO / "zoneB.json").read_text())
CONFIG = (SCENARIO / "ucarp.cfg").read_text()

Manifest = dict[str, Any]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = command.main(argv)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def write_scenario(
    tmp_path: Path,
    change_a: Callable[[Manifest], None] | None = None,
    change_b: Callable[[Manifest], None] | None = None,
    config: str = CONFIG,
) -> list[str]:
    """zoneA.json, zoneB.json and ucarp.cfg in tmp_path, changed; the check's arguments."""
    for name, base, change in (("zoneA", ZONE_A, change_a), ("zoneB", ZONE_B, change_b)):
        manifest = copy.deepcopy(base)
        if change:
            change(manifest)
        (tmp_path / f"{name}.json").write_text(json.dumps(manifest))
    (tmp_path / "ucarp.cfg").write_text(config)
    return ["zoneA.json", "zoneB.json", "--config", "ucarp.cfg"]  # relative: see in_tmp_path


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in tmp_path, so that files are named as a user in that directory would."""
    monkeypatch.chdir(tmp_path)


def test_reference_scenario_passes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(SCENARIO / "zoneA.json"), str(SCENARIO / "zoneB.json")]
    code, lines, _ = run([*argv, "--config", str(SCENARIO / "ucarp.cfg")], capsys)
    assert code == 0
    assert lines == ["OK: 2 manifests, VIP 198.51.100.200: 0 errors, 0 warnings"]


def test_reference_scenario_from_the_command_line() -> None:
    # as docs/deploy.md has it, from the repository root
    repo = Path(__file__).resolve().parents[2]
    scenario = "examples/smartos"
    result = subprocess.run(
        [sys.executable, "-m", "pycarp", "check", f"{scenario}/zoneA.json",
         f"{scenario}/zoneB.json", "--config", f"{scenario}/ucarp.cfg"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_vip_option_instead_of_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = write_scenario(tmp_path)[:2]
    code, lines, _ = run([*argv, "--vip", "198.51.100.200"], capsys)
    assert code == 0, lines


def test_no_vip_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = write_scenario(tmp_path)[:2]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "--config FILE or --vip ADDR" in err


def set_nic(key: str, value: object) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        manifest["nics"][0][key] = value

    return change


def drop_nic_key(key: str) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        del manifest["nics"][0][key]

    return change


def set_key(key: str, value: object) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        manifest[key] = value

    return change


def move_to(ip: str, netmask: str, gateway: str) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        manifest["nics"][0].update(ip=ip, netmask=netmask, gateway=gateway)

    return change


# (id, change to zoneA, change to zoneB, config text, where, words in the message, words in the fix)
ERRORS = [
    ("no ip spoofing", drop_nic_key("allow_ip_spoofing"), None, CONFIG,
     "zoneA.json: nics[0].allow_ip_spoofing", "never be answered", '"allow_ip_spoofing": true'),
    ("ip spoofing false on B", None, set_nic("allow_ip_spoofing", False), CONFIG,
     "zoneB.json: nics[0].allow_ip_spoofing", "not true", '"allow_ip_spoofing": true'),
    ("allowed_ips without vip", set_nic("allowed_ips", ["198.51.100.201"]), None, CONFIG,
     "zoneA.json: nics[0].allowed_ips", "not the VIP 198.51.100.200", "add"),
    ("bad ip", set_nic("ip", "198.51.100.300"), None, CONFIG,
     "zoneA.json: nics[0].ip", "not an IPv4 address", "dotted quad"),
    ("bad netmask", set_nic("netmask", "255.0.255.0"), None, CONFIG,
     "zoneA.json: nics[0].netmask", "not a netmask", "255.255.255.0"),
    ("gateway outside", set_nic("gateway", "203.0.113.1"), None, CONFIG,
     "zoneA.json: nics[0].gateway", "outside the NIC's subnet", "router on that subnet"),
    ("gateway is self", None, set_nic("gateway", "198.51.100.202"), CONFIG,
     "zoneB.json: nics[0].gateway", "NIC's own address", "router's address"),
    ("other subnet", None, move_to("203.0.113.202", "255.255.255.0", "203.0.113.1"), CONFIG,
     "zoneB.json: nics", "no NIC is on the subnet of the VIP", "VIP's subnet"),
    ("other netmask", None, move_to("198.51.100.202", "255.255.255.128", "198.51.100.129"),
     CONFIG,
     "zoneB.json: nics[0].netmask", "differs from 198.51.100.0/24", "same network"),
    ("same ip", None, set_nic("ip", "198.51.100.201"), CONFIG,
     "zoneB.json: nics[0].ip", "also the address of zoneA.json: nics[0].ip", "its own address"),
    ("vip is real", None, set_nic("ip", "198.51.100.200"), CONFIG,
     "zoneB.json: nics[0].ip", "is the VIP", "no zone uses"),
    ("srcip unknown", None, None, CONFIG.replace("198.51.100.201", "198.51.100.203"),
     "ucarp.cfg: --srcip", "198.51.100.203 is the address of no NIC", "zone's own IP"),
    ("long password", None, None, CONFIG.replace("changeme", "x" * 20),
     "ucarp.cfg", "at most 19", "check-config"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change_a", "change_b", "config", "where", "message", "fix"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_each_error_is_reported_once_with_path_and_fix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change_a: Callable[[Manifest], None] | None,
    change_b: Callable[[Manifest], None] | None,
    config: str,
    where: str,
    message: str,
    fix: str,
) -> None:
    code, lines, _ = run(write_scenario(tmp_path, change_a, change_b, config), capsys)
    assert code == 1
    problems = [line for line in lines if ": error: " in line]
    assert len(problems) == 1, lines
    assert problems[0].startswith(f"{where}: error: ")
    assert message in problems[0]
    assert fix in problems[0].partition("; fix: ")[2]
    assert lines[-1].startswith("FAILED:")


def test_mac_spoofing_matters_only_with_virtual_mac(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = """
[defaults]
virtual_mac = true
interface = "net0"
password = "changeme"
[[vhost]]
srcip = "198.51.100.201"
vhid = 101
addresses = ["198.51.100.200"]
"""
    argv = write_scenario(tmp_path, drop_nic_key("allow_mac_spoofing"))
    code, lines, _ = run(argv, capsys)
    assert code == 0, lines  # pycarp sends from the NIC's own MAC by default
    (tmp_path / "pycarp.toml").write_text(toml)
    code, lines, _ = run([*argv[:2], "--config", str(tmp_path / "pycarp.toml")], capsys)
    assert code == 1
    assert len(lines) == 2
    assert lines[0].startswith("zoneA.json: nics[0].allow_mac_spoofing: error: ")
    assert "virtual_mac" in lines[0]
    (tmp_path / "pycarp.toml").write_text(toml.replace("= true", "= false"))
    code, lines, _ = run([*argv[:2], "--config", str(tmp_path / "pycarp.toml")], capsys)
    assert code == 0, lines


def test_vhid_clash_and_password_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = write_scenario(tmp_path)
    other = tmp_path / "other.cfg"
    other.write_text(CONFIG.replace("198.51.100.200", "198.51.100.210"))
    code, lines, _ = run([*argv, "--config", str(other)], capsys)
    assert code == 1
    assert [line.split(": error: ")[0] for line in lines[:-1]] == [f"{other}: --vhid"]
    assert "vhid 101 is also used for 198.51.100.200" in lines[0]
    zone_b_config = tmp_path / "zoneB.cfg"
    zone_b_config.write_text(
        CONFIG.replace("198.51.100.201", "198.51.100.202").replace("changeme", "different")
    )
    code, lines, _ = run([*argv, "--config", str(zone_b_config)], capsys)
    assert code == 1
    assert len(lines) == 2 and "--pass: error: the password for vhid 101 differs" in lines[0]


def test_warnings_do_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def no_gateway(manifest: Manifest) -> None:
        del manifest["nics"][0]["gateway"]
        manifest["resolvers"] = ["8.8.8.8", "198.51.100.9"]

    code, lines, _ = run(write_scenario(tmp_path, no_gateway), capsys)
    assert code == 0
    assert [line.split(": warning: ")[0] for line in lines[:-1]] == [
        "zoneA.json: nics",
        "zoneA.json: resolvers[0]",
    ]
    assert lines[-1] == "OK: 2 manifests, VIP 198.51.100.200: 0 errors, 2 warnings"


def test_unreadable_and_bad_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = write_scenario(tmp_path)
    (tmp_path / "zoneB.json").write_text("{ not json")
    code, lines, _ = run(argv, capsys)
    assert code == 1
    assert lines[0].startswith("zoneB.json: error: not JSON") or "zoneB.json: error" in lines[0]
    code, lines, _ = run([str(tmp_path / "missing.json"), "--vip", "198.51.100.200"], capsys)
    assert code == 1 and "cannot read" in lines[0]


def test_paths_are_shown_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_scenario(tmp_path, drop_nic_key("allow_ip_spoofing"))
    code, lines, _ = run([str(tmp_path / "zoneA.json"), "--vip", "198.51.100.200"], capsys)
    assert code == 1
    assert lines[0].startswith(f"{tmp_path}/zoneA.json: nics[0].allow_ip_spoofing: error:")


def ips_only(cidr: str) -> Callable[[Manifest], None]:
    """The NIC's address in ips[] (newer vmadm), with no ip or netmask."""

    def change(manifest: Manifest) -> None:
        nic = manifest["nics"][0]
        del nic["ip"], nic["netmask"]
        nic["ips"] = [cidr]

    return change


def test_manifests_with_ips_only_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = write_scenario(tmp_path, ips_only("198.51.100.201/24"), ips_only("198.51.100.202/24"))
    code, lines, _ = run(argv, capsys)
    assert (code, lines) == (0, ["OK: 2 manifests, VIP 198.51.100.200: 0 errors, 0 warnings"])
    argv = write_scenario(tmp_path, ips_only("198.51.100.201/24"), ips_only("198.51.100.202/25"))
    code, lines, _ = run(argv, capsys)
    assert code == 1
    assert lines[0].startswith("zoneB.json: nics[0].gateway: error: 198.51.100.1 is outside")
    assert lines[1].startswith(
        "zoneB.json: nics[0].ips[0]: error: subnet 198.51.100.128/25 differs from 198.51.100.0/24"
    )
    argv = write_scenario(tmp_path, ips_only("198.51.100.201/24"), ips_only("198.51.100.200/24"))
    code, lines, _ = run(argv, capsys)
    assert code == 1
    assert lines[0].startswith("zoneB.json: nics[0].ips[0]: error: 198.51.100.200 is the VIP")


def test_a_fifo_as_config_is_refused_not_waited_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = write_scenario(tmp_path)[:2]
    os.mkfifo(tmp_path / "pipe.cfg")  # opening it for reading would block for ever
    code, lines, _ = run([*argv, "--config", "pipe.cfg"], capsys)
    assert code == 1
    assert lines[0] == (
        "pipe.cfg: error: cannot read: not a regular file (a FIFO); fix: give the config's path"
    )
