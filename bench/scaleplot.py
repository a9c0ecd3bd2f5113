"""bench/scale.py's plot: CPU and RSS against the number of virtual hosts, per
implementation and role, with the baseline before issue 8 and pycarp's targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalecalc import BEFORE, IMPLS, REFERENCE_S, ROLES, check_targets


def plot(cases: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({int(r["vhosts"]) for r in rows})
    colour = {"pycarp": "tab:blue", "ucarp": "tab:orange"}
    style = {"master": "-", "backup": "--"}
    fig, (cpu_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.8))
    for impl in IMPLS:
        for role in ROLES:
            for ax, metric in ((cpu_ax, "cpu"), (rss_ax, "rss")):
                points = [
                    (r["vhosts"], r[f"{impl}_{metric}"])
                    for r in rows
                    if r["role"] == role and r[f"{impl}_{metric}"] is not None
                ]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(
                        xs,
                        ys,
                        style[role],
                        marker="o",
                        color=colour[impl],
                        label=f"{impl} {role}{' (sum)' if impl == 'ucarp' else ''}",
                    )
            before = BEFORE[impl]
            cpu_ax.scatter(
                list(before),
                [v[role] for v in before.values()],
                marker="x",
                color=colour[impl],
                alpha=0.4,
                s=30,
            )
        rss_ax.scatter(
            list(BEFORE[impl]),
            [v["rss"] for v in BEFORE[impl].values()],
            marker="x",
            color=colour[impl],
            alpha=0.4,
            s=30,
        )
    for check in check_targets(rows):
        if check["bound"] is None:
            continue
        ax = cpu_ax if check["metric"] == "cpu" else rss_ax
        n = check["vhosts"]
        ax.hlines(check["bound"], n / 1.6, n * 1.6, colors="tab:red", linestyles=":")
    cpu_ax.plot([], [], ":", color="tab:red", label="pycarp targets")
    cpu_ax.scatter([], [], marker="x", color="grey", label="before issue 8")
    window = next((c["window_s"] for c in cases if c.get("window_s")), REFERENCE_S)
    cpu_ax.set_title(f"idle CPU (window {window:.0f} s)")
    cpu_ax.set_ylabel("CPU time per 30 s (ms)")
    rss_ax.set_title("resident memory (VmRSS, end of window)")
    rss_ax.set_ylabel("RSS (MiB)")
    for ax in (cpu_ax, rss_ax):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("virtual hosts (pycarp: 1 process; ucarp: 1 process each)")
        ax.grid(True, which="both", alpha=0.3)
    cpu_ax.legend(fontsize=8)
    fig.suptitle(
        "one pycarp process vs one ucarp process per vhid, idle (host A masters, B backups)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
