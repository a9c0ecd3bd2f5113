"""The checks of this machine: what a configuration needs of the host that runs it.

The interface must exist, the scripts must be executable, the password file
readable, both writable by no one but root or this user, and the control
group known; so must a carrier check's interface and a command check's
program. Checking a configuration meant for
another host (``--no-machine-checks``) skips all of these. Each check raises
ConfigError naming the field (of VirtualHostConfig or DaemonSettings) at fault.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import stat
from dataclasses import replace

from pycarp.config.files import FileProblem, read_regular_file
from pycarp.config.settings import group_id
from pycarp.core.checkconfig import CheckConfig
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError
from pycarp.platform import UnsupportedPlatformError, select_platform
from pycarp.platform.base import InterfaceError

__all__ = [
    "check_control_group",
    "check_health",
    "check_script",
    "check_vhost",
    "check_writers",
    "interface_exists",
    "ipv6_problem",
    "read_passfile",
    "virtual_mac_problem",
]

log = logging.getLogger(__name__)

PASSFILE_READ_LIMIT = 511  # ucarp reads the first line with fgets(buf, 512)


def interface_exists(name: str) -> bool:
    """Whether this machine has a network interface called ``name``."""
    try:
        socket.if_nametoindex(name)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False
    return True


def check_script(path: str, field: str) -> str:
    """The absolute path of an up/down script; ConfigError if it cannot run.

    Absolute because the daemon may change directory when it daemonizes.
    """
    full = os.path.abspath(path)
    if not os.path.exists(full):
        raise ConfigError(field, f"{path} does not exist")
    if os.path.isdir(full):
        raise ConfigError(field, f"{path} is a directory")
    if not os.access(full, os.X_OK):
        raise ConfigError(field, f"{path} is not executable")
    check_writers(os.stat(full), path, field)
    return full


def check_writers(info: os.stat_result, path: str, field: str) -> None:
    """ConfigError if anyone but root or this process's user can change the file.

    The daemon runs scripts and trusts the password with its own rights, so
    whoever may write them has those rights too (keepalived refuses such
    scripts the same way). Only the file is looked at, not its directories.
    """
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        reason = f"{path} is writable by group or others (mode {mode:04o}); chmod go-w it"
        raise ConfigError(field, reason)
    if info.st_uid not in (0, os.geteuid()):
        raise ConfigError(field, f"{path} is owned by uid {info.st_uid}, not root or this user")


def _check_password_file(info: os.stat_result, path: str) -> None:
    check_writers(info, path, "password")
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("%s: the password file is readable by group or others (mode %04o)", path, mode)


def read_passfile(path: str) -> bytes:
    """The password in ``path``: its first line without the newline, as ucarp reads it.

    Like ucarp, a carriage return before the newline is kept (it is part of
    the key a ucarp peer reading the same file would use), and the password
    stops at a NUL byte.
    """
    try:
        check = functools.partial(_check_password_file, path=path)
        line = read_regular_file(path, PASSFILE_READ_LIMIT, truncate=True, check=check)
    except FileProblem as exc:
        raise ConfigError("password", f"cannot read {path}: {exc.reason}") from None
    if not line:
        raise ConfigError("password", f"{path} is empty")
    return line.split(b"\n", 1)[0].split(b"\0", 1)[0]


def check_control_group(name: str, *, check_machine: bool = True) -> str:
    """``name``, a group of this machine (by name or number) to share the control socket with.

    ``check_machine=False`` checks only that it is not empty (the group is
    the other host's).
    """
    if not name:
        raise ConfigError("control_group", "the group name is empty")
    if check_machine:
        group_id(name)
    return name


def ipv6_problem(name: str) -> str | None:
    """Why IPv6 virtual addresses cannot be served on interface `name`, or None."""
    try:
        platform = select_platform()
        if not platform.supports_ipv6:
            return "IPv6 virtual addresses are not supported on this platform yet"
        if platform.interface_info(name).link_local is None:
            reason = f"{name} has no IPv6 link-local address (is IPv6 disabled on it?)"
            return f"{reason}: IPv6 addresses cannot be served"
    except (InterfaceError, UnsupportedPlatformError, OSError):
        return None  # another check says what is wrong with the interface
    return None


def virtual_mac_problem(name: str) -> str | None:
    """Why addresses cannot be put behind a virtual MAC on interface `name`, or None."""
    try:
        platform = select_platform()
        if not platform.supports_virtual_mac:
            return 'a virtual MAC is not supported on this platform; use mac = "interface"'
        if platform.interface_info(name).mac == bytes(6):
            return f"{name} has no Ethernet MAC: no macvlan can be made on it"
    except InterfaceError as exc:  # not Ethernet, say
        return f"{exc}: no macvlan can be made on it"
    except (UnsupportedPlatformError, OSError):
        return None  # another check says what is wrong with the interface
    return None


def check_vhost(vhost: VirtualHostConfig) -> tuple[VirtualHostConfig, list[ConfigError]]:
    """``vhost`` with its scripts made absolute, and every problem this machine has with it."""
    problems: list[ConfigError] = []
    if not interface_exists(vhost.interface):
        problems.append(ConfigError("interface", f"no such interface: {vhost.interface!r}"))
    else:
        if 6 in vhost.versions and (problem := ipv6_problem(vhost.interface)) is not None:
            problems.append(ConfigError("addresses", problem))
        virtual = vhost.mac == "virtual"
        if virtual and (problem := virtual_mac_problem(vhost.interface)) is not None:
            problems.append(ConfigError("mac", problem))

    def checked(field: str, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return check_script(path, field)
        except ConfigError as exc:
            problems.append(exc)
            return path

    upscript = checked("upscript", vhost.upscript)
    downscript = checked("downscript", vhost.downscript)
    return replace(vhost, upscript=upscript, downscript=downscript), problems


def check_health(check: CheckConfig) -> list[ConfigError]:
    """Every problem this machine has with a health check.

    A command run without a shell is held to the scripts' rules: the daemon
    runs it with its own rights. A shell command is /bin/sh's to find.
    """
    problems: list[ConfigError] = []
    if check.type == "carrier" and not interface_exists(check.interface):
        problems.append(ConfigError("interface", f"no such interface: {check.interface!r}"))
    if check.type == "command" and not check.shell:
        try:
            check_script(check.command[0], "command")
        except ConfigError as exc:
            problems.append(exc)
    return problems
