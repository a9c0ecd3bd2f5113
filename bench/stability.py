"""Benchmark: false takeovers of a sub-second pair while the machine is hogged.

In a namespace lab (root, Linux): a pycarp pair with advbase 0 (master
advskew 26, backup 27: ~100 ms advertisements, master-down 0.316 s), both
with the default realtime scheduling, and for each hog in turn `stress-ng`
saturating both cores (`--cpu 2`) or memory (`--vm 2`) for --minutes. A
false takeover is any change of state of either host; the largest gap
between two advertisements the backup received (tcpdump) shows how close it
came. Results go to bench/results/stability.json (--out DIR: elsewhere).

    .venv/bin/python bench/stability.py --minutes 10
    .venv/bin/python bench/stability.py --minutes 0.5 --hogs cpu --out /tmp/stability
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import daemonrig
import interval

from pycarp.lab import Host, Lab
from pycarp.lab.wait import wait_until

VIP = "198.51.100.200"
VHID = 11
PASSWORD = "bench"
RESULTS = Path(__file__).resolve().parent / "results"
HOGS = {
    "cpu": ["--cpu", "2"],
    "memory": ["--vm", "2", "--vm-bytes", "1G", "--vm-keep"],
}


def start(host: Host, workdir: Path, advskew: int) -> subprocess.Popen[bytes]:
    options = daemonrig.carp_options(host, vhid=VHID, vip=VIP, password=PASSWORD, advskew=advskew)
    options += ["--advbase=0", f"--control-socket={workdir / (host.role + '.sock')}"]
    return daemonrig.spawn(host, daemonrig.pycarp(options), workdir / f"{host.role}.log")


def states(log: Path) -> list[str]:
    """The transitions a daemon logged ("BACKUP -> MASTER" lines)."""
    return [line for line in log.read_text().splitlines() if " -> " in line and "vhid" in line]


def largest_gap_ms(stamps: Sequence[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(stamps)), default=0.0) * 1000


def trial(lab: Lab, hog: str, seconds: float, workdir: Path) -> dict[str, Any]:
    a, b = lab.hosts["a"], lab.hosts["b"]
    master, backup = start(a, workdir, 26), start(b, workdir, 27)
    procs = [master, backup]
    try:
        if not wait_until(lambda: len(states(workdir / "b.log")) >= 1, 10.0):
            raise RuntimeError("the backup did not start")
        time.sleep(3.0)  # settled: a MASTER, b BACKUP
        before = (len(states(workdir / "a.log")), len(states(workdir / "b.log")))
        capture = workdir / "capture.txt"
        with open(capture, "wb") as sink:
            dump = b.spawn(
                "timeout", f"{seconds + 1:g}", "tcpdump", "-p", "-i", b.ifname, "-tt", "-n",
                "-l", f"ip proto 112 and src host {a.ip}", stdout=sink, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            procs.append(dump)
            stress = a.spawn("stress-ng", *HOGS[hog], "--timeout", f"{seconds:g}s", "--quiet")
            procs.append(stress)
            stress.wait(seconds + 30)
            dump.wait(30)
        after = (len(states(workdir / "a.log")), len(states(workdir / "b.log")))
        stamps = interval.timestamps(capture.read_text())
        if len(stamps) < 2:
            raise RuntimeError(f"{len(stamps)} advertisements from a captured: see {workdir}")
        return {
            "hog": hog,
            "seconds": seconds,
            "false_takeovers": (after[0] - before[0]) + (after[1] - before[1]),
            "adverts": len(stamps),
            "largest_gap_ms": round(largest_gap_ms(stamps), 3),
            **{k: v for k, v in interval.errors_of(stamps, 26 / 256).items() if k != "intervals"},
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="per hog")
    parser.add_argument("--hogs", default="cpu,memory")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"where stability.json goes ({RESULTS})"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/stability.py needs root (network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("stress-ng") is None:
        print("bench/stability.py needs stress-ng (apt-get install stress-ng)", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="pycarp-bench-") as tmp, Lab() as lab:
        lab.add_host("a", "198.51.100.201")
        lab.add_host("b", "198.51.100.202")
        for hog in args.hogs.split(","):
            workdir = Path(tmp) / hog
            workdir.mkdir()
            result = trial(lab, hog, args.minutes * 60, workdir)
            print(json.dumps(result), flush=True)
            results.append(result)
            for host in lab.hosts.values():
                host.run("ip", "addr", "del", f"{VIP}/32", "dev", host.ifname, check=False)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stability.json").write_text(json.dumps({"cases": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
