"""What the CLI hands to the runtime: the virtual hosts and process options."""

from __future__ import annotations

from dataclasses import dataclass

from pycarp.core.config import VirtualHostConfig


@dataclass(frozen=True)
class DaemonSettings:
    vhosts: tuple[VirtualHostConfig, ...]
    facility: str = "daemon"  # syslog facility name, or "none" for stderr
    debug: bool = False
    daemonize: bool = False
