"""Health checks' schedule, rise and fall, and demotion groups' counts (core/health.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycarp.core.actions import RunCheck
from pycarp.core.checkconfig import CheckConfig
from pycarp.core.errors import ConfigError
from pycarp.core.health import CheckState, Health

WEB = CheckConfig(name="web", type="command", command=("/bin/true",), interval=2, rise=2, fall=2)


def test_every_check_runs_at_start_and_never_twice_at_once() -> None:
    health = Health([WEB])
    assert health.start(now=0.0) == [RunCheck(WEB)]
    assert health.next_deadline() is None  # under way: nothing to schedule
    assert health.on_timer(now=10.0) == []
    health.result("web", True, "exit status 0", now=0.5)
    assert health.next_deadline() == 2.0  # from the start of the run, not its end
    assert health.on_timer(now=1.9) == []
    assert health.on_timer(now=2.0) == [RunCheck(WEB)]


def test_a_run_longer_than_the_interval_is_followed_at_once() -> None:
    health = Health([WEB])
    health.start(now=0.0)
    health.result("web", False, "timed out after 1 s", now=3.5)
    assert health.next_deadline() == 3.5


def test_rise_and_fall_need_results_in_a_row() -> None:
    health = Health([WEB])
    check = health.checks["web"]
    health.start(now=0.0)
    said = [health.result("web", True, "ok", now=0.1)]
    assert check.state is CheckState.STARTING  # one pass of two
    health.on_timer(now=2.0)
    said.append(health.result("web", True, "ok", now=2.1))
    assert check.state is CheckState.HEALTHY and check.since == 2.1
    for t in (4.0, 6.0):
        health.on_timer(now=t)
        said.append(health.result("web", t == 6.0, "exit status 1", now=t + 0.1))
    assert check.state is CheckState.HEALTHY  # the failures were not in a row
    for t in (8.0, 10.0):
        health.on_timer(now=t)
        said.append(health.result("web", False, "exit status 1", now=t + 0.1))
    assert check.state is CheckState.FAILING
    assert [s.changed for s in said if s] == [False, True, False, False, False, True]
    assert check.results[True] == 3 and check.results[False] == 3


def test_a_starting_check_demotes_its_group_until_it_has_passed() -> None:
    health = Health([WEB], groups=["maintenance"])
    assert health.groups == ["maintenance", "web"]
    assert health.count("web") == 1 and health.count("maintenance") == 0
    health.start(now=0.0)
    for t in (0.0, 2.0):
        health.on_timer(now=t)
        health.result("web", True, "ok", now=t)
    assert health.count("web") == 0


def test_the_manual_part_never_goes_below_zero_and_the_count_stays_in_a_byte() -> None:
    health = Health([], groups=["m"])
    assert health.adjust("m", -5) == 0 and health.count("m") == 0
    assert health.adjust("m", 200) == 200
    assert health.adjust("m", 200) == 255 and health.count("m") == 255
    with pytest.raises(ValueError, match="no demotion group 'x'"):
        health.adjust("x", 1)


def test_checks_share_a_group_and_count_one_each() -> None:
    db = CheckConfig(name="db", type="tcp", host="198.51.100.9", port=5432, group="web")
    health = Health([WEB, db])
    assert health.groups == ["web"] and health.count("web") == 2
    assert [c.config.name for c in health.members("web")] == ["web", "db"]


def test_a_reload_keeps_an_unchanged_check_and_restarts_a_changed_one() -> None:
    health = Health([WEB], groups=["m"])
    health.adjust("m", 2)
    health.start(now=0.0)
    health.result("web", True, "ok", now=0.1)
    kept = health.checks["web"]
    health.configure([WEB], groups=["m"])
    assert health.checks["web"] is kept and health.manual["m"] == 2
    faster = CheckConfig(name="web", type="command", command=("/bin/true",), interval=1)
    health.configure([faster])
    assert health.checks["web"] is not kept and "m" not in health.manual
    assert health.result("web", True, "late", now=1.0) is None  # the old run's result
    with pytest.raises(ConfigError, match="configured twice"):
        health.configure([WEB, WEB])


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5))
def test_state_follows_the_last_results(results: list[bool], rise: int, fall: int) -> None:
    config = CheckConfig(name="c", type="command", command=("/bin/true",), rise=rise, fall=fall)
    health = Health([config])
    check = health.checks["c"]
    now = 0.0
    health.start(now=now)
    for ok in results:
        health.result("c", ok, "", now=now)
        now += 2.0
        assert health.on_timer(now=now) == [RunCheck(config)]
        assert check.passes == 0 or check.fails == 0
        if check.passes >= rise:
            assert check.state is CheckState.HEALTHY
        if check.fails >= fall:
            assert check.state is CheckState.FAILING
        assert health.count("c") == (0 if check.state is CheckState.HEALTHY else 1)
    if not any(results[i : i + rise] == [True] * rise for i in range(len(results))):
        assert check.state is not CheckState.HEALTHY  # never `rise` passes in a row
