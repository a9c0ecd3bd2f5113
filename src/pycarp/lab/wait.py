"""Waiting out a lab run: a bounded poll, progress lines, and signals that unwind it.

Shared by `pycarp demo`, the benches and the end-to-end tests, so that every
wait has a deadline on the monotonic clock and a run stopped by SIGTERM
cleans up exactly as one stopped by Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn

POLL_INTERVAL = 0.02  # seconds between two looks at a condition

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers


def wait_until(
    condition: Callable[[], bool], timeout: float, *, interval: float = POLL_INTERVAL
) -> bool:
    """Poll condition() until it is true (True) or timeout seconds passed (its last answer).

    The condition is asked once more at the deadline, so a timeout of 0 is one look.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
    return condition()


class Progress:
    """Lines prefixed with the seconds since the run started."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.2f}s] {message}", flush=True)


class Interrupted(BaseException):
    """A stop signal (SIGTERM...), raised like KeyboardInterrupt so that cleanups run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def raise_interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    """A signal handler: Interrupted(signum)."""
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_kept(*signums: int) -> Iterator[None]:
    """The handlers of signums as they were before the block, restored after it
    (one not set from Python reads as None: then the default)."""
    old = [signal.getsignal(s) for s in signums]
    try:
        yield
    finally:
        for signum, handler in zip(signums, old, strict=True):
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_set(handler: Handler, *signums: int) -> Iterator[None]:
    """The block with handler for signums (SIG_IGN: a cleanup a second Ctrl-C cannot cut
    short); the old handlers restored after it."""
    with signals_kept(*signums):
        for signum in signums:
            signal.signal(signum, handler)
        yield
