"""The one wait helper (bounded, monotonic), progress lines, and signals that unwind a run."""

from __future__ import annotations

import re
import signal
import time
from types import FrameType

import pytest

from pycarp.lab.wait import (
    Interrupted,
    Progress,
    raise_interrupted,
    signals_kept,
    signals_set,
    wait_until,
)


def test_true_at_once_asks_once() -> None:
    calls: list[float] = []
    assert wait_until(lambda: calls.append(time.monotonic()) is None, 5.0)
    assert len(calls) == 1


def test_polls_at_the_interval_until_true() -> None:
    calls: list[float] = []

    def third_time() -> bool:
        calls.append(time.monotonic())
        return len(calls) == 3

    assert wait_until(third_time, 5.0, interval=0.05)
    assert len(calls) == 3
    assert calls[2] - calls[0] >= 0.09


def test_times_out_within_its_bound() -> None:
    start = time.monotonic()
    assert not wait_until(lambda: False, 0.2, interval=0.5)  # the sleep is cut to the deadline
    took = time.monotonic() - start
    assert 0.2 <= took < 0.4


def test_asks_once_more_at_the_deadline() -> None:
    answers = iter([False, True])
    assert wait_until(lambda: next(answers), 0.1, interval=1.0)
    looks: list[bool] = []
    assert not wait_until(lambda: looks.append(False) or False, 0.0)
    assert len(looks) == 1  # timeout 0: one look


def test_progress_prefixes_the_seconds_since_start(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress()
    progress.start -= 1.5
    progress.say("lab up")
    assert re.fullmatch(r"\[  1\.5\ds\] lab up\n", capsys.readouterr().out)


def test_signals_set_raises_interrupted_and_restores() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(Interrupted) as stop, signals_set(raise_interrupted, signal.SIGUSR1):
        signal.raise_signal(signal.SIGUSR1)
    assert stop.value.signum == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) == before
    assert not isinstance(stop.value, Exception)  # `except Exception` cannot swallow it


def test_signals_set_can_ignore() -> None:
    with signals_set(signal.SIG_IGN, signal.SIGUSR1, signal.SIGUSR2):
        signal.raise_signal(signal.SIGUSR1)
        signal.raise_signal(signal.SIGUSR2)
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN


def test_signals_kept_undoes_changes_made_inside() -> None:
    seen: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    with signals_set(note, signal.SIGUSR1):
        with signals_kept(signal.SIGUSR1):
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.raise_signal(signal.SIGUSR1)
    assert seen == [signal.SIGUSR1]
