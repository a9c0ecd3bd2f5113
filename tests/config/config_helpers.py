"""What the config and cli tests share: a valid command line, files, fake interfaces."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from pycarp.config import load, machine
from pycarp.config.settings import DaemonSettings
from pycarp.core.errors import ConfigError

# The tests' interfaces, whatever machine runs them.
FAKE_INTERFACES = {"eth0", "eth1", "net0"}
REAL_INTERFACE_EXISTS = machine.interface_exists  # before fake_interfaces replaces it

# A minimal valid ucarp command line; cases append to it (the last option wins).
BASE = ["-i", "eth0", "-s", "10.0.0.1", "-v", "7", "-p", "secret", "-a", "10.0.0.100"]


@pytest.fixture(autouse=True)
def fake_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' interfaces exist whatever machine runs them (conftest.py uses this)."""
    monkeypatch.setattr(machine, "interface_exists", lambda name: name in FAKE_INTERFACES)


def parse(*args: str) -> DaemonSettings:
    return load.settings_from_args(list(args))


def error(*args: str) -> str:
    """The one line a bad command line is refused with."""
    with pytest.raises(ConfigError) as caught:
        parse(*args)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def fields(settings: DaemonSettings) -> dict[str, Any]:
    """The vhost's fields and the process settings, in one flat dict."""
    (vhost,) = settings.vhosts
    return {**asdict(vhost), **{k: v for k, v in asdict(settings).items() if k != "vhosts"}}


def executable(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(mode)
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# (long name, short letter) of every option of ucarp 1.5.2 (its --help and ucarp_p.h).
UCARP_OPTIONS = [
    ("interface", "i"), ("srcip", "s"), ("mcast", "m"), ("vhid", "v"), ("pass", "p"),
    ("passfile", "o"), ("preempt", "P"), ("neutral", "n"), ("addr", "a"), ("help", "h"),
    ("advbase", "b"), ("advskew", "k"), ("upscript", "u"), ("downscript", "d"),
    ("deadratio", "r"), ("debug", "D"), ("shutdown", "z"), ("daemonize", "B"),
    ("ignoreifstate", "S"), ("nomcast", "M"), ("facility", "f"), ("xparam", "x"),
]  # fmt: skip

# Two virtual hosts in TOML; the second is refused (GOOD_TOML: accepted).
TOML = """\
# two virtual hosts
facility = "local1"

[defaults]
interface = "eth0"
srcip = "10.0.0.1"
password = "secret"

[[vhost]]
vhid = 7
addresses = ["10.0.0.100/24"]

[[vhost]]
vhid = 8
addresses = ["10.0.0.101"]
advskew = 300
"""
GOOD_TOML = TOML.replace("advskew = 300", "advskew = 30")
