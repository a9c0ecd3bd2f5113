"""The pycarp command line: ucarp 1.5.2's options, checked, as DaemonSettings.

The options and their meaning are ucarp's (long names, short letters,
defaults, getopt_long's abbreviations). What differs is that every value is
checked: a bad one is a one-line error naming the option (and the file and
line when it came from ``--config``) with exit status 2, where ucarp would
silently truncate a number or print its usage and exit 0.

The parsing is a small getopt_long of our own rather than argparse, because
argparse cannot say which line of an options file an argument came from, and
its abbreviation rules differ from getopt_long's.

``--config`` also takes a TOML file describing several virtual hosts (see
pycarp.tomlconfig); the command line may then only add process options.
``--check-config`` (or ``pycarp check-config``) checks without starting.
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from ipaddress import AddressValueError, IPv4Address
from typing import Protocol

from pycarp import __version__
from pycarp.config.optionsfile import OptionsFileError, SourcedArg, split_options_text
from pycarp.config.settings import DaemonSettings, default_control_socket, group_id
from pycarp.core.config import DEFAULT_GROUP, VirtualHostConfig
from pycarp.core.errors import ConfigError

__all__ = [
    "OPTIONS",
    "SUBCOMMANDS",
    "SYSLOG_FACILITIES",
    "TOML_FORMAT",
    "UCARP_FORMAT",
    "InfoRequested",
    "Option",
    "SettingsLoader",
    "UsageError",
    "check_control_group",
    "check_control_socket",
    "check_deadratio",
    "check_facility",
    "check_script",
    "describe",
    "detect_format",
    "interface_exists",
    "main",
    "parse_daemon_args",
    "parse_ipv4",
    "read_passfile",
    "settings_from_args",
    "usage",
]

PROG = "pycarp"
EXIT_USAGE = 2

# ucarp's defaults for what may be left out (vhid may not: ucarp's is 0,
# which it then refuses with "You must supply a valid virtual host id").
DEFAULT_ADVBASE = 1
DEFAULT_ADVSKEW = 0
DEFAULT_DEADRATIO = 3
DEFAULT_FACILITY = "daemon"
MAX_DEADRATIO = 2**32 - 1  # ucarp keeps it in an unsigned int
PASSFILE_READ_LIMIT = 511  # ucarp reads the first line with fgets(buf, 512)

# ucarp accepts what glibc's facilitynames[] lists, case-insensitively,
# minus "mark" (internal to syslogd, not a facility one can log to).
_NAMED_FACILITIES = ("auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail")
SYSLOG_FACILITIES = frozenset(
    (*_NAMED_FACILITIES, "news", "syslog", "user", "uucp", *(f"local{n}" for n in range(8)))
)
_FACILITY_ALIASES = {"security": "auth"}  # deprecated name that ucarp still takes
NO_SYSLOG = "none"
NO_CONTROL_SOCKET = "none"
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the final NUL

# How messages name the format assumed for a --config file.
TOML_FORMAT = "TOML"
UCARP_FORMAT = "ucarp options"


class UsageError(ConfigError):
    """A bad command line or options file; the message is the whole error line."""


class InfoRequested(Exception):
    """--help or --version was given: print ``text`` and exit 0."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Option:
    """One command-line option."""

    names: tuple[str, ...]  # long names; the first is the one messages use
    short: str | None
    metavar: str | None  # None: a flag, which takes no value
    help: str
    ucarp: bool = True  # in ucarp's table: wins abbreviation ties over pycarp's own

    @property
    def key(self) -> str:
        return self.names[0]

    @property
    def takes_value(self) -> bool:
        return self.metavar is not None

    @property
    def label(self) -> str:
        return f"--{self.key}"


OPTIONS: tuple[Option, ...] = (
    Option(("interface",), "i", "if", "bind interface <if> (required)"),
    Option(("srcip",), "s", "ip", "source (real) IP address of that host (required)"),
    # ucarp's table says "mcastip" and its getopt string lacks "m:"; its help
    # says --mcast/-m. All three work here.
    Option(("mcast", "mcastip"), "m", "ip", "multicast group IP address (default 224.0.0.18)"),
    Option(("vhid",), "v", "id", "virtual IP identifier (1-255, required)"),
    Option(("pass",), "p", "pass", "password (at most 19 bytes)"),
    Option(("passfile",), "o", "file", "read password from the first line of <file>"),
    Option(("preempt",), "P", None, "becomes a master as soon as possible"),
    Option(("neutral",), "n", None, "don't run downscript at start if backup"),
    Option(("addr",), "a", "ip", "virtual shared IP address (required)"),
    Option(("help",), "h", None, "summary of command-line options"),
    Option(("advbase",), "b", "seconds", "advertisement frequency (0-255, default 1)"),
    Option(("advskew",), "k", "skew", "advertisement skew (0-255, default 0)"),
    Option(("upscript",), "u", "file", "run <file> to become a master"),
    Option(("downscript",), "d", "file", "run <file> to become a backup"),
    Option(("deadratio",), "r", "ratio", "ratio to consider a host as dead (default 3)"),
    Option(("debug",), "D", None, "enable debug output"),
    Option(("shutdown",), "z", None, "call shutdown script at exit"),
    Option(("daemonize",), "B", None, "run in background"),
    Option(("ignoreifstate",), "S", None, "ignore interface state (down, no carrier)"),
    Option(("nomcast",), "M", None, "use broadcast (instead of multicast) advertisements"),
    Option(("facility",), "f", "facility", "set syslog facility (default=daemon), or none"),
    Option(("xparam",), "x", "value", "extra parameter to send to up/down scripts"),
    Option(
        ("virtual-mac",),
        None,
        None,
        "advertise from ucarp's MAC 00:00:5e:00:00:<vhid>, not the NIC's (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("config",),
        "c",
        "file",
        "read ucarp options, or a TOML file of several hosts, from <file> (pycarp only)",
        ucarp=False,
    ),
    Option(("version",), "V", None, "print the version and exit (pycarp only)", ucarp=False),
    Option(
        ("control-socket",),
        None,
        "path",
        "control socket, or none (default <interface>-<vhid>.sock, with a TOML file "
        "pycarp.sock, in /run/pycarp or its netns-<inode> subdirectory) (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("control-group",),
        None,
        "group",
        "let <group> use the control socket too (mode 0660, not 0600) (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("check-config",),
        None,
        "file",
        "as --config, but check, print a summary and exit (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("no-machine-checks",),
        None,
        None,
        "with --check-config: skip this host's interface, script, passfile checks (pycarp only)",
        ucarp=False,
    ),
)

_BY_LONG = {name: option for option in OPTIONS for name in option.names}
_BY_SHORT = {option.short: option for option in OPTIONS if option.short}
_PASSWORD = "password"  # --pass and --passfile set the same thing; the last one wins
_CONFIG_KEYS = frozenset({"config", "check-config"})
# Options about how pycarp is run, not what it runs: never inside an options file.
_MODE_KEYS = _CONFIG_KEYS | {"no-machine-checks"}
# The options that may go with a TOML file (and override its top-level keys).
_PROCESS_KEYS = frozenset({"facility", "debug", "daemonize", "control-socket", "control-group"})
# Options naming a file or path, made absolute for reloads (the daemon chdirs to /).
_PATH_KEYS = _CONFIG_KEYS | {"passfile", "upscript", "downscript", "control-socket"}


# --- machine checks (kept apart so tests can replace them) -------------------


def interface_exists(name: str) -> bool:
    """Whether this machine has a network interface called ``name``."""
    try:
        socket.if_nametoindex(name)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False
    return True


def check_script(path: str) -> str:
    """The absolute path of an up/down script; ConfigError if it cannot run.

    Absolute because the daemon may change directory when it daemonizes.
    """
    full = os.path.abspath(path)
    if not os.path.exists(full):
        raise ConfigError(f"{path} does not exist")
    if os.path.isdir(full):
        raise ConfigError(f"{path} is a directory")
    if not os.access(full, os.X_OK):
        raise ConfigError(f"{path} is not executable")
    return full


def read_passfile(path: str) -> bytes:
    """The password in ``path``: its first line without the newline, as ucarp reads it.

    Like ucarp, a carriage return before the newline is kept (it is part of
    the key a ucarp peer reading the same file would use), and the password
    stops at a NUL byte.
    """
    try:
        with open(path, "rb") as file:
            line = file.readline(PASSFILE_READ_LIMIT)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not line:
        raise ConfigError(f"{path} is empty")
    return line.split(b"\n", 1)[0].split(b"\0", 1)[0]


# --- values checked the same way for the command line and TOML files ---------


def check_facility(name: str) -> str:
    """The syslog facility called ``name`` (any case, as ucarp), or "none"."""
    lowered = name.lower()  # ucarp compares with strcasecmp
    lowered = _FACILITY_ALIASES.get(lowered, lowered)
    if lowered != NO_SYSLOG and lowered not in SYSLOG_FACILITIES:
        known = ", ".join(sorted(SYSLOG_FACILITIES))
        raise ConfigError(f"{name!r} is not a syslog facility ({known}, or none)")
    return lowered


def check_deadratio(ratio: int) -> int:
    """``ratio`` if ucarp's unsigned int holds it; below 1 is VirtualHostConfig's error."""
    if ratio > MAX_DEADRATIO:
        raise ConfigError(f"{ratio} is above {MAX_DEADRATIO}")
    return ratio


def parse_ipv4(text: str) -> IPv4Address:
    """A dotted-quad IPv4 address; 0.0.0.0 is refused, ucarp takes it as "not given"."""
    try:
        address = IPv4Address(text)
    except AddressValueError:
        raise ConfigError(f"{text!r} is not an IPv4 address") from None
    if address.is_unspecified:
        raise ConfigError(f"{address} cannot be used")
    return address


def check_control_socket(text: str, *, base_dir: str | None = None) -> str | None:
    """The control socket's absolute path, or None for "none" (no socket).

    Absolute because the daemon changes directory when it daemonizes; a
    relative path is taken from ``base_dir`` (default: the current directory).
    """
    if text.lower() == NO_CONTROL_SOCKET:
        return None
    if not text:
        raise ConfigError("the path is empty (none disables the control socket)")
    path = os.path.abspath(os.path.join(base_dir or os.getcwd(), text))
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        raise ConfigError(f"{path} is {size} bytes; a socket path has at most {MAX_SOCKET_PATH}")
    return path


def check_control_group(name: str, *, check_machine: bool = True) -> str:
    """``name``, a group of this machine (by name or number) to share the control socket with.

    ``check_machine=False`` checks only that it is not empty (the group is
    the other host's).
    """
    if not name:
        raise ConfigError("the group name is empty")
    if check_machine:
        group_id(name)
    return name


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


def describe(vhost: VirtualHostConfig) -> str:
    """One line about a virtual host, as --check-config prints it."""
    networks = " ".join(f"{address}/{prefix}" for address, prefix in vhost.networks)
    timing = f"advbase {vhost.advbase} advskew {vhost.advskew}"
    flags = [name for name in ("preempt", "neutral", "nomcast") if getattr(vhost, name)]
    actions = ["pycarp plumbs the addresses"] if vhost.plumbs else []
    actions += [
        f"{key} {path}" for key in ("upscript", "downscript") if (path := getattr(vhost, key))
    ]
    return (
        f"{vhost.interface} vhid {vhost.vhid}: {networks}; {' '.join([timing, *flags])}; "
        f"{', '.join(actions) or 'no plumbing and no scripts'}"
    )


# --- entry points ------------------------------------------------------------


Subcommand = Callable[[list[str]], int]
SettingsLoader = Callable[[], DaemonSettings]


class _DaemonRun(Protocol):
    def __call__(self, settings: DaemonSettings, *, reload: SettingsLoader) -> int: ...


def _lazy(module_name: str, attribute: str = "main") -> Subcommand:
    """A subcommand whose module is imported only when it runs."""

    def run(args: list[str]) -> int:
        module = importlib.import_module(module_name)
        entry: Subcommand = getattr(module, attribute)
        return entry(args)

    run.__name__ = f"{module_name}.{attribute}"
    return run


def _check_config_command(args: list[str]) -> int:
    """``pycarp check-config FILE [options]``: --check-config with the file as operand."""
    return _main(args, file_operand=True)


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": _lazy("pycarp.demo.main"),
    "check-config": _check_config_command,
    "status": _lazy("pycarp.client.commands", "status_main"),
    "stepdown": _lazy("pycarp.client.commands", "stepdown_main"),
    "reload": _lazy("pycarp.client.commands", "reload_main"),
    "render": _lazy("pycarp.deploy.render"),
    "check": _lazy("pycarp.vmadm.check"),
    "lab": _lazy("pycarp.lab.command"),
}


def main(argv: list[str] | None = None) -> int:
    """The ``pycarp`` program: a subcommand, or ucarp's options to run the daemon."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        return SUBCOMMANDS[args[0]](args[1:])
    return _main(args)


def _main(args: list[str], *, file_operand: bool = False) -> int:
    try:
        request, loaded = _parse_or_exit(args, file_operand=file_operand)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if request.check_only:
        sys.stdout.write(_summary(request, loaded))
        return 0
    return _run_daemon(loaded.settings, reload=_loader(request))


def _run_daemon(settings: DaemonSettings, *, reload: SettingsLoader) -> int:
    runtime = importlib.import_module("pycarp.runtime.daemon")
    run: _DaemonRun = runtime.run
    return run(settings, reload=reload)


def _loader(request: _Request) -> SettingsLoader:
    """Reads the same files and command line again, as they are then.

    Relative paths are resolved now: the daemon has changed directory by
    the time it reloads. Raises ConfigError (UsageError) if the result is bad.
    """
    fixed = replace(request, cwd=os.getcwd())

    def reload() -> DaemonSettings:
        return _load(fixed).settings

    return reload


def parse_daemon_args(argv: Sequence[str]) -> DaemonSettings:
    """ucarp's options as DaemonSettings, or exit like argparse does.

    A bad option prints ``pycarp: error: ...`` on stderr and raises
    SystemExit(2); --help and --version print on stdout and raise
    SystemExit(0).
    """
    return _parse_or_exit(argv)[1].settings


def _parse_or_exit(argv: Sequence[str], *, file_operand: bool = False) -> tuple[_Request, _Loaded]:
    try:
        request = _read_command_line(argv, file_operand=file_operand)
        return request, _load(request)
    except InfoRequested as info:
        sys.stdout.write(info.text)
        raise SystemExit(0) from None
    except ConfigError as exc:
        for line in str(exc).splitlines():  # a TOML file reports all its problems
            print(f"{PROG}: error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def settings_from_args(argv: Sequence[str], *, check_machine: bool = True) -> DaemonSettings:
    """ucarp's options as DaemonSettings, without printing or exiting.

    Raises ConfigError (UsageError for the command line and options files,
    tomlconfig.ConfigErrors for a TOML file) for anything wrong and
    InfoRequested for --help or --version. ``check_machine=False`` (or
    --no-machine-checks) skips the checks of this machine (the interface
    exists, the scripts are executable, the passfile is readable), for
    checking a configuration meant for another host.
    """
    request = _read_command_line(argv)
    if not check_machine:
        request = replace(request, check_machine=False)
    return _load(request).settings


@dataclass(frozen=True)
class _Request:
    """The command line, scanned."""

    given: tuple[_Given, ...]
    check_machine: bool
    cwd: str | None = None  # resolve relative paths from here (None: leave them)

    @property
    def check_only(self) -> bool:
        return any(g.option.key == "check-config" for g in self.given)


@dataclass(frozen=True)
class _Loaded:
    settings: DaemonSettings
    sources: tuple[str, ...]  # "pycarp.toml (TOML)" for each config file


def _read_command_line(argv: Sequence[str], *, file_operand: bool = False) -> _Request:
    operands: list[SourcedArg] = []
    given = _scan([SourcedArg(arg) for arg in argv], operands if file_operand else None)
    if file_operand:
        given = [_file_operand(operands), *given]
    keys = {g.option.key for g in given}
    if "no-machine-checks" in keys and "check-config" not in keys:
        raise UsageError(
            "--no-machine-checks: only with --check-config (the daemon needs this host's checks)"
        )
    return _Request(tuple(given), check_machine="no-machine-checks" not in keys)


def _file_operand(operands: Sequence[SourcedArg]) -> _Given:
    if len(operands) != 1:
        found = "none" if not operands else ", ".join(repr(o.value) for o in operands)
        raise UsageError(
            f"check-config: give exactly one config file (found {found}); "
            f"usage: {PROG} check-config FILE [--no-machine-checks] [options]"
        )
    return _Given(_BY_LONG["check-config"], operands[0].value, None)


def _summary(request: _Request, loaded: _Loaded) -> str:
    count = len(loaded.settings.vhosts)
    head = f"{', '.join(loaded.sources)}: OK, {count} virtual host{'s' if count > 1 else ''}"
    if not request.check_machine:
        head += " (interfaces, scripts and password files not checked)"
    lines = [head, _describe_process(loaded.settings)]
    return "\n".join([*lines, *(describe(vhost) for vhost in loaded.settings.vhosts)]) + "\n"


def _describe_process(settings: DaemonSettings) -> str:
    flags = [name for name in ("debug", "daemonize") if getattr(settings, name)]
    socket = settings.control_socket or NO_CONTROL_SOCKET
    if settings.control_socket and settings.control_group:
        socket += f" (mode 0660, group {settings.control_group})"
    return "; ".join([f"process: facility {settings.facility}", f"control socket {socket}", *flags])


# --- scanning: arguments -> options given, getopt_long style -----------------


@dataclass(frozen=True)
class _Given:
    """One option as written, with its value and where it was written."""

    option: Option
    value: str
    origin: str | None  # "file:line", or None for the command line

    def fail(self, reason: str) -> UsageError:
        return _fail(self.origin, f"{self.option.label}: {reason}")


def _fail(origin: str | None, message: str) -> UsageError:
    return UsageError(f"{origin}: {message}" if origin else message)


class _Cursor:
    """Walks a list of arguments; an option may take the next one as its value."""

    def __init__(self, args: Sequence[SourcedArg]) -> None:
        self._args = args
        self._next = 0

    def take(self) -> SourcedArg | None:
        if self._next >= len(self._args):
            return None
        self._next += 1
        return self._args[self._next - 1]

    def rest(self) -> Sequence[SourcedArg]:
        return self._args[self._next :]


def _scan(args: Sequence[SourcedArg], operands: list[SourcedArg] | None = None) -> list[_Given]:
    """The options in ``args``; other words go to ``operands``, or are refused if None."""
    cursor = _Cursor(args)
    given: list[_Given] = []
    while (arg := cursor.take()) is not None:
        if arg.value == "--":
            _take_operands(cursor.rest(), operands)
            break
        if arg.value.startswith("--"):
            given.append(_scan_long(arg, cursor))
        elif arg.value.startswith("-") and arg.value != "-":
            given.extend(_scan_short(arg, cursor))
        else:
            _take_operands([arg], operands)
    return given


def _take_operands(words: Sequence[SourcedArg], operands: list[SourcedArg] | None) -> None:
    if operands is None:
        _refuse_operands(words)
    else:
        operands.extend(words)


def _refuse_operands(operands: Sequence[SourcedArg]) -> None:
    # ucarp silently ignores them; here they are most likely a missing "-".
    if operands:
        first = operands[0]
        raise _fail(first.origin, f"unexpected argument {first.value!r} (options start with -)")


def _scan_long(arg: SourcedArg, cursor: _Cursor) -> _Given:
    name, has_value, inline = arg.value[2:].partition("=")
    option = _lookup_long(name, arg.origin)
    if not option.takes_value:
        if has_value:
            raise _fail(arg.origin, f"{option.label} takes no value")
        return _flag(option, arg.origin)
    if has_value:
        return _Given(option, inline, arg.origin)
    return _Given(option, _value_for(option.label, arg, cursor), arg.origin)


def _scan_short(arg: SourcedArg, cursor: _Cursor) -> list[_Given]:
    given: list[_Given] = []
    letters = arg.value[1:]
    for position, letter in enumerate(letters):
        option = _BY_SHORT.get(letter)
        if option is None:
            raise _fail(arg.origin, f"unknown option -{letter}")
        if not option.takes_value:
            given.append(_flag(option, arg.origin))
            continue
        # like getopt, the rest of the word is the value ("-v5"), else the next word
        attached = letters[position + 1 :]
        value = attached or _value_for(f"-{letter}", arg, cursor)
        given.append(_Given(option, value, arg.origin))
        break
    return given


def _flag(option: Option, origin: str | None) -> _Given:
    if option.key == "help":
        raise InfoRequested(usage())
    if option.key == "version":
        raise InfoRequested(f"{PROG} {__version__}\n")
    return _Given(option, "", origin)


def _value_for(label: str, arg: SourcedArg, cursor: _Cursor) -> str:
    value = cursor.take()
    if value is None:
        raise _fail(arg.origin, f"{label} needs a value")
    return value.value


def _lookup_long(name: str, origin: str | None) -> Option:
    """getopt_long's rule: an exact name, else a prefix of exactly one option.

    ucarp's own options are tried first so that an abbreviation keeps the
    meaning it has in ucarp (``--v`` is --vhid, not --version).
    """
    if name in _BY_LONG:
        return _BY_LONG[name]
    for from_ucarp in (True, False) if name else ():
        names = sorted(
            n for n, o in _BY_LONG.items() if o.ucarp is from_ucarp and n.startswith(name)
        )
        keys = {_BY_LONG[n].key for n in names}  # --mcast and --mcastip are one option
        if len(keys) == 1:
            return _BY_LONG[names[0]]
        if keys:
            listed = ", ".join(f"--{n}" for n in names)
            raise _fail(origin, f"ambiguous option --{name} (could be {listed})")
    raise _fail(origin, f"unknown option --{name}")


# --- gathering: command line + config files -> the last value of each -------


@dataclass(frozen=True)
class _ConfigFile:
    """A --config (or --check-config) file, read, and the format it was taken to be."""

    given: _Given
    data: bytes
    format: str  # TOML_FORMAT or UCARP_FORMAT

    @property
    def path(self) -> str:
        return self.given.value

    @property
    def label(self) -> str:
        return f"{self.path} ({self.format})"


def _load(request: _Request) -> _Loaded:
    """The settings the command line and its config files describe."""
    given = [_resolved(g, request.cwd) for g in request.given]
    files = [_read_config(g) for g in given if g.option.key in _CONFIG_KEYS]
    if any(file.format == TOML_FORMAT for file in files):
        settings = _settings_from_toml(given, files, check_machine=request.check_machine)
    else:
        settings = _settings_from_options(
            given, files, check_machine=request.check_machine, cwd=request.cwd
        )
    return _Loaded(settings, tuple(file.label for file in files))


def _resolved(given: _Given, cwd: str | None) -> _Given:
    """``given`` with a relative path taken from ``cwd`` (for reloads)."""
    value = given.value
    if cwd is None or given.option.key not in _PATH_KEYS or not value or os.path.isabs(value):
        return given
    if given.option.key == "control-socket" and value.lower() == NO_CONTROL_SOCKET:
        return given
    return replace(given, value=os.path.join(cwd, value))


def _read_config(given: _Given) -> _ConfigFile:
    try:
        with open(given.value, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise given.fail(f"{given.value}: cannot read: {exc.strerror or exc}") from None
    return _ConfigFile(given, data, detect_format(given.value, data))


def _settings_from_toml(
    given: Sequence[_Given], files: Sequence[_ConfigFile], *, check_machine: bool
) -> DaemonSettings:
    """A TOML file's settings; the command line may only change process options."""
    toml = next(file for file in files if file.format == TOML_FORMAT)
    others = [file.path for file in files if file is not toml]
    if others:
        raise UsageError(
            f"{toml.label}: a TOML file cannot be combined with another config file "
            f"({', '.join(others)})"
        )
    refused = [g.option.label for g in given if g.option.key not in _PROCESS_KEYS | _MODE_KEYS]
    if refused:
        raise UsageError(
            f"{', '.join(dict.fromkeys(refused))}: cannot be used with {toml.label}; "
            "set per-host options in the file (only --facility, --debug, --daemonize, "
            "--control-socket and --control-group may be given with it)"
        )
    from pycarp.config import tomlfile as tomlconfig  # imported here: it uses this module's checks

    base_dir = os.path.dirname(os.path.abspath(toml.path))
    settings = tomlconfig.parse_toml(
        toml.data, name=toml.path, base_dir=base_dir, check_machine=check_machine
    )
    return _with_process_options(settings, _last_of_each(given), check_machine=check_machine)


def _settings_from_options(
    given: Sequence[_Given], files: Sequence[_ConfigFile], *, check_machine: bool, cwd: str | None
) -> DaemonSettings:
    """ucarp's options: the files' first (in order), then the command line's."""
    from_files = [_resolved(option, cwd) for file in files for option in _scan_options_file(file)]
    from_argv = [g for g in given if g.option.key not in _MODE_KEYS]
    chosen = _last_of_each(from_files + from_argv)
    _require(chosen)
    vhost = _make_vhost(chosen, read_files=check_machine)
    if check_machine:
        vhost = _check_machine(vhost, chosen)
    # one process per VIP, as with ucarp: each needs a socket of its own
    socket = default_control_socket(vhost.interface, vhost.vhid)
    settings = DaemonSettings(vhosts=(vhost,), control_socket=socket)
    return _with_process_options(settings, chosen, check_machine=check_machine)


def _scan_options_file(file: _ConfigFile) -> list[_Given]:
    """The options in a ucarp options file; each knows its "file:line (ucarp options)"."""
    text = file.data.decode("utf-8", "surrogateescape")  # odd bytes stay, as in argv
    try:
        args = split_options_text(text, name=file.path)
    except OptionsFileError as exc:
        reason = str(exc).removeprefix(f"{file.path}:{exc.line}: ")
        raise UsageError(f"{file.path}:{exc.line} ({file.format}): {reason}") from None
    given = _scan([SourcedArg(arg.value, f"{arg.origin} ({file.format})") for arg in args])
    for nested in given:
        if nested.option.key in _MODE_KEYS:
            raise nested.fail("cannot be used inside an options file")
    return given


def _last_of_each(given: Sequence[_Given]) -> dict[str, _Given]:
    """Later options override earlier ones, as in ucarp (a flag, once set, stays)."""
    chosen: dict[str, _Given] = {}
    for one in given:
        key = _PASSWORD if one.option.key in ("pass", "passfile") else one.option.key
        chosen[key] = one
    return chosen


def _with_process_options(
    settings: DaemonSettings, chosen: dict[str, _Given], *, check_machine: bool
) -> DaemonSettings:
    """``settings`` with the process options given on the command line (or options file)."""
    facility, socket = chosen.get("facility"), chosen.get("control-socket")
    group = chosen.get("control-group")
    return replace(
        settings,
        facility=settings.facility if facility is None else _facility(facility),
        debug=settings.debug or "debug" in chosen,
        daemonize=settings.daemonize or "daemonize" in chosen,
        control_socket=settings.control_socket if socket is None else _control_socket(socket),
        control_group=settings.control_group
        if group is None
        else _control_group(group, check_machine=check_machine),
    )


# --- building: values -> VirtualHostConfig and DaemonSettings ----------------

_REQUIRED = (
    ("interface", "--interface (pycarp does not pick one as ucarp does)"),
    ("srcip", "--srcip"),
    ("vhid", "--vhid"),
    (_PASSWORD, "--pass or --passfile"),
    ("addr", "--addr"),
)


def _require(chosen: dict[str, _Given]) -> None:
    missing = [label for key, label in _REQUIRED if key not in chosen]
    if missing:
        raise UsageError(f"missing required options: {', '.join(missing)} (see --help)")


def _make_vhost(chosen: dict[str, _Given], *, read_files: bool = True) -> VirtualHostConfig:
    interface = chosen["interface"]
    try:
        return VirtualHostConfig(
            interface=interface.value,
            srcip=_address(chosen["srcip"]),
            vhid=_number(chosen["vhid"]),
            addresses=(_address(chosen["addr"]),),
            password=_password(chosen[_PASSWORD], read_file=read_files),
            advbase=_number(chosen.get("advbase"), DEFAULT_ADVBASE),
            advskew=_number(chosen.get("advskew"), DEFAULT_ADVSKEW),
            deadratio=_deadratio(chosen.get("deadratio")),
            preempt="preempt" in chosen,
            neutral="neutral" in chosen,
            group=_address(chosen["mcast"]) if "mcast" in chosen else DEFAULT_GROUP,
            nomcast="nomcast" in chosen,
            ignoreifstate="ignoreifstate" in chosen,
            upscript=_text(chosen.get("upscript")),
            downscript=_text(chosen.get("downscript")),
            xparam=_text(chosen.get("xparam")),
            shutdown="shutdown" in chosen,
            virtual_mac="virtual-mac" in chosen,
        )
    except UsageError:
        raise
    except ConfigError as exc:
        raise _name_the_option(exc, chosen) from None


# Which option sets each field that VirtualHostConfig names in its errors.
_FIELD_KEYS = {
    "interface": "interface",
    "srcip": "srcip",
    "vhid": "vhid",
    "advbase": "advbase",
    "advskew": "advskew",
    "deadratio": "deadratio",
    "pass": _PASSWORD,
    "addr": "addr",
    "mcast": "mcast",
}


def _name_the_option(exc: ConfigError, chosen: dict[str, _Given]) -> UsageError:
    """Turn "advskew: ..." from the core into "file:line: --advskew: ..."."""
    fields, found, reason = str(exc).partition(": ")
    names = fields.split("/")
    if not found or not all(name in _FIELD_KEYS for name in names):
        return UsageError(str(exc))
    givens = [chosen.get(_FIELD_KEYS[name]) for name in names]
    labels = [g.option.label if g else f"--{name}" for name, g in zip(names, givens, strict=True)]
    origin = next((g.origin for g in givens if g is not None and g.origin), None)
    return _fail(origin, f"{'/'.join(labels)}: {reason}")


_C_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_OCTAL_SLIP = re.compile(r"[+-]?0[0-9]+")  # such as 08 or 09


def _number(given: _Given | None, default: int = 0) -> int:
    """A number written as C's strtoul(s, NULL, 0) reads it: 0x1f, 017 (octal), 15.

    Unlike strtoul, trailing junk is an error rather than ignored; the
    range is checked by VirtualHostConfig.
    """
    if given is None:
        return default
    text = given.value
    if not _C_NUMBER.fullmatch(text):
        hint = " (a leading 0 means octal, as in ucarp)" if _OCTAL_SLIP.fullmatch(text) else ""
        raise given.fail(f"{text!r} is not a number{hint}")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits[:2].lower() == "0x":
        return sign * int(digits[2:], 16)
    return sign * int(digits, 8 if digits.startswith("0") else 10)


def _deadratio(given: _Given | None) -> int:
    ratio = _number(given, DEFAULT_DEADRATIO)
    try:
        return check_deadratio(ratio)
    except ConfigError as exc:
        assert given is not None  # the default is in range
        raise given.fail(str(exc)) from None


def _address(given: _Given) -> IPv4Address:
    try:
        return parse_ipv4(given.value)
    except ConfigError as exc:
        raise given.fail(str(exc)) from None


def _password(given: _Given, *, read_file: bool = True) -> bytes:
    if given.option.key == "passfile":
        if not read_file:
            return b""  # the file is on the host that will run this
        try:
            password = read_passfile(given.value)
        except ConfigError as exc:
            raise given.fail(str(exc)) from None
    else:
        password = os.fsencode(given.value)  # back to the bytes the user typed
    if not password:
        raise given.fail("the password is empty")
    return password


def _text(given: _Given | None) -> str | None:
    return None if given is None else given.value


def _facility(given: _Given) -> str:
    try:
        return check_facility(given.value)
    except ConfigError as exc:
        raise given.fail(str(exc)) from None


def _control_socket(given: _Given) -> str | None:
    try:
        return check_control_socket(given.value)
    except ConfigError as exc:
        raise given.fail(str(exc)) from None


def _control_group(given: _Given, *, check_machine: bool) -> str:
    try:
        return check_control_group(given.value, check_machine=check_machine)
    except ConfigError as exc:
        raise given.fail(str(exc)) from None


def _check_machine(vhost: VirtualHostConfig, chosen: dict[str, _Given]) -> VirtualHostConfig:
    """Check what the protocol cannot: the interface and the scripts on this host."""
    if not interface_exists(vhost.interface):
        raise chosen["interface"].fail(f"no such interface: {vhost.interface!r}")
    scripts = {key: _checked_script(chosen.get(key)) for key in ("upscript", "downscript")}
    return replace(vhost, upscript=scripts["upscript"], downscript=scripts["downscript"])


def _checked_script(given: _Given | None) -> str | None:
    if given is None:
        return None
    try:
        return check_script(given.value)
    except ConfigError as exc:
        raise given.fail(str(exc)) from None


# --- help ----------------------------------------------------------------------


def usage() -> str:
    """The --help text: every option, long and short, in ucarp's layout."""
    lines = [
        f"{PROG} {__version__} - a ucarp-compatible CARP daemon",
        "",
        f"usage: {PROG} [options]",
        f"       {PROG} <subcommand> [arguments]   ({', '.join(sorted(SUBCOMMANDS))})",
        "",
        *(_usage_line(option) for option in OPTIONS),
        "",
        "Required: --interface, --srcip, --vhid, --addr, and --pass or --passfile.",
        "Long options may be abbreviated. A value goes as --vhid=5, --vhid 5, -v 5",
        "or -v5; numbers may be hex (0x1f) or, as in ucarp, octal (017). With",
        "--config, the file's options come first and the command line overrides them.",
        "A --config file in TOML (*.toml, or not starting with an option) describes",
        "several virtual hosts; only --facility, --debug, --daemonize, --control-socket",
        "and --control-group may go with it. See docs/config.md.",
        f"{PROG} check-config FILE [options] is {PROG} --check-config FILE [options].",
        "",
        "Sample usage:",
        "",
        f"{PROG} --interface=eth0 --srcip=198.51.100.201 --vhid=1 --pass=mypassword \\",
        "       --addr=198.51.100.200 \\",
        "       --upscript=/etc/vip-up.sh --downscript=/etc/vip-down.sh",
    ]
    return "\n".join(lines) + "\n"


def _usage_line(option: Option) -> str:
    value = f"=<{option.metavar}>" if option.metavar else ""
    longs = ", ".join(f"--{name}{value}" for name in option.names)
    if option.short is None:
        return f"{longs}: {option.help}"
    short = f" <{option.metavar}>" if option.metavar else ""
    return f"{longs} (-{option.short}{short}): {option.help}"
