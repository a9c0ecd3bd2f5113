"""The script timeout: --script-timeout and TOML script_timeout reach each RunScript."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.config import load
from pycarp.core.config import SCRIPT_TIMEOUT, VirtualHostConfig
from pycarp.core.errors import ConfigError
from pycarp.core.outbound import Outbound

BASE = ["-i", "eth0", "-s", "198.51.100.1", "-v", "7", "-p", "secret", "-a", "198.51.100.100"]
SCRIPTS = ["--upscript=/bin/up", "--downscript=/bin/down"]


def vhost(*args: str) -> VirtualHostConfig:
    (config,) = load.settings_from_args([*BASE, *args], check_machine=False).vhosts
    return config


def test_the_default_timeout_reaches_the_run_script_action() -> None:
    config = vhost(*SCRIPTS)
    assert config.script_timeout == SCRIPT_TIMEOUT == 10
    (up,) = Outbound(config, mac=bytes(6), ident=1).script("up")
    assert up.timeout == SCRIPT_TIMEOUT


def test_script_timeout_option() -> None:
    config = vhost(*SCRIPTS, "--script-timeout=25")
    assert config.script_timeout == 25
    (down,) = Outbound(config, mac=bytes(6), ident=1).script("down")
    assert down.timeout == 25


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "--script-timeout: 0 is outside 1..3600"),
        ("3601", "--script-timeout: 3601 is outside 1..3600"),
        ("soon", "--script-timeout: 'soon' is not a number"),
    ],
)
def test_bad_script_timeout_options_are_refused(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        vhost(f"--script-timeout={value}")
    assert str(caught.value) == reason


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pycarp.toml"
    path.write_text(
        '[defaults]\ninterface = "eth0"\nsrcip = "198.51.100.1"\npassword = "secret"\n'
        + text
        + '\n[[vhost]]\nvhid = 1\naddresses = ["198.51.100.100"]\n'
        + '\n[[vhost]]\nvhid = 2\naddresses = ["198.51.100.101"]\nscript_timeout = 4\n'
    )
    return path


def test_script_timeout_key_in_defaults_and_in_a_vhost(tmp_path: Path) -> None:
    path = toml(tmp_path, "script_timeout = 30")
    first, second = load.settings_from_args(["--config", str(path)], check_machine=False).vhosts
    assert (first.script_timeout, second.script_timeout) == (30, 4)


def test_a_bad_script_timeout_key_is_refused(tmp_path: Path) -> None:
    for text, reason in [
        ("script_timeout = 0", "script_timeout (from [defaults]): 0 is outside 1..3600"),
        ("script_timeout = 2.5", "script_timeout: expected an integer, got a float (2.5)"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load.settings_from_args(["--config", str(toml(tmp_path, text))], check_machine=False)
        assert reason in str(caught.value)
