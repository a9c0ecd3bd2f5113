"""The pycarp daemons of this network namespace, found by their control sockets.

Every daemon with a default control socket has it in the run directory
(pycarp.platform.rundir), so asking each ``*.sock`` there for its status
lists them: the client uses this to show and pick daemons, and a starting
daemon to refuse a vhid that another one already runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pycarp.client.request import ControlError, NotRunning, request_with_pid
from pycarp.config.settings import SOCKET_SUFFIX

__all__ = ["Instance", "Survey", "query", "socket_paths", "survey"]

MAX_PARALLEL = 16  # sockets asked at once


@dataclass(frozen=True)
class Instance:
    """One daemon that answered: its socket, its pid and its status document."""

    socket: str
    pid: int | None
    hosts: tuple[dict[str, Any], ...]
    # The rest of the document (docs/status.md); empty from a daemon that predates them.
    interfaces: dict[str, Any] = field(default_factory=dict)  # name -> {"dropped": {...}}
    checks: tuple[dict[str, Any], ...] = ()
    groups: tuple[dict[str, Any], ...] = ()
    scheduling: str | None = None  # "normal", or the realtime scheduling the daemon got

    @property
    def name(self) -> str:
        """The socket's file name without .sock: how tables and messages name the daemon."""
        return os.path.basename(self.socket).removesuffix(SOCKET_SUFFIX)

    @property
    def keys(self) -> list[tuple[str, int]]:
        """(interface, vhid) of each virtual host."""
        return [(str(h.get("interface")), h["vhid"]) for h in self.hosts if "vhid" in h]

    @property
    def vhids(self) -> list[int]:
        return sorted({vhid for _, vhid in self.keys})

    def runs(self, vhid: int) -> bool:
        return vhid in self.vhids

    def to_json(self) -> dict[str, Any]:
        return {
            "socket": self.socket,
            "pid": self.pid,
            "hosts": list(self.hosts),
            "interfaces": self.interfaces,
            "checks": list(self.checks),
            "groups": list(self.groups),
            "scheduling": self.scheduling,
        }


@dataclass(frozen=True)
class Survey:
    """What asking a set of sockets found."""

    found: list[Instance] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # socket -> why


def socket_paths(directory: str) -> list[str]:
    """The ``*.sock`` entries of ``directory``, sorted; none if it does not exist."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.endswith(SOCKET_SUFFIX))


def query(path: str, timeout: float) -> Instance:
    """The daemon at ``path``; ControlError (NotRunning: a stale socket) if it does not answer."""
    answer, pid = request_with_pid(path, {"command": "status"}, timeout)
    if answer.get("ok") is not True:
        raise ControlError(f"{path}: {answer.get('error') or 'status refused without a reason'}")
    hosts = answer.get("hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, dict) for h in hosts):
        raise ControlError(f"unexpected answer on control socket {path}")
    interfaces = answer.get("interfaces")
    return Instance(
        path,
        pid,
        tuple(hosts),
        interfaces if isinstance(interfaces, dict) else {},
        _objects(answer.get("checks")),
        _objects(answer.get("groups")),
        scheduling if isinstance(scheduling := answer.get("scheduling"), str) else None,
    )


def _objects(value: Any) -> tuple[dict[str, Any], ...]:
    """The objects of a list in the document; none for a missing or odd value."""
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, dict))


def survey(paths: Sequence[str], timeout: float) -> Survey:
    """Ask every socket in ``paths`` at once (so within about ``timeout`` seconds in all).

    Stale sockets (nothing listens) are left out silently; the others that
    do not answer are in ``unreachable``, each with the reason.
    """
    result = Survey()
    if not paths:
        return result
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(paths))) as pool:
        futures = [pool.submit(query, path, timeout) for path in paths]
        for path, future in zip(paths, futures, strict=True):
            try:
                result.found.append(future.result())
            except NotRunning:
                pass  # left by a daemon that was killed: the next one there replaces it
            except ControlError as exc:
                result.unreachable[path] = str(exc)
    return result
