"""``pycarp render systemd``: the unit pycarp.service, or the template pycarp@.service."""

from __future__ import annotations

import os
import re

from pycarp.config.settings import SOCKET_SUFFIX, TOML_SOCKET_NAME
from pycarp.deploy.common import STOP_TIMEOUT, RenderError
from pycarp.platform.rundir import LINUX_RUN_DIR

__all__ = [
    "DEFAULT_SYSTEMD_CONFIG",
    "DEFAULT_SYSTEMD_USER",
    "DEFAULT_TEMPLATE_CONFIG",
    "render_systemd",
    "unit_config",
]

DEFAULT_SYSTEMD_CONFIG = "/etc/pycarp/pycarp.toml"
DEFAULT_SYSTEMD_USER = "pycarp"
# In RuntimeDirectory=pycarp, where `pycarp status` looks for every daemon.
SYSTEMD_SOCKET = f"{LINUX_RUN_DIR}/{TOML_SOCKET_NAME}"
# A template's instances: the socket named after the instance, given on both
# ExecStart and ExecReload, so `systemctl reload pycarp@NAME` reaches that one.
TEMPLATE_SOCKET = f"{LINUX_RUN_DIR}/%i{SOCKET_SUFFIX}"
# .conf, not .toml: --config reads either form from it (by content), so one
# template serves TOML files and ucarp options files alike.
DEFAULT_TEMPLATE_CONFIG = "/etc/pycarp/%i.conf"
WATCHDOG_SEC = 10


def render_systemd(
    *, config: str, program: str, user: str = DEFAULT_SYSTEMD_USER, template: bool = False
) -> str:
    """A systemd unit running pycarp as ``user`` with only CAP_NET_RAW and CAP_NET_ADMIN.

    With ``template``, the template unit pycarp@.service: ``config`` holds
    ``%i``, the instance name, and so does the control socket.
    """
    caps = "CAP_NET_RAW CAP_NET_ADMIN"
    if template:
        socket, name = TEMPLATE_SOCKET, "pycarp@.service"
        install = [
            f"# Install: /etc/systemd/system/{name}, then systemctl daemon-reload and",
            f"# systemctl enable --now pycarp@NAME for each {config.replace('%i', 'NAME')}.",
        ]
    else:
        socket, name = SYSTEMD_SOCKET, "pycarp.service"
        config = config.replace("%", "%%")  # a literal % would be a systemd specifier
        install = [f"# Install: /etc/systemd/system/{name}, then systemctl daemon-reload."]
    lines = [
        f"# Rendered by 'pycarp render systemd{' --template' if template else ''}'.",
        *install,
        "[Unit]",
        "Description=pycarp CARP virtual IP daemon" + (" (%i)" if template else ""),
        "Documentation=man:ucarp(8)",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "# pycarp says READY=1 once its sockets are open, and pings the watchdog.",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={program} --config {_quote(config)} --control-socket {socket}",
        f"ExecReload={program} reload --control-socket {socket}",
        "# SIGTERM is a graceful hand-over: the peer takes the VIP within the",
        "# master-down interval (~3 s); the down script may take up to 30 s more.",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={STOP_TIMEOUT}s",
        f"WatchdogSec={WATCHDOG_SEC}s",
        "Restart=on-failure",
        "RestartSec=2s",
        f"User={user}",
        f"Group={user}",
        "# Raw sockets for CARP and ARP, address plumbing; nothing else of root's.",
        f"AmbientCapabilities={caps}",
        f"CapabilityBoundingSet={caps}",
        "NoNewPrivileges=yes",
        "# The control sockets' directory, /run/pycarp, owned by the user above. Kept",
        "# when the unit stops: other pycarp units have their sockets there too. Open",
        "# to all: each socket's own mode (0600, or 0660 with control_group) protects it.",
        "RuntimeDirectory=pycarp",
        "RuntimeDirectoryMode=0755",
        "RuntimeDirectoryPreserve=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
        "UMask=0077",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def _quote(path: str) -> str:
    """A path as one word of a systemd command line."""
    if re.fullmatch(r"[A-Za-z0-9_./:+@=%-]+", path):
        return path
    escaped = path.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def unit_config(given: str | None, *, template: bool) -> str:
    """``--config`` as an absolute path (systemd wants one); a template's must hold %i."""
    default = DEFAULT_TEMPLATE_CONFIG if template else DEFAULT_SYSTEMD_CONFIG
    config = os.path.abspath(given or default)
    if template and "%i" not in config:
        raise RenderError(
            f"--config: {config!r} has no %i: with --template each instance needs its own "
            f"file, such as {DEFAULT_TEMPLATE_CONFIG}"
        )
    return config
