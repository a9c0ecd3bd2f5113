"""What the configuration hands to the runtime: the virtual hosts and process options."""

from __future__ import annotations

import grp
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from pycarp.core.checkconfig import CheckConfig
from pycarp.core.config import VirtualHostConfig
from pycarp.core.errors import ConfigError
from pycarp.platform.rundir import run_directory

SOCKET_SUFFIX = ".sock"
TOML_SOCKET_NAME = "pycarp.sock"


def default_control_socket(interface: str | None = None, vhid: int | None = None) -> str:
    """The control socket a daemon gets when none is given.

    ``<run dir>/<interface>-<vhid>.sock`` for a ucarp-style command line (one
    virtual host: one process per VIP, as with ucarp, needs one socket each),
    ``<run dir>/pycarp.sock`` for a TOML file (no interface and vhid given).
    """
    if interface is None or vhid is None:
        name = TOML_SOCKET_NAME
    else:
        name = f"{interface}-{vhid}{SOCKET_SUFFIX}"
    return os.path.join(run_directory(), name)


def group_id(group: str) -> int:
    """The gid of a group of this machine, given by name or number; ConfigError if none."""
    try:
        return grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
    except (KeyError, OverflowError):
        raise ConfigError("control_group", f"no such group: {group!r}") from None


DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9406


@dataclass(frozen=True)
class MetricsAddress:
    """Where the Prometheus endpoint listens: an IP address (not a name) and a TCP port."""

    host: str = DEFAULT_METRICS_HOST
    port: int = DEFAULT_METRICS_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DaemonSettings:
    vhosts: tuple[VirtualHostConfig, ...]
    facility: str = "daemon"  # syslog facility name, or "none" for stderr
    debug: bool = False
    daemonize: bool = False
    # None: no control socket
    control_socket: str | None = field(default_factory=default_control_socket)
    control_group: str | None = None  # group allowed to use the control socket (mode 0660)
    checks: tuple[CheckConfig, ...] = ()  # health checks (core/checkconfig.py)
    groups: tuple[str, ...] = ()  # demotion groups without a check: moved by `pycarp demote` only
    metrics: MetricsAddress | None = None  # the Prometheus endpoint; None: off
    # Realtime scheduling: "auto" when a virtual host advertises more than once a second.
    realtime: str = "auto"

    @property
    def wants_realtime(self) -> bool:
        if self.realtime == "auto":
            # sub-second intervals: CARP's advbase 0, VRRP's advert_int below 1 s
            return any(c.advert_int < 100 if c.vrrp else c.advbase == 0 for c in self.vhosts)
        return self.realtime == "on"


# What the daemon calls to reload: the same sources read again; ConfigError if bad.
SettingsLoader = Callable[[], DaemonSettings]
