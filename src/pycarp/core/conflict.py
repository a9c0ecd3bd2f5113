"""Digest conflicts: advertisements for one of our vhids that keep failing the digest.

One bad digest may be noise; several in a row mean a peer with another
password, or a second cluster on the same vhid. That is shown for as long as
it lasts, and said in the log when it begins and when it ends, not per packet.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycarp.core.packet import Address

CONFLICT_AFTER = 3  # bad digests, none QUIET_INTERVALS apart, make a conflict
QUIET_INTERVALS = 3  # master-down intervals without a bad digest end it


@dataclass
class Episode:
    source: Address  # the latest sender of a bad digest
    since: float  # monotonic: the first bad digest
    last: float
    count: int = 1


class DigestConflict:
    """The bad digests of one virtual host; `quiet`: the seconds without one that end it."""

    def __init__(self, quiet: float) -> None:
        self.quiet = quiet
        self.episode: Episode | None = None

    @property
    def active(self) -> bool:
        return self.episode is not None and self.episode.count >= CONFLICT_AFTER

    def failed(self, source: Address, *, now: float) -> str | None:
        """A bad digest arrived; returns what to log if that makes a conflict begin."""
        ended = self.expire(now=now)
        e = self.episode
        if e is None:
            self.episode = Episode(source, now, now)
            return ended
        e.source, e.last, e.count = source, now, e.count + 1
        if e.count != CONFLICT_AFTER:
            return ended
        return (
            f"advertisements for this vhid keep failing the digest (from {source}): a peer "
            "with another password, or another cluster on the same vhid"
        )

    def expire(self, *, now: float) -> str | None:
        """Ends an episode that has been quiet long enough; returns what to log, if anything."""
        e = self.episode
        if e is None or now - e.last < self.quiet:
            return None
        was_active, self.episode = self.active, None
        if not was_active:
            return None
        return (
            f"digest conflict over: no bad digest for {self.quiet:g} s "
            f"({e.count} in all, the last from {e.source})"
        )

    def shown(self) -> tuple[str, float, int] | None:
        """(source, since, count) while a conflict lasts, for status; else None."""
        e = self.episode
        if e is None or e.count < CONFLICT_AFTER:
            return None
        return str(e.source), e.since, e.count

    def describe(self) -> str | None:
        """One phrase for summaries while a conflict lasts ("digest conflict: ..."), else None."""
        shown = self.shown()
        if shown is None:
            return None
        source, _, count = shown
        return f"digest conflict: {count} bad digests, the last from {source}"
