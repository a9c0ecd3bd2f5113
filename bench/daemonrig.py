"""How the benches start CARP daemons in lab hosts, one way for both.

ucarp runs as operators run it, with up and down scripts that plumb or
unplumb the VIP with `ip addr` and log "<up|down> <vip>"; pycarp runs as
`python -m pycarp` (or under bench/profiled.py's switchable profiler). Every
daemon is started with the lab's Host.spawn, its output into a log file.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pycarp.lab import Host
from pycarp.lab.nsexec import program

PROFILED = Path(__file__).resolve().parent / "profiled.py"

# $1 interface, $2 the VIP: plumb or unplumb it, then log "<event> <vip>".
UCARP_SCRIPT = (
    '#!/bin/sh\n{ip} addr {verb} "$2/32" dev "$1" 2>/dev/null\necho "{event} $2" >> "{log}"\n'
)


def which(name: str) -> str:
    return program(name)


def carp_options(host: Host, *, vhid: int, vip: str, password: str, advskew: int) -> list[str]:
    """ucarp's options for one virtual host on host's eth0 (pycarp takes them too)."""
    return [
        f"--interface={host.ifname}", f"--srcip={host.ip}", f"--vhid={vhid}",
        f"--pass={password}", f"--addr={vip}", f"--advskew={advskew}", "--facility=none",
    ]  # fmt: skip


def ucarp_scripts(directory: Path, events: Path) -> list[str]:
    """--upscript and --downscript of scripts written into directory, logging to events."""
    ip = which("ip")
    options = []
    for event, verb in (("up", "add"), ("down", "del")):
        path = directory / f"{event}.sh"
        path.write_text(UCARP_SCRIPT.format(ip=ip, verb=verb, event=event, log=events))
        path.chmod(0o755)
        options.append(f"--{event}script={path}")
    return options


def ucarp(options: Sequence[str]) -> list[str]:
    return [which("ucarp"), *options]


def pycarp(options: Sequence[str], profile: Path | None = None, signum: int = 0) -> list[str]:
    """`python -m pycarp`, or with a profile file pycarp under bench/profiled.py, which
    switches its profiler on and off at each signum."""
    run = ["-m", "pycarp"] if profile is None else [str(PROFILED), str(profile), str(signum)]
    return [sys.executable, *run, *options]


def spawn(host: Host, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """argv in host (Host.spawn: the lab stops it at the latest when it closes), stdout and
    stderr appended to log."""
    with open(log, "ab") as out:
        return host.spawn(*argv, stdout=out, stderr=subprocess.STDOUT)
