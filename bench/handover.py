"""Benchmark: the outage a client sees when a pycarp master stops.

In a namespace lab (root, Linux): a pycarp master, a backup (pycarp or the
real ucarp), and a client pinging the VIP every 10 ms. The master is stopped
gracefully (SIGTERM: the 255/255 hand-over) or killed (SIGKILL and carrier
loss); the outage is the longest time between two replies. Results go to
bench/results/handover.json and, with matplotlib, handover.png (--out DIR:
elsewhere, e.g. for a smoke run).

    .venv/bin/python bench/handover.py --trials 3
    .venv/bin/python bench/handover.py --trials 1 --backups pycarp --out /tmp/handover
    .venv/bin/python bench/handover.py --subsecond 26 --trials 10 --backups pycarp --modes kill
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
from pycarp.lab.probe import PingProbe, longest_silence_ms, probe_results
from pycarp.lab.wait import wait_until

VIP = "198.51.100.200"
VHID = 42
PASSWORD = "bench"
PROBE_INTERVAL = 0.01
PROBE_MAX = 2000  # 20 s of probes at most
RESULTS = Path(__file__).resolve().parent / "results"


def _daemon(
    host: Host, impl: str, workdir: Path, advskew: int, advbase: int = 1
) -> subprocess.Popen[bytes]:
    options = daemonrig.carp_options(host, vhid=VHID, vip=VIP, password=PASSWORD, advskew=advskew)
    options += ["--shutdown", f"--advbase={advbase}"]
    if impl == "ucarp":
        scripts = workdir / host.role
        scripts.mkdir()
        argv = daemonrig.ucarp(
            [*options, *daemonrig.ucarp_scripts(scripts, scripts / "events.log")]
        )
    else:  # built-in plumbing (no scripts)
        argv = daemonrig.pycarp([*options, f"--control-socket={workdir / (host.role + '.sock')}"])
    return daemonrig.spawn(host, argv, workdir / f"{host.role}.log")


def _has_vip(host: Host) -> bool:
    return any(a.startswith(VIP + "/") for a in host.addresses())


def trial(
    lab: Lab, backup_impl: str, mode: str, workdir: Path, subsecond: int = 0
) -> dict[str, Any]:
    """One stop of the master; `subsecond` N: advbase 0, the master at advskew N, the backup N+1."""
    a, b, client = lab.hosts["a"], lab.hosts["b"], lab.hosts["client"]
    advbase, skews = (0, (subsecond, subsecond + 1)) if subsecond else (1, (0, 100))
    master = _daemon(a, "pycarp", workdir, advskew=skews[0], advbase=advbase)
    backup = None
    probe = PingProbe(client, VIP, workdir / "ping.out", PROBE_INTERVAL, PROBE_MAX)
    try:
        if not wait_until(lambda: _has_vip(a), 10):
            raise RuntimeError("the pycarp master did not come up")
        backup = _daemon(b, backup_impl, workdir, advskew=skews[1], advbase=advbase)
        time.sleep(2.5)  # the backup hears the master and settles
        probe.start()
        time.sleep(1.0)
        stopped_at = time.time()
        if mode == "graceful":
            master.send_signal(signal.SIGTERM)
        else:
            master.kill()
            a.link_down()
        if not wait_until(lambda: _has_vip(b), 10):
            raise RuntimeError(f"the {backup_impl} backup did not take over")
        time.sleep(1.5)
        sent, stamps = probe_results(probe.stop())
        after = [t for t in stamps if t >= stopped_at - 0.5]
        return {
            "backup": backup_impl,
            "mode": mode,
            "advbase": advbase,
            "advskew": skews[0],
            "outage_ms": round(longest_silence_ms(after), 1),
            "sent": sent,
            "replies": len(stamps),
        }
    finally:
        for proc in (probe.proc, backup, master):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        a.link_up()
        for host in (a, b):
            host.run("ip", "addr", "del", f"{VIP}/32", "dev", host.ifname, check=False)


def summarise(
    results: Sequence[dict[str, Any]], backups: Sequence[str], modes: Sequence[str]
) -> dict[str, float]:
    """The median outage of each backup/mode case."""
    return {
        f"{b}/{m}": statistics.median(
            float(r["outage_ms"]) for r in results if (r["backup"], r["mode"]) == (b, m)
        )
        for b in backups
        for m in modes
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = sorted({(str(r["backup"]), str(r["mode"])) for r in results})
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (backup, mode) in enumerate(cases):
        values = [float(r["outage_ms"]) for r in results
                  if (r["backup"], r["mode"]) == (backup, mode)]  # fmt: skip
        ax.scatter([i] * len(values), values, color="tab:blue")
        ax.bar(i, statistics.median(values), color="tab:blue", alpha=0.3)
    ax.set_xticks(range(len(cases)), [f"{m}\n{b} backup" for b, m in cases])
    ax.set_ylabel("client outage (ms)")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_title("pycarp master stopping: outage seen by a client probing every 10 ms")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--backups", default="pycarp,ucarp")
    parser.add_argument("--modes", default="graceful,kill")
    parser.add_argument(
        "--subsecond",
        type=int,
        default=0,
        metavar="N",
        help="advbase 0: the master at advskew N, the backup at N+1 (26: ~100 ms adverts)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"directory of handover.json and .png ({RESULTS})"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/handover.py needs root (network namespaces)", file=sys.stderr)
        return 2
    backups, modes = args.backups.split(","), args.modes.split(",")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pycarp-bench-") as tmp, Lab() as lab:
        lab.add_host("a", "198.51.100.201")
        lab.add_host("b", "198.51.100.202")
        lab.add_host("client", "198.51.100.10")
        for backup in backups:
            for mode in modes:
                for n in range(args.trials):
                    workdir = Path(tmp) / f"{backup}-{mode}-{n}"
                    workdir.mkdir()
                    result = trial(lab, backup, mode, workdir, args.subsecond)
                    print(json.dumps(result), flush=True)
                    results.append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = summarise(results, backups, modes)
    out = {"probe_interval_ms": PROBE_INTERVAL * 1000, "median_outage_ms": summary,
           "trials": results}  # fmt: skip
    (args.out / "handover.json").write_text(json.dumps(out, indent=2) + "\n")
    try:
        plot(results, args.out / "handover.png")
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
