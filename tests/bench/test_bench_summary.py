"""bench/summary.py: the table and the targets from raw trials."""

from __future__ import annotations

from typing import Any

from bench import summary

KINDS = ["pycarp", "keepalived"]


def _crash(kind: str, timing: str, outage: float, status: str = "ok") -> dict[str, Any]:
    return {"kind": kind, "timing": timing, "mode": "crash", "status": status, "trial": 0,
            "outage_ms": outage, "takeover_s": 0.306, "bound_s": 0.305}  # fmt: skip


RESULTS: dict[str, Any] = {
    "failover": [
        _crash("pycarp", "100ms", 300.0),
        _crash("pycarp", "100ms", 200.0),
        _crash("pycarp", "100ms", 250.0),
        _crash("keepalived", "100ms", 320.0),
        _crash("keepalived", "100ms", 0.0, status="unsettled"),
        _crash("pycarp", "25ms", 120.0),
    ],
    "interval": [
        {
            "kind": "pycarp",
            "timing": "1s",
            "load": "idle",
            "status": "ok",
            "p50_ms": 0.1,
            "p99_ms": 0.25,
            "max_ms": 0.3,
        },
        {
            "kind": "pycarp",
            "timing": "1s",
            "load": "busy",
            "status": "ok",
            "p50_ms": 0.1,
            "p99_ms": 1.5,
            "max_ms": 2.0,
        },
    ],
    "stability": [
        {
            "kind": "pycarp",
            "timing": "100ms",
            "phase": "cpu",
            "status": "ok",
            "seconds": 60,
            "false_takeovers": 0,
            "largest_gap_ms": 110.0,
        },
        {
            "kind": "keepalived",
            "timing": "100ms",
            "phase": "cpu",
            "status": "unsettled",
            "seconds": 60,
        },
    ],
    "idle": [
        {
            "kind": "pycarp",
            "vhosts": 1,
            "status": "ok",
            "master": {"cpu_ms_per_30s": 6.0, "rss_mib": 30.0},
            "backup": {"cpu_ms_per_30s": 4.0, "rss_mib": 29.5},
        },
    ],
}


def test_the_table_has_a_row_per_measurement_and_a_column_per_kind() -> None:
    rows = summary.summary_rows(RESULTS, KINDS)
    by = {r["measurement"]: r for r in rows}
    crash = by["crash outage, ~100 ms adverts (median of 3)"]
    assert crash["pycarp"] == "250 ms"
    assert crash["keepalived"] == "320 ms (1 of 2)"
    assert by["last advert to takeover, ~100 ms (median; bound)"]["pycarp"] == "0.306 s (0.305)"
    assert by["interval error p50 / p99 / max, 1 s, idle"]["pycarp"] == "0.10 / 0.25 / 0.30 ms"
    assert by["interval error p50 / p99 / max, 1 s, idle"]["keepalived"] == "-"
    stable = by["false takeovers, ~100 ms, cpu (largest gap)"]
    assert (stable["pycarp"], stable["keepalived"]) == ("0 (110 ms)", "no stable pair")
    assert by["idle CPU per 30 s, 1 vhosts, master / backup"]["pycarp"] == "6.0 / 4.0 ms"
    table = summary.format_table(rows, KINDS).splitlines()
    assert table[0] == "| measurement | pycarp | keepalived |"
    assert len(table) == 2 + len(rows)


def test_targets_are_met_missed_or_not_measured() -> None:
    checks = {c["target"]: c for c in summary.check_targets(RESULTS, KINDS)}
    assert {c["target"].split(":")[0] for c in checks.values()} == {"pycarp"}
    assert checks["pycarp: crash outage with ~100 ms adverts, median of 3 < 350 ms"]["met"] is True
    assert checks["pycarp: crash outage with ~25 ms adverts, median of 1 < 100 ms"]["met"] is False
    assert checks["pycarp: interval error p99, 1 s adverts, idle <= 0.3 ms"]["met"] is True
    assert checks["pycarp: interval error p99, 1 s adverts, busy <= 1 ms"]["met"] is False
    assert checks["pycarp: false takeovers over 60 s of sub-second phases <= 0"]["met"] is True
    none = summary.check_targets({}, ["pycarp"])
    assert {c["met"] for c in none} == {None}
    text = summary.format_targets(list(checks.values()))
    assert (
        "- MISSED: pycarp: crash outage with ~25 ms adverts, median of 1 < 100 ms: 120 ms" in text
    )
