"""The checks of this machine: interfaces, scripts, password files, groups."""

from __future__ import annotations

import grp
import os
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pycarp.config import machine
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError
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
