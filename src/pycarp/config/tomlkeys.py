"""The keys of a TOML config file: where each goes, its type, and its field.

What pycarp.config.tomlfile checks a document against, and how it names
VirtualHostConfig's fields in the file's words (``group`` is ``mcast``).
A [[check]] table's keys are CheckConfig's field names as they are.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pycarp.config.values import nul_problem, parse_address, shown
from pycarp.core.checkconfig import name_problem
from pycarp.core.errors import ConfigError
from pycarp.core.packet import Address

__all__ = [
    "AS_IS",
    "CHECK_KEYS",
    "HOST_KEYS",
    "PASSWORD_KEYS",
    "PROCESS_KEYS",
    "REQUIRED",
    "SCRIPT_KEYS",
    "TABLES",
    "Host",
    "KeyType",
    "array_of_tables",
    "check_label",
    "host_label",
    "kind",
    "misplaced_at_top",
    "misplaced_in_check",
    "misplaced_in_host",
    "networks",
    "strings",
    "wrong_type",
]

KeyType = type | tuple[type, ...]  # the TOML type of a key's value, or the types it may have

# The keys of each place and the TOML type of their values.
PROCESS_KEYS: dict[str, KeyType] = {
    "facility": str,
    "debug": bool,
    "daemonize": bool,
    "control_socket": str,
    "control_group": str,
    "metrics": str,
    "metrics_public": bool,
    "groups": list,
    "realtime": str,
}
HOST_KEYS: dict[str, KeyType] = {
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
    "replay": str,
    "script_timeout": int,
    "track": list,
    "demotion": str,
    "penalty": int,
    "peers": list,
    "min_ttl": int,
    "protocol": str,
    "priority": int,
    "advert_int": (int, float),
    "preempt_delay": (int, float),
    "mac": str,
}
CHECK_KEYS: dict[str, KeyType] = {
    "name": str,
    "type": str,
    "interval": (int, float),
    "timeout": (int, float),
    "rise": int,
    "fall": int,
    "group": str,
    "command": (list, str),
    "shell": bool,
    "host": str,
    "port": int,
    "url": str,
    "expect": int,
    "interface": str,
}
TABLES = ("defaults", "vhost", "check")
REQUIRED = ("interface", "vhid", "addresses")  # srcip too, with IPv4 addresses (the config's rule)
PASSWORD_KEYS = ("password", "password_file")
SCRIPT_KEYS = ("upscript", "downscript")
# Keys whose value goes to the VirtualHostConfig field of the same name as it is.
AS_IS = (
    *("interface", "vhid", "advbase", "advskew", "preempt", "neutral", "nomcast"),
    *("ignoreifstate", "xparam", "shutdown", "plumb", "replay"),
    *("script_timeout", "demotion", "penalty", "min_ttl", "protocol", "priority", "mac"),
)
# The key that sets each field whose key has another name ("password": see Host.key_of).
_KEY_OF = {"addresses": "addresses", "prefixes": "addresses", "group": "mcast"}
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


def array_of_tables(
    document: dict[str, Any], key: str, problem: Callable[[str, str, str], None]
) -> list[Any]:
    """The [[key]] tables of the document; none, and a problem (where, key, reason), if not."""
    tables = document.get(key, [])
    if isinstance(tables, list):
        return tables
    problem("", key, f"expected an array of tables ([[{key}]]), got {kind(tables)}")
    return []


def kind(value: object) -> str:
    return _KIND_NAMES.get(type(value), "a date or time")  # the only other TOML values


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def wrong_type(value: object, expected: KeyType) -> str | None:
    """Why ``value`` is not of the ``expected`` TOML type(s), or None when it is.

    ``type() is``, not isinstance: true is not an integer here.
    """
    types = expected if isinstance(expected, tuple) else (expected,)
    if type(value) in types:
        return None
    shown = "" if isinstance(value, list | dict) else f" ({_show(value)})"
    names = " or ".join(_KIND_NAMES[one] for one in types)
    return f"expected {names}, got {kind(value)}{shown}"


def _guess(key: str, allowed: Iterable[str]) -> str | None:
    """The key of ``allowed`` that ``key`` was most likely meant to be."""
    allowed = list(allowed)
    guess = _RENAMED.get(key)
    if guess not in allowed:
        guess = next(iter(difflib.get_close_matches(key, allowed, n=1)), None)
    return guess


def _unknown(key: str, allowed: Iterable[str]) -> str:
    guess = _guess(key, allowed)
    return f"unknown key (did you mean {guess}?)" if guess else "unknown key"


_PER_HOST = "a per-host key: set it in [defaults] or in a [[vhost]] table"
_PROCESS = "a process option: set it at the top of the file, before any table"
_OF_A_CHECK = "a key of a health check: set it in a [[check]] table"


def misplaced_at_top(key: str) -> str:
    if key in HOST_KEYS:
        return _PER_HOST
    top = [*PROCESS_KEYS, *TABLES]
    if key in CHECK_KEYS and _guess(key, top) is None:  # group: most likely groups
        return _OF_A_CHECK
    return _unknown(key, top)


def misplaced_in_host(key: str) -> str:
    if key in PROCESS_KEYS:
        return _PROCESS
    if key in CHECK_KEYS and key not in _RENAMED:  # group: ucarp's name of mcast
        return _OF_A_CHECK
    return _unknown(key, HOST_KEYS)


def misplaced_in_check(key: str) -> str:
    if key in PROCESS_KEYS:
        return _PROCESS
    if key in HOST_KEYS:
        return _PER_HOST
    return _unknown(key, CHECK_KEYS)


def strings(items: list[Any], field: str) -> tuple[str, ...]:
    """An array of strings as a tuple; ConfigError naming ``field`` for anything else."""
    for item in items:
        if type(item) is not str:
            raise ConfigError(field, f"expected strings, got {kind(item)} ({_show(item)})")
        if (problem := nul_problem(item)) is not None:
            raise ConfigError(field, problem)
    return tuple(items)


def networks(items: list[Any]) -> tuple[tuple[Address, ...], tuple[int, ...]]:
    """``["198.51.100.1/24", "2001:db8::1/64"]`` as addresses and prefix lengths.

    The default prefix is the whole address (32, 128); the prefix lengths'
    range is VirtualHostConfig's to check.
    """
    addresses: list[Address] = []
    prefixes: list[int] = []
    for item in items:
        if type(item) is not str:
            raise ConfigError("addresses", f"expected strings, got {kind(item)} ({_show(item)})")
        text, slash, prefix = item.partition("/")
        if slash and not (prefix.isascii() and prefix.isdigit() and len(prefix) <= 10):
            reason = f"{shown(item)}: the prefix length after / is not a number"
            raise ConfigError("addresses", reason)
        address = parse_address(text, "addresses")
        addresses.append(address)
        prefixes.append(int(prefix) if slash else address.max_prefixlen)
    return tuple(addresses), tuple(prefixes)


def host_label(index: int, vhid: object) -> str:
    return f"vhost[{index}] (vhid {vhid})" if type(vhid) is int else f"vhost[{index}]"


def check_label(index: int, name: object) -> str:
    """``check[1] (web)``; without the name when it is not one."""
    good = isinstance(name, str) and name_problem(name) is None
    return f"check[{index}] ({name})" if good else f"check[{index}]"


@dataclass(frozen=True)
class Host:
    """One [[vhost]] table over [defaults]: its keys, well typed."""

    index: int
    values: dict[str, Any]
    from_defaults: frozenset[str]  # the keys whose value is [defaults]'

    @property
    def label(self) -> str:
        return host_label(self.index, self.values.get("vhid"))

    def where(self, key: str) -> str:
        """Where a bad value of ``key`` alone was written."""
        return "defaults" if key in self.from_defaults else self.label

    def key_label(self, key: str) -> str:
        return f"{key} (from [defaults])" if key in self.from_defaults else key

    @property
    def password_key(self) -> str:
        return "password" if "password" in self.values else "password_file"

    def key_of(self, field: str) -> str:
        """The key that sets VirtualHostConfig's ``field`` in this table."""
        return self.password_key if field == "password" else _KEY_OF.get(field, field)
