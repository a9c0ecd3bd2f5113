"""pycarp's benchmark: pycarp, Debian's ucarp and Debian's keepalived on one namespace rig.

    sudo .venv/bin/python -m bench            # the full run, about 17 minutes
    sudo .venv/bin/python -m bench --quick    # a smoke run of every section, about 90 s

Sections (--sections), each kind's trials interleaved with the others':
  failover   crash (SIGKILL and the port down at once) and graceful stop of a master with
             1 s adverts: the outage a client probing every 10 ms sees, and the time from
             the master's last advertisement to the backup's first against the protocol's
             bound; then each lone master's interval error on the wire, idle and with both
             cores busy (stress-ng --cpu 2)
  subsecond  start-up (exec to the first advertisement), crashes with ~100 ms and ~25 ms
             adverts, and false takeovers of those pairs idle and under stress-ng's CPU and
             memory hogs
  idle       CPU (schedstat) and RSS with 1, 16 and 255 virtual hosts, masters and backups
  parse      pycarp's config reader against hostile files
Writes bench.json (every raw trial) and PNGs into --out (bench/results; with --quick a
directory under /tmp), and prints the summary table and the targets. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench import failover, idle, parse_cost, summary
from bench.kinds import KINDS, TIMINGS
from bench.rig import LAB_TAG, Rig
from bench.timing import interval_section, stability_section
from pycarp.lab import Lab, LabError, cleanup_stale
from pycarp.lab.nsexec import find_program
from pycarp.lab.wait import Interrupted, Progress, raise_interrupted, signals_set

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_RESULTS = Path(tempfile.gettempdir()) / "pycarp-bench-quick"
SECTIONS = ("failover", "subsecond", "idle", "parse")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
SUBSECOND = (("100ms", ("pycarp", "pycarp-vrrp3", "keepalived", "ucarp")),
             ("25ms", ("pycarp", "pycarp-vrrp3", "keepalived")))  # fmt: skip

# name: (full run, --quick)
SETTINGS: dict[str, tuple[Any, Any]] = {
    "timing": ("1s", "100ms"),  # of the failover, interval and idle sections
    "trials": (5, 1),
    "subsecond_trials": (10, 1),
    "startup_trials": (5, 1),
    "interval_seconds": (60.0, 3.0),
    "phases": ("idle:15,cpu:120,memory:45", "idle:2,cpu:4,memory:2"),
    "sizes": ("1,16,255", "1"),
    "idle_window": (15.0, 2.0),
    "parse_kib": ("64,256,1000,10240", "64"),
}


def _command(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (done.stdout or done.stderr).strip()


def machine() -> dict[str, Any]:
    """What the numbers were measured on (a shared machine: see the load averages)."""
    model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    repo = Path(__file__).resolve().parent.parent
    ucarp = find_program("ucarp")
    keepalived = find_program("keepalived")
    return {
        "nproc": os.cpu_count(),
        "cpu": model[1] if model else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ucarp": _command(ucarp, "--help").splitlines()[0] if ucarp else None,
        "keepalived": _command(keepalived, "--version").splitlines()[0] if keepalived else None,
        "packages": {
            p: _command("dpkg-query", "-W", "-f", "${Version}", p) or None
            for p in ("ucarp", "keepalived", "stress-ng", "tcpdump")
        },
        "pycarp_commit": _command("git", "-C", str(repo), "rev-parse", "--short", "HEAD") or None,
        "pycarp_src_modified": bool(
            _command("git", "-C", str(repo), "status", "--porcelain", "--", "src")
        ),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def vrrp3_accepted() -> bool:
    """Whether this pycarp takes `protocol = "vrrp3"` (`pycarp check-config` on lo, where no
    virtual MAC can be: the NIC's own asked for, or left out for a pycarp without the key)."""
    head = ('[defaults]\ninterface = "lo"\nsrcip = "127.0.0.1"\n\n[[vhost]]\nvhid = 1\n'
            'addresses = ["198.51.100.200/32"]\nprotocol = "vrrp3"\npriority = 100\n'
            "advert_int = 0.1\npreempt = false\n")  # fmt: skip
    for text in (head + 'mac = "interface"\n', head):
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
            f.write(text)
            f.flush()
            done = subprocess.run([sys.executable, "-m", "pycarp", "check-config", f.name],
                                  capture_output=True, timeout=30, check=False)  # fmt: skip
        if done.returncode == 0:
            return True
    return False


@contextlib.contextmanager
def _lab() -> Iterator[Lab]:
    """The bench's lab; removed at the end whatever happens, a second Ctrl-C included."""
    lab = Lab(tag=f"{LAB_TAG}{secrets.token_hex(2)}")  # two runs at once do not clash
    try:
        yield lab
    finally:
        with signals_set(signal.SIG_IGN, signal.SIGINT, *STOP_SIGNALS):
            lab.close()


def _failover_trials(cells: Sequence[Any], trials: int, modes: Sequence[str],
                     say: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for n in range(trials):
        for mode in modes:
            for cell in cells:
                result = failover.failover_trial(cell, mode, n, trials)
                say(failover.describe(result))
                out.append(result)
    return out


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    began = time.monotonic()
    info = machine()
    results: dict[str, list[dict[str, Any]]] = {
        "startup": [], "failover": [], "interval": [], "stability": [], "idle": [], "parse": [],
    }  # fmt: skip
    base = TIMINGS[args.timing]
    say(f"kinds {', '.join(args.kinds)}; sections {', '.join(args.sections)}")
    removed = cleanup_stale(f"pycarp-{LAB_TAG}")
    if removed:
        say(f"removed leftovers of an earlier run: {', '.join(removed)}")
    with tempfile.TemporaryDirectory(prefix="pycarp-bench-") as tmp, _lab() as lab:
        rig = Rig(lab, Path(tmp))
        if "failover" in args.sections:
            cells = rig.cells_for([(k, base) for k in args.kinds])
            results["failover"] += _failover_trials(cells, args.trials, ("crash", "graceful"), say)
            results["interval"] = interval_section(
                cells, args.interval_seconds, ("idle", "busy"), say
            )
            rig.close_cells()
        if "subsecond" in args.sections:
            cases = [(k, TIMINGS[t]) for t, ks in SUBSECOND for k in ks if k in args.kinds]
            cells = rig.cells_for(cases)
            first = [c for c in cells if c.timing.name == SUBSECOND[0][0]]
            results["startup"] = failover.run_interleaved(
                first, args.startup_trials, failover.startup_trial, say
            )
            results["failover"] += _failover_trials(cells, args.subsecond_trials, ("crash",), say)
            results["stability"] = stability_section(cells, args.phases, say)
            rig.close_cells()
        if "idle" in args.sections:
            [cell] = rig.cells_for([(args.kinds[0], base)])
            profile = args.profile
            results["idle"] = idle.idle_section(
                cell, args.kinds, args.sizes, base, args.idle_window, say, profile
            )
            rig.close_cells()
    if "parse" in args.sections:
        results["parse"] = parse_cost.run([k * 1024 for k in args.parse_kib])
        say(f"parse: {len(results['parse'])} files read")
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    rows = summary.summary_rows(results, args.kinds)
    return {
        "benchmark": "pycarp, ucarp and keepalived on one namespace rig (python -m bench)",
        "command": " ".join(["python", "-m", "bench", *args.argv]),
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - began, 1),
        "machine": info,
        "settings": {k: getattr(args, k) for k in (*SETTINGS, "kinds", "sections", "quick")},
        "timings": {name: vars(t) for name, t in TIMINGS.items()},
        "sections": results,
        "summary": rows,
        "targets": summary.check_targets(results, args.kinds),
    }


def _list(cast: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        try:
            return [cast(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _phase(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition(":")
    if name not in ("idle", "cpu", "memory"):
        raise ValueError(f"phase {name!r}: idle, cpu or memory")
    return name, float(seconds)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[5:]),
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke run of every section")
    parser.add_argument("--out", type=Path, help=f"where bench.json and the PNGs go ({RESULTS})")
    parser.add_argument("--kinds", type=_list(str), help=f"daemons to compare ({','.join(KINDS)})")
    parser.add_argument("--sections", type=_list(str), default=list(SECTIONS),
                        help=f"sections to run ({','.join(SECTIONS)})")  # fmt: skip
    parser.add_argument(
        "--timing", choices=sorted(TIMINGS), help="adverts of failover, interval, idle"
    )
    for name, cast in (("trials", int), ("subsecond_trials", int), ("startup_trials", int),
                       ("interval_seconds", float), ("idle_window", float)):  # fmt: skip
        full, quick = SETTINGS[name]
        parser.add_argument(f"--{name.replace('_', '-')}", type=cast, dest=name,
                            help=f"full run {full}, --quick {quick}")  # fmt: skip
    parser.add_argument("--phases", type=_list(_phase), help="stability phases, NAME:SECONDS,...")
    parser.add_argument("--sizes", type=_list(int), help="virtual hosts of the idle cases")
    parser.add_argument("--parse-kib", type=_list(int), dest="parse_kib", help="parse file sizes")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="idle section: pycarp under cProfile, .prof files in DIR")  # fmt: skip
    args = parser.parse_args(argv)
    args.argv = argv
    which = 1 if args.quick else 0
    for name, values in SETTINGS.items():
        if getattr(args, name, None) is None:
            default = values[which]
            if name == "phases":
                default = [_phase(p) for p in default.split(",")]
            elif name in ("sizes", "parse_kib"):
                default = [int(x) for x in default.split(",")]
            setattr(args, name, default)
    if args.out is None:
        args.out = QUICK_RESULTS if args.quick else RESULTS
    if args.kinds is None:
        args.kinds = [k for k in KINDS if k != "pycarp-vrrp3" or vrrp3_accepted()]
    bad = [k for k in args.kinds if k not in KINDS] + [
        s for s in args.sections if s not in SECTIONS
    ]
    if bad or not args.kinds:
        parser.error(f"unknown kinds or sections: {', '.join(bad) or 'none given'}")
    if any(not 1 <= s <= 255 for s in args.sizes):
        parser.error("--sizes: numbers of virtual hosts in 1..255")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench needs root (network namespaces)", file=sys.stderr)
        return 2
    say = Progress().say
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        with signals_set(raise_interrupted, *STOP_SIGNALS):
            result = run(args, say)
    except (KeyboardInterrupt, Interrupted) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        say(f"{signal.Signals(signum).name}: the lab and its daemons are gone, no results written")
        return 128 + signum
    except LabError as exc:
        say(f"FAILED: {exc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
    try:
        from bench.plots import plot_all

        plots = [p.name for p in plot_all(result["sections"], args.kinds, args.out)]
    except ImportError:
        plots = []
        print("matplotlib is not installed (pip install -e '.[bench]'): no plots", file=sys.stderr)
    print()
    print(summary.format_table(result["summary"], args.kinds))
    print()
    print(summary.format_targets(result["targets"]))
    print(f"\n{result['duration_s']:.0f} s; {args.out}/bench.json {' '.join(plots)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
