"""A process's cost read from /proc: time on CPU of every thread (schedstat) and memory."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

REFERENCE_S = 30.0  # CPU is reported per this many seconds

Snapshot = dict[int, dict[int, int]]  # pid -> {tid: ns on CPU}


def parse_schedstat(text: str) -> int:
    """Nanoseconds on CPU: the first field of /proc/PID/task/TID/schedstat."""
    fields = text.split()
    if not fields or not fields[0].isdigit():
        raise ValueError(f"not a schedstat line: {text!r}")
    return int(fields[0])


def parse_status_kib(text: str, key: str = "VmRSS") -> int:
    """A "Key:   1234 kB" line of /proc/PID/status (or smaps_rollup), in KiB."""
    match = re.search(rf"^{re.escape(key)}:\s+(\d+) kB$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {key} line")
    return int(match[1])


def cpu_delta_ns(start: Mapping[int, int], end: Mapping[int, int]) -> int:
    """CPU time (ns) of a process's threads between two snapshots {tid: ns}.

    A thread born during the window counts in full; one that died during it
    is lost (its time is no longer readable), never counted negative.
    """
    return sum(max(0, ns - start.get(tid, 0)) for tid, ns in end.items())


def per_reference(ns: int, elapsed: float, reference: float = REFERENCE_S) -> float:
    """ns of CPU over `elapsed` seconds as ms per `reference` seconds."""
    if elapsed <= 0:
        raise ValueError("elapsed must be positive")
    return ns / 1e6 * reference / elapsed


def thread_times(pid: int) -> dict[int, int]:
    """{tid: ns on CPU} of every thread of pid; empty if the process is gone."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        with contextlib.suppress(OSError, ValueError):  # a thread may end meanwhile
            out[int(tid)] = parse_schedstat(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text())
    return out


def snapshot(pids: Iterable[int]) -> Snapshot:
    return {pid: thread_times(pid) for pid in pids}


def cpu_ns(start: Snapshot, end: Snapshot) -> int:
    """CPU time of every process of `end` since `start`."""
    return sum(cpu_delta_ns(start.get(pid, {}), times) for pid, times in end.items())


def rss_kib(pids: Iterable[int]) -> int:
    """The sum of VmRSS over pids (a process that is gone counts 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            total += parse_status_kib(Path(f"/proc/{pid}/status").read_text(), "VmRSS")
    return total


def pss_kib(pids: Iterable[int]) -> int | None:
    """The sum of Pss (smaps_rollup), None where one cannot be read."""
    total = 0
    for pid in pids:
        try:
            total += parse_status_kib(Path(f"/proc/{pid}/smaps_rollup").read_text(), "Pss")
        except (OSError, ValueError):
            return None
    return total
