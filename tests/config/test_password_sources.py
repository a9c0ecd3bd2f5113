"""Where the password comes from (PYCARP_PASSWORD); who may change scripts and password files."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from pycarp.config import load, machine
from pycarp.config.ucarp import PASSWORD_VARIABLE
from pycarp.core.errors import ConfigError
from tests.config.config_helpers import error, executable, parse, write

NO_PASS = ["-i", "eth0", "-s", "10.0.0.1", "-v", "7", "-a", "10.0.0.100"]


def secret_file(path: Path, mode: int = 0o600) -> Path:
    write(path, "from-file\n").chmod(mode)
    return path


def test_the_environment_gives_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "from-env")
    (vhost,) = parse(*NO_PASS).vhosts
    assert vhost.password == b"from-env"


def test_options_beat_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "from-env")
    assert parse(*NO_PASS, "-p", "typed").vhosts[0].password == b"typed"
    passfile = str(secret_file(tmp_path / "secret"))
    assert parse(*NO_PASS, "-o", passfile).vhosts[0].password == b"from-file"
    options = write(tmp_path / "u.cfg", "--pass=in-file\n")
    assert parse(*NO_PASS, "-c", str(options)).vhosts[0].password == b"in-file"


def test_a_bad_password_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "")
    assert error(*NO_PASS) == "PYCARP_PASSWORD (environment): --pass: the password is empty"
    monkeypatch.setenv(PASSWORD_VARIABLE, "x" * 20)
    assert error(*NO_PASS).endswith("20 bytes; at most 19 are allowed")


def test_no_password_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    assert error(*NO_PASS) == (
        "missing required options: --pass or --passfile "
        "(or PYCARP_PASSWORD in the environment) (see --help)"
    )


def test_a_password_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private = secret_file(tmp_path / "private")
    shared = secret_file(tmp_path / "shared", 0o640)
    with caplog.at_level(logging.WARNING, logger="pycarp"):
        assert machine.read_passfile(str(private)) == b"from-file"
        assert caplog.messages == []
        assert machine.read_passfile(str(shared)) == b"from-file"
    assert caplog.messages == [
        f"{shared}: the password file is readable by group or others (mode 0640)"
    ]


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_password_file_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path / "secret", mode)
    with pytest.raises(ConfigError) as caught:
        machine.read_passfile(str(path))
    assert caught.value.field == "password"
    assert (
        caught.value.reason
        == f"{path} is writable by group or others (mode {mode:04o}); chmod go-w it"
    )


@pytest.mark.parametrize("mode", [0o775, 0o757])
def test_a_script_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    script = executable(tmp_path / "up.sh", mode)
    with pytest.raises(ConfigError, match=r"writable by group or others"):
        machine.check_script(str(script), "upscript")


def test_a_script_of_another_user_is_refused(tmp_path: Path) -> None:
    script = executable(tmp_path / "up.sh")
    os.chown(script, 54321, -1)
    with pytest.raises(ConfigError, match=r"^upscript: .*up\.sh is owned by uid 54321, not root"):
        machine.check_script(str(script), "upscript")


def test_without_machine_checks_nothing_is_looked_at(tmp_path: Path) -> None:
    script = executable(tmp_path / "up.sh", 0o777)
    passfile = secret_file(tmp_path / "secret", 0o666)
    args = [*NO_PASS, "-u", str(script), "-o", str(passfile)]
    (vhost,) = load.settings_from_args(args, check_machine=False).vhosts
    assert vhost.upscript == str(script)
