"""Timing on the wire: a lone master's interval error, and a pair's false takeovers under hogs.

Every cell runs at once, each on its own segment, so that all daemons see the
same load at the same time; the clients capture. The hogs are stress-ng's:
`--cpu 2` keeps both cores busy, `--vm 2` keeps two workers writing memory.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.rig import Cell, Unsettled, pause
from bench.wire import Capture, interval_errors, largest_gap_ms, stamps_from
from pycarp.lab import LabError
from pycarp.lab.nsexec import program

HOGS: dict[str, list[str]] = {
    "cpu": ["--cpu", "2"],
    "memory": ["--vm", "2", "--vm-bytes", "1G", "--vm-keep"],
}
LONE_WAIT = 15.0  # seconds for a lone daemon to become master


def start_hog(cell: Cell, hog: str, seconds: float) -> subprocess.Popen[bytes]:
    """stress-ng for `seconds` (it runs in a lab host: the lab stops it at the latest)."""
    argv = [program("stress-ng", "stress-ng"), *HOGS[hog], "--timeout", f"{seconds:g}s", "--quiet"]
    return cell.client.spawn(*argv)


def stop_hog(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=10)


def _lone_master(cell: Cell) -> str | None:
    """Only the master left running (a fresh lone daemon if there is none); its role."""
    try:
        master = cell.master_role()
        if master is None:
            cell.close()
            master = cell.a.role
            cell.start(master)
        cell.close_role(cell.peer(master))
        if not cell.wait_state(master, "MASTER", LONE_WAIT + cell.bound):
            return None
        return master
    except (RuntimeError, OSError, LabError):
        return None


def interval_section(
    cells: Sequence[Cell], seconds: float, loads: Sequence[str], say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Each cell's lone master captured for `seconds`, idle then with both cores busy."""
    masters = {cell.index: _lone_master(cell) for cell in cells}
    pause(2 * max(c.interval for c in cells))
    out = []
    for load in loads:
        hog = start_hog(cells[0], "cpu", seconds + 3) if load == "busy" else None
        try:
            pause(0.5 if hog else 0)
            captures = [
                Capture(c.client, c.top / f"interval-{c.index}-{load}.txt", seconds + 10).start()
                for c in cells
            ]
            pause(seconds)
            packets = [capture.stop() for capture in captures]
        finally:
            if hog is not None:
                hog.terminate()
            stop_hog(hog)
        for cell, caught in zip(cells, packets, strict=True):
            row: dict[str, Any] = {
                "kind": cell.kind,
                "timing": cell.timing.name,
                "load": load,
                "nominal_s": round(cell.interval, 6),
                "seconds": seconds,
            }
            role = masters[cell.index]
            try:
                if role is None:
                    raise ValueError("no lone master")
                row.update(
                    status="ok",
                    **interval_errors(stamps_from(caught, cell.host(role).ip), cell.interval),
                )
            except ValueError as exc:
                row.update(status="failed", error=str(exc))
            say(f"interval {cell.name} {load}: {_errors_text(row)}")
            out.append(row)
    return out


def _errors_text(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"{row.get('status')}: {row.get('error')}"
    return f"p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, max {row['max_ms']:.3f} ms"


def stability_section(
    cells: Sequence[Cell], phases: Sequence[tuple[str, float]], say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Every cell's pair through each phase ("idle", "cpu", "memory": seconds each); a false
    takeover is a daemon becoming MASTER during a phase."""
    masters: dict[int, str | None] = {}
    for cell in cells:
        try:
            masters[cell.index] = cell.pair_up()
        except (Unsettled, RuntimeError, OSError, LabError) as exc:
            masters[cell.index] = None
            say(f"stability {cell.name}: no stable pair ({exc})")
    total = sum(s for _, s in phases)
    captures = {
        c.index: Capture(c.client, c.top / f"stability-{c.index}.txt", total + 30).start()
        for c in cells
    }
    windows = []
    counts = []
    try:
        for name, seconds in phases:
            before = {c.index: _master_entries(c) for c in cells}
            hog = start_hog(cells[0], name, seconds) if name in HOGS else None
            began = time.time()
            try:
                pause(seconds)
            finally:
                stop_hog(hog)
            windows.append((name, seconds, began, time.time()))
            counts.append({c.index: _master_entries(c) - before[c.index] for c in cells})
    finally:
        packets = {index: capture.stop() for index, capture in captures.items()}
    out = []
    for (name, seconds, began, ended), phase_counts in zip(windows, counts, strict=True):
        for cell in cells:
            out.append(_phase_row(cell, masters[cell.index], name, seconds, began, ended,
                                  phase_counts[cell.index], packets[cell.index]))  # fmt: skip
            say(f"stability {cell.name} {name}: {_stability_text(out[-1])}")
    return out


def _master_entries(cell: Cell) -> int:
    """Transitions to MASTER logged so far by the cell's daemons (running or not)."""
    return sum(1 for g in cell.groups.values() for _, s in g.transitions() if s == "MASTER")


def _phase_row(
    cell: Cell, master: str | None, name: str, seconds: float, began: float, ended: float,
    takeovers: int, packets: Sequence[tuple[float, str]],
) -> dict[str, Any]:  # fmt: skip
    row: dict[str, Any] = {"kind": cell.kind, "timing": cell.timing.name, "phase": name,
                           "seconds": seconds, "nominal_s": round(cell.interval, 6)}  # fmt: skip
    if master is None:
        row.update(status="unsettled", error="no stable pair at the start")
        return row
    inside = [(t, src) for t, src in packets if began <= t <= ended]
    backup_ip = cell.host(cell.peer(master)).ip
    master_stamps = stamps_from(inside, cell.host(master).ip)
    row.update(
        status="ok",
        false_takeovers=takeovers,
        adverts=len(inside),
        backup_adverts=len(stamps_from(inside, backup_ip)),
        largest_gap_ms=round(largest_gap_ms([t for t, _ in inside]), 3),
        largest_gaps_ms=_largest_gaps([t for t, _ in inside]),
    )
    with contextlib.suppress(ValueError):  # fewer than two: a takeover took it all
        errors = interval_errors(master_stamps, cell.interval)
        errors.pop("errors_ms")  # thousands: the largest gaps tell the story
        row.update({f"master_{k}": v for k, v in errors.items()})
    return row


def _largest_gaps(stamps: Sequence[float], count: int = 10) -> list[float]:
    gaps = sorted((b - a for a, b in itertools.pairwise(stamps)), reverse=True)
    return [round(g * 1000, 3) for g in gaps[:count]]


def _stability_text(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return f"{row.get('status')}: {row.get('error')}"
    return (f"{row['false_takeovers']} false takeovers, {row['backup_adverts']} adverts from "
            f"the backup, largest gap {row['largest_gap_ms']:.1f} ms")  # fmt: skip
