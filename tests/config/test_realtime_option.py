"""`realtime`: a process option of TOML files and of the ucarp-style command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycarp.config.load import settings_from_args
from tests.config.toml_helpers import HEAD, errors, load_text, vhost

BASE = ["-i", "lo", "-s", "198.51.100.1", "-v", "7", "-a", "198.51.100.100", "-p", "secret"]


@pytest.mark.parametrize(
    ("top", "advbase", "mode", "wanted"),
    [
        ("", 1, "auto", False),  # whole seconds: normal scheduling
        ("", 0, "auto", True),  # sub-second advertisements: realtime when permitted
        ('realtime = "on"\n', 1, "on", True),
        ('realtime = "off"\n', 0, "off", False),
    ],
)
def test_realtime_is_auto_by_default_and_on_for_sub_second_hosts(
    tmp_path: Path, top: str, advbase: int, mode: str, wanted: bool
) -> None:
    settings = load_text(
        tmp_path, top + HEAD + vhost(1, "198.51.100.100", advbase=advbase, advskew=26)
    )
    assert (settings.realtime, settings.wants_realtime) == (mode, wanted)


def test_a_bad_realtime_mode_names_the_key(tmp_path: Path) -> None:
    (found,) = errors(tmp_path, 'realtime = "yes"\n' + HEAD + vhost(1, "198.51.100.100"))
    assert found == "realtime: 'yes' is not one of auto, on, off"


def test_the_command_line_takes_it_too() -> None:
    assert settings_from_args([*BASE, "--realtime=on"], check_machine=False).realtime == "on"
    assert settings_from_args(BASE, check_machine=False).realtime == "auto"
