"""Health checks, demotion groups and the metrics endpoint in a TOML file.

The shape (docs/config.md has a complete example)::

    metrics = "127.0.0.1:9406"          # process options
    groups = ["maintenance"]            # demotion groups that no check counts in

    [[check]]                           # its keys are CheckConfig's field names
    name = "web"
    type = "http"
    url = "http://198.51.100.10:8080/health"

    [[vhost]]                           # or [defaults]
    track = ["web", "maintenance"]

Each [[check]] becomes a CheckConfig, whose own checks name the key at
fault; with machine checks, pycarp.config.machine checks its program or
interface. Across tables: check names are unique, every tracked group is
defined by a check or by ``groups``, and every defined group is tracked by
some [[vhost]] (a group no host tracks would demote nothing).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pycarp.config import machine
from pycarp.config.settings import MetricsAddress
from pycarp.config.tomlkeys import (
    CHECK_KEYS,
    Host,
    KeyType,
    array_of_tables,
    check_label,
    kind,
    misplaced_in_check,
    strings,
)
from pycarp.config.values import shown
from pycarp.core.checkconfig import CHECK_TYPES, CheckConfig, meaningless, name_problem
from pycarp.core.errors import ConfigError

__all__ = ["Check", "Collector", "HealthReader", "parse_metrics"]

REQUIRED_CHECK_KEYS = ("name", "type")
MAX_PORT = 65535
_EXAMPLE = "(e.g. 127.0.0.1:9406 or [::1]:9406)"


class Collector(Protocol):
    """What collects a file's problems: pycarp.config.tomlfile's loader."""

    def problem(self, where: str, key: str | tuple[str, ...] | None, reason: str) -> None: ...

    def check_keys(
        self,
        table: dict[str, Any],
        where: str,
        allowed: dict[str, KeyType],
        misplaced: Callable[[str], str],
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Check:
    """One [[check]] table, built."""

    label: str  # check[1] (web)
    config: CheckConfig


def parse_metrics(text: str, *, public: bool) -> MetricsAddress:
    """``"127.0.0.1:9406"`` or ``"[::1]:9406"``; an address off loopback only if ``public``."""
    host, port = _host_and_port(text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        reason = f"{shown(host)} is not an IP address (names are not looked up)"
        raise ConfigError("metrics", reason) from None
    if address.is_multicast:
        raise ConfigError("metrics", f"{address} is a multicast address")
    if not address.is_loopback and not public:
        reason = (
            f"{address} is not a loopback address; "
            "set metrics_public = true to serve metrics to the network"
        )
        raise ConfigError("metrics", reason)
    return MetricsAddress(str(address), port)


def _host_and_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]:")
        if not bracket or ":" not in host:
            raise ConfigError("metrics", f"{shown(text)} is not [IPv6 address]:port {_EXAMPLE}")
    else:
        host, colon, port = text.rpartition(":")
        if ":" in host:
            raise ConfigError("metrics", f"{shown(text)}: an IPv6 address goes in brackets")
        if not colon or not host:
            raise ConfigError("metrics", f"{shown(text)} is not address:port {_EXAMPLE}")
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= MAX_PORT):
        raise ConfigError("metrics", f"{shown(port)} is not a port (1..{MAX_PORT})")
    return host, int(port)


def _hint(name: str, known: Iterable[str]) -> str:
    guess = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {guess[0]}?)" if guess else ""


def _untracked(group: str) -> str:
    return f'group {group} is tracked by no [[vhost]] (add track = ["{group}"] to one)'


class HealthReader:
    """Reads the checks, groups and metrics of one document into a Collector."""

    def __init__(self, collector: Collector, *, check_machine: bool) -> None:
        self.collector = collector
        self.check_machine = check_machine

    def problem(self, where: str, key: str | tuple[str, ...] | None, reason: str) -> None:
        self.collector.problem(where, key, reason)

    # process options

    def process(self, values: dict[str, Any]) -> dict[str, Any]:
        """DaemonSettings' groups and metrics, from the well-typed process options."""
        fields: dict[str, Any] = {}
        if "groups" in values:
            fields["groups"] = self.groups(values["groups"])
        public = values.get("metrics_public", False)
        if "metrics" in values:
            try:
                fields["metrics"] = parse_metrics(values["metrics"], public=public)
            except ConfigError as exc:
                self.problem("", "metrics", exc.reason)
        elif public:
            self.problem("", "metrics_public", "means nothing without metrics")
        return fields

    def groups(self, items: list[Any]) -> tuple[str, ...]:
        try:
            names = strings(items, "groups")
        except ConfigError as exc:
            self.problem("", "groups", exc.reason)
            return ()
        good: list[str] = []
        for name in names:
            if (problem := name_problem(name)) is not None:
                self.problem("", "groups", problem)
            elif name in good:
                self.problem("", "groups", f"{name} is listed twice")
            else:
                good.append(name)
        return tuple(good)

    # the [[check]] tables

    def checks(self, document: dict[str, Any]) -> list[Check]:
        """Every [[check]] that is right by itself, its name unique."""
        tables = array_of_tables(document, "check", self.problem)
        built: list[Check] = []
        names: dict[str, str] = {}  # name: the label of the first check with it
        for index, table in enumerate(tables):
            check = self.check(index, table)
            name = table.get("name") if isinstance(table, dict) else None
            if not isinstance(name, str):
                continue
            label = check_label(index, name)
            first = names.setdefault(name, label)
            if first != label:
                self.problem(label, "name", f"{name} is already the name of {first}")
            elif check is not None:
                built.append(check)
        return built

    def check(self, index: int, table: object) -> Check | None:
        if not isinstance(table, dict):
            self.problem(f"check[{index}]", None, f"expected a table, got {kind(table)}")
            return None
        where = check_label(index, table.get("name"))
        values = self.collector.check_keys(table, where, CHECK_KEYS, misplaced_in_check)
        if len(values) != len(table):  # the others were reported
            return None
        missing = [key for key in REQUIRED_CHECK_KEYS if key not in values]
        if missing:
            self.problem(where, None, f"missing required keys: {', '.join(missing)}")
            return None
        stray = meaningless(values["type"], values) if values["type"] in CHECK_TYPES else []
        for key in stray:
            self.problem(where, key, f"means nothing for a {values['type']} check")
        if stray:
            return None
        try:
            config = CheckConfig(**self.fields(values))
        except ConfigError as exc:
            self.problem(where, exc.fields or None, exc.reason)
            return None
        for problem in machine.check_health(config) if self.check_machine else []:
            self.problem(where, problem.fields or None, problem.reason)
        return Check(where, config)

    def fields(self, values: dict[str, Any]) -> dict[str, Any]:
        """CheckConfig's arguments: the keys are its fields; what is not given keeps its default."""
        fields = dict(values)
        for key in ("interval", "timeout"):
            if key in fields:
                fields[key] = float(fields[key])
        if "command" in fields:
            command = fields["command"]
            if values["type"] != "command":  # CheckConfig says it means nothing here
                fields["command"] = (command,) if isinstance(command, str) else tuple(command)
            else:
                fields["command"] = self.command(command, shell=values.get("shell", False))
        return fields

    def command(self, command: str | list[Any], *, shell: bool) -> tuple[str, ...]:
        if isinstance(command, str):
            if not shell:
                reason = (
                    "a string is run by /bin/sh -c only with shell = true; "
                    "without a shell, give an array: the program and its arguments"
                )
                raise ConfigError("command", reason)
            return (command,)
        argv = strings(command, "command")
        if shell:
            raise ConfigError("command", "with shell = true, give one string for /bin/sh -c")
        if argv and argv[0] and not os.path.isabs(argv[0]):
            # no PATH search: what runs must not depend on the daemon's environment
            reason = f"{shown(argv[0])} is not an absolute path (it is run without a shell)"
            raise ConfigError("command", reason)
        return argv

    # between tables

    def cross_check(
        self,
        document: dict[str, Any],
        checks: Sequence[Check],
        groups: Sequence[str],
        hosts: Sequence[Host],
    ) -> None:
        """Groups defined once, tracked groups defined, defined groups tracked.

        ``hosts`` are the [[vhost]] tables read (over [defaults]); only when
        every table was read is a group known to be tracked by none.
        """
        owners: dict[str, str] = {}  # group: the first check that counts in it
        for check in checks:
            owners.setdefault(check.config.demotes, check.label)
        for group in groups:
            if group in owners:
                reason = f"{group} is the group of {owners[group]}: list only groups without checks"
                self.problem("", "groups", reason)
        defined = _defined_groups(document)
        tracked: set[str] = set()
        complete = bool(hosts) and len(hosts) == len(document.get("vhost", []))
        for host in hosts:
            names = host.values.get("track", [])
            complete = complete and all(isinstance(name, str) for name in names)
            for name in (name for name in names if isinstance(name, str)):
                tracked.add(name)
                if name not in defined and name_problem(name) is None:
                    reason = f"no check or groups entry defines group {name!r}"
                    self.problem(host.where("track"), "track", reason + _hint(name, defined))
        if not complete:
            return
        for group, label in owners.items():
            if group not in tracked:
                self.problem(label, None, _untracked(group))
        for group in groups:
            if group not in tracked and group not in owners:
                self.problem("", "groups", _untracked(group))


def _defined_groups(document: dict[str, Any]) -> set[str]:
    """The groups the checks and ``groups`` name, even those with a problem of their own."""
    defined: set[str] = set()
    tables = document.get("check")
    for table in tables if isinstance(tables, list) else []:
        if isinstance(table, dict):
            group = table.get("group") or table.get("name")
            if isinstance(group, str):
                defined.add(group)
    entries = document.get("groups")
    if isinstance(entries, list):
        defined.update(entry for entry in entries if isinstance(entry, str))
    return defined
