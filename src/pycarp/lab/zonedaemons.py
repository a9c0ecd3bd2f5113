"""pycarp (or ucarp-compatible arguments for it) started and signalled in a zone.

A daemon runs detached (a session of its own) with the zone's hostname, in a
UTS namespace of its own; its output goes to the zone's log. It is known by
pid and start time (zone.daemon), so another process can signal it later
without hitting a process that merely got its old pid.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pycarp.lab.errors import LabError
from pycarp.lab.nsexec import spawn_in
from pycarp.lab.processes import signal_process, start_time
from pycarp.lab.zonestate import Zone

__all__ = [
    "START_WAIT",
    "default_args",
    "last_line",
    "signal_daemon",
    "spawn_daemon",
    "wait_started",
    "with_control_socket",
]

START_WAIT = 5.0  # seconds wait_started waits for the daemon's control socket
# Runs as `sh -c SCRIPT HOSTNAME ARGV...`: set the (private) hostname, then become argv.
_SET_HOSTNAME = 'hostname "$0" && exec "$@"'


def default_args(rundir: Path, alias: str) -> list[str]:
    """--config=<rundir>/<alias>.toml (or .cfg); LabError if neither exists."""
    for ext in ("toml", "cfg"):
        path = rundir / f"{alias}.{ext}"
        if path.exists():
            return [f"--config={path}"]
    raise LabError(
        f"{alias}: no pycarp arguments and no {rundir}/{alias}.toml or .cfg"
        f" (pycarp lab run {alias} -- --interface=net0 ...)"
    )


def with_control_socket(argv: Sequence[str], control_socket: str) -> list[str]:
    """argv, with --control-socket=control_socket added unless argv sets one."""
    argv = list(argv)
    if not any(a == "--control-socket" or a.startswith("--control-socket=") for a in argv):
        argv.append(f"--control-socket={control_socket}")
    return argv


def spawn_daemon(zone: Zone, argv: list[str]) -> subprocess.Popen[bytes]:
    """Start `python -m pycarp argv` in the zone; zone.daemon records it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(zone.control_socket)  # stale socket of a crashed daemon
    log = open(zone.log_file, "ab")  # noqa: SIM115 - handed to the child
    try:
        log.write(f"--- {time.strftime('%F %T')} pycarp {' '.join(argv)}\n".encode())
        log.flush()
        cmd = ["unshare", "--uts", "--", "sh", "-c", _SET_HOSTNAME, zone.hostname]
        cmd += [sys.executable, "-m", "pycarp", *argv]
        # Detached (own session): it outlives `pycarp lab run`.
        proc = spawn_in(zone.netns, cmd, stdout=log, stderr=subprocess.STDOUT, cwd="/")
    finally:
        log.close()
    zone.daemon = {"pid": proc.pid, "start": start_time(proc.pid), "args": argv}
    return proc


def last_line(path: str) -> str:
    """The last line of a log, for an error message."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(no output)"


def _uses_socket(zone: Zone) -> bool:
    args = zone.daemon["args"] if zone.daemon else []
    return f"--control-socket={zone.control_socket}" in args


def wait_started(zone: Zone, pid: int, timeout: float = START_WAIT) -> None:
    """Wait (bounded) for the daemon's control socket; LabError if it exits or never opens it.

    A daemon given a control socket of its own is not waited for beyond timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if zone.daemon_pid() is None:
            raise LabError(f"{zone.alias}: pycarp exited at once: {last_line(zone.log_file)}")
        if os.path.exists(zone.control_socket):
            return
        time.sleep(0.05)
    if not _uses_socket(zone):
        return
    raise LabError(f"{zone.alias}: pycarp (pid {pid}) did not open {zone.control_socket}")


def signal_daemon(zone: Zone, sig: int) -> tuple[int, int | None] | None:
    """sig to the zone's daemon if it runs; (pid, start) of the one signalled, else None."""
    pid = zone.daemon_pid()
    if pid is None or zone.daemon is None:
        return None
    signal_process(pid, zone.daemon["start"], sig)
    return pid, zone.daemon["start"]
