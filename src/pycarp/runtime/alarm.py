"""The driver's one timer: armed for one deadline at a time, a platform timer or the loop's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pycarp.platform.base import Timer


class Alarm:
    """Calls `fire(due)` once `due` (the loop's clock) has come; re-armed, it forgets the old one.

    With a platform `precise` timer (a timerfd on Linux) the wake-up comes
    within microseconds of the deadline; the loop's call_at waits in whole
    milliseconds, rounded up, and may also fire a hair early.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fire: Callable[[float], None],
        precise: Timer | None = None,
    ) -> None:
        self._loop = loop
        self._fire = fire
        self._precise = precise
        self._handle: asyncio.TimerHandle | None = None
        self.due: float | None = None
        if precise is not None:
            loop.add_reader(precise.fileno(), self._on_precise)

    def arm(self, due: float | None) -> None:
        """Fire at `due`; None: never. Arming for the deadline already armed changes nothing."""
        if due == self.due:
            return
        self.due = due
        if self._precise is not None:
            self._precise.arm(due)
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None if due is None else self._loop.call_at(due, self._on_loop)

    def close(self) -> None:
        self.arm(None)
        if self._precise is not None:
            self._precise.arm(None)  # whatever it was armed for last
            self._loop.remove_reader(self._precise.fileno())

    def _on_precise(self) -> None:
        assert self._precise is not None
        self._precise.clear()
        self._on_loop()

    def _on_loop(self) -> None:
        due, self.due, self._handle = self.due, None, None
        if due is not None:  # not disarmed since it fired
            self._fire(due)
