"""The checks of this machine: interfaces, scripts, password files, groups."""

from __future__ import annotations

import grp
import os
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pycarp.config import machine
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError
from pycarp.platform.base import InterfaceInfo
from tests.config.config_helpers import REAL_INTERFACE_EXISTS, executable


def test_real_interface_check() -> None:
    assert REAL_INTERFACE_EXISTS("lo")
    assert not REAL_INTERFACE_EXISTS("no-such-if0")
    assert not REAL_INTERFACE_EXISTS("x" * 40)
    assert not REAL_INTERFACE_EXISTS("a\0b")


def test_a_script_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    executable(tmp_path / "up.sh")
    monkeypatch.chdir(tmp_path)
    assert machine.check_script("up.sh", "upscript") == str(tmp_path / "up.sh")


@pytest.mark.parametrize(
    ("name", "mode", "reason"),
    [("missing.sh", None, "does not exist"), ("up.sh", 0o644, "is not executable")],
)
def test_a_script_that_cannot_run(tmp_path: Path, name: str, mode: int | None, reason: str) -> None:
    if mode is not None:
        executable(tmp_path / name, mode)
    with pytest.raises(ConfigError) as caught:
        machine.check_script(str(tmp_path / name), "downscript")
    assert (caught.value.field, caught.value.reason) == (
        "downscript",
        f"{tmp_path}/{name} {reason}",
    )
    with pytest.raises(ConfigError, match=r"^upscript: / is a directory$"):
        machine.check_script("/", "upscript")


def test_passfile_errors_name_the_password(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    for path, reason in [
        (tmp_path / "absent", f"cannot read {tmp_path}/absent: No such file or directory"),
        (tmp_path / "empty", f"{tmp_path}/empty is empty"),
    ]:
        with pytest.raises(ConfigError) as caught:
            machine.read_passfile(str(path))
        assert (caught.value.field, caught.value.reason) == ("password", reason)


def test_control_group() -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    assert machine.check_control_group(group) == group
    assert machine.check_control_group("no-such-group-x", check_machine=False) == "no-such-group-x"
    with pytest.raises(ConfigError, match=r"^control_group: no such group: 'no-such-group-x'$"):
        machine.check_control_group("no-such-group-x")
    with pytest.raises(ConfigError, match=r"^control_group: the group name is empty$"):
        machine.check_control_group("", check_machine=False)


def test_check_vhost_finds_every_problem(tmp_path: Path) -> None:
    vhost = VirtualHostConfig(
        interface="absent0",
        srcip=IPv4Address("10.0.0.1"),
        vhid=1,
        addresses=(IPv4Address("10.0.0.100"),),
        upscript=str(tmp_path / "up.sh"),
        downscript=str(executable(tmp_path / "down.sh")),
    )
    checked, problems = machine.check_vhost(vhost)
    assert [(p.field, p.reason) for p in problems] == [
        ("interface", "no such interface: 'absent0'"),
        ("upscript", f"{tmp_path}/up.sh does not exist"),
    ]
    assert checked.downscript == str(tmp_path / "down.sh")


class _Platform:
    def __init__(self, supports_ipv6: bool, link_local: IPv6Address | None) -> None:
        self.supports_ipv6 = supports_ipv6
        self.link_local = link_local

    def interface_info(self, name: str) -> InterfaceInfo:
        return InterfaceInfo(name, 2, bytes(6), True, self.link_local)


@pytest.mark.parametrize(
    ("supports", "link_local", "problem"),
    [
        (True, IPv6Address("fe80::1"), None),
        (True, None, "lo has no IPv6 link-local address (is IPv6 disabled on it?)"),
        (False, IPv6Address("fe80::1"), "not supported on this platform yet"),
    ],
)
def test_ipv6_addresses_need_ipv6_on_the_interface_and_the_platform(
    monkeypatch: pytest.MonkeyPatch, supports: bool, link_local: IPv6Address | None,
    problem: str | None,
) -> None:  # fmt: skip
    monkeypatch.setattr(machine, "select_platform", lambda: _Platform(supports, link_local))
    monkeypatch.setattr(machine, "interface_exists", lambda name: name == "lo")
    vhost = VirtualHostConfig("lo", None, 1, (IPv6Address("2001:db8::1"),))
    _, problems = machine.check_vhost(vhost)
    if problem is None:
        assert problems == []
    else:
        ((field, reason),) = [(p.field, p.reason) for p in problems]
        assert field == "addresses" and problem in reason
    four = VirtualHostConfig("lo", IPv4Address("198.51.100.1"), 1, (IPv4Address("198.51.100.2"),))
    assert machine.check_vhost(four)[1] == []  # IPv4 needs none of it
