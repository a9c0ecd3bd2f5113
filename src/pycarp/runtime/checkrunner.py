"""Runs the health checks the core asks for, each as a task, and reports each outcome.

The core never asks for a second run of a check while one is under way, and
each run is bounded by its timeout (runtime/probes.py), so nothing piles up
and nothing here blocks the protocol loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pycarp.core.actions import RunCheck
from pycarp.runtime.probes import probe

log = logging.getLogger("pycarp")

Report = Callable[..., None]  # report(name, *, ok=, detail=): Driver.check_result


class CheckRunner:
    def __init__(self, interface_running: Callable[[str], bool]) -> None:
        self._interface_running = interface_running
        self.report: Report | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> list[str]:
        return [name for name, task in self._tasks.items() if not task.done()]

    def run(self, action: RunCheck) -> None:
        check = action.check
        old = self._tasks.get(check.name)
        if old is not None and not old.done():
            # Only a check replaced by a reload is asked for again while it runs:
            # the old run's result must not count for the new one.
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._run(action))
        self._tasks[check.name] = task

    async def _run(self, action: RunCheck) -> None:
        check = action.check
        try:
            ok, detail = await probe(check, interface_running=self._interface_running)
        except Exception as exc:  # a bug in a probe must not stop the checks
            log.error("check %s: %s", check.name, exc or type(exc).__name__)
            log.debug("check %s failed", check.name, exc_info=True)
            ok, detail = False, f"internal error: {exc or type(exc).__name__}"
        finally:
            if self._tasks.get(check.name) is asyncio.current_task():
                del self._tasks[check.name]
        if self.report is not None:
            self.report(check.name, ok=ok, detail=detail)

    async def close(self) -> None:
        """Stop every run under way (a probe kills what it started when cancelled)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
