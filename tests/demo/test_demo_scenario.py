"""The demo's story on a simulated network: its phases, its messages, its Results, its refusals.

A virtual clock replaces time (and wait_until) in the scenario: sleeping
advances it, and on each 20 ms step the client's probe is answered by
whichever zone is MASTER (lost while none is). Zones change state after CARP's delays: 3 s to elect
or take over after a crash, at once on a graceful stop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from pycarp.demo import scenario as demo
from pycarp.demo.scenario import DemoError, Results, outage, scenario
from pycarp.lab.timeline import Outage, Timeline

STEP = 0.02
TAKEOVER = 3.0


@dataclass
class World:
    now: float = 1000.0
    state: dict[str, str] = field(default_factory=lambda: {"zoneA": "down", "zoneB": "down"})
    since: dict[str, float] = field(default_factory=dict)
    changes: list[tuple[float, str, str]] = field(default_factory=list)  # at, zone, state
    probing: bool = False
    last: dict[str, float] = field(default_factory=dict)
    takes_over: bool = True  # False: a backup that never takes over after a crash
    hands_over: bool = True  # False: a SIGTERM that hands over to no one

    def __post_init__(self) -> None:
        self.tl = Timeline(clock=lambda: self.now, t0=self.now)

    def later(self, delay: float, zone: str, state: str) -> None:
        self.changes.append((self.now + delay, zone, state))

    def set(self, zone: str, state: str) -> None:
        if self.state[zone] != state:
            self.since[zone] = self.now
        self.state[zone] = state

    def sleep(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = round(self.now + STEP, 6)
            for change in [c for c in self.changes if c[0] <= self.now]:
                self.changes.remove(change)
                self.set(change[1], change[2])
            if self.probing:
                master = next((z for z, s in self.state.items() if s == "MASTER"), None)
                self.tl.probe(master is not None, master, self.now)
                if master is not None:
                    self.last[master] = self.now

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        end = self.now + timeout
        while not condition() and self.now < end:
            self.sleep(STEP)
        return condition()

    def other(self, zone: str) -> str:
        return next(z for z in self.state if z != zone)


@dataclass
class FakeZone:
    world: World
    name: str

    def args(self) -> list[str]:
        return ["--vhid=101"]

    def start(self) -> None:
        alone = self.world.state[self.world.other(self.name)] != "MASTER"
        self.world.set(self.name, "INIT")
        self.world.later(TAKEOVER if alone else 0.5, self.name, "MASTER" if alone else "BACKUP")

    def crash(self) -> None:
        self.world.set(self.name, "down")
        if self.world.takes_over:
            self.world.later(TAKEOVER, self.world.other(self.name), "MASTER")

    def restart(self) -> None:
        self.start()

    def graceful_stop(self) -> bool:
        self.world.set(self.name, "down")
        if self.world.hands_over:
            self.world.later(0.05, self.world.other(self.name), "MASTER")
        return True


@dataclass
class FakeSampler:
    world: World

    @property
    def current(self) -> dict[str, str]:
        return self.world.state

    @property
    def since(self) -> dict[str, float]:
        return self.world.since

    def wait_for(self, zone: FakeZone, state: str, timeout: float) -> bool:
        return self.world.wait_until(lambda: self.world.state[zone.name] == state, timeout)


@dataclass
class FakeProber:
    world: World
    host: Any = field(default_factory=lambda: SimpleNamespace(ip="198.51.100.10"))

    def start(self, count: int) -> None:
        self.world.probing = True

    def answered_by(self, zone: str, since: float) -> bool:
        return self.world.last.get(zone, float("-inf")) > since


def play(monkeypatch: pytest.MonkeyPatch, world: World) -> tuple[list[str], Results]:
    monkeypatch.setattr(
        demo, "time", SimpleNamespace(monotonic=lambda: world.now, sleep=world.sleep)
    )
    monkeypatch.setattr(demo, "wait_until", world.wait_until)
    said: list[str] = []
    results = Results()
    zones = [FakeZone(world, "zoneA"), FakeZone(world, "zoneB")]
    try:
        scenario(said.append, world.tl, zones, FakeProber(world), FakeSampler(world), results)
    finally:
        world.probing = False
    return said, results


def test_the_story_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    said, results = play(monkeypatch, World())
    expected = [
        r"started pycarp in zoneA: pycarp --vhid=101",
        r"zoneA is MASTER after 3\.\d\d s \(alone on the segment\)",
        r"started pycarp in zoneB",
        r"zoneA is MASTER, zoneB is BACKUP",
        r"client 198\.51\.100\.10 probes 198\.51\.100\.200 every 20 ms",
        r"client: 198\.51\.100\.200 answered by zoneA \(the source MAC of the replies\)",
        r"crash zoneA: pycarp SIGKILLed, its link down",
        r"zoneB is MASTER 30[0-2]\d ms after the crash",
        r"client outage during the crash: 30[0-4]\d ms \(1[45]\d probes lost\)",
        r"restarted zoneA \(link up, pycarp started again\)",
        r"zoneA is BACKUP, zoneB stays MASTER \(no preemption\)",
        r"graceful stop of zoneB: SIGTERM to its pycarp",
        r"zoneA is MASTER \d\d ms after the SIGTERM; zoneB's pycarp exited",
        r"client outage during the graceful stop: \d\d ms \([0-4] probes lost\)",
    ]
    assert len(said) == len(expected), said
    for line, pattern in zip(said, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert results.crash is not None and results.graceful is not None
    assert 3000 <= results.crash.ms < 3050 and results.graceful.ms < 100
    assert results.measured() == [results.crash, results.graceful]


def test_a_backup_that_never_takes_over_fails_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DemoError, match="zoneB did not take over within 10 s"):
        play(monkeypatch, World(takes_over=False))


def test_a_graceful_stop_without_a_takeover_fails_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World(hands_over=False)
    with pytest.raises(DemoError, match="zoneA did not take over from the stopping zoneB"):
        play(monkeypatch, world)
    assert world.state == {"zoneA": "BACKUP", "zoneB": "down"}


def test_results_summary_and_a_half_run() -> None:
    results = Results(crash=Outage(1.0, 4.0, 149))
    assert results.summary() == "summary: crash outage 3000 ms, graceful stop outage nan ms"
    assert results.measured() == [results.crash]
    assert Results().measured() == []


def test_outage_says_the_longest_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    monkeypatch.setattr(demo, "time", SimpleNamespace(monotonic=lambda: world.now))
    for i, ok in enumerate([True, True, False, False, True, True]):
        world.tl.probe(ok, "zoneA" if ok else None, world.now + i * STEP)
    world.now += 1.0
    said: list[str] = []
    found = outage(said.append, world.tl, "crash", world.now - 1.0)
    assert found.lost == 2 and found.ms == pytest.approx(60.0)
    assert said == ["client outage during the crash: 60 ms (2 probes lost)"]


def test_outage_without_answers_is_a_demo_error(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    monkeypatch.setattr(demo, "time", SimpleNamespace(monotonic=lambda: world.now))
    with pytest.raises(DemoError, match="the client got no answer around the crash"):
        outage(print, world.tl, "crash", world.now)
