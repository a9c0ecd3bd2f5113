"""TOML configuration files: several virtual hosts in one pycarp process.

The shape (docs/config.md has a complete example)::

    facility = "daemon"                 # process options first, before any table
    control_socket = "/run/pycarp/pycarp.sock"   # the default; "none": no socket

    [defaults]                          # any per-host key, shared by every [[vhost]]
    interface = "eth0"
    srcip = "198.51.100.201"
    password_file = "secret"            # relative paths: from the file's directory

    [[vhost]]
    vhid = 101
    addresses = ["198.51.100.200/24"]

Everything is checked before anything runs: parse_toml() returns complete
DaemonSettings or raises ConfigErrors listing every problem it found, each
one line naming the file, the table (``vhost[2] (vhid 101)``) and the key.
The range checks are VirtualHostConfig's and the checks of this machine
(interface, scripts, password file) are the command line's, so the two
ways of configuring pycarp cannot disagree.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from pycarp.cli import main as cli
from pycarp.config.settings import DaemonSettings, default_control_socket
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError

__all__ = ["FORMAT", "ConfigErrors", "load_toml", "parse_toml"]

FORMAT = "TOML"  # how errors name the format: "pycarp.toml (TOML): ..."
MAX_SHOWN = 20  # problems shown in str(); a bad [defaults] can repeat in every vhost

# The keys of each place and the TOML type of their values.
_PROCESS_KEYS: dict[str, type] = {
    "facility": str,
    "debug": bool,
    "daemonize": bool,
    "control_socket": str,
    "control_group": str,
}
_HOST_KEYS: dict[str, type] = {
    "interface": str,
    "srcip": str,
    "vhid": int,
    "addresses": list,
    "password": str,
    "password_file": str,
    "advbase": int,
    "advskew": int,
    "deadratio": int,
    "preempt": bool,
    "neutral": bool,
    "mcast": str,
    "nomcast": bool,
    "ignoreifstate": bool,
    "upscript": str,
    "downscript": str,
    "xparam": str,
    "shutdown": bool,
    "plumb": bool,
    "virtual_mac": bool,
}
_TABLES = ("defaults", "vhost")
_REQUIRED = ("interface", "srcip", "vhid", "addresses")
_PASSWORD_KEYS = ("password", "password_file")
_SCRIPT_KEYS = ("upscript", "downscript")
# Keys whose value goes to the VirtualHostConfig field of the same name as it is.
_AS_IS = (
    *("interface", "vhid", "advbase", "advskew", "preempt", "neutral", "nomcast"),
    *("ignoreifstate", "xparam", "shutdown", "plumb", "virtual_mac"),
)
# ucarp's names, which users carry over from their options files.
_RENAMED = {
    "addr": "addresses",
    "address": "addresses",
    "pass": "password",
    "passfile": "password_file",
    "mcastip": "mcast",
    "group": "mcast",
}
_KIND_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}
_TOML_POSITION = re.compile(r"(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)")


class ConfigErrors(ConfigError):
    """Every problem found in a file; each is a complete line, str() shows one per line."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = tuple(messages)
        shown = list(self.messages[:MAX_SHOWN])
        if len(self.messages) > MAX_SHOWN:
            shown.append(f"({len(self.messages) - MAX_SHOWN} more errors not shown)")
        super().__init__("\n".join(shown))


def load_toml(path: str | Path, *, check_machine: bool = True) -> DaemonSettings:
    """The settings in the TOML file ``path``; ConfigErrors if anything is wrong.

    Relative paths in the file are taken from the file's directory.
    ``check_machine=False`` skips the checks of this machine (interfaces,
    scripts, password files: such a file is not read and its password is
    left empty), for checking a file meant for another host.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigErrors([f"{path} ({FORMAT}): cannot read: {exc.strerror or exc}"]) from exc
    base_dir = os.path.dirname(os.path.abspath(path))
    return parse_toml(data, name=str(path), base_dir=base_dir, check_machine=check_machine)


def parse_toml(
    data: bytes | str, *, name: str, base_dir: str | None = None, check_machine: bool = True
) -> DaemonSettings:
    """The settings in ``data``, the content of a file called ``name`` (for messages).

    Relative paths are taken from ``base_dir`` (default: the current directory).
    """
    document = _decode(data, name)
    loader = _Loader(name, base_dir or os.getcwd(), check_machine)
    return loader.load(document)


# --- reading -------------------------------------------------------------------


def _decode(data: bytes | str, name: str) -> dict[str, Any]:
    text = _utf8(data, name) if isinstance(data, bytes) else data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigErrors([_syntax_error(name, str(exc))]) from None


def _utf8(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")  # TOML files are UTF-8
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start]
        raise ConfigErrors([f"{name}:{line} ({FORMAT}): not UTF-8 (byte {bad:#04x})"]) from None


def _syntax_error(name: str, message: str) -> str:
    """tomllib's "reason (at line 3, column 7)" as "name:3 (TOML): syntax error ..."."""
    position = _TOML_POSITION.fullmatch(message)
    if position is None:  # "(at end of document)" and the like
        return f"{name} ({FORMAT}): syntax error: {message}"
    line, column, reason = position["line"], position["column"], position["reason"]
    return f"{name}:{line} ({FORMAT}): syntax error at column {column}: {reason}"


# --- values ----------------------------------------------------------------------


class _KeyProblem(Exception):
    """The value of ``key`` is wrong for ``reason``."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _kind(value: object) -> str:
    return _KIND_NAMES.get(type(value), "a date or time")  # the only other TOML values


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _wrong_type(value: object, expected: type) -> str | None:
    """Why ``value`` is not of the ``expected`` TOML type, or None when it is.

    ``type() is``, not isinstance: true is not an integer here.
    """
    if type(value) is expected:
        return None
    shown = "" if isinstance(value, list | dict) else f" ({_show(value)})"
    return f"expected {_KIND_NAMES[expected]}, got {_kind(value)}{shown}"


def _unknown(key: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    guess = _RENAMED.get(key)
    if guess not in allowed:
        guess = next(iter(difflib.get_close_matches(key, allowed, n=1)), None)
    return f"unknown key (did you mean {guess}?)" if guess else "unknown key"


def _misplaced_at_top(key: str) -> str:
    if key in _HOST_KEYS:
        return "a per-host key: set it in [defaults] or in a [[vhost]] table"
    return _unknown(key, [*_PROCESS_KEYS, *_TABLES])


def _misplaced_in_host(key: str) -> str:
    if key in _PROCESS_KEYS:
        return "a process option: set it at the top of the file, before any table"
    return _unknown(key, _HOST_KEYS)


def _address(key: str, text: str) -> IPv4Address:
    try:
        return cli.parse_ipv4(text)
    except ConfigError as exc:
        raise _KeyProblem(key, str(exc)) from None


def _networks(items: list[Any]) -> tuple[tuple[IPv4Address, ...], tuple[int, ...]]:
    """``["192.0.2.1/24", "192.0.2.2"]`` as addresses and prefix lengths (default 32).

    The prefix lengths' range is VirtualHostConfig's to check.
    """
    addresses: list[IPv4Address] = []
    prefixes: list[int] = []
    for item in items:
        if type(item) is not str:
            raise _KeyProblem("addresses", f"expected strings, got {_kind(item)} ({_show(item)})")
        text, slash, prefix = item.partition("/")
        if slash and not (prefix.isascii() and prefix.isdigit()):
            raise _KeyProblem("addresses", f"{item!r}: the prefix length after / is not a number")
        addresses.append(_address("addresses", text))
        prefixes.append(int(prefix) if slash else 32)
    return tuple(addresses), tuple(prefixes)


def _host_label(index: int, vhid: object) -> str:
    return f"vhost[{index}] (vhid {vhid})" if type(vhid) is int else f"vhost[{index}]"


@dataclass(frozen=True)
class _Host:
    """One [[vhost]] table over [defaults]: its keys, well typed."""

    index: int
    values: dict[str, Any]
    from_defaults: frozenset[str]  # the keys whose value is [defaults]'

    @property
    def label(self) -> str:
        return _host_label(self.index, self.values.get("vhid"))

    def where(self, key: str) -> str:
        """Where a bad value of ``key`` alone was written."""
        return "defaults" if key in self.from_defaults else self.label

    def key_label(self, key: str) -> str:
        return f"{key} (from [defaults])" if key in self.from_defaults else key

    @property
    def password_key(self) -> str:
        return "password" if "password" in self.values else "password_file"


# --- the loader ------------------------------------------------------------------


class _Loader:
    """Turns one parsed document into DaemonSettings, collecting every problem."""

    def __init__(self, name: str, base_dir: str, check_machine: bool) -> None:
        self.prefix = f"{name} ({FORMAT}): "
        self.base_dir = base_dir
        self.check_machine = check_machine
        self.problems: dict[str, None] = {}  # ordered, without repeats

    def problem(self, where: str, message: str) -> None:
        self.problems[f"{self.prefix}{where}: {message}" if where else self.prefix + message] = None

    def load(self, document: dict[str, Any]) -> DaemonSettings:
        settings = self.process_options(document)
        built: list[tuple[_Host, VirtualHostConfig]] = []
        for host in self.hosts(document):
            config = self.build(host)
            if config is not None:
                built.append((host, config))
        self.cross_check(built)
        if self.problems:
            raise ConfigErrors(list(self.problems))
        return replace(settings, vhosts=tuple(config for _, config in built))

    def check_keys(
        self,
        table: dict[str, Any],
        where: str,
        allowed: dict[str, type],
        misplaced: Callable[[str], str],
    ) -> dict[str, Any]:
        """The known, well-typed keys of ``table``; a problem for each of the others."""
        good: dict[str, Any] = {}
        for key, value in table.items():
            reason = misplaced(key) if key not in allowed else _wrong_type(value, allowed[key])
            if reason is None:
                good[key] = value
            else:
                self.problem(where, f"{key}: {reason}")
        return good

    def path(self, key: str, text: str) -> str:
        if not text:
            raise _KeyProblem(key, "the path is empty")
        return os.path.join(self.base_dir, text)

    # process options

    def process_options(self, document: dict[str, Any]) -> DaemonSettings:
        top = {key: value for key, value in document.items() if key not in _TABLES}
        values = self.check_keys(top, "", _PROCESS_KEYS, _misplaced_at_top)
        settings = DaemonSettings(
            vhosts=(),
            debug=values.get("debug", False),
            daemonize=values.get("daemonize", False),
            control_socket=default_control_socket(),  # <run dir>/pycarp.sock
        )
        try:
            if "facility" in values:
                settings = replace(settings, facility=cli.check_facility(values["facility"]))
        except ConfigError as exc:
            self.problem("", f"facility: {exc}")
        try:
            if "control_socket" in values:
                socket = cli.check_control_socket(values["control_socket"], base_dir=self.base_dir)
                settings = replace(settings, control_socket=socket)
        except ConfigError as exc:
            self.problem("", f"control_socket: {exc}")
        try:
            if "control_group" in values:
                group = cli.check_control_group(
                    values["control_group"], check_machine=self.check_machine
                )
                settings = replace(settings, control_group=group)
        except ConfigError as exc:
            self.problem("", f"control_group: {exc}")
        return settings

    # the tables

    def hosts(self, document: dict[str, Any]) -> Iterator[_Host]:
        """Each [[vhost]] over [defaults]; those with a misspelt or mistyped key are left out.

        A generator, so that the problems come in the order of the file.
        """
        count = len(self.problems)
        defaults = self.defaults(document.get("defaults", {}))
        defaults_ok = len(self.problems) == count
        for index, table in enumerate(self.vhost_tables(document)):
            host = self.host(index, table, defaults)
            if host is not None and defaults_ok:
                yield host

    def defaults(self, table: object) -> dict[str, Any]:
        if not isinstance(table, dict):
            self.problem("", f"defaults: expected a table ([defaults]), got {_kind(table)}")
            return {}
        values = self.check_keys(table, "defaults", _HOST_KEYS, _misplaced_in_host)
        self.one_password(values, "defaults")
        return values

    def vhost_tables(self, document: dict[str, Any]) -> list[Any]:
        tables = document.get("vhost", [])
        if not isinstance(tables, list):
            self.problem("", f"vhost: expected an array of tables ([[vhost]]), got {_kind(tables)}")
            return []
        if not tables:
            self.problem("", "no [[vhost]] table: at least one virtual host is needed")
        return tables

    def host(self, index: int, table: object, defaults: dict[str, Any]) -> _Host | None:
        if not isinstance(table, dict):
            self.problem(f"vhost[{index}]", f"expected a table, got {_kind(table)}")
            return None
        where = _host_label(index, table.get("vhid", defaults.get("vhid")))
        count = len(self.problems)
        own = self.check_keys(table, where, _HOST_KEYS, _misplaced_in_host)
        self.one_password(own, where)
        if len(self.problems) != count:
            return None
        # a vhost's password or password_file replaces either of [defaults]
        overrides_password = any(key in own for key in _PASSWORD_KEYS)
        inherited = {
            key: value
            for key, value in defaults.items()
            if key not in own and not (overrides_password and key in _PASSWORD_KEYS)
        }
        return _Host(index, {**inherited, **own}, frozenset(inherited))

    def one_password(self, values: dict[str, Any], where: str) -> None:
        if all(key in values for key in _PASSWORD_KEYS):
            self.problem(where, "password, password_file: give one or the other, not both")

    # one virtual host

    def build(self, host: _Host) -> VirtualHostConfig | None:
        missing = [key for key in _REQUIRED if key not in host.values]
        if not any(key in host.values for key in _PASSWORD_KEYS):
            missing.append("password or password_file")
        if missing:
            keys = ", ".join(missing)
            self.problem(host.label, f"missing required keys: {keys} (here or in [defaults])")
            return None
        try:
            config = VirtualHostConfig(**self.fields(host))
        except _KeyProblem as bad:
            self.problem(host.where(bad.key), f"{bad.key}: {bad.reason}")
            return None
        except ConfigError as exc:
            self.problem(host.label, _name_the_key(exc, host))
            return None
        return self.machine_checks(host, config) if self.check_machine else config

    def fields(self, host: _Host) -> dict[str, Any]:
        """VirtualHostConfig's arguments; what is not given keeps its default there."""
        values = host.values
        fields = {key: values[key] for key in _AS_IS if key in values}
        fields["srcip"] = _address("srcip", values["srcip"])
        fields["addresses"], fields["prefixes"] = _networks(values["addresses"])
        fields["password"] = self.password(host)
        if "mcast" in values:
            fields["group"] = _address("mcast", values["mcast"])
        if "deadratio" in values:
            fields["deadratio"] = self.deadratio(values["deadratio"])
        for key in _SCRIPT_KEYS:
            if key in values:
                fields[key] = self.path(key, values[key])
        return fields

    def password(self, host: _Host) -> bytes:
        key = host.password_key
        if key == "password":
            # the bytes a ucarp peer gets from the same characters in a UTF-8 locale
            password = str(host.values[key]).encode()
        elif not self.check_machine:
            return b""  # the file is on the host that will run this
        else:
            try:
                password = cli.read_passfile(self.path(key, host.values[key]))
            except ConfigError as exc:
                # reported, and the host still checked: its other problems show too
                self.problem(host.where(key), f"{key}: {exc}")
                return b""
        if not password:
            raise _KeyProblem(key, "the password is empty")
        return password

    @staticmethod
    def deadratio(value: int) -> int:
        try:
            return cli.check_deadratio(value)
        except ConfigError as exc:
            raise _KeyProblem("deadratio", str(exc)) from None

    def machine_checks(self, host: _Host, config: VirtualHostConfig) -> VirtualHostConfig:
        """The command line's checks of this machine; the scripts made absolute."""
        if not cli.interface_exists(config.interface):
            self.problem(
                host.where("interface"), f"interface: no such interface: {config.interface!r}"
            )
        upscript = self.checked_script(host, "upscript", config.upscript)
        downscript = self.checked_script(host, "downscript", config.downscript)
        return replace(config, upscript=upscript, downscript=downscript)

    def checked_script(self, host: _Host, key: str, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return cli.check_script(path)
        except ConfigError as exc:
            self.problem(host.where(key), f"{key}: {exc}")
            return path

    # between virtual hosts

    def cross_check(self, built: Sequence[tuple[_Host, VirtualHostConfig]]) -> None:
        """What no single vhost shows: the same vhid or address twice, mixed groups."""
        vhids: dict[tuple[str, int], _Host] = {}
        claimed: dict[IPv4Address, _Host] = {}
        groups: dict[str, tuple[IPv4Address, _Host]] = {}
        srcips: dict[IPv4Address, _Host] = {}
        for host, config in built:
            srcips.setdefault(config.srcip, host)
        for host, config in built:
            first = vhids.setdefault((config.interface, config.vhid), host)
            if first is not host:
                where = f"{config.vhid} on {config.interface}"
                self.problem(host.label, f"vhid: {where} is already used by {first.label}")
            for address in config.addresses:
                self.claim(host, address, claimed, srcips)
            group, first = groups.setdefault(config.interface, (config.group, host))
            if group != config.group:
                self.problem(
                    host.label,
                    f"mcast: {config.group} differs from {group} of {first.label} on "
                    f"{config.interface} (one multicast group per interface)",
                )

    def claim(
        self,
        host: _Host,
        address: IPv4Address,
        claimed: dict[IPv4Address, _Host],
        srcips: dict[IPv4Address, _Host],
    ) -> None:
        owner = claimed.setdefault(address, host)
        if owner is not host:
            self.problem(host.label, f"addresses: {address} is already claimed by {owner.label}")
        holder = srcips.get(address)
        if holder is not None and holder is not host:
            self.problem(host.label, f"addresses: {address} is the srcip of {holder.label}")


def _name_the_key(exc: ConfigError, host: _Host) -> str:
    """VirtualHostConfig's "pass: ..." in the file's words: "password_file: ..."."""
    fields, found, reason = str(exc).partition(": ")
    if not found:
        return str(exc)
    core_names = {"pass": host.password_key, "addr": "addresses"}
    keys = [core_names.get(field, field) for field in fields.split("/")]
    return f"{'/'.join(host.key_label(key) for key in keys)}: {reason}"
