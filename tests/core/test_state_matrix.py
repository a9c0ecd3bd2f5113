"""Every state x every stimulus, with invariants (h2 style), then random walks.

The matrix builds a VirtualHost in each state it can be in, applies each
stimulus once and checks what must always hold. The hypothesis parts drive a
single host through random stimulus sequences, and a 2-3 node FakeLan through
random disturbances, checking that the LAN settles on exactly one master.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pycarp.core import auth, timing
from pycarp.core.actions import (
    Action,
    RunScript,
    SendAdvertisement,
    SendAnnouncement,
    State,
    StateChanged,
)
from pycarp.core.priority import LEAVING
from pycarp.core.state import STEPDOWN_HOLD, VirtualHost
from pycarp.core.timing import SUPPRESSED_ADVSKEW
from tests.helpers import LINK, MAC, FakeLan, make_advert, make_config, scripted

LOWER = IPv4Address("192.0.2.0")  # below our 192.0.2.1 in ucarp's order (last octet)
HIGHER = IPv4Address("192.0.2.2")
EPS = 1e-6


def new_host(**overrides: object) -> VirtualHost:
    return VirtualHost(scripted(advskew=100, **overrides), counter=7)


# -- the states a host can be in, and how to get there -------------------


def _init(vh: VirtualHost) -> float:
    return 0.0


def _backup(vh: VirtualHost) -> float:
    vh.start(now=0.0, link=LINK)
    return 1.0


def _backup_link_down(vh: VirtualHost) -> float:
    vh.start(now=0.0, link=LINK)
    vh.link_changed(up=False, now=0.5)
    return 1.0


def _backup_held(vh: VirtualHost) -> float:
    at = _master(vh)
    vh.force_backup(now=at + 0.1)
    return at + 0.2


def _master(vh: VirtualHost) -> float:
    vh.start(now=0.0, link=LINK)
    at = vh.next_deadline() or 0.0
    vh.on_timer(now=at)
    return at + 0.1


def _master_suppressed(vh: VirtualHost) -> float:
    now = _master(vh)
    for _ in range(3):
        vh.send_result(ok=False, now=now)
    return now + 0.1


def _master_after_link_flap(vh: VirtualHost) -> float:
    now = _master(vh)
    vh.link_changed(up=False, now=now)
    vh.link_changed(up=True, now=now + 1)
    at = vh.next_deadline() or 0.0
    vh.on_timer(now=at)
    return at + 0.1


def _stopped(vh: VirtualHost) -> float:
    now = _master(vh)
    vh.shutdown(now=now, graceful=False)
    return now + 1


BUILDERS: dict[str, tuple[Callable[[VirtualHost], float], State]] = {
    "init": (_init, State.INIT),
    "backup": (_backup, State.BACKUP),
    "backup-link-down": (_backup_link_down, State.BACKUP),
    "backup-held": (_backup_held, State.BACKUP),
    "master": (_master, State.MASTER),
    "master-suppressed": (_master_suppressed, State.MASTER),
    "master-after-link-flap": (_master_after_link_flap, State.MASTER),
    "stopped": (_stopped, State.INIT),
}


# -- stimuli: each returns (actions, the time it happened) ---------------

Stimulus = Callable[[VirtualHost, float], tuple[list[Action], float]]


def _advert(advbase: int, advskew: int, source: IPv4Address) -> Stimulus:
    def apply(vh: VirtualHost, now: float) -> tuple[list[Action], float]:
        advert = make_advert(vh.config, advbase=advbase, advskew=advskew, counter=99)
        return vh.receive(advert, source=source, now=now), now

    return apply


def _timer_due(vh: VirtualHost, now: float) -> tuple[list[Action], float]:
    at = max(now, vh.next_deadline() or now)
    return vh.on_timer(now=at), at


def _timer_early(vh: VirtualHost, now: float) -> tuple[list[Action], float]:
    at = (vh.next_deadline() or now + 1) - 0.001
    at = max(at, now)
    return vh.on_timer(now=at), at


STIMULI: dict[str, Stimulus] = {
    "advert-better": _advert(1, 10, HIGHER),
    "advert-worse": _advert(1, 200, HIGHER),
    "advert-equal-lower-ip": _advert(1, 100, LOWER),
    "advert-equal-higher-ip": _advert(1, 100, HIGHER),
    "advert-leaving": _advert(255, 255, HIGHER),
    "advert-slow-base": _advert(2, 0, HIGHER),
    "timer-due": _timer_due,
    "timer-early": _timer_early,
    "link-down": lambda vh, now: (vh.link_changed(up=False, now=now), now),
    "link-up": lambda vh, now: (vh.link_changed(up=True, now=now), now),
    "force-backup": lambda vh, now: (vh.force_backup(now=now), now),
    "shutdown": lambda vh, now: (vh.shutdown(now=now), now),
    "start": lambda vh, now: (vh.start(now=now, link=LINK), now),
    "send-failure": lambda vh, now: (vh.send_result(ok=False, now=now), now),
    "send-success": lambda vh, now: (vh.send_result(ok=True, now=now), now),
}


# -- invariants ------------------------------------------------------------


def check_invariants(vh: VirtualHost, before: State, actions: list[Action], now: float) -> None:
    deadline = vh.next_deadline()
    if vh.state is State.MASTER:
        assert deadline is not None
        # The advert sent as suppression lifts was timed with the raised skew (as
        # in ucarp's carp_send_ad), so allow the longer of the two intervals.
        slowest = timing.advert_interval(vh.config.advbase, max(vh.advskew, SUPPRESSED_ADVSKEW))
        assert deadline <= now + slowest.total + EPS
    elif vh.state is State.BACKUP and vh.link_up:
        assert deadline is not None
        assert now < deadline <= now + STEPDOWN_HOLD + vh.master_down_interval.total + EPS
    else:
        assert deadline is None

    state = before
    for i, action in enumerate(actions):
        assert action.key == vh.key
        if isinstance(action, StateChanged):
            assert action.old is state and action.new is not state
            state = action.new
        elif isinstance(action, RunScript) and action.which == "up":
            prev = actions[i - 1]
            assert isinstance(prev, StateChanged) and prev.new is State.MASTER
        elif isinstance(action, SendAdvertisement):
            assert state is State.MASTER  # only a master advertises (the last one included)
            advert = action.advert
            leaving = vh.leaving or vh.state is State.INIT  # a stop starts with 255/255
            assert (advert.vhid, advert.advbase, advert.advskew) in (
                (vh.config.vhid, vh.config.advbase, vh.advskew),
                *([(vh.config.vhid, LEAVING, LEAVING)] if leaving else []),
            )  # fmt: skip
            c = vh.config
            assert auth.verify(c.password, c.vhid, c.addresses, advert.counter, advert.digest)
            assert action.frames[0].payload[20:] == advert.encode()  # the datagram says it
        elif isinstance(action, SendAnnouncement):
            assert state is State.MASTER
            assert action.addresses == vh.config.addresses and action.mac == MAC
        elif isinstance(action, RunScript):
            assert len(action.commands) == len(vh.config.addresses)
    assert state is vh.state  # the reported transitions add up to the new state


MATRIX = [pytest.param(b, s, id=f"{b}/{s}") for b in BUILDERS for s in STIMULI]


@pytest.mark.parametrize(("builder", "stimulus"), MATRIX)
def test_every_state_times_every_stimulus(builder: str, stimulus: str) -> None:
    build, expected = BUILDERS[builder]
    vh = new_host()
    now = build(vh)
    assert vh.state is expected
    check_invariants(vh, vh.state, [], now)
    before = vh.state
    actions, at = STIMULI[stimulus](vh, now)
    check_invariants(vh, before, actions, at)
    # ...and the host keeps working afterwards.
    actions, at = _timer_due(vh, at + 0.01)
    check_invariants(vh, vh.state if not actions else before_of(actions, vh), actions, at)


def before_of(actions: list[Action], vh: VirtualHost) -> State:
    changes = [a for a in actions if isinstance(a, StateChanged)]
    return changes[0].old if changes else vh.state


# Expected outcomes of the interesting cells (the rest only obey the invariants).
OUTCOMES = {
    ("init", "start"): State.BACKUP,
    ("backup", "advert-better"): State.BACKUP,
    ("backup", "advert-worse"): State.BACKUP,  # no preempt
    ("backup", "advert-leaving"): State.MASTER,
    ("backup", "advert-slow-base"): State.BACKUP,  # 2 s < 3 s master-down
    ("backup", "timer-due"): State.MASTER,
    ("backup", "timer-early"): State.BACKUP,
    ("backup-link-down", "advert-leaving"): State.BACKUP,
    ("backup-link-down", "timer-due"): State.BACKUP,
    ("backup-link-down", "link-up"): State.BACKUP,
    ("backup-held", "timer-due"): State.MASTER,
    ("master", "advert-better"): State.BACKUP,
    ("master", "advert-worse"): State.MASTER,
    ("master", "advert-equal-lower-ip"): State.BACKUP,
    ("master", "advert-equal-higher-ip"): State.MASTER,
    ("master", "advert-slow-base"): State.MASTER,
    ("master", "link-down"): State.BACKUP,
    ("master", "force-backup"): State.BACKUP,
    ("master", "shutdown"): State.MASTER,  # handing over: it keeps the addresses for now
    ("master-suppressed", "advert-worse"): State.BACKUP,  # 200 < 240
    ("master-suppressed", "advert-equal-lower-ip"): State.BACKUP,
    ("master-suppressed", "advert-equal-higher-ip"): State.BACKUP,
    ("stopped", "start"): State.BACKUP,
    ("stopped", "timer-due"): State.INIT,
}


@pytest.mark.parametrize(("cell", "expected"), OUTCOMES.items(), ids=lambda v: str(v))
def test_matrix_outcomes(cell: tuple[str, str], expected: State) -> None:
    builder, stimulus = cell
    vh = new_host()
    now = BUILDERS[builder][0](vh)
    STIMULI[stimulus](vh, now)
    assert vh.state is expected


# -- hypothesis: one host, random stimulus sequences ----------------------


class OneHost(RuleBasedStateMachine):
    """Random inputs in random order; time only moves forward."""

    @initialize(
        advbase=st.integers(1, 3),
        advskew=st.integers(0, 254),
        deadratio=st.integers(1, 4),
        preempt=st.booleans(),
        neutral=st.booleans(),
        shutdown=st.booleans(),
        ignoreifstate=st.booleans(),
    )
    def build(
        self,
        advbase: int,
        advskew: int,
        deadratio: int,
        preempt: bool,
        neutral: bool,
        shutdown: bool,
        ignoreifstate: bool,
    ) -> None:
        config = scripted(
            advbase=advbase,
            advskew=advskew,
            deadratio=deadratio,
            preempt=preempt,
            neutral=neutral,
            shutdown=shutdown,
            ignoreifstate=ignoreifstate,
        )
        self.vh = VirtualHost(config, counter=0)
        self.now = 0.0

    def _do(self, actions: list[Action], at: float) -> None:
        before = before_of(actions, self.vh)
        self.now = at
        check_invariants(self.vh, before, actions, at)

    @rule()
    def start(self) -> None:
        self._do(self.vh.start(now=self.now, link=LINK), self.now)

    @rule(dt=st.floats(0, 5))
    def wait(self, dt: float) -> None:
        # The runtime never lets a deadline pass unprocessed: fire it on the way.
        deadline = self.vh.next_deadline()
        if deadline is not None and deadline <= self.now + dt:
            self._do(self.vh.on_timer(now=max(deadline, self.now)), max(deadline, self.now))
        else:
            self.now += dt

    @rule()
    def timer(self) -> None:
        actions, at = _timer_due(self.vh, self.now)
        self._do(actions, at)

    @rule(
        advbase=st.integers(0, 255),
        advskew=st.integers(0, 255),
        source=st.sampled_from([LOWER, HIGHER]),
    )
    def advert(self, advbase: int, advskew: int, source: IPv4Address) -> None:
        if advbase == 0 and advskew == 0:
            advskew = 1
        advert = make_advert(self.vh.config, advbase=advbase, advskew=advskew)
        self._do(self.vh.receive(advert, source=source, now=self.now), self.now)

    @rule(up=st.booleans())
    def link(self, up: bool) -> None:
        self._do(self.vh.link_changed(up=up, now=self.now), self.now)

    @rule()
    def force(self) -> None:
        self._do(self.vh.force_backup(now=self.now), self.now)

    @rule()
    def stop(self) -> None:
        self._do(self.vh.shutdown(now=self.now), self.now)

    @rule(ok=st.booleans())
    def send_result(self, ok: bool) -> None:
        self._do(self.vh.send_result(ok=ok, now=self.now), self.now)

    @invariant()
    def skew_is_sane(self) -> None:
        if hasattr(self, "vh"):
            assert self.vh.advskew in (self.vh.config.advskew, 240)


TestOneHost = OneHost.TestCase
TestOneHost.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


# -- hypothesis: a small LAN under random disturbances ---------------------


@dataclass(frozen=True)
class Disturbance:
    at: float  # seconds after the previous one
    kind: str
    who: int
    other: int


DISTURBANCES = st.builds(
    Disturbance,
    at=st.floats(0, 6),
    kind=st.sampled_from(
        [
            "silence", "unsilence", "partition", "heal", "link-down", "link-up",
            "force", "restart", "send-failures",
        ]
    ),
    who=st.integers(0, 2),
    other=st.integers(0, 2),
)  # fmt: skip

NODE = st.fixed_dictionaries(
    {
        "advbase": st.integers(1, 2),
        "advskew": st.integers(0, 255),
        "deadratio": st.integers(1, 3),
        "preempt": st.booleans(),
        "last_octet": st.integers(1, 254),
    }
)


def settle_time(lan: FakeLan) -> float:
    """Longer than any master-down, step-down hold and a few adverts put together."""
    longest = max(m.host.master_down_interval.total for m in lan)
    return 3 * (longest + STEPDOWN_HOLD) + 10


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=st.lists(NODE, min_size=2, max_size=3, unique_by=lambda n: n["last_octet"]),
    disturbances=st.lists(DISTURBANCES, max_size=12),
    latency=st.sampled_from([0.0, 0.01]),
    links_end_up=st.booleans(),
)
def test_lan_settles_on_one_master(
    nodes: list[dict[str, int]],
    disturbances: list[Disturbance],
    latency: float,
    links_end_up: bool,
) -> None:
    lan = FakeLan(latency=latency)
    for i, n in enumerate(nodes):
        config = make_config(
            srcip=f"192.0.2.{n['last_octet']}",
            addresses=("198.51.100.50",),
            advbase=n["advbase"],
            advskew=n["advskew"] if (n["advbase"], n["advskew"]) != (255, 255) else 0,
            deadratio=n["deadratio"],
            preempt=bool(n["preempt"]),
        )
        lan.add(config, name=str(i), counter=(i + 1) << 40)
    lan.start()
    names = list(lan.members)
    for d in disturbances:
        lan.run_for(d.at)
        who, other = names[d.who % len(names)], names[d.other % len(names)]
        if d.kind == "silence":
            lan.silence(who)
        elif d.kind == "unsilence":
            lan.silence(who, False)
        elif d.kind == "partition":
            lan.partition([who, other], [n for n in names if n not in (who, other)])
        elif d.kind == "heal":
            lan.heal()
        elif d.kind in ("link-down", "link-up"):
            lan.link(who, up=d.kind == "link-up")
        elif d.kind == "force":
            lan.force_backup(who)
        elif d.kind == "restart":
            # A new process starts only once the old one has stopped: a hard stop
            # here, or a graceful one that ran to its end (hand-over or deadline).
            lan.shutdown(who, graceful=d.other % 2 == 0)
            lan.run_for(lan.member(who).host.master_down_interval.total + 0.01)
            lan.start(who)
        elif d.kind == "send-failures":
            lan.member(who).fail_next = 3 + d.other
        for m in lan:
            check_invariants(m.host, m.host.state, [], lan.now)

    lan.heal()
    if links_end_up:
        for name in names:
            lan.link(name, up=True)
    lan.run_for(settle_time(lan))

    listening = [m for m in lan if m.host.link_up]
    for _ in range(10):  # and it stays settled
        masters = lan.masters()
        assert len(masters) <= 1, f"several masters at t={lan.now}: {masters}"
        if listening:
            assert len(masters) == 1, f"no master at t={lan.now}"
            assert lan.member(masters[0]).host.link_up
        lan.run_for(1.0)
    for m in lan:
        check_invariants(m.host, m.host.state, [], lan.now)
