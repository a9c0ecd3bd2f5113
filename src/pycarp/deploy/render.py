"""``pycarp render``: service definitions and up/down scripts for deployment.

``render smf`` prints an SMF manifest (illumos, SmartOS) with one instance
per config file, ``render systemd`` a systemd unit (``--template``: the
template unit pycarp@.service, one instance per config file),
``render scripts`` ucarp-style up/down scripts. What they
print is built here from small string templates, so that a test can check
every directive; nothing is read from the machine except the path of the
pycarp program (``--pycarp`` overrides it, for rendering for another host).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from xml.sax.saxutils import quoteattr

from pycarp.config.settings import SOCKET_SUFFIX, TOML_SOCKET_NAME
from pycarp.platform.rundir import ILLUMOS_RUN_DIR, LINUX_RUN_DIR

__all__ = [
    "DEFAULT_FMRI",
    "DEFAULT_SMF_CONFIG",
    "DEFAULT_SYSTEMD_CONFIG",
    "DEFAULT_TEMPLATE_CONFIG",
    "SCRIPT_NAMES",
    "SMF_PRIVILEGES",
    "SmfInstance",
    "main",
    "pycarp_path",
    "render_scripts",
    "render_smf",
    "render_systemd",
]

PROG = "pycarp render"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_FMRI = "network/pycarp"
DEFAULT_SMF_CONFIG = "/opt/local/etc/pycarp/pycarp.toml"
DEFAULT_SMF_USER = "root"
# Raw sockets (CARP is IP protocol 112, gratuitous ARP) and plumbing addresses:
# everything else root could do is dropped.
SMF_PRIVILEGES = "basic,net_rawaccess,sys_ip_config"
SMF_SOCKET_DIR = ILLUMOS_RUN_DIR  # where `pycarp status` looks for every instance
# Graceful hand-over: the peer needs up to the master-down interval (~3 s)
# plus the down script, which pycarp waits 30 s for; leave room beyond that.
STOP_TIMEOUT = 60

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

SCRIPT_NAMES = ("vip-up.sh", "vip-down.sh")
SCRIPT_MODE = 0o755

_FMRI = re.compile(r"[A-Za-z][A-Za-z0-9_.,-]*(/[A-Za-z][A-Za-z0-9_.,-]*)*")
_INSTANCE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")


class RenderError(Exception):
    """A bad argument; the message is the whole error line."""


# --- the program's path ------------------------------------------------------


def pycarp_path() -> str:
    """The absolute path of the ``pycarp`` program that is running, or on PATH.

    Service managers run methods with a minimal PATH, so the unit and the
    manifest name the program by its absolute path.
    """
    beside = Path(sys.executable).parent / "pycarp"  # a virtualenv's bin/
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("pycarp")
    return os.path.abspath(found) if found else "/usr/local/bin/pycarp"


# --- SMF -----------------------------------------------------------------------


@dataclass(frozen=True)
class SmfInstance:
    name: str
    config: str  # absolute path of the config file

    @property
    def control_socket(self) -> str:
        return f"{SMF_SOCKET_DIR}/{self.name}{SOCKET_SUFFIX}"


def render_smf(
    instances: Sequence[SmfInstance],
    *,
    fmri: str = DEFAULT_FMRI,
    program: str,
    user: str = DEFAULT_SMF_USER,
) -> str:
    """An SMF manifest for pycarp with one (disabled) instance per config file."""
    bundle = fmri.rsplit("/", 1)[-1]
    start = f"{program} --config %{{config/file}} --control-socket %{{config/control_socket}}"
    reload = f"{program} reload --control-socket %{{config/control_socket}}"
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE service_bundle SYSTEM "/usr/share/lib/xml/dtd/service_bundle.dtd.1">',
        "<!-- Rendered by 'pycarp render smf'. Import: svccfg import FILE -->",
        f"<service_bundle type={quoteattr('manifest')} name={quoteattr(bundle)}>",
        f"  <service name={quoteattr(fmri)} type='service' version='1'>",
        "    <dependency name='network' grouping='require_all' restart_on='error' type='service'>",
        "      <service_fmri value='svc:/milestone/network:default'/>",
        "    </dependency>",
        "    <dependency name='filesystem' grouping='require_all' restart_on='error'"
        " type='service'>",
        "      <service_fmri value='svc:/system/filesystem/local:default'/>",
        "    </dependency>",
        "    <method_context working_directory='/'>",
        "      <!-- Not full root: only the privileges CARP and plumbing need."
        " The inheritable set carries them to the up/down scripts (ifconfig). -->",
        f"      <method_credential user={quoteattr(user)} group=':default'"
        f" privileges={quoteattr(SMF_PRIVILEGES)}/>",
        "    </method_context>",
        "    <!-- pycarp stays in the foreground (no daemonize): startd/duration is child,",
        "         so SMF tracks the process itself and restarts it if it exits. -->",
        f"    <exec_method type='method' name='start' exec={quoteattr(start)}"
        " timeout_seconds='60'/>",
        "    <!-- :kill sends SIGTERM: pycarp hands the VIP over (the master-down",
        "         interval, ~3 s, plus the down script) before exiting. -->",
        f"    <exec_method type='method' name='stop' exec=':kill'"
        f" timeout_seconds='{STOP_TIMEOUT}'/>",
        f"    <exec_method type='method' name='refresh' exec={quoteattr(reload)}"
        " timeout_seconds='60'/>",
        "    <property_group name='startd' type='framework'>",
        "      <propval name='duration' type='astring' value='child'/>",
        "    </property_group>",
    ]
    lines += [
        "    <!-- One instance per config file, each with its own control socket in",
        f"         {SMF_SOCKET_DIR}, where `pycarp status` finds them all. -->",
    ]
    for instance in instances:
        lines += [
            f"    <instance name={quoteattr(instance.name)} enabled='false'>",
            "      <property_group name='config' type='application'>",
            f"        <propval name='file' type='astring' value={quoteattr(instance.config)}/>",
            "        <propval name='control_socket' type='astring'"
            f" value={quoteattr(instance.control_socket)}/>",
            "      </property_group>",
            "    </instance>",
        ]
    lines += [
        "    <stability value='Evolving'/>",
        "    <template>",
        "      <common_name>",
        "        <loctext xml:lang='C'>pycarp CARP virtual IP daemon</loctext>",
        "      </common_name>",
        "      <description>",
        "        <loctext xml:lang='C'>Shares a virtual IP address between hosts with CARP"
        " (ucarp-compatible); one instance per configuration file.</loctext>",
        "      </description>",
        "    </template>",
        "  </service>",
        "</service_bundle>",
    ]
    return "\n".join(lines) + "\n"


def _smf_instances(specs: Sequence[str], config: str) -> list[SmfInstance]:
    """``--instance NAME[=FILE]`` (FILE defaults to --config) as SmfInstances."""
    instances: list[SmfInstance] = []
    for spec in specs or ["default"]:
        name, has_file, file = spec.partition("=")
        if not _INSTANCE.fullmatch(name):
            raise RenderError(f"--instance: {name!r} is not an SMF instance name (letters first)")
        if has_file and not file:
            raise RenderError(f"--instance: {spec!r} has an empty file name")
        instances.append(SmfInstance(name, os.path.abspath(file or config)))
    _unique(instances, "name", "instance names")
    _unique(instances, "config", "config files (two daemons would claim the same vhids)")
    return instances


def _unique(instances: Sequence[SmfInstance], field: str, what: str) -> None:
    seen: set[str] = set()
    for instance in instances:
        value = getattr(instance, field)
        if value in seen:
            raise RenderError(f"--instance: {value!r} is used twice; give distinct {what}")
        seen.add(value)


# --- systemd -------------------------------------------------------------------


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


# --- up/down scripts -----------------------------------------------------------

_USAGE_CHECK = """\
if [ $# -lt 2 ]; then
    echo "usage: $0 <interface> <vip> [xparam]" >&2
    exit 2
fi
IF=$1
VIP=$2
"""

# The logical unit of $IF holding $VIP, from `ifconfig -a4` (a header line per
# unit, then its "inet ADDR netmask ..." line).
_ILLUMOS_FIND = """\
unit_of_vip() {
    ifconfig -a4 | awk -v ifn="$IF" -v ip="$VIP" '
        /^[^ \\t]/ { unit = $1; sub(/:$/, "", unit) }
        $1 == "inet" && $2 == ip && (unit == ifn || index(unit, ifn ":") == 1) { print unit; exit }'
}
"""

_SCRIPTS: dict[str, dict[str, str]] = {
    "illumos": {
        "vip-up.sh": f"""\
#!/bin/sh
# pycarp/ucarp up script (illumos): plumb the VIP on a new logical interface of
# <interface>. Arguments: <interface> <vip> [xparam]. Does nothing if it is there.
set -eu
{_USAGE_CHECK}{_ILLUMOS_FIND}
if [ -n "$(unit_of_vip)" ]; then
    exit 0
fi
# addif picks a free unit (net0:1, net0:2...) rather than assuming :1 is free.
ifconfig "$IF" addif "$VIP"/32 up
""",
        "vip-down.sh": f"""\
#!/bin/sh
# pycarp/ucarp down script (illumos): remove the logical interface of
# <interface> holding the VIP. Arguments: <interface> <vip> [xparam].
# Does nothing if the VIP is not plumbed.
set -eu
{_USAGE_CHECK}{_ILLUMOS_FIND}
unit=$(unit_of_vip)
if [ -z "$unit" ]; then
    exit 0
fi
case $unit in
    *:*) ;;
    *) echo "$0: $VIP is the address of $unit itself; not removing it" >&2; exit 1 ;;
esac
ifconfig "$unit" down
ifconfig "$unit" unplumb
""",
    },
    "linux": {
        "vip-up.sh": f"""\
#!/bin/sh
# pycarp/ucarp up script (Linux): add the VIP to <interface>.
# Arguments: <interface> <vip> [xparam]. "replace" succeeds if it is there.
set -eu
{_USAGE_CHECK}
ip -4 addr replace "$VIP"/32 dev "$IF"
""",
        "vip-down.sh": f"""\
#!/bin/sh
# pycarp/ucarp down script (Linux): remove the VIP from <interface>.
# Arguments: <interface> <vip> [xparam]. Does nothing if it is not there.
set -eu
{_USAGE_CHECK}
if [ -n "$(ip -4 -o addr show dev "$IF" to "$VIP"/32)" ]; then
    ip -4 addr del "$VIP"/32 dev "$IF"
fi
""",
    },
}


def render_scripts(os_name: str) -> dict[str, str]:
    """The up and down scripts for ``os_name`` ("illumos" or "linux"), by file name."""
    try:
        return dict(_SCRIPTS[os_name])
    except KeyError:
        raise RenderError(f"--os: {os_name!r} is not one of {', '.join(_SCRIPTS)}") from None


def write_scripts(scripts: dict[str, str], directory: str, *, force: bool = False) -> list[str]:
    """Write ``scripts`` into ``directory`` with mode 0755; the paths written."""
    if not os.path.isdir(directory):
        raise RenderError(f"--dir: {directory} is not a directory")
    paths = [os.path.join(directory, name) for name in scripts]
    existing = [path for path in paths if os.path.lexists(path)]
    if existing and not force:
        raise RenderError(f"{existing[0]} already exists (--force replaces it)")
    for path, text in zip(paths, scripts.values(), strict=True):
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(tmp, SCRIPT_MODE)  # explicit: open()'s mode is cut by the umask
        os.replace(tmp, path)
    return paths


# --- command line ----------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, like pycarp's other usage errors
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Print an SMF manifest, a systemd unit, or up/down scripts for pycarp.",
        allow_abbrev=False,
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{smf,systemd,scripts}")
    smf = kinds.add_parser(
        "smf", help="SMF manifest (illumos, SmartOS)", allow_abbrev=False, prog=f"{PROG} smf"
    )
    smf.add_argument(
        "--config",
        default=DEFAULT_SMF_CONFIG,
        metavar="FILE",
        help=f"config file of the instances (default {DEFAULT_SMF_CONFIG})",
    )
    smf.add_argument(
        "--fmri",
        default=DEFAULT_FMRI,
        metavar="NAME",
        help=f"service name (default {DEFAULT_FMRI})",
    )
    smf.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="NAME[=FILE]",
        help="an instance, with its own config file (default FILE: --config); "
        "repeat for several (default: one instance, 'default')",
    )
    smf.add_argument(
        "--user",
        default=DEFAULT_SMF_USER,
        metavar="NAME",
        help=f"user of the methods (default {DEFAULT_SMF_USER}, limited to {SMF_PRIVILEGES})",
    )
    smf.add_argument("--pycarp", metavar="PATH", help="path of pycarp on the target host")
    systemd = kinds.add_parser(
        "systemd", help="systemd unit", allow_abbrev=False, prog=f"{PROG} systemd"
    )
    systemd.add_argument(
        "--config",
        metavar="FILE",
        help=f"config file (default {DEFAULT_SYSTEMD_CONFIG}; with --template "
        f"{DEFAULT_TEMPLATE_CONFIG}, where %%i is the instance name)",
    )
    systemd.add_argument(
        "--template",
        action="store_true",
        help="the template unit pycarp@.service: one instance per config file",
    )
    systemd.add_argument(
        "--user",
        default=DEFAULT_SYSTEMD_USER,
        metavar="NAME",
        help=f"user and group to run as (default {DEFAULT_SYSTEMD_USER})",
    )
    systemd.add_argument("--pycarp", metavar="PATH", help="path of pycarp on the target host")
    scripts = kinds.add_parser(
        "scripts", help="up/down scripts", allow_abbrev=False, prog=f"{PROG} scripts"
    )
    scripts.add_argument("--os", required=True, choices=sorted(_SCRIPTS), dest="os_name")
    scripts.add_argument(
        "--dir",
        metavar="DIR",
        help=f"write {' and '.join(SCRIPT_NAMES)} there (mode 0755) instead of printing them",
    )
    scripts.add_argument("--force", action="store_true", help="with --dir: replace existing files")
    return parser


def _program(args: argparse.Namespace) -> str:
    program: str = args.pycarp or pycarp_path()
    if not os.path.isabs(program) or any(c.isspace() for c in program):
        raise RenderError(f"--pycarp: {program!r} must be an absolute path without spaces")
    return program


def _user(name: str) -> str:
    if not _USER.fullmatch(name):
        raise RenderError(f"--user: {name!r} is not a user name")
    return name


def _smf(args: argparse.Namespace) -> str:
    fmri = args.fmri.removeprefix("svc:/")
    if not _FMRI.fullmatch(fmri):
        raise RenderError(f"--fmri: {args.fmri!r} is not a service name such as {DEFAULT_FMRI}")
    instances = _smf_instances(args.instance, args.config)
    return render_smf(instances, fmri=fmri, program=_program(args), user=_user(args.user))


def _systemd(args: argparse.Namespace) -> str:
    default = DEFAULT_TEMPLATE_CONFIG if args.template else DEFAULT_SYSTEMD_CONFIG
    config = os.path.abspath(args.config or default)  # systemd wants absolute paths
    if args.template and "%i" not in config:
        raise RenderError(
            f"--config: {config!r} has no %i: with --template each instance needs its own "
            f"file, such as {DEFAULT_TEMPLATE_CONFIG}"
        )
    return render_systemd(
        config=config, program=_program(args), user=_user(args.user), template=args.template
    )


def _scripts(args: argparse.Namespace) -> str:
    scripts = render_scripts(args.os_name)
    if args.dir is None:
        return "".join(f"# ===== {name} =====\n{text}" for name, text in scripts.items())
    paths = write_scripts(scripts, args.dir, force=args.force)
    print("\n".join(f"wrote {path}" for path in paths), file=sys.stderr)
    return ""


_ACTIONS: dict[str, Callable[[argparse.Namespace], str]] = {
    "smf": _smf,
    "systemd": _systemd,
    "scripts": _scripts,
}


def main(argv: Sequence[str]) -> int:
    """``pycarp render smf|systemd|scripts [options]``."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        sys.stdout.write(_ACTIONS[args.kind](args))
    except RenderError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{PROG}: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
