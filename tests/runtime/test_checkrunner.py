"""CheckRunner: each RunCheck as a task, its outcome reported, replaced and stopped runs not."""

from __future__ import annotations

import asyncio
from typing import Any

from pycarp.core.actions import RunCheck
from pycarp.core.checkconfig import CheckConfig
from pycarp.runtime.checkrunner import CheckRunner

TRUE = CheckConfig(name="ok", type="command", command=("/bin/true",))
SLOW = CheckConfig(name="ok", type="command", command=("/bin/sleep", "30"), timeout=60)


def runner() -> tuple[CheckRunner, list[tuple[str, bool, str]]]:
    reports: list[tuple[str, bool, str]] = []
    checks = CheckRunner(lambda name: True)

    def report(name: str, *, ok: bool, detail: str) -> None:
        reports.append((name, ok, detail))

    checks.report = report
    return checks, reports


async def settle(checks: CheckRunner, limit: float = 5.0) -> None:
    async with asyncio.timeout(limit):
        while checks.running:
            await asyncio.sleep(0.01)


async def test_a_run_is_reported_when_it_ends() -> None:
    checks, reports = runner()
    checks.run(RunCheck(TRUE))
    await settle(checks)
    assert reports == [("ok", True, "exit status 0")]


async def test_a_run_replaced_by_a_reload_is_stopped_and_never_reported() -> None:
    checks, reports = runner()
    checks.run(RunCheck(SLOW))
    await asyncio.sleep(0.1)
    checks.run(RunCheck(TRUE))  # the same name, a new config
    await settle(checks)
    assert reports == [("ok", True, "exit status 0")]


async def test_close_stops_every_run() -> None:
    checks, reports = runner()
    checks.run(RunCheck(SLOW))
    await asyncio.sleep(0.1)
    async with asyncio.timeout(5.0):
        await checks.close()
    assert checks.running == [] and reports == []


async def test_a_probe_that_breaks_is_a_failed_result(monkeypatch: Any) -> None:
    async def broken(check: CheckConfig, **kw: Any) -> tuple[bool, str]:
        raise RuntimeError("a bug")

    monkeypatch.setattr("pycarp.runtime.checkrunner.probe", broken)
    checks, reports = runner()
    checks.run(RunCheck(TRUE))
    await settle(checks)
    assert reports == [("ok", False, "internal error: a bug")]
