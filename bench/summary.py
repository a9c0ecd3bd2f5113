"""The results in short: one row per measurement and a column per kind, and the issue's targets.

Pure functions of the sections' raw trials (tests/bench/test_bench_summary.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Rows = Sequence[Mapping[str, Any]]
LABELS = {"1s": "1 s", "100ms": "~100 ms", "25ms": "~25 ms"}


def _ok(rows: Rows, **match: Any) -> list[Mapping[str, Any]]:
    return [
        r for r in rows if r.get("status") == "ok" and all(r.get(k) == v for k, v in match.items())
    ]


def median_of(rows: Rows, key: str, **match: Any) -> tuple[float | None, int, int]:
    """(median of key over the ok rows matching, how many had it, how many rows matched)."""
    matched = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    values = [float(r[key]) for r in _ok(rows, **match) if r.get(key) is not None]
    return (statistics.median(values) if values else None), len(values), len(matched)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _counted(text: str, n: int, of: int) -> str:
    """A value, and "(n of m)" when some trials gave none."""
    return text if n == of or text == "-" else f"{text} ({n} of {of})"


def summary_rows(results: Mapping[str, Any], kinds: Sequence[str]) -> list[dict[str, Any]]:
    """[{"measurement": ..., kind: text, ...}] for the printed table."""
    rows: list[dict[str, Any]] = []

    def row(name: str, cell: Callable[[str], str]) -> None:
        rows.append({"measurement": name, **{k: cell(k) for k in kinds}})

    failover = results.get("failover", [])
    for timing in _timings(failover):
        for mode in ("crash", "graceful"):
            cases = [r for r in failover if r.get("timing") == timing and r.get("mode") == mode]
            if not cases:
                continue
            n = max(sum(1 for r in cases if r["kind"] == k) for k in kinds)
            label = f"{mode} outage, {LABELS.get(timing, timing)} adverts (median of {n})"
            row(label, lambda k, t=timing, m=mode: _outage(failover, k, t, m))
            if mode == "crash":
                row(f"last advert to takeover, {LABELS.get(timing, timing)} (median; bound)",
                    lambda k, t=timing: _takeover(failover, k, t))  # fmt: skip
    startup = results.get("startup", [])
    if startup:
        row("start-up: exec to first advert (less master-down)", lambda k: _startup(startup, k))
    interval = results.get("interval", [])
    for load in ("idle", "busy"):
        if any(r.get("load") == load for r in interval):
            what = "idle" if load == "idle" else "both cores busy"
            timing = LABELS.get(str(interval[0].get("timing")), "?")
            row(
                f"interval error p50 / p99 / max, {timing}, {what}",
                lambda k, ld=load: _errors(interval, k, ld),
            )
    stability = results.get("stability", [])
    for timing in _timings(stability):
        for phase in _phases(stability):
            label = f"false takeovers, {LABELS.get(timing, timing)}, {phase} (largest gap)"
            row(label, lambda k, t=timing, p=phase: _stable(stability, k, t, p))
    for timing in _timings(stability):
        for phase in _phases(stability):
            label = f"interval error p50 / p99 / max, {LABELS.get(timing, timing)}, {phase}"
            row(label, lambda k, t=timing, p=phase: _pair_errors(stability, k, t, p))
    idle = results.get("idle", [])
    for size in sorted({int(r["vhosts"]) for r in idle}):
        row(f"idle CPU per 30 s, {size} vhosts, master / backup",
            lambda k, n=size: _idle(idle, k, n, "cpu_ms_per_30s", "ms"))  # fmt: skip
        row(f"RSS, {size} vhosts, master / backup",
            lambda k, n=size: _idle(idle, k, n, "rss_mib", "MiB"))  # fmt: skip
    return rows


def _timings(rows: Rows) -> list[str]:
    order = ["1s", "100ms", "25ms"]
    found = {str(r.get("timing")) for r in rows}
    return [t for t in order if t in found] + sorted(found - set(order))


def _phases(rows: Rows) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r.get("phase") not in seen:
            seen.append(str(r.get("phase")))
    return seen


def _outage(rows: Rows, kind: str, timing: str, mode: str) -> str:
    value, n, of = median_of(rows, "outage_ms", kind=kind, timing=timing, mode=mode)
    if of == 0:
        return "-"
    if value is None:
        statuses = {
            r.get("status")
            for r in rows
            if (r.get("kind"), r.get("timing"), r.get("mode")) == (kind, timing, mode)
        }
        return "no stable pair" if statuses == {"unsettled"} else "failed"
    return _counted(_ms(value), n, of)


def _takeover(rows: Rows, kind: str, timing: str) -> str:
    value, n, of = median_of(rows, "takeover_s", kind=kind, timing=timing, mode="crash")
    bound = next(
        (r["bound_s"] for r in rows if (r.get("kind"), r.get("timing")) == (kind, timing)), None
    )
    if of == 0 or value is None:
        return "-"
    return _counted(f"{value:.3f} s ({bound:.3f})", n, of)


def _startup(rows: Rows, kind: str) -> str:
    value, n, of = median_of(rows, "first_advert_s", kind=kind)
    over, _, _ = median_of(rows, "overhead_s", kind=kind)
    if value is None or over is None:
        return "-"
    return _counted(f"{value:.3f} s ({over:.3f} s)", n, of)


def _errors(rows: Rows, kind: str, load: str) -> str:
    found = _ok(rows, kind=kind, load=load)
    if not found:
        return "-"
    r = found[0]
    return f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.2f} ms"


def _pair_errors(rows: Rows, kind: str, timing: str, phase: str) -> str:
    found = _ok(rows, kind=kind, timing=timing, phase=phase)
    if not found or "master_p99_ms" not in found[0]:
        return "-"
    r = found[0]
    return f"{r['master_p50_ms']:.2f} / {r['master_p99_ms']:.2f} / {r['master_max_ms']:.2f} ms"


def _stable(rows: Rows, kind: str, timing: str, phase: str) -> str:
    matched = [
        r for r in rows if (r.get("kind"), r.get("timing"), r.get("phase")) == (kind, timing, phase)
    ]
    if not matched:
        return "-"
    r = matched[0]
    if r.get("status") != "ok":
        return "no stable pair"
    return f"{r['false_takeovers']} ({r['largest_gap_ms']:.0f} ms)"


def _idle(rows: Rows, kind: str, size: int, key: str, unit: str) -> str:
    found = [r for r in rows if r.get("kind") == kind and r.get("vhosts") == size]
    if not found or found[0].get("status") not in ("ok", "unstable"):
        return "-" if not found else "failed"
    r = found[0]
    text = f"{r['master'][key]:.1f} / {r['backup'][key]:.1f} {unit}"
    return text if r["status"] == "ok" else f"{text} (unstable)"


def format_table(rows: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> str:
    """A Markdown table: the measurement, then a column per kind."""
    lines = [
        "| measurement | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]
    for r in rows:
        lines.append(f"| {r['measurement']} | " + " | ".join(str(r[k]) for k in kinds) + " |")
    return "\n".join(lines)


# --- the targets, for pycarp's kinds ---------------------------------------------


def check_targets(results: Mapping[str, Any], kinds: Sequence[str]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (None: not measured)."""
    out = []
    failover = results.get("failover", [])
    interval = results.get("interval", [])
    stability = results.get("stability", [])
    for kind in [k for k in kinds if k.startswith("pycarp")]:
        for timing, limit in (("100ms", 350.0), ("25ms", 100.0)):
            value, n, _ = median_of(failover, "outage_ms", kind=kind, timing=timing, mode="crash")
            out.append(_target(f"{kind}: crash outage with {LABELS[timing]} adverts, median of {n}",
                               value, "<", limit, "ms"))  # fmt: skip
        for load, limit in (("idle", 0.3), ("busy", 1.0)):
            found = _ok(interval, kind=kind, load=load)
            value = float(found[0]["p99_ms"]) if found else None
            timing = LABELS.get(str(found[0]["timing"]), "?") if found else "1 s"
            name = f"{kind}: interval error p99, {timing} adverts, {load}"
            out.append(_target(name, value, "<=", limit, "ms"))
        phases = [r for r in stability if r.get("kind") == kind]
        total = (
            None
            if not phases or any(r.get("status") != "ok" for r in phases)
            else sum(int(r["false_takeovers"]) for r in phases)
        )
        seconds = sum(float(r.get("seconds", 0)) for r in phases)
        out.append(_target(f"{kind}: false takeovers over {seconds:.0f} s of sub-second phases",
                           total, "<=", 0, ""))  # fmt: skip
    return out


def _target(name: str, value: float | None, op: str, limit: float, unit: str) -> dict[str, Any]:
    met = None if value is None else (value < limit if op == "<" else value <= limit)
    return {"target": f"{name} {op} {limit:g}{(' ' + unit) if unit else ''}", "value": value,
            "limit": limit, "unit": unit, "met": met}  # fmt: skip


def format_targets(checks: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for c in checks:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[c["met"]]
        value = (
            ""
            if c["value"] is None
            else f": {c['value']:g}{(' ' + c['unit']) if c['unit'] else ''}"
        )
        lines.append(f"- {verdict}: {c['target']}{value}")
    return "\n".join(lines)
