"""bench/failover.py's pure parts: where each trial stops the master, and its one-line report."""

from __future__ import annotations

from bench import failover


def test_stops_are_spread_evenly_over_the_interval_and_repeat() -> None:
    phases = [failover.kill_phase(n, 5) for n in range(5)]
    assert phases == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert failover.kill_phase(5, 5) == 0.1 and failover.kill_phase(0, 1) == 0.5


def test_reports() -> None:
    ok = {"kind": "pycarp", "timing": "1s", "mode": "crash", "trial": 2, "status": "ok",
          "outage_ms": 2667.9, "takeover_s": 3.0011, "bound_s": 3.0}  # fmt: skip
    assert failover.describe(ok) == (
        "pycarp/1s crash #2: outage 2668 ms, takeover 3.001 s (bound 3.000)"
    )
    bad = {**ok, "status": "unsettled", "error": "no stable pair"}
    assert failover.describe(bad) == "pycarp/1s crash #2: unsettled: no stable pair"
    start = {"kind": "ucarp", "timing": "100ms", "trial": 0, "status": "ok", "first_advert_s": 0.25}
    assert failover.describe(start) == "ucarp/100ms start-up #0: first advertisement 0.250 s"
