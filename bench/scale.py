"""Benchmark: idle CPU and memory of one pycarp process against ucarp processes, 1 to 255 VIPs.

In a namespace lab (root, Linux): host A runs the masters, host B the backups
(advskew 100) of one implementation at a time, both measured over the same
window once every master is MASTER and every backup BACKUP. pycarp is one
process with a TOML file of N [[vhost]] tables (built-in plumbing, default
timers); ucarp is N processes, one per vhid, with `ip addr` up/down scripts,
as operators run it. CPU is the time on CPU of every thread
(/proc/PID/task/*/schedstat), given per 30 s; RSS is VmRSS at the end of the
window (summed over ucarp's processes). Results go to bench/results/scale.json
and scale.png; a summary table with the pycarp/ucarp ratios and the targets is
printed.

    .venv/bin/python bench/scale.py            # sizes 1,16,64,255, 30 s windows
    .venv/bin/python bench/scale.py --quick    # smoke run: 1 and 16, 5 s windows
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from daemonrig import which
from scalecalc import (
    BEFORE,
    IMPLS,
    REFERENCE_S,
    ROLES,
    check_targets,
    format_table,
    format_targets,
    summarise,
)
from scaleplot import plot
from scalerig import HOST_IP, HOST_ROLE, run_case

from pycarp.lab import Lab, LabError, cleanup_stale
from pycarp.lab.wait import Interrupted, Progress, raise_interrupted, signals_set

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
SIZES = (1, 16, 64, 255)
QUICK_SIZES = (1, 16)
QUICK_WINDOW = 5.0
LAB_TAG = "bench"  # namespaces pycarp-bench-br, pycarp-bench-a, pycarp-bench-b
NS_PREFIX = f"pycarp-{LAB_TAG}-"
CASE_OVERHEAD = 25.0  # seconds a case takes beyond its window, for the time budget
BUDGET = 570.0  # the whole run must finish in under 10 minutes
RESULTS = Path(__file__).resolve().parent / "results"
QUICK_RESULTS = Path(tempfile.gettempdir()) / "pycarp-bench-scale-quick"


def _command(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (done.stdout or done.stderr).strip()


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the machines are shared: see loadavg)."""
    model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    ucarp_help = _command(which("ucarp"), "--help").splitlines()
    repo = Path(__file__).resolve().parent.parent
    src_dirty = _command("git", "-C", str(repo), "status", "--porcelain", "--", "src")
    return {
        "nproc": os.cpu_count(),
        "cpu": model[1] if model else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ucarp": ucarp_help[0] if ucarp_help else None,
        "ucarp_package": _command("dpkg-query", "-W", "-f", "${Version}", "ucarp") or None,
        "pycarp_commit": _command("git", "-C", str(repo), "rev-parse", "--short", "HEAD") or None,
        "pycarp_src_modified": bool(src_dirty),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def write_profiles(profile_dir: Path, top: int = 25) -> None:
    """A text summary next to each .prof: top functions by cumulative and by own time."""
    for prof in sorted(profile_dir.glob("*.prof")):
        with open(prof.with_suffix(".txt"), "w") as out:
            stats = pstats.Stats(str(prof), stream=out).strip_dirs()
            for key in ("cumulative", "tottime"):
                print(f"=== {prof.name}: top {top} by {key}", file=out)
                stats.sort_stats(key).print_stats(top)
        print(f"profile: {prof.with_suffix('.txt')}")


@contextlib.contextmanager
def _lab() -> Iterator[Lab]:
    """The bench's lab; removed at the end whatever happens, a second Ctrl-C included."""
    lab = Lab(tag=LAB_TAG)  # removes what it made if it fails half-way
    try:
        yield lab
    finally:
        with signals_set(signal.SIG_IGN, signal.SIGINT, *STOP_SIGNALS):
            lab.close()


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    began = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = machine()
    removed = cleanup_stale(NS_PREFIX)  # only an earlier run's that died: a live run's stay
    if removed:
        say(f"removed leftovers of an earlier run: {', '.join(removed)}")
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pycarp-bench-") as tmp, _lab() as lab:
        for role in ROLES:
            lab.add_host(HOST_ROLE[role], HOST_IP[role])
        for size in args.sizes:  # by size, both implementations: they see the same noise
            for impl in args.impl:
                left = args.budget - (time.monotonic() - began)
                if left < args.window + CASE_OVERHEAD:
                    cases.append(
                        {
                            "impl": impl,
                            "vhosts": size,
                            "status": "skipped",
                            "error": f"time budget: {left:.0f} s left",
                        }
                    )
                    say(f"{impl} x{size}: skipped (time budget)")
                    continue
                case = run_case(lab, impl, size, args.window, Path(tmp), args.profile)
                cases.append(case)
                say(_case_line(case))
    rows = summarise(cases, args.sizes)
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "benchmark": "idle cost at scale: one pycarp process vs one ucarp process per vhid",
        "timestamp": started_at,
        "duration_s": round(time.monotonic() - began, 1),
        "machine": info,
        "window_s": args.window,
        "cpu_unit": "ms of CPU (all threads, /proc/PID/task/*/schedstat) per 30 s",
        "rss_unit": "MiB (VmRSS at the end of the window; ucarp: sum over its processes)",
        "profiled": args.profile is not None,
        "before_issue_8": BEFORE,
        "cases": cases,
        "summary": rows,
        "targets": check_targets(rows),
    }


def _case_line(case: Mapping[str, Any]) -> str:
    head = f"{case['impl']} x{case['vhosts']}: {case['status']}"
    parts = [
        f"{role} {case[role]['cpu_ms_per_30s']:.1f} ms/30 s {case[role]['rss_mib']:.1f} MiB"
        for role in ROLES
        if role in case
    ]
    error = f" ({case['error']})" if case.get("error") else ""
    return f"{head}: {', '.join(parts)}{error}" if parts else f"{head}{error}"


def _sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or any(not 1 <= s <= 255 for s in sizes):
        raise argparse.ArgumentTypeError("sizes are numbers of virtual hosts in 1..255")
    return sizes


def _impls(text: str) -> list[str]:
    impls = [s.strip() for s in text.split(",") if s.strip()]
    if not impls or any(i not in IMPLS for i in impls):
        raise argparse.ArgumentTypeError(f"implementations: {', '.join(IMPLS)}")
    return impls


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, help="numbers of virtual hosts (1,16,64,255)")
    parser.add_argument("--window", type=float, help=f"seconds measured per case ({REFERENCE_S:g})")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"directory of scale.json and scale.png ({RESULTS}; with --quick {QUICK_RESULTS})",
    )
    parser.add_argument("--impl", type=_impls, default=list(IMPLS), help="pycarp,ucarp (both)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: sizes {QUICK_SIZES}, {QUICK_WINDOW:g} s windows",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET,
        help=f"seconds the run may take; later cases are skipped ({BUDGET:g})",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run pycarp under cProfile, .prof and .txt files in DIR "
        "(its CPU numbers then include the profiler's cost)",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else SIZES)
    if args.window is None:
        args.window = QUICK_WINDOW if args.quick else REFERENCE_S
    if args.window <= 0:
        parser.error("--window must be positive")
    if args.out is None:
        args.out = QUICK_RESULTS if args.quick else RESULTS
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/scale.py needs root (network namespaces)", file=sys.stderr)
        return 2
    say = Progress().say
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        with signals_set(raise_interrupted, *STOP_SIGNALS):  # unwind like Ctrl-C: the lab goes
            result = run(args, say)
    except (KeyboardInterrupt, Interrupted) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        say(f"{signal.Signals(signum).name}: the lab and its daemons are gone, no results written")
        return 128 + signum
    except LabError as exc:
        say(f"FAILED: {exc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    try:
        plot(result["cases"], result["summary"], args.out / "scale.png")
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
    if args.profile is not None:
        write_profiles(args.profile)
    print()
    print(format_table(result["summary"]))
    print()
    print(format_targets(result["targets"]))
    print(f"\n{result['duration_s']:.0f} s; results in {args.out}/scale.json and scale.png")
    failed = [c for c in result["cases"] if c["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
