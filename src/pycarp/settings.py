"""What the CLI hands to the runtime: the virtual hosts and process options."""

from __future__ import annotations

from dataclasses import dataclass

from pycarp.core.config import VirtualHostConfig

DEFAULT_CONTROL_SOCKET = "/run/pycarp/pycarp.sock"


@dataclass(frozen=True)
class DaemonSettings:
    vhosts: tuple[VirtualHostConfig, ...]
    facility: str = "daemon"  # syslog facility name, or "none" for stderr
    debug: bool = False
    daemonize: bool = False
    control_socket: str | None = DEFAULT_CONTROL_SOCKET  # None: no control socket
