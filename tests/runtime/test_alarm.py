"""The driver's one timer: the loop's, or a platform's precise one (a fake here, a timerfd)."""

from __future__ import annotations

import asyncio
import os
import select
import time

from pycarp.platform.linux.timerfd import TimerFd, timespec
from pycarp.runtime.alarm import Alarm


class FakeTimer:
    """A pipe stands in for the timerfd: arm() records, fire() makes it readable."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        self.armed: list[float | None] = []
        self.closed = False

    def fileno(self) -> int:
        return self.read_end

    def arm(self, deadline: float | None) -> None:
        self.armed.append(deadline)

    def fire(self) -> None:
        os.write(self.write_end, b"x")

    def clear(self) -> None:
        os.read(self.read_end, 8)

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


async def test_the_loops_timer_fires_once_with_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    alarm = Alarm(loop, fired.append)
    due = loop.time() + 0.02
    alarm.arm(due)
    alarm.arm(due)  # the same deadline again: still one
    await asyncio.sleep(0.1)
    assert fired == [due] and alarm.due is None
    alarm.arm(loop.time() + 0.02)
    alarm.arm(None)  # disarmed before it fires
    await asyncio.sleep(0.05)
    assert fired == [due]
    alarm.close()


async def test_a_precise_timer_is_armed_instead_and_read_when_it_fires() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = FakeTimer()
    alarm = Alarm(loop, fired.append, timer)
    alarm.arm(12.5)
    alarm.arm(13.0)  # a new deadline replaces the old
    assert timer.armed == [12.5, 13.0]
    timer.fire()
    await asyncio.sleep(0.01)
    assert fired == [13.0]
    timer.fire()  # readable again without a deadline (e.g. disarmed meanwhile): nothing
    await asyncio.sleep(0.01)
    assert fired == [13.0]
    alarm.close()
    assert timer.armed[-1] is None
    timer.close()


def test_timespecs_are_whole_nanoseconds_and_never_zero() -> None:
    spec = timespec(12.000000501)
    assert (spec.tv_sec, spec.tv_nsec) == (12, 501)
    zero = timespec(0.0)
    assert (zero.tv_sec, zero.tv_nsec) == (0, 1)  # a zero it_value would disarm it


def readable(fd: int, wait: float) -> bool:
    return bool(select.select([fd], [], [], wait)[0])


def test_a_timerfd_fires_at_its_monotonic_deadline_not_before() -> None:
    timer = TimerFd()
    try:
        deadline = time.monotonic() + 0.05
        timer.arm(deadline)
        assert not readable(timer.fileno(), 0.0)
        assert readable(timer.fileno(), 1.0)
        assert time.monotonic() >= deadline
        timer.clear()
        assert not readable(timer.fileno(), 0.0)
        timer.arm(time.monotonic() - 1.0)  # past: at once
        assert readable(timer.fileno(), 0.5)
        timer.clear()
        timer.arm(time.monotonic() + 0.02)
        timer.arm(None)
        assert not readable(timer.fileno(), 0.1)
    finally:
        timer.close()
    assert timer.fileno() == -1
