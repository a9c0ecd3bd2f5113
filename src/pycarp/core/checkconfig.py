"""Settings of one health check, validated once when built.

A check is run every `interval` seconds (one run at a time, killed at
`timeout`); `rise` passes in a row make it healthy, `fall` failures in a row
failing. While it is not healthy it adds one to its demotion group's count
(core/health.py), and every virtual host that tracks the group is demoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pycarp.core.errors import ConfigError

CheckType = Literal["command", "tcp", "http", "carrier"]
CHECK_TYPES: tuple[CheckType, ...] = ("command", "tcp", "http", "carrier")
MIN_INTERVAL = 0.1  # seconds; shorter checks would cost more than they tell
MAX_SECONDS = 3600.0
MAX_COUNT = 100  # rise and fall
MAX_GROUP = 255  # a demotion count fits the CARP header's demote byte
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")  # shown in logs, labels and commands
# Only these fields mean something for each type; the others must stay unset.
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "command": ("command",),
    "tcp": ("host", "port"),
    "http": ("url",),
    "carrier": ("interface",),
}

TYPE_ONLY = {"shell": "command", "expect": "http"}  # fields with a default that is no value


def meaningless(check_type: str, given: Iterable[str]) -> list[str]:
    """The fields among `given` that mean nothing for a check of `check_type`.

    A front-end that knows which keys were written asks this, so that even a
    default value given for another type (`expect = 200` on a tcp check) is
    refused, which __post_init__ cannot see.
    """
    own = {*TYPE_FIELDS.get(check_type, ()), *(f for f, t in TYPE_ONLY.items() if t == check_type)}
    specific = {*(f for fields in TYPE_FIELDS.values() for f in fields), *TYPE_ONLY}
    return [field for field in given if field in specific and field not in own]


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a check or a demotion group, or None."""
    if NAME.fullmatch(name) is None:
        return (
            f"{name!r} is not a name: 1 to 63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return None


@dataclass(frozen=True)
class CheckConfig:
    """One health check: what to run, how often, and which group it demotes."""

    name: str
    type: CheckType
    interval: float = 2.0
    timeout: float = 1.0
    rise: int = 2  # passes in a row that make a check healthy
    fall: int = 2  # failures in a row that make it failing
    group: str = ""  # the demotion group; "" means the check's own name
    # command: the argv, run without a shell; with shell, one string for /bin/sh -c
    command: tuple[str, ...] = ()
    shell: bool = False
    host: str = ""  # tcp: an address or a name
    port: int = 0  # tcp
    url: str = ""  # http: an http:// or https:// URL
    expect: int = 200  # http: the status that means healthy
    interface: str = ""  # carrier: the interface that must have carrier

    @property
    def demotes(self) -> str:
        """The demotion group this check counts in."""
        return self.group or self.name

    def __post_init__(self) -> None:
        if (problem := name_problem(self.name)) is not None:
            raise ConfigError("name", problem)
        if self.type not in CHECK_TYPES:
            known = ", ".join(CHECK_TYPES)
            raise ConfigError("type", f"unknown check type {self.type!r} (known: {known})")
        if self.group and (problem := name_problem(self.group)) is not None:
            raise ConfigError("group", problem)
        for field in ("interval", "timeout"):
            value = getattr(self, field)
            if not MIN_INTERVAL <= value <= MAX_SECONDS:
                limits = f"{MIN_INTERVAL:g}..{MAX_SECONDS:g} seconds"
                raise ConfigError(field, f"{value:g} is outside {limits}")
        for field in ("rise", "fall"):
            value = getattr(self, field)
            if not 1 <= value <= MAX_COUNT:
                raise ConfigError(field, f"{value} is outside 1..{MAX_COUNT}")
        self._check_type_fields()

    def _check_type_fields(self) -> None:
        needed = TYPE_FIELDS[self.type]
        for fields in TYPE_FIELDS.values():
            for field in fields:
                if field not in needed and getattr(self, field):
                    raise ConfigError(field, f"means nothing for a {self.type} check")
        if self.shell and self.type != "command":
            raise ConfigError("shell", f"means nothing for a {self.type} check")
        if self.type == "command":
            if not self.command or not all(self.command):
                raise ConfigError("command", "required: the program and its arguments")
            if self.shell and len(self.command) != 1:
                raise ConfigError("command", "with shell, one string for /bin/sh -c")
        elif self.type == "tcp":
            if not self.host:
                raise ConfigError("host", "required for a tcp check")
            if not 1 <= self.port <= 65535:
                raise ConfigError("port", f"{self.port} is outside 1..65535")
        elif self.type == "http":
            scheme, _, rest = self.url.partition("://")
            if scheme not in ("http", "https") or not rest.split("/", 1)[0]:
                raise ConfigError("url", f"{self.url!r} is not an http:// or https:// URL")
            if not 100 <= self.expect <= 599:
                raise ConfigError("expect", f"{self.expect} is not an HTTP status (100..599)")
        elif not self.interface:
            raise ConfigError("interface", "required for a carrier check")
        if self.type != "http" and self.expect != 200:
            raise ConfigError("expect", f"means nothing for a {self.type} check")
