"""Built-in plumbing's bookkeeping for one virtual host: the fault and its retries.

While a MASTER's addresses cannot be configured the host is faulted (it then
advertises as a leaving master, see state.py) and asks again after 1, 2, 4 ...
seconds, up to PLUMB_RETRY_MAX. The fault stays until an add succeeds.
"""

from __future__ import annotations

# Seconds before the first retry of a failed AddAddresses; doubled up to the maximum.
PLUMB_RETRY_FIRST = 1.0
PLUMB_RETRY_MAX = 30.0
UNKNOWN_FAULT = "the virtual addresses could not be configured"


class Plumbing:
    def __init__(self) -> None:
        self.fault: str | None = None  # why the addresses could not be configured
        self.retry_at: float | None = None  # when to ask for the addresses again
        self._delay = PLUMB_RETRY_FIRST

    def restart(self) -> None:
        """A new episode (the host became MASTER): the next retry comes soon again."""
        self._delay = PLUMB_RETRY_FIRST

    def succeeded(self) -> bool:
        """An add succeeded; whether that ended a fault."""
        self._delay = PLUMB_RETRY_FIRST
        if self.fault is None:
            return False
        self.fault = self.retry_at = None
        return True

    def failed(self, detail: str, *, now: float, retry: bool) -> bool:
        """An add failed; whether that started a fault. With `retry`, ask again later."""
        first = self.fault is None
        self.fault = detail or UNKNOWN_FAULT
        if retry:
            self.retry_at = now + self._delay
            self._delay = min(self._delay * 2, PLUMB_RETRY_MAX)
        return first

    def due(self, now: float) -> bool:
        """Whether it is time to ask again (once per retry)."""
        if self.retry_at is None or now < self.retry_at:
            return False
        self.retry_at = None
        return True

    def cancel(self) -> None:
        """No more retries: the host is no longer a MASTER that wants its addresses."""
        self.retry_at = None
