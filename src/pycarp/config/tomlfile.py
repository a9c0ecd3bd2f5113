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
The range checks are VirtualHostConfig's, the other value checks
pycarp.config.values' and the checks of this machine (interface, scripts,
password file) pycarp.config.machine's, as for ucarp options, so the two ways
of configuring pycarp cannot disagree. The [[check]] tables, demotion
groups and the metrics endpoint are pycarp.config.tomlchecks'; reading the
text (UTF-8, syntax errors) is pycarp.config.tomltext's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from pycarp.config import machine
from pycarp.config.files import CONFIG_FILE_LIMIT, FileProblem, read_regular_file
from pycarp.config.settings import DaemonSettings
from pycarp.config.tomlchecks import HealthReader
from pycarp.config.tomlkeys import (
    AS_IS,
    HOST_KEYS,
    PASSWORD_KEYS,
    PROCESS_KEYS,
    REQUIRED,
    SCRIPT_KEYS,
    TABLES,
    Host,
    KeyType,
    array_of_tables,
    host_label,
    kind,
    misplaced_at_top,
    misplaced_in_host,
    networks,
    strings,
    wrong_type,
)
from pycarp.config.tomltext import FORMAT, MAX_SHOWN, ConfigErrors, decode
from pycarp.config.tomlvrrp import protocol_fields, protocol_problem
from pycarp.config.values import (
    check_deadratio,
    check_password,
    file_directory,
    nul_problem,
    parse_address,
    parse_ipv4,
    process_checks,
    resolve_path,
    shown,
)
from pycarp.core.config import VirtualHostConfig, with_protocol_defaults
from pycarp.core.errors import ConfigError
from pycarp.core.packet import Address

__all__ = ["FORMAT", "MAX_SHOWN", "ConfigErrors", "load_toml", "parse_toml"]

MAX_INTEGER = 2**64  # larger ones are refused before their range is checked (and shown)


def load_toml(path: str | Path, *, check_machine: bool = True) -> DaemonSettings:
    """The settings in the TOML file ``path``; ConfigErrors if anything is wrong.

    Relative paths in the file are taken from the file's directory.
    ``check_machine=False`` skips the checks of this machine (interfaces,
    scripts, password files: such a file is not read and its password is
    left empty), for checking a file meant for another host.
    """
    try:
        data = read_regular_file(str(path), CONFIG_FILE_LIMIT)
    except FileProblem as exc:
        reason = f"cannot read: {exc.reason}"
        raise ConfigErrors([ConfigError(None, reason, f"{path} ({FORMAT})")]) from None
    base_dir = file_directory(str(path))
    return parse_toml(data, name=str(path), base_dir=base_dir, check_machine=check_machine)


def parse_toml(
    data: bytes | str, *, name: str, base_dir: str | None = None, check_machine: bool = True
) -> DaemonSettings:
    """The settings in ``data``, the content of a file called ``name`` (for messages).

    Relative paths are taken from ``base_dir`` (default: the current directory).
    """
    document = decode(data, name)
    loader = _Loader(name, base_dir or os.getcwd(), check_machine)
    return loader.load(document)


# --- the loader ------------------------------------------------------------------


class _Loader:
    """Turns one parsed document into DaemonSettings, collecting every problem."""

    def __init__(self, name: str, base_dir: str, check_machine: bool) -> None:
        self.origin = f"{name} ({FORMAT})"
        self.base_dir = base_dir
        self.check_machine = check_machine
        self.problems: dict[str, ConfigError] = {}  # ordered, without repeats
        self.health = HealthReader(self, check_machine=check_machine)  # [[check]], groups

    def problem(self, where: str, key: str | tuple[str, ...] | None, reason: str) -> None:
        """A problem with ``key`` in the table ``where`` ("": at the top of the file)."""
        error = ConfigError(key, reason, f"{self.origin}: {where}" if where else self.origin)
        self.problems.setdefault(str(error), error)

    def load(self, document: dict[str, Any]) -> DaemonSettings:
        settings = self.process_options(document)
        checks = self.health.checks(document)
        hosts: list[Host] = []
        built: list[tuple[Host, VirtualHostConfig]] = []
        for host in self.hosts(document):
            hosts.append(host)
            config = self.build(host)
            if config is not None:
                built.append((host, config))
        self.cross_check(built)
        self.health.cross_check(document, checks, settings.groups, hosts)
        if self.problems:
            raise ConfigErrors(list(self.problems.values()))
        vhosts = tuple(config for _, config in built)
        return replace(settings, vhosts=vhosts, checks=tuple(check.config for check in checks))

    def check_keys(
        self,
        table: dict[str, Any],
        where: str,
        allowed: dict[str, KeyType],
        misplaced: Callable[[str], str],
    ) -> dict[str, Any]:
        """The known, well-typed keys of ``table``; a problem for each of the others."""
        good: dict[str, Any] = {}
        for key, value in table.items():
            reason = misplaced(key) if key not in allowed else wrong_type(value, allowed[key])
            if reason is None and isinstance(value, str):
                reason = nul_problem(value, secret=key == "password")
            if reason is None and type(value) is int and abs(value) > MAX_INTEGER:
                reason = f"{shown(str(value))} is far out of range"
            if reason is None:
                good[key] = value
            else:
                self.problem(where, key, reason)
        return good

    def path(self, field: str, text: str) -> str:
        if not text:
            raise ConfigError(field, "the path is empty")
        return resolve_path(text, self.base_dir)

    # process options

    def process_options(self, document: dict[str, Any]) -> DaemonSettings:
        top = {key: value for key, value in document.items() if key not in TABLES}
        values = self.check_keys(top, "", PROCESS_KEYS, misplaced_at_top)
        checks = process_checks(base_dir=self.base_dir, check_machine=self.check_machine)
        checked: dict[str, Any] = {}
        for key, check in checks.items():  # the keys are the fields' names
            try:
                if key in values:
                    checked[key] = check(values[key])
            except ConfigError as exc:
                self.problem("", key, exc.reason)
        # the default control socket is <run dir>/pycarp.sock: the dataclass's own
        return DaemonSettings(
            vhosts=(),
            debug=values.get("debug", False),
            daemonize=values.get("daemonize", False),
            **checked,
            **self.health.process(values),
        )

    # the tables

    def hosts(self, document: dict[str, Any]) -> Iterator[Host]:
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
            self.problem("", "defaults", f"expected a table ([defaults]), got {kind(table)}")
            return {}
        values = self.check_keys(table, "defaults", HOST_KEYS, misplaced_in_host)
        self.one_password(values, "defaults")
        return values

    def vhost_tables(self, document: dict[str, Any]) -> list[Any]:
        tables = array_of_tables(document, "vhost", self.problem)
        if not tables and isinstance(document.get("vhost", []), list):  # else said already
            self.problem("", None, "no [[vhost]] table: at least one virtual host is needed")
        return tables

    def host(self, index: int, table: object, defaults: dict[str, Any]) -> Host | None:
        if not isinstance(table, dict):
            self.problem(f"vhost[{index}]", None, f"expected a table, got {kind(table)}")
            return None
        where = host_label(index, table.get("vhid", defaults.get("vhid")))
        count = len(self.problems)
        own = self.check_keys(table, where, HOST_KEYS, misplaced_in_host)
        self.one_password(own, where)
        if len(self.problems) != count:
            return None
        # a vhost's password or password_file replaces either of [defaults]
        overrides_password = any(key in own for key in PASSWORD_KEYS)
        inherited = {
            key: value
            for key, value in defaults.items()
            if key not in own and not (overrides_password and key in PASSWORD_KEYS)
        }
        return Host(index, {**inherited, **own}, frozenset(inherited))

    def one_password(self, values: dict[str, Any], where: str) -> None:
        if all(key in values for key in PASSWORD_KEYS):
            self.problem(where, None, "password, password_file: give one or the other, not both")

    # one virtual host

    def build(self, host: Host) -> VirtualHostConfig | None:
        missing = [key for key in REQUIRED if key not in host.values]
        if (problem := protocol_problem(host)) is not None:
            self.value_problem(host, problem)
            return None
        carp = host.values.get("protocol") != "vrrp3"  # VRRPv3 has no password
        if carp and not any(key in host.values for key in PASSWORD_KEYS):
            missing.append("password or password_file")
        if missing:
            keys = ", ".join(missing)
            self.problem(host.label, None, f"missing required keys: {keys} (here or in [defaults])")
            return None
        try:
            fields = self.fields(host)
        except ConfigError as exc:
            self.value_problem(host, exc)
            return None
        try:
            config = with_protocol_defaults(VirtualHostConfig(**fields), fields)
        except ConfigError as exc:
            # about the vhost as a whole: a value from [defaults] may be fine in another
            labels = tuple(host.key_label(host.key_of(field)) for field in exc.fields)
            self.problem(host.label, labels or None, exc.reason)
            return None
        if not self.check_machine:
            return config
        config, problems = machine.check_vhost(config)
        for problem in problems:
            self.value_problem(host, problem)
        return config

    def value_problem(self, host: Host, exc: ConfigError) -> None:
        """A bad value of one key: reported where it was written (once, if in [defaults])."""
        key = host.key_of(exc.fields[0]) if exc.fields else None
        self.problem(host.where(key) if key else host.label, key, exc.reason)

    def fields(self, host: Host) -> dict[str, Any]:
        """VirtualHostConfig's arguments; what is not given keeps its default there."""
        values = host.values
        vrrp = values.get("protocol") == "vrrp3"
        fields = {key: values[key] for key in AS_IS if key in values}
        fields = protocol_fields(host, fields) if vrrp else fields
        fields["addresses"], fields["prefixes"] = networks(values["addresses"])
        fields["srcip"] = None  # IPv6 only, or the config says srcip is required
        ipv6_only = all(a.version == 6 for a in fields["addresses"])
        if "srcip" in values and not (ipv6_only and "srcip" in host.from_defaults):
            # [defaults]' srcip serves the IPv4 hosts; an IPv6-only one's own is an error
            fields["srcip"] = parse_ipv4(values["srcip"], "srcip")
        # [defaults]' password serves the CARP hosts; a VRRP one's own is an error
        if any(key in values and not (vrrp and key in host.from_defaults) for key in PASSWORD_KEYS):
            fields["password"] = self.password(host)
        if values.get("virtual_mac") and not vrrp:
            if "mac" in values:
                raise ConfigError("mac", "give mac or virtual_mac (the same as mac = ucarp)")
            fields["mac"] = "ucarp"
        if "mcast" in values:
            fields["group"] = parse_ipv4(values["mcast"], "group")
        if "deadratio" in values:
            fields["deadratio"] = check_deadratio(values["deadratio"])
        if "track" in values:
            fields["track"] = strings(values["track"], "track")
        if "peers" in values:
            fields["peers"] = unicast_peers(values)
        elif "min_ttl" in values:
            raise ConfigError("min_ttl", "means nothing without peers (it is for unicast)")
        for key in SCRIPT_KEYS:
            if key in values:
                fields[key] = self.path(key, values[key])
        return fields

    def password(self, host: Host) -> bytes:
        key = host.password_key
        if key == "password":
            # the bytes a ucarp peer gets from the same characters in a UTF-8 locale
            return check_password(str(host.values[key]).encode())
        path = self.path("password", host.values[key])  # an empty path is wrong anywhere
        if not self.check_machine:
            return b""  # the file is on the host that will run this
        try:
            password = machine.read_passfile(path)
        except ConfigError as exc:
            # reported, and the host still checked: its other problems show too
            self.value_problem(host, exc)
            return b""
        return check_password(password)

    # between virtual hosts

    def cross_check(self, built: Sequence[tuple[Host, VirtualHostConfig]]) -> None:
        """What no single vhost shows: the same vhid or address twice, mixed groups."""
        vhids: dict[tuple[str, int], Host] = {}
        claimed: dict[Address, Host] = {}
        groups: dict[str, tuple[IPv4Address, Host]] = {}
        srcips: dict[Address, Host] = {}
        for host, config in built:
            if config.srcip is not None:
                srcips.setdefault(config.srcip, host)
        for host, config in built:
            first = vhids.setdefault((config.interface, config.vhid), host)
            if first is not host:
                where = f"{config.vhid} on {config.interface}"
                self.problem(host.label, "vhid", f"{where} is already used by {first.label}")
            for address in config.addresses:
                self.claim(host, address, claimed, srcips)
            if 4 not in config.versions:
                continue  # IPv6 has one group, ff02::12
            group, first = groups.setdefault(config.interface, (config.group, host))
            if group != config.group:
                self.problem(
                    host.label,
                    "mcast",
                    f"{config.group} differs from {group} of {first.label} on "
                    f"{config.interface} (one multicast group per interface)",
                )

    def claim(
        self,
        host: Host,
        address: Address,
        claimed: dict[Address, Host],
        srcips: dict[Address, Host],
    ) -> None:
        owner = claimed.setdefault(address, host)
        if owner is not host:
            self.problem(host.label, "addresses", f"{address} is already claimed by {owner.label}")
        holder = srcips.get(address)
        if holder is not None and holder is not host:
            self.problem(host.label, "addresses", f"{address} is the srcip of {holder.label}")


def unicast_peers(values: dict[str, Any]) -> tuple[Address, ...]:
    """The `peers` of a vhost: IPv4 or IPv6 addresses (link-local ones with a scope or
    without), at least one; never with a multicast group."""
    if not values["peers"]:
        reason = "an empty list: leave peers out for multicast, or list the peers"
        raise ConfigError("peers", reason)
    if "mcast" in values:
        raise ConfigError("group", "means nothing for a unicast host (with peers)")
    listed = strings(values["peers"], "peers")
    return tuple(parse_address(text, "peers", scoped=True) for text in listed)
