"""What the pycarp command prints on request: --help, --version, check-config's summary."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from pycarp import __version__
from pycarp.config.getopt import Option
from pycarp.config.load import Loaded
from pycarp.config.settings import DaemonSettings
from pycarp.config.ucarp import OPTIONS
from pycarp.config.values import NO_CONTROL_SOCKET
from pycarp.core.checkconfig import CheckConfig
from pycarp.core.config import VirtualHostConfig

__all__ = ["PROG", "describe", "describe_check", "summary", "usage", "version"]

PROG = "pycarp"


def version() -> str:
    return f"{PROG} {__version__}\n"


def usage(subcommands: Iterable[str]) -> str:
    """The --help text: every option, long and short, in ucarp's layout."""
    lines = [
        f"{PROG} {__version__} - a ucarp-compatible CARP daemon",
        "",
        f"usage: {PROG} [options]",
        f"       {PROG} <subcommand> [arguments]   ({', '.join(sorted(subcommands))})",
        "",
        *(_usage_line(option) for option in OPTIONS),
        "",
        "Required: --interface, --srcip, --vhid, --addr, and --pass or --passfile.",
        "Long options may be abbreviated. A value goes as --vhid=5, --vhid 5, -v 5",
        "or -v5; numbers may be hex (0x1f) or, as in ucarp, octal (017). With",
        "--config, the file's options come first and the command line overrides them.",
        "A --config file in TOML (*.toml, or not starting with an option) describes",
        "several virtual hosts; only --facility, --debug, --daemonize, --control-socket",
        "and --control-group may go with it. See docs/config.md.",
        f"{PROG} check-config FILE [options] is {PROG} --check-config FILE [options].",
        f"{PROG} status, stepdown [VHID], promote [VHID], demote GROUP [+N|-N], reload and",
        "events talk to the running daemons (see docs/status.md); each one takes --help.",
        "",
        "Sample usage:",
        "",
        f"{PROG} --interface=eth0 --srcip=198.51.100.201 --vhid=1 --pass=mypassword \\",
        "       --addr=198.51.100.200 \\",
        "       --upscript=/etc/vip-up.sh --downscript=/etc/vip-down.sh",
    ]
    return "\n".join(lines) + "\n"


def _usage_line(option: Option) -> str:
    value = f"=<{option.metavar}>" if option.metavar else ""
    longs = ", ".join(f"--{name}{value}" for name in option.names)
    if option.short is None:
        return f"{longs}: {option.help}"
    short = f" <{option.metavar}>" if option.metavar else ""
    return f"{longs} (-{option.short}{short}): {option.help}"


def summary(loaded: Loaded, *, check_machine: bool) -> str:
    """What --check-config prints for a good configuration."""
    settings = loaded.settings
    head = f"{', '.join(loaded.sources)}: OK, {_count(len(settings.vhosts), 'virtual host')}"
    if settings.checks:
        head += f", {_count(len(settings.checks), 'check')}"
    if not check_machine:
        head += " (interfaces, scripts and password files not checked)"
    lines = [head, _describe_process(loaded), *map(describe, settings.vhosts)]
    lines += [*map(describe_check, settings.checks), *_describe_groups(settings)]
    return "\n".join(lines) + "\n"


def _count(count: int, what: str) -> str:
    return f"{count} {what}{'s' if count != 1 else ''}"


def _describe_process(loaded: Loaded) -> str:
    settings = loaded.settings
    flags = [name for name in ("debug", "daemonize") if getattr(settings, name)]
    socket = settings.control_socket or NO_CONTROL_SOCKET
    if settings.control_socket and settings.control_group:
        socket += f" (mode 0660, group {settings.control_group})"
    metrics = [f"metrics on {settings.metrics}"] if settings.metrics else []
    parts = [f"process: facility {settings.facility}", f"control socket {socket}", *metrics]
    return "; ".join([*parts, *flags])


def describe(vhost: VirtualHostConfig) -> str:
    """One line about a virtual host, as --check-config prints it."""
    networks = " ".join(f"{address}/{prefix}" for address, prefix in vhost.networks)
    timing = f"advbase {vhost.advbase} advskew {vhost.advskew}"
    flags = [name for name in ("preempt", "neutral", "nomcast") if getattr(vhost, name)]
    actions = ["pycarp plumbs the addresses"] if vhost.plumbs else []
    actions += [
        f"{key} {path}" for key in ("upscript", "downscript") if (path := getattr(vhost, key))
    ]
    line = (
        f"{vhost.interface} vhid {vhost.vhid}: {networks}; {' '.join([timing, *flags])}; "
        f"{', '.join(actions) or 'no plumbing and no scripts'}"
    )
    if vhost.track:
        how = f"penalty {vhost.penalty}" if vhost.demotion == "penalty" else "stepdown"
        line += f"; tracks {', '.join(vhost.track)} ({how})"
    if vhost.peers:
        peers = ", ".join(str(p) for p in vhost.peers)
        line += f"; unicast to {peers} (min TTL {vhost.min_ttl})"
    return line


def describe_check(check: CheckConfig) -> str:
    """One line about a health check, as --check-config prints it."""
    if check.type == "command":
        argv = ["/bin/sh", "-c", *check.command] if check.shell else list(check.command)
        what = shlex.join(argv)
    elif check.type == "tcp":
        what = f"[{check.host}]:{check.port}" if ":" in check.host else f"{check.host}:{check.port}"
    elif check.type == "http":
        what = f"{check.url} expect {check.expect}"
    else:
        what = check.interface
    counts = f"timeout {check.timeout:g}s, rise {check.rise}, fall {check.fall}"
    return (
        f"check {check.name}: {check.type} {what} every {check.interval:g}s ({counts}) "
        f"-> group {check.demotes}"
    )


def _describe_groups(settings: DaemonSettings) -> list[str]:
    """A line for each demotion group without a check: only `pycarp demote` moves it."""
    return [f"group {group}: no check (moved by pycarp demote only)" for group in settings.groups]
