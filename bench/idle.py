"""Idle cost: CPU and memory of each kind serving 1, 16 or 255 virtual hosts, masters and backups.

Host a of a cell runs the masters, host b the backups (started once every
master is MASTER), both measured together over one window once the backups
have listened past their master-down interval. pycarp is one process, ucarp
one per virtual host, keepalived one (with its VRRP child) with a
vrrp_instance each. CPU is every thread's time on CPU (/proc/PID/task/*/
schedstat) per 30 s; RSS is VmRSS at the end of the window, summed over the
processes. Cases run one after the other, size by size and kind by kind.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import procfs
from bench.kinds import Group, Timing, make_group, master_down
from bench.rig import Cell
from pycarp.lab import LabError
from pycarp.lab.wait import wait_until

SETTLE_TIMEOUT = 40.0  # seconds for every daemon of a role to reach its state
QUIET = 1.0  # seconds between settling and the window (scripts and plumbing finish)
ROLES = ("master", "backup")


def _settle(group: Group, want: str, timeout: float) -> float:
    """Wait (bounded) until every vhid of the group is in `want`; seconds since its start."""
    wait_until(lambda: group.problem(want) is None or not group.alive(), timeout, interval=0.1)
    problem = group.problem(want)
    if problem is not None:
        raise RuntimeError(f"did not settle in {timeout:g} s: {problem}")
    return round(time.time() - group.started_at, 2)


def _measure(
    group: Group, start: procfs.Snapshot, end: procfs.Snapshot, elapsed: float
) -> dict[str, Any]:
    ns = procfs.cpu_ns(start, end)
    rss = procfs.rss_kib(end)
    pss = procfs.pss_kib(end)
    return {
        "processes": len(end),
        "threads": sum(len(t) for t in end.values()),
        "cpu_ms": round(ns / 1e6, 2),
        "cpu_ms_per_30s": round(procfs.per_reference(ns, elapsed), 2),
        "rss_mib": round(rss / 1024, 2),
        "pss_mib": None if pss is None else round(pss / 1024, 2),
    }


def idle_case(
    cell: Cell, kind: str, size: int, timing: Timing, window: float, top: Path,
    profile_dir: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One kind with `size` virtual hosts; never raises for a daemon that misbehaves (status
    "failed" or "unstable" and the error)."""
    vhids = range(1, size + 1)
    groups: dict[str, Group] = {}
    case: dict[str, Any] = {"kind": kind, "vhosts": size, "timing": timing.name,
                            "status": "failed", "error": None}  # fmt: skip
    try:
        for role, host in (("master", cell.a), ("backup", cell.b)):
            profile = None
            if profile_dir is not None and kind.startswith("pycarp"):
                profile = profile_dir / f"{kind}-{size}-{role}.prof"
            group = make_group(
                kind, host, vhids, timing, top / f"idle-{kind}-{size}-{role}", profile
            )
            groups[role] = group
            group.start()
            want = "MASTER" if role == "master" else "BACKUP"
            case.setdefault("settle_s", {})[role] = _settle(
                group, want, SETTLE_TIMEOUT + master_down(kind, timing)
            )
        # A backup that never heard its master would take over past master-down: wait past it.
        backup = groups["backup"]
        hold = backup.started_at + master_down(kind, timing) + QUIET - time.time()
        time.sleep(max(QUIET, hold))
        for role, want in (("master", "MASTER"), ("backup", "BACKUP")):
            problem = groups[role].problem(want)
            if problem is not None:
                raise RuntimeError(f"not settled: {problem}")
        before = {role: len(g.transitions()) for role, g in groups.items()}
        pids = {role: g.pids() for role, g in groups.items()}
        t0 = time.monotonic()
        start = {role: procfs.snapshot(p) for role, p in pids.items()}
        for group in groups.values():
            group.switch_profiler()
        time.sleep(window)
        for group in groups.values():
            group.switch_profiler()
        end = {role: procfs.snapshot(p) for role, p in pids.items()}
        elapsed = time.monotonic() - t0
        for role in ROLES:
            case[role] = _measure(groups[role], start[role], end[role], elapsed)
        case["window_s"] = round(elapsed, 3)
        changed = [r for r, g in groups.items() if len(g.transitions()) != before[r]]
        case["status"] = "unstable" if changed else "ok"
        if changed:
            case["error"] = f"{', '.join(changed)} changed state in the window"
    except (RuntimeError, OSError, LabError, subprocess.SubprocessError) as exc:
        case["error"] = str(exc)
    finally:
        for group in groups.values():
            group.close()
    return case


def idle_section(
    cell: Cell, kinds: Sequence[str], sizes: Sequence[int], timing: Timing, window: float,
    say: Callable[[str], None], profile_dir: Path | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    cell.close()
    out = []
    for size in sizes:
        for kind in kinds:
            case = idle_case(cell, kind, size, timing, window, cell.top, profile_dir)
            say(describe(case))
            out.append(case)
    return out


def describe(case: dict[str, Any]) -> str:
    head = f"idle {case['kind']} x{case['vhosts']}: {case['status']}"
    parts = [
        f"{role} {case[role]['cpu_ms_per_30s']:.1f} ms/30 s {case[role]['rss_mib']:.1f} MiB"
        for role in ROLES
        if role in case
    ]
    error = f" ({case['error']})" if case.get("error") else ""
    return f"{head}: {', '.join(parts)}{error}" if parts else f"{head}{error}"
