"""Hung scripts: timeouts kill the process group, a new direction supersedes, plumbing never waits.

Real short-lived processes: what is tested is process-group behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pycarp.core.actions import (
    HostKey,
    Reason,
    RemoveAddresses,
    RunScript,
    State,
    StateChanged,
)
from pycarp.core.node import Node
from pycarp.runtime.driver import Driver
from pycarp.runtime.scripts import KILL_GRACE, TAIL_LINES, SerialJobs

KEY = HostKey("eth0", 1)
VIP = IPv4Address("198.51.100.200")


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def run(path: str, which: str = "up", timeout: float = 10.0) -> RunScript:
    return RunScript(KEY, which, ((path, "eth0", str(VIP)),), timeout)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def pids(path: Path, count: int) -> list[int]:
    """The pids a script wrote to path, one a line, once it has written count of them."""
    for _ in range(250):
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return [int(p) for p in lines]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never got {count} pids")


async def gone(*pids: int, within: float = 3.0) -> bool:
    """Whether every pid has exited (and, for ours, been reaped) within the time."""
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Pids a test may leave running (a background child is not ours to kill)."""
    left: list[int] = []
    yield left
    for pid in left:
        if alive(pid):
            os.kill(pid, 9)


async def test_a_job_ends_when_its_process_exits_not_when_its_output_closes(
    tmp_path: Path, leftovers: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    pidfile = tmp_path / "pids"
    leaves = script(tmp_path, "leaves", f"echo started; (sleep 30) & echo $! > {pidfile}; exit 0")
    jobs = SerialJobs()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="pycarp"):
        jobs.script(run(leaves))
        assert await jobs.wait(5)
    assert time.monotonic() - started < 2  # not the background child's 30 s
    (child,) = await pids(pidfile, 1)
    leftovers.append(child)
    assert alive(child)  # left alone: an up script may start a service
    assert "started" in caplog.text
    assert "exited with status 0" in caplog.text


async def test_a_timeout_kills_the_whole_process_group_and_logs_its_output(
    tmp_path: Path, leftovers: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    pidfile = tmp_path / "pids"
    hangs = script(
        tmp_path,
        "hangs",
        f"trap '' TERM; echo $$ > {pidfile}; sleep 60 & echo $! >> {pidfile}; "
        "echo waiting for the router; wait",
    )
    jobs = SerialJobs()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="pycarp"):
        jobs.script(run(hangs, timeout=0.5))
        assert await jobs.wait(5)
    took = time.monotonic() - started
    assert 0.5 <= took < 0.5 + KILL_GRACE + 1  # SIGTERM is ignored: SIGKILL after the grace
    shell, child = await pids(pidfile, 2)
    leftovers.extend((shell, child))
    assert await gone(shell, child)
    assert "still running after 0.5 s: killed" in caplog.text
    assert "waiting for the router" in caplog.text


async def test_output_in_the_log_is_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chatty = script(tmp_path, "chatty", "for i in $(seq 1 500); do echo line $i; done; exit 4")
    jobs = SerialJobs()
    with caplog.at_level(logging.INFO, logger="pycarp.scripts"):
        jobs.script(run(chatty))
        assert await jobs.wait(5)
    lines = [r.getMessage() for r in caplog.records if ": line " in r.getMessage()]
    assert len(lines) == TAIL_LINES
    assert lines[-1].endswith("line 500")
    assert "(earlier output left out)" in caplog.text
    assert "exited with status 4" in caplog.text
    assert all(r.levelno == logging.ERROR for r in caplog.records if ": line " in r.getMessage())


async def test_a_down_script_supersedes_a_hung_up_script(
    tmp_path: Path, leftovers: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    pidfile, record = tmp_path / "pids", tmp_path / "record"
    hang = script(tmp_path, "up", f"echo $$ > {pidfile}; sleep 60 & echo $! >> {pidfile}; wait")
    second = script(tmp_path, "up2", f"echo up2 >> {record}")
    down = script(tmp_path, "down", f"echo down $1 $2 >> {record}")
    jobs = SerialJobs()
    with caplog.at_level(logging.INFO, logger="pycarp"):
        jobs.script(run(hang))
        jobs.script(run(second))  # queued behind the hung one: stale too
        shell, child = await pids(pidfile, 2)
        leftovers.extend((shell, child))
        started = time.monotonic()
        jobs.script(run(down, "down"))
        assert await gone(shell, child, within=KILL_GRACE + 1)
        assert await jobs.wait(KILL_GRACE + 2)
    assert time.monotonic() - started < KILL_GRACE + 1
    assert record.read_text().splitlines() == [f"down eth0 {VIP}"]
    assert "superseded" in caplog.text


async def test_more_of_the_same_direction_waits_its_turn(tmp_path: Path) -> None:
    record = tmp_path / "record"
    slow = script(tmp_path, "slow", f"sleep 0.3; echo slow >> {record}")
    fast = script(tmp_path, "fast", f"echo fast >> {record}")
    jobs = SerialJobs()
    jobs.script(run(slow, "down"))
    jobs.turn(KEY, "down")  # a state change in the same direction supersedes nothing
    jobs.script(run(fast, "down"))
    assert await jobs.wait(5)
    assert record.read_text().splitlines() == ["slow", "fast"]


async def test_wait_at_exit_kills_what_is_still_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    hang = script(tmp_path, "hang", f"echo $$ > {pidfile}; exec sleep 60")
    jobs = SerialJobs()
    jobs.script(run(hang, "down"))
    (pid,) = await pids(pidfile, 1)
    assert not await jobs.wait(0.2)
    assert await gone(pid)


class Addresses:
    def __init__(self) -> None:
        self.log: list[str] = []

    async def add(self, interface: str, networks: Sequence[tuple[IPv4Address, int]]) -> None:
        self.log.append("add")

    async def remove(self, interface: str, networks: Sequence[tuple[IPv4Address, int]]) -> None:
        self.log.append("remove")

    async def present(self, interface: str) -> set[IPv4Address]:
        return set()

    async def close(self) -> None:
        pass


async def test_built_in_plumbing_never_waits_for_a_script(
    tmp_path: Path, leftovers: list[int]
) -> None:
    pidfile, record = tmp_path / "pids", tmp_path / "record"
    hang = script(tmp_path, "up", f"echo $$ > {pidfile}; exec sleep 60")
    down = script(tmp_path, "down", f"echo down >> {record}")
    addresses = Addresses()
    jobs = SerialJobs()
    driver = Driver(Node([], counter=lambda: 1), {}, jobs, addresses=addresses)
    driver.step([StateChanged(KEY, State.BACKUP, State.MASTER, Reason.MASTER_DOWN), run(hang)])
    (pid,) = await pids(pidfile, 1)
    leftovers.append(pid)
    networks = ((VIP, 32),)
    driver.step(
        [
            StateChanged(KEY, State.MASTER, State.BACKUP, Reason.FORCED),
            RemoveAddresses(KEY, networks),
            run(down, "down"),
        ]
    )
    assert await driver.plumbing_done(0.5)
    assert addresses.log == ["remove"]  # at once: not behind the hung up script
    assert await jobs.wait(KILL_GRACE + 2)
    assert await gone(pid)
    assert record.read_text() == "down\n"


async def test_leaving_master_supersedes_an_up_script_even_without_a_down_script(
    tmp_path: Path, leftovers: list[int]
) -> None:
    pidfile = tmp_path / "pids"
    hang = script(tmp_path, "up", f"echo $$ > {pidfile}; exec sleep 60")
    jobs = SerialJobs()
    driver = Driver(Node([], counter=lambda: 1), {}, jobs)
    driver.step([StateChanged(KEY, State.BACKUP, State.MASTER, Reason.MASTER_DOWN), run(hang)])
    (pid,) = await pids(pidfile, 1)
    leftovers.append(pid)
    driver.step([StateChanged(KEY, State.MASTER, State.INIT, Reason.SHUTDOWN)])
    assert await gone(pid, within=KILL_GRACE + 1)
    assert await jobs.wait(1)
