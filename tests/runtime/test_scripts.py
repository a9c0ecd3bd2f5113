"""Scripts run in order per host, never block the caller, and are logged."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from pycarp.core.actions import HostKey
from pycarp.runtime.scripts import SerialJobs

KEY = HostKey("eth0", 1)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


async def test_run_returns_at_once_and_scripts_of_a_host_run_in_order(tmp_path: Path) -> None:
    record = tmp_path / "record"
    slow = script(tmp_path, "slow", f'sleep 0.3; echo "slow $1 $2" >> {record}')
    fast = script(tmp_path, "fast", f'echo "fast $1 $2 $3" >> {record}')
    runner = SerialJobs()
    started = time.monotonic()
    runner.run(KEY, [slow, "eth0", "198.51.100.200"])
    runner.run(KEY, [fast, "eth0", "198.51.100.200", "x"])
    assert time.monotonic() - started < 0.1  # never waits for the script
    assert await runner.wait(5)
    assert record.read_text().splitlines() == [
        "slow eth0 198.51.100.200",
        "fast eth0 198.51.100.200 x",
    ]


async def test_exit_status_and_output_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failing = script(tmp_path, "failing", "echo plumbing failed >&2; exit 3")
    runner = SerialJobs()
    with caplog.at_level(logging.INFO, logger="pycarp"):
        runner.run(KEY, [failing, "eth0", "198.51.100.200"])
        await runner.wait(5)
    text = caplog.text
    assert "plumbing failed" in text
    assert "exited with status 3" in text


async def test_missing_script_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = SerialJobs()
    runner.run(KEY, [str(tmp_path / "absent"), "eth0", "198.51.100.200"])
    assert await runner.wait(5)
    assert "unable to run" in caplog.text


async def test_wait_kills_scripts_that_hang(tmp_path: Path) -> None:
    hang = script(tmp_path, "hang", "exec sleep 30")
    runner = SerialJobs()
    runner.run(KEY, [hang, "eth0", "198.51.100.200"])
    await asyncio.sleep(0.1)
    assert not await runner.wait(0.2)


async def test_a_hung_script_is_killed_at_wait(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    hang = script(tmp_path, "hang2", f"echo $$ > {pidfile}; exec sleep 30")
    runner = SerialJobs()
    runner.run(KEY, [hang, "eth0", "198.51.100.200"])
    for _ in range(50):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.02)
    assert not await runner.wait(0.2)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
