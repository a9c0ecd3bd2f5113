"""Who owns a lab tag, so leftovers can be told from namespaces still in use.

A tag is owned by OWNER_DIR/<tag>, either
- a file "<pid> <start time>": owned while that process lives (a Lab), or
- a directory: owned while it holds STATE_FILE (a lab that outlives the
  process that built it keeps its state there).
cleanup_stale() deletes the namespaces of tags nobody owns; close_all_labs()
closes what this process registered and did not close.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
from typing import Protocol

from pycarp.lab.errors import LabError
from pycarp.lab.iproute import delete_netns, list_netns, netns_id
from pycarp.lab.names import PREFIX
from pycarp.lab.processes import signal_ns_processes, start_time

__all__ = [
    "OWNER_DIR",
    "STATE_FILE",
    "Closable",
    "claim",
    "cleanup_stale",
    "close_all_labs",
    "owner_alive",
    "owner_path",
    "register",
    "release",
    "tag_of",
    "unregister",
]

OWNER_DIR = "/run/pycarp-lab"
STATE_FILE = "state.json"


def owner_path(tag: str) -> str:
    return os.path.join(OWNER_DIR, tag)


def owner_alive(tag: str) -> bool:
    path = owner_path(tag)
    if os.path.isdir(path):
        return os.path.exists(os.path.join(path, STATE_FILE))
    try:
        with open(path, encoding="ascii") as f:
            pid_s, start_s = f.read().split()
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return False
    return start_time(pid) == start


def claim(tag: str) -> None:
    """Own tag for as long as this process lives; LabError if someone alive owns it."""
    if owner_alive(tag):
        raise LabError(f"lab tag {tag!r} is in use by a running process")
    os.makedirs(OWNER_DIR, exist_ok=True)
    with open(owner_path(tag), "w", encoding="ascii") as f:
        f.write(f"{os.getpid()} {start_time(os.getpid())}\n")


def release(tag: str) -> None:
    """Give up a tag taken with claim()."""
    with contextlib.suppress(OSError):
        os.unlink(owner_path(tag))


def tag_of(netns: str) -> str | None:
    if not netns.startswith(PREFIX):
        return None
    return netns[len(PREFIX) :].split("-", 1)[0]


def cleanup_stale(prefix: str = PREFIX, *, include_live: bool = False) -> list[str]:
    """Delete leftover namespaces whose name starts with prefix; returns their names.

    Processes still running inside them are killed first (SIGKILL). A namespace
    whose tag has a live owner is kept unless include_live, so a session start
    can call this while other test runs are going on.
    """
    if not prefix.startswith(PREFIX):
        raise ValueError(f"prefix must start with {PREFIX!r}, got {prefix!r}")
    stale = []
    for name in list_netns():
        if not name.startswith(prefix):
            continue
        tag = tag_of(name)
        if not include_live and tag is not None and owner_alive(tag):
            continue
        stale.append(name)
    ids = {i for i in (netns_id(n) for n in stale) if i is not None}
    if ids:
        signal_ns_processes(ids, signal.SIGKILL)
    # Bridge namespaces last, like Lab.close().
    removed = [n for n in sorted(stale, key=lambda n: n.endswith("-br")) if delete_netns(n)]
    for name in removed:
        tag = tag_of(name)
        if tag is not None and not owner_alive(tag):
            release(tag)
    return removed


# --- what this process has open -------------------------------------------


class Closable(Protocol):
    @property
    def tag(self) -> str: ...

    def close(self) -> None: ...


# Strong references: a forgotten lab stays reachable so atexit can still close it.
_open: dict[int, Closable] = {}


def register(lab: Closable) -> None:
    _open[id(lab)] = lab


def unregister(lab: Closable) -> None:
    _open.pop(id(lab), None)


def close_all_labs() -> list[str]:
    """Close every registered lab of this process that is still open; returns their tags."""
    tags = []
    for lab in list(_open.values()):
        tags.append(lab.tag)
        lab.close()
    return tags


atexit.register(close_all_labs)
