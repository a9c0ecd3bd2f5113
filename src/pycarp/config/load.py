"""One loader for a config file of either format (TOML or ucarp options)."""

from __future__ import annotations

import os

from pycarp.config.settings import DaemonSettings
from pycarp.core.errors import ConfigError

TOML_FORMAT = "TOML"
UCARP_FORMAT = "ucarp options"


def load_file(path: str, *, check_machine: bool = True) -> tuple[str, DaemonSettings]:
    """The file's format and its settings; ConfigError (one problem a line) if it is bad."""
    from pycarp.cli import main as cli  # TEMPORARY: the config helper moves this here
    from pycarp.config import tomlfile

    name = os.path.basename(path) if os.path.dirname(path) == "" else path
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        if cli.detect_format(path, data) == cli.TOML_FORMAT:
            text = data.decode("utf-8", "surrogateescape")
            base_dir = os.path.dirname(os.path.abspath(path))
            settings = tomlfile.parse_toml(
                text, name=name, base_dir=base_dir, check_machine=check_machine
            )
            return TOML_FORMAT, settings
        settings = cli.settings_from_args(["--config", path], check_machine=check_machine)
        return UCARP_FORMAT, settings
    except cli.InfoRequested as info:
        raise ConfigError(str(info)) from None
