"""Values checked the same way in ucarp options and TOML files.

Each check raises ConfigError naming the field of VirtualHostConfig or
DaemonSettings the value is for; the front-end that read it renames the
field to its own option or key.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from ipaddress import AddressValueError, IPv4Address, IPv6Address, ip_address

from pycarp.config import machine
from pycarp.config.files import has_nul
from pycarp.core.errors import ConfigError

__all__ = [
    "NO_CONTROL_SOCKET",
    "SYSLOG_FACILITIES",
    "check_control_socket",
    "check_deadratio",
    "check_facility",
    "check_password",
    "check_realtime",
    "file_directory",
    "nul_problem",
    "parse_address",
    "parse_ipv4",
    "process_checks",
    "resolve_path",
    "shown",
]

MAX_DEADRATIO = 2**32 - 1  # ucarp keeps it in an unsigned int
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the final NUL
MAX_SHOWN = 40  # characters of a bad value quoted in a message

# ucarp accepts what glibc's facilitynames[] lists, case-insensitively,
# minus "mark" (internal to syslogd, not a facility one can log to).
_NAMED_FACILITIES = ("auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail")
SYSLOG_FACILITIES = frozenset(
    (*_NAMED_FACILITIES, "news", "syslog", "user", "uucp", *(f"local{n}" for n in range(8)))
)
_FACILITY_ALIASES = {"security": "auth"}  # deprecated name that ucarp still takes
NO_SYSLOG = "none"
NO_CONTROL_SOCKET = "none"


def shown(text: str) -> str:
    """``text`` quoted for a message; a long one cut, with its length."""
    if len(text) <= MAX_SHOWN:
        return repr(text)
    return f"{text[:MAX_SHOWN]!r}... ({len(text)} characters)"


def nul_problem(text: str, *, secret: bool = False) -> str | None:
    """Why ``text`` cannot be used, if it holds a NUL byte (no C string can); else None."""
    if not has_nul(text):
        return None
    return "contains a NUL byte" + ("" if secret else f" ({shown(text)})")


def resolve_path(path: str, base_dir: str | None) -> str:
    """``path``, taken from ``base_dir`` if it is relative (None: left as it is)."""
    return path if base_dir is None else os.path.join(base_dir, path)


def file_directory(path: str) -> str:
    """The absolute directory of the file ``path``: where its relative paths start."""
    return os.path.dirname(os.path.abspath(path))


def check_facility(name: str) -> str:
    """The syslog facility called ``name`` (any case, as ucarp), or "none"."""
    lowered = name.lower()  # ucarp compares with strcasecmp
    lowered = _FACILITY_ALIASES.get(lowered, lowered)
    if lowered != NO_SYSLOG and lowered not in SYSLOG_FACILITIES:
        known = ", ".join(sorted(SYSLOG_FACILITIES))
        raise ConfigError("facility", f"{name!r} is not a syslog facility ({known}, or none)")
    return lowered


REALTIME = ("auto", "on", "off")


def check_realtime(text: str) -> str:
    """``text`` if it is a realtime mode: auto (for sub-second advertisements), on or off."""
    if text not in REALTIME:
        raise ConfigError("realtime", f"{shown(text)} is not one of {', '.join(REALTIME)}")
    return text


def check_deadratio(ratio: int) -> int:
    """``ratio`` if ucarp's unsigned int holds it; below 1 is VirtualHostConfig's error."""
    if ratio > MAX_DEADRATIO:
        raise ConfigError("deadratio", f"{ratio} is above {MAX_DEADRATIO}")
    return ratio


def parse_ipv4(text: str, field: str) -> IPv4Address:
    """A dotted-quad IPv4 address; 0.0.0.0 is refused, ucarp takes it as "not given"."""
    try:
        address = IPv4Address(text)
    except AddressValueError:
        raise ConfigError(field, f"{shown(text)} is not an IPv4 address") from None
    if address.is_unspecified:
        raise ConfigError(field, f"{address} cannot be used")
    return address


def parse_address(text: str, field: str, *, scoped: bool = False) -> IPv4Address | IPv6Address:
    """An IPv4 or IPv6 address; a scope (fe80::2%eth0) only if `scoped`.

    The unspecified addresses (0.0.0.0, ::) are refused; what else an address
    may be (a virtual one, a peer) is VirtualHostConfig's to check.
    """
    if "%" in text and not scoped:
        raise ConfigError(field, f"{shown(text)}: a scope (%...) is only for peers")
    try:
        address = IPv6Address(text) if "%" in text else ip_address(text)
    except ValueError:
        raise ConfigError(field, f"{shown(text)} is not an IPv4 or IPv6 address") from None
    if address.is_unspecified:
        raise ConfigError(field, f"{address} cannot be used")
    return address


def check_password(password: bytes) -> bytes:
    """``password``, if it is not empty (ucarp would run without authentication)."""
    if not password:
        raise ConfigError("password", "the password is empty")
    return password


def check_control_socket(text: str, *, base_dir: str | None = None) -> str | None:
    """The control socket's absolute path, or None for "none" (no socket).

    Absolute because the daemon changes directory when it daemonizes; a
    relative path is taken from ``base_dir`` (default: the current directory).
    """
    if text.lower() == NO_CONTROL_SOCKET:
        return None
    if not text:
        raise ConfigError("control_socket", "the path is empty (none disables the control socket)")
    path = os.path.abspath(resolve_path(text, base_dir))
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        reason = f"{path} is {size} bytes; a socket path has at most {MAX_SOCKET_PATH}"
        raise ConfigError("control_socket", reason)
    return path


def process_checks(
    *, base_dir: str | None, check_machine: bool
) -> dict[str, Callable[[str], object]]:
    """The check of each process option with a value, by DaemonSettings field, in order."""
    return {
        "facility": check_facility,
        "realtime": check_realtime,
        "control_socket": lambda text: check_control_socket(text, base_dir=base_dir),
        "control_group": lambda name: machine.check_control_group(
            name, check_machine=check_machine
        ),
    }


def parse_centiseconds(value: object, field: str) -> int:
    """A VRRP interval in seconds (1, 0.1, 0.03) as centiseconds: a whole number of them."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"{value!r} is not a number of seconds")
    if not math.isfinite(value * 100):  # TOML has inf and nan; 1e307 * 100 is inf
        raise ConfigError(field, f"{value} is not a number of seconds")
    centis = round(value * 100)
    if abs(centis - value * 100) > 1e-6:
        raise ConfigError(field, f"{value} is not a whole number of centiseconds (0.01 s steps)")
    return centis


def parse_number(text: str, field: str) -> float:
    """A number of seconds written on the command line: "1", "0.1"."""
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(field, f"{shown(text)} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(field, f"{shown(text)} is not a number")
    return int(number) if number.is_integer() else number
