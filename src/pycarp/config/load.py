"""One loader for every way pycarp is configured.

A command line of ucarp's options may name config files (``--config``,
``--check-config``) in either format: ucarp options, whose options come
first and are overridden by the command line's, or a TOML file of several
virtual hosts, which the command line may only add process options to.
The daemon's start, ``pycarp reload`` (through the loader the daemon is
given), ``pycarp check-config`` and ``pycarp check`` (load_file) all load
through here, so they cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pycarp.config import tomlfile, ucarp
from pycarp.config.files import CONFIG_FILE_LIMIT, FileProblem, read_regular_file
from pycarp.config.getopt import Given, InfoRequested, scan
from pycarp.config.optionsfile import SourcedArg
from pycarp.config.settings import DaemonSettings, SettingsLoader
from pycarp.config.values import NO_CONTROL_SOCKET, file_directory, resolve_path
from pycarp.core.errors import ConfigError

__all__ = [
    "TOML_FORMAT",
    "UCARP_FORMAT",
    "ConfigFile",
    "Loaded",
    "Request",
    "SettingsLoader",
    "detect_format",
    "load",
    "load_file",
    "loader",
    "make_request",
    "read_config_file",
    "settings_from_args",
]

# How messages name the format assumed for a config file.
TOML_FORMAT = tomlfile.FORMAT
UCARP_FORMAT = ucarp.FORMAT


@dataclass(frozen=True)
class ConfigFile:
    """A config file, read, and the format it was taken to be."""

    path: str
    data: bytes
    format: str  # TOML_FORMAT or UCARP_FORMAT

    @property
    def label(self) -> str:
        return f"{self.path} ({self.format})"


@dataclass(frozen=True)
class Request:
    """A command line, scanned: what to load."""

    given: tuple[Given, ...]
    check_machine: bool = True
    cwd: str | None = None  # resolve relative paths from here (None: leave them)

    @property
    def check_only(self) -> bool:
        return any(g.option.key == "check-config" for g in self.given)


@dataclass(frozen=True)
class Loaded:
    settings: DaemonSettings
    sources: tuple[str, ...]  # "pycarp.toml (TOML)" for each config file


def detect_format(path: str, data: bytes) -> str:
    """TOML_FORMAT or UCARP_FORMAT: the format of ``path``, whose content is ``data``.

    ``.toml`` is TOML; otherwise a file whose first line that is not blank
    or a comment starts with "-" holds ucarp options (so does one with no
    such line, as before TOML files existed), and anything else is TOML.
    """
    if path.lower().endswith(".toml"):
        return TOML_FORMAT
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            return UCARP_FORMAT if text.startswith("-") else TOML_FORMAT
    return UCARP_FORMAT


def read_config_file(path: str) -> ConfigFile:
    """``path``, read; ConfigError "path: cannot read: ..." if it cannot be."""
    try:
        data = read_regular_file(path, CONFIG_FILE_LIMIT)
    except FileProblem as exc:
        raise ConfigError(None, f"cannot read: {exc.reason}", path) from None
    return ConfigFile(path, data, detect_format(path, data))


def make_request(given: Sequence[Given]) -> Request:
    """The request of a command line's options."""
    keys = {g.option.key for g in given}
    if "no-machine-checks" in keys and "check-config" not in keys:
        reason = "only with --check-config (the daemon needs this host's checks)"
        raise ConfigError("--no-machine-checks", reason)
    return Request(tuple(given), check_machine="no-machine-checks" not in keys)


def settings_from_args(argv: Sequence[str], *, check_machine: bool = True) -> DaemonSettings:
    """ucarp's options as DaemonSettings.

    Raises ConfigError (tomlfile.ConfigErrors for a TOML file) for anything
    wrong and InfoRequested for --help or --version. ``check_machine=False``
    (or --no-machine-checks) skips the checks of this machine (the interface
    exists, the scripts are executable, the passfile is readable), for
    checking a configuration meant for another host.
    """
    request = make_request(scan([SourcedArg(arg) for arg in argv], ucarp.TABLE))
    if not check_machine:
        request = replace(request, check_machine=False)
    return load(request).settings


def load(request: Request) -> Loaded:
    """The settings the command line and its config files describe."""
    given = [_resolved(g, request.cwd) for g in request.given]
    files: list[ConfigFile] = []
    for one in given:
        if one.option.key in ucarp.CONFIG_KEYS:
            try:
                files.append(read_config_file(one.value))
            except ConfigError as exc:
                raise one.fail(str(exc)) from None
    settings = _settings(given, files, check_machine=request.check_machine, cwd=request.cwd)
    return Loaded(settings, tuple(file.label for file in files))


def loader(request: Request) -> SettingsLoader:
    """Loads ``request`` again, as its files then are, for a reload.

    Relative paths are resolved now: the daemon has changed directory by the
    time it reloads. The loader raises ConfigError if the result is bad.
    """
    fixed = replace(request, cwd=os.getcwd())

    def reload() -> DaemonSettings:
        return load(fixed).settings

    return reload


def load_file(path: str, *, check_machine: bool = True) -> tuple[str, DaemonSettings]:
    """The file's format and its settings; ConfigError (one problem a line) if it is bad."""
    return settings_of_file(read_config_file(path), check_machine=check_machine)


def settings_of_file(file: ConfigFile, *, check_machine: bool = True) -> tuple[str, DaemonSettings]:
    """A file already read: its format and its settings; ConfigError if it is bad."""
    try:
        return file.format, _settings([], [file], check_machine=check_machine, cwd=None)
    except InfoRequested as info:  # only a ucarp options file can hold --help
        reason = "cannot be used inside an options file"
        raise ConfigError(f"--{info.option}", reason, info.origin) from None


def _settings(
    given: Sequence[Given], files: Sequence[ConfigFile], *, check_machine: bool, cwd: str | None
) -> DaemonSettings:
    if any(file.format == TOML_FORMAT for file in files):
        return _settings_from_toml(given, files, check_machine=check_machine)
    # ucarp's options: the files' first (in order), then the command line's
    from_files = [
        _resolved(option, cwd)
        for file in files
        for option in ucarp.options_in_file(file.data, file.path)
    ]
    from_argv = [g for g in given if g.option.key not in ucarp.MODE_KEYS]
    chosen = ucarp.last_of_each(from_files + from_argv)
    return ucarp.daemon_settings(chosen, check_machine=check_machine)


def _settings_from_toml(
    given: Sequence[Given], files: Sequence[ConfigFile], *, check_machine: bool
) -> DaemonSettings:
    """A TOML file's settings; the command line may only change process options."""
    toml = next(file for file in files if file.format == TOML_FORMAT)
    others = [file.path for file in files if file is not toml]
    if others:
        reason = f"a TOML file cannot be combined with another config file ({', '.join(others)})"
        raise ConfigError(None, reason, toml.label)
    allowed = ucarp.PROCESS_KEYS | ucarp.MODE_KEYS
    refused = [g.option.label for g in given if g.option.key not in allowed]
    if refused:
        raise ConfigError(
            None,
            f"{', '.join(dict.fromkeys(refused))}: cannot be used with {toml.label}; "
            "set per-host options in the file (only --facility, --debug, --daemonize, "
            "--control-socket and --control-group may be given with it)",
        )
    settings = tomlfile.parse_toml(
        toml.data, name=toml.path, base_dir=file_directory(toml.path), check_machine=check_machine
    )
    chosen = ucarp.last_of_each(given)
    return ucarp.with_process_options(settings, chosen, check_machine=check_machine)


def _resolved(given: Given, cwd: str | None) -> Given:
    """``given`` with a relative path taken from ``cwd`` (for reloads)."""
    value = given.value
    if cwd is None or given.option.key not in ucarp.PATH_KEYS or not value:
        return given
    if given.option.key == "control-socket" and value.lower() == NO_CONTROL_SOCKET:
        return given
    return replace(given, value=resolve_path(value, cwd))
