"""Health checks and demotion groups: when each check runs, what its results mean,
and how many reasons each group has to demote.

A check runs at start and then every `interval` seconds from the start of
its last run, never twice at once (RunCheck goes out only when no run of it
is under way). `rise` passes in a row make it healthy, `fall` failures in a
row failing; it starts out neither ("starting"), and demotes until it has
passed, so that a freshly booted host does not win before its service is up.

A group's count is the number of its checks that are not healthy plus a
manual part (`pycarp demote`), which never goes below 0; the count is
clamped to 0..255, the range of the CARP header's demote byte.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable

from pycarp.core.actions import CheckReported, RunCheck
from pycarp.core.checkconfig import MAX_GROUP, CheckConfig
from pycarp.core.errors import ConfigError


class CheckState(enum.Enum):
    STARTING = "starting"
    HEALTHY = "healthy"
    FAILING = "failing"


class Check:
    """One check's schedule and its run of results."""

    def __init__(self, config: CheckConfig) -> None:
        self.config = config
        self.state = CheckState.STARTING
        self.since: float | None = None  # when the state last changed (None: never)
        self.passes = self.fails = 0  # in a row
        self.last_ok: bool | None = None
        self.detail = ""
        self.last_at: float | None = None
        self.results: Counter[bool] = Counter()
        self.next_at: float | None = None  # when the next run is due; None: not scheduled
        self.running = False
        self._started_at = 0.0

    @property
    def demoting(self) -> bool:
        return self.state is not CheckState.HEALTHY

    def due(self, now: float) -> RunCheck | None:
        if self.next_at is None or now < self.next_at:
            return None
        self.next_at, self._started_at, self.running = None, now, True
        return RunCheck(self.config)

    def result(self, ok: bool, detail: str, *, now: float) -> CheckReported:
        self.running = False
        self.next_at = max(self._started_at + self.config.interval, now)
        self.last_ok, self.detail, self.last_at = ok, detail, now
        self.results[ok] += 1
        if ok:
            self.passes, self.fails = self.passes + 1, 0
            new = CheckState.HEALTHY if self.passes >= self.config.rise else self.state
        else:
            self.passes, self.fails = 0, self.fails + 1
            new = CheckState.FAILING if self.fails >= self.config.fall else self.state
        changed = new is not self.state
        if changed:
            self.state, self.since = new, now
        return CheckReported(self.config.name, ok, detail, self.state.value, changed)


class Health:
    """Every check and demotion group of one process."""

    def __init__(self, checks: Iterable[CheckConfig] = (), groups: Iterable[str] = ()) -> None:
        self.checks: dict[str, Check] = {}
        self.manual: dict[str, int] = {}
        self.configure(checks, groups)

    def configure(self, checks: Iterable[CheckConfig], groups: Iterable[str] = ()) -> None:
        """Take a new set of checks (a reload): an unchanged check keeps its state and schedule.

        A group that stays keeps its manual part.
        """
        new: dict[str, Check] = {}
        for config in checks:
            if config.name in new:
                raise ConfigError("name", f"check {config.name!r} is configured twice")
            old = self.checks.get(config.name)
            new[config.name] = old if old is not None and old.config == config else Check(config)
        self.checks = new
        names = {*groups, *(c.config.demotes for c in new.values())}
        self.manual = {name: self.manual.get(name, 0) for name in sorted(names)}

    @property
    def groups(self) -> list[str]:
        return list(self.manual)

    def count(self, group: str) -> int:
        failing = sum(1 for c in self.checks.values() if c.config.demotes == group and c.demoting)
        return min(MAX_GROUP, failing + self.manual.get(group, 0))

    def members(self, group: str) -> list[Check]:
        return [c for c in self.checks.values() if c.config.demotes == group]

    def next_deadline(self) -> float | None:
        due = [c.next_at for c in self.checks.values() if c.next_at is not None]
        return min(due, default=None)

    def start(self, *, now: float) -> list[RunCheck]:
        """Schedule every check that has not run yet for now."""
        for check in self.checks.values():
            if check.next_at is None and not check.running:
                check.next_at = now
        return self.on_timer(now=now)

    def on_timer(self, *, now: float) -> list[RunCheck]:
        runs = (check.due(now) for check in self.checks.values())
        return [run for run in runs if run is not None]

    def result(self, name: str, ok: bool, detail: str, *, now: float) -> CheckReported | None:
        """A run of check `name` ended; None for a check that is gone (a reload)."""
        check = self.checks.get(name)
        if check is None or not check.running:
            return None  # removed, or replaced, while it ran
        return check.result(ok, detail, now=now)

    def adjust(self, group: str, by: int) -> int:
        """Change a group's manual part by `by` (never below 0); its new manual part.

        ValueError for a group this process does not have.
        """
        if group not in self.manual:
            known = ", ".join(self.manual) or "none"
            raise ValueError(f"no demotion group {group!r} (groups here: {known})")
        self.manual[group] = max(0, min(MAX_GROUP, self.manual[group] + by))
        return self.manual[group]


def host_demotion(health: Health, track: Iterable[str]) -> int:
    """The demote count of a host that tracks these groups: their sum, at most 255."""
    return min(MAX_GROUP, sum(health.count(group) for group in track))
