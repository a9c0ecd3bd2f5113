"""ucarp's rule for failing sends: a host that cannot advertise stops preempting.

Three failed sends in a row raise the advertised skew to at least
timing.SUPPRESSED_ADVSKEW; three successes in a row lift it again.
"""

from __future__ import annotations

SEND_ERRORS_TO_SUPPRESS = 3
SENDS_TO_RECOVER = 3


class SendErrors:
    def __init__(self) -> None:
        self.suppressed = False
        self._errors = 0
        self._successes = 0

    def failed(self) -> bool:
        """A send failed; whether that starts the suppression."""
        self._successes = 0
        self._errors += 1
        if self._errors == SEND_ERRORS_TO_SUPPRESS and not self.suppressed:
            self.suppressed = True
            return True
        return False

    def succeeded(self) -> bool:
        """A send succeeded; whether that lifts the suppression."""
        if not self.suppressed:
            self._errors = 0
            return False
        self._successes += 1
        if self._successes >= SENDS_TO_RECOVER:
            self.suppressed = False
            self._errors = self._successes = 0
            return True
        return False
