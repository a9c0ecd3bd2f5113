"""Before a daemon starts: is another pycarp already doing its job?

Two pycarp processes must not run the same vhid on the same interface in one
network namespace (each would plumb the VIP), nor share a control socket.
Every daemon with a default socket has it in the run directory, so asking
each socket there for its status finds them, whichever way they were
configured (a TOML file, or a ucarp-style command line).

Run in the foreground, before --daemonize, so that the refusal reaches the
terminal; every socket is asked at once, so this takes at most about
ANSWER_TIMEOUT seconds.
"""

from __future__ import annotations

import logging

from pycarp.client.instances import Instance, socket_paths, survey
from pycarp.config.settings import DaemonSettings
from pycarp.platform.rundir import run_directory

log = logging.getLogger("pycarp")

__all__ = ["ANSWER_TIMEOUT", "start_conflict"]

ANSWER_TIMEOUT = 1.0  # seconds a live daemon has to answer its status


def start_conflict(settings: DaemonSettings, directory: str | None = None) -> str | None:
    """Why ``settings`` must not start here (one line), or None when nothing is in the way.

    ``directory`` defaults to this namespace's run directory.
    """
    own = settings.control_socket
    paths = socket_paths(run_directory() if directory is None else directory)
    if own and own not in paths:
        paths.append(own)
    found = survey(paths, ANSWER_TIMEOUT)
    ours = {(c.interface, c.vhid) for c in settings.vhosts}
    for instance in found.found:
        shared = [key for key in instance.keys if key in ours]
        if shared:
            return (
                f"another pycarp ({_pid(instance)}) is running {_hosts(shared)} "
                f"on control socket {instance.socket}"
            )
        if instance.socket == own:
            return (
                f"another pycarp ({_pid(instance)}) is using the control socket {own} "
                f"(running {_hosts(instance.keys) or 'no virtual hosts'}); pass --control-socket"
            )
    for path, why in found.unreachable.items():
        if path == own:  # something listens there that is not a pycarp we can ask
            return f"control socket {own} is in use: {why}"
        log.warning("not checked for the same vhids (no answer): %s", why)
    return None


def _pid(instance: Instance) -> str:
    return "pid ?" if instance.pid is None else f"pid {instance.pid}"


def _hosts(keys: list[tuple[str, int]]) -> str:
    return ", ".join(f"{interface}/vhid {vhid}" for interface, vhid in keys)
