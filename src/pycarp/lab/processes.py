"""Processes of a lab: found by namespace, named by pid and start time, ended by pid only.

A pid alone may be reused once its process is gone; (pid, start time) names
one process for good, so nothing here signals a process that merely got an
old pid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Iterable

from pycarp.lab.iproute import NsId
from pycarp.lab.wait import wait_until

__all__ = [
    "alive",
    "kill_ns_processes",
    "pids_in",
    "reap",
    "signal_ns_processes",
    "signal_process",
    "start_time",
    "stop_processes",
    "wait_gone",
]

POLL = 0.05  # seconds between looks at /proc

log = logging.getLogger(__name__)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (the state) on; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def start_time(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot), None if it is gone."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None  # field 22 of proc(5)
    except (IndexError, ValueError):
        return None


def alive(pid: int, start: int | None) -> bool:
    """pid still names the (non-zombie) process that started at `start` (None: any)."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return start is None or start_time(pid) == start


def signal_process(pid: int, start: int | None, sig: int) -> bool:
    """sig to the process (pid, start) if it is still alive; whether it was."""
    if not alive(pid, start):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def reap(pid: int) -> None:
    """Collect our own child's exit status (a no-op for another process's child)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, start: int | None, timeout: float) -> bool:
    """Wait (bounded) until the process is gone, reaping it if it is ours; whether it is."""

    def gone() -> bool:
        reap(pid)
        return not alive(pid, start)

    return wait_until(gone, timeout, interval=POLL)


# --- by namespace ---------------------------------------------------------


def pids_in(ns_ids: set[NsId]) -> list[int]:
    """Processes whose network namespace is one of ns_ids (what `ip netns pids` does)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in ns_ids:
            pids.append(int(entry))
    return pids


def signal_ns_processes(ns_ids: set[NsId], sig: int) -> int:
    """Signal every process still inside these namespaces; returns how many."""
    count = 0
    for pid in pids_in(ns_ids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            count += 1
    return count


def kill_ns_processes(ns_ids: set[NsId], timeout: float) -> bool:
    """SIGKILL everything in these namespaces; wait (bounded, reaping ours) until none is left."""
    signal_ns_processes(ns_ids, signal.SIGKILL)

    def none_left() -> bool:
        left = pids_in(ns_ids)
        for pid in left:
            reap(pid)
        return not left

    return wait_until(none_left, timeout, interval=POLL)


# --- our own children -----------------------------------------------------


def _leader_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the process has exited, without reaping it.

    Not reaping keeps its pid (= its process group id) reserved, so killpg()
    can still reach the rest of the group safely afterwards.
    """
    if proc.returncode is not None:
        return True
    try:
        res = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return res is not None


def _killpg(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.returncode is not None:  # reaped: its pgid may belong to someone else now
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_processes(
    procs: Iterable[subprocess.Popen[bytes]], ns_ids: set[NsId], grace: float
) -> None:
    """SIGTERM, bounded wait, SIGKILL: our process groups and whatever runs in our namespaces."""
    procs = list(procs)
    for proc in procs:
        _killpg(proc, signal.SIGTERM)
    signal_ns_processes(ns_ids, signal.SIGTERM)
    wait_until(
        lambda: all(_leader_exited(p) for p in procs) and not pids_in(ns_ids), grace, interval=POLL
    )
    # Also reaches group members that outlived a leader which obeyed SIGTERM.
    for proc in procs:
        _killpg(proc, signal.SIGKILL)
    signal_ns_processes(ns_ids, signal.SIGKILL)
    for proc in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("process %d did not die after SIGKILL", proc.pid)
