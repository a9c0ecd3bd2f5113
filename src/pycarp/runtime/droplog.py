"""Logging dropped packets without letting a flood of them flood the log."""

from __future__ import annotations

import logging

from pycarp.core.actions import PacketDropped
from pycarp.core.errors import DropReason

log = logging.getLogger("pycarp")
DROP_LOG_INTERVAL = 10.0  # at most one log line per (reason, source) this often
DROP_LOG_LINES = 8  # and at most this many in all each interval: spoofed sources are many


class DropLog:
    """Logs dropped packets without letting a flood of them flood the log.

    One line per (reason, source) each interval, and `lines` in all: past
    them a drop is only counted, and the count logged once the interval ends.
    """

    def __init__(
        self, interval: float = DROP_LOG_INTERVAL, limit: int = 1024, lines: int = DROP_LOG_LINES
    ) -> None:
        self._interval, self._limit, self._lines = interval, limit, lines
        self._seen: dict[tuple[DropReason, str], tuple[float, int]] = {}
        self._began = -interval  # the current interval's start
        self._logged = self._unlogged = 0  # lines in it; drops its budget kept quiet

    def __call__(self, drop: PacketDropped, now: float) -> None:
        where = f"{drop.key}: " if drop.key else ""
        slot = (drop.reason, str(drop.source))
        last, quiet = self._seen.get(slot, (-self._interval, 0))
        if now - last < self._interval:
            self._seen[slot] = (last, quiet + 1)
            return
        if now - self._began >= self._interval:
            if self._unlogged:
                log.warning(
                    "%d more dropped packets not logged (too many sources or reasons at once)",
                    self._unlogged,
                )
            self._began, self._logged, self._unlogged = now, 0, 0
        if self._logged >= self._lines:
            self._unlogged += 1
            return
        self._logged += 1
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[slot] = (now, 0)
        more = f" (+{quiet} more since the last report)" if quiet else ""
        log.warning("%sdropped packet from %s: %s%s", where, drop.source, drop.detail, more)
