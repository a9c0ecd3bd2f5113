"""A precise one-shot timer: a timerfd on CLOCK_MONOTONIC, waited on like a socket.

The event loop's own timers wait in epoll_wait(), whose timeout is in whole
milliseconds rounded up: each wake-up is up to a millisecond late. A timerfd
armed for an absolute deadline on the loop's clock (time.monotonic() is
CLOCK_MONOTONIC) becomes readable within microseconds of it. Python 3.11 has
no os.timerfd_create, so libc is called through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def timespec(seconds: float) -> Timespec:
    """`seconds` as a timespec; never zero (a zero it_value disarms the timer)."""
    nanos = max(1, round(seconds * 1e9))
    return Timespec(nanos // 1_000_000_000, nanos % 1_000_000_000)


class TimerFd:
    """A Timer (pycarp.platform.base): armed for one deadline at a time."""

    def __init__(self) -> None:
        self._lib = _libc()
        fd = self._lib.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_create: {os.strerror(code)}")
        self._fd: int = fd

    def fileno(self) -> int:
        return self._fd

    def arm(self, deadline: float | None) -> None:
        """Readable at `deadline` (time.monotonic()'s clock; at once if past); None: disarmed."""
        value = Timespec(0, 0) if deadline is None else timespec(deadline)
        spec = Itimerspec(Timespec(0, 0), value)
        flags = 0 if deadline is None else TFD_TIMER_ABSTIME
        if self._lib.timerfd_settime(self._fd, flags, ctypes.byref(spec), None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_settime: {os.strerror(code)}")

    def clear(self) -> None:
        """Take the expiry count, so that it is not readable again until it fires again."""
        try:
            os.read(self._fd, 8)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
