"""ucarp 1.5.2's options, and the options given turned into DaemonSettings.

The options and their meaning are ucarp's (long names, short letters,
defaults, getopt_long's abbreviations). What differs is that every value is
checked: a bad one is a one-line error naming the option (and the file and
line when it came from an options file), where ucarp would silently
truncate a number or print its usage and exit 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

from pycarp.config import machine
from pycarp.config.getopt import Given, Option, OptionTable, scan
from pycarp.config.optionsfile import OptionsFileError, SourcedArg, split_options_text
from pycarp.config.settings import DaemonSettings, default_control_socket
from pycarp.config.values import (
    check_deadratio,
    check_password,
    nul_problem,
    parse_ipv4,
    process_checks,
    shown,
)
from pycarp.config.vrrpoptions import VRRP_OPTIONS, check_protocol_options, vrrp_fields
from pycarp.core.config import VirtualHostConfig, with_protocol_defaults
from pycarp.core.errors import ConfigError

__all__ = [
    "CONFIG_KEYS",
    "FIELDS",
    "FORMAT",
    "MODE_KEYS",
    "OPTIONS",
    "OPTION_OF",
    "PASSWORD",
    "PASSWORD_VARIABLE",
    "PATH_KEYS",
    "PROCESS_KEYS",
    "TABLE",
    "daemon_settings",
    "last_of_each",
    "options_in_file",
    "parse_c_number",
    "rename",
    "with_process_options",
]

FORMAT = "ucarp options"  # how errors name the format: "ucarp.cfg:3 (ucarp options): ..."

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
        ("mac",),
        None,
        "mac",
        "interface (default with CARP), ucarp (as --virtual-mac) or virtual: VRRP's or "
        "BSD's 00:00:5e:00:01:<vhid>, the addresses on a macvlan (default with VRRP) "
        "(pycarp only)",
        ucarp=False,
    ),
    *VRRP_OPTIONS,
    Option(
        ("replay",),
        None,
        "mode",
        "replay protection: on (default), strict (peers' counters must grow: pycarp "
        "peers only) or off (pycarp only)",
        ucarp=False,
    ),
    Option(
        ("script-timeout",),
        None,
        "seconds",
        "kill an up or down script still running after <seconds> (default 10) (pycarp only)",
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
        ("realtime",),
        None,
        "mode",
        "realtime scheduling: auto (default: with advbase 0), on or off (pycarp only)",
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
TABLE = OptionTable(OPTIONS)

PASSWORD = "password"  # --pass and --passfile set the same thing; the last one wins
# The password when neither --pass nor --passfile is given: kept out of argv (and ps).
PASSWORD_VARIABLE = "PYCARP_PASSWORD"
_ENVIRONMENT = f"{PASSWORD_VARIABLE} (environment)"
CONFIG_KEYS = frozenset({"config", "check-config"})
# Options about how pycarp is run, not what it runs: never inside an options file.
MODE_KEYS = CONFIG_KEYS | {"no-machine-checks"}
# The options that may go with a TOML file (and override its top-level keys).
PROCESS_KEYS = frozenset(
    {"facility", "debug", "daemonize", "control-socket", "control-group", "realtime"}
)
# Options naming a file or path, made absolute for reloads (the daemon chdirs to /).
PATH_KEYS = CONFIG_KEYS | {"passfile", "upscript", "downscript", "control-socket"}

# The field of VirtualHostConfig or DaemonSettings each option (or PASSWORD) sets.
FIELDS = {
    "interface": "interface",
    "srcip": "srcip",
    "vhid": "vhid",
    "addr": "addresses",
    PASSWORD: "password",
    "advbase": "advbase",
    "advskew": "advskew",
    "deadratio": "deadratio",
    "preempt": "preempt",
    "neutral": "neutral",
    "mcast": "group",
    "nomcast": "nomcast",
    "ignoreifstate": "ignoreifstate",
    "upscript": "upscript",
    "downscript": "downscript",
    "xparam": "xparam",
    "shutdown": "shutdown",
    "virtual-mac": "mac",
    "mac": "mac",
    "protocol": "protocol",
    "priority": "priority",
    "advert-int": "advert_int",
    "preempt-delay": "preempt_delay",
    "replay": "replay",
    "script-timeout": "script_timeout",
    "facility": "facility",
    "debug": "debug",
    "daemonize": "daemonize",
    "control-socket": "control_socket",
    "control-group": "control_group",
    "realtime": "realtime",
}
# The option that names each field in errors ("prefixes" has none of its own).
OPTION_OF = {field: key for key, field in FIELDS.items()} | {"prefixes": "addr"}
_TEXTS = ("upscript", "downscript", "xparam", "replay", "protocol", "mac")
_FLAGS = ("preempt", "neutral", "nomcast", "ignoreifstate", "shutdown")
_REQUIRED = (
    ("interface", "--interface (pycarp does not pick one as ucarp does)"),
    ("srcip", "--srcip"),
    ("vhid", "--vhid"),
    (PASSWORD, f"--pass or --passfile (or {PASSWORD_VARIABLE} in the environment)"),
    ("addr", "--addr"),
)


def rename(exc: ConfigError, chosen: Mapping[str, Given]) -> ConfigError:
    """``exc`` in the options' words: field "advskew" as "file:line: --advskew".

    An error that names no field, or names it already, is returned as it is.
    """
    if not exc.fields or not all(field in OPTION_OF for field in exc.fields):
        return exc
    keys = [OPTION_OF[field] for field in exc.fields]
    givens = [chosen.get(key) for key in keys]
    labels = tuple(g.option.label if g else f"--{k}" for k, g in zip(keys, givens, strict=True))
    origin = next((g.origin for g in givens if g is not None and g.origin), None)
    return ConfigError(labels, exc.reason, origin)


def options_in_file(data: bytes, path: str) -> list[Given]:
    """The options in a ucarp options file; each knows its "file:line (ucarp options)"."""
    text = data.decode("utf-8", "surrogateescape")  # odd bytes stay, as in argv
    try:
        args = split_options_text(text, name=path)
    except OptionsFileError as exc:
        raise ConfigError(None, exc.reason, f"{exc.origin} ({FORMAT})") from None
    given = scan([SourcedArg(arg.value, f"{arg.origin} ({FORMAT})") for arg in args], TABLE)
    for nested in given:
        if nested.option.key in MODE_KEYS:
            raise nested.fail("cannot be used inside an options file")
        if (problem := nul_problem(nested.value, secret=nested.option.key == "pass")) is not None:
            raise nested.fail(problem)
    return given


def last_of_each(given: Sequence[Given]) -> dict[str, Given]:
    """Later options override earlier ones, as in ucarp (a flag, once set, stays)."""
    chosen: dict[str, Given] = {}
    for one in given:
        key = PASSWORD if one.option.key in ("pass", "passfile") else one.option.key
        chosen[key] = one
    return chosen


def _with_password_from_environment(chosen: Mapping[str, Given]) -> Mapping[str, Given]:
    """``chosen`` with the password of PYCARP_PASSWORD when no option gives one."""
    value = os.environ.get(PASSWORD_VARIABLE)
    if PASSWORD in chosen or value is None:
        return chosen
    origin = _ENVIRONMENT
    return {**chosen, PASSWORD: Given(TABLE.by_long["pass"], value, origin)}


def daemon_settings(chosen: Mapping[str, Given], *, check_machine: bool) -> DaemonSettings:
    """The one virtual host and the process options that ``chosen`` gives."""
    chosen = _with_password_from_environment(chosen)
    vrrp = check_protocol_options(chosen)
    if vrrp and PASSWORD in chosen and chosen[PASSWORD].origin == _ENVIRONMENT:
        chosen = {k: v for k, v in chosen.items() if k != PASSWORD}  # VRRPv3 has none
    needed = [(k, label) for k, label in _REQUIRED if not (vrrp and k == PASSWORD)]
    missing = [label for key, label in needed if key not in chosen]
    if missing:
        raise ConfigError(None, f"missing required options: {', '.join(missing)} (see --help)")
    try:
        fields = _vhost_fields(chosen, check_machine=check_machine)
        vhost = with_protocol_defaults(VirtualHostConfig(**fields), fields)
        if check_machine:
            vhost, problems = machine.check_vhost(vhost)
            if problems:
                raise problems[0]
    except ConfigError as exc:
        raise rename(exc, chosen) from None
    # one process per VIP, as with ucarp: each needs a socket of its own
    socket = default_control_socket(vhost.interface, vhost.vhid)
    found = DaemonSettings(vhosts=(vhost,), control_socket=socket)
    return with_process_options(found, chosen, check_machine=check_machine)


def with_process_options(
    settings: DaemonSettings, chosen: Mapping[str, Given], *, check_machine: bool
) -> DaemonSettings:
    """``settings`` with the process options of ``chosen`` (a flag can only set, not clear)."""
    changes: dict[str, Any] = {FIELDS[key]: True for key in ("debug", "daemonize") if key in chosen}
    checks = process_checks(base_dir=None, check_machine=check_machine)
    try:
        for field, check in checks.items():
            if (given := chosen.get(OPTION_OF[field])) is not None:
                changes[field] = check(given.value)
    except ConfigError as exc:
        raise rename(exc, chosen) from None
    return replace(settings, **changes)


def _vhost_fields(chosen: Mapping[str, Given], *, check_machine: bool) -> dict[str, Any]:
    """VirtualHostConfig's arguments, in the order their errors are reported.

    What is not given is left out: it keeps VirtualHostConfig's default.
    """
    fields: dict[str, Any] = {
        "interface": chosen["interface"].value,
        "srcip": parse_ipv4(chosen["srcip"].value, "srcip"),
        "vhid": parse_c_number(chosen["vhid"].value, "vhid"),
        "addresses": (_virtual_address(chosen["addr"].value),),
    }
    if PASSWORD in chosen:
        fields["password"] = _password(chosen[PASSWORD], check_machine=check_machine)
    for key in ("advbase", "advskew", "deadratio", "priority"):
        if key in chosen:
            fields[key] = parse_c_number(chosen[key].value, key)
    fields |= vrrp_fields({key: given.value for key, given in chosen.items()})
    if "virtual-mac" in chosen:
        if "mac" in chosen:
            raise ConfigError("mac", "give --mac or --virtual-mac (the same as --mac=ucarp)")
        fields["mac"] = "ucarp"
    if "deadratio" in fields:
        check_deadratio(fields["deadratio"])
    if "mcast" in chosen:
        fields["group"] = parse_ipv4(chosen["mcast"].value, "group")
    if "script-timeout" in chosen:
        fields["script_timeout"] = parse_c_number(chosen["script-timeout"].value, "script_timeout")
    fields |= {FIELDS[key]: chosen[key].value for key in _TEXTS if key in chosen}
    for key in ("upscript", "downscript"):
        if fields.get(key) == "":
            raise ConfigError(key, "the path is empty")
    fields |= {FIELDS[key]: True for key in _FLAGS if key in chosen}
    return fields


def _virtual_address(text: str) -> IPv4Address:
    """--addr: one IPv4 address, as ucarp; an IPv6 one is told where it works."""
    try:
        return parse_ipv4(text, "addresses")
    except ConfigError as exc:
        if ":" in text:
            reason = f"{exc.reason} (IPv6 virtual addresses are for TOML files: docs/config.md)"
            raise ConfigError("addresses", reason) from None
        raise


def _password(given: Given, *, check_machine: bool) -> bytes:
    if given.option.key == "passfile":
        if not given.value:
            raise ConfigError("password", "the path is empty")
        if not check_machine:
            return b""  # the file is on the host that will run this
        return check_password(machine.read_passfile(given.value))
    return check_password(os.fsencode(given.value))  # back to the bytes the user typed


MAX_NUMBER_TEXT = 32  # each number here fits in 32 bits: 0x and 8 digits, 10 decimal
_C_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_OCTAL_SLIP = re.compile(r"[+-]?0[0-9]+")  # such as 08 or 09


def parse_c_number(text: str, field: str) -> int:
    """A number written as C's strtoul(s, NULL, 0) reads it: 0x1f, 017 (octal), 15.

    Unlike strtoul, trailing junk is an error rather than ignored; the
    range is checked by VirtualHostConfig.
    """
    if len(text) > MAX_NUMBER_TEXT:  # before int(), which refuses 4300 digits with a traceback
        raise ConfigError(field, f"{shown(text)} is too long for a number")
    if not _C_NUMBER.fullmatch(text):
        hint = " (a leading 0 means octal, as in ucarp)" if _OCTAL_SLIP.fullmatch(text) else ""
        raise ConfigError(field, f"{shown(text)} is not a number{hint}")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits[:2].lower() == "0x":
        return sign * int(digits[2:], 16)
    return sign * int(digits, 8 if digits.startswith("0") else 10)
