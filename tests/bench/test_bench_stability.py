"""bench/stability.py's arithmetic and command line (the hogged runs are bench runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import stability


def test_the_largest_gap_between_advertisements() -> None:
    assert stability.largest_gap_ms([0.0, 0.1, 0.35, 0.45]) == pytest.approx(250.0)
    assert stability.largest_gap_ms([1.0]) == 0.0


def test_transitions_are_read_from_the_daemon_log(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    log.write_text(
        "2026-12-01T10:00:00 [WARNING] eth0/vhid 11: INIT -> BACKUP: started\n"
        "2026-12-01T10:00:01 [INFO] eth0: index 2\n"
        "2026-12-01T10:00:05 [WARNING] eth0/vhid 11: BACKUP -> MASTER: no advertisement\n"
    )
    assert len(stability.states(log)) == 2


def test_the_command_line_defaults() -> None:
    args = stability.parse_args([])
    assert (args.minutes, args.hogs) == (10.0, "cpu,memory")
    assert set(stability.HOGS) == {"cpu", "memory"}
