"""Realtime scheduling for the daemon's event loop, as keepalived's vrrp_rt_priority and
vrrp_no_swap: SCHED_RR and locked memory, so that sub-second advertisements
keep their time on a busy or swapping host.

Only the calling thread turns realtime; threads it starts later inherit it,
so the daemon's worker threads call normal_thread() first. Processes it forks
(scripts, command checks) start as normal ones (SCHED_RESET_ON_FORK).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4  # Linux 4.4: lock pages as they are touched, not thread stacks up front


def set_realtime(priority: int) -> tuple[str, bool]:
    """SCHED_RR at `priority` and memory locked: what was done, and whether memory is locked.

    OSError if realtime scheduling is not permitted. Locked memory needs
    CAP_IPC_LOCK for as long as it lasts (without it, past RLIMIT_MEMLOCK,
    every new mapping would fail): the daemon keeps that capability then.
    """
    os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    done = f"SCHED_RR priority {priority}"
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0:
        return f"{done}; memory not locked: {os.strerror(ctypes.get_errno())}", False
    return f"{done}, memory locked", True


def normal_thread() -> None:
    """The calling thread back to normal scheduling (lowering is always permitted)."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
