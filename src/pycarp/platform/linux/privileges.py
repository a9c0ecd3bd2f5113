"""Dropping Linux capabilities to the two a running daemon needs, with capset and prctl.

Once its sockets are open the daemon needs CAP_NET_RAW (to send and receive
on raw sockets, for a reload that opens another interface too) and
CAP_NET_ADMIN (to put addresses on and off interfaces); every other
capability goes from the effective, permitted and inheritable sets. The
bounding set loses them too unless scripts run: a script started by a root
daemon gets the bounding set as its capabilities, so leaving it whole runs
scripts with root's usual powers, as ucarp does.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

__all__ = [
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "KEPT",
    "CapabilitySets",
    "bounding_set",
    "capability_names",
    "drop_capabilities",
    "read_sets",
]

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_IPC_LOCK = 14
KEPT = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)
CAP_SETPCAP = 8
_NAMES = {CAP_NET_ADMIN: "CAP_NET_ADMIN", CAP_NET_RAW: "CAP_NET_RAW", CAP_IPC_LOCK: "CAP_IPC_LOCK"}
_PR_CAPBSET_READ = 23
_PR_CAPBSET_DROP = 24
_VERSION_3 = 0x20080522  # 64-bit sets, as two 32-bit halves
_LAST_CAP = "/proc/sys/kernel/cap_last_cap"
_SETS = ("effective", "permitted", "inheritable")


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in _SETS]


@dataclass(frozen=True)
class CapabilitySets:
    """The capability sets of this thread, as bit masks (bit n: capability n)."""

    effective: int
    permitted: int
    inheritable: int


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def read_sets() -> CapabilitySets:
    header = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    _check(_libc().capget(ctypes.byref(header), data))
    return CapabilitySets(
        *(getattr(data[0], name) | getattr(data[1], name) << 32 for name in _SETS)
    )


def _write_sets(sets: CapabilitySets) -> None:
    header = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    for half in (0, 1):
        for name in _SETS:
            setattr(data[half], name, getattr(sets, name) >> (32 * half) & 0xFFFFFFFF)
    _check(_libc().capset(ctypes.byref(header), data))


def _prctl(libc: ctypes.CDLL, option: int, arg: int) -> int:
    # prctl is variadic and reads unsigned longs: pass them as such
    unused = ctypes.c_ulong(0)
    result: int = libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), unused, unused, unused)
    return result


def _last_cap() -> int:
    try:
        with open(_LAST_CAP) as file:
            return int(file.read())
    except (OSError, ValueError):
        return 63


def bounding_set() -> int:
    libc = _libc()
    mask = 0
    for cap in range(_last_cap() + 1):
        if _prctl(libc, _PR_CAPBSET_READ, cap) == 1:
            mask |= 1 << cap
    return mask


def capability_names(mask: int) -> str:
    names = [_NAMES.get(cap, f"capability {cap}") for cap in range(64) if mask >> cap & 1]
    return ", ".join(names) or "none"


def drop_capabilities(*, keep_bounding: bool, locked_memory: bool = False) -> str:
    """Keep only KEPT (of what this process has), and CAP_IPC_LOCK with `locked_memory`
    (realtime: memory locked past RLIMIT_MEMLOCK needs it); a sentence saying what was done.

    The bounding set goes first: dropping from it needs CAP_SETPCAP, which
    the second step removes. Without CAP_SETPCAP (an unprivileged daemon
    given just the two capabilities) the bounding set stays as it is.
    """
    keep = KEPT | (1 << CAP_IPC_LOCK if locked_memory else 0)
    before = read_sets()
    bounding = "left whole for the scripts, which run with root's capabilities"
    if not keep_bounding:
        bounding = _drop_bounding(before, keep)
    kept = CapabilitySets(
        effective=before.effective & keep,
        permitted=before.permitted & keep,
        inheritable=before.inheritable & keep,
    )
    _write_sets(kept)
    said = f"capabilities: kept {capability_names(kept.permitted)}; bounding set {bounding}"
    others = _thread_count() - 1
    if others > 0:  # capset changes the calling thread only
        said += f"; {others} thread(s) started earlier keep theirs"
    return said


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _drop_bounding(sets: CapabilitySets, keep: int) -> str:
    if not sets.effective >> CAP_SETPCAP & 1:
        return "unchanged (no CAP_SETPCAP)"
    libc = _libc()
    for cap in range(_last_cap() + 1):
        if not keep >> cap & 1 and _prctl(libc, _PR_CAPBSET_READ, cap) == 1:
            _check(_prctl(libc, _PR_CAPBSET_DROP, cap))
    return f"cut to {capability_names(bounding_set())}"
