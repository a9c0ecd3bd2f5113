"""Benchmark: how exactly a lone master keeps its advertisement interval on the wire.

In a namespace lab (root, Linux): one master (pycarp, or the real ucarp) on
host a, advbase 1 (or --advskew with advbase 0 for pycarp's sub-second mode),
and tcpdump on host b timestamping its advertisements. The error of each
interval is |measured - nominal|; the drift is the mean signed error. Each
daemon is measured idle and with both cores busy (two busy loops), the
daemons interleaved case by case. Results go to bench/results/interval.json
and, with matplotlib, interval.png (--out DIR: elsewhere).

    .venv/bin/python bench/interval.py --seconds 30
    .venv/bin/python bench/interval.py --seconds 3 --daemons pycarp --loads idle --out /tmp/iv
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import daemonrig

from pycarp.lab import Host, Lab

VIP = "198.51.100.200"
VHID = 9
PASSWORD = "bench"
SETTLE = 5.0  # seconds for the master to take over (3 s master-down) and settle
RESULTS = Path(__file__).resolve().parent / "results"
BUSY = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def errors_of(stamps: Sequence[float], nominal: float) -> dict[str, float]:
    """p50/p99/max of |interval - nominal| and the mean signed error (drift), in ms."""
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    if not intervals:
        raise ValueError("fewer than two advertisements captured")
    signed = [(i - nominal) * 1000 for i in intervals]
    absolute = [abs(e) for e in signed]
    return {
        "intervals": len(intervals),
        "p50_ms": round(percentile(absolute, 50), 4),
        "p99_ms": round(percentile(absolute, 99), 4),
        "max_ms": round(max(absolute), 4),
        "drift_ms": round(statistics.fmean(signed), 4),
        "median_interval_s": round(statistics.median(intervals), 6),
    }


def timestamps(text: str) -> list[float]:
    """The first field of each `tcpdump -tt` line."""
    out = []
    for line in text.splitlines():
        head = line.split(" ", 1)[0]
        try:
            out.append(float(head))
        except ValueError:
            continue
    return out


def master_argv(daemon: str, host: Host, workdir: Path, advskew: int) -> list[str]:
    options = daemonrig.carp_options(host, vhid=VHID, vip=VIP, password=PASSWORD, advskew=advskew)
    if advskew and daemon == "pycarp":
        options.append("--advbase=0")
    if daemon == "ucarp":
        return daemonrig.ucarp([*options, *daemonrig.ucarp_scripts(workdir, workdir / "events")])
    return daemonrig.pycarp([*options, f"--control-socket={workdir / 'ctl.sock'}"])


def trial(
    lab: Lab, daemon: str, load: str, seconds: float, advskew: int, workdir: Path
) -> dict[str, Any]:
    a, b = lab.hosts["a"], lab.hosts["b"]
    nominal = advskew / 256 if advskew else 1.0
    master = daemonrig.spawn(a, master_argv(daemon, a, workdir, advskew), workdir / "daemon.log")
    hogs: list[subprocess.Popen[bytes]] = []
    dump: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(SETTLE)
        if load == "busy":
            busy = BUSY.format(s=seconds + 2)
            hogs = [a.spawn(sys.executable, "-c", busy) for _ in range(2)]
        out = workdir / "capture.txt"
        with open(out, "wb") as sink:
            dump = b.spawn(
                "timeout", f"{seconds:g}", "tcpdump", "-p", "-i", b.ifname, "-tt", "-n", "-l",
                f"ip proto 112 and src host {a.ip}", stdout=sink, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            dump.wait(seconds + 10)
        stamps = timestamps(out.read_text())
    finally:
        for proc in [*hogs, master, *([dump] if dump else [])]:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
    return {"daemon": daemon, "load": load, "nominal_s": nominal, **errors_of(stamps, nominal)}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{r['daemon']}\n{r['load']}" for r in results]
    x = range(len(results))
    ax.bar([i - 0.2 for i in x], [r["p50_ms"] for r in results], 0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [r["p99_ms"] for r in results], 0.4, label="p99")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("advertisement interval error (ms)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="capture per case")
    parser.add_argument("--daemons", default="pycarp,ucarp")
    parser.add_argument("--loads", default="idle,busy")
    parser.add_argument("--advskew", type=int, default=0, help="pycarp with advbase 0 (sub-second)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"where interval.json goes ({RESULTS})"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/interval.py needs root (network namespaces)", file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pycarp-bench-") as tmp, Lab() as lab:
        lab.add_host("a", "198.51.100.201")
        lab.add_host("b", "198.51.100.202")
        for load in args.loads.split(","):
            for daemon in args.daemons.split(","):  # interleaved: the same noise for each
                workdir = Path(tmp) / f"{daemon}-{load}"
                workdir.mkdir()
                result = trial(lab, daemon, load, args.seconds, args.advskew, workdir)
                print(json.dumps(result), flush=True)
                results.append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interval.json").write_text(json.dumps({"cases": results}, indent=2) + "\n")
    try:
        plot(results, args.out / "interval.png")
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
