"""A fault of one virtual host and its retries, after 1, 2, 4 ... seconds up to RETRY_MAX.

Two faults use it (state.py says what each does): the built-in plumbing's
(a MASTER's addresses cannot be configured: it advertises as a leaving master
and asks again) and a unicast host's (no peer can be reached: BACKUP and
silent, one probe advertisement each retry). A fault stays until a try succeeds.
"""

from __future__ import annotations

RETRY_FIRST = 1.0  # seconds before the first retry; doubled up to the maximum
RETRY_MAX = 30.0
PLUMBING_FAULT = "the virtual addresses could not be configured"
NO_PEER_FAULT = "no peer can be reached"


class Fault:
    def __init__(self, unknown: str) -> None:
        """`unknown`: what the fault says when a failure gives no detail."""
        self.fault: str | None = None  # why it is faulted
        self.retry_at: float | None = None  # when to try again
        self._unknown = unknown
        self._delay = RETRY_FIRST

    def restart(self) -> None:
        """A new episode (the host became MASTER): the next retry comes soon again."""
        self._delay = RETRY_FIRST

    def succeeded(self) -> bool:
        """A try succeeded; whether that ended a fault."""
        self._delay = RETRY_FIRST
        if self.fault is None:
            return False
        self.fault = self.retry_at = None
        return True

    def failed(self, detail: str, *, now: float, retry: bool = True) -> bool:
        """A try failed; whether that started a fault. With `retry`, try again later."""
        first = self.fault is None
        self.fault = detail or self._unknown
        if retry:
            self.retry_at = now + self._delay
            self._delay = min(self._delay * 2, RETRY_MAX)
        return first

    def due(self, now: float) -> bool:
        """Whether it is time to try again (once per retry)."""
        if self.retry_at is None or now < self.retry_at:
            return False
        self.retry_at = None
        return True

    def cancel(self) -> None:
        """No more retries (for plumbing: the host no longer wants its addresses)."""
        self.retry_at = None
