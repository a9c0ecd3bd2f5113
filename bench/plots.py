"""The bench's PNGs (matplotlib, the `bench` extra): one per section, from the raw trials."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COLOURS = {"pycarp": "tab:blue", "pycarp-vrrp3": "tab:cyan", "keepalived": "tab:green",
           "ucarp": "tab:orange"}  # fmt: skip
LABELS = {"1s": "1 s", "100ms": "~100 ms", "25ms": "~25 ms"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> bool:
    """Lay the figure out, write it as a PNG and free it: True, it was drawn."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_all(results: Mapping[str, Any], kinds: Sequence[str], out: Path) -> list[Path]:
    """Every plot there is data for; the files written."""
    made = []
    for name, draw in (
        ("failover.png", _failover),
        ("interval.png", _interval),
        ("stability.png", _stability),
        ("idle.png", _idle),
    ):
        path = out / name
        if draw(results, kinds, path):
            made.append(path)
    return made


def _failover(results: Mapping[str, Any], kinds: Sequence[str], path: Path) -> bool:
    rows = [r for r in results.get("failover", []) if r.get("status") == "ok"]
    cases = sorted(
        {(r["timing"], r["mode"]) for r in rows},
        key=lambda c: (list(LABELS).index(c[0]) if c[0] in LABELS else 9, c[1]),
    )
    if not cases:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(cases), figsize=(3.2 * len(cases), 7), squeeze=False)
    for col, (timing, mode) in enumerate(cases):
        second = ("excess_ms", 1.0, "crash: takeover - bound (ms)")
        if mode != "crash":  # a hand-over is not bound by master-down
            second = ("takeover_s", 1000.0, "last advert to takeover (ms)")
        panels = (("outage_ms", 1.0, "client outage (ms)"), second)
        for row, (key, scale, title) in enumerate(panels):
            ax = axes[row][col]
            for i, kind in enumerate(kinds):
                values = [
                    float(r[key]) * scale
                    for r in rows
                    if (r["kind"], r["timing"], r["mode"]) == (kind, timing, mode)
                    and r.get(key) is not None
                ]
                if not values:
                    ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7)
                    continue
                ax.scatter([i] * len(values), values, color=COLOURS.get(kind, "grey"), s=14)
                ax.bar(i, statistics.median(values), color=COLOURS.get(kind, "grey"), alpha=0.3)
            ax.set_xticks(range(len(kinds)), kinds, rotation=30, fontsize=8)
            ax.set_title(f"{mode}, {LABELS.get(timing, timing)}", fontsize=9)
            if col == 0 or row == 1:
                ax.set_ylabel(title, fontsize=8)
            ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(
        "failover: client outage (10 ms probes), and the takeover's delay past the protocol's bound"
    )
    return _save(plt, fig, path)


def _interval(results: Mapping[str, Any], kinds: Sequence[str], path: Path) -> bool:
    rows = [r for r in results.get("interval", []) if r.get("status") == "ok"]
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = []
    for i, r in enumerate(rows):
        colour = COLOURS.get(r["kind"], "grey")
        ax.bar(i - 0.25, r["p50_ms"], 0.25, color=colour, alpha=0.4)
        ax.bar(i, r["p99_ms"], 0.25, color=colour, alpha=0.7)
        ax.bar(i + 0.25, r["max_ms"], 0.25, color=colour)
        labels.append(f"{r['kind']}\n{r['load']}")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("|interval - nominal| (ms): p50, p99, max")
    timing = LABELS.get(rows[0]["timing"], rows[0]["timing"])
    ax.set_title(f"a lone master's advertisement interval on the wire ({timing} adverts)")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(plt, fig, path)


def _stability(results: Mapping[str, Any], kinds: Sequence[str], path: Path) -> bool:
    rows = [r for r in results.get("stability", []) if r.get("status") == "ok"]
    if not rows:
        return False
    groups: list[tuple[str, str]] = []
    for r in rows:
        if (r["timing"], r["phase"]) not in groups:
            groups.append((r["timing"], r["phase"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(groups)), 4.5))
    width = 0.8 / len(kinds)
    for g, (timing, phase) in enumerate(groups):
        for k, kind in enumerate(kinds):
            found = [
                r for r in rows if (r["kind"], r["timing"], r["phase"]) == (kind, timing, phase)
            ]
            if not found:
                continue
            r, x = found[0], g - 0.4 + (k + 0.5) * width
            ax.bar(x, r["largest_gap_ms"], width, color=COLOURS.get(kind, "grey"),
                   label=kind if g == 0 else None)  # fmt: skip
            ax.text(x, r["largest_gap_ms"], str(r["false_takeovers"]), ha="center", va="bottom",
                    fontsize=8)  # fmt: skip
            ax.plot([x - width / 2, x + width / 2], [1000 * r["nominal_s"]] * 2, color="black")
    ax.set_xticks(range(len(groups)), [f"{LABELS.get(t, t)}\n{p}" for t, p in groups])
    ax.set_ylabel("largest gap between advertisements (ms)")
    ax.set_title("sub-second pairs: largest gap (bar), nominal interval (line), false takeovers")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _idle(results: Mapping[str, Any], kinds: Sequence[str], path: Path) -> bool:
    rows = [r for r in results.get("idle", []) if r.get("status") in ("ok", "unstable")]
    if not rows:
        return False
    plt = _pyplot()
    fig, (cpu, rss) = plt.subplots(1, 2, figsize=(12, 4.8))
    for kind in kinds:
        for role, style in (("master", "-"), ("backup", "--")):
            points = sorted((r["vhosts"], r[role]) for r in rows if r["kind"] == kind and role in r)
            if not points:
                continue
            xs = [p[0] for p in points]
            for ax, key in ((cpu, "cpu_ms_per_30s"), (rss, "rss_mib")):
                ax.plot(
                    xs,
                    [p[1][key] for p in points],
                    style,
                    marker="o",
                    color=COLOURS.get(kind, "grey"),
                    label=f"{kind} {role}",
                )
    for ax, title, unit in ((cpu, "idle CPU (all threads, schedstat)", "ms per 30 s"),
                            (rss, "resident memory (VmRSS, summed)", "MiB")):  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        sizes = sorted({int(r["vhosts"]) for r in rows})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("virtual hosts")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    cpu.legend(fontsize=7)
    fig.suptitle(
        "idle cost: pycarp 1 process, ucarp 1 per virtual host, keepalived 1 with an instance each"
    )
    return _save(plt, fig, path)
